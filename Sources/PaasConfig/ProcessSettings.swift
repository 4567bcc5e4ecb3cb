/// The per-type settings of app.json's `"paas": {"processes": {TYPE: {...}}}`: what paas does
/// when a process of the type exits and how fast it tries again, how it is stopped, whether
/// the router stands in front of it, and how a new version of it is rolled out. Times are in nanoseconds
/// of the monotonic clock, so the state machines below are plain values tested without a clock.
package struct ProcessSettings: Sendable, Equatable {
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

    /// Whether the router owns the type's public port: nil means the default (`web` is routed,
    /// as on Heroku); `router` set implies true unless `routed` says false.
    package var routed: Bool?
    /// How the router forwards: bytes (`tcp`, any protocol) or HTTP/1.1 requests (`http`).
    package var router = RouterMode.tcp
    /// An HTML page (relative to the app root) the http router answers with `503` when no
    /// instance can take a request.
    package var fallback: String?
    /// Outlier ejection: this many consecutive connect errors, resets or (http) 5xx answers take
    /// an instance out of rotation for `ejectionCooldown`, then it gets one trial connection.
    package var ejectionErrors = 5
    package var ejectionCooldown: UInt64 = 10 * Self.second
    package var rollout = RolloutSettings()

    package static let second: UInt64 = 1_000_000_000

    package init() {}

    /// Whether `type` is routed when the router is on.
    package func isRouted(_ type: String) -> Bool { routed ?? (type == "web") }
}

/// How the router forwards a routed type's connections.
package enum RouterMode: String, Sendable, CaseIterable {
    case tcp, http
}

/// How a new version of a type replaces the running one (app.json `rollout`).
package struct RolloutSettings: Sendable, Equatable {
    package enum Strategy: String, Sendable, CaseIterable {
        /// Start the whole new set, wait until every instance is ready, switch, drain the old.
        case blueGreen = "blue-green"
        /// Weighted steps of traffic to the new set, rolled back on errors (routed types only).
        case canary
        /// One new instance ready, then one old stopped, and again.
        case rolling
    }

    /// nil: blue-green for a routed type, rolling for the rest (a singleton always stops first).
    package var strategy: Strategy?
    /// Canary weights in percent, increasing, the last 100.
    package var steps = [10, 50, 100]
    /// How long each canary step is held.
    package var stepDuration: UInt64 = 30 * ProcessSettings.second
    /// Requests (http) or connections (tcp) the canary must have answered before a step passes.
    package var minRequests = 0
    /// The new set must be ready by then, else it is stopped and the old one kept.
    package var deployTimeout: UInt64 = 60 * ProcessSettings.second
    /// How long a replaced instance keeps its open connections before it is stopped.
    package var drainTimeout: UInt64 = 30 * ProcessSettings.second
    /// Failed health checks of a canary instance that roll the rollout back.
    package var failureThreshold = 3

    package init() {}

    /// The strategy a type gets.
    package func effectiveStrategy(routed: Bool) -> Strategy { strategy ?? (routed ? .blueGreen : .rolling) }
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
