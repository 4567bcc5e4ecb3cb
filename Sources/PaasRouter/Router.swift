import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The router: public listeners on its own event loop threads, forwarding to backends by table
/// (see `RouterAPI.swift` for the contract with the owner loop).
package final class Router: Sendable {
    private struct State {
        var routes: [String: RouteState] = [:]
        var listeners: [String: any Channel] = [:]
        var events: [RouterEvent] = []
        var isShutdown = false
    }

    /// Events kept for `events()` at most; older ones are dropped (the loop reads them when woken).
    static let eventLimit = 4096

    private let group: MultiThreadedEventLoopGroup
    private let wake: @Sendable () -> Void
    private let state = NIOLockedValueBox(State())

    /// `threads` event-loop threads (default: 1); `wake` is called from a router thread whenever
    /// `events()` has something new.
    package init(threads: Int = 1, wake: @escaping @Sendable () -> Void) {
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        self.wake = wake
    }

    private func route(named name: String, settings: RouteSettings? = nil) -> RouteState {
        let (route, created) = state.withLockedValue { state -> (RouteState, Bool) in
            if let route = state.routes[name] { return (route, false) }
            let route = RouteState(
                name: name,
                settings: settings ?? RouteSettings(name: name, mode: .tcp, source: .port(0)),
                scheduler: group.next(),
                emit: { [weak self] events in self?.post(events) }
            )
            state.routes[name] = route
            return (route, true)
        }
        if !created, let settings { route.settings = settings }
        return route
    }

    private func post(_ events: [RouterEvent]) {
        state.withLockedValue { state in
            state.events.append(contentsOf: events)
            if state.events.count > Self.eventLimit {
                state.events.removeFirst(state.events.count - Self.eventLimit)
            }
        }
        wake()
    }

    /// Opens the route's listener and returns the bound port. Blocks until bound or failed.
    package func listen(_ settings: RouteSettings) throws(RouterError) -> Int {
        if state.withLockedValue({ $0.isShutdown }) { throw RouterError("the router is shut down") }
        if state.withLockedValue({ $0.listeners[settings.name] != nil }) {
            throw RouterError("route \(settings.name) is already listening")
        }
        let route = self.route(named: settings.name, settings: settings)
        let mode = settings.mode
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // EMFILE/ENFILE on accept: back off instead of spinning.
                    try channel.pipeline.syncOperations.addHandler(
                        AcceptBackoffHandler(shouldForwardIOErrorCaught: false, backoffProvider: { _ in .milliseconds(100) }))
                }
            }
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    switch mode {
                    case .tcp:
                        try channel.pipeline.syncOperations.addHandler(TCPFrontHandler(route: route))
                    case .http:
                        try HTTPFrontHandler.configure(channel: channel, route: route)
                    }
                }
            }
        let channel: any Channel
        do {
            switch settings.source {
            case .port(let port):
                channel = try bootstrap.bind(host: "0.0.0.0", port: port).wait()
            case .descriptor(let fd):
                channel = try bootstrap.withBoundSocket(fd).wait()
            }
        } catch {
            throw RouterError(Self.describe(error, source: settings.source))
        }
        let taken = state.withLockedValue { state -> Bool in
            if state.isShutdown || state.listeners[settings.name] != nil { return true }
            state.listeners[settings.name] = channel
            return false
        }
        if taken {
            channel.close(promise: nil)
            throw RouterError("route \(settings.name) is already listening")
        }
        return channel.localAddress?.port ?? 0
    }

    private static func describe(_ error: any Error, source: ListenSource) -> String {
        let what: String
        switch source {
        case .port(let port): what = "port \(port)"
        case .descriptor(let fd): what = "descriptor \(fd)"
        }
        if let io = error as? IOError {
            return "\(what)\(ListenErrno.phrase(io.errnoCode) ?? ": \(io.description)")"
        }
        return "\(what): \(error)"
    }

    /// Swaps the route's table in one step (new connections see it; open ones stay).
    package func update(route name: String, table: RouteTable) {
        route(named: name).update(table)
    }

    /// Per-backend counters of the route, by `Backend.id`.
    package func snapshot(route name: String) -> [Int: BackendCounters] {
        guard let route = state.withLockedValue({ $0.routes[name] }) else { return [:] }
        return route.snapshot()
    }

    /// Events since the last call.
    package func events() -> [RouterEvent] {
        state.withLockedValue { state in
            defer { state.events.removeAll() }
            return state.events
        }
    }

    /// Stops accepting on the route; open connections go on.
    package func close(route name: String) {
        let channel = state.withLockedValue { $0.listeners.removeValue(forKey: name) }
        guard let channel else { return }
        try? channel.close().wait()
    }

    /// Closes every listener and connection and joins the threads.
    package func shutdown() {
        let channels = state.withLockedValue { state -> [any Channel]? in
            if state.isShutdown { return nil }
            state.isShutdown = true
            defer { state.listeners.removeAll() }
            return Array(state.listeners.values)
        }
        guard let channels else { return }
        for channel in channels { try? channel.close().wait() }
        try? group.syncShutdownGracefully()
    }

    deinit {
        if !state.withLockedValue({ $0.isShutdown }) {
            group.shutdownGracefully { _ in }
        }
    }
}
