import Testing

@testable import PaasCore
@testable import PaasConfig

/// SplitMix64: a tiny deterministic generator, so a failing input can be reproduced from its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Feeds both parsers random and mutated input. Typed throws already make "returns a value or
/// throws ConfigError" structural; these tests check the rest: no crash, no hang, and every error
/// names the file and a line that exists (or one past the end, for an error at end of input).
@Suite("parser fuzzing")
struct ParserFuzzTests {
    /// Bytes the grammars care about, weighted in so random input reaches deep into the parsers.
    static let interesting: [UInt8] = Array("\n\r\t :=#$'\"\\{}-+?_ export web AZaz09".utf8) + [0x00, 0xEF, 0xBB, 0xBF, 0xC3, 0xA9, 0x80, 0xFF]

    static let validProcfiles: [String] = [
        "web: bundle exec puma -p $PORT\nworker: sidekiq -c 5\n# comment\n\nclock: ./clock:run\n",
        "\u{FEFF}release: ./migrate\r\nweb: ./server --port=${PORT:-5000}\r\n",
    ]

    static let validEnvFiles: [String] = [
        "# settings\nexport A=1\nB = \"two\\nlines ${A}\"\nC='it\\'s $A'\nD=${NOPE:-x} # c\nPATH=${PATH}:/x\n",
        "\u{FEFF}M=\"multi\r\nline $$ \\$ ${A:+alt}\"\r\nN=${M:-${Q:-deep}}\r\nexport N\r\nO=a#b\n",
    ]

    static func lineCount(_ bytes: [UInt8]) -> Int {
        bytes.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
    }

    static func randomBytes(_ rng: inout SplitMix64) -> [UInt8] {
        let length = Int.random(in: 0...80, using: &rng)
        return (0..<length).map { _ in
            Bool.random(using: &rng) ? interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
        }
    }

    static func mutate(_ source: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var bytes = source
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
            let byte = interesting.randomElement(using: &rng)!
            switch Int.random(in: 0..<4, using: &rng) {
            case 0 where !bytes.isEmpty: bytes[position] = byte
            case 1 where !bytes.isEmpty: bytes.remove(at: position)
            case 2: bytes.insert(byte, at: position)
            default:
                // Cut the file short: exercises unterminated quotes and substitutions.
                bytes = Array(bytes.prefix(position))
            }
        }
        return bytes
    }

    /// How many parses succeeded, so a test can check the fuzzing was not vacuous.
    struct Outcomes {
        var procfileParsed = 0
        var procfileFailed = 0
        var envParsed = 0
        var envFailed = 0
    }

    @discardableResult
    static func check(_ bytes: [UInt8], _ outcomes: inout Outcomes) -> Outcomes {
        let lines = lineCount(bytes)
        do {
            let procfile = try ProcfileParser.parse(bytes, file: "Procfile")
            outcomes.procfileParsed += 1
            #expect(!procfile.entries.isEmpty)
            #expect(procfile.entries.allSatisfy { (1...lines).contains($0.line) })
        } catch {
            outcomes.procfileFailed += 1
            #expect(error.file == "Procfile")
            if let line = error.line {
                #expect((1...lines + 1).contains(line), "\(error) for \(bytes)")
            } else {
                #expect(error.code == .empty)
            }
        }
        do {
            let env = try EnvFileParser.parse(bytes, file: ".env", lookup: { $0 == "PATH" ? "/bin" : nil })
            outcomes.envParsed += 1
            #expect(env.assignments.allSatisfy { (1...lines).contains($0.line) })
            #expect(env.warnings.allSatisfy { $0.file == ".env" && (1...lines).contains($0.line) })
        } catch {
            outcomes.envFailed += 1
            #expect(error.file == ".env")
            #expect(error.line.map { (1...lines + 1).contains($0) } == true, "\(error) for \(bytes)")
        }
        return outcomes
    }

    @Test("random bytes", arguments: [1, 2, 3] as [UInt64])
    func randomInput(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var outcomes = Outcomes()
        for _ in 0..<1_500 {
            Self.check(Self.randomBytes(&rng), &outcomes)
        }
        #expect(outcomes.procfileFailed > 0 && outcomes.envFailed > 0 && outcomes.envParsed > 0)
    }

    @Test("mutated valid files", arguments: [10, 11] as [UInt64])
    func mutatedInput(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let sources = (Self.validProcfiles + Self.validEnvFiles).map { Array($0.utf8) }
        var outcomes = Outcomes()
        for _ in 0..<1_500 {
            Self.check(Self.mutate(sources.randomElement(using: &rng)!, &rng), &outcomes)
        }
        // Mutations of valid files must reach both outcomes of both parsers.
        #expect(outcomes.procfileParsed > 100 && outcomes.procfileFailed > 100, "\(outcomes)")
        #expect(outcomes.envParsed > 100 && outcomes.envFailed > 100, "\(outcomes)")
    }

    @Test("the seed files themselves parse")
    func seedsParse() throws {
        for text in Self.validProcfiles {
            #expect(try ProcfileParser.parse(text, file: "Procfile").entries.count >= 2)
        }
        for text in Self.validEnvFiles {
            let env = try EnvFileParser.parse(text, file: ".env", lookup: { $0 == "PATH" ? "/bin" : nil })
            #expect(env.assignments.count >= 3)
        }
    }

    @Test("the UTF-8 validator agrees with the standard library")
    func validatorAgreesWithStdlib() {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<3_000 {
            let bytes = Self.randomBytes(&rng)
            let ours = TextDecoding.firstInvalidUTF8Offset(bytes) == nil
            let stdlib = String(validating: bytes, as: UTF8.self) != nil
            #expect(ours == stdlib, "\(bytes)")
        }
    }
}
