import PaasConfig

/// A restart waiting for its backoff delay.
struct PendingRestart {
    var at: UInt64
    var type: String
    var number: Int
    var restarts: Int
}

/// Restart policies, backoff and circuit breakers, carried out by the owner loop: exits
/// decide, timers fire from the loop's poll timeout (no polling thread).
extension Supervisor {
    /// A process exited without paas asking: restart it (with backoff), let it finish, or stop
    /// the formation, as its type's settings say; count unstable exits for the breaker.
    func exitedOnItsOwn(_ index: Int, _ status: Termination, now: UInt64, failedStart: Bool = false) {
        let id = members[index].identity
        guard runState.phase == .running else { return }
        let settings = plan.app.settings(id.type)
        let isProbe = probes[id.type]?.member == index
        var breaker = breakers[id.type] ?? CircuitBreaker(settings: settings)
        var backoff = backoffs[id.name] ?? Backoff(settings: settings)
        let verdict = ExitVerdict.decide(settings: settings, status: status, failedStart: failedStart, uptime: now - members[index].startedAt,
                                         isProbe: isProbe, breaker: &breaker, backoff: &backoff, now: now, random: Double.random(in: 0..<1))
        switch verdict {
        case .failedStart:
            perform(runState.startFailed(now: now), reason: .startFailed(id.name))
            return
        case .finished:
            event("\(id.name) finished; the rest keep running")
            // Nothing left to supervise (only finished one-shot tasks): end the run.
            let left = current.values.contains { !members[$0].state.isFinished || members[$0].state.intent == .hold }
            if !left && pendingRestarts.isEmpty && waitingTypes.isEmpty && breakers.values.allSatisfy({ $0.state == .closed }) {
                perform(runState.everythingFinished(now: now), reason: .allFinished)
            }
            return
        case .endsTheRun:
            perform(runState.instanceExited(status, now: now), reason: .exited(id.name, status))
            return
        case .breakerOpened, .heldByBreaker, .restart:
            break
        }
        breakers[id.type] = breaker
        backoffs[id.name] = backoff
        if isProbe { probes[id.type] = nil }
        switch verdict {
        case .breakerOpened(let probe):
            if case .open(let until) = breaker.state { timers.schedule(.breaker(id.type), at: until) }
            for (name, pending) in pendingRestarts where pending.type == id.type { pendingRestarts[name] = nil }
            let why = probe
                ? "the probe \(id.name) \(failedStart ? "failed its checks" : "exited") before it proved stable and ready"
                : "\(settings.breakerFailures) exits within \(Self.seconds(settings.minimumUptime)) of starting, in \(Self.seconds(settings.breakerWindow))"
            event("\(id.type) crashed: circuit breaker open (\(why)); no restarts for \(Self.seconds(breaker.currentCooldown)), or `paas restart \(id.type)` now")
            let active = plan.app.formation.types.filter { (desired[$0.name] ?? 0) > 0 }
            if !active.isEmpty && active.allSatisfy({ if case .open = breakers[$0.name]?.state { true } else { false } }) {
                perform(runState.allBreakersOpen(now: now), reason: .crashLoop)
            }
        case .restart(let delay):
            guard let number = id.number else { return }
            pendingRestarts[id.name] = PendingRestart(at: now + delay, type: id.type, number: number, restarts: members[index].restarts + 1)
            timers.schedule(.restart(id.name), at: now + delay)
            event("\(id.name) restarting in \(Self.seconds(delay))")
        default:
            break
        }
    }

    /// Fires what is due, from the one timer queue: group kills at any time; restarts after
    /// their delay, half-open probes after a cool-down, the proof of a probe, health checks
    /// and their deadlines while the formation runs.
    func fireTimers(now: UInt64) {
        for timer in timers.popDue(now: now) {
            if case .groupKill = timer { killOverdueGroups(now: now); continue }
            if case .drain = timer { checkDrains(now: now); continue }
            guard runState.phase == .running else { continue }
            switch timer {
            case .groupKill: break
            case .health(let index): healthDue(index, now: now)
            case .checkRun(let token): checkRunDue(token, now: now)
            case .restart(let name): restartDue(name, now: now)
            case .breaker(let typeName): breakerDue(typeName, now: now)
            case .probe(let typeName): probeDue(typeName, now: now)
            case .drain: checkDrains(now: now)
            case .rollout(let typeName): rolloutDue(typeName, now: now)
            }
        }
    }

    private func restartDue(_ name: String, now: UInt64) {
        guard let pending = pendingRestarts[name], pending.at <= now else { return }
        pendingRestarts[name] = nil
        guard pending.number <= (desired[pending.type] ?? 0), let type = plan.app.formation.types.first(where: { $0.name == pending.type }) else { return }
        if let index = current[name], !members[index].state.isFinished { return }
        startInstance(type, pending.number, restarts: pending.restarts)
    }

    /// A breaker's cool-down is over: half-open, with one probe.
    private func breakerDue(_ typeName: String, now: UInt64) {
        guard var breaker = breakers[typeName], let type = plan.app.formation.types.first(where: { $0.name == typeName }), breaker.tick(now: now) else { return }
        // One probe: the lowest-numbered instance that is down and not held down by
        // `paas stop`. None (scaled to 0, or every instance stopped by hand): nothing
        // is crash-looping any more, so the breaker resets.
        let wanted = desired[typeName] ?? 0
        guard wanted > 0, let n = (1...wanted).first(where: { n in
            current["\(typeName).\(n)"].map { members[$0].state.isFinished && members[$0].state.intent != .hold } ?? true
        }) else {
            breaker.close()
            breakers[typeName] = breaker
            event("\(typeName) circuit breaker reset: no instance of it is wanted (scaled to 0 or stopped by hand)")
            return
        }
        breakers[typeName] = breaker
        event("\(typeName) circuit breaker half-open: starting \(typeName).\(n) as a probe")
        let restarts = current["\(typeName).\(n)"].map { members[$0].restarts + 1 } ?? 0
        startInstance(type, n, restarts: restarts)
        if let index = current["\(typeName).\(n)"] {
            probes[typeName] = (index, now + breaker.settings.minimumUptime)
            timers.schedule(.probe(typeName), at: now + breaker.settings.minimumUptime)
        }
    }

    /// The probe has been up for min_uptime; it must also be ready (readiness decides, and
    /// calls ``probeProved(_:)`` when it comes later).
    private func probeDue(_ typeName: String, now: UInt64) {
        guard let probe = probes[typeName], probe.stableAt <= now else { return }
        guard members.member(probe.member).map({ !$0.state.isFinished }) == true else { probes[typeName] = nil; return }
        probes[typeName] = (probe.member, UInt64.max)
        probeProved(typeName)
    }

    /// Closes a half-open breaker once its probe has stayed up past min_uptime and is ready.
    func probeProved(_ typeName: String) {
        guard let probe = probes[typeName], probe.stableAt == UInt64.max, health[probe.member]?.ready == true,
              var breaker = breakers[typeName], breaker.state == .halfOpen,
              let type = plan.app.formation.types.first(where: { $0.name == typeName }) else { return }
        probes[typeName] = nil
        breaker.probeSucceeded()
        breakers[typeName] = breaker
        event("\(typeName) circuit breaker closed: \(members[probe.member].identity.name) stayed up and is ready")
        startMissing(type)
    }

    /// Starts every instance of `type` up to its desired count that is down.
    func startMissing(_ type: ProcessType) {
        let count = desired[type.name] ?? 0
        guard count > 0 else { return }
        for n in 1...count {
            let name = "\(type.name).\(n)"
            if let index = current[name], !members[index].state.isFinished || members[index].state.intent == .hold { continue }
            pendingRestarts[name] = nil
            startInstance(type, n, restarts: current[name].map { members[$0].restarts + 1 } ?? 0)
        }
    }

    /// `paas restart TYPE` closes that type's breaker by hand.
    /// Returns the types whose breaker it closed: their other instances are down and must
    /// start again too (``startMissing(_:)``), not only the one named.
    @discardableResult
    func closeBreakers(for indices: [Int]) -> [String] {
        var closed: [String] = []
        for type in Set(indices.map { members[$0].identity.type }).sorted() {
            guard var b = breakers[type], b.state != .closed else { continue }
            b.close()
            breakers[type] = b
            probes[type] = nil
            closed.append(type)
            event("\(type) circuit breaker closed by paas restart")
        }
        for index in indices { pendingRestarts[members[index].identity.name] = nil }
        return closed
    }

    /// `scale TYPE=N` (up) or `stop` of a half-open breaker's probe: a hand on the type,
    /// which closes its breaker as `paas restart` does.
    func closeBreaker(of type: String, by action: String) {
        guard var b = breakers[type], b.state != .closed else { return }
        b.close()
        breakers[type] = b
        probes[type] = nil
        event("\(type) circuit breaker closed by \(action)")
    }

    /// `0.5s`, `8s`, `45s`, `5m`.
    static func seconds(_ nanos: UInt64) -> String {
        let s = Double(nanos) / 1e9
        if s >= 120 { return "\(Int(s / 60))m" }
        if s >= 10 || s == s.rounded() { return "\(Int(s.rounded()))s" }
        return "\((s * 10).rounded() / 10)s"
    }
}
