import Foundation
import Synchronization
import Testing

/// `paas ps|scale|restart|stop|logs` against a running `paas up`, over its control socket.
@Suite(.serialized)
struct ControlTests {
    /// Starts `paas up` for a Procfile of listeners and waits until `ready` processes accept.
    static func upListeners(_ app: TempApp, base: Int, formation: String, expect: [Int]) throws -> Running {
        let paas = try Running(["up", "--no-color", "-p", "\(base)", "-m", formation, "-t", "2"], in: app.path)
        #expect(eventually(timeout: 15) { expect.allSatisfy(portAccepts) }, "ports \(expect) never accepted: \(paas.stdout)")
        return paas
    }

    static func listenerApp() throws -> TempApp {
        let listener = try Binaries.fixture("listener")
        return try TempApp(procfile: "web: exec \(listener)\nworker: exec \(listener)\n")
    }

    static func ps(_ app: TempApp) throws -> [[String: Any]] {
        let r = try runPaas(["ps", "--json"], in: app.path)
        #expect(r.status == 0, "ps failed: \(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
    }

    static func pids(_ rows: [[String: Any]]) -> [String: Int] {
        var result: [String: Int] = [:]
        for r in rows { if let n = r["name"] as? String, let p = r["pid"] as? Int { result[n] = p } }
        return result
    }

    /// Connects to `ports` over and over on a background thread, counting failures.
    final class Prober: @unchecked Sendable { // state lives in Mutexes
        let failures = Mutex(0)
        let attempts = Mutex(0)
        let running = Mutex(true)

        init(_ ports: [Int]) {
            Thread.detachNewThread { [self] in
                while running.withLock({ $0 }) {
                    for p in ports {
                        let ok = portAccepts(p)
                        attempts.withLock { $0 += 1 }
                        if !ok { failures.withLock { $0 += 1 } }
                    }
                }
            }
        }

        func stop() -> (attempts: Int, failures: Int) {
            running.withLock { $0 = false }
            return (attempts.withLock { $0 }, failures.withLock { $0 })
        }
    }

    @Test func psListsEveryInstance() throws {
        let app = try Self.listenerApp()
        defer { app.remove() }
        let base = Ports.base()
        let paas = try Self.upListeners(app, base: base, formation: "web=2,worker=1", expect: [base, base + 1, base + 100])
        let rows = try Self.ps(app)
        #expect(rows.map { $0["name"] as? String } == ["web.1", "web.2", "worker.1"])
        #expect(rows.map { $0["port"] as? Int } == [base, base + 1, base + 100])
        #expect(rows.allSatisfy { ($0["state"] as? String) == "running" && ($0["restarts"] as? Int) == 0 && $0["pid"] is Int && $0["uptime_s"] != nil && $0["type"] is String })
        #expect(rows.allSatisfy { ($0["rss_kb"] as? Int ?? 0) > 0 })
        let text = try runPaas(["ps"], in: app.path)
        #expect(text.status == 0 && text.stdout.contains("web.2") && text.stdout.contains("running"))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func scaleUpAndDownLeavesTheOthersServing() throws {
        let app = try Self.listenerApp()
        defer { app.remove() }
        let base = Ports.base()
        let paas = try Self.upListeners(app, base: base, formation: "web=2,worker=1", expect: [base, base + 1, base + 100])
        let before = Self.pids(try Self.ps(app))
        // Keep connecting to the instances that stay and to the other type's port.
        let prober = Prober([base, base + 1, base + 100])

        let up = try runPaas(["scale", "web=4"], in: app.path)
        #expect(up.status == 0 && up.stdout.contains("web=4"), "\(up.stderr)")
        #expect(eventually { portAccepts(base + 2) && portAccepts(base + 3) })
        let scaledUp = Self.pids(try Self.ps(app))
        #expect(scaledUp.count == 5)
        for name in ["web.1", "web.2", "worker.1"] { #expect(scaledUp[name] == before[name]) }

        let down = try runPaas(["scale", "web=1"], in: app.path)
        #expect(down.status == 0)
        #expect(eventually { !portAccepts(base + 1) && !portAccepts(base + 2) && !portAccepts(base + 3) && (try? Self.ps(app).count) == 2 })
        let result = prober.stop()
        let after = Self.pids(try Self.ps(app))
        #expect(after["web.1"] == before["web.1"] && after["worker.1"] == before["worker.1"])
        // web.2 went away with the scale-down: only count probes of the ones that stayed.
        #expect(result.attempts > 10)

        let zero = try runPaas(["scale", "worker=0"], in: app.path)
        #expect(zero.status == 0)
        #expect(eventually { !portAccepts(base + 100) })
        #expect(paas.stdout.contains("scaling web from 2 to 4") && paas.stdout.contains("scaling worker from 1 to 0"))
        // paas up keeps running with worker at zero.
        #expect(paas.process.isRunning)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func scaleProbesCountNoFailureOnInstancesThatStay() throws {
        let app = try Self.listenerApp()
        defer { app.remove() }
        let base = Ports.base()
        let paas = try Self.upListeners(app, base: base, formation: "web=1,worker=1", expect: [base, base + 100])
        let prober = Prober([base, base + 100])
        for spec in ["web=3", "worker=2", "web=1", "worker=1", "all=2", "all=1"] {
            #expect(try runPaas(["scale", spec], in: app.path).status == 0)
        }
        #expect(eventually { (try? Self.ps(app).count) == 2 })
        let result = prober.stop()
        #expect(result.failures == 0 && result.attempts > 10, "\(result)")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func badScaleRequestsChangeNothing() throws {
        let app = try Self.listenerApp()
        defer { app.remove() }
        let base = Ports.base()
        let paas = try Self.upListeners(app, base: base, formation: "web=1,worker=1", expect: [base, base + 100])
        let before = Self.pids(try Self.ps(app))
        let unknown = try runPaas(["scale", "web=2", "nope=1"], in: app.path)
        #expect(unknown.status == 1 && unknown.stderr.contains("unknown process type \"nope\""))
        let negative = try runPaas(["scale", "web=-1"], in: app.path)
        #expect(negative.status == 78)
        let tooMany = try runPaas(["scale", "web=101"], in: app.path)
        #expect(tooMany.status == 1)
        #expect(Self.pids(try Self.ps(app)) == before)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func restartOneInstanceGivesANewPidOnTheSamePort() throws {
        let app = try Self.listenerApp()
        defer { app.remove() }
        let base = Ports.base()
        let paas = try Self.upListeners(app, base: base, formation: "web=2,worker=1", expect: [base, base + 1, base + 100])
        let before = Self.pids(try Self.ps(app))
        let r = try runPaas(["restart", "web.2"], in: app.path)
        #expect(r.status == 0 && r.stdout.contains("restarting web.2"))
        var after: [String: Int] = [:]
        #expect(eventually { after = Self.pids((try? Self.ps(app)) ?? []); return after["web.2"] != nil && after["web.2"] != before["web.2"] })
        #expect(eventually { portAccepts(base + 1) })
        #expect(after["web.1"] == before["web.1"] && after["worker.1"] == before["worker.1"])
        let rows = try Self.ps(app)
        #expect(rows.first { $0["name"] as? String == "web.2" }?["restarts"] as? Int == 1)
        #expect(rows.first { $0["name"] as? String == "web.2" }?["port"] as? Int == base + 1)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func stopKeepsAnInstanceDownUntilRestarted() throws {
        let app = try Self.listenerApp()
        defer { app.remove() }
        let base = Ports.base()
        let paas = try Self.upListeners(app, base: base, formation: "web=2,worker=1", expect: [base, base + 1, base + 100])
        let s = try runPaas(["stop", "web.1"], in: app.path)
        #expect(s.status == 0 && s.stdout.contains("stopping web.1"))
        #expect(eventually { !portAccepts(base) && (try? Self.ps(app))?.first { $0["name"] as? String == "web.1" }?["state"] as? String == "stopped" })
        #expect(paas.process.isRunning && portAccepts(base + 1))
        #expect(try runPaas(["restart", "web.1"], in: app.path).status == 0)
        #expect(eventually { portAccepts(base) })
        // `stop` with no target ends paas up like SIGTERM.
        #expect(try runPaas(["stop"], in: app.path).status == 0)
        #expect(paas.waitForExit() == 0)
        #expect(paas.stdout.contains("paas stop requested"))
    }

    @Test func logsHistoryAndFollow() throws {
        let app = try TempApp(procfile: "talker: for i in $(seq 1 50); do echo line $i; done; exec sleep 1000\nquiet: echo hello from quiet; exec sleep 1000\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("line 50") && paas.waitForOutput("hello from quiet"))
        let last = try runPaas(["logs", "-n", "5", "talker"], in: app.path)
        #expect(last.status == 0)
        #expect(logLines(last.stdout).map(\.text) == (46...50).map { "line \($0)" })
        let json = try runPaas(["logs", "-n", "2", "--json", "quiet"], in: app.path)
        let objects = try json.stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.count == 1 && objects[0]["text"] as? String == "hello from quiet" && objects[0]["process"] as? String == "quiet.1")

        let follower = try Running(["logs", "-f", "-n", "0", "talker"], in: app.path)
        let follower2 = try Running(["logs", "-f", "-n", "1"], in: app.path)
        #expect(follower2.waitForOutput("|"))
        #expect(eventually { (try? runPaas(["restart", "talker"], in: app.path).status) == 0 })
        #expect(follower.waitForOutput("line 50"))
        #expect(follower2.waitForOutput("restarting talker.1"))
        #expect(!follower.stdout.contains("quiet"))
        // SIGTERM: the test runner hands its children SIGINT ignored, as a shell does for background jobs.
        follower.signal(SIGTERM)
        follower2.signal(SIGTERM)
        _ = follower.waitForExit()
        _ = follower2.waitForExit()
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func aSecondUpRefusesAndAStaleSocketIsTakenOver() throws {
        let app = try TempApp(procfile: "idle: exec sleep 1000\n")
        defer { app.remove() }
        let first = try Running(["up", "--no-color"], in: app.path)
        #expect(first.waitForOutput("idle.1 started"))
        let second = try runPaas(["up"], in: app.path)
        #expect(second.status == 75)
        #expect(second.stderr.contains("already running") && second.stderr.contains("pid \(first.pid)"))
        #expect(second.stdout.isEmpty)
        // Socket and directory modes.
        var st = stat()
        #expect(stat(app.file(".paas"), &st) == 0 && st.st_mode & 0o777 == 0o700)
        #expect(stat(app.file(".paas/control.sock"), &st) == 0 && st.st_mode & 0o777 == 0o600)

        first.signal(SIGKILL)
        _ = first.waitForExit()
        // The socket file is left behind; a new paas up takes it over.
        #expect(FileManager.default.fileExists(atPath: app.file(".paas/control.sock")))
        let ps = try runPaas(["ps"], in: app.path)
        #expect(ps.status == 69 && ps.stderr.contains("no paas up is running"))
        let third = try Running(["up", "--no-color"], in: app.path)
        #expect(third.waitForOutput("idle.1 started"))
        #expect(try runPaas(["ps"], in: app.path).status == 0)
        third.signal(SIGTERM)
        #expect(third.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: app.file(".paas/control.sock")))
    }

    @Test func everyControlCommandSaysWhenNothingRuns() throws {
        let app = try TempApp(procfile: "idle: exec sleep 1000\n")
        defer { app.remove() }
        for args in [["ps"], ["scale", "idle=2"], ["restart"], ["stop"], ["logs"]] {
            let r = try runPaas(args, in: app.path)
            #expect(r.status == 69, "\(args)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("no paas up is running"), "\(args): \(r.stderr)")
        }
    }

    @Test func garbageOversizedSilentAndManyClientsDoNotDisturbTheFormation() throws {
        let app = try TempApp(procfile: "idle: exec sleep 1000\nother: exec sleep 1001\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("other.1 started"))
        let before = Self.pids(try Self.ps(app))
        // A silent client holds a connection open (blocked in recv) while others are served.
        let silent = try Running(["python3", "-c", "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.recv(1)", app.file(".paas/control.sock")], in: app.path, executable: "/usr/bin/env")
        defer { silent.signal(SIGKILL) }
        let cases: [(String, String)] = [
            ("s.sendall(b'this is not json\\n')", "malformed request"),
            ("s.sendall(b'{\"v\":1,\"cmd\":\"fly\"}\\n')", "unknown command"),
            ("s.sendall(b'{\"v\":9,\"cmd\":\"ps\"}\\n')", "unsupported protocol version"),
            ("s.sendall(b'[1,2,3]\\n')", "expected a JSON object"),
            ("s.sendall(b'{\"v\":1,\"cmd\":\"scale\",\"counts\":{\"idle\":\"x\"}}\\n')", "whole number"),
            ("s.sendall(b'x' * (10 * 1024 * 1024))", "request too long"),
        ]
        for (send, expected) in cases {
            let script = "try:\n  \(send)\nexcept BrokenPipeError:\n  pass\ns.settimeout(10)\nprint(s.recv(65536).decode())"
            let p = try Running(["python3", "-c", "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n" + script, app.file(".paas/control.sock")], in: app.path, executable: "/usr/bin/env")
            #expect(p.waitForExit() == 0)
            #expect(p.stdout.contains("\"ok\":false") && p.stdout.contains(expected), "\(expected): \(p.stdout) \(p.stderr)")
        }
        // A half line, then the rest: one request.
        let half = try Running(["python3", "-c", "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall(b'{\"v\":1,')\ntime.sleep(0.2)\ns.sendall(b'\"cmd\":\"ps\"}\\n')\ns.settimeout(10)\nprint(s.recv(65536).decode())", app.file(".paas/control.sock")], in: app.path, executable: "/usr/bin/env")
        #expect(half.waitForExit() == 0 && half.stdout.contains("\"ok\":true"))
        // 100 clients at once.
        let many = try Running(["python3", "-c", """
        import socket,sys,threading
        ok=[]
        def one():
            s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'{"v":1,"cmd":"ps"}\\n'); s.settimeout(20)
            data=b''
            while True:
                b=s.recv(65536)
                if not b: break
                data+=b
            ok.append(b'"ok":true' in data)
        ts=[threading.Thread(target=one) for _ in range(100)]
        [t.start() for t in ts]; [t.join() for t in ts]
        print(sum(ok))
        """, app.file(".paas/control.sock")], in: app.path, executable: "/usr/bin/env")
        #expect(many.waitForExit(timeout: 60) == 0)
        #expect(many.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "100")
        #expect(Self.pids(try Self.ps(app)) == before)
        #expect(paas.process.isRunning)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test(.enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs root to act as another user, and /usr/bin/python3"))
    func anotherUserIsRefused() throws {
        let app = try TempApp(procfile: "idle: exec sleep 1000\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("idle.1 started"))
        // Open the file modes so that only the peer-credential check stands in the way.
        chmod(app.path, 0o755)
        chmod(app.file(".paas"), 0o777)
        chmod(app.file(".paas/control.sock"), 0o777)
        // The system python (pyenv's lives under /root, out of reach for uid 65534).
        let p = try Running(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c",
                             "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.settimeout(10)\ntry:\n  s.sendall(b'{\"v\":1,\"cmd\":\"stop\"}\\n')\nexcept OSError:\n  pass\nprint(s.recv(65536).decode())",
                             app.file(".paas/control.sock")], in: "/", executable: "/usr/bin/env")
        #expect(p.waitForExit() == 0, "\(p.stderr)")
        #expect(p.stdout.contains("permission denied"), "\(p.stdout) \(p.stderr)")
        #expect(paas.process.isRunning)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }
}

/// Hostile numbers and connections on the control socket (issue 8): none of them may crash,
/// stall or spin `paas up`.
@Suite(.serialized)
struct ControlHardeningTests {
    /// A raw client: sends `payload` (Python bytes literal) then prints everything it reads.
    static func raw(_ socket: String, _ payload: String, then extra: String = "") throws -> Running {
        try Running(["python3", "-c", """
        import socket,sys
        s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(\(payload))
        \(extra)
        s.settimeout(20)
        data=b''
        while True:
            b=s.recv(65536)
            if not b: break
            data+=b
        sys.stdout.write(data.decode())
        """, socket], executable: "/usr/bin/env")
    }

    @Test func hugeAndNegativeNumbersAreRefusedAndUpKeepsRunning() throws {
        let app = try TempApp(procfile: "web: exec sleep 1000\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-p", "\(Ports.base())", "-t", "2"], in: app.path)
        #expect(paas.waitForOutput("web.1 started"))
        let logs = try runPaas(["logs", "-n", "9223372036854775807"], in: app.path)
        #expect(logs.status == 1 && logs.stderr.contains("\"lines\" must be a whole number from 0 to 1000000"), "\(logs)")
        let scale = try runPaas(["scale", "web=9223372036854775807"], in: app.path)
        #expect(scale.status == 1 && scale.stderr.contains("count for web must be a whole number from 0 to 65535"), "\(scale)")
        let all = try runPaas(["scale", "all=9223372036854775807"], in: app.path)
        #expect(all.status == 1 && all.stderr.contains("count for all must be"), "\(all)")
        let negative = try runPaas(["logs", "-n", "-1"], in: app.path)
        #expect(negative.status == 64)
        for payload in [#"{"v":1,"cmd":"logs","lines":-9223372036854775808}"#, #"{"v":1,"cmd":"logs","lines":1e308}"#,
                        #"{"v":1,"cmd":"scale","counts":{"web":-5}}"#, #"{"v":1,"cmd":"scale","counts":{"web":18446744073709551616}}"#] {
            let p = try Self.raw(app.file(".paas/control.sock"), "b'\(payload)\\n'")
            #expect(p.waitForExit() == 0)
            #expect(p.stdout.contains("\"ok\":false"), "\(payload): \(p.stdout)")
        }
        #expect(paas.process.isRunning)
        let ps = try runPaas(["ps"], in: app.path)
        #expect(ps.status == 0 && ps.stdout.contains("web.1"))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func onlyTheFirstRequestLineRuns() throws {
        let app = try TempApp(procfile: "idle: exec sleep 1000\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "2"], in: app.path)
        #expect(paas.waitForOutput("idle.1 started"))
        let p = try Self.raw(app.file(".paas/control.sock"), #"b'{"v":1,"cmd":"ps"}\n{"v":1,"cmd":"stop"}\n{"v":1,"cmd":"scale","counts":{"idle":3}}\n'"#)
        #expect(p.waitForExit() == 0)
        #expect(p.stdoutLines.count == 1 && p.stdout.contains("\"ok\":true") && p.stdout.contains("\"processes\""), "\(p.stdout)")
        // Neither the stop nor the scale ran.
        let rows = try ControlTests.ps(app)
        #expect(rows.count == 1)
        #expect(paas.process.isRunning && !paas.stdout.contains("paas stop requested"))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func aClientThatHalfClosesGetsTheWholeReply() throws {
        // About 3 MB of history, several times what a socket buffer holds.
        let app = try TempApp(procfile: "talker: seq -f 'line %06g xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' 1 30000; exec sleep 1000\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "2"], in: app.path, watching: ["line 030000"])
        #expect(eventually(timeout: 20) { paas.count("line 030000") == 1 })
        // Send the request, shut down the sending side at once, and only then start reading.
        let p = try Self.raw(app.file(".paas/control.sock"), #"b'{"v":1,"cmd":"logs","lines":30000,"targets":["talker"]}\n'"#, then: "s.shutdown(socket.SHUT_WR)\nimport time; time.sleep(0.5)")
        #expect(p.waitForExit(timeout: 30) == 0)
        let lines = p.stdoutLines
        #expect(lines.count == 30001, "got \(lines.count) lines: \(p.stderr)")
        #expect(lines.first?.contains("\"ok\":true") == true)
        #expect(lines.last?.contains("line 030000") == true)
        #expect(paas.process.isRunning)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func aStoppedUpIsNotTakenForAStaleOne() throws {
        let app = try TempApp(procfile: "idle: exec sleep 1000\n")
        defer { app.remove() }
        let first = try Running(["up", "--no-color", "-t", "2"], in: app.path)
        #expect(first.waitForOutput("idle.1 started"))
        let socket = app.file(".paas/control.sock")
        var before = stat()
        #expect(lstat(socket, &before) == 0)
        first.signal(SIGSTOP)
        defer { first.signal(SIGCONT) }
        // The second one must not wait for an answer the stopped one cannot give.
        let started = Date()
        let second = try runPaas(["up", "--no-color"], in: app.path, timeout: 10)
        #expect(second.status == 75, "\(second)")
        #expect(second.stderr.contains("already running") && second.stderr.contains("pid \(first.pid), stopped: resume it"), "\(second.stderr)")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(second.stdout.isEmpty)
        var after = stat()
        #expect(lstat(socket, &after) == 0 && after.st_ino == before.st_ino)
        first.signal(SIGCONT)
        let rows = try ControlTests.ps(app)
        #expect(rows.count == 1 && rows.first?["state"] as? String == "running")
        #expect(lstat(socket, &after) == 0 && after.st_ino == before.st_ino)
        first.signal(SIGTERM)
        #expect(first.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    /// A root that cannot hold `.paas/` (here `.paas` is a file; a read-only root behaves
    /// the same): the lock goes to `${TMPDIR}/paas-UID/`, keyed by the root's device and
    /// inode, so two `paas up` with different `XDG_RUNTIME_DIR` still exclude each other.
    @Test func theLockDoesNotDependOnWhereTheSocketLives() throws {
        let app = try TempApp(procfile: "idle: exec sleep 1000\n", files: [".paas": "not a directory\n"])
        defer { app.remove() }
        let tmp = try TempApp()
        defer { tmp.remove() }
        let xdg1 = try TempApp(), xdg2 = try TempApp()
        defer { xdg1.remove(); xdg2.remove() }
        let first = try Running(["up", "--no-color", "-t", "2"], in: app.path, environment: ["TMPDIR": tmp.path, "XDG_RUNTIME_DIR": xdg1.path])
        #expect(first.waitForOutput("idle.1 started"), "\(first.stderr)")
        let second = try runPaas(["up", "--no-color"], in: app.path, environment: ["TMPDIR": tmp.path, "XDG_RUNTIME_DIR": xdg2.path], timeout: 10)
        #expect(second.status == 75 && second.stderr.contains("pid \(first.pid)"), "\(second)")
        #expect(try runPaas(["ps"], in: app.path, environment: ["TMPDIR": tmp.path, "XDG_RUNTIME_DIR": xdg1.path]).status == 0)
        first.signal(SIGTERM)
        #expect(first.waitForExit() == 0)
    }

    /// The same with a really read-only root: a read-only bind mount in a private mount
    /// namespace (needs root), where both `paas up` run.
    @Test(.enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), "needs root and unshare(1)"))
    func twoUpsOfAReadOnlyRootWithDifferentRuntimeDirsExcludeEachOther() throws {
        let source = try TempApp(procfile: "idle: exec sleep 1000\n")
        defer { source.remove() }
        let mountPoint = try TempApp(), tmp = try TempApp(), xdg1 = try TempApp(), xdg2 = try TempApp()
        defer { mountPoint.remove(); tmp.remove(); xdg1.remove(); xdg2.remove() }
        let paas = Binaries.paas
        let script = """
        set -e
        mount --bind '\(source.path)' '\(mountPoint.path)'
        mount -o remount,bind,ro '\(mountPoint.path)'
        if touch '\(mountPoint.path)/probe' 2>/dev/null; then echo 'not read-only'; exit 1; fi
        cd '\(mountPoint.path)'
        TMPDIR='\(tmp.path)' XDG_RUNTIME_DIR='\(xdg1.path)' '\(paas)' up --no-color -t 2 > '\(tmp.path)/first.log' 2>&1 &
        first=$!
        for i in $(seq 1 500); do grep -q 'idle.1 started' '\(tmp.path)/first.log' && break; sleep 0.01; done
        set +e
        TMPDIR='\(tmp.path)' XDG_RUNTIME_DIR='\(xdg2.path)' timeout 10 '\(paas)' up --no-color > /dev/null 2> '\(tmp.path)/second.err'
        echo "second=$? first=$first"
        cat '\(tmp.path)/second.err'
        TMPDIR='\(tmp.path)' XDG_RUNTIME_DIR='\(xdg1.path)' '\(paas)' ps > /dev/null; echo "ps=$?"
        kill -TERM $first; wait $first; echo "firstexit=$?"
        """
        let r = try Running(["-m", "sh", "-c", script], executable: "/usr/bin/unshare")
        #expect(r.waitForExit(timeout: 30) == 0, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("second=75") && r.stdout.contains("ps=0") && r.stdout.contains("firstexit=0"), "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("already running"), "\(r.stdout)")
    }

    /// The `${TMPDIR:-/tmp}/paas-UID` fallback is refused unless it is our own 0700 directory.
    @Test func aPlantedFallbackDirectoryIsRefused() throws {
        let app = try TempApp(procfile: "idle: exec sleep 1000\n", files: [".paas": "not a directory\n"])
        defer { app.remove() }
        let tmp = try TempApp()
        defer { tmp.remove() }
        let dir = tmp.file("paas-\(geteuid())")
        let env = ["TMPDIR": tmp.path, "XDG_RUNTIME_DIR": ""]
        // A symbolic link to a directory of "someone else's".
        let elsewhere = try TempApp()
        defer { elsewhere.remove() }
        try FileManager.default.createSymbolicLink(atPath: dir, withDestinationPath: elsewhere.path)
        let link = try runPaas(["up"], in: app.path, environment: env, timeout: 10)
        #expect(link.status == 71 && link.stderr.contains("refusing \(dir)") && link.stderr.contains("symbolic link"), "\(link)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: elsewhere.path)) ?? ["?"]).isEmpty)
        try FileManager.default.removeItem(atPath: dir)
        // Open to everyone.
        #expect(mkdir(dir, 0o700) == 0 && chmod(dir, 0o777) == 0)
        let open = try runPaas(["up"], in: app.path, environment: env, timeout: 10)
        #expect(open.status == 71 && open.stderr.contains("mode is 777"), "\(open)")
        if geteuid() == 0 {
            #expect(chmod(dir, 0o700) == 0 && chown(dir, 65534, 65534) == 0)
            let foreign = try runPaas(["up"], in: app.path, environment: env, timeout: 10)
            #expect(foreign.status == 71 && foreign.stderr.contains("belongs to uid 65534"), "\(foreign)")
            #expect(chown(dir, 0, 0) == 0)
        }
        // Ours and 0700: accepted.
        #expect(chmod(dir, 0o700) == 0)
        let paas = try Running(["up", "--no-color"], in: app.path, environment: env)
        #expect(paas.waitForOutput("idle.1 started"), "\(paas.stderr)")
        #expect(try runPaas(["ps"], in: app.path, environment: env).status == 0)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// CPU seconds (user + system) `pid` has used, from /proc/PID/stat.
    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { return nil }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// `count` clients that connect and say nothing; once all are in, each waits for paas to
    /// close it (evicted to make room, or timed out after 10 s) and the script prints how many were.
    static func silentClients(_ socket: String, count: Int) throws -> Running {
        try Running(["python3", "-c", """
        import socket,sys,select,time
        held=[]
        for i in range(int(sys.argv[2])):
            # A blocking connect waits in the backlog until paas accepts (or evicts to make room).
            s=socket.socket(socket.AF_UNIX)
            try:
                s.connect(sys.argv[1]); held.append(s)
            except OSError:
                s.close()
        print('connected', len(held), flush=True)
        sys.stdin.readline()
        closed=0; deadline=time.time()+30
        while held and time.time()<deadline:
            ready,_,_=select.select(held,[],[],1)
            for s in ready:
                try:
                    while s.recv(65536): pass
                except OSError:
                    pass
                held.remove(s); closed+=1
        print('closed', closed, 'open', len(held), flush=True)
        """, socket, String(count)], executable: "/usr/bin/env", stdin: true)
    }

    /// Measures paas's CPU over a fixed window of about two seconds.
    static func cpuShare(_ pid: Int32) throws -> (used: Double, elapsed: Double) {
        let cpu0 = try #require(Self.cpuSeconds(pid))
        let window = Date()
        _ = eventually(timeout: 2) { false } // a fixed measuring window, not a wait for a condition
        return (try #require(Self.cpuSeconds(pid)) - cpu0, Date().timeIntervalSince(window))
    }

    @Test func aThousandSilentClientsUnderALowDescriptorLimit() throws {
        let app = try TempApp(procfile: "idle: exec sleep 1000\n")
        defer { app.remove() }
        let paas = try Running(["-c", "ulimit -n 128; exec '\(Binaries.paas)' up --no-color -t 2"], in: app.path, executable: "/bin/bash")
        #expect(paas.waitForOutput("idle.1 started"))
        let clients = try Self.silentClients(app.file(".paas/control.sock"), count: 1000)
        defer { clients.signal(SIGKILL) }
        #expect(clients.waitForOutput("connected", timeout: 60), "\(clients.stderr)")
        #expect(clients.stdout.contains("connected 1000"))
        // Idle: a loop spinning on accept would burn the whole window.
        let cpu = try Self.cpuShare(paas.pid)
        #expect(cpu.used < 0.2 * cpu.elapsed, "paas used \(cpu.used) s of CPU in \(cpu.elapsed) s")
        // The control socket still answers, and the formation scales.
        #expect(eventually(timeout: 20) { (try? runPaas(["scale", "idle=3"], in: app.path, timeout: 15).status) == 0 })
        #expect(eventually(timeout: 10) { ((try? ControlTests.ps(app)) ?? []).count == 3 })
        // Every silent client is closed: evicted to make room, or after the 10 s idle timeout.
        clients.writeStdin("\n")
        #expect(clients.waitForOutput("closed", timeout: 40))
        #expect(clients.waitForOutput(" open 0", timeout: 5), "\(clients.stdout)")
        #expect(paas.process.isRunning)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// Descriptors run out before the connection cap: `accept` fails with EMFILE, and paas
    /// evicts a silent client or rests the listener instead of spinning.
    @Test func silentClientsWhenDescriptorsRunOut() throws {
        let app = try TempApp(procfile: "idle: exec sleep 1000\n")
        defer { app.remove() }
        // About 14 descriptors of its own, 20 for ten children, a cap of 10 connections: 44 > 40.
        let paas = try Running(["-c", "ulimit -n 40; exec '\(Binaries.paas)' up --no-color -t 2 -m idle=10"], in: app.path, executable: "/bin/bash")
        #expect(paas.waitForOutput("idle.10 started"))
        let clients = try Self.silentClients(app.file(".paas/control.sock"), count: 300)
        defer { clients.signal(SIGKILL) }
        #expect(clients.waitForOutput("connected", timeout: 60), "\(clients.stderr)")
        #expect(clients.stdout.contains("connected 300"))
        let cpu = try Self.cpuShare(paas.pid)
        #expect(cpu.used < 0.2 * cpu.elapsed, "paas used \(cpu.used) s of CPU in \(cpu.elapsed) s")
        #expect(eventually(timeout: 20) { (try? runPaas(["logs", "-n", "3"], in: app.path, timeout: 15).status) == 0 })
        #expect(paas.process.isRunning)
        clients.writeStdin("\n")
        #expect(clients.waitForOutput("closed", timeout: 40))
        #expect(clients.waitForOutput(" open 0", timeout: 5), "\(clients.stdout)")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// When every connection is a follower (they never end by themselves), one more client
    /// is refused with a reason instead of waiting forever; once followers leave, it is served.
    @Test func aFullHouseOfFollowersRefusesWithAReason() throws {
        let app = try TempApp(procfile: "idle: exec sleep 1000\n")
        defer { app.remove() }
        // ulimit -n 128: a cap of 32 connections.
        let paas = try Running(["-c", "ulimit -n 128; exec '\(Binaries.paas)' up --no-color -t 2"], in: app.path, executable: "/bin/bash")
        #expect(paas.waitForOutput("idle.1 started"))
        let followers = try Running(["python3", "-c", """
        import socket,sys
        held=[]
        for i in range(32):
            s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'{"v":1,"cmd":"logs","lines":0,"follow":true}\\n'); s.recv(65536); held.append(s)
        print('following', len(held), flush=True)
        sys.stdin.readline()
        """, app.file(".paas/control.sock")], executable: "/usr/bin/env", stdin: true)
        defer { followers.signal(SIGKILL) }
        #expect(followers.waitForOutput("following 32", timeout: 30), "\(followers.stderr)")
        let refused = try runPaas(["ps"], in: app.path, timeout: 15)
        #expect(refused.status == 1 && refused.stderr.contains("too many control connections"), "\(refused)")
        followers.closeStdin()
        #expect(followers.waitForExit() == 0)
        #expect(eventually(timeout: 10) { (try? runPaas(["ps"], in: app.path, timeout: 15).status) == 0 })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// Resident memory of `pid` in KiB (VmRSS).
    static func rssKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        }
        return nil
    }

    @Test func aFollowerThatKeepsUpSurvivesHugeLines() throws {
        let app = try TempApp(procfile: """
        big: echo ready; while [ ! -f go ]; do sleep 0.01; done; head -c 1048576 /dev/zero | tr '\\0' x; echo; head -c 200000 /dev/zero | tr '\\0' '\\001'; echo; echo after; exec sleep 1000

        """)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "2"], in: app.path, watching: ["after"])
        #expect(paas.waitForOutput("ready"))
        let follower = try Running(["logs", "-f", "-n", "1", "--json", "big"], in: app.path, watching: ["after"])
        defer { follower.signal(SIGKILL) }
        #expect(follower.waitForOutput("ready"))
        try app.write("go", "")
        #expect(eventually(timeout: 20) { follower.count("after") == 1 }, "\(follower.stderr)")
        #expect(follower.process.isRunning && !follower.stderr.contains("cut off"), "\(follower.stderr)")
        let texts = try follower.stdoutLines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])["text"] as? String ?? "" }
        #expect(texts.contains { $0.utf8.count == 1_048_576 && $0.allSatisfy { $0 == "x" } })
        #expect(texts.contains { $0.unicodeScalars.count == 200_000 && $0.unicodeScalars.allSatisfy { $0.value == 1 } })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// Twenty `logs -n 100000` clients that never read: paas streams the history as each
    /// socket drains, so they cost a chunk each, not a copy of the 8 MiB history.
    @Test func clientsThatDoNotReadTheHistoryCostLittleMemory() throws {
        let app = try TempApp(procfile: "talker: seq -f 'history line %06g yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy' 1 100000; echo done talking; exec sleep 1000\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "2"], in: app.path, watching: ["done talking"])
        #expect(eventually(timeout: 30) { paas.count("done talking") == 1 })
        let before = try #require(Self.rssKiB(paas.pid))
        let clients = try Running(["python3", "-c", """
        import socket,sys,signal,fcntl,termios,struct,time
        held=[]
        for i in range(20):
            s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'{"v":1,"cmd":"logs","lines":100000}\\n'); held.append(s)
        def queued(s):
            return struct.unpack('i', fcntl.ioctl(s.fileno(), termios.FIONREAD, b'\\0\\0\\0\\0'))[0]
        deadline=time.time()+20
        while time.time()<deadline and not all(queued(s)>0 for s in held):
            time.sleep(0.01)
        print('served', sum(queued(s)>0 for s in held), flush=True)
        signal.pause()
        """, app.file(".paas/control.sock")], executable: "/usr/bin/env")
        defer { clients.signal(SIGKILL) }
        #expect(clients.waitForOutput("served 20", timeout: 30), "\(clients.stdout) \(clients.stderr)")
        let after = try #require(Self.rssKiB(paas.pid))
        #expect(after - before < 32 * 1024, "VmRSS went from \(before) KiB to \(after) KiB")
        // They still get everything when they read: one of them, read to the end.
        let reader = try Self.raw(app.file(".paas/control.sock"), #"b'{"v":1,"cmd":"logs","lines":100000,"targets":["talker"]}\n'"#)
        #expect(reader.waitForExit(timeout: 30) == 0)
        #expect(reader.stdoutLines.count > 50_000 && reader.stdoutLines.last?.contains("done talking") == true)
        #expect(paas.process.isRunning)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }
}
