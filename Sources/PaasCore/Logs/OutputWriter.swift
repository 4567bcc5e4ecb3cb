import Synchronization
import PaasConfig

/// Writes the event stream to stdout from its own thread, with plain blocking writes.
///
/// Why a thread and blocking writes: stdout may be a terminal, a pipe, a regular file or
/// /dev/null, and epoll cannot watch the last two (PLATFORM-NOTES.md). Why not write from
/// the supervisor loop: a slow reader would then stall signal handling and deadlines.
/// Backpressure: the loop checks ``isCongested`` and stops reading child pipes while more
/// than ``highWater`` bytes wait; the writer wakes the loop when they drain below
/// ``lowWater``. So a slow stdout makes children block in write(), memory stays bounded,
/// and no line is dropped.
package final class OutputWriter: Sendable {
    package static let highWater = 4 << 20
    package static let lowWater = 1 << 20

    private struct State {
        var batches: [[UInt8]] = []
        var queued = 0
        var closing = false
        var finished = false
        var broken = false
        /// The errno of the write that broke stdout.
        var failure: Int32?
        var loopWaiting = false
    }

    private let state = Mutex(State())
    private let fd: Int32
    /// Wakes the writer thread when a batch arrives.
    private let work = WakeUp()
    /// Wakes the supervisor loop: drained below low water, finished, or stdout broken.
    package let loopWake = WakeUp()

    package init(fd: Int32 = 1) {
        self.fd = fd
    }

    /// Starts the writer thread.
    package func start() {
        OSThread.start { [self] in self.run() }
    }

    /// Queues `batch` for writing (never blocks). Dropped silently only once stdout is broken.
    package func submit(_ batch: [UInt8]) {
        guard !batch.isEmpty else { return }
        let wake = state.withLock { s -> Bool in
            if s.broken { return false }
            s.batches.append(batch)
            s.queued += batch.count
            return s.batches.count == 1
        }
        if wake { work.signal() }
    }

    /// Whether the loop should stop reading children; if so, the writer will wake it through
    /// ``loopWake`` once the queue is below low water.
    package var isCongested: Bool {
        state.withLock { s in
            if s.queued > Self.highWater { s.loopWaiting = true; return true }
            return false
        }
    }

    /// Whether a write to stdout failed (the reader went away, or an error).
    package var isBroken: Bool { state.withLock { $0.broken } }

    /// Why stdout broke, once it has: nil while it works.
    package var failure: OutputFailure? {
        state.withLock { s in s.failure.map { OutputFailure(code: $0) } }
    }

    /// Bytes submitted and not written yet.
    package var queuedBytes: Int { state.withLock { $0.queued } }

    /// Whether everything submitted before ``close()`` has been written (or stdout broke).
    package var isFinished: Bool { state.withLock { $0.finished } }

    /// No more batches will come; the writer finishes the queue, then signals ``loopWake``.
    package func close() {
        state.withLock { $0.closing = true }
        work.signal()
    }

    private func run() {
        OutputFile.blockFileSizeSignalInThisThread()
        let idle = Poller()
        idle.add(work.fd, token: 0)
        while true {
            let next = state.withLock { s -> (batches: [[UInt8]], done: Bool) in
                let b = s.batches
                s.batches.removeAll(keepingCapacity: true)
                return (b, b.isEmpty && s.closing)
            }
            if next.done {
                state.withLock { $0.finished = true }
                loopWake.signal()
                return
            }
            if next.batches.isEmpty {
                _ = idle.wait(timeoutMilliseconds: -1)
                work.clear()
                continue
            }
            for batch in next.batches {
                let result = batch.withUnsafeBytes { OutputFile.writeAll(fd, $0) }
                let ok = result == .written
                let wakeLoop = state.withLock { s -> Bool in
                    s.queued -= batch.count
                    if case .failed(let code) = result {
                        s.failure = code
                        s.broken = true
                        s.batches.removeAll()
                        s.queued = 0
                    }
                    if s.loopWaiting && (s.queued < Self.lowWater || s.broken) {
                        s.loopWaiting = false
                        return true
                    }
                    return !ok
                }
                if wakeLoop { loopWake.signal() }
                if !ok { break }
            }
        }
    }
}

/// Why a write to stdout failed.
package struct OutputFailure: Sendable, Equatable, CustomStringConvertible {
    package var code: Int32
    package init(code: Int32) { self.code = code }
    /// EPIPE or EIO (a closed pipe, a hung-up terminal): the reader went away, which asks
    /// paas to stop (exit 0). Anything else is an error (exit 74).
    package var isHangUp: Bool { OutputFile.isHangUp(code) }
    package var description: String { "could not write to stdout: \(Errno.describe(code))" }
}
