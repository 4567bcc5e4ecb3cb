import Foundation
import Testing

/// app.json restart policies, backoff and the circuit breaker, with the real binary.
/// Short intervals are configured; the defaults (1 s, 60 s, 5 min) are tested as pure values.
@Suite(.serialized)
struct RestartIntegrationTests {
    static let fast = #"{"min_uptime": 1, "backoff": {"initial": 0.05, "max": 0.2}, "breaker": {"failures": 3, "window": 10, "cooldown": 60}}"#

    static func ps(_ app: TempApp) throws -> [[String: Any]] {
        let r = try runPaas(["ps", "--json"], in: app.path)
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
    }

    static func row(_ rows: [[String: Any]], _ name: String) -> [String: Any]? {
        rows.first { $0["name"] as? String == name }
    }

    @Test func aCrashLoopOpensItsBreakerWhileTheOthersKeepServing() throws {
        let listener = try Binaries.fixture("listener")
        let base = Ports.base()
        let settings = Self.fast.replacingOccurrences(of: "{\"min_uptime\"", with: "{\"restart\": \"always\", \"min_uptime\"")
        let app = try TempApp(procfile: "web: exec \(listener)\ncrasher: echo crashing; exit 3\n",
                              files: ["app.json": "{\"paas\": {\"processes\": {\"crasher\": \(settings)}}}\n"])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-p", "\(base)"], in: app.path)
        #expect(eventually { portAccepts(base) })
        let webPID = try #require(Self.row(try Self.ps(app), "web.1")?["pid"] as? Int)
        #expect(paas.waitForOutput("crasher crashed: circuit breaker open"))
        #expect(paas.stdout.components(separatedBy: "crashing").count - 1 == 3)
        #expect(paas.stdout.contains("crasher.1 restarting in"))
        let rows = try Self.ps(app)
        #expect((Self.row(rows, "crasher.1")?["state"] as? String)?.hasPrefix("crashed (breaker open, retry in") == true)
        #expect(Self.row(rows, "crasher.1")?["restarts"] as? Int == 2)
        // The other type kept serving, same pid.
        #expect(Self.row(rows, "web.1")?["pid"] as? Int == webPID && portAccepts(base))
        #expect(paas.process.isRunning)
        // paas restart closes the breaker by hand and starts it again.
        #expect(try runPaas(["restart", "crasher"], in: app.path).status == 0)
        #expect(paas.waitForOutput("crasher circuit breaker closed by paas restart"))
        #expect(eventually { paas.stdout.components(separatedBy: "crashing").count - 1 >= 4 })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func aStableHalfOpenProbeClosesTheBreaker() throws {
        // Crashes on its first three starts, then stays up.
        let app = try TempApp(procfile: "web: exec sleep 1000\nflaky: n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo start $n; [ $n -ge 4 ] && exec sleep 1000; exit 1\n",
                              files: ["app.json": #"{"paas": {"processes": {"flaky": {"restart": "always", "min_uptime": 0.5, "backoff": {"initial": 0.05}, "breaker": {"failures": 3, "window": 10, "cooldown": 0.3}}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("flaky crashed: circuit breaker open"))
        #expect(paas.waitForOutput("flaky circuit breaker half-open: starting flaky.1 as a probe"))
        #expect(paas.waitForOutput("flaky circuit breaker closed: flaky.1 stayed up"))
        #expect(eventually { (Self.row((try? Self.ps(app)) ?? [], "flaky.1")?["state"] as? String) == "running" })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func whenEveryTypeIsOpenPaasExitsForTheSupervisorAbove() throws {
        let settings = Self.fast.replacingOccurrences(of: "{\"min_uptime\"", with: "{\"restart\": \"on-failure\", \"min_uptime\"")
        let app = try TempApp(procfile: "crasher: exit 1\n", files: ["app.json": "{\"paas\": {\"processes\": {\"crasher\": \(settings)}}}"])
        defer { app.remove() }
        let r = try runPaas(["up", "--no-color"], in: app.path)
        #expect(r.status == 70)
        #expect(r.stdout.contains("every process type's circuit breaker is open"))
    }

    @Test func anAllowedExitFinishesWithoutStoppingTheRest() throws {
        let app = try TempApp(procfile: "web: echo up; exec sleep 1000\nmigrate: echo migrated; exit 0\nfailing: exit 2\n",
                              files: ["app.json": #"{"name": "x", "paas": {"processes": {"migrate": {"allow_exit": true}, "failing": {"allow_exit": true}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("migrate.1 finished; the rest keep running"))
        #expect(paas.waitForOutput("failing.1 finished; the rest keep running"))
        #expect(paas.process.isRunning)
        let rows = try Self.ps(app)
        #expect(Self.row(rows, "web.1")?["state"] as? String == "running")
        #expect(Self.row(rows, "migrate.1")?["state"] as? String == "exited")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func backoffShowsInPsAndOnFailureLeavesACleanExitAlone() throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\nflaky: exit 1\nclean: exit 0\n",
                              files: ["app.json": #"{"paas": {"processes": {"flaky": {"restart": "on-failure", "backoff": {"initial": 30, "max": 60}}, "clean": {"restart": "on-failure"}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("flaky.1 restarting in"))
        #expect(paas.waitForOutput("clean.1 finished; the rest keep running"))
        let state = Self.row(try Self.ps(app), "flaky.1")?["state"] as? String
        #expect(state?.hasPrefix("backoff (restart in ") == true, "\(state ?? "nil")")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test(arguments: [
        (#"{"paas": {"processes": {"web": {"restart": "sometimes"}}}}"#, 1, #"paas.processes.web.restart: expected "no", "on-failure" or "always""#),
        ("{\n  \"paas\": {\n    \"processes\": {\n      \"web\": {\n        \"restart\": \"always\",\n        \"retries\": 3\n      }\n    }\n  }\n}\n", 6, "paas.processes.web.retries: unknown key"),
        ("{\n  \"paas\": {\"extra\": 1}\n}", 2, "paas.extra: unknown key"),
        ("{\n  \"formation\": {\"nope\": {\"quantity\": 1}}\n}", 2, "formation.nope: no process type \"nope\""),
        ("{\n\n  \"paas\": [1,\n}", 4, "invalid JSON"),
        (#"{"paas": {"processes": {"web": {"backoff": {"initial": "soon"}}}}}"#, 1, "paas.processes.web.backoff.initial: expected a number of seconds"),
    ])
    func appJSONErrorsNameTheLineAndPath(text: String, line: Int, message: String) throws {
        let app = try TempApp(procfile: "web: true\n", files: ["app.json": text])
        defer { app.remove() }
        let r = try runPaas(["check"], in: app.path)
        #expect(r.status == 78)
        #expect(r.stderr.hasPrefix("paas: app.json:\(line): ") && r.stderr.contains(message), "\(r.stderr)")
    }

    @Test func checkShowsEffectiveSettingsAndFormationDefaults() throws {
        let app = try TempApp(procfile: "web: true\nworker: true\n",
                              files: ["app.json": #"{"formation": {"worker": {"quantity": 3}}, "paas": {"processes": {"worker": {"restart": "always", "min_uptime": 2.5}}}}"#])
        defer { app.remove() }
        let r = try runPaas(["check", "--json"], in: app.path)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let processes = try #require(json["processes"] as? [[String: Any]])
        #expect(processes.map { $0["quantity"] as? Int } == [1, 3])
        let worker = try #require(processes[1]["settings"] as? [String: Any])
        #expect(worker["restart"] as? String == "always" && worker["min_uptime"] as? Double == 2.5)
        #expect((processes[0]["settings"] as? [String: Any])?["restart"] as? String == "no")
        #expect(json["app_json"] as? String == "app.json")
        // -m beats app.json.
        let flagged = try runPaas(["check", "--json", "-m", "worker=1"], in: app.path)
        #expect(flagged.stdout.contains("\"quantity\": 1") && !flagged.stdout.contains("\"quantity\": 3"))
        let text = try runPaas(["check"], in: app.path)
        #expect(text.stdout.contains("always") && text.stdout.contains("app.json: app.json"))
    }
}
