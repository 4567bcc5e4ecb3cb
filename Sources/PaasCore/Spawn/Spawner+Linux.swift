#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CPaasSys
import PaasConfig

/// What to start: an absolute executable, its arguments (argv[0] included), the complete
/// environment as `KEY=VALUE` strings, and the working directory.
package struct SpawnRequest: Sendable {
    package var executable: String
    package var arguments: [String]
    package var environment: [String]
    package var directory: String

    package init(executable: String, arguments: [String], environment: [String], directory: String) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.directory = directory
    }

    /// `/bin/sh -c COMMAND`, the way every Procfile command runs.
    package static func shell(_ command: String, environment: [String], directory: String) -> SpawnRequest {
        SpawnRequest(executable: "/bin/sh", arguments: ["/bin/sh", "-c", command], environment: environment, directory: directory)
    }
}

/// A started child: its pid (also its process group id) and the read ends of its
/// stdout and stderr pipes (non-blocking, close-on-exec).
package struct SpawnedChild: Sendable {
    package var pid: Int32
    package var stdout: Int32
    package var stderr: Int32
}

/// A spawn that failed, naming the step and the errno:
/// `execve /bin/sh failed: No such file or directory (ENOENT)`.
package struct SpawnError: Error, Sendable, CustomStringConvertible {
    package var step: String
    package var code: Int32
    package var description: String { "\(step) failed: \(Errno.describe(code))" }
}

/// The only way paas starts a process.
///
/// Why not posix_spawn, Foundation `Process` or swift-subprocess: none of them can set a
/// parent-death signal (it needs code between fork and exec), Foundation reaps behind our
/// back, and swift-subprocess watches its children with pidfds on its own thread, which
/// races the subreaper's `waitid(P_ALL)`. The child path is C (`paas_spawn`).
///
/// - Important: call `spawn` from one thread only, the thread that lives as long as paas
///   (the supervisor loop's): the parent-death signal follows the thread that forked.
package enum Spawner {
    /// Opened once; every child's stdin.
    nonisolated(unsafe) private static var devNull: Int32 = -1 // set once, on the spawning thread only

    /// Starts `request` in a new process group with stdout and stderr on fresh pipes.
    /// The corresponding C function is `paas_spawn` (vfork + execve).
    package static func spawn(_ request: SpawnRequest) throws(SpawnError) -> SpawnedChild {
        if devNull < 0 {
            devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if devNull < 0 { throw SpawnError(step: "open /dev/null", code: errno) }
        }
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        if paas_pipe(&out, 1) != 0 { throw SpawnError(step: "pipe2", code: errno) }
        if paas_pipe(&err, 1) != 0 {
            let e = errno
            close(out[0]); close(out[1])
            throw SpawnError(step: "pipe2", code: e)
        }
        var failure: Int32 = 0
        var step: UnsafePointer<CChar>? = nil
        let pid = withCStrings(request.arguments) { argv in
            withCStrings(request.environment) { envp in
                paas_spawn(request.executable, argv, envp, request.directory, devNull, out[1], err[1], &failure, &step)
            }
        }
        close(out[1])
        close(err[1])
        if pid < 0 {
            close(out[0]); close(err[0])
            throw SpawnError(step: Self.describe(step, request), code: failure)
        }
        return SpawnedChild(pid: pid, stdout: out[0], stderr: err[0])
    }

    /// Starts `request` with stdout and stderr on /dev/null (health-check commands), in its
    /// own process group with the parent-death signal, like every child.
    package static func spawnQuiet(_ request: SpawnRequest) throws(SpawnError) -> Int32 {
        if devNull < 0 {
            devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if devNull < 0 { throw SpawnError(step: "open /dev/null", code: errno) }
        }
        let sink = open("/dev/null", O_WRONLY | O_CLOEXEC)
        if sink < 0 { throw SpawnError(step: "open /dev/null", code: errno) }
        defer { close(sink) }
        var failure: Int32 = 0
        var step: UnsafePointer<CChar>? = nil
        let pid = withCStrings(request.arguments) { argv in
            withCStrings(request.environment) { envp in
                paas_spawn(request.executable, argv, envp, request.directory, devNull, sink, sink, &failure, &step)
            }
        }
        if pid < 0 { throw SpawnError(step: Self.describe(step, request), code: failure) }
        return pid
    }

    /// Replaces this process with `request` (for `paas run`): the terminal, stdin, signals and
    /// the exit status become the command's own. Returns only on failure.
    /// The corresponding C function is `execve`.
    package static func replaceProcess(with request: SpawnRequest) -> SpawnError {
        if chdir(request.directory) != 0 { return SpawnError(step: "chdir \(request.directory)", code: errno) }
        _ = withCStrings(request.arguments) { argv in
            withCStrings(request.environment) { envp in
                execve(request.executable, argv, envp)
            }
        }
        return SpawnError(step: "execve \(request.executable)", code: errno)
    }

    /// The failed step as the C path names it, with the program for `execve`: a missing
    /// `/bin/sh` reads `execve /bin/sh failed: No such file or directory (ENOENT)`.
    private static func describe(_ step: UnsafePointer<CChar>?, _ request: SpawnRequest) -> String {
        let name = step.map { String(cString: $0) } ?? "spawn"
        return name == "execve" ? "execve \(request.executable)" : name
    }

    /// Marks every open descriptor from `lowest` up close-on-exec, the way the child path does
    /// (`useCloseRange: false` takes the path of kernels before 5.11). Returns how many
    /// descriptors it visited, -1 when `close_range` did it. For tests of that bound.
    package static func markCloseOnExec(from lowest: Int32, useCloseRange: Bool) -> Int {
        Int(paas_mark_cloexec_from(lowest, useCloseRange ? 1 : 0))
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
