import PaasConfig

/// One health check under way: a TCP/HTTP connection or a command.
struct CheckRun {
    var member: Int
    /// Index into the instance's checks.
    var check: Int
    var fd: Int32 = -1
    var pid: Int32 = 0
    var deadline: UInt64
    var sent = false
    var response: [UInt8] = []
}

/// Health checks, readiness and start order, run by the owner loop: connections are
/// non-blocking descriptors in its epoll set, commands are children reaped by its reaper,
/// and every schedule is a timer of its poll timeout. Nothing blocks, nothing polls.
extension Supervisor {
    static let checkTokenBase: UInt64 = 1 << 48
    /// The implicit startup check of a `web` type without one: its port accepts, tried every 250 ms.
    static let bootInterval: UInt64 = 250_000_000

    /// The checks of an instance of `type`: the configured ones, plus, without a startup
    /// check, a TCP check of `$PORT` within the boot timeout for `web`.
    func checks(for type: String) -> [HealthCheck] {
        var list = plan.app.manifest.healthchecks[type] ?? []
        if (type == "web" || routes[type] != nil) && !list.contains(where: { $0.kind == .startup }) {
            var boot = HealthCheck(kind: .startup, probe: .tcp, name: "port accepts within the boot timeout")
            let settings = plan.app.settings(type)
            boot.wait = Self.bootInterval
            boot.timeout = min(Self.bootInterval * 4, settings.bootTimeout)
            boot.attempts = Int(settings.bootTimeout / Self.bootInterval) + 1 // tries at 0, 250 ms, ... up to the timeout
            list.insert(boot, at: 0)
        }
        return list
    }

    /// A new instance starts its checks.
    func beginHealth(_ index: Int, now: UInt64) {
        let type = members[index].identity.type
        // With configured startup checks, readiness is theirs alone; otherwise uptime counts too,
        // except behind the router: there the port that accepts is what traffic needs, and a
        // new instance gets its share as soon as it accepts.
        let configuredStartup = plan.app.manifest.healthchecks[type]?.contains { $0.kind == .startup } == true
        let uptimeRule = !configuredStartup && routes[type] == nil
        health[index] = InstanceHealth(checks: checks(for: type), now: now, minimumUptime: plan.app.settings(type).minimumUptime, uptimeRule: uptimeRule)
        scheduleHealth(index)
    }

    /// Reminds the loop of the instance's next health deadline.
    func scheduleHealth(_ index: Int) {
        if let at = health[index]?.nextDeadline { timers.schedule(.health(index), at: at) }
    }

    /// The instance is gone: its checks stop.
    func endHealth(_ index: Int) {
        health[index] = nil
        for (token, run) in checkRuns where run.member == index { finishRun(token) }
    }

    /// The instance's health deadline came: the uptime rule, and the checks that are due.
    func healthDue(_ index: Int, now: UInt64) {
        guard var h = health[index], members[index].state.pid != nil, let at = h.nextDeadline, at <= now else { return }
        let actions = h.due(now: now)
        health[index] = h
        carryOut(actions, index, now: now)
        scheduleHealth(index)
    }

    /// A check run's deadline came: a timeout is a failure.
    func checkRunDue(_ token: UInt64, now: UInt64) {
        guard let run = checkRuns[token], run.deadline <= now else { return }
        let timeout = health[run.member].map { Self.seconds($0.checks[run.check].timeout) } ?? "its timeout"
        finishRun(token)
        result(run.member, run.check, ok: false, detail: "timed out after \(timeout)", now: now)
    }

    private func startRun(_ index: Int, _ i: Int, now: UInt64) {
        guard let h = health[index] else { return }
        let check = h.checks[i]
        let token = nextCheckToken
        nextCheckToken += 1
        var run = CheckRun(member: index, check: i, deadline: now + check.timeout)
        timers.schedule(.checkRun(token), at: run.deadline)
        switch check.probe {
        case .tcp, .http:
            guard let port = check.port ?? members[index].identity.port, let fd = LocalTCP.connect(port: port) else {
                result(index, i, ok: false, detail: "no port to check", now: now)
                return
            }
            run.fd = fd
            outer.add(fd, token: token)
            outer.modify(fd, token: token, readable: false, writable: true)
        case .command(let argv):
            let id = members[index].identity
            var extra: [(String, String)] = []
            if let port = id.port { extra.append(("PORT", String(port))) }
            extra += [("PS", id.name), ("DYNO", id.name)]
            let env = plan.app.childEnvironment(inherited: baseEnvironment, extra: extra)
            let command = argv.count == 1 ? argv[0] : argv.map(OneOff.shellQuote).joined(separator: " ")
            do {
                run.pid = try Spawner.spawnQuiet(SpawnRequest.shell(command, environment: env, directory: plan.app.paths.root))
                checkByPID[run.pid] = token
                guardian?.watch(run.pid)
            } catch {
                result(index, i, ok: false, detail: error.description, now: now)
                return
            }
        }
        checkRuns[token] = run
    }

    /// Readiness of a check connection.
    func handleCheckEvent(_ event: PollEvent) {
        guard var run = checkRuns[event.token], let h = health[run.member] else { return }
        let now = Clock.monotonicNanos()
        let check = h.checks[run.check]
        if !run.sent {
            if let error = LocalTCP.connectionError(run.fd) {
                finishRun(event.token)
                result(run.member, run.check, ok: false, detail: "connect: \(error)", now: now)
                return
            }
            guard case .http(let path, _) = check.probe else {
                finishRun(event.token)
                result(run.member, run.check, ok: true, detail: "port accepts", now: now)
                return
            }
            let request = "GET \(path) HTTP/1.0\r\nHost: localhost\r\nUser-Agent: paas-healthcheck\r\nConnection: close\r\n\r\n"
            _ = UnixSocket.writeSome(run.fd, Array(request.utf8)[...])
            run.sent = true
            checkRuns[event.token] = run
            outer.modify(run.fd, token: event.token, readable: true, writable: false)
            return
        }
        guard let bytes = UnixSocket.readAvailable(run.fd) else {
            finishRun(event.token)
            let verdict = Self.judge(run.response, check)
            result(run.member, run.check, ok: verdict.ok, detail: verdict.detail, now: now)
            return
        }
        run.response += bytes
        checkRuns[event.token] = run
        if run.response.count > 1 << 16 {
            finishRun(event.token)
            let verdict = Self.judge(run.response, check)
            result(run.member, run.check, ok: verdict.ok, detail: verdict.detail, now: now)
        }
    }

    /// An HTTP response passes with a 2xx or 3xx status and, when asked, the content in its body.
    static func judge(_ response: [UInt8], _ check: HealthCheck) -> (ok: Bool, detail: String) {
        let text = String(decoding: response, as: UTF8.self)
        let statusLine = text.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let code = Int(parts[1]) else { return (false, "no HTTP response") }
        guard (200..<400).contains(code) else { return (false, "HTTP \(code)") }
        if case .http(_, let content?) = check.probe {
            let body = text.firstRange(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
            if !body.contains(content) { return (false, "HTTP \(code) without \"\(content)\"") }
        }
        return (true, "HTTP \(code)")
    }

    /// A check command exited.
    func checkCommandExited(_ token: UInt64, _ status: Termination) {
        guard let run = checkRuns.removeValue(forKey: token) else { return }
        result(run.member, run.check, ok: status == .exited(0), detail: status == .exited(0) ? "exit 0" : "\(status)", now: Clock.monotonicNanos())
    }

    private func finishRun(_ token: UInt64) {
        guard let run = checkRuns.removeValue(forKey: token) else { return }
        if run.fd >= 0 {
            outer.remove(run.fd)
            FileDescriptorIO.close(run.fd)
        }
        if run.pid > 0 {
            checkByPID[run.pid] = nil
            Signal.sendToGroup(Signal.kill, run.pid)
        }
    }

    /// A check's verdict: readiness, restarts and failed starts follow from it.
    private func result(_ index: Int, _ i: Int, ok: Bool, detail: String, now: UInt64) {
        guard var h = health[index], members[index].state.pid != nil, case .running = members[index].state.phase else { return }
        let actions = h.record(i, ok: ok, detail: detail, now: now)
        health[index] = h
        carryOut(actions, index, now: now)
        scheduleHealth(index)
    }

    /// Does what an instance's health asks.
    private func carryOut(_ actions: [InstanceHealth.Action], _ index: Int, now: UInt64) {
        for action in actions {
            guard let h = health[index] else { return }
            let name = members[index].identity.name
            switch action {
            case .run(let i):
                startRun(index, i, now: now)
            case .failedStart(let i, let count, let detail):
                event("\(name) failed to start: \(h.checks[i].name) failed \(count) times (\(detail))")
                if rolloutMember(index) != nil {
                    // A rollout's new instance: the rollout rolls back (its exit is the rollout's).
                    stopInstance(index)
                    rolloutExited(index, "failed to start (\(h.checks[i].name) failed \(count) times)", now: now)
                    continue
                }
                // A start-first candidate keeps its role: its exit stops the replacement and the
                // old instance runs on. Anything else failed to start.
                if candidates[index] == nil { members[index].state.intent = .failed }
                stopInstance(index)
            case .restart(_, let count, let detail):
                event("\(name) failed its liveness check \(count) times (\(detail)); restarting it")
                if rolloutMember(index) != nil {
                    rolloutCheckFailed(index, now: now)
                    continue
                }
                if candidates[index] == nil { members[index].state.intent = .restart }
                stopInstance(index)
            case .unready(let i, let detail):
                event("\(name) unready: \(h.checks[i].name) failed (\(detail))")
                routerDirty = true
                rolloutCheckFailed(index, now: now)
            case .ready:
                event("\(name) is ready\(reloaded ? " (generation \(members[index].identity.generation))" : "")")
                routerDirty = true
                if members[index].replacing { replacementReady(index) }
                rolloutReady(index, now: now)
                probeProved(members[index].identity.type)
                startWaitingTypes()
            }
        }
    }

    /// Whether every wanted instance of `type` is ready.
    func typeIsReady(_ type: String) -> Bool {
        let count = desired[type] ?? 0
        guard count > 0 else { return true }
        return (1...count).allSatisfy { n in current["\(type).\(n)"].flatMap { health[$0]?.ready } ?? false }
    }

    /// Starts the types held back by `after` whose dependencies are all ready.
    func startWaitingTypes() {
        guard runState.phase == .running else { return }
        for type in waitingTypes where plan.app.settings(type.name).after.allSatisfy(typeIsReady) {
            waitingTypes.removeAll { $0.name == type.name }
            event("\(type.name) starts: \(plan.app.settings(type.name).after.joined(separator: ", ")) ready")
            // The count wanted now: `scale` may have changed it while the type waited.
            let count = desired[type.name] ?? 0
            if count > 0 { for n in 1...count { startInstance(type, n) } }
        }
    }
}

extension Supervisor {
    /// One line for humans and for systemd's STATUS=: `web 3/3 ready, worker 2/2 ready,
    /// clock breaker open (retry in 4m)`.
    func statusLine(now: UInt64 = Clock.monotonicNanos()) -> String {
        var parts: [String] = []
        for type in plan.app.formation.types {
            let count = desired[type.name] ?? 0
            if waitingTypes.contains(where: { $0.name == type.name }) {
                parts.append("\(type.name) waiting for \(plan.app.settings(type.name).after.joined(separator: ", "))")
                continue
            }
            switch breakers[type.name]?.state {
            case .open(let until)?:
                parts.append("\(type.name) breaker open (retry in \(Self.seconds(until > now ? until - now : 0)))")
                continue
            case .halfOpen?:
                parts.append("\(type.name) breaker half-open (probe running)")
                continue
            default:
                break
            }
            guard count > 0 else { continue }
            let ready = (1...count).filter { n in current["\(type.name).\(n)"].flatMap { health[$0]?.ready } ?? false }.count
            parts.append("\(type.name) \(ready)/\(count) ready")
        }
        return parts.isEmpty ? "nothing running" : parts.joined(separator: ", ")
    }
}
