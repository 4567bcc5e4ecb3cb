import Foundation
import Synchronization
import Testing

/// Where the built `paas` binary is: `PAAS_BINARY`, else next to the test bundle
/// (`.build/debug/paas`), as argument-parser's own tests find their executables.
enum Binaries {
    static let paas: String = {
        if let override = ProcessInfo.processInfo.environment["PAAS_BINARY"] { return override }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("paas").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/paas").path
    }()

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private static let compiled = Mutex<[String: String]>([:])

    /// A C fixture from Tests/Fixtures, compiled once per test run with `cc -O2`.
    static func fixture(_ name: String) throws -> String {
        try compiled.withLock { cache in
            if let path = cache[name] { return path }
            let source = packageRoot.appendingPathComponent("Tests/Fixtures/\(name).c").path
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("paas-fixtures-\(getpid())")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let out = dir.appendingPathComponent(name).path
            let cc = Process()
            cc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            cc.arguments = ["cc", "-O2", "-o", out, source]
            try cc.run()
            cc.waitUntilExit()
            guard cc.terminationStatus == 0 else { throw FixtureError(message: "cc failed for \(name)") }
            cache[name] = out
            return out
        }
    }
}

struct FixtureError: Error, CustomStringConvertible { var message: String; var description: String { message } }

/// A temporary app directory with a Procfile and other files.
struct TempApp {
    let url: URL
    var path: String { url.path }

    init(procfile: String? = nil, files: [String: String] = [:]) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("paas-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        if let procfile { try write("Procfile", procfile) }
        for (name, text) in files { try write(name, text) }
    }

    func write(_ name: String, _ text: String) throws {
        let file = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
    }

    func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    func read(_ name: String) -> String? { try? String(contentsOfFile: file(name), encoding: .utf8) }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Polls `condition` every few milliseconds until it holds or `timeout` passes.
@discardableResult
func eventually(timeout: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(5_000) // polling interval of a deadline-bounded wait
    }
    return try condition()
}

/// A running `paas` (or any command) whose stdout and stderr are collected by reader threads.
final class Running: @unchecked Sendable { // mutable state lives in Mutexes; Process is only touched from the test
    let process = Process()
    /// Bytes read from one pipe, and whether it reached end-of-file.
    private final class Collected: Sendable {
        let bytes = Mutex<[UInt8]>([])
        let done = Mutex(false)
        /// How many complete lines contained each watched text, counted as the data arrives
        /// (so a test can wait on a count without rescanning megabytes of output).
        let counts: Mutex<[String: Int]>
        let watched: [[UInt8]]

        init(watching: [String] = []) {
            watched = watching.map { Array($0.utf8) }
            counts = Mutex(Dictionary(uniqueKeysWithValues: watching.map { ($0, 0) }))
        }
    }

    private let out: Collected
    private let err = Collected()
    private let stdinPipe = Pipe()

    /// Starts `paas ARGS` (or `executable`) in `directory` with extra environment.
    init(_ args: [String], in directory: String? = nil, environment: [String: String] = [:], executable: String = Binaries.paas, stdin: Bool = false, watching: [String] = []) throws {
        out = Collected(watching: watching)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = nil
        // The supervisor's tests run web on its plan's direct ports (foreman's way), as
        // `--no-router` does; the router's tests turn it on with PAAS_NO_ROUTER=0.
        env["PAAS_NO_ROUTER"] = "1"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let o = Pipe(), e = Pipe()
        process.standardOutput = o
        process.standardError = e
        process.standardInput = stdin ? stdinPipe : FileHandle.nullDevice
        try process.run()
        Self.collect(o.fileHandleForReading, into: out)
        Self.collect(e.fileHandleForReading, into: err)
    }

    private static func collect(_ handle: FileHandle, into sink: Collected) {
        let fd = handle.fileDescriptor
        Thread.detachNewThread {
            _ = handle // keeps the descriptor open while reading
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            var carry: [UInt8] = []
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                sink.bytes.withLock { $0.append(contentsOf: chunk[0..<n]) }
                guard !sink.watched.isEmpty else { continue }
                carry.append(contentsOf: chunk[0..<n])
                var found: [Int] = []
                var start = 0
                while let nl = carry[start...].firstIndex(of: 10) {
                    let line = carry[start..<nl]
                    for (i, w) in sink.watched.enumerated() where line.count >= w.count && line.firstRange(of: w) != nil { found.append(i) }
                    start = nl + 1
                }
                carry.removeFirst(start)
                if !found.isEmpty {
                    sink.counts.withLock { counts in
                        for i in found { counts[String(decoding: sink.watched[i], as: UTF8.self), default: 0] += 1 }
                    }
                }
            }
            sink.done.withLock { $0 = true }
        }
    }

    var pid: Int32 { process.processIdentifier }
    /// Complete stdout lines seen so far that contain `text` (one of `watching`).
    func count(_ text: String) -> Int { out.counts.withLock { $0[text] ?? 0 } }
    var stdout: String { out.bytes.withLock { String(decoding: $0, as: UTF8.self) } }
    var stdoutBytes: [UInt8] { out.bytes.withLock { $0 } }
    var stderr: String { err.bytes.withLock { String(decoding: $0, as: UTF8.self) } }
    var stdoutLines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) }

    func writeStdin(_ text: String) { stdinPipe.fileHandleForWriting.write(Data(text.utf8)) }
    func closeStdin() { try? stdinPipe.fileHandleForWriting.close() }

    /// Signals the process while it runs. Once it has exited and been reaped its pid may
    /// belong to another test's process (a `defer { signal(SIGTERM) }` after the exit once
    /// stopped another test's paas), so an ended process is never signalled.
    func signal(_ sig: Int32) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, sig)
    }

    /// Waits until stdout contains `text`.
    @discardableResult
    func waitForOutput(_ text: String, timeout: Double = 10) -> Bool {
        eventually(timeout: timeout) { stdout.contains(text) }
    }

    /// Waits for exit and for both pipes to reach end-of-file; returns the exit status
    /// (128+N for a signal), or nil at the deadline (the process is then killed).
    func waitForExit(timeout: Double = 20) -> Int32? {
        let exited = eventually(timeout: timeout) { !process.isRunning }
        guard exited else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        _ = eventually(timeout: 5) { out.done.withLock { $0 } && err.done.withLock { $0 } }
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Runs `paas ARGS` to completion and returns (status, stdout, stderr).
func runPaas(_ args: [String], in directory: String? = nil, environment: [String: String] = [:], timeout: Double = 20) throws -> (status: Int32?, stdout: String, stderr: String) {
    let r = try Running(args, in: directory, environment: environment)
    let status = r.waitForExit(timeout: timeout)
    return (status, r.stdout, r.stderr)
}

/// Processes in /proc: alive (not a zombie)?
enum ProcTable {
    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    /// Pids of live processes whose command line contains `marker`.
    static func pids(matching marker: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let cmd = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return cmd.contains(marker) && isAlive(pid)
        }
    }

    /// The children of `pid` (/proc/PID/task/*/children).
    static func children(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? "").split(separator: " ").compactMap { Int32($0) }
        }
    }

    /// The command name of `pid` (/proc/PID/comm).
    static func comm(_ pid: Int32) -> String? {
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .newlines)
    }

    /// Peak resident memory of `pid` in KiB (VmHWM).
    static func peakRSSKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        }
        return nil
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func portAccepts(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    return r == 0
}

/// Base ports for tests: below the ephemeral range (32768 and up on Linux), where the
/// client side of the tests' own connections would take them, and apart between runs.
enum Ports {
    private static let next = Mutex(10000 + Int(getpid() % 30) * 500)
    static func base() -> Int { next.withLock { $0 += 200; return $0 } }
}

/// The event stream's text lines as (process name, text), whatever the timestamp and padding:
/// `07:00:00 web.1  | hello` gives ("web.1", "hello").
func logLines(_ stdout: String) -> [(name: String, text: String)] {
    stdout.split(separator: "\n").compactMap { line in
        guard let bar = line.range(of: " | ") ?? line.range(of: " + ") else { return nil }
        let head = line[..<bar.lowerBound].split(separator: " ")
        guard let name = head.last else { return nil }
        return (String(name), String(line[bar.upperBound...]))
    }
}

/// The rows of `paas ps --json` for the app's running `paas up` ([] when it does not answer).
func psRows(_ app: TempApp) -> [[String: Any]] {
    guard let r = try? runPaas(["ps", "--json"], in: app.path) else { return [] }
    return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]) ?? []
}
