import Foundation
import Testing

/// The `paas` command line as users meet it: the built binary, run to completion in a
/// temporary app directory. Each test clears `PORT` and every `PAAS_*` variable first, so the
/// environment the tests run in cannot change what they see.
@Suite struct CLITests {
    /// `PORT` and the `PAAS_*` variables, empty (paas treats an empty variable as unset).
    static let cleared: [String: String] = [
        "PORT": "", "PAAS_PROCFILE": "", "PAAS_ENV": "", "PAAS_ROOT": "", "PAAS_FORMATION": "",
        "PAAS_PORT": "", "PAAS_TIMEOUT": "", "PAAS_LOG_FORMAT": "", "PAAS_NO_COLOR": "", "PAAS_NO_TIMESTAMP": "",
    ]

    /// Runs `paas ARGS` in `dir` with a cleared environment plus `env`.
    private func paas(_ args: [String], in dir: String, _ env: [String: String] = [:]) throws -> (status: Int32?, stdout: String, stderr: String) {
        try runPaas(args, in: dir, environment: Self.cleared.merging(env) { $1 }, timeout: 20)
    }

    /// Runs `paas ARGS` and parses its stdout as one JSON object; the run must succeed.
    private func json(_ args: [String], in dir: String, _ env: [String: String] = [:]) throws -> [String: Any] {
        let r = try paas(args, in: dir, env)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        return try #require(object as? [String: Any], "stdout: \(r.stdout)")
    }

    /// The `processes` of `paas check --json`, by name.
    private func processes(_ report: [String: Any]) throws -> [[String: Any]] {
        try #require(report["processes"] as? [[String: Any]])
    }

    private func quantities(_ report: [String: Any]) throws -> [String: Int] {
        var q: [String: Int] = [:]
        for p in try processes(report) { q[p["name"] as? String ?? "?"] = p["quantity"] as? Int }
        return q
    }

    /// Expects exit status 78 and exactly one stderr line, `paas: ` + `prefix` + ...
    private func expectConfigError(_ r: (status: Int32?, stdout: String, stderr: String), _ prefix: String, containing fragment: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 78, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stdout.isEmpty, sourceLocation: sourceLocation)
        #expect(r.stderr.hasSuffix("\n"), sourceLocation: sourceLocation)
        #expect(r.stderr.filter { $0 == "\n" }.count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("paas: " + prefix), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(fragment.isEmpty || r.stderr.contains(fragment), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    }

    static let procfile = """
        # a comment
        release: ./bin/migrate
        web: bundle exec puma -p $PORT
        worker: sidekiq -q default:2
        clock: ./clock
        """

    // MARK: version and help

    @Test func version() throws {
        let app = try TempApp()
        defer { app.remove() }
        let r = try paas(["--version"], in: app.path)
        #expect(r.status == 0)
        #expect(r.stdout == "0.1.0\n")
    }

    static let helpCases: [([String], [String])] = [
        (["--help"], ["up", "run", "check", "config", "--version", "78"]),
        (["up", "--help"], ["--procfile", "--env", "--root", "--formation", "--port", "--timeout", "--no-color", "--no-timestamp", "--log-format", "PAAS_FORMATION"]),
        (["start", "--help"], ["--procfile", "--formation", "--port", "--timeout", "--log-format"]),
        (["check", "--help"], ["--procfile", "--env", "--root", "--formation", "--port", "--json"]),
        (["config", "--help"], ["--env", "--json", "<key>", "--root"]),
        (["help", "run"], ["--procfile", "--env", "--root", "name|command"]),
    ]

    @Test(arguments: helpCases)
    func help(args: [String], mentions: [String]) throws {
        let app = try TempApp()
        defer { app.remove() }
        let r = try paas(args, in: app.path)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("USAGE:"))
        for word in mentions {
            #expect(r.stdout.contains(word), "\(args) help does not mention \(word)")
        }
    }

    // Passthrough parsing must not swallow --help (it once ran `/bin/sh -c --help`).
    @Test func runHelp() throws {
        let app = try TempApp(procfile: "web: true\n")
        defer { app.remove() }
        let r = try paas(["run", "--help"], in: app.path)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("--procfile"))
    }

    @Test(arguments: [["--bogus"], ["up", "--bogus"], ["check", "--bogus"], ["config", "--bogus"], ["check", "-t"], ["nosuchcommand"]])
    func usageErrorsExit64(args: [String]) throws {
        let app = try TempApp(procfile: "web: true\n")
        defer { app.remove() }
        let r = try paas(args, in: app.path)
        #expect(r.status == 64, "stderr: \(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(!r.stderr.isEmpty)
    }

    // MARK: check

    @Test func checkText() throws {
        let app = try TempApp(procfile: Self.procfile, files: [".env": "A=1\n"])
        defer { app.remove() }
        let r = try paas(["check", "-m", "web=2,worker=3"], in: app.path)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stderr.isEmpty)
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "Procfile: ok, 3 process types and a release phase")
        #expect(lines.contains("env files: .env"))
        #expect(lines.contains { $0.hasPrefix("root: /") })
        let table = lines.drop { !$0.hasPrefix("TYPE") }.filter { !$0.isEmpty }
        #expect(table.map { $0.split(separator: " ").first.map(String.init) ?? "" } == ["TYPE", "release", "web", "worker", "clock"])
        let rows = table.dropFirst().map { $0.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true).map(String.init) }
        #expect(rows[0].prefix(3) == ["release", "-", "(first)"])
        // web is routed: one public port (its instances get private ones when it runs).
        #expect(rows[1].prefix(3) == ["web", "2", "5000"] && table[2].contains(" 5000 routed "))
        #expect(rows[2].prefix(3) == ["worker", "3", "5100-5102"])
        #expect(rows[3].prefix(3) == ["clock", "1", "5200"])
        #expect(table[1].hasSuffix("./bin/migrate"))
        #expect(table[2].hasSuffix("bundle exec puma -p $PORT"))
        #expect(table[3].hasSuffix("sidekiq -q default:2"))
    }

    @Test func checkTextWithoutEnvFilesOrRelease() throws {
        let app = try TempApp(procfile: "web: serve\n")
        defer { app.remove() }
        let r = try paas(["check", "-m", "web=0"], in: app.path)
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("Procfile: ok, 1 process type\n"))
        #expect(r.stdout.contains("env files: none\n"))
        let row = try #require(r.stdout.split(separator: "\n").last)
        // A routed type scaled to 0 still has its public port (the router answers at once).
        #expect(row.split(separator: " ").map(String.init) == ["web", "0", "5000", "routed", "no", "serve"])
    }

    @Test func checkJSON() throws {
        let app = try TempApp(procfile: Self.procfile, files: [".env": "A=1\nURL=http://${PAAS_TEST_UNDEFINED_HOST}/\n"])
        defer { app.remove() }
        let r = try paas(["check", "--json", "-m", "web=2"], in: app.path)
        #expect(r.status == 0)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(report["procfile"] as? String == "Procfile")
        #expect(report["env_files"] as? [String] == [".env"])
        #expect(report["base_port"] as? Int == 5000)
        #expect(report["timeout"] as? Double == 5)
        let root = try #require(report["root"] as? String)
        #expect(root.hasPrefix("/") && root.hasSuffix(app.url.lastPathComponent))
        let ps = try processes(report)
        #expect(ps.map { $0["name"] as? String } == ["release", "web", "worker", "clock"])
        #expect(ps.map { $0["command"] as? String } == ["./bin/migrate", "bundle exec puma -p $PORT", "sidekiq -q default:2", "./clock"])
        #expect(ps.map { $0["quantity"] as? Int } == [0, 2, 1, 1])
        #expect(ps.map { $0["ports"] as? [Int] } == [[], [5000, 5001], [5100], [5200]])
        #expect(ps.map { $0["release"] as? Bool } == [true, false, false, false])
        let warnings = try #require(report["warnings"] as? [String])
        #expect(warnings.count == 1)
        #expect(warnings.first?.hasPrefix(".env:2: warning:") == true)
        #expect(warnings.first?.contains("PAAS_TEST_UNDEFINED_HOST") == true)
        // The warning is also on stderr, once.
        #expect(r.stderr == "paas: \(warnings[0])\n")
    }

    @Test func checkJSONWithoutWarnings() throws {
        let app = try TempApp(procfile: "web: a\n")
        defer { app.remove() }
        let report = try json(["check", "--json"], in: app.path)
        #expect(report["warnings"] as? [String] == [])
        #expect(report["env_files"] as? [String] == [])
    }

    // MARK: formation

    @Test(arguments: [
        ("web=2,worker=0", ["web": 2, "worker": 0, "clock": 1, "release": 0]),
        ("all=3", ["web": 3, "worker": 3, "clock": 3, "release": 0]),
        ("all=0,web=2", ["web": 2, "worker": 0, "clock": 0, "release": 0]),
        ("  web = 4 ", ["web": 4, "worker": 1, "clock": 1, "release": 0]),
    ])
    func formation(spec: String, expected: [String: Int]) throws {
        let app = try TempApp(procfile: Self.procfile)
        defer { app.remove() }
        #expect(try quantities(json(["check", "--json", "-m", spec], in: app.path)) == expected)
    }

    @Test func formationPorts() throws {
        let app = try TempApp(procfile: Self.procfile)
        defer { app.remove() }
        let report = try json(["check", "--json", "-m", "all=2", "-p", "7000"], in: app.path)
        #expect(try processes(report).map { $0["ports"] as? [Int] } == [[], [7000, 7001], [7100, 7101], [7200, 7201]])
    }

    // MARK: ports

    @Test(arguments: [
        // (flag, env file PORT, inherited PORT, expected)
        ("6000", "7000", "8000", 6000),
        (nil, "7000", "8000", 7000),
        (nil, nil, "8000", 8000),
        (nil, nil, nil, 5000),
        ("6000", nil, nil, 6000),
        ("6000", nil, "8000", 6000),
    ] as [(String?, String?, String?, Int)])
    func portPrecedence(flag: String?, envFile: String?, inherited: String?, expected: Int) throws {
        let app = try TempApp(procfile: "web: a\nworker: b\n", files: envFile.map { [".env": "PORT=\($0)\n"] } ?? [:])
        defer { app.remove() }
        let args = ["check", "--json"] + (flag.map { ["-p", $0] } ?? [])
        let report = try json(args, in: app.path, inherited.map { ["PORT": $0] } ?? [:])
        #expect(report["base_port"] as? Int == expected)
        #expect(try processes(report).map { $0["ports"] as? [Int] } == [[expected], [expected + 100]])
    }

    @Test func planAbove65535IsAConfigurationError() throws {
        let app = try TempApp(procfile: "web: a\n")
        defer { app.remove() }
        expectConfigError(try paas(["check", "-p", "65535", "-m", "web=2"], in: app.path), "-m/--formation: ", containing: "web.2 would get port 65536")
        expectConfigError(try paas(["up", "-p", "65535", "-m", "web=2"], in: app.path), "-m/--formation: ", containing: "65536")
    }

    // A plan that does not fit because of the base port names the port, not a variable the user never set.
    @Test func planAbove65535FromTheBasePortNamesItsCause() throws {
        let app = try TempApp(procfile: "web: a\nworker: b\n")
        defer { app.remove() }
        let r = try paas(["check", "-p", "65500"], in: app.path)
        expectConfigError(r, "", containing: "worker.1 would get port 65600")
        #expect(!r.stderr.contains("PAAS_FORMATION"), "stderr: \(r.stderr)")
    }

    // MARK: config

    static let trickyEnv = #"""
        PLAIN=plain
        SPACES="a  b  c"
        SQ="it's"
        DQ='say "hi"'
        DOLLAR='$HOME and ${X} and $(nope)'
        NL="line1\nline2\n"
        MIXED="tab\there 'q' \"d\" \$x \\ end"
        EMPTY=
        GLOB='* ? [a] ~'
        BANG='wow!;&|<>'
        UNICODE=héllo 日本
        """#

    static let trickyValues: [(String, String)] = [
        ("PLAIN", "plain"), ("SPACES", "a  b  c"), ("SQ", "it's"), ("DQ", "say \"hi\""),
        ("DOLLAR", "$HOME and ${X} and $(nope)"), ("NL", "line1\nline2\n"), ("MIXED", "tab\there 'q' \"d\" $x \\ end"),
        ("EMPTY", ""), ("GLOB", "* ? [a] ~"), ("BANG", "wow!;&|<>"), ("UNICODE", "héllo 日本"),
    ]

    @Test func configEvalReproducesValuesExactly() throws {
        let app = try TempApp(files: [".env": Self.trickyEnv])
        defer { app.remove() }
        let keys = Self.trickyValues.map(\.0)
        let script = #"eval "$("$PAAS" config)" || exit 9; printf '%s\0' "# + keys.map { "\"$\($0)\"" }.joined(separator: " ")
        let sh = try Running(["-c", script], in: app.path, environment: Self.cleared.merging(["PAAS": Binaries.paas]) { $1 }, executable: "/bin/sh")
        #expect(sh.waitForExit() == 0, "stderr: \(sh.stderr)")
        let values = sh.stdoutBytes.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
        #expect(values == Self.trickyValues.map(\.1))
    }

    @Test func configLinesAreKeyEqualsQuotedValue() throws {
        let app = try TempApp(files: [".env": "A=simple\nB=two words\nC=\"it's\"\n"])
        defer { app.remove() }
        let r = try paas(["config"], in: app.path)
        #expect(r.status == 0)
        #expect(r.stdout == "A=simple\nB='two words'\nC='it'\\''s'\n")
    }

    @Test func configJSONHasExactlyTheKeysOfTheFiles() throws {
        let app = try TempApp(files: [".env": Self.trickyEnv + "\nFROM_ENV=${PAAS_TEST_INHERITED}-x\n"])
        defer { app.remove() }
        let report = try json(["config", "--json"], in: app.path, ["PAAS_TEST_INHERITED": "inh", "PAAS_TEST_OTHER": "y"])
        #expect(Set(report.keys) == Set(Self.trickyValues.map(\.0) + ["FROM_ENV"]))
        for (k, v) in Self.trickyValues { #expect(report[k] as? String == v, "\(k)") }
        #expect(report["FROM_ENV"] as? String == "inh-x")
        #expect(report["PAAS_TEST_INHERITED"] == nil)
        #expect(report["PATH"] == nil)
    }

    @Test func configKeyPrintsTheValue() throws {
        let app = try TempApp(files: [".env": Self.trickyEnv])
        defer { app.remove() }
        for (k, v) in Self.trickyValues where !["PLAIN", "NL", "EMPTY"].contains(k) {
            let r = try paas(["config", k], in: app.path)
            #expect(r.status == 0)
            #expect(r.stdout == v + "\n")
        }
        let nl = try paas(["config", "NL"], in: app.path)
        #expect(nl.stdout == "line1\nline2\n\n")
        let empty = try paas(["config", "EMPTY"], in: app.path)
        #expect(empty.status == 0)
        #expect(empty.stdout == "\n")
        let js = try paas(["config", "--json", "NL"], in: app.path)
        #expect(js.stdout == "\"line1\\nline2\\n\"\n")
    }

    @Test func configKeyUnsetExits1() throws {
        let app = try TempApp(files: [".env": "A=1\n"])
        defer { app.remove() }
        // Inherited variables are not the env files' keys.
        let r = try paas(["config", "HOME"], in: app.path, ["HOME": "/root"])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.hasPrefix("paas: HOME is not set by .env"))
        let none = try TempApp()
        defer { none.remove() }
        let r2 = try paas(["config", "A"], in: none.path)
        #expect(r2.status == 1)
        #expect(r2.stderr.contains("none was read"))
    }

    @Test func configNeedsNoProcfile() throws {
        let app = try TempApp(files: ["some.env": "A=1\nB=${A}2\n"])
        defer { app.remove() }
        let report = try json(["config", "--json", "-e", "some.env"], in: app.path)
        #expect(report as? [String: String] == ["A": "1", "B": "12"])
        // And with no env file at all: nothing set, still fine.
        let empty = try TempApp()
        defer { empty.remove() }
        let r = try paas(["config"], in: empty.path)
        #expect(r.status == 0)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.isEmpty)
    }

    @Test(arguments: [["-e", "a.env,b.env"], ["-e", "a.env", "-e", "b.env"], ["--env", "a.env", "--env=b.env"]])
    func severalEnvFilesLaterWins(args: [String]) throws {
        let app = try TempApp(procfile: "web: a\n", files: [
            "a.env": "SHARED=a\nA=1\n",
            "b.env": "SHARED=b\nB=${A}-b\nFROM_SHARED=$SHARED\n",
        ])
        defer { app.remove() }
        let report = try json(["config", "--json"] + args, in: app.path)
        #expect(report as? [String: String] == ["SHARED": "b", "A": "1", "B": "1-b", "FROM_SHARED": "b"])
        let check = try json(["check", "--json"] + args, in: app.path)
        #expect(check["env_files"] as? [String] == ["a.env", "b.env"])
    }

    @Test func envFileBeatsInheritedInInterpolation() throws {
        let app = try TempApp(files: ["a.env": "X=file\n", "b.env": "Y=$X\n"])
        defer { app.remove() }
        let report = try json(["config", "--json", "-e", "a.env,b.env"], in: app.path, ["X": "inherited"])
        #expect(report["Y"] as? String == "file")
    }

    @Test func namedMissingEnvFileIsAnError() throws {
        let app = try TempApp(procfile: "web: a\n", files: ["a.env": "A=1\n"])
        defer { app.remove() }
        expectConfigError(try paas(["config", "-e", "a.env,missing.env"], in: app.path), "missing.env: ", containing: "no such file")
        expectConfigError(try paas(["check", "-e", "missing.env"], in: app.path), "missing.env: ", containing: "no such file")
        // Even a named `.env` must exist.
        expectConfigError(try paas(["check", "-e", ".env"], in: app.path), ".env: ", containing: "no such file")
    }

    @Test func missingDefaultEnvFileIsFine() throws {
        let app = try TempApp(procfile: "web: a\n")
        defer { app.remove() }
        let report = try json(["check", "--json"], in: app.path)
        #expect(report["env_files"] as? [String] == [])
        let r = try paas(["check"], in: app.path)
        #expect(r.status == 0)
        #expect(r.stderr.isEmpty)
    }

    // MARK: PAAS_* fallbacks

    @Test func procfileFromVariableAndFlagBeatsIt() throws {
        let app = try TempApp(files: ["Procfile.dev": "dev: a\n", "Procfile.prod": "prod: b\n"])
        defer { app.remove() }
        let byVariable = try json(["check", "--json"], in: app.path, ["PAAS_PROCFILE": "Procfile.dev"])
        #expect(byVariable["procfile"] as? String == "Procfile.dev")
        #expect(try processes(byVariable).map { $0["name"] as? String } == ["dev"])
        let byFlag = try json(["check", "--json", "-f", "Procfile.prod"], in: app.path, ["PAAS_PROCFILE": "Procfile.dev"])
        #expect(try processes(byFlag).map { $0["name"] as? String } == ["prod"])
    }

    @Test func envFromVariableAndFlagBeatsIt() throws {
        let app = try TempApp(files: ["x.env": "X=1\n", "y.env": "Y=2\n", "z.env": "Z=3\n"])
        defer { app.remove() }
        let byVariable = try json(["config", "--json"], in: app.path, ["PAAS_ENV": "x.env,y.env"])
        #expect(byVariable as? [String: String] == ["X": "1", "Y": "2"])
        let byFlag = try json(["config", "--json", "-e", "z.env"], in: app.path, ["PAAS_ENV": "x.env"])
        #expect(byFlag as? [String: String] == ["Z": "3"])
    }

    @Test func rootFromVariableAndFlagBeatsIt() throws {
        let app = try TempApp(files: ["one/Procfile": "one: a\n", "one/.env": "WHICH=one\n", "two/Procfile": "two: b\n", "two/.env": "WHICH=two\n"])
        defer { app.remove() }
        let byVariable = try json(["check", "--json"], in: app.path, ["PAAS_ROOT": "one"])
        #expect(byVariable["procfile"] as? String == "one/Procfile")
        #expect(byVariable["env_files"] as? [String] == ["one/.env"])
        #expect((byVariable["root"] as? String)?.hasSuffix("/one") == true)
        let byFlag = try json(["check", "--json", "-d", "two"], in: app.path, ["PAAS_ROOT": "one"])
        #expect(try processes(byFlag).map { $0["name"] as? String } == ["two"])
        let config = try json(["config", "--json"], in: app.path, ["PAAS_ROOT": "two"])
        #expect(config["WHICH"] as? String == "two")
    }

    @Test func formationFromVariableAndFlagBeatsIt() throws {
        let app = try TempApp(procfile: "web: a\nworker: b\n")
        defer { app.remove() }
        #expect(try quantities(json(["check", "--json"], in: app.path, ["PAAS_FORMATION": "web=4"])) == ["web": 4, "worker": 1])
        #expect(try quantities(json(["check", "--json", "-m", "worker=2"], in: app.path, ["PAAS_FORMATION": "web=4"])) == ["web": 1, "worker": 2])
    }

    // The source of a value is named as the user gave it (decided before the fallbacks merge flags and variables).
    @Test func formationVariableErrorNamesTheVariable() throws {
        let app = try TempApp(procfile: "web: a\nworker: b\n")
        defer { app.remove() }
        expectConfigError(try paas(["check"], in: app.path, ["PAAS_FORMATION": "bogus=1"]), "PAAS_FORMATION: ", containing: "unknown process type \"bogus\"")
    }

    @Test func portFromVariableAndFlagBeatsIt() throws {
        let app = try TempApp(procfile: "web: a\n", files: [".env": "PORT=7000\n"])
        defer { app.remove() }
        #expect(try json(["check", "--json"], in: app.path, ["PAAS_PORT": "6100", "PORT": "8000"])["base_port"] as? Int == 6100)
        #expect(try json(["check", "--json", "-p", "6200"], in: app.path, ["PAAS_PORT": "6100"])["base_port"] as? Int == 6200)
    }

    @Test func timeoutFromVariableAndFlagBeatsIt() throws {
        let app = try TempApp(procfile: "web: a\n")
        defer { app.remove() }
        #expect(try json(["check", "--json"], in: app.path, ["PAAS_TIMEOUT": "2.5"])["timeout"] as? Double == 2.5)
        #expect(try json(["check", "--json", "-t", "0"], in: app.path, ["PAAS_TIMEOUT": "2.5"])["timeout"] as? Double == 0)
        expectConfigError(try paas(["check"], in: app.path, ["PAAS_TIMEOUT": "soon"]), "PAAS_TIMEOUT: ", containing: "\"soon\"")
    }

    // MARK: configuration errors

    @Test func missingProcfile() throws {
        let app = try TempApp()
        defer { app.remove() }
        expectConfigError(try paas(["check"], in: app.path), "Procfile: ", containing: "no such file")
        expectConfigError(try paas(["check", "-f", "nope/Procfile"], in: app.path), "nope/Procfile: ", containing: "no such file")
        expectConfigError(try paas(["check", "-d", "nodir"], in: app.path), "nodir/Procfile: ", containing: "no such file")
    }

    @Test func procfileThatIsADirectory() throws {
        let app = try TempApp(files: ["Procfile/keep": ""])
        defer { app.remove() }
        expectConfigError(try paas(["check"], in: app.path), "Procfile: ", containing: "is a directory")
    }

    @Test(.enabled(if: geteuid() != 0, "root reads files whatever their mode"))
    func unreadableProcfile() throws {
        let app = try TempApp(procfile: "web: a\n")
        defer { app.remove() }
        #expect(chmod(app.file("Procfile"), 0) == 0)
        expectConfigError(try paas(["check"], in: app.path), "Procfile: ", containing: "cannot be read")
    }

    @Test func invalidUTF8NamesItsLine() throws {
        let app = try TempApp()
        defer { app.remove() }
        try Data(Array("web: a\n# ok\nworker: b \u{E9}\n".utf8) + [0x62, 0xFF, 0x0A]).write(to: app.url.appendingPathComponent("Procfile"))
        expectConfigError(try paas(["check"], in: app.path), "Procfile:4: ", containing: "UTF-8")
    }

    @Test(arguments: [
        ("web: a\n  worker: b\n", "Procfile:2: ", "indented"),
        ("web: a\n\n# c\nworker: b\nweb: c\n", "Procfile:5: ", "duplicate process name \"web\""),
        ("", "Procfile: ", "no processes defined"),
        ("# only a comment\n\n", "Procfile: ", "no processes defined"),
        ("web app: x\n", "Procfile:1: ", "invalid process name"),
        ("web:\n", "Procfile:1: ", "empty command"),
    ])
    func badProcfile(text: String, prefix: String, fragment: String) throws {
        let app = try TempApp(procfile: text)
        defer { app.remove() }
        expectConfigError(try paas(["check"], in: app.path), prefix, containing: fragment)
    }

    @Test func badEnvLine() throws {
        let app = try TempApp(procfile: "web: a\n", files: [".env": "A=1\n# c\nB C=2\n", "x.env": "OK=1\nK=\"unterminated\n"])
        defer { app.remove() }
        expectConfigError(try paas(["check"], in: app.path), ".env:3: ", containing: "B C")
        expectConfigError(try paas(["config"], in: app.path), ".env:3: ")
        expectConfigError(try paas(["config", "--json", "-e", "x.env"], in: app.path), "x.env:2: ")
    }

    @Test(arguments: [
        (["-m", "nosuch=1"], "-m/--formation: ", "unknown process type \"nosuch\""),
        (["-m", "release=2"], "-m/--formation: ", "cannot be scaled"),
        (["-m", "web=-1"], "-m/--formation: ", "count \"-1\""),
        (["-m", "web=two"], "-m/--formation: ", "count \"two\""),
        (["-m", "web"], "-m/--formation: ", "TYPE=COUNT"),
        (["-t", "abc"], "-t/--timeout: ", "\"abc\""),
        (["--timeout=-1"], "-t/--timeout: ", "\"-1\""),
        (["-t", "86401"], "-t/--timeout: ", "\"86401\""),
        (["-p", "abc"], "-p/--port: ", "\"abc\""),
        (["-p", "0"], "-p/--port: ", "\"0\""),
        (["-p", "65536"], "-p/--port: ", "\"65536\""),
        (["--port=-5"], "-p/--port: ", "\"-5\""),
    ])
    func badOptions(args: [String], prefix: String, fragment: String) throws {
        let app = try TempApp(procfile: "release: m\nweb: a\n")
        defer { app.remove() }
        expectConfigError(try paas(["check"] + args, in: app.path), prefix, containing: fragment)
    }

    @Test func badPortFromEnvFileOrEnvironment() throws {
        let app = try TempApp(procfile: "web: a\n", files: ["p.env": "PORT=x\n"])
        defer { app.remove() }
        expectConfigError(try paas(["check", "-e", "p.env"], in: app.path), "PORT (env file): ", containing: "\"x\"")
        expectConfigError(try paas(["check"], in: app.path, ["PORT": "99999"]), "PORT (environment): ", containing: "\"99999\"")
    }

    @Test(arguments: [
        (["-m", "worker=1"], "-m/--formation: "),
        (["-t", "x"], "-t/--timeout: "),
        (["-e", "missing.env"], "missing.env: "),
        (["--log-format", "xml"], "--log-format: "),
        (["-f", "Bad"], "Bad:2: "),
    ])
    func upWithAConfigErrorStartsNothing(args: [String], prefix: String) throws {
        let app = try TempApp(procfile: "web: touch started; sleep 30\n", files: ["Bad": "web: touch started\n  x\n"])
        defer { app.remove() }
        let r = try paas(["up"] + args, in: app.path)
        expectConfigError(r, prefix)
        #expect(!FileManager.default.fileExists(atPath: app.file("started")))
    }

    @Test func upWithAnUnknownTypeArgumentStartsNothing() throws {
        let app = try TempApp(procfile: "web: touch started; sleep 30\n")
        defer { app.remove() }
        let r = try paas(["up", "wbe"], in: app.path)
        #expect(r.status == 78, "stderr: \(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == "paas: Procfile: no process type \"wbe\"; expected one of: web\n")
        #expect(!FileManager.default.fileExists(atPath: app.file("started")))
    }

    // MARK: hostile configuration input (issue 8)

    @Test func deeplyNestedEnvValueIsAConfigurationError() throws {
        // 10,000 levels crashed paas with SIGSEGV (fault 13); any depth now gets FILE:LINE and 78.
        let depth = 100_000
        let value = (0..<depth).map { "${A\($0):-" }.joined() + "x" + String(repeating: "}", count: depth)
        let app = try TempApp(procfile: "web: a\n", files: [".env": "A=1\n# deep\nK=\(value)\n"])
        defer { app.remove() }
        expectConfigError(try paas(["check"], in: app.path), ".env:3: ", containing: "nested more than 64 levels deep; expected at most 64")
        expectConfigError(try paas(["config"], in: app.path), ".env:3: ")
    }

    @Test(arguments: [
        (["-f", "/dev/zero"], "/dev/zero: ", "is a character device, not a regular file"),
        (["-e", "/dev/zero"], "/dev/zero: ", "is a character device, not a regular file"),
        (["-e", "env.fifo"], "env.fifo: ", "is a FIFO, not a regular file"),
        (["-f", "Procfile.fifo"], "Procfile.fifo: ", "is a FIFO, not a regular file"),
    ])
    func nonRegularFilesAreRefused(args: [String], prefix: String, fragment: String) throws {
        // /dev/zero was read until memory ran out; a FIFO hung forever (fault 24).
        let app = try TempApp(procfile: "web: touch started; sleep 30\n")
        defer { app.remove() }
        #expect(mkfifo(app.file("env.fifo"), 0o600) == 0)
        #expect(mkfifo(app.file("Procfile.fifo"), 0o600) == 0)
        expectConfigError(try paas(["check"] + args, in: app.path), prefix, containing: fragment)
        expectConfigError(try paas(["up"] + args, in: app.path), prefix, containing: fragment)
        #expect(!FileManager.default.fileExists(atPath: app.file("started")))
    }

    @Test func appJSONLinkedToDevZeroIsRefused() throws {
        let app = try TempApp(procfile: "web: a\n")
        defer { app.remove() }
        try FileManager.default.createSymbolicLink(atPath: app.file("app.json"), withDestinationPath: "/dev/zero")
        expectConfigError(try paas(["check"], in: app.path), "app.json: ", containing: "is a character device, not a regular file; expected an app.json file")
    }

    @Test func oversizedFilesAreRefused() throws {
        let app = try TempApp(procfile: "web: a\n")
        defer { app.remove() }
        for name in ["big.env", "app.json"] {
            #expect(FileManager.default.createFile(atPath: app.file(name), contents: nil))
            let handle = try #require(FileHandle(forWritingAtPath: app.file(name)))
            try handle.truncate(atOffset: 16 << 20 + 1)
            try handle.close()
        }
        expectConfigError(try paas(["check", "-e", "big.env"], in: app.path), "big.env: ", containing: "is larger than 16 MiB; expected a file of at most 16 MiB")
        expectConfigError(try paas(["check", "-e", "/dev/null"], in: app.path), "/dev/null: ", containing: "not a regular file")
        expectConfigError(try paas(["check"], in: app.path), "app.json: ", containing: "is larger than 16 MiB")
    }

    @Test(arguments: [
        ("Procfile", "Procfile: ", "is a symbolic link to a file that does not exist"),
        (".env", ".env: ", "is a symbolic link to a file that does not exist"),
        ("app.json", "app.json: ", "is a symbolic link to a file that does not exist"),
    ])
    func danglingLinksAreErrorsNotAbsentFiles(name: String, prefix: String, fragment: String) throws {
        // A dangling default .env or app.json was silently taken as absent (fault 25).
        let app = try TempApp(files: name == "Procfile" ? [:] : ["Procfile": "web: a\n"])
        defer { app.remove() }
        try FileManager.default.createSymbolicLink(atPath: app.file(name), withDestinationPath: "gone/\(name)")
        expectConfigError(try paas(["check"], in: app.path), prefix, containing: fragment)
    }

    @Test(arguments: ["Procfile", ".env", "app.json"])
    func linkLoopsAreErrors(name: String) throws {
        let app = try TempApp(files: name == "Procfile" ? [:] : ["Procfile": "web: a\n"])
        defer { app.remove() }
        try FileManager.default.createSymbolicLink(atPath: app.file(name), withDestinationPath: name + ".2")
        try FileManager.default.createSymbolicLink(atPath: app.file(name + ".2"), withDestinationPath: name)
        expectConfigError(try paas(["check"], in: app.path), "\(name): ", containing: "a loop of symbolic links (ELOOP)")
    }

    @Test(arguments: [
        // 106036 was checked as port 40500; above 2^31 `up` trapped (faults 2 and 15).
        (#"{"healthchecks": {"web": [{"port": 106036}]}}"#, "app.json:1: ", "healthchecks.web[0].port: 106036 is out of range; expected a whole number from 1 to 65535"),
        ("{\n\"healthchecks\": {\"web\": [\n{\"port\": 4294967297}]}}", "app.json:3: ", "healthchecks.web[0].port: 4294967297 is out of range"),
        ("{\n\"healthchecks\": {\"web\": [\n{\"port\": 0}]}}", "app.json:3: ", "expected a whole number from 1 to 65535"),
        // "wait": 0 spun the loop (fault 25): refused, with the minimum.
        ("{\"healthchecks\": {\"web\": [\n  {\"type\": \"readiness\",\n   \"wait\": 0}]}}", "app.json:3: ", "healthchecks.web[0].wait: 0 is out of range; expected seconds from 0.05 to a year"),
        (#"{"healthchecks": {"web": [{"attempts": 1e30}]}}"#, "app.json:1: ", "attempts: 1e+30 is out of range; expected a whole number from 1 to 100000"),
        ("{\n\"formation\": {\"web\": {\"quantity\": 9223372036854775807}}}", "app.json:2: ", "formation.web.quantity: 9223372036854775807 is out of range; expected a whole number from 0 to 65535"),
        ("{\"paas\": {\"processes\": {\"web\": {\n\"breaker\": {\"cooldown\": -1}}}}}", "app.json:2: ", "paas.processes.web.breaker.cooldown: -1 is out of range"),
        ("{\"paas\": {\"processes\": {\"web\": {\"min_uptime\": 1e999}}}}", "app.json:1: ", "number \"1e999\" is out of range; expected a finite number"),
        // A key given twice is an error at its second line.
        ("{\n  \"formation\": {\"web\": {\"quantity\": 1}},\n  \"formation\": {\"web\": {\"quantity\": 2}}\n}\n", "app.json:3: ", "duplicate key \"formation\"; expected each key once in an object"),
        (String(repeating: "[", count: 100_000), "app.json:1: ", "nested more than 64 levels deep"),
    ])
    func appJSONNumbersAreRangeChecked(text: String, prefix: String, fragment: String) throws {
        let app = try TempApp(procfile: "web: touch started; sleep 30\n", files: ["app.json": text])
        defer { app.remove() }
        expectConfigError(try paas(["check"], in: app.path), prefix, containing: fragment)
        expectConfigError(try paas(["up"], in: app.path), prefix, containing: fragment)
        #expect(!FileManager.default.fileExists(atPath: app.file("started")))
    }

    @Test(arguments: [
        (["-m", "web=9223372036854775807"], "-m/--formation: ", "web.9223372036854775807 would get a port far above 65535"),
        (["-m", "all=9223372036854775807"], "-m/--formation: ", "would get a port far above 65535"),
        (["-m", "worker=9223372036854775807"], "-m/--formation: ", "worker.9223372036854775807 would get a port far above 65535"),
        (["-m", "worker=65536", "-p", "1"], "-m/--formation: ", "worker.65536 would get port 65636"),
        (["-m", "web=99999999999999999999"], "-m/--formation: ", "is not a whole number"),
    ])
    func hugeCountsAreConfigurationErrors(args: [String], prefix: String, fragment: String) throws {
        // `check -m w=9223372036854775807` trapped in the port plan (fault 15).
        let app = try TempApp(procfile: "web: a\nworker: b\n")
        defer { app.remove() }
        expectConfigError(try paas(["check"] + args, in: app.path), prefix, containing: fragment)
    }

    @Test func scaleToAHugeCountIsRefusedAndUpKeepsRunning() throws {
        // The port plan's arithmetic trapped on `paas scale worker=9223372036854775807` and
        // took `paas up` down with it (fault 2); now it is refused and the run goes on.
        let app = try TempApp(procfile: "worker: exec sleep 1000\nclock: exec sleep 1000\n")
        defer { app.remove() }
        let up = try Running(["up", "--no-color", "-p", "\(Ports.base())", "-t", "2"], in: app.path, environment: Self.cleared)
        #expect(up.waitForOutput("clock.1 started"), "stdout: \(up.stdout)")
        for spec in ["clock=9223372036854775807", "worker=9223372036854775807", "all=9223372036854775807"] {
            let r = try paas(["scale", spec], in: app.path)
            #expect(r.status == 1, "stderr: \(r.stderr)")
            // Refused by the request's range check (0-65535), before the port plan sees it.
            #expect(r.stderr.contains("65535"), "stderr: \(r.stderr)")
        }
        let ps = try paas(["ps"], in: app.path)
        #expect(ps.status == 0 && ps.stdout.contains("worker.1") && ps.stdout.contains("clock.1"), "\(ps)")
        up.signal(SIGTERM)
        #expect(up.waitForExit() == 0, "stderr: \(up.stderr)")
    }

    /// Runs `paas ARGS` with its output to /dev/null and returns its exit status and peak RSS
    /// in KiB, from `wait4` (Foundation's Process reaps without reporting usage).
    private func peakRSS(_ args: [String]) throws -> (status: Int32, kib: Int) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var argv: [UnsafeMutablePointer<CChar>?] = ([Binaries.paas] + args).map { strdup($0) }
        argv.append(nil)
        defer { argv.forEach { free($0) } }
        var envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin")]
        envp.append(nil)
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, Binaries.paas, &actions, nil, argv, envp)
        guard rc == 0 else { throw FixtureError(message: "posix_spawn failed: \(rc)") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let exited = status & 0x7F == 0
        return (exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), usage.ru_maxrss)
    }

    @Test func largeAppJSONAndEnvFilesStayLinear() throws {
        // A 60 KB key over a 10,000-element array took 600 MB (the path of every element was
        // stored), 1.6 GB for a 120 KB file; 100,000 .env keys took 14 s (fault 24).
        let key = String(repeating: "k", count: 60_000)
        let array = Array(repeating: "0", count: 10_000).joined(separator: ",")
        let env = (0..<100_000).map { "K\($0)=${K\(max(0, $0 - 1)):-x}\n" }.joined()
        let app = try TempApp(procfile: "web: a\n", files: ["app.json": "{\"\(key)\": [\(array)]}\n", ".env": env])
        defer { app.remove() }
        let start = Date()
        let r = try peakRSS(["check", "-f", app.file("Procfile")])
        let seconds = Date().timeIntervalSince(start)
        #expect(r.status == 0)
        #expect(r.kib < 200_000, "peak RSS \(r.kib) KiB")
        #expect(seconds < 10, "\(seconds) s")
    }

    // MARK: Procfile.sample

    @Test func procfileSampleChecksWithEveryType() throws {
        let sample = Binaries.packageRoot.appendingPathComponent("Procfile.sample").path
        let app = try TempApp()
        defer { app.remove() }
        let report = try json(["check", "--json", "-f", sample], in: app.path)
        let processes = try processes(report)
        #expect(processes.map { $0["name"] as? String } == ["web", "worker", "api", "clock", "mailer-2", "release"])
        #expect(processes.map { $0["release"] as? Bool } == [false, false, false, false, false, true])
        #expect(processes.map { $0["ports"] as? [Int] } == [[5000], [5100], [5200], [5300], [5400], []])
        let commands = processes.compactMap { $0["command"] as? String }
        #expect(commands[1] == "bundle exec sidekiq -q critical:3 -q default:1 -q mailers:1")
        #expect(commands[2] == "./bin/api --listen 127.0.0.1:${PORT:-5000} --name \"api #1\"")
        #expect(commands[3] == "TZ=UTC LOG_LEVEL=info ./bin/clock --every 60")
        #expect(commands[4] == "./bin/mailer --queue mail_2")
        let text = try paas(["check", "-f", sample], in: app.path)
        #expect(text.status == 0, "stderr: \(text.stderr)")
        #expect(text.stderr.isEmpty)
        #expect(text.stdout.hasPrefix("\(sample): ok, 5 process types and a release phase\n"))
    }
}
