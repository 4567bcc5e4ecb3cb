#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file's identity: device and inode. Two paths name the same file when these match.
package struct FileIdentity: Sendable, Equatable, Hashable {
    package var device: UInt64
    package var inode: UInt64

    /// The identity of what `path` names itself (a symbolic link is not followed), or nil
    /// when nothing is there. The corresponding C function is `lstat`.
    package static func of(link path: String) -> FileIdentity? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// The identity of the file `path` leads to (links followed), or nil.
    /// The corresponding C function is `stat`.
    package static func of(_ path: String) -> FileIdentity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }
}

/// An exclusive `flock` on a file, held until this value is released (or the process
/// ends, even by SIGKILL: the kernel drops the lock with the last descriptor).
///
/// Why a lock and not "does the socket answer?": a stopped process (SIGSTOP, Ctrl-Z)
/// does not answer, yet it is alive and will go on; the kernel knows who holds a lock
/// whatever state the holder is in.
package final class FileLock {
    /// Why a lock could not be taken.
    package enum Failure: Error, Sendable {
        /// Someone holds it; `pid` is what the holder wrote into the file, if readable.
        case held(pid: Int?)
        case system(SocketError)
    }

    private let fd: Int32
    package let path: String

    /// Takes the lock at `path` (created 0600 if missing) without waiting, and writes this
    /// process's pid into the file for the next one to name.
    /// The corresponding C functions are `open`, `flock(LOCK_EX|LOCK_NB)`, `ftruncate`, `pwrite`.
    package init(path: String) throws(Failure) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 { throw .system(SocketError(step: "open \(path)", code: errno)) }
        var patience = 50 // × 20 ms
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK {
                let pid = Self.readPID(fd)
                // The pid in the file is gone, yet the lock is held: a process it forked
                // without exec (paas's guardian, finishing after paas was killed) still has
                // the descriptor for a moment. Wait for it, briefly.
                if let pid, pid > 0, kill(pid_t(pid), 0) != 0 && errno == ESRCH, patience > 0 {
                    patience -= 1
                    var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
                    nanosleep(&pause, nil)
                    continue
                }
                Glibc.close(fd)
                throw .held(pid: pid)
            }
            Glibc.close(fd)
            throw .system(SocketError(step: "flock \(path)", code: e))
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        self.fd = fd
        self.path = path
    }

    deinit { Glibc.close(fd) }

    private static func readPID(_ fd: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Int(String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n").first ?? "")
    }
}

/// Directories that hold the control socket and lock in shared places (`/tmp`).
package enum PrivateDirectory {
    /// Makes `path` (mode 0700) if it is missing, then checks, without following a link,
    /// that it is a directory owned by this user with mode 0700: another local user could
    /// have created it first (a symlink to somewhere of theirs, or mode 0777) to receive
    /// or block the control socket.
    /// The corresponding C functions are `mkdir`, `chmod` and `lstat`.
    package static func makeOrVerify(_ path: String) throws(SocketError) {
        if mkdir(path, 0o700) == 0 {
            // Ours from birth; the umask may have taken bits away, never added any.
            if chmod(path, 0o700) != 0 { throw SocketError(step: "chmod \(path)", code: errno) }
        } else if errno != EEXIST {
            throw SocketError(step: "mkdir \(path)", code: errno)
        }
        var st = stat()
        if lstat(path, &st) != 0 { throw SocketError(step: "lstat \(path)", code: errno) }
        let kind = st.st_mode & S_IFMT
        let why: String?
        if kind == S_IFLNK {
            why = "it is a symbolic link, not a directory"
        } else if kind != S_IFDIR {
            why = "it is not a directory"
        } else if st.st_uid != geteuid() {
            why = "it belongs to uid \(st.st_uid), not to you (uid \(geteuid()))"
        } else if st.st_mode & 0o777 != 0o700 {
            why = "its mode is \(String(st.st_mode & 0o777, radix: 8)), expected 700"
        } else {
            why = nil
        }
        if let why {
            throw SocketError(step: "refusing \(path) (\(why); another user may have created it: remove it, or set XDG_RUNTIME_DIR)", code: nil)
        }
    }
}

/// Process resource limits.
package enum ResourceLimits {
    /// The soft limit on open descriptors (`ulimit -n`). The corresponding C function is `getrlimit`.
    package static var openFiles: Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return Int(clamping: limit.rlim_cur) // RLIM_INFINITY is all ones: clamps to Int.max
    }
}
