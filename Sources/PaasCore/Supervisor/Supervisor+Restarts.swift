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
        let settings = plan.app.restartSettings(id.type)
        guard runState.phase == .running else { return }
        let isProbe = probes[id.type]?.member == index
        guard settings.restarts(after: status) || (failedStart && settings.policy != .no) else {
            if failedStart {
                // Never ready (a boot timeout, a startup check): a failure whatever the
                // process's own status was, so systemd's Restart=on-failure sees one.
                perform(runState.startFailed(now: now), reason: .startFailed(id.name))
            } else if settings.exitIsAllowed(status) {
                event("\(id.name) finished; the rest keep running")
                // Nothing left to supervise (only finished one-shot tasks): end the run.
                let left = current.values.contains { !members[$0].state.isFinished || members[$0].intent == .hold }
                if !left && pendingRestarts.isEmpty && waitingTypes.isEmpty && breakers.values.allSatisfy({ $0.state == .closed }) {
                    perform(runState.everythingFinished(now: now), reason: .allFinished)
                }
            } else {
                perform(runState.instanceExited(status, now: now), reason: .exited(id.name, status))
            }
            return
        }
        // A failed start counts as unstable however long the check took to give up.
        let uptime = failedStart ? 0 : now - members[index].startedAt
        var breaker = breakers[id.type] ?? CircuitBreaker(settings: settings)
        let wasProbe = breaker.state == .halfOpen
        // A half-open breaker's probe that exits, however late, or fails its checks has
        // failed: the breaker opens again (else nothing would ever re-arm it).
        let opened = isProbe && wasProbe ? breaker.probeFailed(at: now) : breaker.recordExit(uptime: uptime, at: now)
        breakers[id.type] = breaker
        if isProbe { probes[id.type] = nil }
        if opened {
            for (name, pending) in pendingRestarts where pending.type == id.type { pendingRestarts[name] = nil }
            let why = wasProbe
                ? "the probe \(id.name) \(failedStart ? "failed its checks" : "exited") before it proved stable and ready"
                : "\(settings.breakerFailures) exits within \(Self.seconds(settings.minimumUptime)) of starting, in \(Self.seconds(settings.breakerWindow))"
            event("\(id.type) crashed: circuit breaker open (\(why)); no restarts for \(Self.seconds(breaker.currentCooldown)), or `paas restart \(id.type)` now")
            let active = plan.app.formation.types.filter { (desired[$0.name] ?? 0) > 0 }
            if !active.isEmpty && active.allSatisfy({ if case .open = breakers[$0.name]?.state { true } else { false } }) {
                perform(runState.allBreakersOpen(now: now), reason: .crashLoop)
            }
            return
        }
        if case .open = breaker.state { return }
        guard let number = id.number else { return }
        var backoff = backoffs[id.name] ?? Backoff(settings: settings)
        let delay = backoff.delay(afterUptime: uptime, random: Double.random(in: 0..<1))
        backoffs[id.name] = backoff
        pendingRestarts[id.name] = PendingRestart(at: now + delay, type: id.type, number: number, restarts: members[index].restarts + 1)
        event("\(id.name) restarting in \(Self.seconds(delay))")
    }

    /// The earliest timer: a pending restart, a breaker's cool-down, a probe's proof.
    func nextTimer() -> UInt64? {
        var times = pendingRestarts.values.map(\.at)
        for b in breakers.values { if case .open(let until) = b.state { times.append(until) } }
        times += probes.values.map(\.stableAt).filter { $0 != UInt64.max }
        if let h = nextHealthTimer() { times.append(h) }
        if let k = groupStops.nextDeadline { times.append(k) }
        return times.min()
    }

    /// Fires what is due: restarts after their delay, half-open probes after a cool-down,
    /// and the closing of a breaker whose probe stayed up.
    func fireTimers(now: UInt64) {
        killOverdueGroups(now: now)
        guard runState.phase == .running else { return }
        fireHealthTimers(now: now)
        for (name, pending) in pendingRestarts where pending.at <= now {
            pendingRestarts[name] = nil
            guard pending.number <= (desired[pending.type] ?? 0), let type = plan.app.formation.types.first(where: { $0.name == pending.type }) else { continue }
            if let index = current[name], !members[index].state.isFinished { continue }
            startInstance(type, pending.number, restarts: pending.restarts)
        }
        for (typeName, var breaker) in breakers {
            guard let type = plan.app.formation.types.first(where: { $0.name == typeName }) else { continue }
            if breaker.tick(now: now) {
                // One probe: the lowest-numbered instance that is down and not held down by
                // `paas stop`. None (scaled to 0, or every instance stopped by hand): nothing
                // is crash-looping any more, so the breaker resets.
                let wanted = desired[typeName] ?? 0
                guard wanted > 0, let n = (1...wanted).first(where: { n in
                    current["\(typeName).\(n)"].map { members[$0].state.isFinished && members[$0].intent != .hold } ?? true
                }) else {
                    breaker.close()
                    breakers[typeName] = breaker
                    event("\(typeName) circuit breaker reset: no instance of it is wanted (scaled to 0 or stopped by hand)")
                    continue
                }
                breakers[typeName] = breaker
                event("\(typeName) circuit breaker half-open: starting \(typeName).\(n) as a probe")
                let restarts = current["\(typeName).\(n)"].map { members[$0].restarts + 1 } ?? 0
                startInstance(type, n, restarts: restarts)
                if let index = current["\(typeName).\(n)"] {
                    probes[typeName] = (index, now + breaker.settings.minimumUptime)
                }
            } else if let probe = probes[typeName], probe.stableAt <= now {
                guard !members[probe.member].state.isFinished else { probes[typeName] = nil; continue }
                // Up past min_uptime; it must also pass its health check (readiness decides,
                // and `evaluateReady` calls back here when it comes later).
                probes[typeName] = (probe.member, UInt64.max)
                probeProved(typeName)
            }
        }
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
            if let index = current[name], !members[index].state.isFinished || members[index].intent == .hold { continue }
            pendingRestarts[name] = nil
            startInstance(type, n, restarts: current[name].map { members[$0].restarts + 1 } ?? 0)
        }
    }

    /// `paas restart TYPE` closes that type's breaker by hand.
    func closeBreakers(for indices: [Int]) {
        for type in Set(indices.map { members[$0].identity.type }) {
            guard var b = breakers[type], b.state != .closed else { continue }
            b.close()
            breakers[type] = b
            probes[type] = nil
            event("\(type) circuit breaker closed by paas restart")
        }
        for index in indices { pendingRestarts[members[index].identity.name] = nil }
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
