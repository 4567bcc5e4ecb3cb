/// The router's contract with the owner loop (issue 10).
///
/// The router owns each routed type's public port and forwards every connection (tcp mode) or
/// request (http mode) to one of the type's backends: instances that are ready, listening on
/// private ports on 127.0.0.1. Its data path runs on its own swift-nio event loop threads, never
/// on the owner loop that frames log lines and spawns processes. The loop talks to it in three
/// ways only:
/// - `listen(_:)` / `close(route:)`: open or close a route's public listener;
/// - `update(route:table:)`: swap the route's backend table in one step (only new connections
///   see it; open ones stay where they are, which is how a removed instance drains);
/// - `snapshot(route:)` and `events()`: read back per-backend counters and what happened
///   (an ejection, a return to rotation), woken by the `wake` callback given at init.
///
/// The router depends on nothing else of paas.

/// How a route forwards.
package enum RouteMode: String, Sendable {
    /// Bytes both ways, half-close honoured, any protocol.
    case tcp
    /// HTTP/1.1: keep-alive to both sides, X-Forwarded-For/-Proto, X-Request-Id when absent,
    /// WebSocket upgrades passed through, responses counted by status class.
    case http
}

/// Where a route listens.
package enum ListenSource: Sendable, Equatable {
    /// Bind `0.0.0.0:port` (SO_REUSEADDR).
    case port(Int)
    /// Adopt an already listening socket (systemd socket activation, `LISTEN_FDS`).
    case descriptor(Int32)
}

/// A route's fixed settings, given once at `listen`.
package struct RouteSettings: Sendable, Equatable {
    /// The process type, e.g. `web`.
    package var name: String
    package var mode: RouteMode
    package var source: ListenSource
    /// Outlier ejection: this many consecutive connect errors, resets or (http) 5xx answers
    /// take a backend out of rotation for `ejectionCooldown` nanoseconds; then it gets one
    /// trial connection: success puts it back, failure ejects it again.
    package var ejectionErrors: Int
    package var ejectionCooldown: UInt64
    /// The body of the `503` answered (http mode) when no backend can take a request; nil: a
    /// short plain-text body. Always with `Retry-After`.
    package var fallbackPage: [UInt8]?
    package var retryAfterSeconds: Int

    package init(name: String, mode: RouteMode, source: ListenSource, ejectionErrors: Int = 5, ejectionCooldown: UInt64 = 10_000_000_000, fallbackPage: [UInt8]? = nil, retryAfterSeconds: Int = 5) {
        self.name = name
        self.mode = mode
        self.source = source
        self.ejectionErrors = ejectionErrors
        self.ejectionCooldown = ejectionCooldown
        self.fallbackPage = fallbackPage
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// One instance in rotation.
package struct Backend: Sendable, Hashable {
    /// Unique for the life of the router (the supervisor's member serial): counters are kept by it.
    package var id: Int
    /// For events: `web.1`.
    package var name: String
    /// The private port on 127.0.0.1.
    package var port: Int
    package var group: BackendGroup

    package init(id: Int, name: String, port: Int, group: BackendGroup = .stable) {
        self.id = id
        self.name = name
        self.port = port
        self.group = group
    }
}

/// A canary rollout splits traffic between the running set and the new one.
package enum BackendGroup: Sendable, Hashable {
    case stable, canary
}

/// The backends that take new connections, and how they share them.
package struct RouteTable: Sendable, Equatable {
    package var backends: [Backend]
    /// Percent (0...100) of new connections (tcp) or requests (http) sent to the `.canary`
    /// group; the rest go to `.stable`. When one group is empty (or all its backends are
    /// ejected) the other takes everything.
    package var canaryWeight: Int

    package init(backends: [Backend] = [], canaryWeight: Int = 0) {
        self.backends = backends
        self.canaryWeight = canaryWeight
    }
}

/// What one backend has seen since it first appeared in a table. Counts only grow.
package struct BackendCounters: Sendable, Equatable {
    /// Connections open now (to this backend).
    package var active = 0
    /// Connections made (tcp) or requests forwarded (http).
    package var total = 0
    package var bytesIn = 0
    package var bytesOut = 0
    package var connectErrors = 0
    /// Connections the backend reset or closed before any answer.
    package var resets = 0
    /// http mode: responses by status class, `statusClasses[0]` is 1xx ... `[4]` is 5xx.
    package var statusClasses = [0, 0, 0, 0, 0]
    /// http mode: sum and count of response latencies (request sent → response head), ns.
    package var latencyTotal: UInt64 = 0
    package var latencyCount = 0
    /// Out of rotation after consecutive errors, until its cool-down ends.
    package var ejected = false

    package init() {}

    /// Failures as a rollout counts them: connect errors and resets, plus 5xx in http mode.
    package var errors: Int { connectErrors + resets + statusClasses[4] }
}

/// Something the loop should know (and show as an event line).
package enum RouterEvent: Sendable, Equatable {
    /// `consecutive` errors in a row took the backend out for `cooldown` ns.
    case ejected(route: String, backend: Int, name: String, consecutive: Int, cooldown: UInt64)
    /// Its trial connection succeeded.
    case restored(route: String, backend: Int, name: String)
    /// No backend could take a connection; counted, reported at most once a second per route.
    case unavailable(route: String, refused: Int)
}

/// A listen failure: the route's port is taken, or the descriptor is not a listening socket.
package struct RouterError: Error, Sendable, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
