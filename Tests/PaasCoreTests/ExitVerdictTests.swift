import Testing

@testable import PaasConfig
@testable import PaasCore

/// What an exit on its own means, as a pure function: no process, no clock.
@Suite struct ExitVerdictTests {
    static let s = ProcessSettings.second

    static func settings(_ policy: ProcessSettings.Policy, allowExit: Bool = false) -> ProcessSettings {
        var r = ProcessSettings()
        r.policy = policy
        r.allowExit = allowExit
        r.jitter = 0
        return r
    }

    static func decide(_ settings: ProcessSettings, _ status: Termination, failedStart: Bool = false, uptime: UInt64 = 60 * s, isProbe: Bool = false,
                       breaker: inout CircuitBreaker, now: UInt64 = 1000 * s) -> ExitVerdict {
        var backoff = Backoff(settings: settings)
        return ExitVerdict.decide(settings: settings, status: status, failedStart: failedStart, uptime: uptime, isProbe: isProbe,
                                  breaker: &breaker, backoff: &backoff, now: now, random: 0.5)
    }

    @Test(arguments: [
        (ProcessSettings.Policy.no, false, Termination.exited(3), false, ExitVerdict.endsTheRun),
        (.no, true, .exited(3), false, .finished),
        (.no, false, .exited(0), true, .failedStart),
        (.onFailure, false, .exited(0), false, .finished),
        (.onFailure, false, .exited(1), false, .restart(after: 1 * ProcessSettings.second)),
        (.always, false, .exited(0), false, .restart(after: 1 * ProcessSettings.second)),
        (.onFailure, false, .exited(0), true, .restart(after: 1 * ProcessSettings.second)),
    ])
    func policies(policy: ProcessSettings.Policy, allowExit: Bool, status: Termination, failedStart: Bool, expected: ExitVerdict) {
        let settings = Self.settings(policy, allowExit: allowExit)
        var breaker = CircuitBreaker(settings: settings)
        #expect(Self.decide(settings, status, failedStart: failedStart, breaker: &breaker) == expected)
    }

    @Test func unstableExitsOpenTheBreakerThenHoldIt() {
        let settings = Self.settings(.always)
        var breaker = CircuitBreaker(settings: settings)
        var verdicts: [ExitVerdict] = []
        for i in 0..<6 { verdicts.append(Self.decide(settings, .exited(1), uptime: 0, breaker: &breaker, now: UInt64(i) * Self.s)) }
        #expect(verdicts.prefix(4).allSatisfy { if case .restart = $0 { true } else { false } })
        #expect(verdicts[4] == .breakerOpened(probe: false))
        #expect(verdicts[5] == .heldByBreaker)
    }

    @Test func aProbeThatExitsLateStillFails() {
        let settings = Self.settings(.always)
        var breaker = CircuitBreaker(settings: settings)
        for i in 0..<5 { _ = breaker.recordExit(uptime: 0, at: UInt64(i)) }
        _ = breaker.tick(now: 400 * Self.s)
        #expect(Self.decide(settings, .exited(0), uptime: 30 * Self.s, isProbe: true, breaker: &breaker, now: 430 * Self.s) == .breakerOpened(probe: true))
    }

    @Test func aFailedStartCountsAsUnstable() {
        let settings = Self.settings(.onFailure)
        var breaker = CircuitBreaker(settings: settings)
        for _ in 0..<4 { _ = Self.decide(settings, .exited(0), failedStart: true, uptime: 100 * Self.s, breaker: &breaker) }
        #expect(Self.decide(settings, .exited(0), failedStart: true, uptime: 100 * Self.s, breaker: &breaker) == .breakerOpened(probe: false))
    }
}
