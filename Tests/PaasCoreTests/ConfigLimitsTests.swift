import Foundation
import Testing

@testable import PaasCore
@testable import PaasConfig

/// The bounds on configuration input (issue 8, faults 13, 24 and 25): nesting depth, file
/// kinds and sizes, broken links, and parsers that stay linear in their input.
@Suite("configuration limits")
struct ConfigLimitsTests {
    /// `K=${A0:-${A1:-...x...}}` nested `depth` levels deep.
    static func nested(_ depth: Int, quote: String = "") -> String {
        var text = "K=" + quote
        for i in 0..<depth { text += "${A\(i):-" }
        text += "x"
        text += String(repeating: "}", count: depth)
        return text + quote + "\n"
    }

    @Test("nesting up to the limit expands", arguments: ["", "\""])
    func nestingAtTheLimit(quote: String) throws {
        let env = try EnvFileParser.parse(Self.nested(EnvFileParser.maximumNesting, quote: quote), file: ".env", lookup: { _ in nil })
        #expect(env.values["K"] == "x")
    }

    @Test("nesting beyond the limit is an error with its line, not a stack overflow",
          arguments: [EnvFileParser.maximumNesting + 1, 10_000, 100_000])
    func nestingBeyondTheLimit(depth: Int) {
        let text = "A=1\n" + Self.nested(depth)
        let error = #expect(throws: ConfigError.self) { try EnvFileParser.parse(text, file: ".env", lookup: { _ in nil }) }
        #expect(error?.line == 2)
        #expect(error?.description.hasPrefix(".env:2: substitutions nested more than 64 levels deep; expected at most 64") == true, "\(String(describing: error))")
    }

    @Test("an unused deep word is bounded too (its syntax is still checked)")
    func unusedDeepWord() {
        // `${A+word}` with A unset never evaluates its word, but scanning it recursed all the same.
        let text = "K=${UNSET+" + String(repeating: "${B:-", count: 50_000) + String(repeating: "}", count: 50_001) + "\n"
        let error = #expect(throws: ConfigError.self) { try EnvFileParser.parse(text, file: ".env", lookup: { _ in nil }) }
        #expect(error?.line == 1 && error?.code == .syntax)
    }

    // MARK: EnvConfig

    @Test("EnvConfig keeps first positions and last values")
    func envConfigFolding() {
        var config = EnvConfig()
        config.variables = [("A", "1"), ("B", "2"), ("A", "3")]
        #expect(config.variables.map(\.key) == ["A", "B"])
        #expect(config["A"] == "3" && config["B"] == "2" && config["C"] == nil)
    }

    @Test("many keys over two env files load in linear time")
    func manyKeysAreLinear() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let count = 100_000
        var a = "", b = ""
        for i in 0..<count / 2 { a += "K\(i)=v\(i)\n" }
        for i in count / 2..<count { b += "K\(i)=${K\(i - count / 2)}-\(i)\n" }
        try dir.write("a.env", a)
        try dir.write("b.env", b)
        let paths = Paths(procfile: dir.path("Procfile"), root: dir.url.path, rootDisplay: dir.url.path,
                          envFiles: [(dir.path("a.env"), true), (dir.path("b.env"), true)])
        let clock = ContinuousClock()
        let start = clock.now
        let env = try ConfigLoader.env(paths, environment: [:])
        let elapsed = clock.now - start
        #expect(env.variables.count == count)
        #expect(env["K99999"] == "v49999-99999")
        // Quadratic (a linear search per key) took minutes in a debug build; linear takes about a second.
        #expect(elapsed < .seconds(20), "\(elapsed)")
    }

    // MARK: port arithmetic

    @Test("port arithmetic saturates instead of trapping")
    func portArithmetic() throws {
        let last = ProcessType(name: "w", command: "x", index: 1, quantity: .max)
        #expect(last.port(1, base: 5000) == 5100)
        #expect(last.port(.max, base: 5000) == .max)
        #expect(last.port(.min, base: 5000) == .max)
        #expect(ProcessType(name: "w", command: "x", index: .max, quantity: 1).port(1, base: 5000) == .max)
        let procfile = try ProcfileParser.parse("web: a\nworker: b\n", file: "Procfile")
        for counts in [FormationSpec(all: .max), FormationSpec(counts: [("worker", .max)]), FormationSpec(counts: [("web", .max)])] {
            let error = #expect(throws: ConfigError.self) { try Formation.plan(procfile, counts: counts, basePort: 5000, source: "-m/--formation") }
            #expect(error?.message.contains("would get a port far above 65535; expected every port of the plan below 65536") == true, "\(String(describing: error))")
        }
        // `paas scale` checks a changed plan the same way.
        var plan = try Formation.plan(procfile, counts: FormationSpec(), basePort: 5000, source: "-m")
        plan.types[1].quantity = .max
        #expect(throws: ConfigError.self) { try plan.validatePorts(source: "scale") }
    }

    // MARK: reading files

    @Test("a FIFO is refused without blocking")
    func fifoIsRefused() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let fifo = dir.path("env.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: FileReadError.notRegularFile("a FIFO")) { try FileSystem.read(fifo) }
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.readFile(fifo, expected: "an env file") }
        #expect(error?.code == .notRegularFile)
        #expect(error?.description == "\(fifo): is a FIFO, not a regular file; expected an env file")
    }

    @Test("devices are refused", arguments: ["/dev/zero", "/dev/null", "/dev/urandom"])
    func devicesAreRefused(path: String) {
        #expect(throws: FileReadError.notRegularFile("a character device")) { try FileSystem.read(path) }
    }

    @Test("a link to a device is refused as the device")
    func linkToDevice() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let link = dir.path("app.json")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/dev/zero")
        #expect(!FileSystem.isAbsent(link))
        #expect(throws: FileReadError.notRegularFile("a character device")) { try FileSystem.read(link) }
    }

    @Test("a file over the limit is refused, one at the limit is read")
    func sizeLimit() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        try dir.write("big", String(repeating: "x", count: 1000))
        #expect(try FileSystem.read(dir.path("big"), limit: 1000).count == 1000)
        #expect(throws: FileReadError.tooLarge(limit: 999)) { try FileSystem.read(dir.path("big"), limit: 999) }
        #expect(FileSystem.maximumFileSize == 16 << 20)
        // The default limit, with a sparse file: refused from its size, nothing is read.
        let sparse = dir.path("sparse")
        #expect(FileManager.default.createFile(atPath: sparse, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: sparse))
        try handle.truncate(atOffset: UInt64(FileSystem.maximumFileSize) + 1)
        try handle.close()
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.readFile(sparse, expected: "a Procfile") }
        #expect(error?.code == .tooLarge)
        #expect(error?.message == "is larger than 16 MiB; expected a file of at most 16 MiB")
    }

    @Test("a dangling link and a link loop are errors naming the path, not absent files")
    func brokenLinks() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let dangling = dir.path("dangling")
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: dir.path("nowhere"))
        let loop = dir.path("loop")
        try FileManager.default.createSymbolicLink(atPath: loop, withDestinationPath: loop)
        #expect(!FileSystem.isAbsent(dangling) && !FileSystem.isAbsent(loop))
        #expect(FileSystem.isAbsent(dir.path("nothing")))
        #expect(throws: FileReadError.danglingLink) { try FileSystem.read(dangling) }
        #expect(throws: FileReadError.linkLoop) { try FileSystem.read(loop) }
        #expect(throws: FileReadError.notFound) { try FileSystem.read(dir.path("nothing")) }

        let e1 = #expect(throws: ConfigError.self) { try ConfigLoader.readFile(dangling, expected: "an app.json file") }
        #expect(e1?.description == "\(dangling): is a symbolic link to a file that does not exist; expected an app.json file")
        let e2 = #expect(throws: ConfigError.self) { try ConfigLoader.readFile(loop, expected: "an app.json file") }
        #expect(e2?.code == .brokenLink && e2?.message.contains("loop of symbolic links") == true)
    }

    @Test("a default .env that is a broken link is an error, not skipped")
    func defaultEnvBrokenLink() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        try FileManager.default.createSymbolicLink(atPath: dir.path(".env"), withDestinationPath: "missing.env")
        let paths = Paths(procfile: dir.path("Procfile"), root: dir.url.path, rootDisplay: dir.url.path, envFiles: [(dir.path(".env"), false)])
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.env(paths, environment: [:]) }
        #expect(error?.code == .brokenLink && error?.file == dir.path(".env"))
        // An absent default stays fine.
        let none = Paths(procfile: dir.path("Procfile"), root: dir.url.path, rootDisplay: dir.url.path, envFiles: [(dir.path("none.env"), false)])
        #expect(try ConfigLoader.env(none, environment: [:]).files.isEmpty)
    }
}

/// A temporary directory for tests that need real files.
struct TempDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("paas-core-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func write(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: url.appendingPathComponent(name))
    }

    func remove() { try? FileManager.default.removeItem(at: url) }
}
