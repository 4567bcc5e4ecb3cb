#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
