import PaasConfig

/// The whole run's phase: release, running, stopping with a deadline, killing.
/// A value that decides; ``Supervisor`` carries out its actions.
package struct RunState: Sendable, Equatable {
    package enum Phase: Sendable, Equatable {
        case release
        case running
        /// SIGTERM sent; SIGKILL follows at `deadline` (monotonic nanoseconds).
        case stopping(deadline: UInt64)
        /// SIGKILL sent; waiting for the last processes to be reaped.
        case killing
    }

    package enum Action: Sendable, Equatable {
        case none
        case startFormation
        /// SIGTERM to everything; SIGKILL at the deadline.
        case stopAll
        /// SIGKILL to everything now.
        case killAll
    }

    /// Why the run is ending, for the event stream.
    package enum Reason: Sendable, Equatable {
        case signal(Int32)
        case exited(String, Termination)
        case outputClosed
        case releaseFailed(Termination)
        case startFailed(String)
        /// `paas stop` with no target.
        case stopRequested
        /// Every type's breaker is open.
        case crashLoop
        /// Only finished one-shot tasks are left.
        case allFinished
    }

    package private(set) var phase: Phase
    /// paas's exit status, once decided: the first reason to stop fixes it.
    package private(set) var exitStatus: Int32?
    package let timeoutNanos: UInt64

    /// Exit status when a process could not be started (EX_OSERR).
    package static let startFailureStatus: Int32 = 71

    package init(hasRelease: Bool, timeoutSeconds: Double) {
        phase = hasRelease ? .release : .running
        timeoutNanos = UInt64(timeoutSeconds * 1_000_000_000)
    }

    /// The SIGKILL deadline, while stopping.
    package var deadline: UInt64? {
        if case .stopping(let d) = phase { return d }
        return nil
    }

    package var isStopping: Bool {
        switch phase {
        case .stopping, .killing: true
        case .release, .running: false
        }
    }

    /// SIGINT, SIGTERM or SIGHUP to paas. A second SIGINT while stopping kills at once.
    package mutating func received(signal: Int32, now: UInt64) -> Action {
        switch phase {
        case .release, .running:
            return begin(stopping: now, status: 0)
        case .stopping:
            guard signal == Signal.interrupt else { return .none }
            phase = .killing
            return .killAll
        case .killing:
            return .none
        }
    }

    /// A process of the formation ended on its own: the rest stop (foreman's rule), and paas
    /// will exit with that status.
    package mutating func instanceExited(_ status: Termination, now: UInt64) -> Action {
        guard phase == .running else { return .none }
        return begin(stopping: now, status: status.shellStatus)
    }

    /// A process could not be started at all.
    package mutating func startFailed(now: UInt64) -> Action {
        guard !isStopping else { return .none }
        return begin(stopping: now, status: Self.startFailureStatus)
    }

    /// The release process ended: start the formation on success, else end with its status.
    package mutating func releaseExited(_ status: Termination, now: UInt64) -> Action {
        guard phase == .release else { return .none }
        if status == .exited(0) {
            phase = .running
            return .startFormation
        }
        return begin(stopping: now, status: status.shellStatus)
    }

    /// Every type of the formation has its circuit breaker open: stop, and exit with
    /// ``crashLoopStatus`` so that a supervisor above paas (systemd's `Restart=`) takes over.
    package mutating func allBreakersOpen(now: UInt64) -> Action {
        guard phase == .running else { return .none }
        return begin(stopping: now, status: Self.crashLoopStatus)
    }

    /// Every process finished and none will run again (one-shot tasks only): stop, exit 0.
    package mutating func everythingFinished(now: UInt64) -> Action {
        guard phase == .running else { return .none }
        return begin(stopping: now, status: 0)
    }

    /// Exit status when every type's breaker is open (EX_SOFTWARE).
    package static let crashLoopStatus: Int32 = 70

    /// Nobody reads stdout any more: stop cleanly rather than die with children left.
    package mutating func outputClosed(now: UInt64) -> Action {
        guard !isStopping else { return .none }
        return begin(stopping: now, status: 0)
    }

    /// Writing the event stream failed with an error other than the reader going away
    /// (ENOSPC, EFBIG...): stop, and exit with ``outputErrorStatus``.
    package mutating func outputFailed(now: UInt64) -> Action {
        guard !isStopping else {
            if exitStatus == 0 { exitStatus = Self.outputErrorStatus }
            return .none
        }
        return begin(stopping: now, status: Self.outputErrorStatus)
    }

    /// Exit status when stdout could not be written (EX_IOERR).
    package static let outputErrorStatus: Int32 = 74

    /// Time passed: SIGKILL once the deadline is reached.
    package mutating func tick(now: UInt64) -> Action {
        guard case .stopping(let deadline) = phase, now >= deadline else { return .none }
        phase = .killing
        return .killAll
    }

    private mutating func begin(stopping now: UInt64, status: Int32) -> Action {
        if exitStatus == nil { exitStatus = status }
        phase = .stopping(deadline: now + timeoutNanos)
        return .stopAll
    }
}
