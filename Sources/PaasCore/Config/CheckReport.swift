/// What `paas check` prints: the formation, every Procfile entry in file order with its
/// command, quantity and ports, the files read and any warnings.
package enum CheckReport {
    package static func json(_ config: AppConfig) -> String {
        let f = config.formation
        let processes: [JSON] = config.procfile.entries.map { entry in
            if entry.name == Formation.releaseName {
                return .object([("name", .string(entry.name)), ("command", .string(entry.command)), ("quantity", .int(0)), ("ports", .array([])), ("release", .bool(true))])
            }
            let type = f.types.first { $0.name == entry.name }!
            return .object([
                ("name", .string(type.name)), ("command", .string(type.command)), ("quantity", .int(type.quantity)),
                ("ports", .array(f.ports(of: type).map { .int($0) })), ("release", .bool(false)),
            ])
        }
        return JSON.object([
            ("procfile", .string(config.paths.procfile)),
            ("root", .string(config.paths.root)),
            ("env_files", .array(config.env.files.map { .string($0) })),
            ("base_port", .int(f.basePort)),
            ("timeout", .number(config.timeout)),
            ("processes", .array(processes)),
            ("warnings", .array(config.env.warnings.map { .string($0.description) })),
        ]).serialized(pretty: true)
    }

    package static func text(_ config: AppConfig) -> String {
        let f = config.formation
        var out = "\(config.paths.procfile): ok, \(f.types.count) process type\(f.types.count == 1 ? "" : "s")\(f.release != nil ? " and a release phase" : "")\n"
        out += "env files: \(config.env.files.isEmpty ? "none" : config.env.files.joined(separator: ", "))\n"
        out += "root: \(config.paths.root)\n\n"
        let width = max(4, config.procfile.entries.map(\.name.count).max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        out += "\(pad("TYPE", width))  QTY  \(pad("PORTS", 11))  COMMAND\n"
        for entry in config.procfile.entries {
            if entry.name == Formation.releaseName {
                out += "\(pad(entry.name, width))    -  \(pad("(first)", 11))  \(entry.command)\n"
                continue
            }
            let type = f.types.first { $0.name == entry.name }!
            let ports = f.ports(of: type)
            let portText = ports.isEmpty ? "-" : ports.count == 1 ? "\(ports[0])" : "\(ports.first!)-\(ports.last!)"
            out += "\(pad(type.name, width))  \(String(repeating: " ", count: max(0, 3 - String(type.quantity).count)))\(type.quantity)  \(pad(portText, 11))  \(type.command)\n"
        }
        return out
    }
}
