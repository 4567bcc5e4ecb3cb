import PaasCore
import Testing
@testable import PaasConfig

/// Restart policy, backoff and circuit breaker: pure values, times passed in (nanoseconds).
@Suite struct RestartPolicyTests {
    static let s = ProcessSettings.second

    @Test(arguments: [
        (ProcessSettings.Policy.no, Termination.exited(0), false),
        (.no, .exited(1), false),
        (.onFailure, .exited(0), false),
        (.onFailure, .exited(3), true),
        (.onFailure, .signaled(9), true),
        (.always, .exited(0), true),
        (.always, .signaled(15), true),
    ])
    func whoRestarts(policy: ProcessSettings.Policy, status: Termination, restarts: Bool) {
        var settings = ProcessSettings()
        settings.policy = policy
        #expect(settings.restarts(after: status) == restarts)
        // Only the default policy without allow-exit stops the formation.
        #expect(settings.exitIsAllowed(status) == (policy != .no))
    }

    @Test func allowExitLetsAOneShotFinish() {
        var settings = ProcessSettings()
        settings.allowExit = true
        #expect(settings.exitIsAllowed(.exited(0)) && settings.exitIsAllowed(.exited(2)))
        #expect(!settings.restarts(after: .exited(2)))
    }

    @Test func delaySequenceBeforeJitter() {
        var backoff = Backoff(settings: ProcessSettings())
        // random 0.5 means no jitter.
        let delays = (0..<9).map { _ in backoff.delay(afterUptime: 1 * Self.s, random: 0.5) / Self.s }
        #expect(delays == [1, 2, 4, 8, 16, 32, 60, 60, 60])
    }

    @Test func jitterStaysWithinTenPercent() {
        var low = Backoff(settings: ProcessSettings()), high = Backoff(settings: ProcessSettings())
        let lowest = low.delay(afterUptime: 0, random: 0)
        let highest = high.delay(afterUptime: 0, random: 0.999_999)
        #expect(lowest == 900_000_000)
        #expect(highest <= 1_100_000_000 && highest > 1_099_000_000 && high.attempt == 1)
    }

    @Test func resetsAfterAStableRun() {
        var backoff = Backoff(settings: ProcessSettings())
        for _ in 0..<5 { _ = backoff.delay(afterUptime: 1 * Self.s, random: 0.5) }
        let sixth = backoff.delay(afterUptime: 1 * Self.s, random: 0.5)
        // Up for 10 minutes: back to the start.
        let afterStableRun = backoff.delay(afterUptime: 600 * Self.s, random: 0.5)
        let next = backoff.delay(afterUptime: 599 * Self.s, random: 0.5)
        #expect(sixth == 32 * Self.s && afterStableRun == 1 * Self.s && next == 2 * Self.s)
    }

    @Test func configurableDelays() {
        var settings = ProcessSettings()
        settings.initialDelay = Self.s / 10
        settings.maximumDelay = Self.s / 2
        var backoff = Backoff(settings: settings)
        let delays = (0..<5).map { _ in backoff.delay(afterUptime: 0, random: 0.5) }
        #expect(delays == [100_000_000, 200_000_000, 400_000_000, 500_000_000, 500_000_000])
    }
}

@Suite struct CircuitBreakerTests {
    static let s = ProcessSettings.second

    /// Records an exit and returns whether it opened the breaker.
    static func exit(_ breaker: inout CircuitBreaker, uptime: UInt64, at t: UInt64) -> Bool {
        breaker.recordExit(uptime: uptime, at: t)
    }

    @Test func opensOnTheFifthUnstableExitInTheWindow() {
        var breaker = CircuitBreaker(settings: ProcessSettings())
        var opened: [Bool] = []
        for i in 0..<5 { opened.append(Self.exit(&breaker, uptime: 1 * Self.s, at: UInt64(i) * 10 * Self.s)) }
        #expect(opened == [false, false, false, false, true])
        #expect(breaker.state == .open(until: 40 * Self.s + 300 * Self.s))
    }

    @Test func fiveUnstableExitsSpreadOverSixMinutesDoNotOpen() {
        var breaker = CircuitBreaker(settings: ProcessSettings())
        // One every 90 s: the first has left the 5-minute window when the fifth comes.
        var opened: [Bool] = []
        for i in 0..<5 { opened.append(Self.exit(&breaker, uptime: 1 * Self.s, at: UInt64(i) * 90 * Self.s)) }
        #expect(opened == [false, false, false, false, false])
        #expect(breaker.state == .closed)
    }

    @Test func stableExitsDoNotCount() {
        var breaker = CircuitBreaker(settings: ProcessSettings())
        var opened: [Bool] = []
        for i in 0..<10 { opened.append(Self.exit(&breaker, uptime: 6 * Self.s, at: UInt64(i) * Self.s)) }
        #expect(!opened.contains(true))
        #expect(breaker.state == .closed && breaker.unstableExits.isEmpty)
    }

    static func opened(at t: UInt64 = 0) -> CircuitBreaker {
        var breaker = CircuitBreaker(settings: ProcessSettings())
        for i in 0..<5 { _ = breaker.recordExit(uptime: 0, at: t + UInt64(i)) }
        return breaker
    }

    @Test func halfOpenAfterTheCooldownThenClosesOnAStableProbe() {
        var breaker = Self.opened()
        let early = breaker.tick(now: 299 * Self.s)
        let due = breaker.tick(now: 301 * Self.s)
        #expect(!early && due)
        #expect(breaker.state == .halfOpen)
        breaker.probeSucceeded()
        #expect(breaker.state == .closed && breaker.trips == 0)
    }

    @Test func aFailedProbeOpensAgainWithALongerCooldown() {
        var breaker = Self.opened()
        _ = breaker.tick(now: 301 * Self.s)
        let reopened = Self.exit(&breaker, uptime: 1 * Self.s, at: 302 * Self.s)
        #expect(reopened)
        #expect(breaker.state == .open(until: 302 * Self.s + 600 * Self.s))
        let due = breaker.tick(now: 902 * Self.s)
        let again = Self.exit(&breaker, uptime: 0, at: 903 * Self.s)
        #expect(due && again)
        #expect(breaker.state == .open(until: 903 * Self.s + 1200 * Self.s))
    }

    @Test func aStableProbeExitDoesNotReopen() {
        var breaker = Self.opened()
        _ = breaker.tick(now: 301 * Self.s)
        let reopened = Self.exit(&breaker, uptime: 10 * Self.s, at: 320 * Self.s)
        #expect(!reopened)
        #expect(breaker.state == .halfOpen)
    }

    /// Fault 6: a probe that exits after min_uptime, or fails its checks, still failed.
    @Test func aProbeThatFailsLateOpensAgain() {
        var breaker = Self.opened()
        _ = breaker.tick(now: 301 * Self.s)
        let reopened = breaker.probeFailed(at: 330 * Self.s)
        #expect(reopened)
        #expect(breaker.state == .open(until: 330 * Self.s + 600 * Self.s))
        let again = breaker.probeFailed(at: 331 * Self.s)
        #expect(!again, "only a half-open breaker has a probe")
    }

    @Test func closedByHand() {
        var breaker = Self.opened()
        breaker.close()
        #expect(breaker.state == .closed && breaker.trips == 0 && breaker.unstableExits.isEmpty)
        #expect(breaker.currentCooldown == 300 * Self.s)
    }

    @Test func cooldownIsCapped() {
        var settings = ProcessSettings()
        settings.cooldown = 1000 * Self.s
        settings.maximumCooldown = 1500 * Self.s
        var breaker = CircuitBreaker(settings: settings)
        for i in 0..<5 { _ = breaker.recordExit(uptime: 0, at: UInt64(i)) }
        _ = breaker.tick(now: 2000 * Self.s)
        _ = breaker.recordExit(uptime: 0, at: 2000 * Self.s)
        #expect(breaker.state == .open(until: 3500 * Self.s))
    }
}

@Suite struct GroupStopsTests {
    @Test func aGroupIsKilledOnceAtItsDeadline() {
        var stops = GroupStops()
        let first = stops.begin(100, name: "web.1", deadline: 50)
        let second = stops.begin(100, name: "web.1", deadline: 90)
        let other = stops.begin(200, name: "web.2", deadline: 70)
        #expect(first && !second && other, "no second SIGTERM, the deadline stays")
        #expect(stops.nextDeadline == 50)
        let early = stops.due(now: 49)
        let due = stops.due(now: 60)
        let again = stops.due(now: 60)
        #expect(early.isEmpty)
        #expect(due.map(\.pgid) == [100] && due.map(\.name) == ["web.1"])
        #expect(again.isEmpty, "killed once")
        #expect(stops.nextDeadline == 70)
        #expect(stops.contains(100), "kept until the group is empty")
        stops.ended(100)
        #expect(!stops.contains(100))
        stops.killed(200, name: "web.2")
        let late = stops.due(now: 1000)
        #expect(stops.nextDeadline == nil && late.isEmpty)
        stops.ended(200)
        #expect(stops.isEmpty)
    }
}
