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
                case "paas":
                    for (k, v) in try object(value, "paas") {
                        guard k == "processes" else { throw fail("paas.\(k)", "unknown key; expected \"processes\"") }
                        for (name, settings) in try object(v, "paas.processes") {
                            try type(name, "paas.processes.\(name)")
                            m.processes[name] = try restart(settings, "paas.processes.\(name)")
                        }
                    }
                default:
                    continue // other platforms' keys (name, scripts, healthchecks, env...)
                }
            }
            return m
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
                    throw fail(p, "unknown key; expected restart, allow_exit, min_uptime, backoff or breaker")
                }
            }
            return r
        }
    }
}
