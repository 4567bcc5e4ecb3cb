/// One process type of the formation: its Procfile entry, how many instances run, and
/// where their ports start.
package struct ProcessType: Sendable, Equatable {
    package var name: String
    package var command: String
    /// Position among the formation's types (Procfile order, `release` not counted).
    package var index: Int
    package var quantity: Int

    /// The port of instance `number` (1-based): `base + 100*index + (number-1)`, or `Int.max`
    /// when that does not fit an `Int`.
    ///
    /// Counts come from users (`-m web=9223372036854775807`, `paas scale`), so the arithmetic
    /// saturates instead of trapping; ``Formation/validatePorts(source:)`` then refuses any
    /// port above 65535, which `Int.max` is.
    package func port(_ number: Int, base: Int) -> Int {
        let (block, o1) = index.multipliedReportingOverflow(by: 100)
        let (start, o2) = base.addingReportingOverflow(block)
        let (offset, o3) = number.subtractingReportingOverflow(1)
        let (port, o4) = start.addingReportingOverflow(offset)
        return o1 || o2 || o3 || o4 ? Int.max : port
    }
}

/// What runs: the formation's types, with the release command apart.
package struct Formation: Sendable, Equatable {
    /// Every type but `release`, in Procfile order.
    package var types: [ProcessType]
    /// The `release` entry's command, if the Procfile has one.
    package var release: String?
    package var basePort: Int

    package init(types: [ProcessType], release: String?, basePort: Int) {
        self.types = types
        self.release = release
        self.basePort = basePort
    }

    /// The name of the release phase's Procfile entry.
    package static let releaseName = "release"

    /// Every port of the plan, type by type.
    package func ports(of type: ProcessType) -> [Int] {
        type.quantity > 0 ? (1...type.quantity).map { type.port($0, base: basePort) } : []
    }

    /// Builds the formation from a Procfile, a `-m` spec and a base port, checking that every
    /// port fits below 65536 and that no two types' port ranges overlap.
    /// `source` names where the counts came from and `portSource` what decides the ports, for errors.
    /// `defaults` are app.json's quantities (1 for a type it does not name); `-m` beats them.
    package static func plan(_ procfile: Procfile, counts: FormationSpec, defaults: [String: Int] = [:], basePort: Int, source: String, portSource: String? = nil) throws(ConfigError) -> Formation {
        var types: [ProcessType] = []
        var release: String?
        for entry in procfile.entries {
            if entry.name == releaseName { release = entry.command; continue }
            types.append(ProcessType(name: entry.name, command: entry.command, index: types.count, quantity: counts.all ?? defaults[entry.name] ?? 1))
        }
        for (name, count) in counts.counts {
            if name == releaseName, release != nil {
                throw ConfigError(.badOption, file: source, line: nil, "\"release\" runs once before the formation and cannot be scaled; expected one of: \(types.map(\.name).joined(separator: ", "))")
            }
            guard let i = types.firstIndex(where: { $0.name == name }) else {
                throw ConfigError(.badOption, file: source, line: nil, "unknown process type \"\(name)\"; expected one of: \(types.map(\.name).joined(separator: ", "))")
            }
            types[i].quantity = count
        }
        let formation = Formation(types: types, release: release, basePort: basePort)
        try formation.validatePorts(source: portSource ?? source)
        return formation
    }

    /// Checks that the plan fits below 65536 and that types do not share ports.
    package func validatePorts(source: String) throws(ConfigError) {
        // By port slot: after a reload the slots need not follow the Procfile's order.
        let bySlot = types.sorted { $0.index < $1.index }
        for (i, type) in bySlot.enumerated() where type.quantity > 0 {
            let last = type.port(type.quantity, base: basePort)
            if last > 65535 {
                let port = last == Int.max ? "a port far above 65535" : "port \(last)"
                throw ConfigError(.badOption, file: source, line: nil, "\(type.name).\(type.quantity) would get \(port); expected every port of the plan below 65536 (lower the base port or the counts)")
            }
            if i + 1 < bySlot.count, type.quantity > 100 * (bySlot[i + 1].index - type.index) {
                let room = 100 * (bySlot[i + 1].index - type.index)
                throw ConfigError(.badOption, file: source, line: nil, "\(type.name)=\(type.quantity) would reach the ports of \(bySlot[i + 1].name); expected at most \(room) instances of a type that is not the last in the Procfile")
            }
        }
    }
}

/// A parsed `-m` value: `web=2,worker=1`, `all=N`; later items override earlier ones.
package struct FormationSpec: Sendable, Equatable {
    /// `all=N`, when given (applies to every type not named).
    package var all: Int?
    /// Named counts, in the order given (later wins).
    package var counts: [(String, Int)]

    package static func == (a: FormationSpec, b: FormationSpec) -> Bool {
        a.all == b.all && a.counts.map(\.0) == b.counts.map(\.0) && a.counts.map(\.1) == b.counts.map(\.1)
    }

    package init(all: Int? = nil, counts: [(String, Int)] = []) {
        self.all = all
        self.counts = counts
    }

    /// Parses `TYPE=N[,TYPE=N...]`. `source` names where the text came from in errors.
    package static func parse(_ text: String, source: String) throws(ConfigError) -> FormationSpec {
        var spec = FormationSpec()
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingBlanks() }
        if text.trimmingBlanks().isEmpty { return spec }
        for item in items {
            guard let eq = item.firstIndex(of: "=") else {
                throw ConfigError(.badOption, file: source, line: nil, "\"\(item)\" is not TYPE=COUNT; expected e.g. web=2,worker=1 or all=1")
            }
            let name = String(item[..<eq]).trimmingBlanks()
            let countText = String(item[item.index(after: eq)...]).trimmingBlanks()
            guard !name.isEmpty else {
                throw ConfigError(.badOption, file: source, line: nil, "\"\(item)\" has no process type; expected TYPE=COUNT")
            }
            guard let count = Int(countText), count >= 0, countText.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw ConfigError(.badOption, file: source, line: nil, "count \"\(countText)\" for \(name) is not a whole number; expected 0 or more")
            }
            if name == "all" {
                spec.all = count
                spec.counts.removeAll()
            } else {
                spec.counts.append((name, count))
            }
        }
        return spec
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    package func trimmingBlanks() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
