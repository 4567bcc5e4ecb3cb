#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CPaasSys
package import PaasConfig

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
    package static let resume = SIGCONT
    package static let quit = SIGQUIT

    /// The number of a graceful stop signal.
    package static func number(_ signal: StopSignal) -> Int32 {
        switch signal {
        case .term: SIGTERM
        case .int: SIGINT
        case .quit: SIGQUIT
        case .hup: SIGHUP
        case .usr1: SIGUSR1
        case .usr2: SIGUSR2
        case .winch: SIGWINCH
        }
    }
    package static let user1 = SIGUSR1
    package static let user2 = SIGUSR2
    /// Signals whose default action would end paas and that paas has no use for: ignored,
    /// so that a stray `kill -ALRM` or a file-size limit on stdout (SIGXFSZ: the write then
    /// fails with EFBIG, an ordinary write error) cannot end it without a graceful stop.
    /// Children start with every disposition at its default again.
    package static let ignoredByPaas: [Int32] = [SIGALRM, SIGVTALRM, SIGPROF, SIGXFSZ, SIGXCPU, SIGIO, SIGPWR, SIGSTKFLT]

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
        case SIGCONT: "SIGCONT"
        case SIGXFSZ: "SIGXFSZ"
        case SIGWINCH: "SIGWINCH"
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

    /// Whether process group `pgid` has a member (a zombie counts: its id is not reusable yet).
    /// The corresponding C function is `kill` with signal 0 and a negative pid.
    package static func groupExists(_ pgid: Int32) -> Bool {
        guard pgid > 1 else { return false }
        return Glibc.kill(-pgid, 0) == 0 || errno == EPERM
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

    /// Pids whose parent is `parent` (re-parented orphans included), from
    /// `/proc/PID/task/TID/children`: a read of the process's own threads, not of every process
    /// on the machine. Falls back to a scan of /proc where the kernel lacks that file.
    package static func children(of parent: Int32) -> [Int32] {
        guard let tasks = opendir("/proc/\(parent)/task") else { return [] }
        defer { closedir(tasks) }
        var result: [Int32] = []
        var sawFile = false
        while let entry = readdir(tasks) {
            let tid = name(of: entry)
            guard Int32(tid) != nil else { continue }
            guard let bytes = readWhole("/proc/\(parent)/task/\(tid)/children") else { continue }
            sawFile = true
            for field in bytes.split(separator: UInt8(ascii: " ")) {
                if let pid = Int32(String(decoding: field, as: UTF8.self).trimmingBlanks().filter { $0 != "\n" }) { result.append(pid) }
            }
        }
        return sawFile ? result : scanChildren(of: parent)
    }

    /// Every descendant of `root` (children, their children, ...).
    package static func descendants(of root: Int32) -> [Int32] {
        var result: [Int32] = []
        var stack = children(of: root)
        while let pid = stack.popLast() {
            result.append(pid)
            stack.append(contentsOf: children(of: pid))
        }
        return result
    }

    private static func scanChildren(of parent: Int32) -> [Int32] {
        var result: [Int32] = []
        guard let dir = opendir("/proc") else { return result }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            guard let pid = Int32(name(of: entry)), pid > 0 else { continue }
            if let stat = statFields(pid), stat.ppid == parent { result.append(pid) }
        }
        return result
    }

    private static func name(of entry: UnsafeMutablePointer<dirent>) -> String {
        withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// A /proc file read to its end: `children` lists one pid per child, so a process with
    /// a thousand children needs more than one page.
    package static func readWhole(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return result.isEmpty ? nil : result }
            if n == 0 { return result }
            result += chunk[0..<n]
        }
    }

    /// A small /proc file in one read (they are generated whole, well under 4 KiB here).
    private static func readSmall(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n >= 0 ? Array(buffer[0..<n]) : nil
    }

    /// CPU seconds and resident bytes of every process group, summed over its members (/proc).
    package static func groupUsage() -> [Int32: (cpuSeconds: Double, rssBytes: Int)] {
        var usage: [Int32: (cpuSeconds: Double, rssBytes: Int)] = [:]
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let dir = opendir("/proc") else { return usage }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            guard let pid = Int32(name(of: entry)), pid > 0, let s = statFields(pid) else { continue }
            let old = usage[s.pgid] ?? (0, 0)
            usage[s.pgid] = (old.cpuSeconds + Double(s.utime + s.stime) / ticks, old.rssBytes + s.rssPages * page)
        }
        return usage
    }

    /// Parent pid, process group and resident memory (pages) of `pid`, from /proc/PID/stat.
    package static func statFields(_ pid: Int32) -> (ppid: Int32, pgid: Int32, utime: Int, stime: Int, rssPages: Int)? {
        guard let bytes = readSmall("/proc/\(pid)/stat") else { return nil }
        // The command name is in parentheses and may hold anything: parse after the last ')'.
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        // fields[0] is the state (field 3 of stat); ppid is field 4.
        func int(_ i: Int) -> Int { i < fields.count ? Int(String(decoding: fields[i], as: UTF8.self)) ?? 0 : 0 }
        return (Int32(int(1)), Int32(int(2)), int(11), int(12), int(21))
    }
}
