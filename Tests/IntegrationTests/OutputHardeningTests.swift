import Foundation
import Testing

/// stdout of unusual kinds (issue 8, faults 8, 9 and 21): a non-blocking pipe, a pipe nobody
/// reads at shutdown, a full device, a file-size limit, a terminal that hangs up.
@Suite struct OutputHardeningTests {
    /// Runs `paas ARGS` in `directory` from a Python parent that owns paas's stdout pipe.
    /// `setup` runs with `r`, `w` (the pipe) before paas starts; `after` runs with `p` (paas).
    static func underPython(_ args: [String], in directory: String, setup: String = "", after: String) throws -> Running {
        try Running(["python3", "-c", """
        import os,sys,subprocess,signal,time,fcntl
        r,w=os.pipe()
        \(setup)
        p=subprocess.Popen(sys.argv[2:],stdout=w,cwd=sys.argv[1])
        os.close(w)
        print('pid',p.pid,flush=True)
        \(after)
        """, directory, Binaries.paas] + args, executable: "/usr/bin/env")
    }

    /// Whether a thread of `pid` sleeps in a pipe write (its stdout is full).
    static func blockedInPipeWrite(_ pid: Int32) -> Bool {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.contains { ((try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/wchan", encoding: .utf8)) ?? "").hasSuffix("pipe_write") }
    }

    static func children(_ pid: Int32) -> [Int32] { ProcTable.children(of: pid) }

    static func paasPID(_ parent: Running) throws -> Int32 {
        #expect(parent.waitForOutput("pid "))
        let line = try #require(parent.stdoutLines.first { $0.hasPrefix("pid ") })
        return try #require(Int32(line.dropFirst(4)))
    }

    @Test func aNonBlockingStdoutThatFillsIsWaitedFor() throws {
        let app = try TempApp(procfile: "counter: seq -f 'n %06g' 1 50000\n")
        defer { app.remove() }
        // The parent sets O_NONBLOCK on the pipe (as node does) and reads slowly.
        let parent = try Self.underPython(["up", "--no-color"], in: app.path, setup: "os.set_blocking(w, False)", after: """
        f=os.fdopen(r,'rb')
        data=b''
        while True:
            b=os.read(r,8192)
            if not b: break
            data+=b
            time.sleep(0.002)
        print('status',p.wait(),flush=True)
        nums=[int(l.split(b' n ')[1]) for l in data.split(b'\\n') if b' n ' in l]
        print('lines',len(nums),'ordered',nums==list(range(1,50001)),flush=True)
        print('stopped',b'all processes stopped' in data,flush=True)
        """)
        #expect(parent.waitForExit(timeout: 60) == 0, "\(parent.stderr)")
        #expect(parent.stdout.contains("status 0"))
        #expect(parent.stdout.contains("lines 50000 ordered True"), "\(parent.stdout)")
        #expect(parent.stdout.contains("stopped True"))
    }

    @Test func aStalledStdoutDoesNotHoldTheShutdown() throws {
        let app = try TempApp(procfile: "chatty: yes 'a line of output nobody reads'\n")
        defer { app.remove() }
        // Nobody reads the pipe: it fills, and paas's writer blocks in write().
        let parent = try Self.underPython(["up", "--no-color", "-t", "1"], in: app.path, after: "print('status',p.wait(),flush=True)")
        defer { parent.signal(SIGKILL) }
        let pid = try Self.paasPID(parent)
        #expect(eventually(timeout: 10) { Self.blockedInPipeWrite(pid) })
        kill(pid, SIGINT)
        // Children stop within -t 1, the last flush gives up after another 1 s.
        let started = Date()
        #expect(parent.waitForOutput("status 0", timeout: 10), "\(parent.stdout) \(parent.stderr)")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(parent.stderr.contains("bytes of output were not written"), "\(parent.stderr)")
    }

    @Test func aSecondSIGINTEndsAStalledFinalFlushAtOnce() throws {
        let app = try TempApp(procfile: "chatty: yes 'a line of output nobody reads'\n")
        defer { app.remove() }
        let parent = try Self.underPython(["up", "--no-color", "-t", "60"], in: app.path, after: "print('status',p.wait(),flush=True)")
        defer { parent.signal(SIGKILL) }
        let pid = try Self.paasPID(parent)
        #expect(eventually(timeout: 10) { Self.blockedInPipeWrite(pid) })
        kill(pid, SIGINT)
        // yes dies of SIGTERM; the guardian goes last (or, with a cgroup, waits for paas to
        // exit and then removes it); then paas waits on stdout (60 s).
        #expect(eventually(timeout: 10) { Self.children(pid).allSatisfy { (try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8)) == "paas-guardian\n" } })
        let started = Date()
        kill(pid, SIGINT)
        #expect(parent.waitForOutput("status 0", timeout: 10), "\(parent.stdout) \(parent.stderr)")
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(parent.stderr.contains("interrupted while writing the last lines"), "\(parent.stderr)")
    }

    @Test func aFullDeviceIsAnErrorNotAStop() throws {
        let app = try TempApp(procfile: "a: echo hello; exec sleep 1000\n")
        defer { app.remove() }
        let r = try Running(["-c", "exec '\(Binaries.paas)' up --no-color -t 2 > /dev/full"], in: app.path, executable: "/bin/sh")
        #expect(r.waitForExit() == 74)
        #expect(r.stderr.contains("could not write to stdout: No space left on device (ENOSPC)"), "\(r.stderr)")
        #expect(ProcTable.pids(matching: app.path).isEmpty)
    }

    @Test func aFileSizeLimitIsAnErrorNotACrash() throws {
        let app = try TempApp(procfile: "a: yes 'a line for the log file'\n")
        defer { app.remove() }
        let r = try Running(["-c", "ulimit -f 64; exec '\(Binaries.paas)' up --no-color -t 2 > out.log"], in: app.path, executable: "/bin/bash")
        #expect(r.waitForExit() == 74)
        #expect(r.stderr.contains("(EFBIG)"), "\(r.stderr)")
    }

    /// A terminal that hangs up (issue 9 item 3): killing the `script` that gives paas its
    /// terminal stops every process, whether through SIGHUP or through EIO on the write.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "needs script(1)"))
    func aHungUpTerminalStopsEverything() throws {
        let marker = "paashup\(UUID().uuidString.prefix(6))"
        let app = try TempApp(procfile: "chatty: sh -c 'while :; do echo tick; sleep 0.05; done; : \(marker)'\nquiet: sh -c 'sleep 1000; : \(marker)'\n")
        defer { app.remove() }
        let session = try Running(["-qfec", "'\(Binaries.paas)' up --no-color -t 2", "/dev/null"], in: app.path, executable: "/usr/bin/script")
        #expect(session.waitForOutput("tick"))
        #expect(ProcTable.pids(matching: marker).count >= 2)
        kill(session.pid, SIGKILL)
        #expect(eventually(timeout: 10) { ProcTable.pids(matching: marker).isEmpty }, "left: \(ProcTable.pids(matching: marker))")
        #expect(eventually(timeout: 10) { ProcTable.pids(matching: "\(Binaries.paas)' up").isEmpty && ProcTable.pids(matching: app.path).isEmpty })
    }

    /// The same hangup when paas is in a session of its own (no SIGHUP reaches it): only the
    /// failing write says the terminal is gone. EIO is a requested stop, exit 0, not 74.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script") && FileManager.default.isExecutableFile(atPath: "/usr/bin/setsid"), "needs script(1) and setsid(1)"))
    func aHungUpTerminalIsARequestedStopEvenWithoutSIGHUP() throws {
        let marker = "paaseio\(UUID().uuidString.prefix(6))"
        let app = try TempApp(procfile: "chatty: sh -c 'while :; do echo tick; sleep 0.05; done; : \(marker)'\nquiet: sh -c 'sleep 1000; : \(marker)'\n")
        defer { app.remove() }
        let command = "setsid -w sh -c \"'\(Binaries.paas)' up --no-color -t 2; echo \\$? > status\""
        let session = try Running(["-qfec", command, "/dev/null"], in: app.path, executable: "/usr/bin/script")
        #expect(session.waitForOutput("tick"))
        #expect(ProcTable.pids(matching: marker).count >= 2)
        kill(session.pid, SIGKILL)
        #expect(eventually(timeout: 10) { app.read("status")?.hasSuffix("\n") == true }, "paas did not end")
        #expect(app.read("status")?.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        #expect(eventually(timeout: 10) { ProcTable.pids(matching: marker).isEmpty }, "left: \(ProcTable.pids(matching: marker))")
    }
}
