import CPaasSys
import Foundation
import Testing

@testable import PaasCore

/// The spawn seam with real processes, inside the test process: the guardian's table and
/// bookkeeping, the descriptor sweep of the child path, /proc reads and spawn errors.
@Suite(.serialized)
struct SpawnSeamTests {
    /// Starts `sleep` in its own session (so its pid is its process group) through a shell
    /// that exits at once; the sleep is re-parented away from the test process.
    static func detachedSleep() throws -> Int32 {
        // popen (fork, exec, waitpid of that one pid in pclose) rather than Foundation's Process.
        let pipe = try #require(popen("setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!", "r"))
        var line = [CChar](repeating: 0, count: 64)
        let text = fgets(&line, Int32(line.count), pipe).map { String(cString: $0) } ?? ""
        pclose(pipe)
        let pid = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(waitFor { Self.processGroup(pid) == pid }, "sleep \(pid) leads its own group")
        return pid
    }

    static func processGroup(_ pid: Int32) -> Int32? {
        guard let bytes = Processes.readWhole("/proc/\(pid)/stat"), let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 2)...].split(separator: UInt8(ascii: " "))
        return fields.count > 2 ? Int32(String(decoding: fields[2], as: UTF8.self)) : nil
    }

    /// Alive and not a zombie.
    static func isAlive(_ pid: Int32) -> Bool {
        guard let bytes = Processes.readWhole("/proc/\(pid)/stat"), let close = bytes.lastIndex(of: UInt8(ascii: ")")),
              close + 2 < bytes.count else { return false }
        return bytes[close + 2] != UInt8(ascii: "Z") && bytes[close + 2] != UInt8(ascii: "X")
    }

    static func waitFor(_ timeout: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(5_000) // polling interval of a deadline-bounded wait
        }
        return condition()
    }

    static func reap(_ pid: Int32) {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    /// Writes all of `bytes` to a non-blocking descriptor, waiting for room.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n > 0 { offset += n; continue }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, 1000)
        }
    }

    @Test func theGuardianKeepsMoreThan65536GroupsAndKillsThemAllWhenPaasDies() throws {
        let victim = try Self.detachedSleep()
        defer { kill(victim, SIGKILL) }
        var fd: Int32 = -1
        let guardian = paas_guardian_start(-1, nil, -1, &fd)
        try #require(guardian > 0)
        // 70,000 ids that no process can have (above the kernel's largest pid, 2^22), then a real
        // group: the old table stopped at 65,536 without a word and would have dropped it.
        var bytes: [UInt8] = []
        for i in 0..<70_000 { withUnsafeBytes(of: Int32(5_000_000 + i)) { bytes += $0 } }
        withUnsafeBytes(of: victim) { bytes += $0 }
        Self.writeAll(fd, bytes)
        #expect(Self.isAlive(victim))
        close(fd) // end of file without a goodbye: what the guardian sees when paas is SIGKILLed
        #expect(Self.waitFor { !Self.isAlive(victim) }, "the 70,001st group survived")
        Self.reap(guardian)
    }

    @Test func theGuardianRunsInItsOwnSessionWithOnlyItsPipe() throws {
        let guardian = try #require(Guardian())
        defer {
            guardian.release()
            Self.reap(guardian.pid)
        }
        #expect(Self.processGroup(guardian.pid) == guardian.pid, "it leads its own group (its own session)")
        #expect(Self.processGroup(guardian.pid) != getpgrp())
        // Named by the guardian itself, right after the fork.
        #expect(Self.waitFor { (try? String(contentsOfFile: "/proc/\(guardian.pid)/comm", encoding: .utf8)) == "paas-guardian\n" })
        let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(guardian.pid)/fd").sorted()
        #expect(fds == ["0", "1", "2"], "it keeps no descriptor of the test process: \(fds.map { ($0, (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(guardian.pid)/fd/\($0)")) ?? "") })")
    }

    @Test func aGroupIsForgottenOnlyOnceItIsEmpty() throws {
        let guardian = try #require(Guardian())
        defer {
            guardian.release()
            Self.reap(guardian.pid)
        }
        let group = try Self.detachedSleep()
        guardian.watch(group)
        // Its leader was "reaped" while the group lives on (a grandchild still in it): kept.
        #expect(guardian.reaped(group, .exited(0)) == nil)
        #expect(guardian.groups.contains(group))
        kill(group, SIGKILL)
        #expect(Self.waitFor(30) { !Signal.groupExists(group) }, "the killed sleep is reaped by PID 1")
        // The next reap of anything finds it empty: forgotten, so a reused id cannot be killed.
        _ = guardian.reaped(1, .exited(0))
        #expect(!guardian.groups.contains(group))
    }

    @Test func aDeadGuardianIsReportedAndReplacedWithEveryGroup() throws {
        let guardian = try #require(Guardian())
        let victim = try Self.detachedSleep()
        defer { kill(victim, SIGKILL) }
        guardian.watch(victim)
        let first = guardian.pid
        kill(first, SIGKILL)
        Self.reap(first)
        let note = try #require(guardian.reaped(first, .signaled(SIGKILL)))
        #expect(note.contains("the guardian (pid \(first)) killed by SIGKILL; started a new one (pid \(guardian.pid)) watching 1 process group"), "\(note)")
        #expect(guardian.pid != first && Self.isAlive(guardian.pid))
        // The new one holds the group: SIGKILL the guardian's pipe away as if paas died.
        let second = guardian.pid
        #expect(Self.waitFor { (try? String(contentsOfFile: "/proc/\(second)/comm", encoding: .utf8)) == "paas-guardian\n" })
        guardian.abandonForTesting()
        #expect(Self.waitFor { !Self.isAlive(victim) })
        Self.reap(second)
    }

    @Test func aStoppedGuardianNeitherBlocksPaasNorLosesAGroup() throws {
        let guardian = try #require(Guardian())
        let victim = try Self.detachedSleep()
        defer { kill(victim, SIGKILL) }
        kill(guardian.pid, SIGSTOP) // it reads nothing: the pipe fills (64 KiB, 16,384 messages)
        let start = Date()
        guardian.watch(victim)
        // 100,000 watch/forget pairs: 800 KB of messages, far more than the pipe holds.
        for i: Int32 in 0..<100_000 {
            guardian.watch(5_000_000 + i % 1000)
            guardian.forget(5_000_000 + i % 1000)
        }
        #expect(Date().timeIntervalSince(start) < 10, "the writes did not block")
        #expect(guardian.queuedBytes <= Guardian.queueLimit + 8, "the queue stays bounded: \(guardian.queuedBytes)")
        kill(guardian.pid, SIGCONT)
        #expect(Self.waitFor {
            guardian.flush()
            return guardian.queuedBytes == 0
        })
        let pid = guardian.pid
        guardian.abandonForTesting() // as if paas died: the compacted queue still named the victim
        #expect(Self.waitFor { !Self.isAlive(victim) })
        Self.reap(pid)
    }

    @Test func theDescriptorSweepWithoutCloseRangeVisitsOnlyOpenDescriptors() throws {
        // Three descriptors without close-on-exec, far above the others.
        for fd: Int32 in [900, 901, 905] { #expect(dup2(0, fd) == fd) }
        defer { for fd: Int32 in [900, 901, 905] { close(fd) } }
        let visited = Spawner.markCloseOnExec(from: 900, useCloseRange: false)
        // Other tests of this process run in parallel and open descriptors too: the sweep
        // visits the open ones only (ours, and theirs), never the 65,536 of the old loop.
        #expect(visited >= 3 && visited < 4096, "visited \(visited) descriptors")
        for fd: Int32 in [900, 901, 905] { #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0) }
    }

    @Test func childrenAreReadPastTheFirstPage() throws {
        // 1,000 children: /proc/PID/task/TID/children is about 6 KB (a pid and a blank each).
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "i=0; while [ $i -lt 1000 ]; do sleep 1000 & i=$((i+1)); done; echo ready; wait"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        defer { kill(-p.processIdentifier, SIGKILL); kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        _ = out.fileHandleForReading.availableData // "ready" (or end of file)
        let size = Processes.readWhole("/proc/\(p.processIdentifier)/task/\(p.processIdentifier)/children")?.count ?? 0
        #expect(size > 4096)
        let children = Processes.children(of: p.processIdentifier)
        #expect(children.count == 1000)
        for child in children { kill(child, SIGKILL) }
    }

    @Test func aMissingShellIsNamed() {
        let request = SpawnRequest(executable: "/nonexistent/sh", arguments: ["/nonexistent/sh", "-c", "true"], environment: [], directory: "/")
        #expect(throws: SpawnError.self) { try Spawner.spawn(request) }
        do {
            _ = try Spawner.spawn(request)
        } catch {
            #expect(error.description == "execve /nonexistent/sh failed: No such file or directory (ENOENT)")
        }
    }
}
