/// A zero-downtime rollout of one routed type: a value that takes events (a new instance is
/// ready, unready or gone, the router's counters, the time, a person's promote or abort) and
/// returns what the loop must do (start the new set, set the canary's weight, switch, drain,
/// stop a set). Issue 10.
///
/// - Blue-green: start the whole new set beside the old one; when every new instance is
///   ready, switch all new connections to it in one step, drain the old set, stop it. A new
///   set that is not ready by the deadline, or loses an instance, is stopped and the old one
///   keeps serving: never a switch on a timeout.
/// - Canary: the same new set, then weighted steps (10 %, 50 %, 100 % by default), each held
///   `stepDuration` and needing `minRequests` answers from the canary; rolled back on its own
///   when a canary instance exits, fails its checks `failureThreshold` times, or its error
///   rate passes max(1 %, 2 × the stable set's).
package struct Rollout: Sendable, Equatable {
    package enum Strategy: Sendable, Equatable {
        case blueGreen
        case canary(steps: [Int], stepDuration: UInt64, minRequests: Int)
    }

    package enum Outcome: Sendable, Equatable {
        case promoted
        case rolledBack(String)
        case aborted

        package var description: String {
            switch self {
            case .promoted: "promoted"
            case .rolledBack(let why): "rolled back: \(why)"
            case .aborted: "aborted"
            }
        }
    }

    package enum Phase: Sendable, Equatable {
        /// The new set is starting; every instance must become ready by the deadline.
        case starting
        /// Canary step `index` (into the steps) since `since`.
        case step(index: Int, since: UInt64)
        /// Switched: the old set takes no new connections and drains until `until`.
        case draining(until: UInt64)
        case done(Outcome)
    }

    package enum Action: Sendable, Equatable {
        /// Start instances 1...count of the new generation beside the old ones.
        case startNew(count: Int)
        /// Send `percent` of new connections (requests in http mode) to the ready new set.
        case setWeight(Int)
        /// The new set takes every new connection; the old set leaves rotation and drains.
        case switchAll
        /// The old set has drained (or its deadline passed): stop it.
        case stopOld
        /// Give up: the new set leaves rotation and is stopped; the old set serves as before.
        case stopNew
        case finished(Outcome)
        /// A decision, with the numbers behind it, for the event stream.
        case note(String)
    }

    /// Requests (http) or connections (tcp) and how many failed, since a set joined rotation.
    package struct Traffic: Sendable, Equatable {
        package var total = 0
        package var errors = 0

        package init(total: Int = 0, errors: Int = 0) {
            self.total = total
            self.errors = errors
        }

        package var rate: Double { total > 0 ? Double(errors) / Double(total) : 0 }

        static func - (a: Traffic, b: Traffic) -> Traffic {
            Traffic(total: max(0, a.total - b.total), errors: max(0, a.errors - b.errors))
        }
    }

    package let type: String
    package let count: Int
    package let strategy: Strategy
    package let deployTimeout: UInt64
    package let deployDeadline: UInt64
    package let drainTimeout: UInt64
    package let failureThreshold: Int
    package private(set) var phase = Phase.starting
    /// New instances that are ready now.
    package private(set) var ready: Set<Int> = []
    /// Failed health checks per new instance, while they count.
    private var failures: [Int: Int] = [:]
    /// The stable set's traffic when the canary joined rotation: its rate is measured from there.
    private var stableBaseline: Traffic?
    package private(set) var weight = 0

    package init(type: String, count: Int, strategy: Strategy, deployTimeout: UInt64, drainTimeout: UInt64, failureThreshold: Int, now: UInt64) {
        self.type = type
        self.count = count
        self.strategy = strategy
        self.deployTimeout = deployTimeout
        self.deployDeadline = now + deployTimeout
        self.drainTimeout = drainTimeout
        self.failureThreshold = failureThreshold
    }

    package var isDone: Bool { if case .done = phase { true } else { false } }

    /// Whether the new set may still be rolled back (it has not taken all traffic).
    package var beforeSwitch: Bool {
        switch phase {
        case .starting, .step: true
        case .draining, .done: false
        }
    }

    package var strategyName: String {
        switch strategy {
        case .blueGreen: "blue-green"
        case .canary: "canary"
        }
    }

    /// The deadline the loop must wake up for, if any.
    package var nextDeadline: UInt64? {
        switch phase {
        case .starting: deployDeadline
        case .step(_, let since):
            // A step that lacks requests is looked at again at each tick of the counters.
            if case .canary(_, let duration, _) = strategy { since + duration } else { nil }
        case .draining(let until): until
        case .done: nil
        }
    }

    package mutating func begin() -> [Action] {
        [.note("\(type): \(strategyName) rollout of \(count) instance\(count == 1 ? "" : "s") started (new set must be ready within \(Self.seconds(deployTimeout)))"), .startNew(count: count)]
    }

    /// New instance `n` passed its checks.
    package mutating func ready(_ n: Int, now: UInt64) -> [Action] {
        guard case .starting = phase, n >= 1, n <= count else { return [] }
        ready.insert(n)
        failures[n] = nil
        guard ready.count == count else { return [] }
        switch strategy {
        case .blueGreen:
            return switchAll(now: now, why: "every new instance is ready (\(count)/\(count))")
        case .canary(let steps, _, _):
            phase = .step(index: 0, since: now)
            weight = steps[0]
            return [.note("\(type): canary ready (\(count)/\(count)); step 1 of \(steps.count): \(steps[0]) % of traffic"), .setWeight(steps[0])]
        }
    }

    /// New instance `n` failed a health check (`ready` false now, or never was).
    package mutating func checkFailed(_ n: Int, now: UInt64) -> [Action] {
        guard beforeSwitch else { return [] }
        failures[n, default: 0] += 1
        guard failures[n, default: 0] >= failureThreshold else { return [] }
        return rollBack("\(type).\(n) of the new set failed its health checks \(failures[n, default: 0]) times")
    }

    /// New instance `n` exited, or could not start.
    package mutating func exited(_ n: Int, _ how: String) -> [Action] {
        guard beforeSwitch else { return [] }
        return rollBack("\(type).\(n) of the new set \(how)")
    }

    /// The passing of time and the router's counters: the stable set's and the canary's since
    /// they joined rotation; `oldActive`: connections still open to the old set.
    package mutating func tick(now: UInt64, stable: Traffic, canary: Traffic, oldActive: Int) -> [Action] {
        switch phase {
        case .starting:
            guard now >= deployDeadline else { return [] }
            return rollBack("the new set was not ready in time (\(ready.count)/\(count) ready)")
        case .step(let i, let since):
            guard case .canary(let steps, let duration, let minimum) = strategy else { return [] }
            let baseline = stableBaseline ?? stable
            if stableBaseline == nil { stableBaseline = stable }
            let stableNow = stable - baseline
            let limit = max(0.01, 2 * stableNow.rate)
            if canary.errors > 0 && canary.rate > limit {
                return rollBack("canary error rate \(Self.percent(canary.rate)) (\(canary.errors)/\(canary.total)) above the limit \(Self.percent(limit)) (stable \(Self.percent(stableNow.rate)), \(stableNow.errors)/\(stableNow.total))")
            }
            guard now >= since + duration else { return [] }
            guard canary.total >= minimum else { return [] } // held until it has seen enough
            let numbers = "canary \(Self.percent(canary.rate)) errors (\(canary.errors)/\(canary.total)), stable \(Self.percent(stableNow.rate)) (\(stableNow.errors)/\(stableNow.total))"
            if i + 1 < steps.count {
                phase = .step(index: i + 1, since: now)
                weight = steps[i + 1]
                return [.note("\(type): step \(i + 2) of \(steps.count): \(steps[i + 1]) % of traffic (\(numbers))"), .setWeight(steps[i + 1])]
            }
            return switchAll(now: now, why: "every step passed (\(numbers))")
        case .draining(let until):
            guard oldActive == 0 || now >= until else { return [] }
            phase = .done(.promoted)
            let why = oldActive == 0 ? "old set drained" : "drain timeout reached with \(oldActive) connection\(oldActive == 1 ? "" : "s") open"
            return [.note("\(type): \(why); stopping it"), .stopOld, .finished(.promoted)]
        case .done:
            return []
        }
    }

    /// `paas rollout promote`: switch now, if the new set is ready.
    package mutating func promote(now: UInt64) -> Result<[Action], RolloutRefusal> {
        switch phase {
        case .starting:
            return .failure(RolloutRefusal("the new set is not ready yet (\(ready.count)/\(count)); a rollout never switches to something not ready"))
        case .step:
            return .success(switchAll(now: now, why: "promoted by paas rollout promote"))
        case .draining, .done:
            return .failure(RolloutRefusal("the rollout has already switched"))
        }
    }

    /// `paas rollout abort`: roll back now, if it has not switched.
    package mutating func abort(by who: String = "paas rollout abort") -> Result<[Action], RolloutRefusal> {
        guard beforeSwitch else { return .failure(RolloutRefusal("the rollout has already switched; roll out the previous configuration instead")) }
        phase = .done(.aborted)
        weight = 0
        return .success([.note("\(type): rollout aborted by \(who); the old set serves as before"), .setWeight(0), .stopNew, .finished(.aborted)])
    }

    private mutating func switchAll(now: UInt64, why: String) -> [Action] {
        phase = .draining(until: now + drainTimeout)
        weight = 100
        return [.note("\(type): switching every new connection to the new set (\(why)); draining the old set (up to \(Self.seconds(drainTimeout)))"), .switchAll]
    }

    private mutating func rollBack(_ why: String) -> [Action] {
        phase = .done(.rolledBack(why))
        weight = 0
        return [.note("\(type): rolling back: \(why); the old set serves as before"), .setWeight(0), .stopNew, .finished(.rolledBack(why))]
    }

    static func percent(_ rate: Double) -> String {
        let p = (rate * 1000).rounded() / 10
        return p == p.rounded() ? "\(Int(p)) %" : "\(p) %"
    }

    static func seconds(_ ns: UInt64) -> String {
        let s = Double(ns) / 1e9
        return s == s.rounded() ? "\(Int(s))s" : "\(s)s"
    }
}

/// Why `promote` or `abort` cannot be taken now.
package struct RolloutRefusal: Error, Sendable, Equatable {
    package var message: String
    package init(_ message: String) { self.message = message }
}
