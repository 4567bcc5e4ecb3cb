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
/// group if paas dies without saying goodbye, even by SIGKILL.
package final class Guardian {
    private let fd: Int32
    package let pid: Int32

    /// Starts the guardian. - Important: call it while paas is single-threaded.
    package init?() {
        var writeEnd: Int32 = -1
        let pid = paas_guardian_start(&writeEnd)
        guard pid > 0 else { return nil }
        self.pid = pid
        self.fd = writeEnd
    }

    /// Asks the guardian to kill `pgid` if paas dies.
    package func watch(_ pgid: Int32) { send(pgid) }
    /// Forgets `pgid` (its leader has been reaped).
    package func forget(_ pgid: Int32) { send(-pgid) }
    /// Releases the guardian: paas has stopped everything itself.
    package func release() {
        send(0)
        close(fd)
    }

    private func send(_ value: Int32) {
        var v = value
        _ = withUnsafeBytes(of: &v) { FileDescriptorIO.writeAll(fd, $0) }
    }
}
