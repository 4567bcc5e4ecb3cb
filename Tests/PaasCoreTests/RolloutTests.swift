import Testing

@testable import PaasCore

/// The rollout controller as a value: events in, actions out (issue 10, item 10).
@Suite("rollout decisions")
struct RolloutTests {
    let s: UInt64 = 1_000_000_000
    static let s: UInt64 = 1_000_000_000
    typealias T = Rollout.Traffic

    static func blueGreen(count: Int = 2) -> Rollout {
        Rollout(type: "web", count: count, strategy: .blueGreen, deployTimeout: 60 * s, drainTimeout: 30 * s, failureThreshold: 3, now: 0)
    }

    static func canary(steps: [Int] = [10, 50, 100], minRequests: Int = 0) -> Rollout {
        Rollout(type: "web", count: 2, strategy: .canary(steps: steps, stepDuration: 10 * s, minRequests: minRequests), deployTimeout: 60 * s, drainTimeout: 5 * s, failureThreshold: 3, now: 0)
    }

    @Test("blue-green starts the whole set, switches only when every instance is ready, then drains and stops the old set")
    func blueGreenHappy() {
        var r = Self.blueGreen()
        #expect(r.begin().contains(.startNew(count: 2)))
        #expect(r.ready(1, now: s) == [])
        #expect(r.tick(now: 2 * s, stable: T(), canary: T(), oldActive: 3) == [])
        let switched = r.ready(2, now: 3 * s)
        #expect(switched.contains(.switchAll))
        #expect(r.phase == .draining(until: 33 * s))
        // Open connections keep the old set until they end or the drain deadline.
        #expect(r.tick(now: 4 * s, stable: T(), canary: T(), oldActive: 2) == [])
        let done = r.tick(now: 5 * s, stable: T(), canary: T(), oldActive: 0)
        #expect(done.contains(.stopOld))
        #expect(done.contains(.finished(.promoted)))
        #expect(r.isDone)
    }

    @Test("blue-green drains until the deadline when connections stay open")
    func drainDeadline() {
        var r = Self.blueGreen(count: 1)
        _ = r.begin()
        _ = r.ready(1, now: 0)
        #expect(r.tick(now: 29 * s, stable: T(), canary: T(), oldActive: 1) == [])
        #expect(r.tick(now: 30 * s, stable: T(), canary: T(), oldActive: 1).contains(.stopOld))
    }

    @Test("a new set not ready by the deadline is stopped and the old one kept: never a switch on a timeout")
    func notReady() {
        var r = Self.blueGreen(count: 3)
        _ = r.begin()
        _ = r.ready(1, now: s)
        #expect(r.tick(now: 59 * s, stable: T(), canary: T(), oldActive: 0) == [])
        let actions = r.tick(now: 60 * s, stable: T(), canary: T(), oldActive: 0)
        #expect(actions.contains(.stopNew))
        #expect(!actions.contains(.switchAll))
        #expect(r.phase == .done(.rolledBack("the new set was not ready in time (1/3 ready)")))
        #expect(r.ready(2, now: 61 * s) == [])
    }

    @Test("a new instance that exits before the switch rolls back; after the switch it is the restart policy's")
    func exits() {
        var r = Self.blueGreen()
        _ = r.begin()
        #expect(r.exited(1, "exited with status 1").contains(.stopNew))
        var after = Self.blueGreen(count: 1)
        _ = after.begin()
        _ = after.ready(1, now: 0)
        #expect(after.exited(1, "exited with status 1") == [])
    }

    @Test("canary walks its steps, each held its duration, then switches")
    func canarySteps() {
        var r = Self.canary()
        _ = r.begin()
        _ = r.ready(1, now: 0)
        #expect(r.ready(2, now: 0).contains(.setWeight(10)))
        #expect(r.tick(now: 9 * s, stable: T(total: 90), canary: T(total: 10), oldActive: 1) == [])
        #expect(r.tick(now: 10 * s, stable: T(total: 90), canary: T(total: 10), oldActive: 1).contains(.setWeight(50)))
        #expect(r.tick(now: 20 * s, stable: T(total: 140), canary: T(total: 60), oldActive: 1).contains(.setWeight(100)))
        #expect(r.tick(now: 30 * s, stable: T(total: 140), canary: T(total: 160), oldActive: 1).contains(.switchAll))
        #expect(r.tick(now: 35 * s, stable: T(total: 140), canary: T(total: 200), oldActive: 1).contains(.stopOld))
    }

    @Test("a canary whose error rate passes max(1 %, 2 x stable) rolls back at once, with the numbers")
    func canaryErrors() throws {
        var r = Self.canary()
        _ = r.begin()
        _ = r.ready(1, now: 0)
        _ = r.ready(2, now: 0)
        _ = r.tick(now: 1 * s, stable: T(total: 1000, errors: 5), canary: T(), oldActive: 0) // baseline
        let actions = r.tick(now: 2 * s, stable: T(total: 1900, errors: 5), canary: T(total: 100, errors: 30), oldActive: 0)
        #expect(actions.contains(.stopNew))
        #expect(actions.contains(.setWeight(0)))
        guard case .done(.rolledBack(let why)) = r.phase else { Issue.record("not rolled back"); return }
        #expect(why.contains("30 %"))
        #expect(why.contains("30/100"))
    }

    @Test("a canary at the stable set's own error rate goes on; above 2 x of it rolls back")
    func relativeRate() {
        var r = Self.canary()
        _ = r.begin(); _ = r.ready(1, now: 0); _ = r.ready(2, now: 0)
        _ = r.tick(now: 0, stable: T(), canary: T(), oldActive: 0)
        // stable 10 % errors: the limit is 20 %.
        #expect(r.tick(now: s, stable: T(total: 100, errors: 10), canary: T(total: 100, errors: 15), oldActive: 0) == [])
        #expect(r.tick(now: 2 * s, stable: T(total: 100, errors: 10), canary: T(total: 100, errors: 25), oldActive: 0).contains(.stopNew))
    }

    @Test("a step waits for min_requests before it passes")
    func minRequests() {
        var r = Self.canary(minRequests: 50)
        _ = r.begin(); _ = r.ready(1, now: 0); _ = r.ready(2, now: 0)
        #expect(r.tick(now: 20 * s, stable: T(total: 10), canary: T(total: 49), oldActive: 0) == [])
        #expect(r.tick(now: 21 * s, stable: T(total: 10), canary: T(total: 50), oldActive: 0).contains(.setWeight(50)))
    }

    @Test("failed health checks roll back at the threshold")
    func healthFailures() {
        var r = Self.canary()
        _ = r.begin(); _ = r.ready(1, now: 0); _ = r.ready(2, now: 0)
        #expect(r.checkFailed(2, now: s) == [])
        #expect(r.checkFailed(2, now: s) == [])
        #expect(r.checkFailed(2, now: s).contains(.stopNew))
    }

    @Test("promote switches only a ready set; abort rolls back only before the switch")
    func promoteAbort() {
        var r = Self.canary()
        _ = r.begin()
        #expect(throws: RolloutRefusal.self) { try r.promote(now: 0).get() }
        _ = r.ready(1, now: 0); _ = r.ready(2, now: 0)
        #expect((try? r.promote(now: s).get())?.contains(.switchAll) == true)
        #expect(throws: RolloutRefusal.self) { try r.abort().get() }
        var a = Self.canary()
        _ = a.begin()
        #expect((try? a.abort().get())?.contains(.finished(.aborted)) == true)
        #expect(a.isDone)
    }
}

/// systemd socket activation's variables (issue 11, item 5).
@Suite("socket activation")
struct SocketActivationTests {
    @Test("only for this process; named sockets go to their type, unnamed ones in order")
    func parse() {
        #expect(SocketActivation.parse([("LISTEN_PID", "41"), ("LISTEN_FDS", "1")], pid: 42) == nil)
        #expect(SocketActivation.parse([("LISTEN_PID", "42"), ("LISTEN_FDS", "0")], pid: 42) == nil)
        #expect(SocketActivation.parse([("LISTEN_FDS", "1")], pid: 42) == nil)
        var a = SocketActivation.parse([("LISTEN_PID", "42"), ("LISTEN_FDS", "3"), ("LISTEN_FDNAMES", "api:unknown:")], pid: 42)
        #expect(a?.take(for: "web") == 4)
        #expect(a?.take(for: "api") == 3)
        #expect(a?.take(for: "other") == 5)
        #expect(a?.take(for: "more") == nil)
        var one = SocketActivation.parse([("LISTEN_PID", "7"), ("LISTEN_FDS", "1")], pid: 7)
        #expect(one?.take(for: "web") == 3)
    }
}
