#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CPaasSys
import PaasConfig

/// Readiness of one descriptor, as reported by ``Poller/wait(timeoutMilliseconds:)``.
package struct PollEvent: Sendable {
    package var token: UInt64
    package var readable: Bool
    package var writable: Bool
    package var hangup: Bool
}

/// An epoll instance. Hand-written rather than swift-nio: the supervisor is one owner loop
/// that must also block on signals, child exits and deadlines, and NIO's pipe channels
/// cannot take a stdout that is a regular file or /dev/null (see PLATFORM-NOTES.md).
/// An epoll descriptor is itself pollable, which the supervisor uses for backpressure:
/// all child pipes live in an inner poller that is removed from the outer one while
/// stdout is slow.
package final class Poller {
    package let fd: Int32
    private var tokens = [UInt64](repeating: 0, count: 256)
    private var flags = [UInt32](repeating: 0, count: 256)

    package init() {
        fd = paas_epoll_create()
        precondition(fd >= 0, "epoll_create1 failed: \(Errno.describe(errno))")
    }

    deinit { close(fd) }

    /// Watches `descriptor` for reading. The corresponding C function is `epoll_ctl(EPOLL_CTL_ADD)`.
    package func add(_ descriptor: Int32, token: UInt64) {
        let r = paas_epoll_ctl(fd, 1, descriptor, 1, token)
        precondition(r == 0, "epoll_ctl ADD failed: \(Errno.describe(errno))")
    }

    /// Changes what `descriptor` is watched for. The corresponding C function is `epoll_ctl(EPOLL_CTL_MOD)`.
    package func modify(_ descriptor: Int32, token: UInt64, readable: Bool, writable: Bool) {
        _ = paas_epoll_ctl(fd, 3, descriptor, (readable ? 1 : 0) | (writable ? 2 : 0), token)
    }

    /// Stops watching `descriptor`. The corresponding C function is `epoll_ctl(EPOLL_CTL_DEL)`.
    package func remove(_ descriptor: Int32) {
        _ = paas_epoll_ctl(fd, 2, descriptor, 0, 0)
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) for readiness; EINTR yields no events.
    /// The corresponding C function is `epoll_wait`.
    package func wait(timeoutMilliseconds: Int32) -> [PollEvent] {
        let n = tokens.withUnsafeMutableBufferPointer { t in
            flags.withUnsafeMutableBufferPointer { f in
                paas_epoll_wait(fd, t.baseAddress, f.baseAddress, Int32(t.count), timeoutMilliseconds)
            }
        }
        if n <= 0 {
            if n < 0 && errno != EINTR { preconditionFailure("epoll_wait failed: \(Errno.describe(errno))") }
            return []
        }
        return (0..<Int(n)).map { PollEvent(token: tokens[$0], readable: flags[$0] & 1 != 0, writable: flags[$0] & 2 != 0, hangup: flags[$0] & 4 != 0) }
    }
}

/// The signals paas handles, delivered as readable data on a signalfd instead of through
/// handlers, so that the supervisor loop sees them in order with everything else.
package final class SignalSource {
    package let fd: Int32

    /// Blocks `signals` for this thread and every thread it starts later.
    /// - Important: create it before any other thread starts.
    package init(_ signals: [Int32]) {
        fd = (signals + [0]).withUnsafeBufferPointer { paas_signalfd($0.baseAddress) }
        precondition(fd >= 0, "signalfd failed: \(Errno.describe(errno))")
    }

    deinit { close(fd) }

    /// The signals pending now, oldest first (each standard signal at most once).
    package func drain() -> [Int32] {
        var result: [Int32] = []
        while true {
            let s = paas_signalfd_read(fd)
            if s == 0 { return result }
            result.append(s)
        }
    }

    /// Ignores SIGPIPE process-wide: a closed stdout becomes EPIPE on write.
    package static func ignoreBrokenPipe() { paas_ignore_sigpipe() }

    /// Ignores `signals` process-wide (children get every disposition back at spawn).
    /// The corresponding C function is `signal` with `SIG_IGN`.
    package static func ignore(_ signals: [Int32]) {
        for s in signals { _ = Glibc.signal(s, SIG_IGN) }
    }
}

/// A counter that wakes a poller from another thread. The corresponding C function is `eventfd`.
package final class WakeUp: @unchecked Sendable { // the descriptor is immutable; eventfd is thread-safe
    package let fd: Int32

    package init() {
        fd = paas_eventfd()
        precondition(fd >= 0, "eventfd failed: \(Errno.describe(errno))")
    }

    deinit { close(fd) }

    /// Makes the descriptor readable.
    package func signal() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    /// Clears the counter.
    package func clear() {
        var value: UInt64 = 0
        _ = read(fd, &value, 8)
    }
}

/// Non-blocking reads from a child's pipe.
package enum PipeReader {
    package enum Result { case data(Int), wouldBlock, endOfFile }

    /// Reads into `buffer`. The corresponding C function is `read`.
    package static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Result {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return .data(n) }
            if n == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            default: return .endOfFile // EIO and friends: treat the stream as ended
            }
        }
    }
}

/// The guardian process (see `paas_guardian_start`): it SIGKILLs every registered process
/// group if paas dies without saying goodbye, even by SIGKILL. It runs in its own session, so
/// a signal to paas's whole process group does not take it along.
///
/// The set of groups lives here too, so that a guardian that dies (someone killed it) is
/// reported and replaced by one that gets every group again. Groups are forgotten once they
/// are empty: a group whose leader has been reaped stays watched while other members live on,
/// and is dropped at the first reap that finds it empty. Process-group ids are not reused
/// while any member lives, so this closes the window in which a reused id could make the
/// guardian SIGKILL an unrelated group (what remains: the time between the last member's exit
/// and paas's next reap, microseconds when paas reaps it itself).
///
/// Writes never block the loop: the pipe is non-blocking, and what it does not take waits in
/// a queue that the loop flushes when the pipe is writable (the poller tells it, under
/// `token`). The queue is bounded: past `queueLimit` bytes (or twice the set's size) it is
/// replaced by a reset and the current set, whose size is that of the live groups.
package final class Guardian {
    private var fd: Int32 = -1
    /// The running guardian's pid, or -1 when there is none (it died too often).
    package private(set) var pid: Int32 = -1
    /// Every group paas has asked it to watch and not forgotten yet.
    package private(set) var groups: Set<Int32> = []
    /// Watched groups whose leader has been reaped while other members lived on.
    private var lingering: Set<Int32> = []
    /// Bytes the pipe has not taken yet, and how many bytes were written in all (to keep
    /// the 4-byte framing when the queue is compacted after a partial write).
    private var pending: [UInt8] = []
    private var written = 0
    private var polled = false
    private let poller: Poller?
    private let token: UInt64
    /// When recent guardians died (monotonic nanoseconds), to stop replacing one that keeps dying.
    private var deaths: [UInt64] = []
    package static let queueLimit = 1 << 18
    /// Bytes waiting for the pipe.
    package var queuedBytes: Int { pending.count }

    /// The cgroup of paas's children, which the guardian empties and removes if paas dies.
    package let controlGroup: ControlGroup?

    /// Starts the guardian; nil when it cannot start. `poller` and `token` let it wait for
    /// its pipe to become writable when the guardian reads slowly. With `controlGroup`, paas
    /// makes a cgroup where it can (``ControlGroup``) and moves itself into it, so that every
    /// later child is born there; the guardian stays outside.
    /// - Important: call it before the first spawn.
    package init?(poller: Poller? = nil, token: UInt64 = 0, controlGroup: Bool = false) {
        self.poller = poller
        self.token = token
        self.controlGroup = controlGroup ? ControlGroup.create() : nil
        // The first guardian starts before paas enters the cgroup, so it needs no move out:
        // each move between cgroups costs an RCU grace period (milliseconds).
        guard start(escaping: false) else {
            self.controlGroup?.remove()
            return nil
        }
        if let group = self.controlGroup, !group.enter() { group.remove() }
    }

    /// Starts a guardian; `escaping`: paas is in the cgroup already, the guardian leaves it.
    private func start(escaping: Bool = true) -> Bool {
        var writeEnd: Int32 = -1
        let started = paas_guardian_start(controlGroup?.kill ?? -1, controlGroup?.path, escaping ? controlGroup?.parentProcs ?? -1 : -1, &writeEnd)
        guard started > 0 else { return false }
        pid = started
        fd = writeEnd
        written = 0
        return true
    }

    /// Asks the guardian to kill `pgid` if paas dies.
    package func watch(_ pgid: Int32) {
        guard pgid > 1, groups.insert(pgid).inserted else { return }
        send(pgid)
    }

    /// Forgets `pgid` (its group is empty).
    package func forget(_ pgid: Int32) {
        lingering.remove(pgid)
        guard groups.remove(pgid) != nil else { return }
        send(-pgid)
    }

    /// Tells it that `pid` was reaped: a watched group whose leader it was is forgotten if
    /// empty, else kept until it is; lingering groups found empty are forgotten. When `pid`
    /// is the guardian itself, a new one is started with every group, and the returned text
    /// is the event to report.
    package func reaped(_ pid: Int32, _ status: Termination) -> String? {
        if pid == self.pid { return replace(after: status) }
        if groups.contains(pid) { lingering.insert(pid) }
        for group in lingering where !Signal.groupExists(group) { forget(group) }
        return nil
    }

    /// Writes what the pipe takes now. Call it when the poller reports the pipe writable.
    package func flush() {
        while !pending.isEmpty && fd >= 0 {
            let n = pending.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                pending.removeFirst(n)
                written += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { break }
            // EPIPE: the guardian is gone. Its reaping starts a new one with every group.
            pending.removeAll()
        }
        updatePolling()
    }

    /// Releases the guardian: paas has stopped everything itself. Queued registrations no
    /// longer matter, only the goodbye; a guardian that cannot take it now (stopped, or
    /// its pipe full) is killed instead, since it has nothing left to guard.
    package func release() {
        var saidGoodbye = false
        if fd >= 0 {
            pending = Array(pending.prefix((4 - written % 4) % 4)) + Self.message(0)
            flush()
            if !pending.isEmpty {
                Signal.send(SIGKILL, pid)
            } else {
                Signal.send(SIGCONT, pid) // a stopped guardian could not read its goodbye
                saidGoodbye = true
            }
            closePipe()
        }
        // With its goodbye, the guardian removes the cgroup once paas has left it (by exiting);
        // paas only ends what escaped into it. Without a guardian, paas removes it itself.
        if saidGoodbye { controlGroup?.killEscapees() } else { controlGroup?.remove() }
    }

    /// Closes the pipe without a goodbye, which is what the guardian sees when paas is
    /// killed: it SIGKILLs every group it holds. For tests of that path.
    package func abandonForTesting() {
        guard fd >= 0 else { return }
        closePipe()
    }

    private func send(_ value: Int32) {
        guard fd >= 0 else { return } // no guardian now: a new one gets the whole set
        if pending.count >= max(Self.queueLimit, 8 * groups.count) {
            // Keep the rest of a message already partly written, then start over from the set.
            // Only once the queue is twice the set's size, so this costs O(1) per message.
            pending = Array(pending.prefix((4 - written % 4) % 4)) + Self.message(Int32.min) // PAAS_GUARDIAN_RESET
            for group in groups where group != abs(value) { pending += Self.message(group) }
        }
        pending += Self.message(value)
        flush()
    }

    private static func message(_ value: Int32) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }

    private func updatePolling() {
        guard let poller, fd >= 0 else { return }
        if !pending.isEmpty && !polled {
            poller.add(fd, token: token)
            poller.modify(fd, token: token, readable: false, writable: true)
            polled = true
        } else if pending.isEmpty && polled {
            poller.remove(fd)
            polled = false
        }
    }

    private func closePipe() {
        if polled { poller?.remove(fd) }
        polled = false
        close(fd)
        fd = -1
        pending.removeAll()
    }

    private func replace(after status: Termination) -> String {
        let old = pid
        closePipe()
        pid = -1
        var what = "the guardian (pid \(old)) \(status)"
        if status == .exited(PAAS_GUARDIAN_STATUS_NO_MEMORY) { what += " (out of memory for its table)" }
        let now = Clock.monotonicNanos()
        deaths = deaths.filter { now - $0 < 60_000_000_000 } + [now]
        let unguarded = "if paas is killed, grandchildren of its processes may survive"
        if deaths.count > 5 {
            return "\(what); it died \(deaths.count) times within a minute and is not started again: \(unguarded)"
        }
        guard start() else {
            return "\(what); a new one could not start (\(Errno.describe(errno))): \(unguarded)"
        }
        let gone = groups.filter { !Signal.groupExists($0) }
        groups.subtract(gone)
        lingering.subtract(gone)
        for group in groups { pending += Self.message(group) }
        flush()
        return "\(what); started a new one (pid \(pid)) watching \(groups.count) process group\(groups.count == 1 ? "" : "s")"
    }
}
