import NIOCore
import NIOHTTP1
import NIOPosix

/// http mode: an accepted connection gets NIO's HTTP/1.1 server pipeline (in-order responses,
/// protocol errors answered 400) and an `HTTPProxyHandler` that forwards each request.
enum HTTPFrontHandler {
    static func configure(channel: any Channel, route: RouteState) throws {
        let ops = channel.pipeline.syncOperations
        // An upgrade configuration with no upgraders: every request passes through, but the
        // request decoder forwards the bytes after an upgrade instead of dropping them.
        try ops.configureHTTPServerPipeline(
            withPipeliningAssistance: true, withServerUpgrade: ([], { _ in }), withErrorHandling: true)
        try ops.addHandler(HTTPProxyHandler(route: route))
    }
}

/// Headers that belong to one hop (RFC 9110 7.6.1), never forwarded as they are.
private let hopByHop: Set<String> = [
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authenticate",
    "proxy-authorization",
]

private func stripHopByHop(_ headers: inout HTTPHeaders) {
    let named = headers[canonicalForm: "connection"].map { $0.lowercased() }
    for name in hopByHop.union(named) { headers.remove(name: name) }
}

/// The largest request (head and body) kept whole so it can be sent again on a fresh connection
/// when a reused keep-alive connection turns out closed.
private let retainLimit = 64 * 1024

private func requestID() -> String {
    var rng = SystemRandomNumberGenerator()
    let a = rng.next() as UInt64
    let b = rng.next() as UInt64
    func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
    return hex(a) + hex(b)
}

/// One connection from the router to a backend, owned by one client connection.
final class HTTPBackendConnection {
    let channel: any Channel
    let route: RouteState
    let lease: Lease
    let handler: HTTPBackendHandler
    var busy = false
    var served = 0
    /// The backend's last response allowed another request.
    var reusable = true
    var closed = false
    /// Upgraded: its glue owns the lease now.
    var handedOver = false

    init(channel: any Channel, route: RouteState, lease: Lease, handler: HTTPBackendHandler) {
        self.channel = channel
        self.route = route
        self.lease = lease
        self.handler = handler
    }

    var id: Int { lease.backend.id }
    var idle: Bool { !busy && !closed && reusable }

    func close() {
        guard !closed else { return }
        channel.close(promise: nil)
    }
}

/// The backend side's last handler: passes responses to the client connection's proxy handler,
/// reading only while the client is writable.
final class HTTPBackendHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var owner: HTTPProxyHandler?
    weak var connection: HTTPBackendConnection?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    init(owner: HTTPProxyHandler) {
        self.owner = owner
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func send(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() { context?.flush() }

    func resumeRead() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection, let owner else { return }
        owner.backendRead(unwrapInboundIn(data), from: connection)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.flushClient()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection {
            connection.closed = true
            owner?.backendClosed(connection)
            if !connection.handedOver { connection.route.release(connection.lease) }
        }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let connection { owner?.backendWritable(connection) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if owner?.clientWritable ?? true {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

/// One client connection in http mode: each request goes to a backend connection chosen per
/// request (kept while its backend stays in the table and in the request's group), with
/// `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Request-Id`; no backend → `503` at once; a
/// `101` answer to an `Upgrade:` request turns both connections into a byte pipe.
final class HTTPProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// One request and its response.
    final class Exchange {
        var head: HTTPRequestHead
        let clientVersion: HTTPVersion
        var clientKeepAlive: Bool
        let isUpgrade: Bool
        /// Parts not yet written to a backend.
        var pending: [HTTPClientRequestPart] = []
        /// Every part so far while the request is small, to send it again on a fresh connection.
        var retained: [HTTPClientRequestPart]? = []
        var retainedBytes = 0
        var requestEnded = false
        var conn: HTTPBackendConnection?
        var connecting = false
        var tried: Set<Int> = []
        var connectFailures = 0
        var resent = false
        var local = false
        var responseStarted = false
        var responseEnded = false
        var upgrading = false
        var sentAt: UInt64 = 0

        init(head: HTTPRequestHead, clientVersion: HTTPVersion, clientKeepAlive: Bool, isUpgrade: Bool) {
            self.head = head
            self.clientVersion = clientVersion
            self.clientKeepAlive = clientKeepAlive
            self.isUpgrade = isUpgrade
        }

        func add(_ part: HTTPClientRequestPart) {
            if retained != nil {
                if case .body(.byteBuffer(let b)) = part { retainedBytes += b.readableBytes }
                if retainedBytes > retainLimit {
                    retained = nil
                } else {
                    retained!.append(part)
                }
            }
        }
    }

    private let route: RouteState
    private var context: ChannelHandlerContext?
    private var conns: [HTTPBackendConnection] = []
    private var exchange: Exchange?
    private var pendingRead = false
    private var closeAfterResponse = false
    private var clientGone = false
    private var clientAddress: String?

    init(route: RouteState) {
        self.route = route
    }

    var clientWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientAddress = context.channel.remoteAddress?.ipAddress
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let ex = makeExchange(head)
            exchange = ex
            ex.add(.head(ex.head))
            ex.pending.append(.head(ex.head))
            dispatch(ex)
        case .body(let buffer):
            guard let ex = exchange else { return }
            forward(.body(.byteBuffer(buffer)), ex)
        case .end(let trailers):
            guard let ex = exchange else { return }
            ex.requestEnded = true
            forward(.end(trailers), ex)
            finishIfDone(ex)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let conn = exchange?.conn { conn.handler.flush() }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            if exchange == nil {
                context.close(promise: nil)
            } else {
                closeAfterResponse = true
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientGone = true
        for conn in conns { conn.close() }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for conn in conns { conn.handler.resumeRead() }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if let ex = exchange, !ex.local, ex.conn.map({ !$0.channel.isWritable }) ?? true {
            pendingRead = true
            return
        }
        context.read()
    }

    private func resumeClientRead() {
        guard pendingRead, let context else { return }
        if let ex = exchange, !ex.local, ex.conn.map({ !$0.channel.isWritable }) ?? true { return }
        pendingRead = false
        context.read()
    }

    func flushClient() { context?.flush() }

    private func makeExchange(_ clientHead: HTTPRequestHead) -> Exchange {
        var head = clientHead
        // As the request decoder sees it (it stops parsing after such a request): an Upgrade
        // header named in Connection, or CONNECT (not tunnelled: answered, then closed).
        let connection = head.headers[canonicalForm: "connection"].map { $0.lowercased() }
        let upgrade = head.headers["upgrade"]
        let isUpgrade = !upgrade.isEmpty && connection.contains("upgrade")
        let stopsParsing = isUpgrade || head.method == .CONNECT
        stripHopByHop(&head.headers)
        if isUpgrade {
            head.headers.add(name: "Connection", value: "Upgrade")
            for value in upgrade { head.headers.add(name: "Upgrade", value: value) }
        }
        if let address = clientAddress {
            let earlier = head.headers["x-forwarded-for"]
            head.headers.remove(name: "x-forwarded-for")
            head.headers.add(name: "X-Forwarded-For", value: (earlier + [address]).joined(separator: ", "))
        }
        head.headers.replaceOrAdd(name: "X-Forwarded-Proto", value: "http")
        if !head.headers.contains(name: "x-request-id") {
            head.headers.add(name: "X-Request-Id", value: requestID())
        }
        head.version = .http1_1
        return Exchange(
            head: head, clientVersion: clientHead.version, clientKeepAlive: clientHead.isKeepAlive && !stopsParsing,
            isUpgrade: isUpgrade)
    }

    private func forward(_ part: HTTPClientRequestPart, _ ex: Exchange) {
        guard !ex.local else { return }
        ex.add(part)
        if let conn = ex.conn {
            conn.handler.send(part)
        } else {
            ex.pending.append(part)
        }
    }

    // MARK: choosing a backend

    private func dispatch(_ ex: Exchange) {
        let idle = conns.filter(\.idle).map(\.id)
        switch route.chooseForRequest(open: idle, excluding: ex.tried) {
        case .none:
            route.refused()
            answerLocally(ex, status: .serviceUnavailable)
        case .reuse(let id):
            guard let conn = conns.first(where: { $0.idle && $0.id == id }) else {
                answerLocally(ex, status: .serviceUnavailable)
                return
            }
            attach(ex, conn)
        case .new(let lease):
            connect(ex, lease)
        }
    }

    private func connect(_ ex: Exchange, _ lease: Lease) {
        guard let context else {
            route.release(lease)
            return
        }
        ex.connecting = true
        let route = self.route
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(backendConnectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // 1xx answers (100 Continue, 103 Early Hints) are passed on to the client.
                    let decoder = HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward)
                    try channel.pipeline.syncOperations.addHandlers([HTTPRequestEncoder(), ByteToMessageHandler(decoder)])
                }
            }
            .connect(host: "127.0.0.1", port: lease.backend.port)
            .assumeIsolated()
            .whenComplete { result in
                ex.connecting = false
                switch result {
                case .failure:
                    route.connectFailed(lease)
                    guard self.exchange === ex, !self.clientGone else { return }
                    ex.connectFailures += 1
                    ex.tried.insert(lease.backend.id)
                    if ex.connectFailures < 2 {
                        self.dispatch(ex)
                    } else {
                        route.refused()
                        self.answerLocally(ex, status: .serviceUnavailable)
                    }
                case .success(let channel):
                    let handler = HTTPBackendHandler(owner: self)
                    let conn = HTTPBackendConnection(channel: channel, route: route, lease: lease, handler: handler)
                    handler.connection = conn
                    do {
                        try channel.pipeline.syncOperations.addHandler(handler)
                    } catch {
                        channel.close(promise: nil)
                    }
                    if !channel.isActive || self.clientGone || self.exchange !== ex {
                        conn.closed = true
                        channel.close(promise: nil)
                        route.release(lease)
                        if self.exchange === ex && !self.clientGone { self.dispatch(ex) }
                        return
                    }
                    self.conns.append(conn)
                    self.attach(ex, conn)
                }
            }
    }

    private func attach(_ ex: Exchange, _ conn: HTTPBackendConnection) {
        conn.busy = true
        ex.conn = conn
        conn.served += 1
        route.requestSent(conn.lease)
        ex.sentAt = RouteState.now()
        for part in ex.pending { conn.handler.send(part) }
        ex.pending.removeAll()
        conn.handler.flush()
        // Idle connections this client will not use again: the backend left the table, or
        // another connection now serves its group.
        for other in conns where other !== conn && other.idle {
            if !route.isInTable(other.id) || other.lease.backend.group == conn.lease.backend.group {
                other.close()
            }
        }
        resumeClientRead()
    }

    func backendWritable(_ conn: HTTPBackendConnection) {
        if exchange?.conn === conn { resumeClientRead() }
    }

    // MARK: backend side

    func backendRead(_ part: HTTPClientResponsePart, from conn: HTTPBackendConnection) {
        guard let context, let ex = exchange, ex.conn === conn else {
            // Nothing asked for it.
            conn.close()
            return
        }
        switch part {
        case .head(var head) where head.status.code < 200 && head.status.code != 101:
            stripHopByHop(&head.headers)
            head.version = ex.clientVersion
            if ex.clientVersion != .http1_0 {
                context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
            }
        case .head(var head):
            ex.responseStarted = true
            ex.retained = nil
            let stats = conn.lease.stats
            let code = Int(head.status.code)
            if (1...5).contains(code / 100) { stats.add(stats.statusClasses[code / 100 - 1]) }
            stats.addLatency(RouteState.now() &- ex.sentAt)
            route.report(conn.lease, code >= 500 ? .failure : .success)
            conn.reusable = head.isKeepAlive
            if code == 101 && ex.isUpgrade {
                ex.upgrading = true
            } else {
                stripHopByHop(&head.headers)
                if !ex.clientKeepAlive || closeAfterResponse {
                    ex.clientKeepAlive = false
                    head.headers.add(name: "Connection", value: "close")
                } else if ex.clientVersion == .http1_0 {
                    head.headers.add(name: "Connection", value: "keep-alive")
                }
                head.version = ex.clientVersion
            }
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .body(let buffer):
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end(let trailers):
            if ex.upgrading {
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                upgrade(ex, conn, context: context)
                return
            }
            completeResponse(ex, trailers: trailers)
        }
    }

    func backendClosed(_ conn: HTTPBackendConnection) {
        conns.removeAll { $0 === conn }
        guard let ex = exchange, ex.conn === conn, !ex.responseEnded else { return }
        ex.conn = nil
        if !ex.responseStarted {
            if conn.served > 1, !ex.resent, let parts = ex.retained {
                // A kept-alive connection the backend had closed: the request goes again, fresh.
                ex.resent = true
                ex.pending = parts
                dispatch(ex)
                return
            }
            route.reset(conn.lease)
            answerLocally(ex, status: .badGateway)
        } else {
            // Cut mid-answer: the client cannot get a whole response on this connection.
            context?.close(promise: nil)
        }
    }

    /// Writes the response's end. The exchange is settled first: writing the end lets NIO's
    /// pipelining handler deliver the client's next request at once, re-entrantly.
    private func completeResponse(_ ex: Exchange, trailers: HTTPHeaders?) {
        guard let context else { return }
        ex.responseEnded = true
        let done = settle(ex)
        context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
        if done { afterExchange(ex) }
    }

    /// The request ended after its response did.
    private func finishIfDone(_ ex: Exchange) {
        if settle(ex) { afterExchange(ex) }
    }

    private func settle(_ ex: Exchange) -> Bool {
        guard ex.requestEnded, ex.responseEnded, exchange === ex else { return false }
        exchange = nil
        if let conn = ex.conn {
            conn.busy = false
            if !conn.reusable { conn.close() }
        }
        return true
    }

    private func afterExchange(_ ex: Exchange) {
        if !ex.clientKeepAlive || closeAfterResponse {
            context?.close(promise: nil)
            return
        }
        resumeClientRead()
    }

    /// The router's own answer: `503` (with Retry-After and the fallback page) or `502`.
    private func answerLocally(_ ex: Exchange, status: HTTPResponseStatus) {
        guard let context else { return }
        ex.local = true
        ex.conn = nil
        ex.pending.removeAll()
        ex.retained = nil
        ex.responseStarted = true
        let settings = route.settings
        var body: ByteBuffer
        var headers = HTTPHeaders()
        if status == .serviceUnavailable {
            if let page = settings.fallbackPage {
                body = ByteBuffer(bytes: page)
                headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
            } else {
                body = ByteBuffer(string: "503 Service Unavailable: no instance of \(route.name) can take the request\n")
                headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            }
            headers.add(name: "Retry-After", value: String(settings.retryAfterSeconds))
        } else {
            body = ByteBuffer(string: "\(status.code) \(status.reasonPhrase)\n")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        }
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        if !ex.clientKeepAlive || closeAfterResponse {
            ex.clientKeepAlive = false
            headers.add(name: "Connection", value: "close")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: ex.clientVersion, status: status, headers: headers))), promise: nil)
        if ex.head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        completeResponse(ex, trailers: nil)
        // Reads of a request body still coming go on (and are dropped).
        if exchange === ex, pendingRead {
            pendingRead = false
            context.read()
        }
    }

    // MARK: upgrade

    /// `101`: both connections become a byte pipe (the GlueHandlers of tcp mode).
    private func upgrade(_ ex: Exchange, _ conn: HTTPBackendConnection, context: ChannelHandlerContext) {
        exchange = nil
        conn.handedOver = true
        conn.handler.owner = nil
        conns.removeAll { $0 === conn }
        for other in conns { other.close() }
        let client = context.channel
        let backend = conn.channel
        if conn.closed {
            route.release(conn.lease)
            context.close(promise: nil)
            return
        }
        let session = ByteSession(route: route, lease: conn.lease, verdictGiven: true)
        let (clientGlue, backendGlue) = GlueHandler.pair(session: session)
        let clientOps = client.pipeline.syncOperations
        let backendOps = backend.pipeline.syncOperations
        do {
            try backendOps.addHandler(backendGlue)
            try clientOps.addHandler(clientGlue)
            // First every handler on the way out, so the bytes the decoders still hold go out raw.
            func remove<H: RemovableChannelHandler>(_ ops: ChannelPipeline.SynchronousOperations, _ type: H.Type) {
                if let ctx = try? ops.context(handlerType: type) {
                    ops.removeHandler(context: ctx, promise: nil)
                }
            }
            remove(clientOps, HTTPServerUpgradeHandler.self)
            remove(clientOps, HTTPServerProtocolErrorHandler.self)
            remove(clientOps, NIOHTTPResponseHeadersValidator.self)
            remove(clientOps, HTTPServerPipelineHandler.self)
            remove(clientOps, HTTPResponseEncoder.self)
            remove(backendOps, HTTPBackendHandler.self)
            remove(backendOps, HTTPRequestEncoder.self)
            remove(backendOps, ByteToMessageHandler<HTTPResponseDecoder>.self)
            remove(clientOps, ByteToMessageHandler<HTTPRequestDecoder>.self)
            clientOps.removeHandler(context: context, promise: nil)
        } catch {
            backend.close(promise: nil)
            client.close(promise: nil)
            return
        }
        if !backend.isActive {
            session.backendInactive()
            client.close(promise: nil)
            return
        }
        client.read()
        backend.read()
    }
}
