/// What a reload changes, type by type: the difference between the configuration a
/// formation runs and the one just read. A pure value; the supervisor carries it out.
///
/// Port slots: an existing type keeps its slot (`PORT = base + 100*slot + n-1`) whatever its
/// new place in the Procfile; a new type takes the lowest slot no type of the old or the new
/// configuration holds. So a type inserted before others never moves their ports, and a new
/// type (a renamed one) never binds the ports of a removed type that may still be stopping.
package struct ConfigDiff: Sendable, Equatable {
    /// Why a type's instances must be replaced.
    package enum Reason: String, Sendable, Equatable, CaseIterable {
        case command
        /// The variables its processes see (the env files'), or its ports (the base port).
        case environment
        /// Its app.json settings: restart policy, health checks, stop signal...
        case settings
    }

    package enum Change: Sendable, Equatable {
        case added
        case removed
        case changed([Reason])
        case unchanged
    }

    package struct TypeDiff: Sendable, Equatable {
        package var name: String
        package var change: Change
        /// The configured count before and after (nil where the type is absent): a change
        /// applies like `scale`; the same count leaves a count set by `scale` alone.
        package var quantity: (old: Int?, new: Int?)

        package static func == (a: TypeDiff, b: TypeDiff) -> Bool {
            a.name == b.name && a.change == b.change && a.quantity.old == b.quantity.old && a.quantity.new == b.quantity.new
        }
    }

    /// Every type of either configuration: the new one's in Procfile order, then removed ones.
    package var types: [TypeDiff]
    /// The new `release` command, when it is there and differs from the old one: it runs
    /// (and must succeed) before anything is replaced.
    package var release: String?
    /// The new formation, its types in the port slots described above.
    package var formation: Formation

    package var isEmpty: Bool {
        release == nil && types.allSatisfy { $0.change == .unchanged && $0.quantity.old == $0.quantity.new }
    }

    /// The difference between `old` and `new`. `settings(config, type)` tells whether two
    /// types' app.json settings are equal (the caller knows which settings a type has).
    package static func between(_ old: AppConfig, _ new: AppConfig) -> ConfigDiff {
        let oldTypes = Dictionary(uniqueKeysWithValues: old.formation.types.map { ($0.name, $0) })
        let environmentChanged = !sameVariables(old.env, new.env) || old.formation.basePort != new.formation.basePort
        var formation = new.formation
        // Slots: kept for existing types, the lowest free one for new types.
        var taken = Set(old.formation.types.map(\.index))
        for i in formation.types.indices {
            if let previous = oldTypes[formation.types[i].name] {
                formation.types[i].index = previous.index
            } else {
                var slot = 0
                while taken.contains(slot) { slot += 1 }
                taken.insert(slot)
                formation.types[i].index = slot
            }
        }
        var types: [TypeDiff] = []
        for type in formation.types {
            guard let before = oldTypes[type.name] else {
                types.append(TypeDiff(name: type.name, change: .added, quantity: (nil, type.quantity)))
                continue
            }
            var reasons: [Reason] = []
            if before.command != type.command { reasons.append(.command) }
            if environmentChanged { reasons.append(.environment) }
            if !old.sameSettings(type.name, as: new) { reasons.append(.settings) }
            types.append(TypeDiff(name: type.name, change: reasons.isEmpty ? .unchanged : .changed(reasons), quantity: (before.quantity, type.quantity)))
        }
        for type in old.formation.types where !formation.types.contains(where: { $0.name == type.name }) {
            types.append(TypeDiff(name: type.name, change: .removed, quantity: (type.quantity, nil)))
        }
        let release = new.formation.release.flatMap { $0 == old.formation.release ? nil : $0 }
        return ConfigDiff(types: types, release: release, formation: formation)
    }

    private static func sameVariables(_ a: EnvConfig, _ b: EnvConfig) -> Bool {
        func fold(_ e: EnvConfig) -> [String: String] {
            var d: [String: String] = [:]
            for (k, v) in e.variables { d[k] = v }
            return d
        }
        return fold(a) == fold(b)
    }
}

extension AppConfig {
    /// Whether type `name` has the same app.json settings here and in `other`.
    package func sameSettings(_ name: String, as other: AppConfig) -> Bool {
        manifest.processes[name] == other.manifest.processes[name] && manifest.healthchecks[name] == other.manifest.healthchecks[name]
    }
}

extension ConfigDiff.Reason {
    /// `command changed`, `environment changed`.
    package var phrase: String { "\(rawValue) changed" }
}
