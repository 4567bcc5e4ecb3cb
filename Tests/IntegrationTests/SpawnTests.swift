import Foundation
import Testing

/// The spawn seam against real processes: no shell left behind a simple command, the
/// guardian in its own session, and what happens when paas or the guardian is killed.
@Suite(.serialized)
struct SpawnTests {
    /// `comm` of a live process (the executable's name, 15 bytes at most).
    static func comm(_ pid: Int) -> String? {
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .newlines)
    }

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
}
