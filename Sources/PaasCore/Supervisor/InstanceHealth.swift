import PaasConfig

/// The health of one instance: its checks, the consecutive failures and next run of each,
/// and whether it is ready. A value that takes verdicts and the passing of time and returns
/// what the loop must do; it never runs a check itself.
///
/// Ready = the startup checks passed, the minimum uptime passed where that rule applies (no
/// configured startup check), and no readiness check is failing.
struct InstanceHealth: Sendable, Equatable {
    enum Action: Sendable, Equatable {
        /// Run check `i` now.
        case run(Int)
        /// Startup check `i` failed `count` times in a row: the instance failed to start.
        case failedStart(check: Int, count: Int, detail: String)
        /// Liveness check `i` failed `count` times in a row: restart the instance.
        case restart(check: Int, count: Int, detail: String)
        case ready
        /// Readiness check `i` failed: out of rotation until it passes again.
        case unready(check: Int, detail: String)
    }

    private(set) var checks: [HealthCheck]
    private(set) var failures: [Int]
    private(set) var nextAt: [UInt64?]
    private(set) var startupPassed: Bool
    private(set) var ready = false
    /// When the minimum uptime has passed (the default readiness rule needs it).
    private let uptimeAt: UInt64
    private(set) var uptimePassed: Bool
    /// The last verdict, for `paas ps`.
    private(set) var last = "-"
    /// A verdict that ended the instance (failed start, liveness): nothing more to decide.
    private var finished = false

    /// An instance started at `now`: startup checks are due after their initial delay.
    /// `uptimeRule`: readiness also waits for `minimumUptime` (no configured startup check).
    init(checks: [HealthCheck], now: UInt64, minimumUptime: UInt64, uptimeRule: Bool) {
        self.checks = checks
        failures = Array(repeating: 0, count: checks.count)
        nextAt = checks.map { $0.kind == .startup ? now + $0.initialDelay : nil }
        startupPassed = !checks.contains { $0.kind == .startup }
        uptimeAt = now + minimumUptime
        uptimePassed = !uptimeRule
        if startupPassed { scheduleRunning(now: now) }
    }

    /// The earliest moment something is due (a check to run, the uptime to pass).
    var nextDeadline: UInt64? {
        guard !finished else { return nil }
        let t = nextAt.compactMap { $0 }.min()
        guard !uptimePassed else { return t }
        return t.map { min($0, uptimeAt) } ?? uptimeAt
    }

    /// Time passed: the uptime rule, and the checks that are due (each run once; its next run
    /// is scheduled when its verdict comes).
    mutating func due(now: UInt64) -> [Action] {
        guard !finished else { return [] }
        var actions: [Action] = []
        if !uptimePassed && uptimeAt <= now {
            uptimePassed = true
            actions += evaluate()
        }
        for i in checks.indices {
            guard let at = nextAt[i], at <= now else { continue }
            nextAt[i] = nil
            actions.append(.run(i))
        }
        return actions
    }

    /// The verdict of check `i`: `ok`, or failed with `detail` (a timeout is a failure).
    mutating func record(_ i: Int, ok: Bool, detail: String, now: UInt64) -> [Action] {
        guard !finished, checks.indices.contains(i) else { return [] }
        let check = checks[i]
        last = "\(check.summary): \(ok ? "ok" : "failed") (\(detail))"
        if ok { failures[i] = 0 } else { failures[i] += 1 }
        let exhausted = failures[i] >= check.attempts
        switch check.kind {
        case .startup:
            if ok {
                if !startupPassed {
                    startupPassed = true
                    scheduleRunning(now: now)
                }
            } else if exhausted {
                finished = true
                return [.failedStart(check: i, count: failures[i], detail: detail)]
            } else {
                nextAt[i] = now + check.wait
            }
        case .readiness:
            nextAt[i] = now + check.wait
            if !ok && exhausted && ready {
                ready = false
                return [.unready(check: i, detail: detail)]
            }
        case .liveness:
            if exhausted {
                finished = true
                return [.restart(check: i, count: failures[i], detail: detail)]
            }
            nextAt[i] = now + check.wait
        }
        return evaluate()
    }

    private mutating func evaluate() -> [Action] {
        let readinessFailing = checks.indices.contains { checks[$0].kind == .readiness && failures[$0] >= checks[$0].attempts }
        let now = startupPassed && uptimePassed && !readinessFailing
        guard now != ready else { return [] }
        ready = now
        return now ? [.ready] : []
    }

    private mutating func scheduleRunning(now: UInt64) {
        for (i, c) in checks.enumerated() where c.kind != .startup {
            nextAt[i] = now + c.initialDelay
        }
    }
}
