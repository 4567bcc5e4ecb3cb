import Foundation
import Testing

/// Issue 8's lifecycle faults, from the built binary: every stop of one instance ends by its
/// deadline, a restart waits for the old group, spawn failures follow the restart policy,
/// the breaker always re-arms, `after` and `scale` agree, and stray signals do not end paas.
@Suite(.serialized)
struct InstanceStopTests {
    static func ps(_ app: TempApp) -> [[String: Any]] { psRows(app) }

    static func pid(_ app: TempApp, _ name: String) -> Int32? {
        (ps(app).first { $0["name"] as? String == name }?["pid"] as? Int).map(Int32.init)
    }

    /// Ignores SIGTERM; the `sleep` it waits on dies with the group's SIGTERM and it loops on.
    static let stubborn = #"trap "" TERM; echo ready; while :; do sleep 0.2; done"#

    enum Way: String, CaseIterable { case restart, stop, scaleDown, liveness }

    /// Fault 1: `restart`, `stop TARGET`, scale-down and a liveness failure of a process that
    /// ignores SIGTERM: SIGKILL at `-t`, the process is gone by its deadline.
    @Test(arguments: Way.allCases)
    func aProcessThatIgnoresSIGTERMIsKilledAtItsDeadline(way: Way) throws {
        var files: [String: String] = [:]
        if way == .liveness {
            files["app.json"] = #"{"healthchecks": {"stubborn": [{"type": "liveness", "command": ["sh", "-c", "test ! -f sick"], "wait": 0.1, "attempts": 1, "timeout": 2}]}}"#
        }
        let app = try TempApp(procfile: "stubborn: \(Self.stubborn)\n", files: files)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "1", "-m", "stubborn=2"], in: app.path, watching: ["| ready"])
        #expect(eventually { paas.count("| ready") == 2 })
        let name = way == .scaleDown ? "stubborn.2" : "stubborn.1"
        let old = try #require(Self.pid(app, name))
        switch way {
        case .restart: #expect(try runPaas(["restart", name], in: app.path).status == 0)
        case .stop: #expect(try runPaas(["stop", name], in: app.path).status == 0)
        case .scaleDown: #expect(try runPaas(["scale", "stubborn=1"], in: app.path).status == 0)
        case .liveness: try app.write("sick", "")
        }
        // SIGTERM, then SIGKILL one second later: gone well within three.
        #expect(eventually(timeout: 3) { !ProcTable.isAlive(old) }, "\(way): \(name) survived its deadline")
        #expect(paas.waitForOutput("\(name) did not stop within 1s"))
        #expect(paas.waitForOutput("sending SIGKILL to \(name) (pid \(old))"))
        if way == .liveness { try FileManager.default.removeItem(atPath: app.file("sick")) }
        if way == .restart || way == .liveness {
            #expect(eventually { Self.pid(app, name).map { $0 != old } ?? false }, "\(way): no new \(name)")
        }
        #expect(paas.process.isRunning)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// Fault 1: a process stopped by SIGSTOP acts on SIGTERM at once (paas sends SIGCONT after it).
    @Test func aStoppedProcessIsResumedToHearItsSIGTERM() throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\nparked: exec sleep 1001\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "30"], in: app.path)
        #expect(paas.waitForOutput("parked.1 started"))
        let parked = try #require(Self.pid(app, "parked.1"))
        kill(parked, SIGSTOP)
        #expect(try runPaas(["stop", "parked.1"], in: app.path).status == 0)
        #expect(eventually(timeout: 5) { !ProcTable.isAlive(parked) }, "a stopped process waited for the 30 s deadline")
        #expect(!paas.stdout.contains("did not stop"))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// Fault 11: when the leader exits and its group lives on, the rest of the group is
    /// stopped, and the next instance starts only once it is gone (no two copies at once).
    @Test func aRestartWaitsUntilTheOldGroupIsGone() throws {
        // Each start checks that the previous start's background sleep is gone, then leaves one behind.
        let procfile = "web: exec sleep 1000\nnpm: if [ -f lock ] && kill -0 $(cat lock) 2>/dev/null; then echo DOUBLE; fi; sleep 4242 & echo $! > lock; echo started $!; exit 1\n"
        let app = try TempApp(procfile: procfile, files: ["app.json": #"{"paas": {"processes": {"npm": {"restart": "always", "min_uptime": 0.01, "backoff": {"initial": 0.05, "max": 0.05}, "breaker": {"failures": 100}}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "2"], in: app.path, watching: ["started "])
        #expect(eventually { paas.count("started ") >= 4 })
        #expect(paas.stdout.contains("npm.1: processes of its group outlived it; sending SIGTERM"))
        #expect(!paas.stdout.contains("DOUBLE"))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
        #expect(ProcTable.pids(matching: "sleep 4242").isEmpty)
    }

    /// Fault 10: a grandchild that writes for ever does not hold the loop after its leader
    /// exits, and its half-written line is not cut short by the leader's exit.
    @Test func drainingAnExitedProcessIsBoundedAndKeepsAGrandchildsLineWhole() throws {
        let procfile = """
        web: exec sleep 1000
        flood: yes paas-flood-marker & sleep 0.3; exit 0
        part: printf 'abc'; (trap 'printf "def\\n"; exit 0' TERM; sleep 5) & sleep 0.2; exit 0
        """
        let app = try TempApp(procfile: procfile + "\n", files: ["app.json": #"{"paas": {"processes": {"flood": {"allow_exit": true}, "part": {"allow_exit": true}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "--no-timestamp", "-t", "3"], in: app.path)
        #expect(paas.waitForOutput("flood.1 finished; the rest keep running"))
        #expect(paas.waitForOutput("part.1 finished; the rest keep running"))
        // The loop is free: the control socket answers, and the flood's group is gone.
        #expect(eventually(timeout: 5) { ProcTable.pids(matching: "paas-flood-marker").isEmpty })
        let ps = try runPaas(["ps", "--json"], in: app.path)
        #expect(ps.stdout.contains("\"web.1\""), "ps: \(ps.status.map(String.init) ?? "-") \(ps.stdout) \(ps.stderr)\npaas: \(paas.stdout.suffix(3000))")
        #expect(paas.waitForOutput("abcdef"))
        #expect(!logLines(paas.stdout).contains { $0.name == "part.1" && $0.text == "abc" })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// Fault 5: a spawn that fails in the middle of a run (EMFILE under a low `ulimit -n`)
    /// goes through the type's restart policy; the rest of the formation keeps running.
    @Test func aFailedSpawnFollowsTheRestartPolicy() throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\nworker: exec sleep 1001\n",
                              files: ["app.json": #"{"paas": {"processes": {"worker": {"restart": "on-failure", "backoff": {"initial": 5}}}}}"#])
        defer { app.remove() }
        let paas = try Running(["-c", "ulimit -n 64; exec \"$0\" up --no-color", Binaries.paas], in: app.path, executable: "/bin/sh")
        #expect(paas.waitForOutput("worker.1 started"))
        let web = try #require(Self.pid(app, "web.1"))
        _ = try runPaas(["scale", "worker=40"], in: app.path)
        #expect(paas.waitForOutput("could not start worker."))
        #expect(paas.waitForOutput("restarting in"))
        #expect(!paas.stdout.contains("stopping all processes"))
        #expect(paas.process.isRunning && ProcTable.isAlive(web))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// Fault 21: a web that never listens fails its start; paas's status says so even when
    /// the process exits 0 on SIGTERM.
    @Test func aFailedStartEndsTheRunWithANonZeroStatus() throws {
        let app = try TempApp(procfile: "web: trap 'exit 0' TERM; sleep 1000 & wait\n",
                              files: ["app.json": #"{"paas": {"processes": {"web": {"boot_timeout": 0.5}}}}"#])
        defer { app.remove() }
        let r = try runPaas(["up", "--no-color"], in: app.path)
        #expect(r.status == 71)
        #expect(r.stdout.contains("web.1 failed to start"))
    }

    /// Faults 7 and 18: `restart` while a scale-down drains does not bring the removed ones back.
    @Test func restartDuringAScaleDownKeepsTheNewCount() throws {
        let app = try TempApp(procfile: "worker: trap 'sleep 0.5; exit 0' TERM; echo up; while :; do sleep 0.1; done\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "worker=3"], in: app.path, watching: ["| up"])
        #expect(eventually { paas.count("| up") == 3 })
        #expect(try runPaas(["scale", "worker=1"], in: app.path).status == 0)
        #expect(try runPaas(["restart", "worker"], in: app.path).status == 0)
        #expect(eventually { paas.count("| up") == 4 })
        #expect(eventually { Self.ps(app).filter { $0["pid"] is Int }.count == 1 })
        let names = Self.ps(app).compactMap { $0["name"] as? String }
        #expect(names == ["worker.1"], "\(names)")
        #expect(try runPaas(["ps"], in: app.path).stdout.contains(#/worker [01]/1 ready/#))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// Fault 20: `after` with counts of 0, and `scale` while a type waits.
    @Test func afterHonoursCountsAndScale() throws {
        let json = #"{"paas": {"processes": {"worker": {"after": ["web"]}}}}"#
        let app = try TempApp(procfile: "web: exec sleep 1000\nworker: echo worker up; exec sleep 1000\n",
                              files: ["app.json": #"{"healthchecks": {"web": [{"type": "startup", "command": ["test", "-f", "ready"], "wait": 0.05, "attempts": 10000}]}, "paas": {"processes": {"worker": {"after": ["web"]}}}}"#])
        defer { app.remove() }
        // web=0: nothing to wait for, worker starts.
        let zero = try TempApp(procfile: "web: exec sleep 1000\nworker: echo worker up; exec sleep 1000\n", files: ["app.json": json])
        defer { zero.remove() }
        let first = try Running(["up", "--no-color", "-m", "web=0"], in: zero.path)
        #expect(first.waitForOutput("worker.1 started"))
        first.signal(SIGTERM)
        #expect(first.waitForExit() == 0)

        let paas = try Running(["up", "--no-color"], in: app.path, watching: ["worker up"])
        #expect(paas.waitForOutput("worker waits for web"))
        #expect(try runPaas(["scale", "worker=2"], in: app.path).status == 0)
        #expect(Self.ps(app).filter { ($0["type"] as? String) == "worker" && $0["pid"] is Int }.isEmpty)
        try app.write("ready", "")
        #expect(eventually { paas.count("worker up") == 2 })
        #expect(try runPaas(["scale", "worker=0"], in: app.path).status == 0)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)

        let again = try Running(["up", "--no-color"], in: app.path)
        try FileManager.default.removeItem(atPath: app.file("ready"))
        #expect(again.waitForOutput("worker waits for web"))
        #expect(try runPaas(["scale", "worker=0"], in: app.path).status == 0)
        try app.write("ready", "")
        #expect(again.waitForOutput("worker starts: web ready"))
        #expect(!again.stdout.contains("worker.1 started"))
        again.signal(SIGTERM)
        #expect(again.waitForExit() == 0)
    }

    /// Fault 16: SIGUSR1 and SIGUSR2 are forwarded to the processes; SIGALRM, SIGXFSZ and
    /// the other terminating signals paas has no use for are ignored.
    @Test func straySignalsDoNotEndPaas() throws {
        let app = try TempApp(procfile: "web: trap 'echo got USR1' USR1; trap 'echo got USR2' USR2; echo ready; while :; do sleep 0.1; done\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("| ready"))
        for sig in [SIGALRM, SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO, SIGPWR] { paas.signal(sig) }
        paas.signal(SIGUSR1)
        #expect(paas.waitForOutput("got USR1"))
        paas.signal(SIGUSR2)
        #expect(paas.waitForOutput("got USR2"))
        #expect(paas.stdout.contains("received SIGUSR1, forwarding it to 1 process"))
        #expect(paas.process.isRunning)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }
}

/// Faults 6 and 19: a half-open breaker always has something to decide it.
@Suite(.serialized)
struct BreakerRearmTests {
    static let crashing = #"{"restart": "always", "min_uptime": 1, "backoff": {"initial": 0.05, "max": 0.05}, "breaker": {"failures": 2, "window": 10, "cooldown": 0.5}}"#

    /// Scaled to 0 or stopped by hand while open: no probe starts at the cool-down.
    @Test(arguments: ["scale", "stop"])
    func noProbeForATypeThatIsNotWanted(how: String) throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\ncrasher: echo crashing; exit 3\n",
                              files: ["app.json": "{\"paas\": {\"processes\": {\"crasher\": \(Self.crashing)}}}"])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path, watching: ["crashing"])
        #expect(paas.waitForOutput("crasher crashed: circuit breaker open"))
        let r = how == "scale" ? try runPaas(["scale", "crasher=0"], in: app.path) : try runPaas(["stop", "crasher"], in: app.path)
        #expect(r.status == 0)
        let crashes = paas.count("crashing")
        #expect(paas.waitForOutput("crasher circuit breaker reset"))
        #expect(!paas.stdout.contains("as a probe"))
        #expect(paas.count("crashing") == crashes)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A probe that outlives min_uptime but exits before it is ready opens the breaker again.
    @Test func aProbeThatExitsBeforeItIsReadyReopens() throws {
        // Crashes twice at once (opening the breaker), then lives 1.5 s without ever being ready.
        let procfile = "web: exec sleep 1000\nflaky: n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo start $n; [ $n -ge 3 ] && sleep 1.5; exit 1\n"
        let app = try TempApp(procfile: procfile, files: ["app.json": """
            {"healthchecks": {"flaky": [{"type": "startup", "command": ["false"], "wait": 0.1, "attempts": 1000}]},
             "paas": {"processes": {"flaky": {"restart": "always", "min_uptime": 0.5, "backoff": {"initial": 0.05}, "breaker": {"failures": 2, "window": 10, "cooldown": 0.3}}}}}
            """])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("flaky circuit breaker half-open: starting flaky.1 as a probe"))
        #expect(paas.waitForOutput("flaky crashed: circuit breaker open (the probe flaky.1"))
        #expect(paas.waitForOutput("start 4"), "the breaker did not probe again")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }
}

/// Issue 9: the registry forgets reaped instances, so 10,000 restarts leave memory flat.
@Suite(.serialized)
struct RegistryTests {
    /// The raw `ps` reply's fields (`known`: members paas remembers).
    static func psReply(_ app: TempApp) throws -> [String: Any] {
        let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall(b'{\"v\":1,\"cmd\":\"ps\"}\\n')\nd=b''\nwhile not d.endswith(b'\\n'):\n  c=s.recv(65536)\n  if not c: break\n  d+=c\nsys.stdout.write(d.decode())"
        let r = try Running(["python3", "-c", script, app.file(".paas/control.sock")], executable: "/usr/bin/env")
        _ = r.waitForExit()
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    static func restarts(_ reply: [String: Any]) -> Int {
        ((reply["processes"] as? [[String: Any]]) ?? []).first { $0["name"] as? String == "crasher.1" }?["restarts"] as? Int ?? 0
    }

    static func rssKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }

    @Test func tenThousandRestartsLeaveMemoryFlat() throws {
        // `idle`, not `web`: a web that never binds $PORT fails its boot check at 60 s, and on a
        // loaded machine the 10,000 restarts take longer than that.
        let app = try TempApp(procfile: "idle: exec sleep 1000\ncrasher: exit 1\n",
                              files: ["app.json": #"{"paas": {"processes": {"crasher": {"restart": "always", "min_uptime": 0, "backoff": {"initial": 0.001, "max": 0.001}}}}}"#])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "--no-timestamp"], in: app.path)
        var reply: [String: Any] = [:]
        #expect(eventually(timeout: 60) { reply = (try? Self.psReply(app)) ?? [:]; return Self.restarts(reply) >= 1_000 })
        let early = Self.rssKiB(paas.pid)
        #expect(eventually(timeout: 400) { reply = (try? Self.psReply(app)) ?? [:]; return Self.restarts(reply) >= 10_000 }) // about 30 s alone; the whole suite shares two cores
        let known = reply["known"] as? Int ?? .max
        // idle.1 and the latest crasher.1 (and at most one more on its way out).
        #expect(known <= 3, "paas remembers \(known) processes after \(Self.restarts(reply)) restarts")
        let late = Self.rssKiB(paas.pid)
        // The history ring (8 MiB at most) fills with the restart events meanwhile; nothing else grows.
        #expect(late - early < 10_240, "RSS grew from \(early) KiB to \(late) KiB")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }
}

/// Issue 8's small fault: once a failed start has switched the run to stopping, a loop that
/// was starting instances (here `scale`) starts no more of them.
@Suite(.serialized)
struct FailedStartStopsTheLoopTests {
    @Test func aScaleWhoseFirstSpawnFailsStartsNoMore() throws {
        // A root too long for sun_path: the control socket lives under XDG_RUNTIME_DIR, so it
        // still answers once the root itself is gone (and every spawn's chdir fails).
        let runtime = try TempApp()
        defer { runtime.remove() }
        let holder = try TempApp()
        defer { holder.remove() }
        let root = holder.file(String(repeating: "r", count: 120))
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Data("worker: exec sleep 1000\n".utf8).write(to: URL(fileURLWithPath: root + "/Procfile"))
        let env = ["XDG_RUNTIME_DIR": runtime.path]
        let paas = try Running(["up", "--no-color", "-d", root, "-t", "2"], environment: env)
        #expect(paas.waitForOutput("worker.1 started"))
        try FileManager.default.removeItem(atPath: root)
        _ = try runPaas(["scale", "worker=6", "-d", root], environment: env)
        #expect(paas.waitForExit() == 71)
        // The first failure stopped the run: the other four were never tried.
        #expect(paas.stdout.components(separatedBy: "could not start worker.").count - 1 == 1, "\(paas.stdout)")
    }
}
