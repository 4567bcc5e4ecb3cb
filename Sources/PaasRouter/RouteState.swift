import Atomics
import NIOConcurrencyHelpers
import NIOCore

/// One backend's live counters, shared by the connections to it on every router thread (atomics:
/// a byte count costs no lock).
final class BackendStats: Sendable {
    let active = ManagedAtomic<Int>(0)
    let total = ManagedAtomic<Int>(0)
    let bytesIn = ManagedAtomic<Int>(0)
    let bytesOut = ManagedAtomic<Int>(0)
    let connectErrors = ManagedAtomic<Int>(0)
    let resets = ManagedAtomic<Int>(0)
    let statusClasses = (0..<5).map { _ in ManagedAtomic<Int>(0) }
    let latencyTotal = ManagedAtomic<UInt64>(0)
    let latencyCount = ManagedAtomic<Int>(0)

    func add(_ counter: ManagedAtomic<Int>, _ n: Int = 1) {
        counter.wrappingIncrement(by: n, ordering: .relaxed)
    }

    func addLatency(_ ns: UInt64) {
        latencyTotal.wrappingIncrement(by: ns, ordering: .relaxed)
        latencyCount.wrappingIncrement(ordering: .relaxed)
    }

    func counters(ejected: Bool) -> BackendCounters {
        var c = BackendCounters()
        c.active = active.load(ordering: .relaxed)
        c.total = total.load(ordering: .relaxed)
        c.bytesIn = bytesIn.load(ordering: .relaxed)
        c.bytesOut = bytesOut.load(ordering: .relaxed)
        c.connectErrors = connectErrors.load(ordering: .relaxed)
        c.resets = resets.load(ordering: .relaxed)
        c.statusClasses = statusClasses.map { $0.load(ordering: .relaxed) }
        c.latencyTotal = latencyTotal.load(ordering: .relaxed)
        c.latencyCount = latencyCount.load(ordering: .relaxed)
        c.ejected = ejected
        return c
    }
}

/// A backend chosen for one connection: it holds one `active` slot until released. Lives on the
/// connection's event loop.
final class Lease {
    let backend: Backend
    let stats: BackendStats
    /// This is the backend's trial connection after a cool-down: its first verdict decides.
    var trialPending: Bool
    var released = false

    init(backend: Backend, stats: BackendStats, trial: Bool) {
        self.backend = backend
        self.stats = stats
        self.trialPending = trial
    }
}

/// What a connection or request taught about its backend.
enum Outcome {
    case success, failure, neutral
}

/// A route's balancing state, a value guarded by `RouteState`'s lock.
struct RouteCore {
    struct Member {
        var backend: Backend
        let stats: BackendStats
        var outlier = OutlierState()
    }

    var settings: RouteSettings
    var table = RouteTable()
    /// Backends of the table, and removed ones not yet reported with their last counts.
    var members: [Int: Member] = [:]
    /// Ids of the table's backends, in table order.
    var order: [Int] = []
    /// Backends that left the table with nothing open and were reported once: kept (bounded) so a
    /// backend that comes back (a readiness flap) keeps counts that only grow.
    var retired: [Int: Member] = [:]
    var retiredOrder: [Int] = []
    static let retiredLimit = 256
    var cursor = 0
    var canaryCredit = 0
    var refusedPending = 0
    var lastUnavailableReport: UInt64?
    var flushScheduled = false

    init(settings: RouteSettings) {
        self.settings = settings
    }

    mutating func apply(_ table: RouteTable) {
        self.table = table
        var order: [Int] = []
        order.reserveCapacity(table.backends.count)
        for backend in table.backends where !order.contains(backend.id) {
            order.append(backend.id)
            if members[backend.id] != nil {
                members[backend.id]!.backend = backend
            } else if var member = retired.removeValue(forKey: backend.id) {
                retiredOrder.removeAll { $0 == backend.id }
                member.backend = backend
                members[backend.id] = member
            } else {
                members[backend.id] = Member(backend: backend, stats: BackendStats())
            }
        }
        self.order = order
    }

    func inTable(_ id: Int) -> Bool { order.contains(id) }

    /// Smooth weighting: over any 100 consecutive choices exactly `canaryWeight` go to canary.
    mutating func chooseGroup() -> BackendGroup {
        let weight = table.canaryWeight
        if weight <= 0 { return .stable }
        if weight >= 100 { return .canary }
        canaryCredit += weight
        if canaryCredit >= 100 {
            canaryCredit -= 100
            return .canary
        }
        return .stable
    }

    func selectable(_ group: BackendGroup, now: UInt64, excluding: Set<Int> = []) -> Bool {
        order.contains { id in
            let m = members[id]!
            return m.backend.group == group && !excluding.contains(id) && m.outlier.availability(now: now) != .unavailable
        }
    }

    /// The group that takes the next connection: the chosen one, or the other when the chosen one
    /// has nothing to offer; nil when neither has.
    func effectiveGroup(_ wanted: BackendGroup, now: UInt64, excluding: Set<Int> = []) -> BackendGroup? {
        if selectable(wanted, now: now, excluding: excluding) { return wanted }
        let other: BackendGroup = wanted == .stable ? .canary : .stable
        if selectable(other, now: now, excluding: excluding) { return other }
        return nil
    }

    /// Least active connections in `group` (ties round-robin); a backend whose cool-down ended
    /// takes its one trial first. The lease holds one active slot.
    mutating func pick(group: BackendGroup, now: UInt64, excluding: Set<Int>) -> Lease? {
        let ids = order.filter { members[$0]!.backend.group == group && !excluding.contains($0) }
        guard !ids.isEmpty else { return nil }
        var best: Int?
        var bestActive = Int.max
        var bestOffset = 0
        for k in 0..<ids.count {
            let id = ids[(cursor &+ k) % ids.count]
            let m = members[id]!
            switch m.outlier.availability(now: now) {
            case .trial:
                members[id]!.outlier.beginTrial()
                m.stats.add(m.stats.active)
                return Lease(backend: m.backend, stats: m.stats, trial: true)
            case .available:
                let active = m.stats.active.load(ordering: .relaxed)
                if active < bestActive {
                    best = id
                    bestActive = active
                    bestOffset = k
                }
            case .unavailable:
                continue
            }
        }
        guard let id = best else { return nil }
        cursor = (cursor &+ bestOffset &+ 1) % max(ids.count, 1)
        let m = members[id]!
        m.stats.add(m.stats.active)
        return Lease(backend: m.backend, stats: m.stats, trial: false)
    }

    mutating func snapshot() -> [Int: BackendCounters] {
        var result: [Int: BackendCounters] = [:]
        var done: [Int] = []
        for (id, m) in members {
            let c = m.stats.counters(ejected: m.outlier.isEjected)
            result[id] = c
            if c.active == 0 && !inTable(id) { done.append(id) }
        }
        for id in done {
            retired[id] = members.removeValue(forKey: id)
            retiredOrder.append(id)
        }
        while retiredOrder.count > Self.retiredLimit {
            retired.removeValue(forKey: retiredOrder.removeFirst())
        }
        return result
    }
}

/// A route: its settings, table, members and counters, shared by the router's threads.
final class RouteState: Sendable {
    let name: String
    private let core: NIOLockedValueBox<RouteCore>
    private let emit: @Sendable ([RouterEvent]) -> Void
    private let scheduler: any EventLoop

    init(name: String, settings: RouteSettings, scheduler: any EventLoop, emit: @escaping @Sendable ([RouterEvent]) -> Void) {
        self.name = name
        self.core = NIOLockedValueBox(RouteCore(settings: settings))
        self.scheduler = scheduler
        self.emit = emit
    }

    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    var settings: RouteSettings {
        get { core.withLockedValue { $0.settings } }
        set { core.withLockedValue { $0.settings = newValue } }
    }

    func update(_ table: RouteTable) {
        core.withLockedValue { $0.apply(table) }
    }

    func snapshot() -> [Int: BackendCounters] {
        core.withLockedValue { $0.snapshot() }
    }

    func isInTable(_ id: Int) -> Bool {
        core.withLockedValue { $0.inTable(id) }
    }

    /// tcp: a backend for a new connection, or nil (nothing can take it).
    func pick(excluding: Set<Int> = []) -> Lease? {
        let now = Self.now()
        return core.withLockedValue { core in
            let wanted = core.chooseGroup()
            guard let group = core.effectiveGroup(wanted, now: now, excluding: excluding) else { return nil }
            return core.pick(group: group, now: now, excluding: excluding)
        }
    }

    enum RequestChoice {
        case reuse(Int)
        case new(Lease)
        case none
    }

    /// http: where the next request goes. A backend connection the client already has (`open`,
    /// by backend id) is kept while its backend is in the table, in rotation and in the group
    /// this request was given; otherwise a new one is leased.
    func chooseForRequest(open: [Int], excluding: Set<Int> = []) -> RequestChoice {
        let now = Self.now()
        return core.withLockedValue { core in
            let wanted = core.chooseGroup()
            guard let group = core.effectiveGroup(wanted, now: now, excluding: excluding) else { return .none }
            for id in open where !excluding.contains(id) && core.inTable(id) {
                if let m = core.members[id], m.backend.group == group, m.outlier.availability(now: now) == .available {
                    return .reuse(id)
                }
            }
            if let lease = core.pick(group: group, now: now, excluding: excluding) { return .new(lease) }
            return .none
        }
    }

    /// The connection to the lease's backend was established.
    func connected(_ lease: Lease) {
        lease.stats.add(lease.stats.total)
    }

    /// http: one request forwarded on an open connection.
    func requestSent(_ lease: Lease) {
        lease.stats.add(lease.stats.total)
    }

    func connectFailed(_ lease: Lease) {
        lease.stats.add(lease.stats.connectErrors)
        report(lease, .failure)
        release(lease)
    }

    func reset(_ lease: Lease) {
        lease.stats.add(lease.stats.resets)
        report(lease, .failure)
    }

    func release(_ lease: Lease) {
        guard !lease.released else { return }
        lease.released = true
        lease.stats.add(lease.stats.active, -1)
        if lease.trialPending { report(lease, .neutral) }
    }

    func report(_ lease: Lease, _ outcome: Outcome) {
        let trial = lease.trialPending
        lease.trialPending = false
        let now = Self.now()
        let id = lease.backend.id
        let event: RouterEvent? = core.withLockedValue { core in
            guard core.members[id] != nil else { return nil }
            let settings = core.settings
            let transition: OutlierState.Transition?
            switch outcome {
            case .success: transition = core.members[id]!.outlier.recordSuccess(trial: trial)
            case .failure:
                transition = core.members[id]!.outlier.recordFailure(
                    trial: trial, now: now, threshold: settings.ejectionErrors, cooldown: settings.ejectionCooldown)
            case .neutral:
                core.members[id]!.outlier.recordNeutral(trial: trial)
                transition = nil
            }
            let backend = core.members[id]!.backend
            switch transition {
            case .ejected(let n)?:
                return .ejected(route: name, backend: id, name: backend.name, consecutive: n, cooldown: settings.ejectionCooldown)
            case .restored?:
                return .restored(route: name, backend: id, name: backend.name)
            case nil:
                return nil
            }
        }
        if let event { emit([event]) }
    }

    /// Nothing could take a connection or request: counted, an event at most once a second.
    func refused() {
        let now = Self.now()
        let (event, scheduleIn): (RouterEvent?, UInt64?) = core.withLockedValue { core in
            core.refusedPending += 1
            if let last = core.lastUnavailableReport, now &- last < 1_000_000_000 {
                if core.flushScheduled { return (nil, nil) }
                core.flushScheduled = true
                return (nil, last &+ 1_000_000_000 &- now)
            }
            let n = core.refusedPending
            core.refusedPending = 0
            core.lastUnavailableReport = now
            return (.unavailable(route: name, refused: n), nil)
        }
        if let event { emit([event]) }
        if let delay = scheduleIn {
            scheduler.scheduleTask(in: .nanoseconds(Int64(delay))) { [self] in
                self.flushRefused()
            }
        }
    }

    private func flushRefused() {
        let now = Self.now()
        let event: RouterEvent? = core.withLockedValue { core in
            core.flushScheduled = false
            guard core.refusedPending > 0 else { return nil }
            let n = core.refusedPending
            core.refusedPending = 0
            core.lastUnavailableReport = now
            return .unavailable(route: name, refused: n)
        }
        if let event { emit([event]) }
    }
}
