import Testing

@testable import PaasCore
@testable import PaasConfig

/// One conformance case in the style of JSONTestSuite (github.com/nst/JSONTestSuite): a name
/// that says `y_` (must be accepted) or `n_` (must be refused), and the bytes.
struct JSONCase: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var testDescription: String { name }

    init(_ name: String, _ text: String) {
        self.name = name
        self.bytes = Array(text.utf8)
    }

    init(_ name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    var mustAccept: Bool { name.hasPrefix("y_") }
}

/// The strict JSON parser that reads control requests and app.json: a conformance table, the
/// bounds it keeps, finding lines again by path, and seeded fuzzing.
@Suite("JSON parser")
struct JSONParserTests {
    static let cases: [JSONCase] = [
        // Structure.
        .init("y_array_empty", "[]"),
        .init("y_object_empty", "{}"),
        .init("y_array_nested_empty", "[[], {}, [[]]]"),
        .init("y_object_nested", #"{"a": {"b": [{"c": null}]}}"#),
        .init("y_scalar_number", "42"),
        .init("y_scalar_string", #""x""#),
        .init("y_scalar_true", "true"),
        .init("y_scalar_false", "false"),
        .init("y_scalar_null", "null"),
        .init("y_literals_in_array", "[true,false,null]"),
        .init("y_whitespace_all_four", " \t\r\n[ 1 ,\t2\r\n] \n"),
        .init("y_object_keys_empty_and_unicode", #"{"": 1, "é": 2, "\u00e9x": 3}"#),
        .init("n_empty_input", ""),
        .init("n_only_whitespace", " \n\t "),
        .init("n_array_trailing_comma", "[1,]"),
        .init("n_array_leading_comma", "[,1]"),
        .init("n_array_double_comma", "[1,,2]"),
        .init("n_array_missing_comma", "[1 2]"),
        .init("n_array_unclosed", "[1"),
        .init("n_array_extra_close", "[1]]"),
        .init("n_object_trailing_comma", #"{"a":1,}"#),
        .init("n_object_missing_colon", #"{"a" 1}"#),
        .init("n_object_unquoted_key", "{a:1}"),
        .init("n_object_single_quotes", "{'a':1}"),
        .init("n_object_number_key", "{1:1}"),
        .init("n_object_missing_comma", #"{"a":1 "b":2}"#),
        .init("n_object_unclosed", #"{"a":1"#),
        .init("n_object_duplicate_key", #"{"a":1,"a":2}"#),
        .init("n_object_duplicate_key_nested", #"{"x": {"a": [], "b": 1, "a": {}}}"#),
        .init("n_two_values", "[] []"),
        .init("n_trailing_garbage", "[1] x"),
        .init("n_comment", "[1] // c"),
        .init("n_block_comment", "/* c */ [1]"),
        .init("n_literal_capitalized", "[True]"),
        .init("n_literal_truncated", "[tru]"),
        .init("n_literal_nul", "[nul]"),
        .init("n_whitespace_form_feed", "[\u{0C}1]"),
        .init("n_whitespace_vertical_tab", "[\u{0B}1]"),
        .init("n_whitespace_nbsp", "[\u{A0}1]"),
        .init("n_bom_before_value", bytes: [0xEF, 0xBB, 0xBF] + Array("{}".utf8)),
        .init("n_nul_after_value", bytes: Array("[]".utf8) + [0]),
        // Numbers.
        .init("y_number_zero", "[0]"),
        .init("y_number_minus_zero", "[-0]"),
        .init("y_number_fraction", "[1.5]"),
        .init("y_number_exponents", "[1e2, 1E2, 1e+2, 1e-2, -1.5E-3, 0e0]"),
        .init("y_number_int_max", "[9223372036854775807]"),
        .init("y_number_int_min", "[-9223372036854775808]"),
        .init("y_number_beyond_int", "[123456789012345678901234567890]"),
        .init("y_number_underflow_to_zero", "[1e-400]"),
        .init("n_number_leading_zero", "[01]"),
        .init("n_number_minus_leading_zero", "[-01]"),
        .init("n_number_leading_zeros_fraction", "[00.5]"),
        .init("n_number_plus", "[+1]"),
        .init("n_number_dot_first", "[.5]"),
        .init("n_number_dot_last", "[1.]"),
        .init("n_number_exponent_empty", "[1e]"),
        .init("n_number_exponent_sign_only", "[1e+]"),
        .init("n_number_minus_only", "[-]"),
        .init("n_number_minus_space", "[- 1]"),
        .init("n_number_hex", "[0x10]"),
        .init("n_number_nan", "[NaN]"),
        .init("n_number_infinity", "[Infinity]"),
        .init("n_number_minus_infinity", "[-Infinity]"),
        .init("n_number_huge_exponent", "[1e400]"),
        .init("n_number_huge_negative", "[-1e99999]"),
        .init("n_number_huge_digits", "[" + String(repeating: "9", count: 400) + "]"),
        // Strings and escapes.
        .init("y_string_escapes", #"["\"\\\/\b\f\n\r\t"]"#),
        .init("y_string_unicode_escape", #"["\u0041\u00e9\u20AC"]"#),
        .init("y_string_escaped_nul", #"["\u0000"]"#),
        .init("y_string_surrogate_pair", #"["\ud83d\ude00"]"#),
        .init("y_string_raw_utf8", "[\"é€😀\"]"),
        .init("y_string_raw_del", "[\"\u{7F}\"]"),
        .init("n_string_unknown_escape", #"["\x41"]"#),
        .init("n_string_escaped_apostrophe", #"["\'"]"#),
        .init("n_string_short_unicode_escape", #"["\u12"]"#),
        .init("n_string_bad_hex", #"["\uZZZZ"]"#),
        .init("n_string_unterminated", #"["abc"#),
        .init("n_string_escape_at_end", #"["\"#),
        .init("n_string_single_quoted", "['a']"),
        .init("n_string_raw_tab", "[\"a\tb\"]"),
        .init("n_string_raw_newline", "[\"a\nb\"]"),
        .init("n_string_raw_nul", bytes: Array("[\"a".utf8) + [0] + Array("\"]".utf8)),
        .init("n_string_raw_escape_char", bytes: Array("[\"".utf8) + [0x1B] + Array("\"]".utf8)),
        // Surrogates: a Swift String cannot hold a lone one, so they are refused.
        .init("n_string_lone_high_surrogate", #"["\ud800"]"#),
        .init("n_string_lone_low_surrogate", #"["\udc00"]"#),
        .init("n_string_high_then_letter", #"["\ud800\u0041"]"#),
        .init("n_string_two_high_surrogates", #"["\ud800\ud800"]"#),
        .init("n_string_high_then_raw", #"["\ud800x"]"#),
        // Invalid UTF-8.
        .init("n_utf8_lone_continuation", bytes: Array("[\"".utf8) + [0x80] + Array("\"]".utf8)),
        .init("n_utf8_invalid_byte", bytes: Array("[\"".utf8) + [0xFF] + Array("\"]".utf8)),
        .init("n_utf8_overlong_slash", bytes: Array("[\"".utf8) + [0xC0, 0xAF] + Array("\"]".utf8)),
        .init("n_utf8_encoded_surrogate", bytes: Array("[\"".utf8) + [0xED, 0xA0, 0x80] + Array("\"]".utf8)),
        .init("n_utf8_truncated", bytes: Array("[\"".utf8) + [0xE2, 0x82] + Array("\"]".utf8)),
        .init("n_utf8_above_10ffff", bytes: Array("[\"".utf8) + [0xF4, 0x90, 0x80, 0x80] + Array("\"]".utf8)),
        .init("n_utf8_outside_string", bytes: [0x5B, 0xC3, 0xA9, 0x5D]),
        // Depth: 64 levels are read, the 65th is refused.
        .init("y_depth_64_arrays", String(repeating: "[", count: 64) + String(repeating: "]", count: 64)),
        .init("y_depth_64_objects", String(repeating: #"{"a":"#, count: 63) + "{}" + String(repeating: "}", count: 63)),
        .init("n_depth_65_arrays", String(repeating: "[", count: 65) + String(repeating: "]", count: 65)),
        .init("n_depth_100000_open_arrays", String(repeating: "[", count: 100_000)),
        .init("n_depth_100000_open_objects", String(repeating: #"{"a":"#, count: 100_000)),
    ]

    @Test("conformance", arguments: cases)
    func conformance(_ c: JSONCase) {
        do {
            let value = try JSONParser.parse(c.bytes)
            #expect(c.mustAccept, "accepted \(value.serialized())")
        } catch {
            #expect(!c.mustAccept, "refused: \(error)")
            #expect(error.line >= 1 && error.column >= 1)
        }
    }

    @Test("values are read exactly")
    func values() throws {
        #expect(try JSONParser.parse(Array(#"["\ud83d\ude00", "\u00e9", "a\/b"]"#.utf8)) == .array([.string("😀"), .string("é"), .string("a/b")]))
        #expect(try JSONParser.parse(Array("[9223372036854775807, -0, 2.5, 1e2]".utf8)) == .array([.int(.max), .int(0), .number(2.5), .number(100)]))
        #expect(try JSONParser.parse(Array("[9223372036854775808]".utf8)) == .array([.number(9223372036854775808)]))
        #expect(try JSONParser.parse(Array(#"{"b": 1, "a": [true]}"#.utf8)).objectPairs?.map(\.0) == ["b", "a"])
    }

    @Test("errors say where and what was expected")
    func errorMessages() {
        func failure(_ text: String) -> JSONParser.Failure? {
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(text.utf8)) }
        }
        let dup = failure("{\n  \"a\": 1,\n  \"a\": 2\n}")
        #expect(dup?.line == 3 && dup?.column == 3)
        #expect(dup?.message == #"duplicate key "a"; expected each key once in an object"#)
        let deep = failure("\n" + String(repeating: "[", count: 100_000))
        #expect(deep?.line == 2 && deep?.column == 65)
        #expect(deep?.message == "nested more than 64 levels deep; expected at most 64 levels of arrays and objects")
        #expect(failure("[1e400]")?.message == #"number "1e400" is out of range; expected a finite number"#)
        #expect(failure("[01]")?.message.hasSuffix("expected no leading zeros") == true)
        #expect(failure("[\"\\ud800\"]")?.message.hasPrefix("unpaired surrogate; expected") == true)
        #expect(failure("[\"a\tb\"]")?.column == 4)
    }

    // MARK: lines by path

    static let document = """
        {
          "formation": {"web": {"quantity": 2}},
          "healthchecks": {
            "web": [
              {"type": "startup"},
              {
                "port": 99999
              }
            ]
          },
          "paas": {"processes": {"web": {"restart": "always"}}}
        }
        """

    @Test("the line of a path is found again on demand", arguments: [
        ([], 1),
        ([.key("formation")], 2),
        ([.key("formation"), .key("web"), .key("quantity")], 2),
        ([.key("healthchecks")], 3),
        ([.key("healthchecks"), .key("web")], 4),
        ([.key("healthchecks"), .key("web"), .index(0)], 5),
        ([.key("healthchecks"), .key("web"), .index(1)], 6),
        ([.key("healthchecks"), .key("web"), .index(1), .key("port")], 7),
        // Missing parts: the deepest part that exists.
        ([.key("healthchecks"), .key("web"), .index(1), .key("timeout")], 6),
        ([.key("healthchecks"), .key("web"), .index(7)], 4),
        ([.key("paas"), .key("processes"), .key("web"), .key("backoff"), .key("initial")], 11),
        ([.key("nope"), .key("web")], 1),
    ] as [([JSONParser.PathComponent], Int)])
    func lineOfPath(path: [JSONParser.PathComponent], line: Int) {
        #expect(JSONParser.line(of: path, in: Array(Self.document.utf8)) == line)
    }

    @Test("a key of the same name elsewhere is not taken for the path")
    func lineOfPathIgnoresLookalikes() {
        let text = "{\n\"a\": {\"x\": 1},\n\"b\": {\n\"a\": {\"x\": 2}\n}\n}"
        #expect(JSONParser.line(of: [.key("b"), .key("a"), .key("x")], in: Array(text.utf8)) == 4)
        #expect(JSONParser.line(of: [.key("a"), .key("y")], in: Array(text.utf8)) == 2)
    }

    @Test("a long key over a long array parses in linear time and memory")
    func longKeyLongArray() throws {
        // The old parser stored `KEY[i]` for every element: 60 KB x 20,000 = 1.2 GB.
        let key = String(repeating: "k", count: 60_000)
        let text = "{\"" + key + "\": [" + Array(repeating: "0", count: 20_000).joined(separator: ",") + "]}"
        let clock = ContinuousClock()
        let start = clock.now
        let value = try JSONParser.parse(Array(text.utf8))
        #expect(value[key]?.array?.count == 20_000)
        #expect(clock.now - start < .seconds(10))
    }

    // MARK: fuzzing

    static let interesting: [UInt8] = Array("{}[],:\"\\/ \n\t\r0123456789-+.eEtrufalsn u00e9 ud83d ude00 \"a\":".utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xA9, 0xED, 0xA0, 0xEF, 0xBB, 0xBF, 0xFF]

    static let seeds: [String] = [
        document,
        #"{"v": 1, "cmd": "scale", "counts": {"web": 2, "worker": 0}}"#,
        #"{"v":1,"cmd":"logs","n":100,"follow":true,"targets":["web.1","worker"]}"#,
        #"[1.5e-3, -0, "\ud83d\ude00\u00e9\n", [[{}]], {"": null}, true, false, 9223372036854775807]"#,
    ]

    static func lineCount(_ bytes: [UInt8]) -> Int { bytes.reduce(1) { $0 + ($1 == 10 ? 1 : 0) } }

    /// Parses `bytes`: a failure must point into the text (or one past its end); a success must
    /// survive a round trip through the writer unchanged.
    static func check(_ bytes: [UInt8], accepted: inout Int, refused: inout Int) {
        do {
            let value = try JSONParser.parse(bytes)
            accepted += 1
            let again = try JSONParser.parse(Array(value.serialized().utf8))
            #expect(again == value, "\(bytes)")
        } catch {
            refused += 1
            #expect((1...lineCount(bytes)).contains(error.line), "\(error) for \(bytes)")
            #expect(error.column >= 1 && error.column <= bytes.count + 1, "\(error) for \(bytes)")
        }
    }

    @Test("random bytes", arguments: [21, 22, 23] as [UInt64])
    func randomInput(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var accepted = 0, refused = 0
        for _ in 0..<3_000 {
            let length = Int.random(in: 0...40, using: &rng)
            let bytes: [UInt8] = (0..<length).map { _ in
                Bool.random(using: &rng) ? Self.interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            Self.check(bytes, accepted: &accepted, refused: &refused)
        }
        #expect(refused > 0 && accepted > 0, "accepted \(accepted), refused \(refused)")
    }

    @Test("mutated documents", arguments: [31, 32, 33] as [UInt64])
    func mutatedInput(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let sources = Self.seeds.map { Array($0.utf8) }
        var accepted = 0, refused = 0
        for _ in 0..<3_000 {
            var bytes = sources.randomElement(using: &rng)!
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
                let byte = Self.interesting.randomElement(using: &rng)!
                switch Int.random(in: 0..<5, using: &rng) {
                case 0 where !bytes.isEmpty: bytes[position] = byte
                case 1 where !bytes.isEmpty: bytes.remove(at: position)
                case 2: bytes.insert(byte, at: position)
                case 3: bytes.insert(contentsOf: repeatElement(byte, count: Int.random(in: 1...200, using: &rng)), at: position)
                default: bytes = Array(bytes.prefix(position))
                }
            }
            Self.check(bytes, accepted: &accepted, refused: &refused)
        }
        #expect(refused > 300 && accepted > 100, "accepted \(accepted), refused \(refused)")
    }

    @Test("mutated app.json files give a manifest or an error on a line of the file", arguments: [41, 42] as [UInt64])
    func mutatedManifests(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let source = Array(#"""
            {"formation": {"web": {"quantity": 2}},
             "healthchecks": {"web": [{"type": "readiness", "path": "/up", "port": 5000, "wait": 1, "attempts": 3, "timeout": 2}]},
             "paas": {"processes": {"worker": {"restart": "always", "after": ["web"], "backoff": {"initial": 1, "max": 9},
                      "breaker": {"failures": 3, "window": 60, "cooldown": 30}}}}}
            """#.utf8)
        var parsed = 0, failed = 0
        for _ in 0..<2_000 {
            var bytes = source
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let position = Int.random(in: 0..<bytes.count, using: &rng)
                let byte = Self.interesting.randomElement(using: &rng)!
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[position] = byte
                case 1: bytes.remove(at: position)
                default: bytes.insert(byte, at: position)
                }
            }
            do {
                _ = try AppManifest.parse(bytes, file: "app.json", types: ["web", "worker"])
                parsed += 1
            } catch {
                failed += 1
                #expect(error.file == "app.json")
                #expect(error.line.map { (1...Self.lineCount(bytes)).contains($0) } == true, "\(error)")
            }
        }
        #expect(parsed > 50 && failed > 500, "parsed \(parsed), failed \(failed)")
    }
}
