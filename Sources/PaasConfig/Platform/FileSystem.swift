#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be read, in terms a configuration error can name.
package enum FileReadError: Error, Sendable, Equatable {
    case notFound
    case isDirectory
    /// The path is a symbolic link whose target does not exist.
    case danglingLink
    /// Resolving the path met a loop of symbolic links (ELOOP).
    case linkLoop
    /// Not a regular file (after following links): the kind found, as "a FIFO".
    case notRegularFile(String)
    /// More than `limit` bytes.
    case tooLarge(limit: Int)
    case unreadable(String)
}

/// Reading files and asking about paths: the little of the file system that Config needs.
package enum FileSystem {
    /// The largest configuration file paas reads: 16 MiB. A Procfile, env file or app.json
    /// near this size is a mistake (or `/dev/zero`), and reading it whole must not exhaust memory.
    package static let maximumFileSize = 16 << 20

    /// The whole contents of the regular file at `path` (links followed), at most `limit` bytes.
    ///
    /// Anything else is refused before a byte is read: a FIFO (whose open would block until a
    /// writer comes), a device (`/dev/zero` never ends), a socket. `stat` decides before the
    /// file is opened, so no device is ever opened; the open itself is non-blocking and the
    /// descriptor is checked again with `fstat`, so a FIFO swapped in between cannot block us.
    /// The corresponding C functions are `stat`, `lstat`, `open`, `fstat` and `read`.
    package static func read(_ path: String, limit: Int = maximumFileSize) throws(FileReadError) -> [UInt8] {
        var st = stat()
        if stat(path, &st) != 0 {
            throw statError(errno, path)
        }
        try requireRegular(st, limit: limit)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        if fd < 0 {
            throw statError(errno, path)
        }
        defer { close(fd) }
        guard fstat(fd, &st) == 0 else { throw .unreadable(Errno.describe(errno)) }
        try requireRegular(st, limit: limit)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(Int(st.st_size), limit) + 1)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                if e == EISDIR { throw .isDirectory }
                throw .unreadable(Errno.describe(e))
            }
            if n == 0 { break }
            // The size was checked, but a file can grow while we read it.
            if bytes.count + n > limit { throw .tooLarge(limit: limit) }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// The error for a failed `stat` or `open` of `path`: a missing target of a link is told
    /// apart from a missing file, so that a broken link is never taken for "absent".
    private static func statError(_ code: Int32, _ path: String) -> FileReadError {
        switch code {
        case ENOENT:
            var st = stat()
            if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK { return .danglingLink }
            return .notFound
        case ENOTDIR: return .notFound
        case EISDIR: return .isDirectory
        case ELOOP: return .linkLoop
        default: return .unreadable(Errno.describe(code))
        }
    }

    private static func requireRegular(_ st: stat, limit: Int) throws(FileReadError) {
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw .isDirectory
        case S_IFIFO: throw .notRegularFile("a FIFO")
        case S_IFCHR: throw .notRegularFile("a character device")
        case S_IFBLK: throw .notRegularFile("a block device")
        case S_IFSOCK: throw .notRegularFile("a socket")
        default: throw .notRegularFile("of an unknown kind")
        }
        if st.st_size > limit { throw .tooLarge(limit: limit) }
    }

    /// Whether nothing at all is at `path`: not a file, not even a broken symbolic link.
    /// An optional file (the default `.env`, `app.json`) is skipped only when absent in this
    /// sense; a dangling link or a link loop is read, and reading names the problem.
    /// The corresponding C function is `lstat`.
    package static func isAbsent(_ path: String) -> Bool {
        var st = stat()
        if lstat(path, &st) == 0 { return false }
        return errno == ENOENT || errno == ENOTDIR
    }

    /// Whether something exists at `path` (following symbolic links).
    package static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    /// The absolute, resolved form of `path`, or `path` itself when it cannot be resolved.
    /// The corresponding C function is `realpath`.
    package static func absolute(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// errno values as text: `No such file or directory (ENOENT)`.
package enum Errno {
    /// A sentence fragment for `code`, with its symbolic name where known.
    package static func describe(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        let names: [Int32: String] = [
            ENOENT: "ENOENT", EACCES: "EACCES", EPERM: "EPERM", EISDIR: "EISDIR", ENOTDIR: "ENOTDIR",
            ENOEXEC: "ENOEXEC", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EMFILE: "EMFILE", ENFILE: "ENFILE",
            ESRCH: "ESRCH", EINVAL: "EINVAL", ECONNREFUSED: "ECONNREFUSED", ETIMEDOUT: "ETIMEDOUT", E2BIG: "E2BIG", ELOOP: "ELOOP", ENAMETOOLONG: "ENAMETOOLONG",
            ENOSPC: "ENOSPC", EFBIG: "EFBIG", EIO: "EIO", EPIPE: "EPIPE", EROFS: "EROFS", EEXIST: "EEXIST",
        ]
        if let name = names[code] { return "\(text) (\(name))" }
        return "\(text) (errno \(code))"
    }
}
