#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The router's only libc seam: what a failed listen's errno means, in the words paas's
/// errors use (`port 5000 is in use (EADDRINUSE)`).
enum ListenErrno {
    /// The rest of the sentence after "port N" / "descriptor N"; nil for any other errno.
    static func phrase(_ code: Int32) -> String? {
        switch code {
        case EADDRINUSE: " is in use (EADDRINUSE)"
        case EACCES: ": permission denied (EACCES)"
        case EADDRNOTAVAIL: ": address not available (EADDRNOTAVAIL)"
        case EBADF: " is not an open descriptor (EBADF)"
        case ENOTSOCK: " is not a socket (ENOTSOCK)"
        case EINVAL: " is not a listening socket (EINVAL)"
        default: nil
        }
    }
}
