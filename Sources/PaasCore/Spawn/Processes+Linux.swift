#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CPaasSys

/// How a process ended.
package enum Termination: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// The status a shell would report: the code, or 128 + the signal.
    package var shellStatus: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }

    package var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signal): "killed by \(Signal.name(signal))"
        }
    }
}

/// Signal numbers and names, and sending them.
package enum Signal {
    package static let interrupt = SIGINT
    package static let terminate = SIGTERM
    package static let hangup = SIGHUP
    package static let kill = SIGKILL
    package static let child = SIGCHLD

    /// `SIGTERM` for 15.
    package static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        case SIGKILL: "SIGKILL"
        case SIGQUIT: "SIGQUIT"
        case SIGUSR1: "SIGUSR1"
        case SIGUSR2: "SIGUSR2"
        case SIGPIPE: "SIGPIPE"
        case SIGABRT: "SIGABRT"
        case SIGSEGV: "SIGSEGV"
        case SIGALRM: "SIGALRM"
        case SIGCHLD: "SIGCHLD"
        default: "signal \(signal)"
        }
    }

    /// Sends `signal` to every process in group `pgid`. False when the group is gone.
    /// The corresponding C function is `kill` with a negative pid.
    @discardableResult
    package static func sendToGroup(_ signal: Int32, _ pgid: Int32) -> Bool {
        precondition(pgid > 1, "refusing to signal process group \(pgid)")
        return Glibc.kill(-pgid, signal) == 0
    }

    /// Sends `signal` to one process. The corresponding C function is `kill`.
    @discardableResult
    package static func send(_ signal: Int32, _ pid: Int32) -> Bool {
        Glibc.kill(pid, signal) == 0
    }
}

/// One child collected by the reaper.
package enum ReapResult: Sendable, Equatable {
    case reaped(pid: Int32, status: Termination)
    /// Children exist, none has exited.
    case none
    /// No children at all (ECHILD).
    case noChildren
}

/// The process-wide pieces of supervision: the subreaper flag, the single reaper, and /proc.
package enum Processes {
    /// This process's pid.
    package static var currentPID: Int32 { getpid() }

    /// Makes paas a child subreaper, so orphaned grandchildren are re-parented to it and
    /// collected by ``reapOne()``. The corresponding C function is `prctl(PR_SET_CHILD_SUBREAPER)`.
    package static func becomeSubreaper() { _ = paas_set_child_subreaper() }

    /// Reaps one exited child of any kind without blocking.
    /// - Important: paas has exactly one reaper: nothing else may wait for children.
    /// The corresponding C function is `waitid(P_ALL, WEXITED | WNOHANG)`.
    package static func reapOne() -> ReapResult {
        var info = paas_reaped_t()
        switch paas_reap_one(&info) {
        case 1: return .reaped(pid: info.pid, status: info.exited == 1 ? .exited(info.code) : .signaled(info.code))
        case 0: return .none
        default: return .noChildren
        }
    }

    /// Pids whose parent is `parent`, from /proc (re-parented orphans included).
    package static func children(of parent: Int32) -> [Int32] {
        var result: [Int32] = []
        guard let dir = opendir("/proc") else { return result }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard let pid = Int32(name), pid > 0 else { continue }
            if let stat = statFields(pid), stat.ppid == parent { result.append(pid) }
        }
        return result
    }

    /// Every descendant of `root` (children, their children, ...), from /proc.
    package static func descendants(of root: Int32) -> [Int32] {
        var parentOf: [Int32: Int32] = [:]
        guard let dir = opendir("/proc") else { return [] }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard let pid = Int32(name), pid > 0, let stat = statFields(pid) else { continue }
            parentOf[pid] = stat.ppid
        }
        closedir(dir)
        var childrenOf: [Int32: [Int32]] = [:]
        for (pid, ppid) in parentOf { childrenOf[ppid, default: []].append(pid) }
        var result: [Int32] = []
        var stack = childrenOf[root] ?? []
        while let pid = stack.popLast() {
            result.append(pid)
            stack.append(contentsOf: childrenOf[pid] ?? [])
        }
        return result
    }

    /// CPU seconds and resident bytes of every process group, summed over its members (/proc).
    package static func groupUsage() -> [Int32: (cpuSeconds: Double, rssBytes: Int)] {
        var usage: [Int32: (cpuSeconds: Double, rssBytes: Int)] = [:]
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let dir = opendir("/proc") else { return usage }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard let pid = Int32(name), pid > 0, let s = statFields(pid) else { continue }
            let old = usage[s.pgid] ?? (0, 0)
            usage[s.pgid] = (old.cpuSeconds + Double(s.utime + s.stime) / ticks, old.rssBytes + s.rssPages * page)
        }
        return usage
    }

    /// Parent pid, process group and resident memory (pages) of `pid`, from /proc/PID/stat.
    package static func statFields(_ pid: Int32) -> (ppid: Int32, pgid: Int32, utime: Int, stime: Int, rssPages: Int)? {
        guard let bytes = try? FileSystem.read("/proc/\(pid)/stat") else { return nil }
        // The command name is in parentheses and may hold anything: parse after the last ')'.
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        // fields[0] is the state (field 3 of stat); ppid is field 4.
        func int(_ i: Int) -> Int { i < fields.count ? Int(String(decoding: fields[i], as: UTF8.self)) ?? 0 : 0 }
        return (Int32(int(1)), Int32(int(2)), int(11), int(12), int(21))
    }
}
