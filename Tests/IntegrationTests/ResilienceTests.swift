import Foundation
import Testing

/// app.json restart policies, backoff and the circuit breaker, with the real binary.
/// Short intervals are configured; the defaults (1 s, 60 s, 5 min) are tested as pure values.
@Suite(.serialized)
struct RestartIntegrationTests {
    static let fast = #"{"min_uptime": 1, "backoff": {"initial": 0.05, "max": 0.2}, "breaker": {"failures": 3, "window": 10, "cooldown": 60}}"#

    static func ps(_ app: TempApp) throws -> [[String: Any]] {
        let r = try runPaas(["ps", "--json"], in: app.path)
        let rows = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]
        return try #require(rows, "paas ps --json: status \(r.status.map(String.init) ?? "none"), stdout \(r.stdout.debugDescription), stderr \(r.stderr.debugDescription)")
    }

    static func row(_ rows: [[String: Any]], _ name: String) -> [String: Any]? {
        rows.first { $0["name"] as? String == name }
    }

    @Test func aCrashLoopOpensItsBreakerWhileTheOthersKeepServing() throws {
        let listener = try Binaries.fixture("listener")
        let base = Ports.base()
        let settings = Self.fast.replacingOccurrences(of: "{\"min_uptime\"", with: "{\"restart\": \"always\", \"min_uptime\"")
        let app = try TempApp(procfile: "web: exec \(listener)\ncrasher: echo crashing; exit 3\n",
                              files: ["app.json": "{\"paas\": {\"processes\": {\"crasher\": \(settings), \"web\": {\"min_uptime\": 0.1}}}}\n"])
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
        // The one-line status names both.
        #expect(paas.waitForOutput("web.1 is ready"))
        let text = try runPaas(["ps"], in: app.path)
        #expect(text.stdout.contains("status: web 1/1 ready, crasher breaker open (retry in 60s)") || text.stdout.contains("status: web 1/1 ready, crasher breaker open (retry in 59s)"), "\(text.stdout)")
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
        #expect(paas.waitForOutput("flaky circuit breaker closed: flaky.1 stayed up and is ready"))
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

    @Test func whenOnlyFinishedTasksAreLeftPaasEnds() throws {
        let app = try TempApp(procfile: "one: echo one done\ntwo: sleep 0.2; echo two done\n",
                              files: ["app.json": #"{"paas": {"processes": {"one": {"allow_exit": true}, "two": {"allow_exit": true}}}}"#])
        defer { app.remove() }
        let r = try runPaas(["up", "--no-color"], in: app.path)
        #expect(r.status == 0)
        #expect(r.stdout.contains("one done") && r.stdout.contains("two done"))
        #expect(r.stdout.contains("every process has finished and none will restart"))
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
        // paas stop cancels a pending restart: the instance stays down.
        let stop = try runPaas(["stop", "flaky.1"], in: app.path)
        #expect(stop.status == 0 && stop.stdout.contains("stopping flaky.1"))
        #expect(Self.row(try Self.ps(app), "flaky.1")?["state"] as? String == "stopped")
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

/// Health checks, readiness and start order with the real binary.
@Suite(.serialized)
struct HealthIntegrationTests {
    static func ps(_ app: TempApp) -> [[String: Any]] {
        guard let r = try? runPaas(["ps", "--json"], in: app.path) else { return [] }
        return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]) ?? []
    }

    static func row(_ app: TempApp, _ name: String) -> [String: Any]? {
        ps(app).first { $0["name"] as? String == name }
    }

    @Test func aFailingLivenessCheckRestartsItsInstance() throws {
        let app = try TempApp(procfile: "worker: echo up; exec sleep 1000\n", files: ["app.json": #"""
        {"healthchecks": {"worker": [{"type": "liveness", "command": ["sh", "-c", "test ! -f sick"], "wait": 0.1, "attempts": 2, "timeout": 2}]},
         "paas": {"processes": {"worker": {"min_uptime": 0.2}}}}
        """#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("worker.1 is ready"))
        let before = try #require(Self.row(app, "worker.1")?["pid"] as? Int)
        #expect((Self.row(app, "worker.1")?["check"] as? String)?.contains("liveness") == true)
        try app.write("sick", "")
        #expect(paas.waitForOutput("worker.1 failed its liveness check 2 times"))
        try FileManager.default.removeItem(atPath: app.file("sick"))
        var after = 0
        #expect(eventually { after = Self.row(app, "worker.1")?["pid"] as? Int ?? 0; return after != 0 && after != before })
        #expect(Self.row(app, "worker.1")?["restarts"] as? Int == 1)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func aFailingReadinessCheckMarksUnreadyThenReadyAgain() throws {
        let app = try TempApp(procfile: "api: exec sleep 1000\n", files: ["app.json": #"""
        {"healthchecks": {"api": [{"type": "readiness", "command": ["sh", "-c", "test ! -f unready"], "wait": 0.1, "attempts": 1}]},
         "paas": {"processes": {"api": {"min_uptime": 0.1}}}}
        """#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("api.1 is ready"))
        try app.write("unready", "")
        #expect(paas.waitForOutput("api.1 unready: readiness check failed"))
        #expect(eventually { Self.row(app, "api.1")?["ready"] as? Bool == false })
        try FileManager.default.removeItem(atPath: app.file("unready"))
        #expect(eventually { paas.stdout.components(separatedBy: "api.1 is ready").count - 1 == 2 })
        #expect(paas.process.isRunning)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func aStartupCheckThatNeverPassesIsAFailedStartNeverReady() throws {
        let app = try TempApp(procfile: "api: echo up; exec sleep 1000\n", files: ["app.json": #"""
        {"healthchecks": {"api": [{"type": "startup", "command": ["false"], "wait": 0.05, "attempts": 3}]}}
        """#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("api.1 failed to start: startup check failed 3 times"))
        // The default policy stops the formation with the failed-start status; it was never ready.
        #expect(paas.waitForExit() == 71)
        #expect(!paas.stdout.contains("api.1 is ready"))
    }

    @Test func aTimedOutCheckHasFailed() throws {
        let app = try TempApp(procfile: "api: exec sleep 1000\n", files: ["app.json": #"""
        {"healthchecks": {"api": [{"type": "startup", "command": ["sleep", "5"], "timeout": 0.2, "wait": 0.05, "attempts": 2}]}}
        """#])
        defer { app.remove() }
        let r = try runPaas(["up", "--no-color"], in: app.path)
        #expect(r.stdout.contains("api.1 failed to start: startup check failed 2 times (timed out after 0.2s)"), "\(r.stdout)")
        #expect(!r.stdout.contains("is ready"))
    }

    @Test func httpChecksAndStartOrder() throws {
        let base = Ports.base()
        let server = """
        import http.server, os, time
        time.sleep(float(os.environ.get("DELAY", "0")))
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"all good" if self.path == "/health" else b"no"
                self.send_response(200 if self.path == "/health" else 404)
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a): pass
        http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
        """
        let app = try TempApp(procfile: "web: DELAY=0.7 exec python3 server.py\nworker: echo worker up; exec sleep 1000\n", files: [
            "server.py": server,
            "app.json": #"""
            {"healthchecks": {"web": [{"type": "startup", "path": "/health", "content": "good", "wait": 0.1, "attempts": 50, "timeout": 1}]},
             "paas": {"processes": {"worker": {"after": ["web"], "min_uptime": 0.1}}}}
            """#,
        ])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-p", "\(base)"], in: app.path)
        #expect(paas.waitForOutput("worker waits for web to be ready"))
        #expect(paas.waitForOutput("worker up"))
        let out = paas.stdout
        let ready = try #require(out.range(of: "web.1 is ready"))
        let workerStart = try #require(out.range(of: "worker.1 started"))
        #expect(ready.lowerBound < workerStart.lowerBound)
        #expect(eventually { (Self.row(app, "web.1")?["check"] as? String)?.contains("startup GET /health: ok (HTTP 200)") == true })
        #expect(Self.row(app, "web.1")?["ready"] as? Bool == true)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func aWebThatNeverListensFailsToStartAfterTheBootTimeout() throws {
        let app = try TempApp(procfile: "web: echo not listening; exec sleep 1000\n",
                              files: ["app.json": #"{"paas": {"processes": {"web": {"boot_timeout": 0.5}}}}"#])
        defer { app.remove() }
        let r = try runPaas(["up", "--no-color", "-p", "\(Ports.base())"], in: app.path)
        #expect(r.stdout.contains("web.1 failed to start: port accepts within the boot timeout failed"), "\(r.stdout)")
        #expect(r.status == 71)
    }

    @Test(arguments: [
        (#"{"paas": {"processes": {"a": {"after": ["b"]}, "b": {"after": ["a"]}}}}"#, "start order has a cycle"),
        (#"{"paas": {"processes": {"a": {"after": ["nope"]}}}}"#, "no process type \"nope\""),
        (#"{"healthchecks": {"a": [{"type": "sometimes"}]}}"#, "healthchecks.a[0].type: expected"),
        (#"{"healthchecks": {"a": [{"path": "/x", "command": ["true"]}]}}"#, "a path or a command, not both"),
    ])
    func badOrderOrChecksAreConfigurationErrors(text: String, message: String) throws {
        let app = try TempApp(procfile: "a: true\nb: true\n", files: ["app.json": text])
        defer { app.remove() }
        let r = try runPaas(["check"], in: app.path)
        #expect(r.status == 78 && r.stderr.contains(message), "\(r.stderr)")
    }
}
