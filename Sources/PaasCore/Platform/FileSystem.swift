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
    case unreadable(String)
}

/// Reading files and asking about paths: the little of the file system that Config needs.
package enum FileSystem {
    /// The whole contents of the file at `path`.
    /// The corresponding C functions are `open`, `fstat` and `read`.
    package static func read(_ path: String) throws(FileReadError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == ENOENT || e == ENOTDIR { throw .notFound }
            if e == EISDIR { throw .isDirectory }
            throw .unreadable(Errno.describe(e))
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { throw .isDirectory }
        var bytes: [UInt8] = []
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
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
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

/// Plain blocking reads and writes on raw descriptors.
package enum FileDescriptorIO {
    /// Writes every byte, retrying partial writes and EINTR. False on any other error
    /// (EPIPE when the reader went away).
    /// The corresponding C function is `write`.
    package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeAll(fd, $0) }
    }

    /// Writes every byte of `buffer`; see ``writeAll(_:_:)-([UInt8])``.
    package static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < buffer.count {
            let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    /// Writes a string to standard error.
    package static func printError(_ text: String) {
        _ = writeAll(2, Array(text.utf8))
    }

    /// Writes a string to standard output; false when stdout is gone.
    @discardableResult
    package static func printOut(_ text: String) -> Bool {
        writeAll(1, Array(text.utf8))
    }

    /// Whether `fd` is a terminal. The corresponding C function is `isatty`.
    package static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// Closes `fd`. The corresponding C function is `close`.
    package static func close(_ fd: Int32) { _ = Glibc.close(fd) }
}

/// The environment this process was started with.
package enum ProcessEnvironment {
    /// Every `KEY=VALUE` of `environ`, in order.
    package static func current() -> [(key: String, value: String)] {
        var result: [(key: String, value: String)] = []
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result.append((String(text[..<eq]), String(text[text.index(after: eq)...])))
            }
            pointer += 1
        }
        return result
    }
}
