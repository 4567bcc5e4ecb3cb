import Foundation
import Testing

@testable import PaasCore
@testable import PaasConfig

@Suite struct OptionsFallbackTests {
    static let allVariables = [
        "PAAS_PROCFILE": "env/Procfile", "PAAS_ENV": "a.env,b.env", "PAAS_ROOT": "envroot",
        "PAAS_FORMATION": "web=4", "PAAS_PORT": "7000", "PAAS_TIMEOUT": "9",
    ]

    @Test func variablesFillWhatNoFlagGave() {
        let o = Options().withFallbacks(from: Self.allVariables)
        #expect(o == Options(procfile: "env/Procfile", envFiles: ["a.env,b.env"], root: "envroot", formation: "web=4", port: "7000", timeout: "9"))
    }

    @Test func flagsBeatVariables() {
        let flags = Options(procfile: "flag/Procfile", envFiles: ["f.env"], root: "flagroot", formation: "web=1", port: "6000", timeout: "2")
        #expect(flags.withFallbacks(from: Self.allVariables) == flags)
    }

    @Test func eachFlagBeatsOnlyItsOwnVariable() {
        let o = Options(port: "6000").withFallbacks(from: Self.allVariables)
        #expect(o.port == "6000")
        #expect(o.formation == "web=4")
        #expect(o.procfile == "env/Procfile")
        #expect(o.timeout == "9")
    }

    @Test func emptyVariablesAreIgnored() {
        let empty = Dictionary(uniqueKeysWithValues: Self.allVariables.keys.map { ($0, "") })
        #expect(Options().withFallbacks(from: empty) == Options())
    }

    @Test func unrelatedVariablesAreIgnored() {
        let env = ["PORT": "8000", "FORMATION": "web=2", "PROCFILE": "x", "paas_port": "1"]
        #expect(Options().withFallbacks(from: env) == Options())
    }

    @Test func variableNames() {
        #expect(Options.variables.procfile == "PAAS_PROCFILE")
        #expect(Options.variables.env == "PAAS_ENV")
        #expect(Options.variables.root == "PAAS_ROOT")
        #expect(Options.variables.formation == "PAAS_FORMATION")
        #expect(Options.variables.port == "PAAS_PORT")
        #expect(Options.variables.timeout == "PAAS_TIMEOUT")
    }
}

@Suite struct PathsTests {
    private func envPaths(_ p: Paths) -> [String] { p.envFiles.map(\.path) }

    @Test func defaults() {
        let p = Paths.resolve(Options())
        #expect(p.procfile == "Procfile")
        #expect(p.rootDisplay == ".")
        #expect(p.root == FileSystem.absolute("."))
        #expect(p.root.hasPrefix("/"))
        #expect(envPaths(p) == [".env"])
        #expect(p.envFiles.map(\.explicit) == [false])
    }

    @Test(arguments: [
        ("app/Procfile", "app", "app/.env"),
        ("a/b/Procfile.dev", "a/b", "a/b/.env"),
        ("Procfile.dev", ".", ".env"),
        ("/Procfile", "/", "/.env"),
        ("/srv/app/Procfile", "/srv/app", "/srv/app/.env"),
    ])
    func procfileOnly(procfile: String, root: String, env: String) {
        let p = Paths.resolve(Options(procfile: procfile))
        #expect(p.procfile == procfile)
        #expect(p.rootDisplay == root)
        #expect(envPaths(p) == [env])
        #expect(p.envFiles.map(\.explicit) == [false])
    }

    @Test(arguments: [
        ("srv", "srv/Procfile", "srv/.env"),
        ("srv/", "srv/Procfile", "srv/.env"),
        (".", "Procfile", ".env"),
        ("/", "/Procfile", "/.env"),
    ])
    func rootOnly(root: String, procfile: String, env: String) {
        let p = Paths.resolve(Options(root: root))
        #expect(p.procfile == procfile)
        #expect(p.rootDisplay == root)
        #expect(envPaths(p) == [env])
    }

    @Test func procfileAndRoot() {
        let p = Paths.resolve(Options(procfile: "config/Procfile", root: "app"))
        #expect(p.procfile == "config/Procfile")
        #expect(p.rootDisplay == "app")
        // The default .env lives in the root, not beside the Procfile.
        #expect(envPaths(p) == ["app/.env"])
    }

    @Test func rootIsAbsoluteAndResolved() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("paas-paths-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = Paths.resolve(Options(root: dir.path + "/./"))
        #expect(p.root == FileSystem.absolute(dir.path))
        #expect(!p.root.hasSuffix("/"))
        #expect(!p.root.contains("/./"))
    }

    @Test func namedEnvFilesAreSplitTrimmedAndExplicit() {
        let p = Paths.resolve(Options(envFiles: ["a.env, b.env", "c.env", ",,", " d.env "], root: "app"))
        #expect(envPaths(p) == ["a.env", "b.env", "c.env", "d.env"])
        #expect(p.envFiles.map(\.explicit) == [true, true, true, true])
    }

    @Test func namedEnvFilesAreNotRelativeToTheRoot() {
        let p = Paths.resolve(Options(envFiles: ["x.env"], root: "app"))
        #expect(envPaths(p) == ["x.env"])
    }
}

@Suite struct OutputOptionsTests {
    private func resolve(format: String? = nil, noColor: Bool = false, noTimestamp: Bool = false, terminal: Bool = true, _ env: [String: String] = [:]) throws -> LogStyle {
        try OutputOptions.resolve(format: format, noColor: noColor, noTimestamp: noTimestamp, stdoutIsTerminal: terminal, environment: env)
    }

    @Test func terminalDefaultsToColouredTextWithTimestamps() throws {
        #expect(try resolve() == LogStyle(format: .text, color: true, timestamps: true))
    }

    @Test func nonTerminalHasNoColour() throws {
        #expect(try resolve(terminal: false) == LogStyle(format: .text, color: false, timestamps: true))
    }

    @Test(arguments: [
        ["NO_COLOR": "1"], ["NO_COLOR": "anything"], ["NO_COLOR": "0"],
        ["PAAS_NO_COLOR": "1"], ["PAAS_NO_COLOR": "true"], ["PAAS_NO_COLOR": "YES"], ["PAAS_NO_COLOR": "on"],
    ])
    func variablesTurnColourOff(_ env: [String: String]) throws {
        #expect(try resolve(env).color == false)
    }

    @Test(arguments: [["NO_COLOR": ""], ["PAAS_NO_COLOR": "0"], ["PAAS_NO_COLOR": "false"], ["PAAS_NO_COLOR": ""]])
    func variablesThatLeaveColourOn(_ env: [String: String]) throws {
        #expect(try resolve(env).color == true)
    }

    @Test func noColorFlag() throws {
        #expect(try resolve(noColor: true).color == false)
    }

    @Test func jsonIsNeverColoured() throws {
        let s = try resolve(format: "json")
        #expect(s.format == .json)
        #expect(s.color == false)
        #expect(try resolve(["PAAS_LOG_FORMAT": "json"]) == LogStyle(format: .json, color: false, timestamps: true))
    }

    @Test func timestamps() throws {
        #expect(try resolve(noTimestamp: true).timestamps == false)
        #expect(try resolve(["PAAS_NO_TIMESTAMP": "1"]).timestamps == false)
        #expect(try resolve(["PAAS_NO_TIMESTAMP": "no"]).timestamps == true)
    }

    @Test func formatFlagBeatsVariable() throws {
        #expect(try resolve(format: "text", ["PAAS_LOG_FORMAT": "json"]).format == .text)
        #expect(try resolve(["PAAS_LOG_FORMAT": ""]).format == .text)
    }

    @Test func badFormatFlag() {
        let e = #expect(throws: ConfigError.self) { try resolve(format: "yaml") }
        #expect(e?.code == .badOption)
        #expect(e?.file == "--log-format")
        #expect(e?.description == "--log-format: log format \"yaml\" is not known; expected text or json")
    }

    @Test func badFormatVariable() {
        let e = #expect(throws: ConfigError.self) { try resolve(["PAAS_LOG_FORMAT": "JSON"]) }
        #expect(e?.file == "PAAS_LOG_FORMAT")
        #expect(e?.message.contains("\"JSON\"") == true)
    }
}

@Suite struct ChildEnvironmentTests {
    private func app(_ variables: [(key: String, value: String)]) -> AppConfig {
        var env = EnvConfig()
        env.variables = variables
        return AppConfig(
            paths: Paths.resolve(Options()), procfile: Procfile(entries: []), env: env,
            formation: Formation(types: [], release: nil, basePort: 5000), timeout: 5)
    }

    @Test func precedenceInheritedThenEnvFilesThenExtra() {
        let a = app([("A", "file"), ("B", "file"), ("FILE_ONLY", "1")])
        let result = a.childEnvironment(
            inherited: [("A", "inherited"), ("B", "inherited"), ("C", "inherited"), ("PORT", "1")],
            extra: [("B", "extra"), ("PORT", "5000"), ("PS", "web.1")])
        #expect(result == ["A=file", "B=extra", "C=inherited", "PORT=5000", "FILE_ONLY=1", "PS=web.1"])
    }

    @Test func firstAppearanceFixesPositionAndEachKeyAppearsOnce() {
        let result = app([("X", "2")]).childEnvironment(inherited: [("X", "1"), ("Y", "1")], extra: [("X", "3")])
        #expect(result == ["X=3", "Y=1"])
    }

    @Test(arguments: ["NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"])
    func supervisorVariablesAreDropped(_ key: String) {
        let result = app([]).childEnvironment(inherited: [(key, "x"), ("HOME", "/root")], extra: [])
        #expect(result == ["HOME=/root"])
    }

    @Test func similarNamesAreKept() {
        let result = app([]).childEnvironment(inherited: [("MY_NOTIFY_SOCKET", "1"), ("WATCHDOG", "1"), ("LISTEN", "1")], extra: [])
        #expect(result == ["MY_NOTIFY_SOCKET=1", "WATCHDOG=1", "LISTEN=1"])
    }

    @Test func valuesKeepEqualsSignsAndNewlines() {
        let result = app([("K", "a=b\nc")]).childEnvironment(inherited: [], extra: [])
        #expect(result == ["K=a=b\nc"])
    }
}

@Suite struct ShellQuoteTests {
    /// What `/bin/sh` makes of `printf %s WORD`.
    private func shellEcho(_ quoted: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "printf %s " + quoted]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        return String(decoding: data, as: UTF8.self)
    }

    static let words = [
        "plain", "with space", "it's", "''", "\"double\"", "$HOME", "${X:-y}", "$(echo no)", "`echo no`",
        "a\\b", "line\nbreak", "tab\there", "*", "?", "[a]", "~", "a;b", "a|b", "a&b", "a>b", "#hash",
        "!bang", "é ü 日本", "-dash", "--flag=x", "a,b@c%d+e:f", "\u{1}ctl", "  lead", "trail  ",
    ]

    @Test(arguments: words)
    func roundTripsThroughSh(_ word: String) throws {
        #expect(try shellEcho(OneOff.shellQuote(word)) == word)
    }

    @Test func allWordsInOneCommandLine() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "for a in " + Self.words.map(OneOff.shellQuote).joined(separator: " ") + "; do printf '%s\\0' \"$a\"; done"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let parts = data.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
        #expect(parts == Self.words)
    }

    @Test func emptyWordIsQuoted() throws {
        #expect(OneOff.shellQuote("") == "''")
        // An empty argument survives as one argument.
        #expect(try shellEcho("x" + OneOff.shellQuote("") + "y") == "xy")
    }

    @Test func safeWordsAreLeftAlone() {
        for w in ["migrate", "-v", "--db=prod", "a/b.c", "user@host:1", "50%", "a+b", "x,y"] {
            #expect(OneOff.shellQuote(w) == w)
        }
    }

    @Test func singleQuoteEscape() {
        #expect(OneOff.shellQuote("it's") == #"'it'\''s'"#)
    }
}
