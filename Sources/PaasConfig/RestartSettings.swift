/// What paas does when a process of a type exits, and how fast it tries again: the per-type
/// settings of app.json's `"paas": {"processes": {TYPE: {...}}}`. Times are in nanoseconds
/// of the monotonic clock, so the state machines below are plain values tested without a clock.
package struct RestartSettings: Sendable, Equatable {
    /// `no` (the default, foreman's): an exit stops the whole formation, unless `allowExit`;
    /// `on-failure`: a non-zero exit or a signal restarts it, exit 0 leaves it finished;
    /// `always`: every exit restarts it.
    package enum Policy: String, Sendable, CaseIterable {
        case no
        case onFailure = "on-failure"
        case always
    }

    package var policy = Policy.no
    /// A one-shot task: its exit (any status) leaves it finished and the rest running.
    package var allowExit = false
    package var initialDelay: UInt64 = 1 * Self.second
    package var maximumDelay: UInt64 = 60 * Self.second
    /// ±10% by default.
    package var jitter = 0.1
    /// Uptime after which the backoff starts again from the initial delay.
    package var resetAfter: UInt64 = 600 * Self.second
    /// An exit before this uptime counts as unstable (for the breaker).
    package var minimumUptime: UInt64 = 5 * Self.second
    /// The breaker opens after this many unstable exits within `breakerWindow`.
    package var breakerFailures = 5
    package var breakerWindow: UInt64 = 300 * Self.second
    /// First cool-down of an open breaker; it doubles on each repeated trip, up to `maximumCooldown`.
    package var cooldown: UInt64 = 300 * Self.second
    package var maximumCooldown: UInt64 = 3600 * Self.second
    /// Types whose instances must all be ready before this type starts.
    package var after: [String] = []
    /// Without a startup check, a `web` instance must accept on `$PORT` within this (Heroku's
    /// R10 rule), else it has failed to start.
    package var bootTimeout: UInt64 = 60 * Self.second
    /// The signal that asks an instance to stop (`SIGTERM`; some apps want `SIGINT` or `SIGQUIT`).
    package var stopSignal = StopSignal.term
    /// Grace between the stop signal and SIGKILL; nil: `-t`.
    package var stopTimeout: UInt64?
    /// Two instances must never run at once (a clock): a reload stops the old one before it
    /// starts the new one.
    package var singleton = false

    package static let second: UInt64 = 1_000_000_000

    package init() {}
}

/// The graceful stop signals a type may choose (app.json `stop_signal`); SIGKILL is not one.
package enum StopSignal: String, Sendable, CaseIterable {
    case term = "SIGTERM", int = "SIGINT", quit = "SIGQUIT", hup = "SIGHUP", usr1 = "SIGUSR1", usr2 = "SIGUSR2", winch = "SIGWINCH"

    /// `SIGINT`, `INT` or `sigint`.
    package init?(name: String) {
        let upper = name.uppercased()
        self.init(rawValue: upper.hasPrefix("SIG") ? upper : "SIG" + upper)
    }
}
