package import PaasConfig

/// The delay before each restart of one instance: 1 s, doubling to a cap of 60 s, with
/// jitter, back to the start after the process stayed up `resetAfter`.
package struct Backoff: Sendable, Equatable {
    package let settings: ProcessSettings
    /// Restarts since the last reset.
    package private(set) var attempt = 0

    package init(settings: ProcessSettings) { self.settings = settings }

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
    package static func baseDelay(attempt: Int, settings: ProcessSettings) -> UInt64 {
        var d = settings.initialDelay
        for _ in 0..<min(attempt, 63) {
            if d >= settings.maximumDelay / 2 { return settings.maximumDelay }
            d *= 2
        }
        return min(d, settings.maximumDelay)
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

    package let settings: ProcessSettings
    package private(set) var state = State.closed
    /// Times of recent unstable exits, within the window.
    package private(set) var unstableExits: [UInt64] = []
    /// How many times it opened since it was last closed by a stable run or by hand.
    package private(set) var trips = 0

    package init(settings: ProcessSettings) { self.settings = settings }

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

/// The policy applied to an exit status (``Termination`` belongs to the process seam, so this
/// half of the settings lives here).
extension ProcessSettings {
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

/// What an instance's exit on its own means, decided from its type's settings, its breaker
/// and its backoff: a pure function of values, so restart decisions are tested without
/// processes (`ExitVerdictTests`); the loop carries the verdict out.
package enum ExitVerdict: Sendable, Equatable {
    /// It never became ready (a boot timeout, a startup check) and will not be restarted:
    /// the run ends as a failed start, whatever the process's own status.
    case failedStart
    /// A one-shot task finished (or `on-failure` saw exit 0): the rest keep running.
    case finished
    /// foreman's rule: the whole formation stops, with this exit's status.
    case endsTheRun
    /// This exit opened the type's breaker (`probe`: the half-open probe failed).
    case breakerOpened(probe: Bool)
    /// The breaker is open: no restart until its cool-down.
    case heldByBreaker
    /// Start it again after `delay` nanoseconds.
    case restart(after: UInt64)

    /// Decides, updating `breaker` and `backoff`. `uptime`: how long it ran (0 for a failed
    /// start); `isProbe`: it was the half-open breaker's probe; `random` in 0..<1 for jitter.
    package static func decide(settings: ProcessSettings, status: Termination, failedStart: Bool, uptime: UInt64, isProbe: Bool,
                               breaker: inout CircuitBreaker, backoff: inout Backoff, now: UInt64, random: Double) -> ExitVerdict {
        guard settings.restarts(after: status) || (failedStart && settings.policy != .no) else {
            if failedStart { return .failedStart }
            return settings.exitIsAllowed(status) ? .finished : .endsTheRun
        }
        // A half-open breaker's probe that exits, however late, or fails its checks has
        // failed: the breaker opens again (else nothing would ever re-arm it).
        let probe = isProbe && breaker.state == .halfOpen
        let opened = probe ? breaker.probeFailed(at: now) : breaker.recordExit(uptime: failedStart ? 0 : uptime, at: now)
        if opened { return .breakerOpened(probe: probe) }
        if case .open = breaker.state { return .heldByBreaker }
        return .restart(after: backoff.delay(afterUptime: failedStart ? 0 : uptime, random: random))
    }
}
