/// The optional `app.json` beside the Procfile: the keys Heroku and Dokku define that paas
/// honours (`formation` quantities), and paas's own per-type settings under `"paas"`.
/// Other platforms' keys are ignored; an unknown key under `"paas"` is an error with its
/// JSON path and line.
///
/// ```json
/// {"formation": {"web": {"quantity": 2}},
///  "paas": {"processes": {"worker": {"restart": "on-failure", "min_uptime": 5,
///           "backoff": {"initial": 1, "max": 60, "jitter": 0.1, "reset_after": 600},
///           "breaker": {"failures": 5, "window": 300, "cooldown": 300, "max_cooldown": 3600}},
///                         "migrate": {"allow_exit": true}}}}
/// ```
package struct AppManifest: Sendable, Equatable {
    /// Default quantities (`-m` beats them).
    package var formation: [String: Int] = [:]
    /// Restart settings per type; a type not named gets the defaults.
    package var processes: [String: ProcessSettings] = [:]
    /// Health checks per type (Dokku's `healthchecks`).
    package var healthchecks: [String: [HealthCheck]] = [:]

    package init() {}

    package static let fileName = "app.json"

    /// The bounds of app.json's numbers. Every number is range-checked here, with its line,
    /// so that nothing later can trap or wrap on it (issue 8, faults 2, 15 and 25).
    package enum Limits {
        /// A health check's `port`, and any port: 1-65535 (`htons` would wrap a larger one).
        package static let port = 1...65535
        /// `formation.TYPE.quantity`: no more instances than there are ports.
        package static let quantity = 0...65535
        /// `attempts` of a check and `breaker.failures`.
        package static let attempts = 1...100_000
        /// Any duration, in seconds: at most a year.
        package static let maximumSeconds: Double = 86400 * 365
        /// A check's `wait` between runs: at least 50 ms, so that a check never spins the loop
        /// (`"wait": 0` ran a check back to back at 33 % CPU).
        package static let minimumWait: Double = 0.05
    }

    /// Parses `bytes` (the file at `file`) for a Procfile with `types`. One leading UTF-8 BOM is
    /// skipped, as in the other files paas reads (RFC 8259 lets a parser ignore it).
    package static func parse(_ bytes: [UInt8], file: String, types: [String]) throws(ConfigError) -> AppManifest {
        let bytes = TextDecoding.skippingBOM(bytes)
        let value: JSON
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw ConfigError(.syntax, file: file, line: error.line, "invalid JSON at column \(error.column): \(error.message)")
        }
        var reader = Reader(file: file, bytes: bytes, types: types)
        return try reader.manifest(value)
    }

    /// Where a value is in app.json: `paas.processes.web.restart`, `healthchecks.web[0].port`.
    /// Its line is looked up only when an error is reported (``JSONParser/line(of:in:)``).
    struct Path: CustomStringConvertible {
        var components: [JSONParser.PathComponent] = []

        static func / (path: Path, key: String) -> Path {
            Path(components: path.components + [.key(key)])
        }

        subscript(index: Int) -> Path {
            Path(components: components + [.index(index)])
        }

        var description: String {
            guard !components.isEmpty else { return "app.json" }
            var text = ""
            for c in components {
                switch c {
                case .key(let k): text += text.isEmpty ? k : "." + k
                case .index(let i): text += "[\(i)]"
                }
            }
            return text
        }
    }

    private struct Reader {
        let file: String
        let bytes: [UInt8]
        let types: [String]
        let typeSet: Set<String>
        let root = Path()

        init(file: String, bytes: [UInt8], types: [String]) {
            self.file = file
            self.bytes = bytes
            self.types = types
            self.typeSet = Set(types)
        }

        func fail(_ path: Path, _ expected: String) -> ConfigError {
            // The line of the member, or of the closest enclosing one that exists.
            ConfigError(.syntax, file: file, line: JSONParser.line(of: path.components, in: bytes), "\(path): \(expected)")
        }

        func object(_ value: JSON, _ path: Path) throws(ConfigError) -> [(String, JSON)] {
            guard let pairs = value.objectPairs else { throw fail(path, "expected an object") }
            return pairs
        }

        func type(_ name: String, _ path: Path) throws(ConfigError) {
            guard typeSet.contains(name) else {
                throw fail(path, "no process type \(JSON.string(name).serialized()) in the Procfile; expected one of: \(types.joined(separator: ", "))")
            }
        }

        /// A duration in seconds, from `minimum` to a year, as nanoseconds.
        func seconds(_ value: JSON, _ path: Path, minimum: Double = 0) throws(ConfigError) -> UInt64 {
            let s: Double
            switch value {
            case .int(let i): s = Double(i)
            case .number(let d): s = d
            default: throw fail(path, "expected a number of seconds")
            }
            // `!(s >= minimum)` also refuses a NaN, should one ever get here.
            guard s >= minimum, s <= Limits.maximumSeconds else {
                let from = minimum == 0 ? "0" : "\(minimum)"
                throw fail(path, "\(JSON.number(s).serialized()) is out of range; expected seconds from \(from) to a year (\(Int(Limits.maximumSeconds)))")
            }
            return UInt64((s * 1e9).rounded())
        }

        /// A whole number within `range`.
        func count(_ value: JSON, _ path: Path, _ range: ClosedRange<Int>) throws(ConfigError) -> Int {
            guard let n = value.int, range.contains(n) else {
                let found: String
                switch value {
                case .int: found = "\(value.serialized()) is out of range; "
                case .number(let d) where d == d.rounded(): found = "\(value.serialized()) is out of range; "
                case .number: found = "\(value.serialized()) is not a whole number; "
                default: found = ""
                }
                throw fail(path, "\(found)expected a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return n
        }

        mutating func manifest(_ value: JSON) throws(ConfigError) -> AppManifest {
            var m = AppManifest()
            for (key, value) in try object(value, root) {
                switch key {
                case "formation":
                    let formation = root / "formation"
                    for (name, entry) in try object(value, formation) {
                        let path = formation / name
                        try type(name, path)
                        for (k, v) in try object(entry, path) where k == "quantity" {
                            m.formation[name] = try count(v, path / "quantity", Limits.quantity)
                        }
                    }
                case "healthchecks":
                    let healthchecks = root / "healthchecks"
                    for (name, list) in try object(value, healthchecks) {
                        let path = healthchecks / name
                        try type(name, path)
                        guard let items = list.array else { throw fail(path, "expected an array of checks") }
                        var checks: [HealthCheck] = []
                        for (i, item) in items.enumerated() { checks.append(try check(item, path[i])) }
                        m.healthchecks[name] = checks
                    }
                case "paas":
                    let paas = root / "paas"
                    for (k, v) in try object(value, paas) {
                        guard k == "processes" else { throw fail(paas / k, "unknown key; expected \"processes\"") }
                        let processes = paas / "processes"
                        for (name, settings) in try object(v, processes) {
                            try type(name, processes / name)
                            m.processes[name] = try restart(settings, processes / name)
                        }
                        try checkOrder(m)
                    }
                default:
                    continue // other platforms' keys (name, scripts, env...)
                }
            }
            return m
        }

        /// `after` must name types and form no cycle.
        func checkOrder(_ m: AppManifest) throws(ConfigError) {
            var state: [String: Int] = [:] // 1 visiting, 2 done
            func visit(_ t: String, _ trail: [String]) throws(ConfigError) {
                if state[t] == 2 { return }
                if state[t] == 1 {
                    throw fail(root / "paas" / "processes" / (trail.first ?? t) / "after", "start order has a cycle: \((trail + [t]).joined(separator: " -> ")); expected types that do not wait for each other")
                }
                state[t] = 1
                for d in m.processes[t]?.after ?? [] { try visit(d, trail + [t]) }
                state[t] = 2
            }
            for t in m.processes.keys.sorted() { try visit(t, []) }
        }

        func check(_ value: JSON, _ path: Path) throws(ConfigError) -> HealthCheck {
            var kind = HealthCheck.Kind.startup
            var probe = HealthCheck.Probe.tcp
            var content: String?
            var name = ""
            var c = HealthCheck(kind: .startup, probe: .tcp, name: "")
            var httpPath: String?
            for (key, v) in try object(value, path) {
                let p = path / key
                switch key {
                case "type":
                    guard let s = v.string, let k = HealthCheck.Kind(rawValue: s) else { throw fail(p, "expected \"startup\", \"readiness\" or \"liveness\"") }
                    kind = k
                case "path":
                    guard let s = v.string, s.hasPrefix("/") else { throw fail(p, "expected a path starting with /") }
                    httpPath = s
                case "content":
                    guard let s = v.string else { throw fail(p, "expected a string") }
                    content = s
                case "command":
                    guard let items = v.array, !items.isEmpty, items.allSatisfy({ $0.string != nil }) else { throw fail(p, "expected a non-empty array of strings") }
                    probe = .command(items.compactMap(\.string))
                case "port": c.port = try count(v, p, Limits.port)
                case "timeout": c.timeout = try seconds(v, p)
                case "wait": c.wait = try seconds(v, p, minimum: Limits.minimumWait)
                case "attempts": c.attempts = try count(v, p, Limits.attempts)
                case "initialDelay": c.initialDelay = try seconds(v, p)
                case "name":
                    guard let s = v.string else { throw fail(p, "expected a string") }
                    name = s
                case "listening", "description", "scheme", "uptime", "warn", "onFailure":
                    continue // Dokku's keys paas does not use
                default:
                    throw fail(p, "unknown key; expected type, path, content, command, port, timeout, wait, attempts, initialDelay or name")
                }
            }
            if let httpPath {
                if case .command = probe { throw fail(path, "a check has a path or a command, not both") }
                probe = .http(path: httpPath, content: content)
            }
            if c.timeout == 0 { throw fail(path / "timeout", "expected more than 0 seconds") }
            c.kind = kind
            c.probe = probe
            c.name = name.isEmpty ? "\(kind.rawValue) check" : name
            return c
        }

        func restart(_ value: JSON, _ path: Path) throws(ConfigError) -> ProcessSettings {
            var r = ProcessSettings()
            var routerSet = false
            let isWeb = path.components.last == .key("web")
            for (key, v) in try object(value, path) {
                let p = path / key
                switch key {
                case "restart":
                    guard let s = v.string, let policy = ProcessSettings.Policy(rawValue: s) else {
                        throw fail(p, "expected \"no\", \"on-failure\" or \"always\"")
                    }
                    r.policy = policy
                case "allow_exit":
                    guard let b = v.bool else { throw fail(p, "expected true or false") }
                    r.allowExit = b
                case "min_uptime":
                    r.minimumUptime = try seconds(v, p)
                case "boot_timeout":
                    r.bootTimeout = try seconds(v, p)
                case "stop_signal":
                    guard let s = v.string, let signal = StopSignal(name: s) else {
                        throw fail(p, "expected one of \(StopSignal.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")) (a signal the app can act on; SIGKILL follows at stop_timeout)")
                    }
                    r.stopSignal = signal
                case "stop_timeout":
                    r.stopTimeout = try seconds(v, p)
                case "singleton":
                    guard let b = v.bool else { throw fail(p, "expected true or false") }
                    r.singleton = b
                case "after":
                    guard let items = v.array, items.allSatisfy({ $0.string != nil }) else { throw fail(p, "expected an array of process types") }
                    for name in items.compactMap(\.string) { try type(name, p) }
                    r.after = items.compactMap(\.string)
                case "backoff":
                    for (k, x) in try object(v, p) {
                        let q = p / k
                        switch k {
                        case "initial": r.initialDelay = try seconds(x, q)
                        case "max": r.maximumDelay = try seconds(x, q)
                        case "reset_after": r.resetAfter = try seconds(x, q)
                        case "jitter":
                            let j: Double
                            switch x {
                            case .int(let i): j = Double(i)
                            case .number(let d): j = d
                            default: throw fail(q, "expected a fraction from 0 to 1")
                            }
                            guard j >= 0, j <= 1 else { throw fail(q, "expected a fraction from 0 to 1") }
                            r.jitter = j
                        default: throw fail(q, "unknown key; expected initial, max, jitter or reset_after")
                        }
                    }
                    if r.initialDelay == 0 || r.initialDelay > r.maximumDelay { throw fail(p / "initial", "expected more than 0 and at most backoff.max") }
                case "breaker":
                    for (k, x) in try object(v, p) {
                        let q = p / k
                        switch k {
                        case "failures": r.breakerFailures = try count(x, q, Limits.attempts)
                        case "window": r.breakerWindow = try seconds(x, q)
                        case "cooldown": r.cooldown = try seconds(x, q)
                        case "max_cooldown": r.maximumCooldown = try seconds(x, q)
                        default: throw fail(q, "unknown key; expected failures, window, cooldown or max_cooldown")
                        }
                    }
                case "routed":
                    guard let b = v.bool else { throw fail(p, "expected true or false") }
                    r.routed = b
                case "router":
                    guard let s = v.string, let mode = RouterMode(rawValue: s) else { throw fail(p, "expected \"tcp\" or \"http\"") }
                    r.router = mode
                    routerSet = true
                case "fallback":
                    guard let s = v.string, !s.isEmpty, !s.hasPrefix("/") else { throw fail(p, "expected a path relative to the app root") }
                    r.fallback = s
                case "ejection":
                    for (k, x) in try object(v, p) {
                        let q = p / k
                        switch k {
                        case "errors": r.ejectionErrors = try count(x, q, Limits.attempts)
                        case "cooldown": r.ejectionCooldown = try seconds(x, q, minimum: Limits.minimumWait)
                        default: throw fail(q, "unknown key; expected errors or cooldown")
                        }
                    }
                case "rollout":
                    r.rollout = try rollout(v, p)
                default:
                    throw fail(p, "unknown key; expected restart, allow_exit, min_uptime, boot_timeout, after, backoff, breaker, stop_signal, stop_timeout, singleton, routed, router, fallback, ejection or rollout")
                }
            }
            if routerSet, r.routed == nil { r.routed = true }
            if r.rollout.strategy == .canary, r.routed == false || (r.routed == nil && !isWeb) {
                throw fail(path / "rollout" / "strategy", "canary needs a routed type (it weighs traffic); expected \"blue-green\" or \"rolling\", or \"routed\": true")
            }
            return r
        }

        func rollout(_ value: JSON, _ path: Path) throws(ConfigError) -> RolloutSettings {
            var r = RolloutSettings()
            for (key, v) in try object(value, path) {
                let p = path / key
                switch key {
                case "strategy":
                    guard let s = v.string, let strategy = RolloutSettings.Strategy(rawValue: s) else {
                        throw fail(p, "expected \"blue-green\", \"canary\" or \"rolling\"")
                    }
                    r.strategy = strategy
                case "steps":
                    guard let items = v.array, !items.isEmpty else { throw fail(p, "expected an array of percentages ending with 100") }
                    var steps: [Int] = []
                    for (i, item) in items.enumerated() {
                        let n = try count(item, p[i], 1...100)
                        if let last = steps.last, n <= last { throw fail(p[i], "\(n) after \(last); expected increasing percentages ending with 100") }
                        steps.append(n)
                    }
                    guard steps.last == 100 else { throw fail(p, "expected increasing percentages ending with 100") }
                    r.steps = steps
                case "step_duration": r.stepDuration = try seconds(v, p)
                case "min_requests": r.minRequests = try count(v, p, 0...1_000_000_000)
                case "deploy_timeout": r.deployTimeout = try seconds(v, p, minimum: Limits.minimumWait)
                case "drain_timeout": r.drainTimeout = try seconds(v, p)
                case "failure_threshold": r.failureThreshold = try count(v, p, Limits.attempts)
                default:
                    throw fail(p, "unknown key; expected strategy, steps, step_duration, min_requests, deploy_timeout, drain_timeout or failure_threshold")
                }
            }
            return r
        }
    }
}
