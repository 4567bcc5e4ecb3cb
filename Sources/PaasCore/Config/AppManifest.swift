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
    package var processes: [String: RestartSettings] = [:]
    /// Health checks per type (Dokku's `healthchecks`).
    package var healthchecks: [String: [HealthCheck]] = [:]

    package init() {}

    package static let fileName = "app.json"

    /// Parses `bytes` (the file at `file`) for a Procfile with `types`.
    package static func parse(_ bytes: [UInt8], file: String, types: [String]) throws(ConfigError) -> AppManifest {
        let parsed: (value: JSON, lines: [String: Int])
        do {
            parsed = try JSONParser.parseWithLines(bytes)
        } catch {
            throw ConfigError(.syntax, file: file, line: error.line, "invalid JSON at column \(error.column): \(error.message)")
        }
        var reader = Reader(file: file, lines: parsed.lines, types: types)
        return try reader.manifest(parsed.value)
    }

    private struct Reader {
        let file: String
        let lines: [String: Int]
        let types: [String]

        func fail(_ path: String, _ expected: String) -> ConfigError {
            // The line of the member, or of the closest enclosing one that has a line.
            var p = path
            var line = lines[p]
            while line == nil, let dot = p.lastIndex(of: ".") {
                p = String(p[..<dot])
                line = lines[p]
            }
            return ConfigError(.syntax, file: file, line: line ?? 1, "\(path): \(expected)")
        }

        func object(_ value: JSON, _ path: String) throws(ConfigError) -> [(String, JSON)] {
            guard let pairs = value.objectPairs else { throw fail(path, "expected an object") }
            return pairs
        }

        func type(_ name: String, _ path: String) throws(ConfigError) {
            guard types.contains(name) else {
                throw fail(path, "no process type \"\(name)\" in the Procfile; expected one of: \(types.joined(separator: ", "))")
            }
        }

        func seconds(_ value: JSON, _ path: String) throws(ConfigError) -> UInt64 {
            let s: Double
            switch value {
            case .int(let i): s = Double(i)
            case .number(let d): s = d
            default: throw fail(path, "expected a number of seconds")
            }
            guard s >= 0, s <= 86400 * 365 else { throw fail(path, "expected seconds from 0 to a year") }
            return UInt64(s * 1e9)
        }

        func count(_ value: JSON, _ path: String, minimum: Int) throws(ConfigError) -> Int {
            guard let n = value.int, n >= minimum else { throw fail(path, "expected a whole number, \(minimum) or more") }
            return n
        }

        mutating func manifest(_ root: JSON) throws(ConfigError) -> AppManifest {
            var m = AppManifest()
            for (key, value) in try object(root, "app.json") {
                switch key {
                case "formation":
                    for (name, entry) in try object(value, "formation") {
                        try type(name, "formation.\(name)")
                        for (k, v) in try object(entry, "formation.\(name)") where k == "quantity" {
                            m.formation[name] = try count(v, "formation.\(name).quantity", minimum: 0)
                        }
                    }
                case "healthchecks":
                    for (name, list) in try object(value, "healthchecks") {
                        try type(name, "healthchecks.\(name)")
                        guard let items = list.array else { throw fail("healthchecks.\(name)", "expected an array of checks") }
                        m.healthchecks[name] = try items.enumerated().map { (i, item) throws(ConfigError) in try check(item, "healthchecks.\(name)[\(i)]") }
                    }
                case "paas":
                    for (k, v) in try object(value, "paas") {
                        guard k == "processes" else { throw fail("paas.\(k)", "unknown key; expected \"processes\"") }
                        for (name, settings) in try object(v, "paas.processes") {
                            try type(name, "paas.processes.\(name)")
                            m.processes[name] = try restart(settings, "paas.processes.\(name)")
                        }
                        try checkOrder(m)
                    }
                default:
                    continue // other platforms' keys (name, scripts, healthchecks, env...)
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
                    throw fail("paas.processes.\(trail.first ?? t).after", "start order has a cycle: \((trail + [t]).joined(separator: " -> ")); expected types that do not wait for each other")
                }
                state[t] = 1
                for d in m.processes[t]?.after ?? [] { try visit(d, trail + [t]) }
                state[t] = 2
            }
            for t in m.processes.keys.sorted() { try visit(t, []) }
        }

        func check(_ value: JSON, _ path: String) throws(ConfigError) -> HealthCheck {
            var kind = HealthCheck.Kind.startup
            var probe = HealthCheck.Probe.tcp
            var content: String?
            var name = ""
            var c = HealthCheck(kind: .startup, probe: .tcp, name: "")
            var path_: String?
            for (key, v) in try object(value, path) {
                let p = "\(path).\(key)"
                switch key {
                case "type":
                    guard let s = v.string, let k = HealthCheck.Kind(rawValue: s) else { throw fail(p, "expected \"startup\", \"readiness\" or \"liveness\"") }
                    kind = k
                case "path":
                    guard let s = v.string, s.hasPrefix("/") else { throw fail(p, "expected a path starting with /") }
                    path_ = s
                case "content":
                    guard let s = v.string else { throw fail(p, "expected a string") }
                    content = s
                case "command":
                    guard let items = v.array, !items.isEmpty, items.allSatisfy({ $0.string != nil }) else { throw fail(p, "expected a non-empty array of strings") }
                    probe = .command(items.compactMap(\.string))
                case "port": c.port = try count(v, p, minimum: 1)
                case "timeout": c.timeout = try seconds(v, p)
                case "wait": c.wait = try seconds(v, p)
                case "attempts": c.attempts = try count(v, p, minimum: 1)
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
            if let path_ {
                if case .command = probe { throw fail(path, "a check has a path or a command, not both") }
                probe = .http(path: path_, content: content)
            }
            if c.timeout == 0 { throw fail("\(path).timeout", "expected more than 0 seconds") }
            c.kind = kind
            c.probe = probe
            c.name = name.isEmpty ? "\(kind.rawValue) check" : name
            return c
        }

        func restart(_ value: JSON, _ path: String) throws(ConfigError) -> RestartSettings {
            var r = RestartSettings()
            for (key, v) in try object(value, path) {
                let p = "\(path).\(key)"
                switch key {
                case "restart":
                    guard let s = v.string, let policy = RestartSettings.Policy(rawValue: s) else {
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
                case "after":
                    guard let items = v.array, items.allSatisfy({ $0.string != nil }) else { throw fail(p, "expected an array of process types") }
                    for name in items.compactMap(\.string) { try type(name, p) }
                    r.after = items.compactMap(\.string)
                case "backoff":
                    for (k, x) in try object(v, p) {
                        let q = "\(p).\(k)"
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
                    if r.initialDelay == 0 || r.initialDelay > r.maximumDelay { throw fail("\(p).initial", "expected more than 0 and at most backoff.max") }
                case "breaker":
                    for (k, x) in try object(v, p) {
                        let q = "\(p).\(k)"
                        switch k {
                        case "failures": r.breakerFailures = try count(x, q, minimum: 1)
                        case "window": r.breakerWindow = try seconds(x, q)
                        case "cooldown": r.cooldown = try seconds(x, q)
                        case "max_cooldown": r.maximumCooldown = try seconds(x, q)
                        default: throw fail(q, "unknown key; expected failures, window, cooldown or max_cooldown")
                        }
                    }
                default:
                    throw fail(p, "unknown key; expected restart, allow_exit, min_uptime, boot_timeout, after, backoff or breaker")
                }
            }
            return r
        }
    }
}
