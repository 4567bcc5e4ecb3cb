import PaasConfig

/// Requests from the control socket, carried out by the owner loop like any other event.
extension Supervisor {
    func handleControl(_ event: PollEvent) {
        guard let control, control.owns(event.token) else { return }
        if event.writable { control.flush(event.token) }
        // One request per connection: the server reads the first line only.
        if event.readable || event.hangup, let line = control.readRequest(event.token) {
            switch ControlRequest.decode(line) {
            case .failure(let error):
                control.send(event.token, Array(ControlServer.errorLine(error.message).utf8), thenClose: true)
            case .success(let request):
                answer(request, token: event.token, control: control)
            }
        }
        refillHistories(control)
    }

    private func answer(_ request: ControlRequest, token: UInt64, control: ControlServer) {
        func reply(_ result: Result<[(String, JSON)], ControlError>) {
            switch result {
            case .success(let fields): control.send(token, Array(ControlServer.okLine(fields).utf8), thenClose: true)
            case .failure(let error): control.send(token, Array(ControlServer.errorLine(error.message, exitStatus: error.exitStatus).utf8), thenClose: true)
            }
        }
        switch request {
        case .hello:
            reply(.success([("pid", .int(Int(Processes.currentPID))), ("root", .string(plan.app.paths.root))]))
        case .ps:
            // `known`: how many processes paas remembers (it forgets reaped ones), for tests and curious users.
            reply(.success([("pid", .int(Int(Processes.currentPID))), ("status", .string(statusLine())), ("processes", .array(processTable())), ("known", .int(members.count))]))
        case .scale(let spec):
            reply(scale(spec))
        case .restart(let targets):
            reply(resolve(targets).map { restart($0) })
        case .stop(let targets):
            if targets.isEmpty {
                reply(.success([("stopping", .string("all"))]))
                perform(runState.received(signal: Signal.terminate, now: Clock.monotonicNanos()), reason: .stopRequested)
            } else {
                reply(resolve(targets).map { stop($0) })
            }
        case .reload:
            reply(reload(by: "paas reload"))
        case .rollout(let types, let overrides):
            // The reply comes at once; `paas rollout` follows with rollout-status.
            let start = rolloutLog.lines(since: Int.max).next
            reply(reload(by: "paas rollout \(types.joined(separator: " "))", force: types, overrides: overrides).map { $0 + [("log_from", .int(start))] })
        case .rolloutStatus(let since):
            reply(.success(rolloutStatus(since: since)))
        case .rolloutPromote:
            reply(steerRollouts(promote: true))
        case .rolloutAbort:
            reply(steerRollouts(promote: false))
        case .logs(let lines, let follow, let targets):
            logs(lines: lines, follow: follow, targets: targets, token: token, control: control)
        }
    }

    // MARK: ps

    /// One object per instance of the formation, in Procfile order then by number.
    func processTable() -> [JSON] {
        let usage = Processes.groupUsage()
        let now = Clock.monotonicNanos()
        let typeOrder = Dictionary(uniqueKeysWithValues: plan.app.formation.types.map { ($0.name, $0.index) })
        // The instances, and the new generation of a reload beside the one it replaces.
        let newSets = rollouts.values.flatMap { $0.newSet.keys }.filter { s in !current.values.contains(s) }
        let rows = (Array(current.values) + Array(candidates.keys) + newSets).sorted {
            let a = members[$0].identity, b = members[$1].identity
            return (typeOrder[a.type] ?? 0, a.number ?? 0, a.generation) < (typeOrder[b.type] ?? 0, b.number ?? 0, b.generation)
        }
        return rows.map { index in
            let m = members[index]
            let pid = m.state.pid
            let groupUsage = pid.flatMap { usage[$0] }
            var lastExit: JSON = .null
            var state: String
            switch m.state.phase {
            case .pending: state = "starting"
            case .running:
                state = m.replacing ? "starting (generation \(m.identity.generation))" : "running"
                if let r = rolloutMember(index).flatMap({ rollouts[$0.type] }) {
                    state = "\(r.controller.strategyName) new set (generation \(m.identity.generation))"
                } else if drains[index] != nil {
                    state = "draining"
                }
            case .stopping: state = m.state.intent == .restart ? "restarting" : "stopping"
            case .exited(let t):
                state = m.state.intent == .hold ? "stopped" : "exited"
                if let pending = pendingRestarts[m.identity.name] {
                    state = "backoff (restart in \(Self.seconds(pending.at > now ? pending.at - now : 0)))"
                } else if case .open(let until)? = breakers[m.identity.type]?.state {
                    state = "crashed (breaker open, retry in \(Self.seconds(until > now ? until - now : 0)))"
                }
                lastExit = .string(t.description)
            case .failedToStart(let why):
                state = "failed"
                lastExit = .string(why)
            }
            if lastExit == .null, let t = m.previousExit {
                lastExit = .string(t.description)
            }
            let uptime = pid != nil && m.startedAt > 0 ? Double(now - m.startedAt) / 1e9 : 0
            let pidValue: JSON = pid.map { JSON.int(Int($0)) } ?? .null
            let portValue: JSON = m.identity.port.map { JSON.int($0) } ?? .null
            let cpu: JSON = groupUsage.map { JSON.number(($0.cpuSeconds * 100).rounded() / 100) } ?? .null
            let rss: JSON = groupUsage.map { JSON.int($0.rssBytes / 1024) } ?? .null
            let fields: [(String, JSON)] = [
                ("name", .string(m.identity.name)), ("type", .string(m.identity.type)), ("generation", .int(m.identity.generation)),
                ("pid", pidValue), ("port", portValue), ("public_port", publicPort(of: m.identity.type).map { JSON.int($0) } ?? .null),
                ("state", .string(state)), ("uptime_s", .number((uptime * 10).rounded() / 10)),
                ("restarts", .int(m.restarts)), ("last_exit", lastExit),
                ("cpu_s", cpu), ("rss_kb", rss),
                ("ready", health[index].map { .bool($0.ready) } ?? .bool(false)),
                ("check", .string(health[index]?.last ?? "-")),
            ]
            return JSON.object(fields)
        }
    }

    // MARK: scale

    /// Scales types to new counts: new instances take the next names and ports, the highest
    /// numbers stop first, everything else is untouched. All or nothing.
    func scale(_ spec: FormationSpec) -> Result<[(String, JSON)], ControlError> {
        guard runState.phase == .running else { return .failure(ControlError("the formation is \(runState.isStopping ? "stopping" : "in its release phase"); try again when it runs")) }
        var next = desired
        if let all = spec.all { for k in next.keys { next[k] = all } }
        for (name, count) in spec.counts {
            guard next[name] != nil else {
                let known = plan.app.formation.types.map(\.name).joined(separator: ", ")
                return .failure(ControlError(name == Formation.releaseName ? "\"release\" runs once before the formation and cannot be scaled" : "unknown process type \"\(name)\"; expected one of: \(known)"))
            }
            next[name] = count
        }
        var check = plan.app.formation
        for i in check.types.indices { check.types[i].quantity = next[check.types[i].name] ?? 0 }
        do {
            try check.validatePorts(source: "scale")
        } catch {
            return .failure(ControlError(error.message))
        }
        var changes: [(String, JSON)] = []
        for type in plan.app.formation.types {
            let old = desired[type.name] ?? 0, new = next[type.name] ?? 0
            guard old != new else { continue }
            event("scaling \(type.name) from \(old) to \(new)")
            abandonReplacement(of: type.name, by: "paas scale")
            changes.append((type.name, .int(new)))
            if new > old && !waitingTypes.contains(where: { $0.name == type.name }) { closeBreaker(of: type.name, by: "paas scale") }
            applyCount(type, to: new)
        }
        return .success([("formation", .object(plan.app.formation.types.map { ($0.name, .int(desired[$0.name] ?? 0)) })), ("changed", .object(changes))])
    }

    /// Moves `type` to `new` instances, for `scale` and for a reload: new ones take the next
    /// names and ports (one still stopping from an earlier scale-down is kept instead), the
    /// highest numbers stop first, everything else is untouched. A type held back by `after`
    /// only records the count: it starts with it once what it waits for is ready.
    func applyCount(_ type: ProcessType, to new: Int) {
        let old = desired[type.name] ?? 0
        desired[type.name] = new
        guard old != new, !waitingTypes.contains(where: { $0.name == type.name }) else { return }
        if new > old {
            for n in (old + 1)...new {
                if let index = current["\(type.name).\(n)"], !members[index].state.isFinished {
                    members[index].state.intent = .restart
                    continue
                }
                startInstance(type, n)
            }
        } else {
            for n in ((new + 1)...old).reversed() {
                let name = "\(type.name).\(n)"
                pendingRestarts[name] = nil
                guard let index = current[name] else { continue }
                if probes[type.name]?.member == index { closeBreaker(of: type.name, by: "paas scale (its probe was removed)") }
                members[index].state.intent = .remove
                if members[index].state.isFinished {
                    current[name] = nil
                    forgetIfDone(index)
                } else if drains[index] == nil {
                    // A routed instance leaves rotation and drains first.
                    retire(index)
                }
            }
        }
    }

    // MARK: restart and stop

    /// The current instances that `targets` name (a type or one instance); empty means all.
    func resolve(_ targets: [String]) -> Result<[Int], ControlError> {
        let all = current.values.sorted()
        if targets.isEmpty { return .success(all) }
        var result: [Int] = []
        for target in targets {
            if let index = current[target] {
                result.append(index)
            } else if plan.app.formation.types.contains(where: { $0.name == target }) {
                result += all.filter { members[$0].identity.type == target }
            } else {
                return .failure(ControlError("no process or type \"\(target)\"; expected a type (web) or a process (web.2) of the formation"))
            }
        }
        return .success(Array(Set(result)).sorted())
    }

    /// Graceful restart: SIGTERM (SIGKILL after the timeout), then the same name and port again.
    func restart(_ indices: [Int]) -> [(String, JSON)] {
        guard runState.phase == .running else { return [("restarted", .array([]))] }
        // Instances above the wanted count are on their way out (a scale-down): a restart
        // does not bring them back.
        let indices = indices.filter { (members[$0].identity.number ?? 0) <= desired[members[$0].identity.type] ?? 0 }
        let reopened = closeBreakers(for: indices)
        abandonReplacements(of: indices, by: "paas restart")
        var names: [JSON] = []
        for index in indices {
            let name = members[index].identity.name
            names.append(.string(name))
            event("restarting \(name)")
            if members[index].state.isFinished {
                if let type = plan.app.formation.types.first(where: { $0.name == members[index].identity.type }), let n = members[index].identity.number {
                    startInstance(type, n, restarts: members[index].restarts + 1)
                }
            } else {
                members[index].state.intent = .restart
                stopInstance(index)
            }
        }
        // A type whose breaker was open had every instance down: they all resume.
        for typeName in reopened { if let type = plan.app.formation.types.first(where: { $0.name == typeName }) { startMissing(type) } }
        return [("restarted", .array(names))]
    }

    /// Stops instances and keeps them down until restarted; the rest keep running.
    func stop(_ indices: [Int]) -> [(String, JSON)] {
        abandonReplacements(of: indices, by: "paas stop")
        var names: [JSON] = []
        for index in indices {
            let name = members[index].identity.name
            if members[index].state.isFinished {
                // Down already, but maybe waiting to restart or for its breaker's probe: it
                // stays down now.
                let held = members[index].state.intent == .hold
                members[index].state.intent = .hold
                let breakerOpen = breakers[members[index].identity.type].map { $0.state != .closed } ?? false
                guard pendingRestarts.removeValue(forKey: name) != nil || (breakerOpen && !held) else { continue }
                names.append(.string(name))
                event("\(name) stays down (paas stop); its restart is cancelled")
                continue
            }
            names.append(.string(name))
            event("stopping \(name) (paas stop)")
            if probes[members[index].identity.type]?.member == index { closeBreaker(of: members[index].identity.type, by: "paas stop (its probe was stopped)") }
            members[index].state.intent = .hold
            stopInstance(index)
        }
        return [("stopped", .array(names))]
    }

    // MARK: logs

    func logs(lines: Int, follow: Bool, targets: [String], token: UInt64, control: ControlServer) {
        let known = Set(plan.app.formation.types.map(\.name) + current.keys + ["system", Formation.releaseName])
        if let unknown = targets.first(where: { !known.contains($0) && !logSources.contains(name: $0) }) {
            control.send(token, Array(ControlServer.errorLine("no process or type \"\(unknown)\"; expected a type, a process or system").utf8), thenClose: true)
            return
        }
        let filter = LogFilter(targets: Set(targets))
        let start = sinks.ring.start(last: lines, where: includes(filter))
        // The history is streamed from the ring as the socket drains (refillHistories), so a
        // client that does not read holds one chunk, not a copy of the ring.
        let first = Array(ControlServer.okLine([("lines", .int(start.lines)), ("follow", .bool(follow))]).utf8)
        control.beginHistory(token, HistoryStream(cursor: start.cursor, end: follow ? nil : sinks.ring.end, filter: filter), follow: follow, first: first)
    }

    /// Whether a ring record's source (a member index, or -1 for paas's own events) passes `filter`.
    private func includes(_ filter: LogFilter) -> (Int32) -> Bool {
        { [logSources] source in
            let s = logSources[source]
            return filter.matches(name: s.name, type: s.type)
        }
    }

    /// Formats the next chunk of every `logs` reply whose socket has drained.
    func refillHistories(_ control: ControlServer) {
        for (token, stream) in control.historiesWanted() {
            var stream = stream
            var chunk: [UInt8] = []
            var formatter = sinks.jsonFormatter
            let include = includes(stream.filter)
            let result = sinks.ring.read(from: &stream.cursor, to: stream.end, where: include, budget: ControlServer.historyChunk) { source, kind, continuation, time, text in
                let from = logSources[source]
                formatter.append(text, source: from, stream: kind, continuation: continuation, at: time, epoch: true, to: &chunk)
            }
            sinks.jsonFormatter = formatter
            switch result {
            case .more: control.continueHistory(token, chunk, .more(stream))
            case .reachedEnd: control.continueHistory(token, chunk, .done)
            case .lost: control.continueHistory(token, chunk, .lost)
            }
        }
    }
}
