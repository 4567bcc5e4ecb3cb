import NIOCore
import NIOPosix

/// How long a backend connect may take before it counts as a connect error.
let backendConnectTimeout = TimeAmount.seconds(1)

func backendBootstrap(on eventLoop: any EventLoop) -> ClientBootstrap {
    ClientBootstrap(group: eventLoop)
        .connectTimeout(backendConnectTimeout)
        .channelOption(.allowRemoteHalfClosure, value: true)
        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
}

/// One proxied byte stream (a tcp connection, or an upgraded http one): its lease and what each
/// side did, to count resets and give the backend its verdict once.
final class ByteSession {
    let route: RouteState
    let lease: Lease
    var backendBytes = 0
    var clientBytes = 0
    var clientGone = false
    var clientEOF = false
    var verdictGiven: Bool
    var backendClosed = false

    init(route: RouteState, lease: Lease, verdictGiven: Bool = false) {
        self.route = route
        self.lease = lease
        self.verdictGiven = verdictGiven
    }

    func read(from side: GlueHandler.Side, bytes: Int) {
        switch side {
        case .client:
            clientBytes &+= bytes
            lease.stats.add(lease.stats.bytesIn, bytes)
        case .backend:
            backendBytes &+= bytes
            lease.stats.add(lease.stats.bytesOut, bytes)
            if !verdictGiven {
                verdictGiven = true
                route.report(lease, .success)
            }
        }
    }

    /// The backend's side ended (EOF or closed). Before any answer, while the client was still
    /// there (and had said something, if it half-closed), that is a reset.
    func backendEnded() {
        guard !verdictGiven else { return }
        verdictGiven = true
        if !clientGone && backendBytes == 0 && (!clientEOF || clientBytes > 0) {
            route.reset(lease)
        } else {
            route.report(lease, .neutral)
        }
    }

    func backendInactive() {
        guard !backendClosed else { return }
        backendClosed = true
        backendEnded()
        route.release(lease)
    }
}

/// NIO's GlueHandler pattern (swift-nio-examples, NIOConnectProxy): two of these, one in each
/// channel's pipeline on the same event loop, pass bytes across. A side reads only while its
/// partner is writable (backpressure); EOF on one side shuts the other's output (half-close); a
/// side that closes makes the other flush what it has and close.
final class GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Side { case client, backend }

    let side: Side
    let session: ByteSession
    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    init(side: Side, session: ByteSession) {
        self.side = side
        self.session = session
    }

    static func pair(session: ByteSession) -> (client: GlueHandler, backend: GlueHandler) {
        let client = GlueHandler(side: .client, session: session)
        let backend = GlueHandler(side: .backend, session: session)
        client.partner = backend
        backend.partner = client
        return (client, backend)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    // MARK: called by the partner

    private func partnerWrite(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerWriteEOF() {
        context?.close(mode: .output, promise: nil)
    }

    /// The partner's channel closed: send what is queued, then close.
    private func partnerClosed() {
        guard let context else { return }
        if side == .backend { session.clientGone = true }
        context.flush()
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.close(mode: .output, promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    private var partnerWritable: Bool {
        context?.channel.isWritable ?? false
    }

    // MARK: ChannelDuplexHandler

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        session.read(from: side, bytes: buffer.readableBytes)
        partner?.partnerWrite(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch side {
        case .client: session.clientGone = true
        case .backend: session.backendInactive()
        }
        partner?.partnerClosed()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            switch side {
            case .client: session.clientEOF = true
            case .backend: session.backendEnded()
            }
            partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

/// A tcp route's accepted connection until its backend is connected: it holds the client's reads,
/// leases a backend, connects (a failure is retried once on another backend), then hands over to
/// a pair of `GlueHandler`s. With no backend to take it, the client is closed at once.
final class TCPFrontHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private let route: RouteState
    private var clientGone = false
    private var readPending = false

    init(route: RouteState) {
        self.route = route
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        attempt(context: context, tried: [])
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientGone = true
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        // Nothing is read from the client until its backend is there.
        readPending = true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Not reached: reads are held. Keep the bytes in order if it ever is.
        context.fireChannelRead(data)
    }

    private func attempt(context: ChannelHandlerContext, tried: Set<Int>) {
        guard let lease = route.pick(excluding: tried) else {
            route.refused()
            context.close(promise: nil)
            return
        }
        backendBootstrap(on: context.eventLoop)
            .connect(host: "127.0.0.1", port: lease.backend.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .failure:
                    self.route.connectFailed(lease)
                    if self.clientGone { return }
                    if tried.isEmpty {
                        self.attempt(context: context, tried: [lease.backend.id])
                    } else {
                        self.route.refused()
                        context.close(promise: nil)
                    }
                case .success(let backend):
                    self.route.connected(lease)
                    self.connected(context: context, backend: backend, lease: lease)
                }
            }
    }

    private func connected(context: ChannelHandlerContext, backend: any Channel, lease: Lease) {
        let session = ByteSession(route: route, lease: lease)
        if clientGone {
            session.clientGone = true
            backend.close(promise: nil)
            session.backendInactive()
            return
        }
        let (clientGlue, backendGlue) = GlueHandler.pair(session: session)
        do {
            try backend.pipeline.syncOperations.addHandler(backendGlue)
            try context.pipeline.syncOperations.addHandler(clientGlue)
        } catch {
            backend.close(promise: nil)
            session.backendInactive()
            context.close(promise: nil)
            return
        }
        if !backend.isActive {
            // Closed between connect and now: the glue saw no channelInactive.
            session.backendInactive()
            context.close(promise: nil)
            return
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        // The glue now decides when to read.
        context.channel.read()
    }
}
