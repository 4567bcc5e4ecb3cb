import Foundation
import Testing

/// `paas up` against real children: no orphans, shutdown, exit statuses, release phase.
@Suite(.serialized)
struct UpLifecycleTests {
    @Test func killMinus9LeavesNoChildGrandchildOrListeningPort() throws {
        let base = Ports.base()
        let marker = "paask9\(UUID().uuidString.prefix(6))"
        let app = try TempApp(procfile: """
        web: ./\(marker)-listener & sh -c 'sleep 1000; : \(marker)'
        worker: sh -c 'sleep 1001; : \(marker)' & exec sh -c 'sleep 1002; : \(marker)'
        """)
        defer { app.remove() }
        try FileManager.default.copyItem(atPath: try Binaries.fixture("listener"), toPath: app.file("\(marker)-listener"))
        let paas = try Running(["up", "--no-color", "-p", "\(base)"], in: app.path)
        #expect(eventually { portAccepts(base) && paas.stdout.contains("worker.1 started") })
        // web: sh, listener, sh; worker: sh (exec'd into the second sh), sh. The sleeps carry no marker.
        #expect(eventually { ProcTable.pids(matching: marker).count >= 5 })
        let before = ProcTable.pids(matching: marker)
        paas.signal(SIGKILL)
        // Within 1 s, nothing it started is alive and the port no longer accepts.
        let clean = eventually(timeout: 1) {
            before.allSatisfy { !ProcTable.isAlive($0) } && ProcTable.pids(matching: marker).isEmpty && !portAccepts(base)
        }
        #expect(clean, "left behind: \(ProcTable.pids(matching: marker)) port accepts: \(portAccepts(base))")
        #expect(paas.waitForExit() == 128 + SIGKILL)
    }

    @Test func normalShutdownStopsGrandchildrenInTheGroupAndDaemonsInTheirOwnSession() throws {
        let marker = "paas-gc-\(UUID().uuidString.prefix(6))"
        let app = try TempApp(procfile: """
        forker: sh -c 'sleep 2001; : \(marker)' & echo forked; wait
        daemon: setsid sh -c 'sleep 2002; : \(marker)' & echo daemonized; sleep 2003
        """)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "3"], in: app.path)
        #expect(paas.waitForOutput("forked") && paas.waitForOutput("daemonized"))
        #expect(eventually { ProcTable.pids(matching: marker).count >= 4 })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
        #expect(ProcTable.pids(matching: marker).isEmpty, "left behind: \(ProcTable.pids(matching: marker))")
        #expect(paas.stdout.contains("all processes stopped"))
    }

    @Test func anAppBehindAShellGetsOneSIGTERMAndTimeToStop() throws {
        // `; true` keeps /bin/sh around the app: the shell dies at once on SIGTERM, the app
        // (in the same group) shuts down slowly and must not be sent SIGTERM a second time.
        let script = """
        import signal, time
        n = [0]
        def h(*a):
            n[0] += 1
            print('TERM', n[0], flush=True)
        signal.signal(signal.SIGTERM, h)
        print('ready', flush=True)
        while n[0] == 0:
            signal.pause()
        time.sleep(0.5)  # the app's own slow, graceful shutdown: what the test gives time to
        print('stopped after', n[0], flush=True)
        """
        let app = try TempApp(procfile: "slow: python3 slow.py; true\n", files: ["slow.py": script])
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "5"], in: app.path)
        #expect(paas.waitForOutput("ready"))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
        let texts = logLines(paas.stdout).filter { $0.name == "slow.1" }.map(\.text)
        #expect(texts.contains("TERM 1") && texts.contains("stopped after 1"), "\(paas.stdout)")
        #expect(!texts.contains("TERM 2"))
    }

    @Test func childrenStartCleanOnlyStdioEmptyMaskDefaultSignalsNullStdin() throws {
        // Each line is printed by a process that exec'd from the shell paas started.
        let app = try TempApp(procfile: """
        fds: exec ls -1 /proc/self/fd
        signals: exec grep -E '^(SigBlk|SigIgn):' /proc/self/status
        stdin: exec readlink /proc/self/fd/0
        group: exec sh -c 'echo pgid=$(cut -d" " -f5 /proc/$$/stat) pid=$$'
        idle: exec sleep 1000
        """, files: ["app.json": #"{"paas": {"processes": {"fds": {"allow_exit": true}, "signals": {"allow_exit": true}, "stdin": {"allow_exit": true}, "group": {"allow_exit": true}}}}"#])
        defer { app.remove() }
        // The test runner hands paas SIGINT ignored: the children must still get defaults.
        let paas = try Running(["up", "--no-color", "--no-timestamp"], in: app.path)
        #expect(paas.waitForOutput("stdin.1") && paas.waitForOutput("SigIgn") && paas.waitForOutput("pgid="))
        #expect(eventually { paas.stdout.components(separatedBy: "finished; the rest keep running").count - 1 == 4 })
        paas.signal(SIGTERM)
        _ = paas.waitForExit()
        let lines = logLines(paas.stdout)
        // ls holds one descriptor of its own for the directory it lists (3).
        #expect(lines.filter { $0.name == "fds.1" }.map(\.text) == ["0", "1", "2", "3"])
        #expect(lines.filter { $0.name == "signals.1" }.map { $0.text.replacingOccurrences(of: "\t", with: " ") } == ["SigBlk: 0000000000000000", "SigIgn: 0000000000000000"])
        #expect(lines.first { $0.name == "stdin.1" }?.text == "/dev/null")
        let group = try #require(lines.first { $0.name == "group.1" }?.text)
        let fields = group.split(separator: " ").map { $0.split(separator: "=").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "" }
        #expect(fields.count == 2 && fields[0] == fields[1], "each child leads its own process group: \(group)")
    }

    @Test func childIgnoringSIGTERMIsKilledAtTheDeadline() throws {
        let app = try TempApp(procfile: """
        stubborn: trap '' TERM; echo ready; while :; do sleep 0.05; done
        """)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "1"], in: app.path)
        #expect(paas.waitForOutput("ready"))
        let start = Date()
        paas.signal(SIGINT)
        #expect(paas.waitForExit() == 0)
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed >= 0.9 && elapsed < 5, "took \(elapsed) s")
        #expect(paas.stdout.contains("sending SIGTERM to stubborn.1"))
        #expect(paas.stdout.contains("timeout after 1s"))
        #expect(paas.stdout.contains("sending SIGKILL to stubborn.1"))
        #expect(paas.stdout.contains("stubborn.1 killed by SIGKILL"))
    }

    @Test func secondInterruptKillsAtOnce() throws {
        let app = try TempApp(procfile: """
        stubborn: trap '' TERM INT; echo ready; while :; do sleep 0.05; done
        """)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-t", "60"], in: app.path)
        #expect(paas.waitForOutput("ready"))
        paas.signal(SIGINT)
        #expect(paas.waitForOutput("sending SIGTERM to stubborn.1"))
        let start = Date()
        paas.signal(SIGINT)
        #expect(paas.waitForExit(timeout: 10) == 0)
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(paas.stdout.contains("received second SIGINT, killing all processes"))
    }

    @Test(arguments: [
        ("exit 3", Int32(3), "exited with status 3"),
        ("exit 0", Int32(0), "exited with status 0"),
        ("kill -KILL $$", Int32(128 + 9), "killed by SIGKILL"),
        ("kill -TERM $$", Int32(128 + 15), "killed by SIGTERM"),
    ])
    func aChildExitingStopsTheRestWithItsStatus(command: String, status: Int32, event: String) throws {
        let app = try TempApp(procfile: """
        steady: trap 'echo steady stopping; exit 0' TERM; echo up; while :; do sleep 0.05; done
        quitter: sleep 0.3; \(command)
        """)
        defer { app.remove() }
        let result = try runPaas(["up", "--no-color"], in: app.path)
        #expect(result.status == status)
        #expect(result.stdout.contains("quitter.1 \(event)"))
        #expect(result.stdout.contains("sending SIGTERM to steady.1"))
        #expect(result.stdout.contains("steady stopping"))
    }

    // SIGHUP reloads (ReloadTests); a hung-up terminal stops through its failed writes.
    @Test(arguments: [SIGTERM, SIGINT])
    func aRequestedShutdownExitsZero(signal: Int32) throws {
        let app = try TempApp(procfile: "a: echo ready; exec sleep 1000\nb: exec sleep 1001\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("ready") && paas.waitForOutput("b.1 started"))
        paas.signal(signal)
        #expect(paas.waitForExit() == 0)
        #expect(paas.stdout.contains("a.1 killed by SIGTERM") && paas.stdout.contains("b.1 killed by SIGTERM"))
    }

    @Test func releaseRunsFirstAndItsFailureStartsNothing() throws {
        let app = try TempApp(procfile: """
        release: echo migrating; exit 4
        web: echo web started; sleep 1000
        """)
        defer { app.remove() }
        let failed = try runPaas(["up", "--no-color"], in: app.path)
        #expect(failed.status == 4)
        #expect(logLines(failed.stdout).contains { $0.name == "release" && $0.text == "migrating" })
        #expect(failed.stdout.contains("release exited with status 4"))
        #expect(!failed.stdout.contains("web.1"))

        try app.write("Procfile", "release: echo migrating > migrated\nweb: cat migrated; exit 0\n")
        let ok = try runPaas(["up", "--no-color"], in: app.path)
        #expect(ok.status == 0)
        #expect(logLines(ok.stdout).contains { $0.name == "web.1" && $0.text == "migrating" })
        let releaseLine = try #require(ok.stdout.range(of: "release exited with status 0"))
        let webLine = try #require(ok.stdout.range(of: "web.1 started"))
        #expect(releaseLine.lowerBound < webLine.lowerBound)
    }

    @Test func namingTypesRunsOnlyThoseAndSkipsRelease() throws {
        let app = try TempApp(procfile: "release: echo RELEASED\nweb: echo web $PORT; exit 0\nworker: echo worker; sleep 1000\n")
        defer { app.remove() }
        let result = try runPaas(["up", "--no-color", "-p", "7000", "web"], in: app.path)
        #expect(result.status == 0)
        #expect(logLines(result.stdout).contains { $0.name == "web.1" && $0.text == "web 7000" })
        #expect(!result.stdout.contains("RELEASED") && !result.stdout.contains("worker"))

        let unknown = try runPaas(["up", "nope"], in: app.path)
        #expect(unknown.status == 78)
        #expect(unknown.stderr.contains("no process type \"nope\""))
    }

    @Test func formationCountsIncludingZero() throws {
        let app = try TempApp(procfile: "web: echo $PS $PORT; sleep 1000\nworker: echo worker\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=3,worker=0", "-p", "8000"], in: app.path)
        #expect(paas.waitForOutput("web.3 started"))
        #expect(eventually { logLines(paas.stdout).contains { $0.name == "web.3" && $0.text == "web.3 8002" } })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
        #expect(!paas.stdout.contains("worker"))
        let lines = logLines(paas.stdout)
        #expect(lines.contains { $0.name == "web.1" && $0.text == "web.1 8000" } && lines.contains { $0.name == "web.2" && $0.text == "web.2 8001" })

        let none = try runPaas(["up", "-m", "all=0"], in: app.path)
        #expect(none.status == 0)
        #expect(none.stdout.contains("nothing to run"))
    }

    @Test func environmentPrecedenceInheritedThenEnvFilesThenPortPSDyno() throws {
        let app = try TempApp(procfile: "show: echo \"A=$A B=$B C=$C PORT=$PORT PS=$PS DYNO=$DYNO N=${NOTIFY_SOCKET:-unset}\"\n",
                              files: [".env": "B=from-env-file\nC=file\nPORT=9999\nPS=wrong\n", "more.env": "C=later-$B\n"])
        defer { app.remove() }
        let result = try runPaas(["up", "--no-color", "-e", ".env,more.env"], in: app.path,
                                 environment: ["A": "inherited", "B": "inherited", "NOTIFY_SOCKET": "/run/x"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("A=inherited B=from-env-file C=later-from-env-file PORT=9999 PS=show.1 DYNO=show.1 N=unset"), "\(result.stdout)")
    }

    @Test func aProcessThatCannotStartIsReportedNotSilent() throws {
        let app = try TempApp(procfile: "web: echo hi\n")
        defer { app.remove() }
        let result = try runPaas(["up", "--no-color", "-f", app.file("Procfile"), "-d", app.path + "/missing-dir"])
        #expect(result.status == 71)
        #expect(result.stdout.contains("could not start web.1: chdir failed: No such file or directory (ENOENT)"), "\(result.stdout)")
    }
}
