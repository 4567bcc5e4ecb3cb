import Testing

@testable import PaasRouter

@Suite("outlier ejection")
struct OutlierStateTests {
    let second: UInt64 = 1_000_000_000

    @Test("N consecutive failures eject; a success in between resets the run")
    func ejects() {
        var o = OutlierState()
        #expect(o.recordFailure(trial: false, now: 0, threshold: 3, cooldown: second) == nil)
        #expect(o.recordFailure(trial: false, now: 0, threshold: 3, cooldown: second) == nil)
        #expect(o.recordSuccess(trial: false) == nil)
        #expect(o.consecutive == 0)
        #expect(o.recordFailure(trial: false, now: 0, threshold: 3, cooldown: second) == nil)
        #expect(o.recordFailure(trial: false, now: 0, threshold: 3, cooldown: second) == nil)
        #expect(o.availability(now: 0) == .available)
        #expect(o.recordFailure(trial: false, now: 10, threshold: 3, cooldown: second) == .ejected(consecutive: 3))
        #expect(o.availability(now: 10) == .unavailable)
        #expect(o.availability(now: 10 + second - 1) == .unavailable)
        #expect(o.availability(now: 10 + second) == .trial)
    }

    @Test("one trial after the cool-down: success restores, failure ejects again")
    func trial() {
        var o = OutlierState()
        _ = o.recordFailure(trial: false, now: 0, threshold: 1, cooldown: second)
        o.beginTrial()
        #expect(o.availability(now: 2 * second) == .unavailable, "one trial at a time")
        #expect(o.recordFailure(trial: true, now: 2 * second, threshold: 1, cooldown: second) == .ejected(consecutive: 2))
        #expect(o.availability(now: 2 * second + 1) == .unavailable)
        #expect(o.availability(now: 3 * second) == .trial)
        o.beginTrial()
        #expect(o.recordSuccess(trial: true) == .restored)
        #expect(o.availability(now: 3 * second) == .available)
        #expect(o.consecutive == 0)
        #expect(!o.isEjected)
    }

    @Test("a trial without a verdict frees the slot; old connections' outcomes change nothing while ejected")
    func neutralAndStale() {
        var o = OutlierState()
        _ = o.recordFailure(trial: false, now: 0, threshold: 1, cooldown: second)
        #expect(o.recordSuccess(trial: false) == nil)
        #expect(o.isEjected)
        #expect(o.recordFailure(trial: false, now: 5, threshold: 1, cooldown: second) == nil)
        #expect(o.availability(now: second) == .trial, "a stale failure does not extend the cool-down")
        o.beginTrial()
        o.recordNeutral(trial: true)
        #expect(o.availability(now: second) == .trial)
    }

    @Test("threshold 0 never ejects")
    func disabled() {
        var o = OutlierState()
        for _ in 0..<100 { #expect(o.recordFailure(trial: false, now: 0, threshold: 0, cooldown: second) == nil) }
        #expect(o.availability(now: 0) == .available)
    }

    @Test("smooth canary weighting: exactly the weight over every 100 choices, empty groups fall back")
    func weighting() {
        var core = RouteCore(settings: RouteSettings(name: "web", mode: .tcp, source: .port(0)))
        core.apply(RouteTable(backends: [Backend(id: 1, name: "a", port: 1), Backend(id: 2, name: "b", port: 2, group: .canary)], canaryWeight: 25))
        var canary = 0
        for _ in 0..<100 where core.chooseGroup() == .canary { canary += 1 }
        #expect(canary == 25)
        #expect(core.effectiveGroup(.canary, now: 0) == .canary)
        core.apply(RouteTable(backends: [Backend(id: 1, name: "a", port: 1)], canaryWeight: 25))
        #expect(core.effectiveGroup(.canary, now: 0) == .stable)
        core.apply(RouteTable(backends: [], canaryWeight: 25))
        #expect(core.effectiveGroup(.stable, now: 0) == nil)
    }
}
