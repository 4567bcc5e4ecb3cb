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

    /// Whether an exit with `status` is followed by a restart.
    package func restarts(after status: Termination) -> Bool {
        switch policy {
        case .no: false
        case .always: true
        case .onFailure: status != .exited(0)
        }
    }

    /// Whether an exit with `status` leaves the rest of the formation running.
    package func exitIsAllowed(_ status: Termination) -> Bool {
        allowExit || policy != .no
    }
}

/// The delay before each restart of one instance: 1 s, doubling to a cap of 60 s, with
/// jitter, back to the start after the process stayed up `resetAfter`.
package struct Backoff: Sendable, Equatable {
    package let settings: RestartSettings
    /// Restarts since the last reset.
    package private(set) var attempt = 0

    package init(settings: RestartSettings) { self.settings = settings }

    /// The delay before the next start, for a process that ran `uptime` nanoseconds.
    /// `random` is in 0..<1 (0.5 means no jitter); tests pass fixed values.
    package mutating func delay(afterUptime uptime: UInt64, random: Double) -> UInt64 {
        if uptime >= settings.resetAfter { attempt = 0 }
        let base = Self.baseDelay(attempt: attempt, settings: settings)
        attempt += 1
        let factor = 1 + settings.jitter * (2 * random - 1)
        return UInt64((Double(base) * factor).rounded())
    }

    /// The delay before jitter for the `attempt`-th restart (0-based).
    package static func baseDelay(attempt: Int, settings: RestartSettings) -> UInt64 {
        var d = settings.initialDelay
        for _ in 0..<min(attempt, 63) {
            if d >= settings.maximumDelay / 2 { return settings.maximumDelay }
            d *= 2
        }
        return min(d, settings.maximumDelay)
    }
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

/// The circuit breaker of one process type: closed (restarts happen), open after too many
/// unstable exits in a window (no restarts until a cool-down passes), half-open (one probe
/// instance; if it stays up past the minimum uptime the breaker closes, else it opens
/// again with a longer cool-down). `paas restart TYPE` closes it by hand.
package struct CircuitBreaker: Sendable, Equatable {
    package enum State: Sendable, Equatable {
        case closed
        /// No restarts until `until`.
        case open(until: UInt64)
        /// One probe runs; the rest wait for its verdict.
        case halfOpen
    }

    package let settings: RestartSettings
    package private(set) var state = State.closed
    /// Times of recent unstable exits, within the window.
    package private(set) var unstableExits: [UInt64] = []
    /// How many times it opened since it was last closed by a stable run or by hand.
    package private(set) var trips = 0

    package init(settings: RestartSettings) { self.settings = settings }

    /// Records an exit; returns true when this exit opened the breaker.
    package mutating func recordExit(uptime: UInt64, at now: UInt64) -> Bool {
        switch state {
        case .open:
            return false
        case .halfOpen:
            if uptime < settings.minimumUptime { open(at: now); return true }
            return false
        case .closed:
            guard uptime < settings.minimumUptime else { return false }
            unstableExits.append(now)
            unstableExits.removeAll { now - $0 > settings.breakerWindow }
            if unstableExits.count >= settings.breakerFailures {
                open(at: now)
                return true
            }
            return false
        }
    }

    /// Time passed: an open breaker whose cool-down is over becomes half-open (returns true:
    /// start one probe).
    package mutating func tick(now: UInt64) -> Bool {
        guard case .open(let until) = state, now >= until else { return false }
        state = .halfOpen
        return true
    }

    /// The probe exited or failed its checks, however long it ran: open again, with a
    /// longer cool-down. Returns true when this opened the breaker.
    package mutating func probeFailed(at now: UInt64) -> Bool {
        guard state == .halfOpen else { return false }
        open(at: now)
        return true
    }

    /// The probe (or any instance while half-open) stayed up past the minimum uptime: close.
    package mutating func probeSucceeded() {
        guard state == .halfOpen else { return }
        close()
    }

    /// `paas restart TYPE`: close by hand.
    package mutating func close() {
        state = .closed
        unstableExits = []
        trips = 0
    }

    /// The current cool-down: `cooldown`, doubled per repeated trip, up to the maximum.
    package var currentCooldown: UInt64 {
        var c = settings.cooldown
        for _ in 0..<max(0, trips - 1) { c = min(c * 2, settings.maximumCooldown) }
        return min(c, settings.maximumCooldown)
    }

    private mutating func open(at now: UInt64) {
        trips += 1
        state = .open(until: now + currentCooldown)
        unstableExits = []
    }
}
