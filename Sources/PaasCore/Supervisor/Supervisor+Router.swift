import PaasConfig
import PaasRouter

/// A routed type's public side, as the loop keeps it.
struct RouteState {
    /// The port it listens on (the plan's, or that of a socket systemd handed over).
    var publicPort: Int
    /// Where the type's block of private ports starts after (the plan's public port).
    var planPort: Int
    var mode: RouteMode
    /// A socket systemd passed, not taken yet: it is taken once an instance is ready, so that
    /// connections wait in its queue while paas (re)starts instead of being answered at once.
    var pendingAdoption: RouteSettings?
    /// The table last handed to the router (a new one is sent only when it differs).
    var table = RouteTable()
}

/// The router in front of routed types (issue 10), seen from the owner loop: which types are
/// routed, the private ports their instances get, the backend table each loop turn leaves
/// behind (ready, running, not draining), and the drain of an instance before it stops.
///
/// **Private ports.** A routed type keeps its public port, the one its first instance would
/// get without a router (`base + 100*i`); its instances listen on private ports from the rest
/// of the type's own block of 100: `public+1 … public+99`, the lowest one no live instance of
/// the type holds (the last type of the plan may go on above its block, up to 65535). So
/// `web=4` listens on 5000 and runs on 5001-5004, and a blue-green rollout's new set on
/// 5005-5008. Nothing of another type's plan is ever taken.
extension Supervisor {
    /// Whether the router stands in front of `type` in this run.
    func isRouted(_ type: String) -> Bool {
        plan.routerEnabled && plan.app.isRouted(type)
    }

    /// Opens the public listener of each routed type that runs (or adopts the listening socket
    /// systemd passed for it); the first failure is returned.
    func openRoutes() -> String? {
        let types = plan.types.filter { isRouted($0.name) && routes[$0.name] == nil }
        guard !types.isEmpty else { return nil }
        if router == nil {
            let wake = WakeUp()
            routerWake = wake
            router = Router(threads: 1, wake: { wake.signal() })
            outer.add(wake.fd, token: Token.router)
        }
        for type in types {
            let settings = plan.app.settings(type.name)
            let publicPort = type.port(1, base: plan.app.formation.basePort)
            var fallback: [UInt8]?
            if let page = settings.fallback {
                let path = plan.app.paths.root + "/" + page
                do {
                    fallback = try FileSystem.read(path, limit: 1 << 20)
                } catch {
                    return "\(type.name): fallback page \(page): \(error)"
                }
            }
            let inherited = activation?.take(for: type.name)
            let route = RouteSettings(name: type.name, mode: settings.router == .http ? .http : .tcp, source: inherited.map { .descriptor($0) } ?? .port(publicPort),
                                      ejectionErrors: settings.ejectionErrors, ejectionCooldown: settings.ejectionCooldown,
                                      fallbackPage: fallback, retryAfterSeconds: 5)
            if let fd = inherited {
                guard let port = LocalTCP.boundPort(fd) else {
                    return "\(type.name): descriptor \(fd) that systemd passed is not a TCP socket"
                }
                routes[type.name] = RouteState(publicPort: port, planPort: publicPort, mode: route.mode, pendingAdoption: route)
                event("router: \(type.name) on port \(port) (socket activation, descriptor \(fd); taken once an instance is ready) (\(route.mode.rawValue)), instances on private ports from \(publicPort + 1)")
                continue
            }
            let bound: Int
            do {
                bound = try router!.listen(route)
            } catch {
                return "\(type.name): could not listen on its public port \(publicPort): \(error)"
            }
            routes[type.name] = RouteState(publicPort: bound, planPort: publicPort, mode: route.mode)
            event("router: \(type.name) on port \(bound) (\(route.mode.rawValue)), instances on private ports from \(publicPort + 1)")
        }
        routerDirty = true
        return nil
    }

    /// Closes the routes of types that are no longer routed or run (after a reload).
    func closeStaleRoutes() {
        for name in routes.keys.sorted() where !(plan.types.contains { $0.name == name } && isRouted(name)) {
            router?.close(route: name)
            routes[name] = nil
            event("router: \(name) no longer routed; its public port is closed")
        }
    }

    /// The port a new instance of `type` listens on: its plan port, or for a routed type the
    /// lowest free private port of its block.
    func instancePort(_ type: ProcessType, _ n: Int) -> Int? {
        guard let route = routes[type.name] else { return type.port(n, base: plan.app.formation.basePort) }
        var held = Set<Int>()
        for m in members.all where m.identity.type == type.name && (!m.state.isFinished || groupStops.contains(m.pgid)) {
            if let p = m.identity.port { held.insert(p) }
        }
        let isLast = plan.app.formation.types.allSatisfy { $0.index <= type.index }
        let end = isLast ? 65535 : route.planPort + 99
        guard route.planPort + 1 <= end else { return nil }
        return (route.planPort + 1...end).first { !held.contains($0) }
    }

    /// The backends of a routed type now: its running, ready instances that are not draining,
    /// and a rollout's ready new set as the canary group.
    func routeTable(_ type: String) -> RouteTable {
        var backends: [Backend] = []
        let rollout = rollouts[type]
        for serial in members.serials {
            let m = members[serial]
            guard m.identity.type == type, let port = m.identity.port, case .running = m.state.phase, m.state.pid != nil,
                  drains[serial] == nil, health[serial]?.ready == true else { continue }
            if rollout?.newSet[serial] != nil {
                backends.append(Backend(id: serial, name: m.identity.name, port: port, group: .canary))
            } else if current[m.identity.name] == serial {
                backends.append(Backend(id: serial, name: m.identity.name, port: port, group: .stable))
            }
        }
        return RouteTable(backends: backends, canaryWeight: rollout?.controller.weight ?? 0)
    }

    /// Hands each routed type's table to the router when it changed (once per loop turn).
    func syncRouter() {
        guard routerDirty, let router else { return }
        routerDirty = false
        for (name, var route) in routes {
            let table = routeTable(name)
            if let pending = route.pendingAdoption, !table.backends.isEmpty {
                // The table first: the first connection taken must find a backend.
                route.pendingAdoption = nil
                route.table = table
                routes[name] = route
                router.update(route: name, table: table)
                do {
                    _ = try router.listen(pending)
                    event("router: \(name) takes connections on port \(route.publicPort) (an instance is ready)")
                } catch {
                    event("router: \(name): could not take the socket systemd passed: \(error)")
                }
            }
            guard table != route.table else { continue }
            route.table = table
            routes[name] = route
            router.update(route: name, table: table)
        }
    }

    /// What the router reported: ejections and returns, as event lines.
    func handleRouterEvents() {
        routerWake?.clear()
        guard let router else { return }
        for e in router.events() {
            switch e {
            case .ejected(let route, _, let name, let consecutive, let cooldown):
                event("router: \(name) ejected from \(route) after \(consecutive) consecutive errors (for \(Self.seconds(cooldown)), then one trial connection)")
            case .restored(let route, _, let name):
                event("router: \(name) back in \(route)'s rotation (its trial connection succeeded)")
            case .unavailable(let route, let refused):
                event("router: no instance of \(route) could take a connection (\(refused) answered at once)")
            }
        }
    }

    // MARK: draining

    /// Stops a routed instance gracefully: out of rotation first, then its stop signal once its
    /// open connections have ended or its drain deadline has passed. Anything else stops at once.
    func retire(_ index: Int, now: UInt64 = Clock.monotonicNanos()) {
        let m = members[index]
        guard routes[m.identity.type] != nil, case .running = m.state.phase, health[index]?.ready == true else {
            stopInstance(index)
            return
        }
        let timeout = plan.app.settings(m.identity.type).rollout.drainTimeout
        guard timeout > 0 else { stopInstance(index); return }
        drains[index] = (deadline: now + timeout, byRollout: false)
        routerDirty = true
        event("\(m.identity.name) leaves rotation and drains (up to \(Self.seconds(timeout))) before it stops")
        timers.schedule(.drain, at: now + Self.drainPoll)
    }

    static let drainPoll: UInt64 = 50_000_000

    /// Stops the drained instances whose connections have ended or whose deadline has passed.
    func checkDrains(now: UInt64) {
        guard !drains.isEmpty else { return }
        var open: [String: [Int: BackendCounters]] = [:]
        // While stopping, a rollout's old set drains like any other.
        for (index, drain) in drains.sorted(by: { $0.key < $1.key }) where !drain.byRollout || runState.isStopping {
            guard let m = members.member(index), !m.state.isFinished else { drains[index] = nil; continue }
            let type = m.identity.type
            if open[type] == nil { open[type] = router?.snapshot(route: type) ?? [:] }
            let active = open[type]?[index]?.active ?? 0
            if active == 0 || now >= drain.deadline {
                drains[index] = nil
                if active > 0 { event("\(m.identity.name): drain timeout with \(active) connection\(active == 1 ? "" : "s") open") }
                stopInstance(index)
            }
        }
        if drains.values.contains(where: { !$0.byRollout || runState.isStopping }) { timers.schedule(.drain, at: now + Self.drainPoll) }
    }

    /// The public and private ports of an instance for `ps`.
    func publicPort(of type: String) -> Int? { routes[type]?.publicPort }
}

/// systemd socket activation (`sd_listen_fds`): the listening sockets a `.socket` unit passes,
/// from descriptor 3 on, when `LISTEN_PID` is paas's own pid. A socket named after a routed
/// type (`FileDescriptorName=web`, in `LISTEN_FDNAMES`) is that type's; unnamed ones go to the
/// routed types in Procfile order. So `systemctl restart app` refuses no connection: they wait
/// in the socket's queue while paas restarts.
struct SocketActivation: Equatable {
    private(set) var named: [String: Int32] = [:]
    private(set) var unnamed: [Int32] = []

    static let firstDescriptor: Int32 = 3

    /// nil when nothing was passed to this process.
    static func parse(_ environment: [(key: String, value: String)], pid: Int32) -> SocketActivation? {
        let env = Dictionary(environment.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        guard let pidText = env["LISTEN_PID"], Int32(pidText) == pid, let count = env["LISTEN_FDS"].flatMap({ Int32($0) }), count > 0, count < 1024 else { return nil }
        let names = env["LISTEN_FDNAMES"].map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        var result = SocketActivation()
        for i in 0..<count {
            let fd = firstDescriptor + i
            let name = Int(i) < names.count ? names[Int(i)] : ""
            // systemd's default name is "unknown"; the socket unit's own name is not a type.
            if !name.isEmpty, name != "unknown", result.named[name] == nil { result.named[name] = fd } else { result.unnamed.append(fd) }
        }
        return result
    }

    /// The socket for routed `type`: its named one, else the next unnamed one.
    mutating func take(for type: String) -> Int32? {
        if let fd = named.removeValue(forKey: type) { return fd }
        return unnamed.isEmpty ? nil : unnamed.removeFirst()
    }
}
