package import PaasConfig
import PaasRouter

/// One rollout under way, as the loop carries it: the controller value, and the members of
/// the new set (serial → number) and of the old set.
struct RolloutRun {
    var controller: Rollout
    var newSet: [Int: Int] = [:]
    var oldSet: [Int] = []
}

/// Zero-downtime rollouts of routed types (blue-green, canary), carried out for the
/// controller value (``Rollout``): the new set runs beside the old one under the same names
/// and takes them over at the switch; the router's table decides who gets traffic.
extension Supervisor {
    /// Starts a rollout of `type` to the current plan's configuration.
    func beginRollout(_ typeName: String, strategy: RolloutSettings.Strategy, overrides: RolloutOverrides, now: UInt64) {
        let settings = plan.app.settings(typeName).rollout
        let count = desired[typeName] ?? 0
        let kind: Rollout.Strategy
        switch strategy {
        case .canary:
            kind = .canary(steps: overrides.steps ?? settings.steps, stepDuration: overrides.stepDuration ?? settings.stepDuration, minRequests: settings.minRequests)
        default:
            kind = .blueGreen
        }
        var controller = Rollout(type: typeName, count: count, strategy: kind, deployTimeout: settings.deployTimeout,
                                 drainTimeout: settings.drainTimeout, failureThreshold: settings.failureThreshold, now: now)
        var run = RolloutRun(controller: controller)
        run.oldSet = current.values.filter { members[$0].identity.type == typeName && !members[$0].state.isFinished }.sorted()
        let actions = controller.begin()
        run.controller = controller
        rollouts[typeName] = run
        carryOut(actions, rollout: typeName, now: now)
        scheduleRollout(typeName, now: now)
    }

    /// Every 100 ms while a rollout runs: its counters and deadlines.
    static let rolloutTick: UInt64 = 100_000_000

    func scheduleRollout(_ typeName: String, now: UInt64) {
        guard rollouts[typeName] != nil else { return }
        timers.schedule(.rollout(typeName), at: now + Self.rolloutTick)
    }

    /// The rollout's timer: feed it the router's counters and the time.
    func rolloutDue(_ typeName: String, now: UInt64) {
        guard var run = rollouts[typeName] else { return }
        let counters = router?.snapshot(route: typeName) ?? [:]
        var stable = Rollout.Traffic(), canary = Rollout.Traffic()
        var oldActive = 0
        for (id, c) in counters {
            if run.newSet[id] != nil {
                canary.total += c.total
                canary.errors += c.errors
            } else if run.oldSet.contains(id) {
                stable.total += c.total
                stable.errors += c.errors
                oldActive += c.active
            }
        }
        let actions = run.controller.tick(now: now, stable: stable, canary: canary, oldActive: oldActive)
        rollouts[typeName] = run
        carryOut(actions, rollout: typeName, now: now)
        scheduleRollout(typeName, now: now)
    }

    /// A member of a rollout's new set, by serial: its type and number.
    func rolloutMember(_ index: Int) -> (type: String, number: Int)? {
        for (type, run) in rollouts { if let n = run.newSet[index] { return (type, n) } }
        return nil
    }

    func rolloutReady(_ index: Int, now: UInt64) {
        guard let (type, n) = rolloutMember(index), var run = rollouts[type] else { return }
        let actions = run.controller.ready(n, now: now)
        rollouts[type] = run
        routerDirty = true
        carryOut(actions, rollout: type, now: now)
    }

    func rolloutCheckFailed(_ index: Int, now: UInt64) {
        guard let (type, n) = rolloutMember(index), var run = rollouts[type] else { return }
        let actions = run.controller.checkFailed(n, now: now)
        rollouts[type] = run
        routerDirty = true
        carryOut(actions, rollout: type, now: now)
    }

    /// A new-set member exited or could not start.
    func rolloutExited(_ index: Int, _ how: String, now: UInt64) {
        guard let (type, n) = rolloutMember(index), var run = rollouts[type] else { return }
        run.newSet[index] = nil
        let actions = run.controller.exited(n, how)
        rollouts[type] = run
        routerDirty = true
        carryOut(actions, rollout: type, now: now)
    }

    /// `paas stop`, `restart` or `scale` of a type under a rollout that has not switched yet:
    /// the rollout is aborted (the old set serves on) and the command takes over.
    func abandonRollout(of typeName: String, by action: String) {
        guard var run = rollouts[typeName], run.controller.beforeSwitch, case .success(let actions) = run.controller.abort(by: action) else { return }
        rollouts[typeName] = run
        carryOut(actions, rollout: typeName, now: Clock.monotonicNanos())
    }

    /// `paas rollout promote` and `abort`: every rollout under way.
    func steerRollouts(promote: Bool) -> Result<[(String, JSON)], ControlError> {
        guard !rollouts.isEmpty else { return .failure(ControlError("no rollout is under way")) }
        let now = Clock.monotonicNanos()
        var done: [JSON] = []
        for type in rollouts.keys.sorted() {
            guard var run = rollouts[type] else { continue }
            let result = promote ? run.controller.promote(now: now) : run.controller.abort()
            switch result {
            case .failure(let refusal):
                return .failure(ControlError("\(type): \(refusal.message)"))
            case .success(let actions):
                rollouts[type] = run
                routerDirty = true
                event("\(type): \(promote ? "promote" : "abort") requested (paas rollout \(promote ? "promote" : "abort"))")
                carryOut(actions, rollout: type, now: now)
                done.append(.string(type))
            }
        }
        return .success([(promote ? "promoted" : "aborted", .array(done))])
    }

    /// Does what a rollout asks.
    func carryOut(_ actions: [Rollout.Action], rollout typeName: String, now: UInt64) {
        for action in actions {
            switch action {
            case .note(let text):
                event(text)
                rolloutLog.append(text)
            case .startNew(let count):
                guard let type = plan.app.formation.types.first(where: { $0.name == typeName }), count > 0 else { continue }
                for n in 1...count {
                    guard let index = startInstance(type, n, role: .rolloutNew) else {
                        // No private port left in the type's block: the new set cannot be whole.
                        guard var run = rollouts[typeName] else { break }
                        let more = run.controller.exited(n, "could not start (no free private port in \(typeName)'s block)")
                        rollouts[typeName] = run
                        carryOut(more, rollout: typeName, now: now)
                        break
                    }
                    rollouts[typeName]?.newSet[index] = n
                    if case .failedToStart(let why) = members[index].state.phase {
                        rolloutExited(index, "could not start (\(why))", now: now)
                        break
                    }
                }
            case .setWeight:
                routerDirty = true
            case .switchAll:
                guard let run = rollouts[typeName] else { continue }
                // The new set takes the names; every old instance leaves rotation and drains.
                for (serial, n) in run.newSet.sorted(by: { $0.value < $1.value }) {
                    let name = "\(typeName).\(n)"
                    members[serial].state.intent = .none
                    current[name] = serial
                    pendingRestarts[name] = nil
                }
                let deadline = now + run.controller.drainTimeout
                for old in run.oldSet where members.member(old).map({ !$0.state.isFinished }) == true {
                    members[old].state.intent = .remove
                    drains[old] = (deadline: deadline, byRollout: true)
                }
                routerDirty = true
            case .stopOld:
                guard let run = rollouts[typeName] else { continue }
                for old in run.oldSet {
                    drains[old] = nil
                    if let m = members.member(old) {
                        if m.state.isFinished { forgetIfDone(old) } else { stopInstance(old) }
                    }
                }
            case .stopNew:
                guard let run = rollouts[typeName] else { continue }
                for serial in run.newSet.keys.sorted() where members.member(serial).map({ !$0.state.isFinished }) == true {
                    members[serial].state.intent = .remove
                    stopInstance(serial)
                }
                routerDirty = true
            case .finished(let outcome):
                rollouts[typeName] = nil
                routerDirty = true
                recordOutcome(typeName, outcome)
                retryQueuedReload()
            }
        }
    }

    /// How a type's rollout (or replacement) ended, for `paas rollout` waiting on it.
    func recordOutcome(_ typeName: String, _ outcome: Rollout.Outcome) {
        let line = "\(typeName): rollout \(outcome.description)"
        event(line)
        rolloutLog.append(line)
        rolloutOutcomes[typeName] = (outcome, rolloutLog.lines(since: Int.max).next - 1)
    }

    /// `paas rollout status`: the rollouts under way and how the last ones ended.
    func rolloutStatus(since: Int) -> [(String, JSON)] {
        var active: [JSON] = []
        for type in rollouts.keys.sorted() {
            guard let run = rollouts[type] else { continue }
            let c = run.controller
            let phase: String
            switch c.phase {
            case .starting: phase = "starting"
            case .step(let i, _): phase = "step \(i + 1)"
            case .draining: phase = "draining"
            case .done(let o): phase = o.description
            }
            active.append(.object([("type", .string(type)), ("strategy", .string(c.strategyName)), ("phase", .string(phase)),
                                   ("weight", .int(c.weight)), ("ready", .string("\(c.ready.count)/\(c.count)"))]))
        }
        for (type, r) in replacements.sorted(by: { $0.key < $1.key }) {
            active.append(.object([("type", .string(type)), ("strategy", .string(r.order == .stopFirst ? "stop-first" : "rolling")),
                                   ("phase", .string("replacing")), ("remaining", .int(r.remaining))]))
        }
        let outcomes = rolloutOutcomes.sorted { $0.key < $1.key }.map { (key, value) in
            (key, JSON.object([("outcome", .string(value.outcome.description)), ("promoted", .bool(value.outcome == .promoted)), ("at", .int(value.at))]))
        }
        let log = rolloutLog.lines(since: since)
        return [("active", .array(active)), ("outcomes", .object(outcomes)), ("log", .array(log.lines.map { .string($0) })), ("next", .int(log.next))]
    }
}

/// The rollouts' decision lines, numbered from the start of the run; the last 1,000 are kept.
struct RolloutLog {
    private(set) var lines: [String] = []
    /// The number of the first line kept.
    private(set) var first = 0

    mutating func append(_ line: String) {
        lines.append(line)
        if lines.count > 1000 {
            lines.removeFirst(lines.count - 1000)
            first += 1
        }
    }

    /// Lines numbered `since` and later (what was dropped is skipped), and the next number.
    func lines(since: Int) -> (lines: [String], next: Int) {
        let from = max(0, since - first)
        return (from < lines.count ? Array(lines[from...]) : [], first + lines.count)
    }
}

/// What `paas rollout` may override of app.json's rollout settings.
package struct RolloutOverrides: Sendable, Equatable {
    package var strategy: RolloutSettings.Strategy?
    package var steps: [Int]?
    package var stepDuration: UInt64?
    package init(strategy: RolloutSettings.Strategy? = nil, steps: [Int]? = nil, stepDuration: UInt64? = nil) {
        self.strategy = strategy
        self.steps = steps
        self.stepDuration = stepDuration
    }
}
