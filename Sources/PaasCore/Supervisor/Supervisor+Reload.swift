import PaasConfig

/// `paas reload` and SIGHUP: read the configuration again and apply the difference, type by
/// type, leaving everything that did not change alone (same pids, ports, restart counts and
/// backoffs). A bad configuration changes nothing.
extension Supervisor {
    /// Exit status of `paas reload` for a configuration error (EX_CONFIG), and when a reload
    /// cannot be taken now (EX_TEMPFAIL).
    static let reloadRefused: Int32 = 78
    static let reloadBusy: Int32 = 75

    /// Reads the configuration and applies it; the reply for `paas reload`.
    /// `force`: types replaced even when their configuration did not change (`paas rollout`),
    /// with `overrides` of their rollout settings.
    func reload(by trigger: String, force: [String] = [], overrides: RolloutOverrides = RolloutOverrides()) -> Result<[(String, JSON)], ControlError> {
        func refuse(_ message: String, _ status: Int32) -> Result<[(String, JSON)], ControlError> {
            event("reload refused: \(message)")
            return .failure(ControlError(message, exitStatus: status))
        }
        guard runState.phase == .running else {
            return refuse(runState.isStopping ? "paas up is stopping" : "the formation is in its release phase; try again when it runs", Self.reloadBusy)
        }
        guard let reloader else { return refuse("this paas up cannot reload", Self.reloadBusy) }
        if pendingReload != nil { return refuse("a reload is waiting for its release phase; try again when it has finished", Self.reloadBusy) }
        if let busy = replacements.values.first {
            return refuse("\(busy.type) is still being replaced (\(busy.remaining) left); try again when it has finished", Self.reloadBusy)
        }
        if let busy = rollouts.keys.sorted().first {
            return refuse("\(busy) is being rolled out; try again when it has finished (or paas rollout promote|abort)", Self.reloadBusy)
        }
        event("reloading (\(trigger))")
        let app: AppConfig
        do {
            app = try reloader()
        } catch {
            return refuse(error.description, Self.reloadRefused)
        }
        let diff = ConfigDiff.between(plan.app, app)
        var newApp = app
        newApp.formation = diff.formation
        let newPlan: RunPlan
        do {
            newPlan = try RunPlan.make(app: newApp, only: plan.only, style: plan.style)
            // The counts that will run: a changed configured count wins, else the current one.
            var check = newApp.formation
            for i in check.types.indices { check.types[i].quantity = wanted(diff, check.types[i].name, in: newPlan) }
            try check.validatePorts(source: "reload")
        } catch {
            return refuse(error.description, Self.reloadRefused)
        }
        for name in force where !newPlan.types.contains(where: { $0.name == name }) {
            let known = newPlan.types.map(\.name).joined(separator: ", ")
            return refuse("no running process type \"\(name)\"; expected one of: \(known)", Self.reloadRefused)
        }
        if diff.isEmpty && force.isEmpty {
            event("reload: nothing changed (generation \(generation))")
            return .success([("generation", .int(generation)), ("changed", .array([]))])
        }
        forced = (force, overrides)
        if let release = diff.release {
            pendingReload = (newPlan, diff)
            event("reload: running the new release phase first: \(release)")
            var identity = InstanceIdentity(name: Formation.releaseName, type: Formation.releaseName, number: nil, port: nil, command: release, colorIndex: newPlan.app.formation.types.count)
            identity.generation = generation + 1
            startRelease(identity)
            return .success([("generation", .int(generation + 1)), ("release", .string("running")), ("changed", .array(describe(diff).map { .string($0) }))])
        }
        apply(newPlan, diff)
        return .success([("generation", .int(generation)), ("changed", .array(describe(diff).map { .string($0) }))])
    }

    /// The release process of a reload ended: apply on success, else refuse.
    func reloadReleaseExited(_ status: Termination) {
        guard let (newPlan, diff) = pendingReload else { return }
        pendingReload = nil
        guard status == .exited(0) else {
            for type in forced.types { recordOutcome(type, .rolledBack("the release phase failed (\(status))")) }
            forced = ([], RolloutOverrides())
            event("reload refused: the release phase failed (\(status)); nothing changed")
            retryQueuedReload()
            return
        }
        guard runState.phase == .running else { return }
        apply(newPlan, diff)
    }

    /// One line per type that changed: `worker: command changed`, `clock: added`.
    func describe(_ diff: ConfigDiff) -> [String] {
        diff.types.compactMap { t in
            var parts: [String] = []
            switch t.change {
            case .added: parts.append("added")
            case .removed: parts.append("removed")
            case .changed(let reasons): parts += reasons.map(\.phrase)
            case .unchanged: break
            }
            if let old = t.quantity.old, let new = t.quantity.new, old != new { parts.append("count \(old) → \(new)") }
            return parts.isEmpty ? nil : "\(t.name): \(parts.joined(separator: ", "))"
        }
    }

    /// The count of `type` after the reload: a type that runs (named, or all run) gets its
    /// new configured count when that changed or the type is new, else keeps the current one.
    private func wanted(_ diff: ConfigDiff, _ type: String, in newPlan: RunPlan) -> Int {
        guard let selected = newPlan.types.first(where: { $0.name == type }) else { return 0 }
        guard let t = diff.types.first(where: { $0.name == type }), let old = t.quantity.old, old == t.quantity.new, let current = desired[type] else {
            return selected.quantity
        }
        return current
    }

    /// Carries a reload out: the new plan takes over, removed types stop, new types start,
    /// counts change like `scale`, changed types are replaced instance by instance.
    private func apply(_ newPlan: RunPlan, _ diff: ConfigDiff) {
        let counts = Dictionary(uniqueKeysWithValues: newPlan.app.formation.types.map { ($0.name, wanted(diff, $0.name, in: newPlan)) })
        generation += 1
        plan = newPlan
        for t in diff.types {
            let running = current.keys.filter { $0.hasPrefix(t.name + ".") }.compactMap { current[$0] }.filter { members[$0].identity.type == t.name && members[$0].state.pid != nil }
            switch t.change {
            case .removed:
                event("\(t.name): removed, stopping \(plural(running.count, "instance"))")
                desired[t.name] = nil
                breakers[t.name] = nil
                probes[t.name] = nil
                waitingTypes.removeAll { $0.name == t.name }
                for (name, pending) in pendingRestarts where pending.type == t.name { pendingRestarts[name] = nil }
                for index in current.values where members[index].identity.type == t.name {
                    members[index].state.intent = .remove
                    if members[index].state.isFinished { current[members[index].identity.name] = nil; forgetIfDone(index) } else { stopInstance(index) }
                }
            case .added:
                let count = counts[t.name] ?? 0
                event("\(t.name): added\(count > 0 ? ", starting \(plural(count, "instance"))" : "")")
                desired[t.name] = 0
                setCount(t.name, to: count, isNew: true)
            case .changed(let reasons):
                setCount(t.name, to: counts[t.name] ?? 0)
                replace(t.name, why: reasons.map(\.phrase).joined(separator: ", "), running: running)
            case .unchanged:
                if let old = t.quantity.old, let new = t.quantity.new, old != new { setCount(t.name, to: counts[t.name] ?? 0) }
                if forced.types.contains(t.name) { replace(t.name, why: "rollout requested", running: running) }
            }
        }
        forced = ([], RolloutOverrides())
        closeStaleRoutes()
        if let failure = openRoutes() { event("router: \(failure)") }
        event("reloaded (generation \(generation))")
        startWaitingTypes()
    }

    /// Replaces a type's running instances by the new generation: a routed type by its rollout
    /// strategy (blue-green or canary, with the router switching), anything else one instance
    /// at a time.
    private func replace(_ typeName: String, why: String, running: [Int]) {
        breakers[typeName] = nil
        probes[typeName] = nil
        let count = desired[typeName] ?? 0
        let old = running.filter { (members[$0].identity.number ?? 0) <= count && members[$0].identity.generation < generation }
            .compactMap { members[$0].identity.number }.sorted()
        let settings = plan.app.settings(typeName)
        let strategy = forced.overrides.strategy.flatMap { forced.types.contains(typeName) ? $0 : nil } ?? settings.rollout.effectiveStrategy(routed: isRouted(typeName))
        if routes[typeName] != nil, !settings.singleton, strategy != .rolling, !old.isEmpty {
            event("\(typeName): \(why), rolling out \(plural(count, "instance")) (\(strategy.rawValue))")
            let overrides = forced.types.contains(typeName) ? forced.overrides : RolloutOverrides()
            beginRollout(typeName, strategy: strategy, overrides: overrides, now: Clock.monotonicNanos())
            return
        }
        let order: Replacement.Order = stopsFirst(typeName) ? .stopFirst : .startFirst
        event("\(typeName): \(why), replacing \(plural(old.count, "instance"))\(old.isEmpty ? "" : order == .stopFirst ? " (each stopped before its successor starts)" : " (each once its successor is ready)")")
        guard !old.isEmpty else {
            if forced.types.contains(typeName) { recordOutcome(typeName, .promoted) }
            return
        }
        var replacement = Replacement(type: typeName, order: order, numbers: old)
        let actions = replacement.begin()
        replacements[typeName] = replacement
        carryOut(actions, typeName)
    }

    /// Applies a new count like `scale`; a new type whose `after` is not ready waits for it.
    private func setCount(_ typeName: String, to count: Int, isNew: Bool = false) {
        guard let type = plan.app.formation.types.first(where: { $0.name == typeName }) else { return }
        let after = plan.app.settings(typeName).after.filter { dep in plan.types.contains { $0.name == dep } }
        if isNew && count > 0 && !after.allSatisfy(typeIsReady) {
            desired[typeName] = count
            waitingTypes.append(type)
            event("\(typeName) waits for \(after.joined(separator: ", ")) to be ready")
            return
        }
        applyCount(type, to: count)
    }

    /// Whether a type's new generation must wait until the old one is gone: a singleton
    /// (two must never run), or instances that bind `$PORT` (a `web`, or a type checked on its
    /// port), which could not bind it beside the old ones until a router stands in front.
    func stopsFirst(_ type: String) -> Bool {
        if plan.app.settings(type).singleton { return true }
        // Behind the router each instance has a private port of its own: the new one binds
        // beside the old one.
        if routes[type] != nil { return false }
        if type == "web" { return true }
        return (plan.app.manifest.healthchecks[type] ?? []).contains { check in
            switch check.probe {
            case .tcp, .http: true
            case .command: false
            }
        }
    }

    /// Does what a replacement asks.
    func carryOut(_ actions: [Replacement.Action], _ typeName: String) {
        for action in actions {
            switch action {
            case .start(let n):
                guard let type = plan.app.formation.types.first(where: { $0.name == typeName }) else { continue }
                let order = replacements[typeName]?.order ?? .startFirst
                let restarts = current["\(typeName).\(n)"].flatMap { members.member($0)?.restarts } ?? 0
                startInstance(type, n, restarts: restarts, role: order == .startFirst ? .candidate : .replacing)
            case .stopOld(let n):
                let name = "\(typeName).\(n)"
                guard let index = current[name] else { continue }
                if replacements[typeName]?.order == .stopFirst {
                    members[index].state.intent = .replaced
                    if members[index].state.isFinished { replacementOldGone(typeName, n) } else { stopInstance(index) }
                } else {
                    // Start-first: the ready successor takes the name; the old one retires.
                    members[index].state.intent = .remove
                    if !members[index].state.isFinished { stopInstance(index) }
                }
            case .finished:
                replacements[typeName] = nil
                event("\(typeName): every instance runs generation \(generation)")
                recordOutcome(typeName, .promoted)
                retryQueuedReload()
            case .abandoned(let n):
                replacements[typeName] = nil
                let stopFirst = stopsFirst(typeName)
                event("\(typeName): reload stopped: \(typeName).\(n) of generation \(generation) failed before it was ready; "
                      + (stopFirst ? "it had no old instance beside it, so its restart policy decides (as for any failed start); " : "the old \(typeName).\(n) runs on; ")
                      + "the instances not replaced keep their generation")
                recordOutcome(typeName, .rolledBack("\(typeName).\(n) of generation \(generation) failed before it was ready"))
                retryQueuedReload()
            }
        }
    }

    /// `paas stop`, `restart` or `scale` took a hand on instances a replacement covers: it is
    /// given up (the hand wins). New instances not yet ready are stopped; an old one already
    /// stopping for a stop-first replacement was given its new intent by that command.
    func abandonReplacements(of indices: [Int], by action: String) {
        for type in Set(indices.compactMap { members.member($0)?.identity.type }).sorted() { abandonReplacement(of: type, by: action) }
    }

    func abandonReplacement(of typeName: String, by action: String) {
        abandonRollout(of: typeName, by: action)
        guard let r = replacements.removeValue(forKey: typeName) else { return }
        event("\(typeName): \(action) took over; the reload stops replacing it (\(r.remaining) left at their generation)")
        recordOutcome(typeName, .aborted)
        for (serial, c) in candidates where c.type == typeName {
            candidates[serial] = nil
            members[serial].replacing = false
            members[serial].state.intent = .remove
            stopInstance(serial)
        }
        for index in current.values where members[index].identity.type == typeName && members[index].replacing {
            members[index].replacing = false
        }
        retryQueuedReload()
    }

    /// The old instance n of a stop-first replacement is gone.
    func replacementOldGone(_ typeName: String, _ n: Int) {
        guard var r = replacements[typeName] else { return }
        let actions = r.oldGone(n)
        replacements[typeName] = r
        carryOut(actions, typeName)
    }

    /// A new-generation instance became ready: a start-first candidate takes its name.
    func replacementReady(_ index: Int) {
        guard members[index].replacing, let n = members[index].identity.number else { return }
        let typeName = members[index].identity.type
        members[index].replacing = false
        if candidates.removeValue(forKey: index) != nil {
            let name = members[index].identity.name
            let old = current.updateValue(index, forKey: name)
            pendingRestarts[name] = nil
            if let old, old != index, members.member(old) != nil {
                members[old].state.intent = .remove
                if members[old].state.isFinished { forgetIfDone(old) } else { stopInstance(old) }
            }
        }
        guard var r = replacements[typeName] else { return }
        var actions = r.ready(n)
        replacements[typeName] = r
        // The start-first old instance was stopped above, with its name handed on.
        actions.removeAll { $0 == .stopOld(n) }
        carryOut(actions, typeName)
    }

    /// A new-generation instance exited or failed to start before it was ready.
    func replacementFailed(_ index: Int) {
        guard let m = members.member(index), m.replacing, let n = m.identity.number else { return }
        members[index].replacing = false
        guard var r = replacements[m.identity.type] else { return }
        let actions = r.failed(n)
        replacements[m.identity.type] = r
        carryOut(actions, m.identity.type)
    }

    private func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }

    /// A SIGHUP that came while a reload was under way runs once that reload is done (a
    /// signal cannot be told to try again, as `paas reload` is with 75).
    func retryQueuedReload() {
        guard reloadQueued, replacements.isEmpty, rollouts.isEmpty, pendingReload == nil, runState.phase == .running else { return }
        reloadQueued = false
        _ = reload(by: "SIGHUP, queued")
    }
}
