#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CPaasSys

/// A cgroup (v2) holding every process paas starts, where paas may make one: `paas-PID` under
/// paas's own cgroup. Process groups cannot hold a daemon that called `setsid`; a cgroup can,
/// and the guardian empties it (`cgroup.kill`) when paas dies, then removes it.
///
/// paas moves itself in once (``enter()``), so every child is born inside and nothing it
/// starts is ever outside. (Moving each child in between vfork and exec costs a cgroup
/// migration, about 0.5 ms, per spawn on the loop thread; being born there costs nothing.)
/// The guardian moves itself back out before exec. At a normal exit paas leaves, kills what
/// is left and removes the directory. Where
/// no cgroup can be had (no cgroup2 mount, not root and no delegation such as systemd's
/// `Delegate=yes`, a read-only hierarchy, a kernel before 5.14 without `cgroup.kill`),
/// `create()` returns nil and nothing changes: then only process groups are guarded.
package final class ControlGroup {
    /// The cgroup's directory.
    package let path: String
    /// `cgroup.procs`, write-only and close-on-exec: paas writes `0` to it to enter.
    package let procs: Int32
    /// `cgroup.kill`, write-only and close-on-exec: handed to the guardian.
    package let kill: Int32
    /// `cgroup.procs` of the cgroup paas came from: where paas returns, and the guardian goes.
    package let parentProcs: Int32
    private var removed = false

    private init(path: String, procs: Int32, kill: Int32, parentProcs: Int32) {
        self.path = path
        self.procs = procs
        self.kill = kill
        self.parentProcs = parentProcs
    }

    /// Creates the cgroup, or nil where none can be had (see the type's summary).
    package static func create() -> ControlGroup? {
        guard let (mount, root) = cgroup2Mount(), let own = ownCgroup(), own.hasPrefix(root) else { return nil }
        var relative = String(own.dropFirst(root == "/" ? 0 : root.count))
        if relative == "/" { relative = "" }
        let parent = mount + relative
        let dir = parent + "/paas-\(getpid())"
        if mkdir(dir, 0o755) != 0 {
            // A leftover of an earlier paas with this pid, emptied by its guardian: reuse it.
            guard errno == EEXIST, rmdir(dir) == 0, mkdir(dir, 0o755) == 0 else { return nil }
        }
        let procs = open(dir + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
        let kill = open(dir + "/cgroup.kill", O_WRONLY | O_CLOEXEC)
        let parentProcs = open(parent + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
        guard procs >= 0, kill >= 0, parentProcs >= 0 else {
            for fd in [procs, kill, parentProcs] where fd >= 0 { close(fd) }
            rmdir(dir)
            return nil
        }
        return ControlGroup(path: dir, procs: procs, kill: kill, parentProcs: parentProcs)
    }

    /// Moves paas (every thread) into the cgroup. False when the kernel refuses.
    package func enter() -> Bool {
        write(procs, "0", 1) == 1
    }

    /// Ends whatever is left in it and removes it: at a normal exit, once paas has stopped
    /// everything (so only an escapee could be left). `rmdir` says EBUSY until killed
    /// processes are gone: a bounded wait of at most a second.
    package func remove() {
        guard !removed else { return }
        removed = true
        _ = write(parentProcs, "0", 1) // out first: cgroup.kill must not reach paas
        _ = write(kill, "1", 1)
        close(procs)
        close(kill)
        close(parentProcs)
        let deadline = Clock.monotonicNanos() + 1_000_000_000
        while rmdir(path) != 0 && errno == EBUSY && Clock.monotonicNanos() < deadline {
            usleep(5_000) // polling a directory's emptiness, bounded above
        }
    }

    /// At a normal exit, once paas has stopped everything: SIGKILL to whatever is left in it
    /// but paas (a daemon that left every group paas knows), without moving paas out, which
    /// would cost it an RCU grace period on its way out. The guardian removes the directory
    /// once paas has exited (`paas_guardian_start`).
    package func killEscapees() {
        guard !removed else { return }
        removed = true
        let me = getpid()
        let fd = open(path + "/cgroup.procs", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            var text: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                text += chunk[0..<n]
            }
            close(fd)
            for word in text.split(separator: 10) {
                if let pid = Int32(String(decoding: word, as: UTF8.self)), pid != me, pid > 1 { _ = Glibc.kill(pid, SIGKILL) }
            }
        }
        close(procs)
        close(kill)
        close(parentProcs)
    }

    /// The cgroup of `pid` in the v2 hierarchy (`0::PATH` in /proc/PID/cgroup).
    package static func cgroup(of pid: Int32) -> String? {
        guard let bytes = Processes.readWhole("/proc/\(pid)/cgroup") else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("0::") {
            return String(line.dropFirst(3))
        }
        return nil
    }

    private static func ownCgroup() -> String? { cgroup(of: getpid()) }

    /// The mount point and root of the cgroup2 hierarchy, from /proc/self/mountinfo
    /// (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid system).
    private static func cgroup2Mount() -> (mount: String, root: String)? {
        guard let bytes = Processes.readWhole("/proc/self/mountinfo") else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count, fields[dash + 1] == "cgroup2", fields.count > 5 else { continue }
            if fields[5].split(separator: ",").contains("ro") { continue }
            return (String(fields[4]), String(fields[3]))
        }
        return nil
    }
}
