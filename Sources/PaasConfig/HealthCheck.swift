/// One health check of a process type, in Dokku's `healthchecks` schema:
/// `{"type": "startup"|"readiness"|"liveness", "path": "/health", "content": "ok", "port": 5000,
///   "command": ["curl", "-f", "..."], "listening": true, "timeout": 5, "wait": 5,
///   "attempts": 3, "initialDelay": 0, "name": "..."}`.
/// A check with `path` is an HTTP GET of the instance's `$PORT` (2xx or 3xx, and `content`
/// in the body when given); with `command`, a command run in the app's environment (exit 0);
/// otherwise a TCP connect to the port. A check that times out has failed.
package struct HealthCheck: Sendable, Equatable {
    package enum Kind: String, Sendable, CaseIterable {
        /// Decides when an instance is ready; `attempts` failures in a row end in a failed start.
        case startup
        /// Keeps checking; failures mark the instance unready, a success ready again.
        case readiness
        /// Keeps checking; `attempts` failures in a row restart the instance.
        case liveness
    }

    package enum Probe: Sendable, Equatable {
        case http(path: String, content: String?)
        case tcp
        case command([String])
    }

    package var kind: Kind
    package var probe: Probe
    package var name: String
    /// The port to check; nil means the instance's `$PORT`.
    package var port: Int?
    package var timeout: UInt64 = 5 * ProcessSettings.second
    /// Between attempts.
    package var wait: UInt64 = 5 * ProcessSettings.second
    package var attempts = 3
    package var initialDelay: UInt64 = 0

    package init(kind: Kind, probe: Probe, name: String) {
        self.kind = kind
        self.probe = probe
        self.name = name
    }

    /// What the check does, for events and `paas ps`.
    package var summary: String {
        switch probe {
        case .http(let path, _): "\(kind.rawValue) GET \(path)"
        case .tcp: "\(kind.rawValue) tcp"
        case .command(let argv): "\(kind.rawValue) \(argv.joined(separator: " "))"
        }
    }
}
