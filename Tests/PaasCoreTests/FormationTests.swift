import Testing

@testable import PaasCore
@testable import PaasConfig

/// A `-m` value that parses, and what it parses to.
struct SpecValidCase: Sendable, CustomTestStringConvertible {
    var text: String
    var all: Int?
    var counts: [(String, Int)]
    var testDescription: String { "\"\(text)\"" }

    init(_ text: String, all: Int? = nil, _ counts: [(String, Int)] = []) {
        self.text = text
        self.all = all
        self.counts = counts
    }
}

/// A `-m` value that is refused, with a fragment of the message.
struct SpecErrorCase: Sendable, CustomTestStringConvertible {
    var text: String
    var fragment: String
    var testDescription: String { "\"\(text)\"" }

    init(_ text: String, _ fragment: String) {
        self.text = text
        self.fragment = fragment
    }
}

/// A Procfile of entries `name: run name`, one per line, in order.
private func procfile(_ names: String...) -> Procfile {
    Procfile(entries: names.enumerated().map { ProcfileEntry(name: $1, command: "run \($1)", line: $0 + 1) })
}

private func planError(_ procfile: Procfile, _ spec: FormationSpec, base: Int = 5000) -> ConfigError? {
    do {
        _ = try Formation.plan(procfile, counts: spec, basePort: base, source: "-m/--formation")
        return nil
    } catch {
        return error
    }
}

@Suite struct FormationSpecTests {
    static let valid: [SpecValidCase] = [
        SpecValidCase("", []),
        SpecValidCase("   ", []),
        SpecValidCase("web=2", [("web", 2)]),
        SpecValidCase("web=2,worker=1", [("web", 2), ("worker", 1)]),
        SpecValidCase(" web = 2 , worker=0 ", [("web", 2), ("worker", 0)]),
        SpecValidCase("web=0", [("web", 0)]),
        SpecValidCase("web=007", [("web", 7)]),
        SpecValidCase("all=3", all: 3),
        SpecValidCase("all=0,web=2", all: 0, [("web", 2)]),
        // `all` later in the list overrides the counts named before it.
        SpecValidCase("web=2,all=3", all: 3),
        SpecValidCase("web=1,web=4", [("web", 1), ("web", 4)]),
        SpecValidCase("my-type_2=5", [("my-type_2", 5)]),
        SpecValidCase("web=100000", [("web", 100000)]),
    ]

    @Test(arguments: valid)
    func parsesValidSpecs(_ c: SpecValidCase) throws {
        let spec = try FormationSpec.parse(c.text, source: "-m/--formation")
        #expect(spec == FormationSpec(all: c.all, counts: c.counts))
        #expect(spec.all == c.all)
        #expect(spec.counts.map(\.0) == c.counts.map(\.0))
        #expect(spec.counts.map(\.1) == c.counts.map(\.1))
    }

    static let invalid: [SpecErrorCase] = [
        SpecErrorCase("web", "is not TYPE=COUNT"),
        SpecErrorCase("web:2", "is not TYPE=COUNT"),
        SpecErrorCase("web=2,", "is not TYPE=COUNT"),
        SpecErrorCase(",web=2", "is not TYPE=COUNT"),
        SpecErrorCase("web=2,,worker=1", "is not TYPE=COUNT"),
        SpecErrorCase("=2", "has no process type"),
        SpecErrorCase(" =2", "has no process type"),
        SpecErrorCase("web=", "is not a whole number"),
        SpecErrorCase("web=-1", "is not a whole number"),
        SpecErrorCase("web=+1", "is not a whole number"),
        SpecErrorCase("web=1.5", "is not a whole number"),
        SpecErrorCase("web=two", "is not a whole number"),
        SpecErrorCase("web=0x10", "is not a whole number"),
        SpecErrorCase("web=1e3", "is not a whole number"),
        SpecErrorCase("web=2=3", "is not a whole number"),
        SpecErrorCase("web=٣", "is not a whole number"),
        SpecErrorCase("web=99999999999999999999999", "is not a whole number"),
        SpecErrorCase("all=-3", "is not a whole number"),
    ]

    @Test(arguments: invalid)
    func refusesInvalidSpecs(_ c: SpecErrorCase) {
        let e = #expect(throws: ConfigError.self) {
            _ = try FormationSpec.parse(c.text, source: "PAAS_FORMATION")
        }
        #expect(e?.code == .badOption)
        #expect(e?.file == "PAAS_FORMATION")
        #expect(e?.line == nil)
        #expect(e?.message.contains(c.fragment) == true, "\(String(describing: e))")
    }

    @Test func errorNamesItsSourceInDescription() {
        do {
            _ = try FormationSpec.parse("web=x", source: "-m/--formation")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "-m/--formation: count \"x\" for web is not a whole number; expected 0 or more")
        }
    }
}

@Suite struct FormationPlanTests {
    @Test func defaultIsOneOfEachInProcfileOrder() throws {
        let f = try Formation.plan(procfile("web", "worker", "clock"), counts: FormationSpec(), basePort: 5000, source: "-m")
        #expect(f.types.map(\.name) == ["web", "worker", "clock"])
        #expect(f.types.map(\.index) == [0, 1, 2])
        #expect(f.types.map(\.quantity) == [1, 1, 1])
        #expect(f.types.map(\.command) == ["run web", "run worker", "run clock"])
        #expect(f.types.map { f.ports(of: $0) } == [[5000], [5100], [5200]])
        #expect(f.release == nil)
        #expect(f.basePort == 5000)
    }

    @Test func portsFollowBasePlusHundredPerTypePlusInstance() throws {
        let spec = try FormationSpec.parse("web=2,worker=3,clock=1", source: "-m")
        let f = try Formation.plan(procfile("web", "worker", "clock"), counts: spec, basePort: 6000, source: "-m")
        #expect(f.types.map { f.ports(of: $0) } == [[6000, 6001], [6100, 6101, 6102], [6200]])
        // The formula itself, for any instance number.
        let worker = f.types[1]
        for n in 1...3 { #expect(worker.port(n, base: 6000) == 6000 + 100 * 1 + (n - 1)) }
    }

    @Test(arguments: [
        ("all=3", [3, 3, 3]),
        ("all=0", [0, 0, 0]),
        ("all=0,web=2", [2, 0, 0]),
        ("all=2,clock=0", [2, 2, 0]),
        ("web=2,worker=0", [2, 0, 1]),
        ("web=5,all=1", [1, 1, 1]),
        ("web=1,web=4", [4, 1, 1]),
    ])
    func quantities(spec text: String, expected: [Int]) throws {
        let spec = try FormationSpec.parse(text, source: "-m")
        let f = try Formation.plan(procfile("web", "worker", "clock"), counts: spec, basePort: 5000, source: "-m")
        #expect(f.types.map(\.quantity) == expected)
    }

    @Test func zeroInstancesHaveNoPorts() throws {
        let f = try Formation.plan(procfile("web", "worker"), counts: FormationSpec(counts: [("worker", 0)]), basePort: 5000, source: "-m")
        #expect(f.ports(of: f.types[1]) == [])
        #expect(f.ports(of: f.types[0]) == [5000])
    }

    @Test(arguments: [
        (["release", "web", "worker"], 0),
        (["web", "release", "worker"], 1),
        (["web", "worker", "release"], 2),
    ])
    func releaseIsApartAndNotIndexed(names: [String], releasePosition: Int) throws {
        let p = Procfile(entries: names.enumerated().map { ProcfileEntry(name: $1, command: "run \($1)", line: $0 + 1) })
        let f = try Formation.plan(p, counts: FormationSpec(all: 2), basePort: 5000, source: "-m")
        #expect(f.release == "run release")
        #expect(f.types.map(\.name) == ["web", "worker"])
        #expect(f.types.map(\.index) == [0, 1])
        #expect(f.types.map { f.ports(of: $0) } == [[5000, 5001], [5100, 5101]])
    }

    @Test func unknownTypeIsAnErrorListingTheTypes() throws {
        let e = try #require(planError(procfile("web", "worker"), FormationSpec(counts: [("wbe", 2)])))
        #expect(e.code == .badOption)
        #expect(e.file == "-m/--formation")
        #expect(e.line == nil)
        #expect(e.message == "unknown process type \"wbe\"; expected one of: web, worker")
    }

    @Test func typeNamesAreCaseSensitive() throws {
        let e = try #require(planError(procfile("web"), FormationSpec(counts: [("Web", 1)])))
        #expect(e.message.contains("unknown process type \"Web\""))
    }

    @Test func releaseCannotBeScaled() throws {
        let e = try #require(planError(procfile("release", "web"), FormationSpec(counts: [("release", 2)])))
        #expect(e.code == .badOption)
        #expect(e.message.contains("\"release\" runs once before the formation and cannot be scaled"))
        #expect(e.message.hasSuffix("expected one of: web"))
    }

    @Test func releaseWithoutReleaseEntryIsUnknown() throws {
        let e = try #require(planError(procfile("web"), FormationSpec(counts: [("release", 1)])))
        #expect(e.message.contains("unknown process type \"release\""))
    }

    @Test func allDoesNotScaleRelease() throws {
        let f = try Formation.plan(procfile("release", "web"), counts: FormationSpec(all: 4), basePort: 5000, source: "-m")
        #expect(f.types.count == 1)
        #expect(f.types[0].quantity == 4)
        #expect(f.release == "run release")
    }

    @Test func hundredInstancesOfANonLastTypeFit() throws {
        let f = try Formation.plan(procfile("web", "worker"), counts: FormationSpec(counts: [("web", 100)]), basePort: 5000, source: "-m")
        let web = f.ports(of: f.types[0])
        #expect(web.count == 100)
        #expect(web.last == 5099)
        #expect(f.ports(of: f.types[1]) == [5100])
    }

    @Test func moreThanHundredInstancesOfANonLastTypeIsAnError() throws {
        let e = try #require(planError(procfile("web", "worker"), FormationSpec(counts: [("web", 101)])))
        #expect(e.code == .badOption)
        #expect(e.message.contains("web=101 would reach the ports of worker"))
        #expect(e.message.contains("expected at most 100 instances"))
    }

    @Test func moreThanHundredOfANonLastTypeIsAnErrorEvenWhenTheNextTypeIsZero() throws {
        // Ports would still overlap the block reserved for the next type.
        let e = try #require(planError(procfile("web", "worker"), FormationSpec(counts: [("web", 150), ("worker", 0)])))
        #expect(e.message.contains("web=150"))
    }

    @Test func theLastTypeMayHaveMoreThanHundred() throws {
        let f = try Formation.plan(procfile("web", "worker"), counts: FormationSpec(counts: [("worker", 250)]), basePort: 5000, source: "-m")
        let ports = f.ports(of: f.types[1])
        #expect(ports.count == 250)
        #expect(ports.first == 5100)
        #expect(ports.last == 5349)
        #expect(Set(ports).count == 250)
    }

    @Test func portsUpTo65535Fit() throws {
        let f = try Formation.plan(procfile("web"), counts: FormationSpec(), basePort: 65535, source: "-m")
        #expect(f.ports(of: f.types[0]) == [65535])
        let g = try Formation.plan(procfile("web", "worker"), counts: FormationSpec(counts: [("worker", 36)]), basePort: 65400, source: "-m")
        #expect(g.ports(of: g.types[1]).last == 65535)
    }

    @Test func aPortAbove65535IsAnError() throws {
        let e = try #require(planError(procfile("web"), FormationSpec(counts: [("web", 2)]), base: 65535))
        #expect(e.code == .badOption)
        #expect(e.file == "-m/--formation")
        #expect(e.message.contains("web.2 would get port 65536"))
        #expect(e.message.contains("below 65536"))
    }

    @Test func aLaterTypeAbove65535IsAnError() throws {
        let e = try #require(planError(procfile("web", "worker", "clock"), FormationSpec(), base: 65400))
        #expect(e.message.contains("clock.1 would get port 65600"))
    }

    @Test func aTypeWithNoInstancesNeedsNoPort() throws {
        let f = try Formation.plan(procfile("web", "worker"), counts: FormationSpec(counts: [("worker", 0)]), basePort: 65500, source: "-m")
        #expect(f.types.map(\.quantity) == [1, 0])
        #expect(f.ports(of: f.types[0]) == [65500])
    }

    @Test func validatePortsOnAHandBuiltFormation() throws {
        let ok = Formation(types: [ProcessType(name: "web", command: "x", index: 0, quantity: 3)], release: nil, basePort: 65533)
        try ok.validatePorts(source: "s")
        let bad = Formation(types: [ProcessType(name: "web", command: "x", index: 0, quantity: 4)], release: nil, basePort: 65533)
        #expect(throws: ConfigError.self) { try bad.validatePorts(source: "s") }
    }
}
