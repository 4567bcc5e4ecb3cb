import Testing

@testable import PaasCore
@testable import PaasConfig

/// app.json's numbers are range-checked with their line (issue 8, faults 2, 15 and 25), keys
/// are unique, and a file's error lines are found without storing a path per value (fault 24).
@Suite("app.json values")
struct AppManifestTests {
    /// A health check of `web` whose last member (`member`) is on line 4.
    static func check(_ member: String) -> String {
        "{\n  \"healthchecks\": {\n    \"web\": [{\"type\": \"readiness\",\n      \(member)}]\n  }\n}\n"
    }

    /// `paas.processes.web` with `member` on line 4.
    static func settings(_ member: String) -> String {
        "{\n  \"paas\": {\"processes\": {\n    \"web\": {\n      \(member)\n    }\n  }}\n}\n"
    }

    /// `formation.web.quantity` on line 3.
    static func quantity(_ value: String) -> String {
        "{\n  \"formation\": {\n    \"web\": {\"quantity\": \(value)}\n  }\n}\n"
    }

    static func parse(_ text: String) throws(ConfigError) -> AppManifest {
        try AppManifest.parse(Array(text.utf8), file: "app.json", types: ["web", "worker"])
    }

    static let refused: [(String, Int, String)] = [
        // Ports: 106036 was checked as 40500 (htons), above 2^31 `Int32(port)` trapped.
        (check(#""port": 106036"#), 4, "healthchecks.web[0].port: 106036 is out of range; expected a whole number from 1 to 65535"),
        (check(#""port": 2147483649"#), 4, "healthchecks.web[0].port: 2147483649 is out of range"),
        (check(#""port": 9223372036854775807"#), 4, "expected a whole number from 1 to 65535"),
        (check(#""port": 65536"#), 4, "expected a whole number from 1 to 65535"),
        (check(#""port": 0"#), 4, "expected a whole number from 1 to 65535"),
        (check(#""port": -80"#), 4, "expected a whole number from 1 to 65535"),
        (check(#""port": 80.5"#), 4, "healthchecks.web[0].port: 80.5 is not a whole number; expected a whole number from 1 to 65535"),
        (check(#""port": "80""#), 4, "healthchecks.web[0].port: expected a whole number from 1 to 65535"),
        // A wait of 0 ran the check back to back (33 % CPU): the minimum is in the message.
        (check(#""wait": 0"#), 4, "healthchecks.web[0].wait: 0 is out of range; expected seconds from 0.05 to a year"),
        (check(#""wait": 0.01"#), 4, "expected seconds from 0.05 to a year"),
        (check(#""wait": -1"#), 4, "expected seconds from 0.05"),
        (check(#""timeout": -1"#), 4, "healthchecks.web[0].timeout: -1 is out of range; expected seconds from 0 to a year"),
        (check(#""timeout": 0"#), 4, "healthchecks.web[0].timeout: expected more than 0 seconds"),
        (check(#""timeout": 31536001"#), 4, "expected seconds from 0 to a year"),
        (check(#""timeout": 1e300"#), 4, "expected seconds from 0 to a year"),
        (check(#""timeout": 1e400"#), 4, "invalid JSON at column 18: number \"1e400\" is out of range; expected a finite number"),
        (check(#""initialDelay": -0.5"#), 4, "healthchecks.web[0].initialDelay: -0.5 is out of range"),
        (check(#""attempts": 0"#), 4, "healthchecks.web[0].attempts: 0 is out of range; expected a whole number from 1 to 100000"),
        (check(#""attempts": 100001"#), 4, "expected a whole number from 1 to 100000"),
        (check(#""attempts": 1e18"#), 4, "expected a whole number from 1 to 100000"),
        (check(#""attempts": 9223372036854775808"#), 4, "expected a whole number from 1 to 100000"),
        // Quantities: more instances than ports can never run.
        (quantity("-1"), 3, "formation.web.quantity: -1 is out of range; expected a whole number from 0 to 65535"),
        (quantity("65536"), 3, "expected a whole number from 0 to 65535"),
        (quantity("9223372036854775807"), 3, "expected a whole number from 0 to 65535"),
        (quantity("1.5"), 3, "formation.web.quantity: 1.5 is not a whole number; expected a whole number from 0 to 65535"),
        // Restart settings.
        (settings(#""min_uptime": -1"#), 4, "paas.processes.web.min_uptime: -1 is out of range; expected seconds from 0 to a year"),
        (settings(#""boot_timeout": 1e12"#), 4, "paas.processes.web.boot_timeout: 1000000000000 is out of range"),
        (settings(#""backoff": {"initial": -1}"#), 4, "paas.processes.web.backoff.initial: -1 is out of range"),
        (settings(#""backoff": {"max": 1e10}"#), 4, "paas.processes.web.backoff.max: 10000000000 is out of range"),
        (settings(#""backoff": {"reset_after": -5}"#), 4, "paas.processes.web.backoff.reset_after: -5 is out of range"),
        (settings(#""backoff": {"jitter": 2}"#), 4, "paas.processes.web.backoff.jitter: expected a fraction from 0 to 1"),
        (settings(#""backoff": {"jitter": -0.1}"#), 4, "expected a fraction from 0 to 1"),
        (settings(#""backoff": {"initial": 0}"#), 4, "paas.processes.web.backoff.initial: expected more than 0 and at most backoff.max"),
        (settings(#""breaker": {"failures": 0}"#), 4, "paas.processes.web.breaker.failures: 0 is out of range; expected a whole number from 1 to 100000"),
        (settings(#""breaker": {"failures": 9223372036854775807}"#), 4, "expected a whole number from 1 to 100000"),
        (settings(#""breaker": {"window": -1}"#), 4, "paas.processes.web.breaker.window: -1 is out of range"),
        (settings(#""breaker": {"cooldown": 1e9}"#), 4, "paas.processes.web.breaker.cooldown: 1000000000 is out of range"),
        (settings(#""breaker": {"max_cooldown": -1}"#), 4, "paas.processes.web.breaker.max_cooldown: -1 is out of range"),
        // A key given twice is an error at its second line.
        ("{\n  \"formation\": {\"web\": {\"quantity\": 1}},\n  \"formation\": {}\n}", 3, #"invalid JSON at column 3: duplicate key "formation"; expected each key once in an object"#),
        (settings("\"restart\": \"always\",\n      \"restart\": \"no\""), 5, #"duplicate key "restart""#),
        // Nesting is bounded with an error, not a stack overflow.
        ("{\"name\": " + String(repeating: "[", count: 100_000), 1, "invalid JSON at column 73: nested more than 64 levels deep"),
    ]

    @Test("numbers out of range are refused with their line", arguments: refused)
    func refusedValues(text: String, line: Int, message: String) {
        let error = #expect(throws: ConfigError.self) { try Self.parse(text) }
        #expect(error?.line == line, "\(String(describing: error))")
        #expect(error?.description.hasPrefix("app.json:\(line): ") == true)
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }

    @Test("values at the edges of their ranges are read")
    func edges() throws {
        let m = try Self.parse(#"""
            {"formation": {"web": {"quantity": 65535}, "worker": {"quantity": 0}},
             "healthchecks": {"web": [{"port": 1, "wait": 0.05, "attempts": 100000, "timeout": 31536000},
                                      {"port": 65535, "wait": 31536000, "attempts": 1, "timeout": 0.001}]},
             "paas": {"processes": {"web": {"breaker": {"failures": 100000, "window": 0}, "backoff": {"initial": 0.001, "jitter": 1}}}}}
            """#)
        #expect(m.formation == ["web": 65535, "worker": 0])
        let checks = try #require(m.healthchecks["web"])
        #expect(checks.map(\.port) == [1, 65535])
        #expect(checks.map(\.wait) == [50_000_000, 31_536_000 * 1_000_000_000])
        #expect(checks.map(\.attempts) == [100_000, 1])
        #expect(m.processes["web"]?.breakerFailures == 100_000)
    }

    @Test("a leading BOM is skipped, as in the other files")
    func byteOrderMark() throws {
        let m = try AppManifest.parse([0xEF, 0xBB, 0xBF] + Array(#"{"formation": {"web": {"quantity": 3}}}"#.utf8), file: "app.json", types: ["web"])
        #expect(m.formation["web"] == 3)
    }

    @Test("an error deep in a large file names its line")
    func errorLineInALargeFile() {
        let filler = (0..<50_000).map { "    \"k\($0)\": [1, 2, 3]" }.joined(separator: ",\n")
        let text = "{\n  \"scripts\": {\n\(filler)\n  },\n  \"healthchecks\": {\"web\": [{\"port\": 70000}]}\n}\n"
        let error = #expect(throws: ConfigError.self) { try Self.parse(text) }
        #expect(error?.line == 50_004, "\(String(describing: error))")
        #expect(error?.message.hasPrefix("healthchecks.web[0].port: 70000 is out of range") == true)
    }
}
