import Foundation
import Testing

/// `paas reload` and SIGHUP with the built binary: what changed is replaced, what did not
/// keeps its pid, a bad configuration changes nothing.
@Suite(.serialized)
struct ReloadTests {
    static func ps(_ app: TempApp) -> [[String: Any]] { psRows(app) }

    /// name → (pid, port, generation) of every running instance.
    static func table(_ app: TempApp) -> [String: (pid: Int, port: Int, generation: Int)] {
        var t: [String: (Int, Int, Int)] = [:]
        for row in ps(app) {
            guard let name = row["name"] as? String, let pid = row["pid"] as? Int else { continue }
            t[name] = (pid, row["port"] as? Int ?? 0, row["generation"] as? Int ?? 0)
        }
        return t
    }

    static let settings = #"{"paas": {"processes": {"worker": {"min_uptime": 0.2}}}}"#
    static let clockSettings = #"{"paas": {"processes": {"clock": {"min_uptime": 0.2, "singleton": true}}}}"#

    @Test func aChangedCommandReplacesOnlyThatType() throws {
        let listener = try Binaries.fixture("listener")
        let base = Ports.base()
        let app = try TempApp(procfile: "web: exec \(listener)\nworker: echo worker v1; exec sleep 1000\n", files: ["app.json": Self.settings])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "worker=2", "-p", "\(base)"], in: app.path, watching: ["worker v2"])
        #expect(eventually { portAccepts(base) && Self.table(app).count == 3 })
        let before = Self.table(app)
        try app.write("Procfile", "web: exec \(listener)\nworker: echo worker v2; exec sleep 1000\n")
        let r = try runPaas(["reload"], in: app.path)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("worker: command changed"))
        #expect(paas.waitForOutput("worker: every instance runs generation 2"))
        #expect(paas.count("worker v2") == 2)
        let after = Self.table(app)
        #expect(after["web.1"]?.pid == before["web.1"]?.pid && after["web.1"]?.generation == 1)
        for name in ["worker.1", "worker.2"] {
            #expect(after[name]?.pid != before[name]?.pid && after[name]?.generation == 2)
            #expect(after[name]?.port == before[name]?.port)
            #expect(before[name].map { !ProcTable.isAlive(Int32($0.pid)) } == true)
        }
        #expect(paas.stdout.contains("reloaded (generation 2)"))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func typesAddedAndRemovedAndPortsKept() throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\nold: exec sleep 1001\nworker: exec sleep 1002\n")
        defer { app.remove() }
        let base = Ports.base()
        let paas = try Running(["up", "--no-color", "-p", "\(base)"], in: app.path)
        #expect(eventually { Self.table(app).count == 3 })
        let before = Self.table(app)
        // A new type inserted first, one removed: the others keep their ports and pids.
        try app.write("Procfile", "first: exec sleep 1003\nweb: exec sleep 1000\nworker: exec sleep 1002\n")
        let r = try runPaas(["reload"], in: app.path)
        #expect(r.status == 0 && r.stdout.contains("first: added") && r.stdout.contains("old: removed"), "\(r.stdout)\(r.stderr)")
        #expect(eventually { Self.table(app)["first.1"] != nil && Self.table(app)["old.1"] == nil })
        let after = Self.table(app)
        #expect(after["web.1"]?.pid == before["web.1"]?.pid && after["web.1"]?.port == base)
        #expect(after["worker.1"]?.pid == before["worker.1"]?.pid && after["worker.1"]?.port == base + 200)
        // The new type does not take the slot the removed one left (it may still be stopping).
        #expect(after["first.1"]?.port == base + 300)
        #expect(before["old.1"].map { !ProcTable.isAlive(Int32($0.pid)) } == true)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A broken Procfile, .env or app.json: refused with its line, exit 78, nothing touched.
    @Test(arguments: [
        ("Procfile", "web: exec sleep 1000\nworker: exec sleep 1001\nnot an entry\n", "Procfile:3:"),
        (".env", "GOOD=1\nBAD KEY=2\n", ".env:2:"),
        ("app.json", "{\n  \"paas\": {\"processes\": {\"worker\": {\"restart\": \"sometimes\"}}}\n}\n", "app.json:2:"),
    ])
    func aBadConfigurationChangesNothing(file: String, text: String, location: String) throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\nworker: exec sleep 1001\n", files: [".env": "GOOD=1\n"])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(eventually { Self.table(app).count == 2 })
        let before = Self.table(app)
        try app.write(file, text)
        let r = try runPaas(["reload"], in: app.path)
        #expect(r.status == 78)
        #expect(r.stderr.contains(location), "\(r.stderr)")
        #expect(paas.waitForOutput("reload refused: \(location)"))
        let after = Self.table(app)
        #expect(after.mapValues(\.pid) == before.mapValues(\.pid))
        #expect(paas.process.isRunning)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func sighupReloads() throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\nworker: echo v1; exec sleep 1001\n", files: ["app.json": Self.settings])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(eventually { Self.table(app).count == 2 })
        let web = Self.table(app)["web.1"]?.pid
        try app.write(".env", "COLOUR=blue\n")
        paas.signal(SIGHUP)
        #expect(paas.waitForOutput("reloading (SIGHUP)"))
        #expect(paas.waitForOutput("worker: environment changed, replacing 1 instance"))
        #expect(paas.waitForOutput("reloaded (generation 2)"))
        #expect(paas.process.isRunning)
        // web binds $PORT: replaced stop-first; it runs the new generation too.
        #expect(eventually { Self.table(app)["web.1"].map { $0.generation == 2 && $0.pid != web } == true })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// An instance waiting out its backoff keeps waiting; its next start runs the new command.
    @Test func reloadWhileAnInstanceWaitsOutItsBackoff() throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\nflaky: echo v1; exit 1\n",
                              files: ["app.json": #"{"paas": {"processes": {"flaky": {"restart": "always", "backoff": {"initial": 1.5, "max": 1.5}}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("flaky.1 restarting in"))
        let web = Self.table(app)["web.1"]?.pid
        try app.write("Procfile", "web: exec sleep 1000\nflaky: echo v2; exec sleep 1001\n")
        #expect(try runPaas(["reload"], in: app.path).status == 0)
        #expect(paas.waitForOutput("flaky: command changed, replacing 0 instances"))
        #expect(paas.waitForOutput("| v2"))
        #expect(eventually { Self.table(app)["flaky.1"]?.generation == 2 })
        #expect(Self.table(app)["web.1"]?.pid == web)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A singleton is stopped before its successor starts: never two at once (checked in /proc).
    @Test func aSingletonIsNeverDoubled() throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\nclock: exec sleep 4343\n", files: ["app.json": Self.clockSettings])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "2"], in: app.path)
        #expect(eventually { Self.table(app).count == 2 })
        try app.write("Procfile", "web: exec sleep 1000\nclock: exec sleep 4343 # v2\n")
        #expect(try runPaas(["reload"], in: app.path).status == 0)
        var most = 0
        let done = eventually(timeout: 10) {
            most = max(most, ProcTable.pids(matching: "sleep 4343").count)
            return paas.stdout.contains("clock: every instance runs generation 2")
        }
        #expect(done)
        #expect(most <= 1, "two clocks ran at once")
        #expect(ProcTable.pids(matching: "sleep 4343").count == 1)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A new generation that exits before it is ready stops the replacement: the old one runs on.
    @Test func aFailingNewGenerationLeavesTheOldOneRunning() throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\nworker: exec sleep 1001\n", files: ["app.json": Self.settings])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(eventually { Self.table(app).count == 2 })
        let old = Self.table(app)["worker.1"]?.pid
        try app.write("Procfile", "web: exec sleep 1000\nworker: echo broken; exit 3\n")
        #expect(try runPaas(["reload"], in: app.path).status == 0)
        #expect(paas.waitForOutput("worker: reload stopped: worker.1 of generation 2 failed before it was ready; the old worker.1 runs on"))
        #expect(Self.table(app)["worker.1"]?.pid == old && old.map { ProcTable.isAlive(Int32($0)) } == true)
        #expect(paas.process.isRunning)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A changed release entry runs first; when it fails nothing is replaced.
    @Test func aChangedReleasePhaseGatesTheReload() throws {
        let app = try TempApp(procfile: "release: echo release v1\nworker: exec sleep 1001\n", files: ["app.json": Self.settings])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(eventually { Self.table(app).count == 1 })
        let old = Self.table(app)["worker.1"]?.pid
        try app.write("Procfile", "release: echo release v2; exit 4\nworker: exec sleep 1002\n")
        #expect(try runPaas(["reload"], in: app.path).status == 0)
        #expect(paas.waitForOutput("reload refused: the release phase failed (exited with status 4)"))
        #expect(paas.stdout.contains("release v2"))
        #expect(Self.table(app)["worker.1"]?.pid == old)
        try app.write("Procfile", "release: echo release v3\nworker: exec sleep 1002\n")
        #expect(try runPaas(["reload"], in: app.path).status == 0)
        #expect(paas.waitForOutput("worker: every instance runs generation 2"))
        let text = paas.stdout
        let release = try #require(text.range(of: "release v3"))
        let started = try #require(text.range(of: "worker.1 started (pid", options: .backwards))
        #expect(release.lowerBound < started.lowerBound, "the new release ran after the replacement started")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// `stop_signal: SIGINT` reaches the app as SIGINT (for a reload, a restart and the shutdown).
    @Test func stopSignalReachesTheApp() throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\nworker: trap 'echo got INT; exit 0' INT; trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.1; done\n",
                              files: ["app.json": #"{"paas": {"processes": {"worker": {"stop_signal": "SIGINT", "stop_timeout": 3}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path, watching: ["got INT", "| up"])
        #expect(paas.waitForOutput("| up"))
        #expect(try runPaas(["restart", "worker"], in: app.path).status == 0)
        #expect(eventually { paas.count("got INT") == 1 })
        #expect(paas.stdout.contains("sending SIGINT to worker.1"))
        // The new worker.1 has its traps before the shutdown's SIGINT reaches it.
        #expect(eventually { paas.count("| up") == 2 })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
        #expect(paas.count("got INT") == 2 && !paas.stdout.contains("got TERM"))
    }

    @Test func reloadWithNoPaasUpRunning() throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\n")
        defer { app.remove() }
        #expect(try runPaas(["reload"], in: app.path).status == 69)
    }
}

/// Faults a hostile pass found in reload, each fixed.
@Suite(.serialized)
struct ReloadHostileTests {
    static func table(_ app: TempApp) -> [String: (pid: Int, port: Int, generation: Int)] { ReloadTests.table(app) }

    /// A stop-first replacement that `paas stop` interrupts is given up: the next reload is not refused for ever.
    @Test func aStopDuringAStopFirstReplacementGivesItUp() throws {
        let app = try TempApp(procfile: "clock: echo v1; exec sleep 1000\nw: exec sleep 1001\n",
                              files: ["app.json": #"{"paas": {"processes": {"clock": {"singleton": true, "min_uptime": 5}, "w": {"min_uptime": 0.1}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "2"], in: app.path)
        #expect(eventually { Self.table(app).count == 2 })
        try app.write("Procfile", "clock: echo v2; exec sleep 1000\nw: exec sleep 1001\n")
        #expect(try runPaas(["reload"], in: app.path).status == 0)
        #expect(paas.waitForOutput("generation 2)"))
        #expect(try runPaas(["stop", "clock.1"], in: app.path).status == 0)
        #expect(paas.waitForOutput("clock: paas stop took over"))
        try app.write("Procfile", "clock: echo v3; exec sleep 1000\nw: exec sleep 1001\n")
        let r = try runPaas(["reload"], in: app.path)
        #expect(r.status == 0, "\(r.stderr)")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A scale-down during a start-first replacement: the removed instances do not come back.
    @Test func aScaleDownDuringAStartFirstReplacementHolds() throws {
        let app = try TempApp(procfile: "w: echo v1; exec sleep 1000\nx: exec sleep 1001\n",
                              files: ["app.json": #"{"paas": {"processes": {"w": {"min_uptime": 2}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "w=3"], in: app.path)
        #expect(eventually { Self.table(app).count == 4 })
        try app.write("Procfile", "w: echo v2; exec sleep 1000\nx: exec sleep 1001\n")
        #expect(try runPaas(["reload"], in: app.path).status == 0)
        #expect(paas.waitForOutput("generation 2)"))
        #expect(try runPaas(["scale", "w=1"], in: app.path).status == 0)
        #expect(paas.waitForOutput("w: paas scale took over"))
        // Well past the 2 s min_uptime the replacement would have waited for each.
        #expect(eventually(timeout: 10) { ReloadTests.ps(app).filter { ($0["type"] as? String) == "w" && $0["pid"] is Int }.count == 1 })
        #expect(!eventually(timeout: 3) { ReloadTests.ps(app).filter { ($0["type"] as? String) == "w" && $0["pid"] is Int }.count > 1 })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A stop-first type whose new generation fails is a failed start: its restart policy decides.
    @Test func aFailingStopFirstGenerationFollowsTheRestartPolicy() throws {
        let app = try TempApp(procfile: "clock: exec sleep 1000\nw: exec sleep 1001\n",
                              files: ["app.json": #"{"paas": {"processes": {"clock": {"singleton": true, "min_uptime": 0.2}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(eventually { Self.table(app).count == 2 })
        try app.write("Procfile", "clock: echo broken; exit 3\nw: exec sleep 1001\n")
        #expect(try runPaas(["reload"], in: app.path).status == 0)
        #expect(paas.waitForOutput("clock.1 of generation 2 failed before it was ready; it had no old instance beside it"))
        // Policy `no`: a failed start ends the run with 71, as outside a reload.
        #expect(paas.waitForExit() == 71)
    }

    /// `paas restart w.2` closes the type's open breaker: every instance of the type resumes.
    @Test func restartOfOneInstanceClosesTheBreakerForAll() throws {
        let app = try TempApp(procfile: "w: [ -f ok ] && exec sleep 1000; exit 1\nx: exec sleep 1001\n",
                              files: ["app.json": #"{"paas": {"processes": {"w": {"restart": "always", "min_uptime": 1, "backoff": {"initial": 0.05, "max": 0.05}, "breaker": {"failures": 3, "window": 60, "cooldown": 300}}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "w=3"], in: app.path)
        #expect(paas.waitForOutput("w crashed: circuit breaker open"))
        try app.write("ok", "")
        #expect(try runPaas(["restart", "w.2"], in: app.path).status == 0)
        #expect(eventually { ReloadTests.ps(app).filter { ($0["type"] as? String) == "w" && $0["pid"] is Int }.count == 3 })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A SIGHUP during a reload is not lost: it reloads again once the first is done.
    @Test func aSIGHUPDuringAReloadIsQueued() throws {
        let app = try TempApp(procfile: "w: echo v1; exec sleep 1000\n", files: ["app.json": #"{"paas": {"processes": {"w": {"min_uptime": 0.5}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path, watching: ["| v3"])
        #expect(eventually { Self.table(app).count == 1 })
        try app.write("Procfile", "w: echo v2; exec sleep 1000\n")
        paas.signal(SIGHUP)
        #expect(paas.waitForOutput("generation 2)"))
        try app.write("Procfile", "w: echo v3; exec sleep 1000\n")
        paas.signal(SIGHUP)
        #expect(paas.waitForOutput("reloading again once it is done"))
        #expect(eventually { paas.count("| v3") == 1 })
        #expect(eventually { Self.table(app)["w.1"]?.generation == 3 })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// An old generation is stopped the way it started: a reload that changes `stop_signal`
    /// sends the old signal to the old instance, the new one to the new.
    @Test func anOldGenerationKeepsItsStopSignal() throws {
        func procfile(_ v: String) -> String {
            "w: trap 'echo \(v) got INT; exit 0' INT; trap 'echo \(v) got USR1; exit 0' USR1; echo \(v) up; while :; do sleep 0.1; done\n"
        }
        func settings(_ sig: String) -> String { #"{"paas": {"processes": {"w": {"min_uptime": 0.2, "stop_signal": "\#(sig)"}}}}"# }
        let app = try TempApp(procfile: procfile("v1"), files: ["app.json": settings("SIGINT")])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "3"], in: app.path)
        #expect(paas.waitForOutput("v1 up"))
        try app.write("Procfile", procfile("v2"))
        try app.write("app.json", settings("SIGUSR1"))
        #expect(try runPaas(["reload"], in: app.path).status == 0)
        #expect(paas.waitForOutput("v1 got INT"))
        #expect(paas.waitForOutput("w: every instance runs generation 2"))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
        #expect(paas.stdout.contains("v2 got USR1") && !paas.stdout.contains("v1 got USR1"), "\(paas.stdout)")
    }

    /// SIGQUIT stops gracefully instead of killing paas with a core-dump signal.
    @Test func sigquitStopsGracefully() throws {
        let app = try TempApp(procfile: "w: echo up; exec sleep 1000\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("| up"))
        paas.signal(SIGQUIT)
        #expect(paas.waitForExit() == 0)
        #expect(paas.stdout.contains("received SIGQUIT, stopping all processes"))
    }
}
