package import PaasConfig
import PaasRouter

/// What `paas up` runs, decided from the configuration before anything starts.
package struct RunPlan: Sendable {
    package var app: AppConfig
    /// Whether routed types get the router (`paas up --no-router`: foreman's direct ports).
    package var routerEnabled = true
    /// The types to run (all of the formation, or those named on the command line).
    package var types: [ProcessType]
    package var runRelease: Bool
    package var style: LogStyle
    /// The types named on the command line (`paas up web`); empty: all. A reload keeps it.
    package var only: [String] = []

    /// Chooses the types: every type of the formation, or those named in `only`
    /// (`paas up web`). Naming `release` runs it first; naming nothing runs it if it exists.
    package static func make(app: AppConfig, only: [String], style: LogStyle) throws(ConfigError) -> RunPlan {
        let all = app.formation.types
        if only.isEmpty {
            return RunPlan(app: app, types: all, runRelease: app.formation.release != nil, style: style)
        }
        var runRelease = false
        var types: [ProcessType] = []
        for name in only {
            if name == Formation.releaseName, app.formation.release != nil { runRelease = true; continue }
            guard let type = all.first(where: { $0.name == name }) else {
                let known = (all.map(\.name) + (app.formation.release != nil ? [Formation.releaseName] : [])).joined(separator: ", ")
                throw ConfigError(.badOption, file: app.paths.procfile, line: nil, "no process type \"\(name)\"; expected one of: \(known)")
            }
            if !types.contains(where: { $0.name == name }) { types.append(type) }
        }
        return RunPlan(app: app, types: types.sorted { $0.index < $1.index }, runRelease: runRelease, style: style, only: only)
    }
}

/// The owner loop of `paas up`: one thread owns every instance, every pipe, the signals and
/// the deadlines. Sources of events (child pipes, the signalfd, the output writer) are
/// descriptors in one epoll set, so there is no shared mutable state and no locking on the
/// hot path. Spawning happens on this same thread, which lives as long as paas, as the
/// parent-death signal requires.
package final class Supervisor {
    struct Member {
        var identity: InstanceIdentity
        var state = InstanceState()
        var isRelease: Bool
        var startedAt: UInt64 = 0
        /// The process group it led (its first pid); 0 if it never started.
        var pgid: Int32 = 0
        var restarts = 0
        /// How its predecessor of the same name ended (for `ps`), once this one is running.
        var previousExit: Termination?
        /// Its stdout and stderr while open: it is remembered at least that long.
        var openStreams = 0
        /// The new generation of a replacement under way, not ready yet: its exit stops the
        /// replacement (the old generation keeps what it has).
        var replacing = false
        /// How it is stopped, from the settings it started with: a reload that changes
        /// `stop_signal` or `stop_timeout` does not change what an old generation understands.
        var stopSignal = Signal.terminate
        var stopTimeout: UInt64 = 0
    }

    struct Stream {
        var fd: Int32
        var member: Int
        /// Its member's number in ``logSources``.
        var source: Int32
        var kind: LogStream
        var framer = LineFramer()
    }

    package enum Token {
        static let signals: UInt64 = 1
        static let writer: UInt64 = 2
        static let pipes: UInt64 = 3
        package static let control: UInt64 = 4
        static let guardian: UInt64 = 5
        static let router: UInt64 = 6
        static let firstStream: UInt64 = 16
    }

    /// What runs: swapped whole by a reload.
    var plan: RunPlan
    /// Reads the configuration again (a reload); nil where reloading makes no sense.
    let reloader: (@Sendable () throws(ConfigError) -> AppConfig)?
    /// The generation of the configuration: 1 at start, one more per applied reload.
    var generation = 1
    /// Types being replaced by a new generation, one instance at a time.
    var replacements: [String: Replacement] = [:]
    /// The new instances of start-first replacements, not ready yet, by serial (they take
    /// their name once ready).
    var candidates: [Int: (type: String, number: Int)] = [:]
    /// A SIGHUP arrived while a reload was under way: reload again once it is done.
    var reloadQueued = false
    /// The types `paas rollout` replaces although their configuration did not change, with its
    /// overrides, while its reload is applied.
    var forced: (types: [String], overrides: RolloutOverrides) = ([], RolloutOverrides())
    /// A reload waiting for its release phase.
    var pendingReload: (plan: RunPlan, diff: ConfigDiff)?
    /// The processes paas knows about, by serial (a restarted instance is a new member; a
    /// reaped one is forgotten once nothing refers to it).
    var members = Registry<Member>()
    /// The names log lines in the history ring carry.
    var logSources = LogSources()
    /// Whether anything was started yet (an all-zero formation ends at once).
    private var startedAny = false
    /// The formation's instances by name (`web.2`) → their latest entry in `members`.
    var current: [String: Int] = [:]
    /// Instances wanted per type (`scale` changes it).
    var desired: [String: Int] = [:]
    private var memberByPID: [Int32: Int] = [:]
    private var streams: [UInt64: Stream] = [:]
    private var nextToken = Token.firstStream
    var runState: RunState
    /// Every line of the event stream goes to these: stdout, the history ring, the followers.
    var sinks: EventSinks
    var baseEnvironment: [(key: String, value: String)] = []
    /// Restarts waiting for their backoff delay, by instance name.
    var pendingRestarts: [String: PendingRestart] = [:]
    /// The backoff of each instance, by name.
    var backoffs: [String: Backoff] = [:]
    /// The circuit breaker of each type.
    var breakers: [String: CircuitBreaker] = [:]
    /// The probe of a half-open breaker, by type: its member index and when it has proved stable.
    var probes: [String: (member: Int, stableAt: UInt64)] = [:]
    /// Health of each running instance, by member index.
    var health: [Int: InstanceHealth] = [:]
    /// Health checks under way, by token (connections) and by pid (commands).
    var checkRuns: [UInt64: CheckRun] = [:]
    var checkByPID: [Int32: UInt64] = [:]
    var nextCheckToken = Supervisor.checkTokenBase
    /// Types held back by `after` until the types they wait for are ready.
    var waitingTypes: [ProcessType] = []
    /// Recent lines for `paas logs`.
    let control: ControlServer?
    let startedAt = Clock.monotonicNanos()
    /// Groups stopped one at a time, with their SIGKILL deadlines.
    var groupStops = GroupStops()
    /// What a timer of the owner loop is for.
    enum LoopTimer {
        case restart(String), breaker(String), probe(String), health(Int), checkRun(UInt64), groupKill
        /// Drained instances to look at; a rollout's counters and deadlines.
        case drain, rollout(String)
    }
    /// Every deadline of the loop but the run's own and the control socket's.
    var timers = TimerQueue<LoopTimer>()
    /// Starts that wait until the old process group of the same name is gone, by that group.
    var deferredStarts: [Int32: (type: String, number: Int, restarts: Int, role: StartRole)] = [:]
    /// Processes outside the instances' groups (daemons, re-parented orphans) already sent
    /// a signal, and which one.
    private var signalledStrays: [Int32: Int32] = [:]
    /// The last signal sent to each instance's process group.
    private var signalledGroups: [Int32: Int32] = [:]
    private var outputClosedHandled = false
    /// The router in front of routed types; nil with `--no-router` or when none is routed.
    var router: Router?
    /// Each routed type's public port and the table last handed to the router.
    var routes: [String: RouteState] = [:]
    /// Something that decides a table changed: hand the tables to the router at the end of the turn.
    var routerDirty = false
    /// Made with the router (a run without one spends no descriptor on it).
    var routerWake: WakeUp?
    /// The listening sockets systemd passed (socket activation), until routes take them.
    var activation: SocketActivation?
    /// Routed instances out of rotation before they stop, with their drain deadline
    /// (`byRollout`: the rollout decides when its old set stops).
    var drains: [Int: (deadline: UInt64, byRollout: Bool)] = [:]
    /// Rollouts under way, by type, and how the last one of each type ended.
    var rollouts: [String: RolloutRun] = [:]
    var rolloutOutcomes: [String: (outcome: Rollout.Outcome, at: Int)] = [:]
    /// The rollouts' decisions, for `paas rollout` to print (the last ``rolloutLogLimit``).
    var rolloutLog = RolloutLog()
    private var pipesPaused = false

    let outer: Poller
    private let inner = Poller()
    private let signals: SignalSource
    private let writer: OutputWriter
    let guardian: Guardian?
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)

    /// Prepares the process-wide state. - Important: call it while paas is single-threaded
    /// (it forks the guardian and blocks signals for every later thread).
    package init(plan: RunPlan, control: ControlServer?, poller: Poller, reloader: (@Sendable () throws(ConfigError) -> AppConfig)? = nil) {
        self.plan = plan
        self.reloader = reloader
        self.control = control
        self.outer = poller
        for type in plan.app.formation.types { desired[type.name] = 0 }
        for type in plan.types { desired[type.name] = type.quantity }
        // The whole formation's deadline: the longest grace any type has.
        let longest = plan.app.formation.types.compactMap { plan.app.settings($0.name).stopTimeout }.max().map { Double($0) / 1e9 } ?? 0
        self.runState = RunState(hasRelease: plan.runRelease, timeoutSeconds: max(plan.app.timeout, longest))
        guardian = Guardian(poller: poller, token: Token.guardian, controlGroup: true)
        SignalSource.ignoreBrokenPipe()
        SignalSource.ignore(Signal.ignoredByPaas)
        signals = SignalSource([Signal.interrupt, Signal.terminate, Signal.quit, Signal.hangup, Signal.child, Signal.user1, Signal.user2])
        Processes.becomeSubreaper()
        writer = OutputWriter(fd: 1)
        var width = LogSource.system.name.count
        if plan.runRelease { width = max(width, Formation.releaseName.count) }
        for type in plan.types where type.quantity > 0 {
            width = max(width, "\(type.name).\(type.quantity)".utf8.count)
        }
        sinks = EventSinks(style: plan.style, nameWidth: width, control: control)
    }

    deinit { readBuffer.deallocate() }

    /// Runs until everything has stopped; returns paas's exit status.
    package func run() -> Int32 {
        writer.start()
        outer.add(signals.fd, token: Token.signals)
        outer.add(writer.loopWake.fd, token: Token.writer)
        outer.add(inner.fd, token: Token.pipes)
        baseEnvironment = ProcessEnvironment.current()
        activation = SocketActivation.parse(baseEnvironment, pid: Processes.currentPID)
        // The public ports come first: a port that is taken stops paas before anything starts.
        if let failure = openRoutes() {
            OutputFile.writeIfReady(2, "paas: \(failure)\n")
            router?.shutdown()
            writer.close()
            return RunState.startFailureStatus
        }

        if plan.runRelease, let command = plan.app.formation.release {
            event("running release phase: \(command)")
            let identity = InstanceIdentity(name: Formation.releaseName, type: Formation.releaseName, number: nil, port: nil, command: command, colorIndex: plan.app.formation.types.count)
            start(Member(identity: identity, isRelease: true))
        } else {
            startFormation()
        }

        while true {
            syncRouter()
            flushBatch()
            if isFinished() { break }
            let timeout = timeoutMilliseconds()
            for event in outer.wait(timeoutMilliseconds: timeout) {
                switch event.token {
                case Token.signals: handleSignals()
                case Token.writer: handleWriter()
                case Token.pipes: readPipes()
                case Token.control: control?.acceptAll()
                case Token.guardian: guardian?.flush()
                case Token.router: handleRouterEvents()
                case Self.checkTokenBase...: handleCheckEvent(event)
                default: handleControl(event)
                }
            }
            let now = Clock.monotonicNanos()
            perform(runState.tick(now: now), reason: nil)
            fireTimers(now: now)
            control?.tick(now: now)
        }
        finish()
        return runState.exitStatus ?? 0
    }

    // MARK: starting

    private func startFormation() {
        var count = 0
        for type in plan.types where type.quantity > 0 {
            let after = plan.app.settings(type.name).after.filter { dep in plan.types.contains { $0.name == dep } }
            if !after.isEmpty {
                waitingTypes.append(type)
                event("\(type.name) waits for \(after.joined(separator: ", ")) to be ready")
                count += type.quantity
                continue
            }
            for n in 1...type.quantity {
                startInstance(type, n)
                count += 1
                if runState.isStopping { return }
            }
        }
        if count == 0 {
            event("nothing to run: every process type is scaled to 0")
        }
        // A type that waits only for types with no instance wanted has nothing to wait for.
        startWaitingTypes()
    }

    /// Starts instance `n` of `type` (its name and port follow from them).
    /// How a start relates to a replacement under way.
    enum StartRole {
        /// An ordinary start: it is the instance of its name.
        case instance
        /// The new generation of a stop-first replacement: the instance of its name, watched
        /// until it is ready.
        case replacing
        /// The new generation of a start-first replacement: beside the old instance of its
        /// name, which it replaces once ready.
        case candidate
        /// The new set of a blue-green or canary rollout: beside the old set, under the same
        /// names, which it takes over at the switch.
        case rolloutNew
    }

    /// Returns the new member's serial (nil when the start was deferred or refused).
    @discardableResult
    func startInstance(_ type: ProcessType, _ n: Int, restarts: Int = 0, role: StartRole = .instance) -> Int? {
        if role != .rolloutNew, routes[type.name] == nil, let old = current["\(type.name).\(n)"], members[old].state.isFinished, groupStops.contains(members[old].pgid) {
            // What is left of the old group must be gone first: it may still hold the port.
            deferredStarts[members[old].pgid] = (type.name, n, restarts, role)
            return nil
        }
        guard let port = instancePort(type, n) else {
            event("could not start \(type.name).\(n): every private port of \(type.name)'s block is in use")
            return nil
        }
        var identity = InstanceIdentity(name: "\(type.name).\(n)", type: type.name, number: n, port: port, command: type.command, colorIndex: type.index)
        identity.generation = generation
        sinks.formatter.fit(name: identity.name)
        var member = Member(identity: identity, isRelease: false)
        member.restarts = restarts
        member.replacing = role == .replacing || role == .candidate
        // Until the switch, a new-set member's exit is the rollout's business, not its policy's.
        if role == .rolloutNew { member.state.intent = .remove }
        let index = start(member, takesName: role == .instance || role == .replacing)
        if let index, role == .candidate, members.member(index).map({ !$0.state.isFinished }) == true {
            candidates[index] = (type.name, n)
        }
        routerDirty = true
        return index
    }

    /// Starts a member; returns its serial (also when the spawn failed).
    @discardableResult
    private func start(_ member: Member, takesName: Bool = true) -> Int? {
        // Nothing new starts once the run is stopping (a failed start may have switched it
        // while a loop over instances was under way).
        guard member.isRelease || runState.phase == .running else { return nil }
        var member = member
        let id = member.identity
        member.stopSignal = Signal.number(plan.app.settings(id.type).stopSignal)
        member.stopTimeout = stopTimeout(id.type)
        if let old = current[id.name], let previous = members.member(old) {
            if case .exited(let t) = previous.state.phase { member.previousExit = t } else { member.previousExit = previous.previousExit }
        }
        let index = members.add(member)
        startedAny = true
        var extra: [(String, String)] = []
        if let port = id.port { extra.append(("PORT", String(port))) }
        extra.append(("PS", id.name))
        extra.append(("DYNO", id.name))
        let environment = plan.app.childEnvironment(inherited: baseEnvironment, extra: extra)
        // One simple command replaces its shell (`exec`): no shell stays between paas and the app.
        let request = SpawnRequest.shell(ShellCommand.forSpawn(id.command), environment: environment, directory: plan.app.paths.root)
        let replaced = member.isRelease || !takesName ? nil : current.updateValue(index, forKey: id.name)
        if let replaced { forgetIfDone(replaced) }
        do {
            let child = try Spawner.spawn(request)
            member.state.spawned(pid: child.pid)
            member.pgid = child.pid
            member.startedAt = Clock.monotonicNanos()
            guardian?.watch(child.pid)
            members[index] = member
            if !member.isRelease { beginHealth(index, now: member.startedAt) }
            memberByPID[child.pid] = index
            addStream(child.stdout, member: index, kind: .stdout)
            addStream(child.stderr, member: index, kind: .stderr)
            let generation = reloaded ? ", generation \(id.generation)" : ""
            event(id.port.map { "\(id.name) started (pid \(child.pid), port \($0)\(generation))" } ?? "\(id.name) started (pid \(child.pid)\(generation))")
            return index
        } catch {
            member.state.failedToStart(error.description)
            members[index] = member
            event("could not start \(id.name): \(error.description)")
            if member.replacing { replacementFailed(index) }
            if !takesName {
                // A candidate: the old instance keeps its name and runs on.
                forgetIfDone(index)
                return index
            }
            let now = Clock.monotonicNanos()
            if member.isRelease || plan.app.settings(id.type).policy == .no {
                perform(runState.startFailed(now: now), reason: .startFailed(id.name))
            } else {
                // A transient EAGAIN or EMFILE: the type's restart policy decides, as for a crash.
                exitedOnItsOwn(index, .exited(RunState.startFailureStatus), now: now, failedStart: true)
            }
            return index
        }
    }

    /// Runs a release phase (at start, or a reload's new one).
    func startRelease(_ identity: InstanceIdentity) {
        sinks.formatter.fit(name: identity.name)
        start(Member(identity: identity, isRelease: true))
    }

    /// Whether a reload has been applied (then start events name the generation).
    var reloaded: Bool { generation > 1 }

    private func addStream(_ fd: Int32, member: Int, kind: LogStream) {
        let token = nextToken
        nextToken += 1
        streams[token] = Stream(fd: fd, member: member, source: logSources.id(members[member].identity.logSource), kind: kind)
        members[member].openStreams += 1
        inner.add(fd, token: token)
    }

    // MARK: events

    private func handleSignals() {
        for signal in signals.drain() {
            if signal == Signal.child {
                reapChildren()
            } else if signal == Signal.hangup {
                // SIGHUP reloads, as nginx and gunicorn do. A terminal hangup still stops
                // everything: writes to a hung-up terminal fail (EIO), the "output closed" path.
                if runState.phase == .running && (!replacements.isEmpty || !rollouts.isEmpty || pendingReload != nil) {
                    reloadQueued = true
                    event("received SIGHUP during a reload; reloading again once it is done")
                } else {
                    _ = reload(by: "SIGHUP")
                }
            } else if signal == Signal.user1 || signal == Signal.user2 {
                forward(signal)
            } else {
                perform(runState.received(signal: signal, now: Clock.monotonicNanos()), reason: .signal(signal))
            }
        }
        // SIGCHLD coalesces and may race the mask: reap on every wake-up anyway.
        reapChildren()
    }

    private func handleWriter() {
        writer.loopWake.clear()
        if writer.isBroken && !outputClosedHandled {
            outputClosedHandled = true
            if let failure = writer.failure, !failure.isHangUp {
                // Not a reader that left but an error (a full disk, a file-size limit): say so
                // where it can be seen, and end non-zero.
                let message = "\(failure.description); stopping all processes (exit \(RunState.outputErrorStatus))"
                OutputFile.writeIfReady(2, "paas: \(message)\n")
                event(message)
                perform(runState.outputFailed(now: Clock.monotonicNanos()), reason: nil)
            } else {
                perform(runState.outputClosed(now: Clock.monotonicNanos()), reason: .outputClosed)
            }
        }
        if pipesPaused && !writer.isCongested {
            pipesPaused = false
            outer.add(inner.fd, token: Token.pipes)
        }
    }

    private func reapChildren() {
        while case .reaped(let pid, let status) = Processes.reapOne() {
            if let note = guardian?.reaped(pid, status) { event(note); continue } // it died: replaced
            routerDirty = true
            guard let index = memberByPID.removeValue(forKey: pid) else {
                if let token = checkByPID.removeValue(forKey: pid) { checkCommandExited(token, status) }
                signalledStrays.removeValue(forKey: pid)
                continue
            }
            defer { forgetIfDone(index) }
            endHealth(index)
            // Processes of its group that outlived it (npm died, node lives on) may still be
            // writing: a partial last line is theirs to finish, and the pipe's EOF flushes it.
            let groupAlive = Signal.sendToGroup(0, pid)
            // Everything the process wrote is in its pipes now: hand it on before the exit
            // event (bounded: what is left of the group may write on for ever).
            drainStreams(of: index, flush: !groupAlive)
            let decision = members[index].state.exited(status)
            let name = members[index].identity.name
            event("\(name) \(status)")
            let now = Clock.monotonicNanos()
            if !groupAlive {
                groupStops.ended(pid)
                guardian?.forget(pid)
            } else if runState.phase == .running && !groupStops.contains(pid) {
                // The group goes with its leader, by the same deadline as any stop, before
                // the name starts again.
                let m = members[index]
                event("\(name): processes of its group outlived it; sending \(Signal.name(m.stopSignal)) (SIGKILL in \(Self.seconds(m.stopTimeout)))")
                stopGroup(pid, name: name, signal: m.stopSignal, timeout: m.stopTimeout, now: now)
            }
            if members[index].isRelease {
                if pendingReload != nil {
                    reloadReleaseExited(status)
                } else {
                    perform(runState.releaseExited(status, now: now), reason: .releaseFailed(status))
                }
                continue
            }
            if rolloutMember(index) != nil {
                rolloutExited(index, "ended (\(status)) before the switch", now: now)
            }
            var neverReady = false
            if members[index].replacing {
                replacementFailed(index)
                // A start-first candidate never took its name: the old instance runs on.
                if candidates.removeValue(forKey: index) != nil { continue }
                // Stop-first: nothing old beside it; it failed to start like any instance.
                neverReady = true
            }
            switch decision {
            case .startAgain:
                if probes[members[index].identity.type]?.member == index {
                    // A liveness restart of a half-open breaker's probe: the probe failed.
                    exitedOnItsOwn(index, status, now: now, failedStart: true)
                } else if runState.phase == .running, let type = plan.app.formation.types.first(where: { $0.name == members[index].identity.type }),
                          let n = members[index].identity.number, n <= desired[type.name] ?? 0 {
                    startInstance(type, n, restarts: members[index].restarts + 1)
                }
            case .forget:
                if current[name] == index { current[name] = nil }
                forgetIfDone(index)
            case .stayDown, .stopped:
                break
            case .replaced:
                // Stop-first: the new generation starts once the old group is gone.
                if let n = members[index].identity.number { replacementOldGone(members[index].identity.type, n) }
            case .onItsOwn:
                exitedOnItsOwn(index, status, now: now, failedStart: neverReady)
            case .failedStart:
                exitedOnItsOwn(index, status, now: now, failedStart: true)
            }
        }
        settleGroups()
    }

    /// Forgets the stopping groups that are empty now, and starts what waited for them.
    private func settleGroups() {
        for pgid in groupStops.entries.keys where !Signal.sendToGroup(0, pgid) {
            groupStops.ended(pgid)
            guardian?.forget(pgid)
            guard let start = deferredStarts.removeValue(forKey: pgid), runState.phase == .running,
                  start.number <= desired[start.type] ?? 0,
                  let type = plan.app.formation.types.first(where: { $0.name == start.type }) else { continue }
            startInstance(type, start.number, restarts: start.restarts, role: start.role)
        }
    }

    /// SIGTERM (and SIGCONT, so that a stopped process acts on it) to a group whose
    /// instance has been reaped; SIGKILL follows at the deadline.
    private func stopGroup(_ pgid: Int32, name: String, signal: Int32, timeout: UInt64, now: UInt64) {
        Signal.sendToGroup(signal, pgid)
        Signal.sendToGroup(Signal.resume, pgid)
        signalledGroups[pgid] = signal
        if groupStops.begin(pgid, name: name, deadline: now + timeout) { timers.schedule(.groupKill, at: now + timeout) }
    }

    /// SIGUSR1 and SIGUSR2 to paas go on to every running instance's group (nginx reopens
    /// its logs on USR1, unicorn and puma re-exec on USR2): paas has no use of its own for them.
    private func forward(_ sig: Int32) {
        let running = current.values.sorted().filter { members[$0].state.pid != nil }
        event("received \(Signal.name(sig)), forwarding it to \(running.count) process\(running.count == 1 ? "" : "es")")
        for index in running { Signal.sendToGroup(sig, members[index].pgid) }
    }

    /// SIGKILL to every group whose stop deadline has passed.
    func killOverdueGroups(now: UInt64) {
        for group in groupStops.due(now: now) {
            let type = group.name.split(separator: ".").first.map(String.init) ?? group.name
            if let index = memberByPID[group.pgid] {
                event("\(group.name) did not stop within \(Self.seconds(members[index].stopTimeout))")
                signal(members[index].state.kill(), index)
            } else {
                event("what is left of \(group.name)'s process group did not stop within \(Self.seconds(stopTimeout(type))); sending SIGKILL (group \(group.pgid))")
                Signal.sendToGroup(Signal.kill, group.pgid)
                signalledGroups[group.pgid] = Signal.kill
            }
        }
    }

    private func readPipes() {
        for event in inner.wait(timeoutMilliseconds: 0) {
            read(event.token, reads: 1, flush: false)
        }
    }

    /// Reads of 64 KiB a drain makes at most: more than a pipe holds (1 MiB at most, by
    /// `/proc/sys/fs/pipe-max-size`), so a drain gets what was written before the process
    /// exited, and a grandchild that writes for ever cannot hold the loop.
    static let drainReads = 20

    /// Reads a stream once (one read per ready stream per wake-up, so a flood from one child
    /// cannot starve the others) or, when its process has exited, up to ``drainReads`` times
    /// until its pipe is empty; then `flush` hands on a partial last line too (when nothing
    /// else of the process's group can still finish it).
    private func read(_ token: UInt64, reads: Int, flush: Bool) {
        var left = reads
        while left > 0, let stream = streams[token] {
            left -= 1
            switch PipeReader.read(stream.fd, into: readBuffer) {
            case .data(let n):
                frame(token, UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]))
            case .wouldBlock:
                if flush { flushPartial(token) }
                return
            case .endOfFile:
                closeStream(token)
                return
            }
        }
    }

    /// Frames one read into lines of the event stream. The hot path: in text format each line
    /// is the cached prefix, the text and a newline, appended to a local buffer (not the
    /// stored property, which would cost an exclusivity check per append).
    private func frame(_ token: UInt64, _ bytes: UnsafeRawBufferPointer) {
        guard var stream = streams[token] else { return }
        let source = logSources[stream.source]
        let now = WallTime.now()
        // Local copies: appending to a stored property would cost an exclusivity check per line.
        var out = sinks
        sinks = EventSinks.moved
        let id = stream.source
        let kind = stream.kind
        let following = out.following
        let prefix = out.formatter.textPrefix(for: source, at: now)
        stream.framer.feed(bytes) { line, continuation in
            out.deliver(line, source: source, id: id, stream: kind, continuation: continuation, at: now, prefix: prefix, following: following)
        }
        sinks = out
        streams[token] = stream
    }

    private func drainStreams(of member: Int, flush: Bool) {
        for (token, stream) in streams where stream.member == member {
            read(token, reads: Self.drainReads, flush: flush)
        }
    }

    private func flushPartial(_ token: UInt64) {
        guard var stream = streams[token] else { return }
        let source = logSources[stream.source]
        let now = WallTime.now()
        stream.framer.flush { line, continuation in
            sinks.deliver(line, source: source, id: stream.source, stream: stream.kind, continuation: continuation, at: now)
        }
        streams[token] = stream
    }

    private func closeStream(_ token: UInt64) {
        flushPartial(token)
        guard let stream = streams.removeValue(forKey: token) else { return }
        inner.remove(stream.fd)
        FileDescriptorIO.close(stream.fd)
        members[stream.member].openStreams -= 1
        forgetIfDone(stream.member)
    }

    /// Forgets a member that has ended, is no longer the latest of its name and has no open
    /// pipe: nothing refers to it any more.
    func forgetIfDone(_ index: Int) {
        guard let m = members.member(index), m.state.isFinished, m.openStreams == 0, m.isRelease || current[m.identity.name] != index else { return }
        if let probe = probes[m.identity.type], probe.member == index { probes[m.identity.type] = nil }
        members.forget(index)
    }

    // MARK: actions

    func perform(_ action: RunState.Action, reason: RunState.Reason?) {
        switch action {
        case .none:
            return
        case .startFormation:
            startFormation()
        case .stopAll:
            if let reason { event(describe(reason)) }
            // No new connection is taken once the formation stops; a routed instance with
            // connections still open gets its stop signal once they end (at most half the
            // timeout), so that nothing the router already took is cut off.
            for name in routes.keys.sorted() { router?.close(route: name) }
            let now = Clock.monotonicNanos()
            let open = routes.keys.reduce(into: [String: [Int: BackendCounters]]()) { $0[$1] = router?.snapshot(route: $1) ?? [:] }
            let drainUntil = now + runState.timeoutNanos / 2
            for i in members.serials {
                let m = members[i]
                if case .running = m.state.phase, let counters = open[m.identity.type], (counters[i]?.active ?? 0) > 0 {
                    drains[i] = (deadline: min(drainUntil, drains[i]?.deadline ?? drainUntil), byRollout: false)
                    continue
                }
                drains[i] = nil
                stopInstance(i)
            }
            if !drains.isEmpty {
                event("waiting for \(drains.count) routed instance\(drains.count == 1 ? "" : "s")' open connections (at most \(Self.seconds(runState.timeoutNanos / 2)))")
                timers.schedule(.drain, at: now + Self.drainPoll)
            }
            signalStrays(Signal.terminate)
        case .killAll:
            if case .signal = reason {
                event("received second SIGINT, killing all processes")
            } else {
                event("timeout after \(Self.seconds(plan.app.timeout)), killing remaining processes")
            }
            for i in members.serials {
                signal(members[i].state.kill(), i)
            }
            signalStrays(Signal.kill)
        }
    }

    /// A graceful stop of one instance: its type's stop signal, SIGKILL at its stop timeout.
    func stopInstance(_ index: Int) {
        routerDirty = true
        signal(members[index].state.stop(signal: members[index].stopSignal), index)
    }

    /// The grace a type's instances get between the stop signal and SIGKILL.
    func stopTimeout(_ type: String) -> UInt64 {
        plan.app.settings(type).stopTimeout ?? UInt64(plan.app.timeout * 1e9)
    }

    func signal(_ action: InstanceState.Action, _ index: Int) {
        guard case .signalGroup(let sig, let pgid) = action else { return }
        let name = members[index].identity.name
        event("sending \(Signal.name(sig)) to \(name) (pid \(pgid))")
        if sig == Signal.kill {
            Signal.sendToGroup(sig, pgid)
            signalledGroups[pgid] = sig
            groupStops.killed(pgid, name: name)
        } else {
            stopGroup(pgid, name: name, signal: sig, timeout: members[index].stopTimeout, now: Clock.monotonicNanos())
        }
    }

    /// Signals descendants that the instances' group signals miss: processes that left their
    /// group (daemons with their own session), and members of a group whose leader has
    /// exited (a grandchild still shutting down after `sh -c` died) that have not had this
    /// signal yet. A process already sent SIGTERM with its group is not sent it twice: a
    /// second SIGTERM often means "quit now" to an app that is shutting down gracefully.
    private func signalStrays(_ sig: Int32) {
        for pid in Processes.descendants(of: Processes.currentPID) where pid != guardian?.pid {
            guard let stat = Processes.statFields(pid), signalledGroups[stat.pgid] != sig else { continue }
            // A live instance's group is signalled through its state (its own stop signal,
            // then SIGKILL); a group being stopped after its leader left has its own signal
            // and deadline. Neither gets a SIGTERM it did not ask for.
            if memberByPID[stat.pgid] != nil { continue }
            if sig != Signal.kill, groupStops.contains(stat.pgid) { continue }
            if signalledStrays[pid] == sig { continue }
            signalledStrays[pid] = sig
            Signal.send(sig, pid)
        }
    }

    func describe(_ reason: RunState.Reason) -> String {
        let timeout = Self.seconds(plan.app.timeout)
        switch reason {
        case .signal(let s): return "received \(Signal.name(s)), stopping all processes (timeout \(timeout))"
        case .exited(let name, _): return "\(name) has ended, stopping all processes (timeout \(timeout))"
        case .outputClosed: return "stdout was closed, stopping all processes (timeout \(timeout))"
        case .releaseFailed(let status): return "release phase failed (\(status)); the formation does not start"
        case .startFailed(let name): return "\(name) could not start, stopping all processes (timeout \(timeout))"
        case .stopRequested: return "paas stop requested, stopping all processes (timeout \(timeout))"
        case .crashLoop: return "every process type's circuit breaker is open, stopping (exit \(RunState.crashLoopStatus))"
        case .allFinished: return "every process has finished and none will restart; stopping"
        }
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))s" : "\(value)s"
    }

    // MARK: the end

    private func isFinished() -> Bool {
        if runState.phase == .running || runState.phase == .release {
            // Nothing started and nothing will: an all-zero formation.
            return !startedAny && !plan.runRelease && waitingTypes.isEmpty
        }
        guard members.all.allSatisfy({ $0.state.isFinished }) else { return false }
        // Instances are gone; stragglers re-parented to paas must go too.
        let strays = Processes.children(of: Processes.currentPID).filter { $0 != guardian?.pid }
        if strays.isEmpty { return true }
        signalStrays(runState.phase == .killing ? Signal.kill : Signal.terminate)
        return false
    }

    private func timeoutMilliseconds() -> Int32 {
        let now = Clock.monotonicNanos()
        /// Milliseconds until `t` (rounded up, at most a minute), 0 when it has passed.
        func until(_ t: UInt64) -> Int32 { t > now ? Int32(min((t - now) / 1_000_000 + 1, 60_000)) : 0 }
        var timeout: Int32 = -1
        if let deadline = runState.deadline { timeout = until(deadline) }
        // While stopping, types with a shorter stop_timeout than the formation's are killed
        // at theirs; other timers that come due then find nothing to do.
        if let next = timers.next {
            timeout = timeout < 0 ? until(next) : min(timeout, until(next))
        }
        if let next = control?.nextDeadline { // idle control connections, a resting listener
            timeout = timeout < 0 ? until(next) : min(timeout, until(next))
        }
        if members.all.allSatisfy({ $0.state.isFinished }) && runState.isStopping {
            // Waiting for strays that are not our children yet: look again soon.
            timeout = timeout < 0 ? 50 : min(timeout, 50)
        }
        return timeout
    }

    func event(_ message: String) {
        let now = WallTime.now()
        var text = message
        text.withUTF8 { sinks.deliver(UnsafeRawBufferPointer($0), source: .system, id: -1, stream: .event, continuation: false, at: now) }
    }

    private func flushBatch() {
        if !sinks.batch.isEmpty { writer.submit(sinks.takeBatch()) }
        if !pipesPaused && writer.isCongested {
            pipesPaused = true
            outer.remove(inner.fd)
        }
    }

    private func finish() {
        // The pipes are read here one last time; the loop below waits only for the reaper and
        // the writer, so hung-up pipes must not wake it.
        if !pipesPaused { outer.remove(inner.fd) }
        pipesPaused = true
        // Output that grandchildren left in pipes still open.
        for token in Array(streams.keys) {
            read(token, reads: Self.drainReads, flush: true)
            closeStream(token)
        }
        event("all processes stopped")
        router?.shutdown()
        flushBatch()
        control?.shutdown()
        guardian?.release()
        // The guardian is the last child: wait for it (SIGCHLD wakes the poll) until none is left.
        reaping: while true {
            switch Processes.reapOne() {
            case .noChildren: break reaping
            case .reaped: continue
            case .none:
                // The guardian of a cgroup waits for paas to exit, to remove the cgroup.
                if guardian?.controlGroup != nil, let g = guardian?.pid, Processes.children(of: Processes.currentPID) == [g] { break reaping }
                _ = outer.wait(timeoutMilliseconds: 20)
                _ = signals.drain()
            }
        }
        // The last lines go out within the stop timeout, or at once on SIGINT/SIGTERM: a
        // stdout that stopped reading (`paas up | less`, then Ctrl-C) must not hold paas.
        writer.close()
        let deadline = Clock.monotonicNanos() + runState.timeoutNanos
        while !writer.isFinished {
            let now = Clock.monotonicNanos()
            let interrupted = signals.drain().contains { $0 == Signal.interrupt || $0 == Signal.terminate }
            if interrupted || now >= deadline {
                let why = interrupted ? "interrupted while writing the last lines" : "stdout did not take the last lines within \(Self.seconds(plan.app.timeout))"
                OutputFile.writeIfReady(2, "paas: \(why); \(writer.queuedBytes) bytes of output were not written\n")
                break
            }
            _ = outer.wait(timeoutMilliseconds: Int32(min(100, (deadline - now) / 1_000_000 + 1)))
            writer.loopWake.clear()
        }
    }
}
