#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CPaasSys
import PaasConfig

/// A failed socket call, naming the step and the errno.
package struct SocketError: Error, Sendable, CustomStringConvertible {
    package var step: String
    /// The errno, or nil when `step` says it all.
    package var code: Int32?
    package init(step: String, code: Int32?) {
        self.step = step
        self.code = code
    }
    package var description: String { code.map { "\(step) failed: \(Errno.describe($0))" } ?? step }
    package var isRefused: Bool { code == ECONNREFUSED }
    package var isMissing: Bool { code == ENOENT || code == ENOTDIR }
    package var isInUse: Bool { code == EADDRINUSE }
}

/// Unix stream sockets for the control channel: the server side is non-blocking (the
/// supervisor loop polls it), the client side blocking.
package enum UnixSocket {
    /// Listens at `path` with mode 0600. The corresponding C functions are `socket`, `bind`, `listen`.
    package static func listen(_ path: String) throws(SocketError) -> Int32 {
        let fd = paas_unix_listen(path)
        if fd < 0 { throw SocketError(step: "bind \(path)", code: errno) }
        return fd
    }

    /// Connects to `path`. The corresponding C function is `connect`.
    package static func connect(_ path: String) throws(SocketError) -> Int32 {
        let fd = paas_unix_connect(path)
        if fd < 0 { throw SocketError(step: "connect \(path)", code: errno) }
        return fd
    }

    /// What one `accept` gave.
    package enum Accepted: Sendable, Equatable {
        case connection(Int32)
        /// Nothing is waiting.
        case none
        /// Out of descriptors (EMFILE, ENFILE): the connection stays queued in the kernel,
        /// and the listener stays readable, so calling again at once would spin.
        case outOfDescriptors(Int32)
        /// That connection failed before it was accepted (ECONNABORTED...): try the next.
        case failed(Int32)
    }

    /// Accepts one pending connection, non-blocking and close-on-exec.
    /// The corresponding C function is `accept4`.
    package static func accept(_ fd: Int32) -> Accepted {
        while true {
            let c = paas_unix_accept(fd)
            if c >= 0 { return .connection(c) }
            let e = errno
            switch e {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .none
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: return .outOfDescriptors(e)
            default: return .failed(e)
            }
        }
    }

    /// Whether bytes wait to be read on `fd`, without taking them.
    /// The corresponding C function is `recv(MSG_PEEK|MSG_DONTWAIT)`.
    package static func hasPendingInput(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        return Glibc.recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
    }

    /// The connected peer's uid, or nil. The corresponding C function is `getsockopt(SO_PEERCRED)`.
    package static func peerUID(_ fd: Int32) -> UInt32? {
        let uid = paas_peer_uid(fd)
        return uid >= 0 ? UInt32(uid) : nil
    }

    /// This process's effective uid.
    package static var currentUID: UInt32 { geteuid() }

    /// Non-blocking read: bytes, `[]` when nothing is ready, nil at end-of-file or error.
    package static func readAvailable(_ fd: Int32, max: Int = 65536) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { return Array(buffer[0..<n]) }
            if n == 0 { return nil }
            if errno == EINTR { continue }
            return errno == EAGAIN ? [] : nil
        }
    }

    /// Non-blocking write: how many bytes went out (0 when the socket is full), nil on error.
    package static func writeSome(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Int? {
        while true {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n >= 0 { return n }
            if errno == EINTR { continue }
            return errno == EAGAIN ? 0 : nil
        }
    }

    /// Gives blocking reads on `fd` a deadline. The corresponding C function is `setsockopt(SO_RCVTIMEO)`.
    package static func setReceiveTimeout(_ fd: Int32, seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Blocking read: bytes, or nil at end-of-file, error or timeout.
    package static func readBlocking(_ fd: Int32, max: Int = 65536) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { return Array(buffer[0..<n]) }
            if n < 0 && errno == EINTR { continue }
            return nil
        }
    }

    /// Removes the socket file. The corresponding C function is `unlink`.
    package static func remove(_ path: String) { _ = unlink(path) }

    /// Removes the socket file only if it is still the one `identity` names (a later
    /// `paas up` may have replaced it). The corresponding C functions are `lstat`, `unlink`.
    package static func remove(_ path: String, ifStill identity: FileIdentity?) {
        guard let identity, FileIdentity.of(link: path) == identity else { return }
        _ = unlink(path)
    }

    /// Creates `path` as a directory with `mode` if missing, and tightens its mode.
    package static func makePrivateDirectory(_ path: String) throws(SocketError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw SocketError(step: "mkdir \(path)", code: errno) }
        if chmod(path, 0o700) != 0 { throw SocketError(step: "chmod \(path)", code: errno) }
    }
}

/// Non-blocking TCP to this machine, for health checks.
package enum LocalTCP {
    /// Starts connecting to 127.0.0.1:`port`; the descriptor becomes writable when done.
    package static func connect(port: Int) -> Int32? {
        let fd = paas_tcp_connect_local(Int32(port))
        return fd >= 0 ? fd : nil
    }

    /// nil when the connection succeeded, else the reason.
    package static func connectionError(_ fd: Int32) -> String? {
        let e = paas_socket_error(fd)
        return e == 0 ? nil : Errno.describe(e)
    }

    /// The port a listening IPv4 or IPv6 TCP socket is bound to; nil for anything else.
    package static func boundPort(_ fd: Int32) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var type: Int32 = 0
        var typeLength = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &typeLength) == 0, type == Int32(SOCK_STREAM.rawValue) else { return nil }
        let ok = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } } == 0
        guard ok else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
        case AF_INET6:
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
        default:
            return nil
        }
    }
}
