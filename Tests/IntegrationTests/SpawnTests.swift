import Foundation
import Testing

/// The spawn seam against real processes: no shell left behind a simple command, the
/// guardian in its own session, and what happens when paas or the guardian is killed.
@Suite(.serialized)
struct SpawnTests {
    /// `comm` of a live process (the executable's name, 15 bytes at most).
    static func comm(_ pid: Int) -> String? { ProcTable.comm(Int32(pid)) }

    /// Field `n` (1-based, as in proc(5)) of /proc/PID/stat, after the command name.
    static func statField(_ pid: Int, _ n: Int) -> Int? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return n - 3 < fields.count ? Int(fields[n - 3]) : nil
    }

    static func environment(_ pid: Int) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func simpleCommandsLoseTheirShellAndListsKeepIt() throws {
        let base = Ports.base()
        let app = try TempApp(procfile: """
        plain: ./listener
        port: ./listener --port $PORT
        quoted: "./listener" 'a b' "c $PORT" > "out file"
        assign: VAR=1 ./listener
        both: echo first && echo second && ./listener
        """)
        defer { app.remove() }
        try FileManager.default.copyItem(atPath: try Binaries.fixture("listener"), toPath: app.file("listener"))
        let paas = try Running(["up", "--no-color", "-p", "\(base)"], in: app.path)
        defer { paas.signal(SIGTERM); _ = paas.waitForExit() }
        let ports = [base, base + 100, base + 200, base + 300, base + 400]
        #expect(eventually { ports.allSatisfy(portAccepts) }, "\(paas.stdout)")
        let pids = ControlTests.pids(try ControlTests.ps(app))
        for name in ["plain.1", "port.1", "quoted.1", "assign.1"] {
            let pid = try #require(pids[name])
            // The pid paas reports is the listener itself, and its parent is paas: no shell between.
            #expect(Self.comm(pid) == "listener", "\(name): pid \(pid) runs \(Self.comm(pid) ?? "nothing")")
            #expect(Self.statField(pid, 4) == Int(paas.pid), "\(name): parent of \(pid)")
        }
        #expect(Self.environment(try #require(pids["assign.1"])).contains("VAR=1"))
        #expect(FileManager.default.fileExists(atPath: app.file("out file")), "the redirection still applies")
        // A list keeps its shell, and every command of it runs.
        let both = try #require(pids["both.1"])
        #expect(Self.comm(both) == "sh")
        let lines = logLines(paas.stdout).filter { $0.name == "both.1" }.map(\.text)
        #expect(lines.starts(with: ["first", "second"]), "\(lines)")
    }

    /// Live children of `pid` running `comm`.
    static func children(of pid: Int32, comm: String) -> [Int] {
        ProcTable.children(of: pid).filter { ProcTable.comm($0) == comm && ProcTable.isAlive($0) }.map(Int.init)
    }

    /// The pid in `NAME started (pid N...`.
    static func startedPID(_ stdout: String, _ name: String) -> Int? {
        guard let r = stdout.range(of: "\(name) started (pid ") else { return nil }
        return Int(stdout[r.upperBound...].prefix { $0.isNumber })
    }

    /// A process that ignores SIGTERM, in the instance's group, with the marker in its command line.
    static func procfile(_ marker: String) -> String {
        "w: sh -c 'trap \"\" TERM; while :; do sleep 1; done; : \(marker)' & echo started; wait\n"
    }

    @Test func killMinus9OfPaassOwnProcessGroupLeavesNoGrandchild() throws {
        let marker = "paaspgid\(UUID().uuidString.prefix(6))"
        let app = try TempApp(procfile: Self.procfile(marker))
        defer {
            app.remove()
            for pid in ProcTable.pids(matching: marker) { kill(pid, SIGKILL) }
        }
        // setsid: paas leads its own process group (and session), as under a terminal or timeout(1).
        let run = try Running(["-w", Binaries.paas, "up", "--no-color"], in: app.path, executable: "/usr/bin/setsid")
        #expect(run.waitForOutput("started"))
        #expect(eventually { ProcTable.pids(matching: marker).count >= 2 }) // the instance's shell and its grandchild
        let leader = try #require(Self.startedPID(run.stdout, "w.1"))
        let paas = try #require(Self.statField(leader, 4))
        try #require(Self.statField(paas, 5) == paas, "paas leads its process group")
        var guardians: [Int] = []
        #expect(eventually { guardians = Self.children(of: Int32(paas), comm: "paas-guardian"); return !guardians.isEmpty })
        let guardian = try #require(guardians.first)
        #expect(Self.statField(guardian, 5) == guardian && Self.statField(guardian, 6) == guardian, "the guardian has its own session")
        // Its command line is its own: `pkill -f 'paas up'` does not take it along.
        let words = FileManager.default.contents(atPath: "/proc/\(guardian)/cmdline").map { $0.split(separator: 0).map { String(decoding: $0, as: UTF8.self) } }
        #expect(words == ["paas-guardian"])
        kill(-Int32(paas), SIGKILL) // what `kill -9 -PGID` and `timeout -s KILL` do
        #expect(eventually(timeout: 3) { ProcTable.pids(matching: marker).isEmpty }, "left behind: \(ProcTable.pids(matching: marker))")
        _ = run.waitForExit()
    }

    @Test func aKilledGuardianIsReportedAndReplacedAndTheNewOneGuards() throws {
        let marker = "paasguard\(UUID().uuidString.prefix(6))"
        let app = try TempApp(procfile: Self.procfile(marker))
        defer {
            app.remove()
            for pid in ProcTable.pids(matching: marker) { kill(pid, SIGKILL) }
        }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("started"))
        #expect(eventually { ProcTable.pids(matching: marker).count >= 2 })
        var guardians: [Int] = []
        #expect(eventually { guardians = Self.children(of: paas.pid, comm: "paas-guardian"); return !guardians.isEmpty })
        let first = try #require(guardians.first)
        kill(Int32(first), SIGKILL)
        #expect(paas.waitForOutput("the guardian (pid \(first)) killed by SIGKILL; started a new one (pid "), "\(paas.stdout)")
        #expect(paas.stdout.contains("watching 1 process group"))
        var second: [Int] = []
        #expect(eventually { second = Self.children(of: paas.pid, comm: "paas-guardian"); return second.count == 1 && second != [first] })
        // The new guardian holds the instance's group: kill -9 of paas leaves nothing behind.
        paas.signal(SIGKILL)
        #expect(eventually(timeout: 3) { ProcTable.pids(matching: marker).isEmpty }, "left behind: \(ProcTable.pids(matching: marker))")
        #expect(paas.waitForExit() == 128 + SIGKILL)
    }

    @Test func aHealthCheckCommandsGroupIsGuardedToo() throws {
        let marker = "paascheck\(UUID().uuidString.prefix(6))"
        // A startup check that hangs, with a grandchild in its group.
        let check = "sh -c 'sleep 1000; : \(marker)' & echo checking > check-started; wait"
        let app = try TempApp(procfile: "web: exec sleep 1000\n", files: ["app.json": """
        {"healthchecks": {"web": [{"type": "startup", "command": ["\(check)"], "timeout": 60, "attempts": 1}]}}
        """])
        defer {
            app.remove()
            for pid in ProcTable.pids(matching: marker) { kill(pid, SIGKILL) }
        }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(eventually { app.read("check-started") != nil && ProcTable.pids(matching: marker).count >= 2 }, "\(paas.stdout)")
        paas.signal(SIGKILL)
        #expect(eventually(timeout: 3) { ProcTable.pids(matching: marker).isEmpty }, "left behind: \(ProcTable.pids(matching: marker))")
        _ = paas.waitForExit()
    }

    /// Where the cgroup2 hierarchy is mounted read-write, if it is.
    static let cgroup2Mount: String? = {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if let dash = f.firstIndex(of: "-"), dash + 1 < f.count, f[dash + 1] == "cgroup2", !f[5].split(separator: ",").contains("ro") {
                return String(f[4])
            }
        }
        return nil
    }()

    /// Root may make cgroups here (the hierarchy is mounted read-write).
    static let cgroupsAvailable = geteuid() == 0 && cgroup2Mount != nil

    /// The cgroup2 path of `pid` (`0::PATH`).
    static func cgroup(_ pid: Int) -> String? {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) }
    }

    @Test(.enabled(if: SpawnTests.cgroupsAvailable, "needs a writable cgroup2 hierarchy (root, or a delegated cgroup)"))
    func aDaemonThatCalledSetsidDiesWithPaasThroughItsCgroup() throws {
        let marker = "paascg\(UUID().uuidString.prefix(6))"
        let app = try TempApp(procfile: "w: setsid sh -c 'sleep 1001; : \(marker)' & exec sh -c 'sleep 1000; : \(marker)'\n")
        defer {
            app.remove()
            for pid in ProcTable.pids(matching: marker) { kill(pid, SIGKILL) }
        }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("w.1 started"))
        #expect(eventually { ProcTable.pids(matching: marker).count >= 2 })
        let leader = try #require(Self.startedPID(paas.stdout, "w.1"))
        let group = try #require(Self.cgroup(leader))
        #expect(group.hasSuffix("/paas-\(paas.pid)"), "the instance is in paas's cgroup: \(group)")
        #expect(Self.cgroup(Int(paas.pid)) == group, "paas lives there too, so its children are born inside")
        var guardians: [Int] = []
        #expect(eventually { guardians = Self.children(of: paas.pid, comm: "paas-guardian"); return !guardians.isEmpty })
        #expect(Self.cgroup(try #require(guardians.first)) != group, "the guardian is outside the cgroup it kills")
        // setsid(1) may not have called setsid() yet when its process first shows up.
        var found: Int32?
        #expect(eventually { found = ProcTable.pids(matching: marker).first { Self.statField(Int($0), 6) == Int($0) }; return found != nil })
        let daemon = try #require(found, "the setsid daemon")
        #expect(Self.cgroup(Int(daemon)) == group)
        let dir = try #require(Self.cgroup2Mount) + group
        #expect(FileManager.default.fileExists(atPath: dir))
        paas.signal(SIGKILL)
        #expect(eventually(timeout: 3) { ProcTable.pids(matching: marker).isEmpty }, "left behind: \(ProcTable.pids(matching: marker))")
        #expect(eventually(timeout: 5) { !FileManager.default.fileExists(atPath: dir) }, "the guardian removes the emptied cgroup")
        _ = paas.waitForExit()
    }

    @Test(.enabled(if: SpawnTests.cgroupsAvailable, "needs a writable cgroup2 hierarchy (root, or a delegated cgroup)"))
    func aNormalExitRemovesTheCgroup() throws {
        let app = try TempApp(procfile: "w: echo ready; exec sleep 1000\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color"], in: app.path)
        #expect(paas.waitForOutput("ready"))
        let leader = try #require(Self.startedPID(paas.stdout, "w.1"))
        let group = try #require(Self.cgroup(leader))
        let dir = try #require(Self.cgroup2Mount) + group
        #expect(group.hasSuffix("/paas-\(paas.pid)") && FileManager.default.fileExists(atPath: dir))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
        // The guardian removes it once paas has left it by exiting.
        #expect(eventually(timeout: 5) { !FileManager.default.fileExists(atPath: dir) })
    }
}
