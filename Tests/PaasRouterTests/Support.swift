import Atomics
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import PaasRouter

#if canImport(Glibc)
import Glibc
#endif

// MARK: time and conditions

func monotonicNow() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// Polls `condition` until it holds or `seconds` pass.
@discardableResult
func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNow() + UInt64(seconds * 1e9)
    while monotonicNow() < deadline {
        if condition() { return true }
        usleep(2_000)
    }
    return condition()
}

/// A port nothing listens on (bound, then closed): connecting to it is refused.
func deadPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    _ = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    close(fd)
    return Int(UInt16(bigEndian: addr.sin_port))
}

// MARK: a blocking client on a real socket

final class TestClient {
    let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var sawEOF = false

    /// Connects to 127.0.0.1:port; reads time out after `timeout` seconds.
    init(port: Int, timeout: Double = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            throw TestError("connect to \(port): errno \(e)")
        }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// One recv into the buffer; false on EOF, error or timeout.
    @discardableResult
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 {
            if n == 0 { sawEOF = true }
            return false
        }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// A line without its newline; nil on EOF or timeout first.
    func readLine() -> String? {
        while true {
            if let i = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<i], as: UTF8.self)
                buffer.removeSubrange(...i)
                return line
            }
            if !fill() { return nil }
        }
    }

    func read(exactly n: Int) -> [UInt8]? {
        while buffer.count < n {
            if !fill() { return nil }
        }
        defer { buffer.removeSubrange(0..<n) }
        return Array(buffer[0..<n])
    }

    /// Everything until EOF (or timeout).
    func readToEOF() -> String {
        while fill() {}
        defer { buffer.removeAll() }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// True when the peer closed (EOF or reset) before `timeout` seconds.
    func waitClosed() -> Bool {
        while true {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    struct Response {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// One HTTP/1.1 response (Content-Length, chunked, or to EOF).
    func readResponse(head: Bool = false) -> Response? {
        guard let statusLine = readLine() else { return nil }
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        var headers: [(String, String)] = []
        while let line = readLine() {
            let line = line.hasSuffix("\r") ? String(line.dropLast()) : line
            if line.isEmpty { break }
            if let colon = line.firstIndex(of: ":") {
                headers.append(
                    (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: " ")))
            }
        }
        var response = Response(status: status, headers: headers, body: [])
        if head || status == 204 || status == 304 || status == 101 || (100..<200).contains(status) { return response }
        if let length = response.header("content-length").flatMap({ Int($0) }) {
            guard let body = read(exactly: length) else { return nil }
            response.body = body
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                guard let sizeLine = readLine() else { return nil }
                let size = Int(sizeLine.trimmingCharacters(in: "\r "), radix: 16) ?? 0
                if size == 0 {
                    while let l = readLine(), l != "\r" && !l.isEmpty {}
                    break
                }
                guard let chunk = read(exactly: size) else { return nil }
                response.body += chunk
                _ = readLine()
            }
        } else {
            response.body = Array(readToEOF().utf8)
        }
        return response
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}

struct TestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

// MARK: backends (NIO servers in the test process)

/// One NIO event loop group for every test backend.
let backendGroup = MultiThreadedEventLoopGroup(numberOfThreads: 2)

final class TestBackend: Sendable {
    enum Behaviour: Sendable {
        /// Writes "name\n" on connect, then echoes; EOF → shuts its output after the echo.
        case echo
        /// Echoes without a greeting.
        case quietEcho
        /// Closes every connection at once, saying nothing.
        case closeAtOnce
        /// Writes `chunk` bytes over and over while writable, counting them.
        case firehose
        /// HTTP/1.1: answers with its name and the request's headers; `/status/NNN` answers NNN;
        /// an `Upgrade:` request gets 101, then raw bytes are echoed.
        case http
        /// HTTP, every answer with this status.
        case httpStatus(Int)
        /// HTTP: answers every request with an endless chunked body, written while writable.
        case httpFirehose
    }

    let name: String
    let port: Int
    let channel: any Channel
    let accepted = ManagedAtomic<Int>(0)
    let written = ManagedAtomic<Int>(0)

    init(name: String, behaviour: Behaviour, port: Int = 0) throws {
        self.name = name
        let accepted = ManagedAtomic<Int>(0)
        let written = ManagedAtomic<Int>(0)
        self.channel = try ServerBootstrap(group: backendGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                accepted.wrappingIncrement(ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    switch behaviour {
                    case .echo: try ops.addHandler(EchoHandler(greeting: name))
                    case .quietEcho: try ops.addHandler(EchoHandler(greeting: nil))
                    case .closeAtOnce: try ops.addHandler(CloseAtOnceHandler())
                    case .firehose: try ops.addHandler(FirehoseHandler(written: written))
                    case .http:
                        try ops.configureHTTPServerPipeline(withServerUpgrade: ([], { _ in }))
                        try ops.addHandler(HTTPTestHandler(name: name))
                    case .httpFirehose:
                        try ops.configureHTTPServerPipeline()
                        try ops.addHandler(HTTPFirehoseHandler(written: written))
                    case .httpStatus(let code):
                        try ops.configureHTTPServerPipeline(withServerUpgrade: ([], { _ in }))
                        try ops.addHandler(HTTPTestHandler(name: name, status: code))
                    }
                }
            }
            .bind(host: "127.0.0.1", port: port).wait()
        self.port = channel.localAddress!.port!
        self.accepted_ = accepted
        self.written_ = written
    }

    private let accepted_: ManagedAtomic<Int>
    private let written_: ManagedAtomic<Int>
    var acceptedCount: Int { accepted_.load(ordering: .relaxed) }
    var writtenCount: Int { written_.load(ordering: .relaxed) }

    func backend(id: Int, group: BackendGroup = .stable) -> Backend {
        Backend(id: id, name: name, port: port, group: group)
    }

    func stop() { try? channel.close().wait() }
}

final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let greeting: String?
    init(greeting: String?) { self.greeting = greeting }

    func channelActive(context: ChannelHandlerContext) {
        if let greeting {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: greeting + "\n")), promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed {
            context.close(mode: .output, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

final class CloseAtOnceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    func channelActive(context: ChannelHandlerContext) { context.close(promise: nil) }
}

final class FirehoseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let written: ManagedAtomic<Int>
    let chunk = ByteBuffer(repeating: 0x61, count: 65536)
    init(written: ManagedAtomic<Int>) { self.written = written }

    func channelActive(context: ChannelHandlerContext) {
        pump(context)
        context.fireChannelActive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context) }

    private func pump(_ context: ChannelHandlerContext) {
        while context.channel.isActive && context.channel.isWritable {
            context.writeAndFlush(wrapOutboundOut(chunk), promise: nil)
            written.wrappingIncrement(by: chunk.readableBytes, ordering: .relaxed)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

final class HTTPTestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let name: String
    let fixedStatus: Int?
    var head: HTTPRequestHead?
    var body = 0
    init(name: String, status: Int? = nil) {
        self.name = name
        self.fixedStatus = status
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = 0
            if h.headers["expect"].first?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
            }
        case .body(let b):
            body += b.readableBytes
        case .end:
            guard let head else { return }
            respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        if head.headers.contains(name: "upgrade") {
            var headers = HTTPHeaders()
            headers.add(name: "Upgrade", value: head.headers["upgrade"].first ?? "echo")
            headers.add(name: "Connection", value: "Upgrade")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))), promise: nil)
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
            let pipeline = context.pipeline
            promise.futureResult.assumeIsolated().whenComplete { _ in
                let ops = pipeline.syncOperations
                do {
                    try ops.addHandler(EchoHandler(greeting: nil))
                    _ = try? ops.removeHandler(context: ops.context(handlerType: HTTPServerPipelineHandler.self))
                    _ = try? ops.removeHandler(context: ops.context(handlerType: HTTPServerProtocolErrorHandler.self))
                    _ = try? ops.removeHandler(context: ops.context(handlerType: NIOHTTPResponseHeadersValidator.self))
                    _ = try? ops.removeHandler(context: ops.context(handlerType: HTTPResponseEncoder.self))
                    _ = try? ops.removeHandler(context: ops.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self))
                    _ = try? ops.removeHandler(context: ops.context(handlerType: HTTPTestHandler.self))
                } catch {
                    context.close(promise: nil)
                }
            }
            return
        }
        var status = HTTPResponseStatus(statusCode: fixedStatus ?? 200)
        let parts = head.uri.split(separator: "/")
        if parts.count == 2, parts[0] == "status", let code = Int(parts[1]) {
            status = HTTPResponseStatus(statusCode: code)
        }
        var text = "backend=\(name)\nmethod=\(head.method.rawValue)\nuri=\(head.uri)\nbody=\(body)\n"
        for (n, v) in head.headers { text += "\(n.lowercased()): \(v)\n" }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: String(text.utf8.count))
        headers.add(name: "X-Backend", value: name)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

// MARK: a router for one test

/// A router with one route; `wakes` counts the wake calls.
final class RouterFixture {
    let router: Router
    let port: Int
    let name: String
    private var collected: [RouterEvent] = []

    init(
        mode: RouteMode = .tcp, name: String = "web", ejectionErrors: Int = 5, cooldown: UInt64 = 10_000_000_000,
        fallback: [UInt8]? = nil, threads: Int = 1, table: RouteTable? = nil
    ) throws {
        let wakes = ManagedAtomic<Int>(0)
        router = Router(threads: threads, wake: { wakes.wrappingIncrement(ordering: .relaxed) })
        self.name = name
        if let table { router.update(route: name, table: table) }
        port = try router.listen(
            RouteSettings(
                name: name, mode: mode, source: .port(0), ejectionErrors: ejectionErrors, ejectionCooldown: cooldown,
                fallbackPage: fallback, retryAfterSeconds: 7))
        self.wakesBox = wakes
    }

    private let wakesBox: ManagedAtomic<Int>
    var wakes: Int { wakesBox.load(ordering: .relaxed) }

    deinit { router.shutdown() }

    func update(_ backends: [Backend], canaryWeight: Int = 0) {
        router.update(route: name, table: RouteTable(backends: backends, canaryWeight: canaryWeight))
    }

    func snapshot() -> [Int: BackendCounters] { router.snapshot(route: name) }

    /// Every event so far (kept across calls).
    func allEvents() -> [RouterEvent] {
        collected += router.events()
        return collected
    }

    func connect(timeout: Double = 5) throws -> TestClient { try TestClient(port: port, timeout: timeout) }
}

final class HTTPFirehoseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let written: ManagedAtomic<Int>
    let chunk = ByteBuffer(repeating: 0x62, count: 65536)
    var answering = false
    init(written: ManagedAtomic<Int>) { self.written = written }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        answering = true
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok))), promise: nil)
        pump(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context) }

    private func pump(_ context: ChannelHandlerContext) {
        while answering && context.channel.isActive && context.channel.isWritable {
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            written.wrappingIncrement(by: chunk.readableBytes, ordering: .relaxed)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// A listening socket whose accept queue is full (backlog 0, never accepted): a connect to it
/// hangs until it times out.
final class StuckListener {
    let fd: Int32
    let port: Int
    private var fillers: [Int32] = []

    init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        listen(fd, 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        var fillers: [Int32] = []
        for _ in 0..<3 {
            let f = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(f, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            fillers.append(f)
        }
        self.fillers = fillers
        // Each filler's connect completes (writable) once the kernel has queued it: then the
        // backlog is full and the next connect hangs, which is what the test needs.
        for f in fillers {
            var p = pollfd(fd: f, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, 1000)
        }
    }

    deinit {
        for f in fillers { close(f) }
        close(fd)
    }
}
