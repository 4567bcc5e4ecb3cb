import Testing

@testable import PaasConfig
@testable import PaasCore

/// The health of one instance as a value: verdicts and time in, actions out. No process, no clock.
@Suite struct InstanceHealthTests {
    static let s = ProcessSettings.second

    static func check(_ kind: HealthCheck.Kind, attempts: Int = 1, wait: UInt64 = 1 * s, delay: UInt64 = 0) -> HealthCheck {
        var c = HealthCheck(kind: kind, probe: .command(["true"]), name: "\(kind.rawValue) check")
        c.attempts = attempts
        c.wait = wait
        c.initialDelay = delay
        return c
    }

    @Test func withoutChecksReadyAfterTheMinimumUptime() {
        var h = InstanceHealth(checks: [], now: 0, minimumUptime: 5 * Self.s, uptimeRule: true)
        #expect(h.nextDeadline == 5 * Self.s)
        let early = h.due(now: 4 * Self.s)
        let due = h.due(now: 5 * Self.s)
        #expect(early == [] && due == [.ready])
        #expect(h.ready && h.nextDeadline == nil)
    }

    @Test func aStartupCheckDecidesAloneThenRunningChecksBegin() {
        var h = InstanceHealth(checks: [Self.check(.startup, attempts: 3, delay: 2 * Self.s), Self.check(.liveness, delay: 1 * Self.s)], now: 0, minimumUptime: 5 * Self.s, uptimeRule: false)
        #expect(h.nextDeadline == 2 * Self.s, "liveness waits for startup")
        #expect(h.due(now: 2 * Self.s) == [.run(0)])
        #expect(h.record(0, ok: false, detail: "exit 1", now: 2 * Self.s) == [])
        #expect(h.nextDeadline == 3 * Self.s, "again after wait")
        #expect(h.due(now: 3 * Self.s) == [.run(0)])
        #expect(h.record(0, ok: true, detail: "exit 0", now: 3 * Self.s) == [.ready])
        #expect(h.nextDeadline == 4 * Self.s, "liveness after its initial delay")
        #expect(h.last.hasSuffix(": ok (exit 0)"), "\(h.last)")
    }

    @Test func startupFailingEveryAttemptIsAFailedStart() {
        var h = InstanceHealth(checks: [Self.check(.startup, attempts: 2)], now: 0, minimumUptime: 0, uptimeRule: false)
        _ = h.due(now: 0)
        #expect(h.record(0, ok: false, detail: "timed out", now: 0) == [])
        #expect(h.record(0, ok: false, detail: "timed out", now: 1 * Self.s) == [.failedStart(check: 0, count: 2, detail: "timed out")])
        #expect(h.nextDeadline == nil && !h.ready, "nothing more to decide")
        #expect(h.record(0, ok: true, detail: "late", now: 2 * Self.s) == [])
    }

    @Test func readinessGoesUnreadyAndReadyAgain() {
        var h = InstanceHealth(checks: [Self.check(.readiness, attempts: 2)], now: 0, minimumUptime: 1 * Self.s, uptimeRule: true)
        #expect(h.due(now: 0) == [.run(0)])
        #expect(h.record(0, ok: true, detail: "ok", now: 0) == [], "the uptime rule still waits")
        #expect(h.due(now: 1 * Self.s) == [.ready, .run(0)], "uptime passed, and the check's next run")
        var r = InstanceHealth(checks: [Self.check(.readiness, attempts: 2)], now: 0, minimumUptime: 0, uptimeRule: true)
        #expect(r.due(now: 0) == [.ready, .run(0)])
        #expect(r.record(0, ok: false, detail: "HTTP 503", now: 0) == [], "one failure of two allowed")
        #expect(r.record(0, ok: false, detail: "HTTP 503", now: 1 * Self.s) == [.unready(check: 0, detail: "HTTP 503")])
        #expect(!r.ready)
        #expect(r.record(0, ok: true, detail: "HTTP 200", now: 2 * Self.s) == [.ready])
    }

    @Test func livenessRestartsAfterItsAttempts() {
        var h = InstanceHealth(checks: [Self.check(.liveness, attempts: 3)], now: 0, minimumUptime: 0, uptimeRule: true)
        #expect(h.due(now: 0) == [.ready, .run(0)])
        #expect(h.record(0, ok: false, detail: "exit 1", now: 0) == [])
        #expect(h.record(0, ok: true, detail: "exit 0", now: 1 * Self.s) == [], "a pass resets the count")
        #expect(h.record(0, ok: false, detail: "exit 1", now: 2 * Self.s) == [])
        #expect(h.record(0, ok: false, detail: "exit 1", now: 3 * Self.s) == [])
        #expect(h.record(0, ok: false, detail: "exit 1", now: 4 * Self.s) == [.restart(check: 0, count: 3, detail: "exit 1")])
    }
}

@Suite struct TimerQueueTests {
    @Test func popsInTimeOrderThenScheduleOrder() {
        var q = TimerQueue<String>()
        for (t, name) in [(30, "c"), (10, "a"), (20, "b"), (10, "a2"), (50, "e")] { q.schedule(name, at: UInt64(t)) }
        #expect(q.next == 10)
        #expect(q.popDue(now: 9) == [])
        #expect(q.popDue(now: 20) == ["a", "a2", "b"])
        #expect(q.next == 30 && q.count == 2)
        #expect(q.popDue(now: 100) == ["c", "e"])
        #expect(q.next == nil)
    }

    @Test func aThousandRandomTimersComeOutSorted() {
        var rng = SplitMix64(seed: 7)
        var q = TimerQueue<Int>()
        var times: [UInt64] = []
        for i in 0..<1000 {
            let t = rng.next() % 10_000
            times.append(t)
            q.schedule(i, at: t)
        }
        var out: [UInt64] = []
        var now: UInt64 = 0
        while let next = q.next {
            now = next
            out += q.popDue(now: now).map { times[$0] }
        }
        #expect(out == times.sorted())
    }
}
