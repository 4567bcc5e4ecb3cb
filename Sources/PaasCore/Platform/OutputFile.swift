#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing the event stream to stdout, whatever kind of file it is.
package enum OutputFile {
    /// How a write of the whole buffer ended.
    package enum Result: Sendable, Equatable {
        case written
        /// The errno of the failed write.
        case failed(Int32)
    }

    /// Writes every byte of `buffer`, retrying partial writes and EINTR. A descriptor that
    /// is non-blocking (O_NONBLOCK set by whoever shares it with us: a node or libuv parent
    /// does this) gives EAGAIN when full: wait until it drains, as a blocking write would.
    /// The corresponding C functions are `write` and `poll(POLLOUT)`.
    package static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Result {
        var offset = 0
        while offset < buffer.count {
            let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n >= 0 {
                offset += n
                continue
            }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                // Not ours to clear: the flag belongs to the open file, which the parent shares.
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, -1) // POLLERR/POLLHUP make the next write fail with its errno
                continue
            }
            return .failed(e)
        }
        return .written
    }

    /// Writes `text` to `fd` only if that cannot block (a last word on stderr while stdout
    /// or stderr may be a pipe nobody reads). The corresponding C functions are `poll` and `write`.
    package static func writeIfReady(_ fd: Int32, _ text: String) {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, 0) == 1, p.revents & Int16(POLLOUT) != 0 else { return }
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    /// Whether a failed write means "the reader went away", a requested stop: EPIPE (a closed
    /// pipe or socket) or EIO (a terminal that hung up). Anything else (ENOSPC, EFBIG...) is
    /// an error.
    package static func isHangUp(_ code: Int32) -> Bool { code == EPIPE || code == EIO || code == ECONNRESET }

    /// Blocks SIGXFSZ in the calling thread, so that writing past a file-size limit
    /// (`ulimit -f`) fails with EFBIG, an error paas reports, instead of killing paas.
    /// The signal is sent to the writing thread; blocked there, it stays pending, harmlessly.
    /// The corresponding C function is `pthread_sigmask`.
    package static func blockFileSizeSignalInThisThread() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGXFSZ)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }
}
