/// What `paas check` prints: the formation, every Procfile entry in file order with its
/// command, quantity and ports, the files read and any warnings.
package enum CheckReport {
    package static func json(_ config: AppConfig) -> String {
        let f = config.formation
        let byName = Dictionary(f.types.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let processes: [JSON] = config.procfile.entries.map { entry in
            if entry.name == Formation.releaseName {
                return .object([("name", .string(entry.name)), ("command", .string(entry.command)), ("quantity", .int(0)), ("ports", .array([])), ("release", .bool(true))])
            }
            let type = byName[entry.name]!
            return .object([
                ("name", .string(type.name)), ("command", .string(type.command)), ("quantity", .int(type.quantity)),
                ("ports", .array(f.ports(of: type).map { .int($0) })), ("release", .bool(false)),
                // Behind the router (unless `up --no-router`): one public port, instances on private ones.
                ("routed", .bool(config.isRouted(type.name))),
                ("public_port", config.isRouted(type.name) ? .int(type.port(1, base: f.basePort)) : .null),
                ("settings", settings(config.settings(type.name))),
                ("healthchecks", .array((config.manifest.healthchecks[type.name] ?? []).map(check))),
            ])
        }
        return JSON.object([
            ("procfile", .string(config.paths.procfile)),
            ("app_json", config.manifestPath.map { .string($0) } ?? .null),
            ("root", .string(config.paths.root)),
            ("env_files", .array(config.env.files.map { .string($0) })),
            ("base_port", .int(f.basePort)),
            ("timeout", .number(config.timeout)),
            ("processes", .array(processes)),
            ("warnings", .array(config.env.warnings.map { .string($0.description) })),
        ]).serialized(pretty: true)
    }

    /// A type's effective restart settings, in seconds.
    static func settings(_ r: ProcessSettings) -> JSON {
        func s(_ n: UInt64) -> JSON { .number(Double(n) / 1e9) }
        return .object([
            ("restart", .string(r.policy.rawValue)), ("allow_exit", .bool(r.allowExit)), ("min_uptime", s(r.minimumUptime)),
            ("backoff", .object([("initial", s(r.initialDelay)), ("max", s(r.maximumDelay)), ("jitter", .number(r.jitter)), ("reset_after", s(r.resetAfter))])),
            ("breaker", .object([("failures", .int(r.breakerFailures)), ("window", s(r.breakerWindow)), ("cooldown", s(r.cooldown)), ("max_cooldown", s(r.maximumCooldown))])),
            ("after", .array(r.after.map { .string($0) })), ("boot_timeout", s(r.bootTimeout)),
            ("router", .string(r.router.rawValue)), ("fallback", r.fallback.map { .string($0) } ?? .null),
            ("ejection", .object([("errors", .int(r.ejectionErrors)), ("cooldown", s(r.ejectionCooldown))])),
            ("rollout", .object([
                ("strategy", r.rollout.strategy.map { .string($0.rawValue) } ?? .null), ("steps", .array(r.rollout.steps.map { .int($0) })),
                ("step_duration", s(r.rollout.stepDuration)), ("min_requests", .int(r.rollout.minRequests)),
                ("deploy_timeout", s(r.rollout.deployTimeout)), ("drain_timeout", s(r.rollout.drainTimeout)),
                ("failure_threshold", .int(r.rollout.failureThreshold)),
            ])),
        ])
    }

    /// One health check as configured.
    static func check(_ c: HealthCheck) -> JSON {
        func s(_ n: UInt64) -> JSON { .number(Double(n) / 1e9) }
        var probe: [(String, JSON)]
        switch c.probe {
        case .http(let path, let content): probe = [("path", .string(path))] + (content.map { [("content", .string($0))] } ?? [])
        case .tcp: probe = [("tcp", .bool(true))]
        case .command(let argv): probe = [("command", .array(argv.map { .string($0) }))]
        }
        return .object([("type", .string(c.kind.rawValue)), ("name", .string(c.name))] + probe + [
            ("port", c.port.map { .int($0) } ?? .null), ("timeout", s(c.timeout)), ("wait", s(c.wait)),
            ("attempts", .int(c.attempts)), ("initialDelay", s(c.initialDelay)),
        ])
    }

    /// One word for the text table: `no`, `on-failure`, `always`, with `+exit` for allow_exit.
    static func restartWord(_ r: ProcessSettings) -> String {
        r.policy.rawValue + (r.allowExit ? " (exit allowed)" : "")
    }

    package static func text(_ config: AppConfig) -> String {
        let f = config.formation
        var out = "\(config.paths.procfile): ok, \(f.types.count) process type\(f.types.count == 1 ? "" : "s")\(f.release != nil ? " and a release phase" : "")\n"
        out += "env files: \(config.env.files.isEmpty ? "none" : config.env.files.joined(separator: ", "))\n"
        out += "root: \(config.paths.root)\n"
        out += "app.json: \(config.manifestPath ?? "none")\n\n"
        let byName = Dictionary(f.types.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let width = max(4, config.procfile.entries.map(\.name.count).max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        out += "\(pad("TYPE", width))  QTY  \(pad("PORTS", 11))  \(pad("RESTART", 10))  COMMAND\n"
        for entry in config.procfile.entries {
            if entry.name == Formation.releaseName {
                out += "\(pad(entry.name, width))    -  \(pad("(first)", 11))  \(pad("-", 10))  \(entry.command)\n"
                continue
            }
            let type = byName[entry.name]!
            let ports = f.ports(of: type)
            var portText = ports.isEmpty ? "-" : ports.count == 1 ? "\(ports[0])" : "\(ports.first!)-\(ports.last!)"
            if config.isRouted(type.name) { portText = "\(type.port(1, base: f.basePort)) routed" }
            out += "\(pad(type.name, width))  \(String(repeating: " ", count: max(0, 3 - String(type.quantity).count)))\(type.quantity)  \(pad(portText, 11))  \(pad(restartWord(config.settings(type.name)), 10))  \(type.command)\n"
        }
        return out
    }
}
