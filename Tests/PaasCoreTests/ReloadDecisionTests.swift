import Testing

@testable import PaasCore
@testable import PaasConfig

/// The pure decisions of a reload: the difference between two configurations, and the
/// replacement of one type's instances.
@Suite struct ConfigDiffTests {
    /// A configuration from Procfile lines, env variables and app.json settings.
    static func config(_ entries: [(String, String)], env: [(String, String)] = [], counts: [String: Int] = [:], processes: [String: ProcessSettings] = [:], base: Int = 5000) throws -> AppConfig {
        let procfile = Procfile(entries: entries.enumerated().map { ProcfileEntry(name: $1.0, command: $1.1, line: $0 + 1) })
        var manifest = AppManifest()
        manifest.processes = processes
        let formation = try Formation.plan(procfile, counts: FormationSpec(), defaults: counts, basePort: base, source: "test")
        var variables = EnvConfig()
        variables.variables = env.map { (key: $0.0, value: $0.1) }
        return AppConfig(paths: Paths.resolve(Options(root: "/app")), procfile: procfile, env: variables, formation: formation, timeout: 5, manifest: manifest, manifestPath: nil)
    }

    static func change(_ diff: ConfigDiff, _ name: String) -> ConfigDiff.Change? { diff.types.first { $0.name == name }?.change }

    @Test func nothingChanged() throws {
        let a = try Self.config([("web", "serve"), ("worker", "work")])
        let diff = ConfigDiff.between(a, a)
        #expect(diff.isEmpty)
        #expect(diff.types.map(\.change) == [.unchanged, .unchanged])
    }

    @Test func aCommandChange() throws {
        let a = try Self.config([("web", "serve"), ("worker", "work")])
        let b = try Self.config([("web", "serve"), ("worker", "work --fast")])
        let diff = ConfigDiff.between(a, b)
        #expect(Self.change(diff, "web") == .unchanged)
        #expect(Self.change(diff, "worker") == .changed([.command]))
        #expect(!diff.isEmpty)
    }

    @Test func anEnvironmentChangeTouchesEveryType() throws {
        let a = try Self.config([("web", "serve"), ("worker", "work")], env: [("A", "1")])
        let b = try Self.config([("web", "serve"), ("worker", "work")], env: [("A", "2")])
        let same = try Self.config([("web", "serve"), ("worker", "work")], env: [("A", "1")])
        #expect(ConfigDiff.between(a, b).types.map(\.change) == [.changed([.environment]), .changed([.environment])])
        #expect(ConfigDiff.between(a, same).isEmpty)
    }

    @Test func aSettingsChange() throws {
        var slow = ProcessSettings()
        slow.stopTimeout = 30 * ProcessSettings.second
        let a = try Self.config([("web", "serve"), ("worker", "work")])
        let b = try Self.config([("web", "serve"), ("worker", "work")], processes: ["worker": slow])
        #expect(Self.change(ConfigDiff.between(a, b), "worker") == .changed([.settings]))
        #expect(Self.change(ConfigDiff.between(a, b), "web") == .unchanged)
    }

    @Test func aQuantityChangeIsNotAReplacement() throws {
        let a = try Self.config([("web", "serve"), ("worker", "work")])
        let b = try Self.config([("web", "serve"), ("worker", "work")], counts: ["worker": 3])
        let diff = ConfigDiff.between(a, b)
        let worker = try #require(diff.types.first { $0.name == "worker" })
        #expect(worker.change == .unchanged && worker.quantity.old == 1 && worker.quantity.new == 3)
        #expect(!diff.isEmpty)
    }

    @Test func addedRemovedAndReorderedTypesKeepTheirSlots() throws {
        let a = try Self.config([("web", "serve"), ("old", "x"), ("worker", "work")])
        // `first` is inserted before everything, `old` removed, `worker` moved up.
        let b = try Self.config([("first", "f"), ("worker", "work"), ("web", "serve")])
        let diff = ConfigDiff.between(a, b)
        #expect(Self.change(diff, "first") == .added)
        #expect(Self.change(diff, "old") == .removed)
        #expect(Self.change(diff, "web") == .unchanged && Self.change(diff, "worker") == .unchanged)
        let slots = Dictionary(uniqueKeysWithValues: diff.formation.types.map { ($0.name, $0.index) })
        // A new type never takes the slot of a removed one (its processes may still be stopping).
        #expect(slots == ["web": 0, "worker": 2, "first": 3], "new types take the lowest slot no old or new type holds")
        #expect(diff.formation.types.first { $0.name == "worker" }?.port(1, base: 5000) == 5200)
        let c = try Self.config([("first", "f"), ("worker", "work"), ("web", "serve"), ("second", "s")])
        let slots2 = Dictionary(uniqueKeysWithValues: ConfigDiff.between(a, c).formation.types.map { ($0.name, $0.index) })
        #expect(slots2["first"] == 3 && slots2["second"] == 4)
        // Once the removed type is gone from the running configuration, its slot is free again.
        let d = try Self.config([("web", "serve"), ("worker", "work"), ("third", "t")])
        var running = a
        running.formation = ConfigDiff.between(a, try Self.config([("web", "serve"), ("worker", "work")])).formation
        #expect(ConfigDiff.between(running, d).formation.types.first { $0.name == "third" }?.index == 1)
    }

    @Test func aChangedReleaseRunsFirst() throws {
        let a = try Self.config([("release", "migrate"), ("web", "serve")])
        let same = try Self.config([("release", "migrate"), ("web", "serve")])
        let b = try Self.config([("release", "migrate --v2"), ("web", "serve")])
        let none = try Self.config([("web", "serve")])
        #expect(ConfigDiff.between(a, same).release == nil)
        #expect(ConfigDiff.between(a, b).release == "migrate --v2")
        #expect(ConfigDiff.between(a, none).release == nil)
    }

    @Test func slotsLeftByAReloadStillNeedRoom() throws {
        var formation = try Formation.plan(Procfile(entries: [ProcfileEntry(name: "a", command: "x", line: 1), ProcfileEntry(name: "b", command: "y", line: 2)]), counts: FormationSpec(), basePort: 5000, source: "t")
        // b keeps slot 2 after a removal: a may grow to 200 instances.
        formation.types[1].index = 2
        formation.types[0].quantity = 200
        try formation.validatePorts(source: "reload")
        formation.types[0].quantity = 201
        #expect(throws: ConfigError.self) { try formation.validatePorts(source: "reload") }
    }
}

@Suite struct ReplacementTests {
    @Test func startFirstKeepsCapacity() {
        var r = Replacement(type: "worker", order: .startFirst, numbers: [1, 2])
        #expect(r.begin() == [.start(1)])
        #expect(r.oldGone(1) == [], "start-first does not wait for the old one")
        #expect(r.ready(2) == [], "only the instance under way counts")
        #expect(r.ready(1) == [.stopOld(1), .start(2)])
        #expect(r.remaining == 1)
        #expect(r.ready(2) == [.stopOld(2), .finished])
        #expect(r.isDone && r.remaining == 0)
    }

    @Test func stopFirstNeverRunsTwo() {
        var r = Replacement(type: "clock", order: .stopFirst, numbers: [1, 2])
        #expect(r.begin() == [.stopOld(1)])
        #expect(r.ready(1) == [], "nothing new starts before the old one is gone")
        #expect(r.oldGone(1) == [.start(1)])
        #expect(r.ready(1) == [.stopOld(2)])
        #expect(r.oldGone(2) == [.start(2)])
        #expect(r.ready(2) == [.finished])
    }

    @Test func aFailedNewInstanceStopsTheRest() {
        var r = Replacement(type: "worker", order: .startFirst, numbers: [1, 2, 3])
        _ = r.begin()
        #expect(r.failed(2) == [], "not the one under way")
        #expect(r.failed(1) == [.abandoned(1)])
        #expect(r.isDone && r.queue.isEmpty)
        #expect(r.ready(1) == [])
    }

    @Test func aScaledAwayNumberIsSkipped() {
        var r = Replacement(type: "worker", order: .startFirst, numbers: [1, 2, 3])
        _ = r.begin()
        #expect(r.drop(3) == [])
        #expect(r.drop(1) == [.start(2)], "the one under way is dropped: go on")
        #expect(r.ready(2) == [.stopOld(2), .finished])
    }

    @Test func nothingToReplace() {
        var r = Replacement(type: "worker", order: .stopFirst, numbers: [])
        #expect(r.begin() == [.finished])
    }
}
