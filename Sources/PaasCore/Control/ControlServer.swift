/// Why the control socket could not be opened.
package enum ControlStartError: Error, Sendable, CustomStringConvertible {
    /// Another `paas up` answers on this root's socket.
    case alreadyRunning(pid: Int?, socket: String)
    case system(SocketError)

    package var description: String {
        switch self {
        case .alreadyRunning(let pid, let socket):
            "paas up is already running for this app (\(pid.map { "pid \($0)" } ?? "pid unknown"), control socket \(socket)); stop it first or use another --root"
        case .system(let e): "could not open the control socket: \(e.description)"
        }
    }
}

/// The server side of the control socket, driven by the supervisor loop: a non-blocking
/// listener and non-blocking connections, so a client that says nothing, sends garbage or
/// reads slowly never blocks the formation.
package final class ControlServer {
    /// One client connection.
    package struct Connection {
        package var fd: Int32
        var input: [UInt8] = []
        var output: [UInt8] = []
        /// Set for `logs -f`: which lines this follower wants.
        package var follow: LogFilter?
        var closeWhenFlushed = false
        var wantsWrite = false
    }

    /// A follower that falls this far behind is cut off.
    package static let followerLimit = 1 << 20

    package let address: ControlAddress
    package let listenFD: Int32
    package private(set) var connections: [UInt64: Connection] = [:]
    private var nextToken: UInt64 = 1 << 32
    private let poller: Poller

    /// Binds the socket at the first of `candidates` that can hold it, taking over a stale
    /// one left by a killed paas and refusing when another paas up answers. Registers the
    /// listener in `poller` under `token`.
    package init(candidates: [ControlAddress], poller: Poller, token: UInt64) throws(ControlStartError) {
        self.poller = poller
        var lastError: SocketError?
        for address in candidates {
            // Another paas up may answer at any of the places: refuse if one does.
            if let pid = Self.probe(address.socket) { throw .alreadyRunning(pid: pid, socket: address.socket) }
        }
        for address in candidates {
            do {
                listenFD = try Self.bind(address)
                self.address = address
                poller.add(listenFD, token: token)
                return
            } catch .alreadyRunning(let pid, let socket) {
                throw .alreadyRunning(pid: pid, socket: socket)
            } catch .system(let e) {
                lastError = e
            }
        }
        throw .system(lastError ?? SocketError(step: "bind", code: 0))
    }

    private static func bind(_ address: ControlAddress) throws(ControlStartError) -> Int32 {
        do {
            try UnixSocket.makePrivateDirectory(address.directory)
        } catch {
            throw .system(error)
        }
        for _ in 0..<3 {
            do {
                return try UnixSocket.listen(address.socket)
            } catch where error.isInUse {
                // A socket file is there: alive, or left by a paas that was killed?
                if let pid = probe(address.socket) { throw .alreadyRunning(pid: pid, socket: address.socket) }
                UnixSocket.remove(address.socket)
            } catch {
                throw .system(error)
            }
        }
        throw .alreadyRunning(pid: nil, socket: address.socket)
    }

    deinit {
        for c in connections.values { FileDescriptorIO.close(c.fd) }
        FileDescriptorIO.close(listenFD)
        UnixSocket.remove(address.socket)
    }

    /// The pid of the paas answering at `socket`, or nil when nothing answers (stale).
    private static func probe(_ socket: String) -> Int? {
        guard FileSystem.exists(socket), let reply = try? ControlClient.send(.hello, to: [socket], timeoutSeconds: 2).first else { return nil }
        return reply["pid"]?.int ?? -1
    }

    /// Whether `token` is one of this server's connections.
    package func owns(_ token: UInt64) -> Bool { connections[token] != nil }

    /// Accepts every pending connection; refuses those from another user.
    package func acceptAll() {
        while let fd = UnixSocket.accept(listenFD) {
            var c = Connection(fd: fd)
            let token = nextToken
            nextToken += 1
            if UnixSocket.peerUID(fd) != UnixSocket.currentUID {
                c.output = Array(Self.errorLine("permission denied: the control socket only answers its owner").utf8)
                c.closeWhenFlushed = true
            }
            connections[token] = c
            poller.add(fd, token: token)
            if c.closeWhenFlushed { flush(token) }
        }
    }

    /// Reads what a connection sent and returns the complete request lines; closes it on
    /// end-of-file, on an oversized line, or when it only waits to be closed.
    package func readRequests(_ token: UInt64) -> [ArraySlice<UInt8>] {
        guard var c = connections[token] else { return [] }
        guard let bytes = UnixSocket.readAvailable(c.fd) else {
            // The client hung up; a follower's end or a finished exchange.
            close(token)
            return []
        }
        if c.closeWhenFlushed { return [] }
        c.input.append(contentsOf: bytes)
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        while let nl = c.input[start...].firstIndex(of: 10) {
            lines.append(c.input[start..<nl])
            start = nl + 1
        }
        let rest = Array(c.input[start...])
        if rest.count > ControlProtocol.maximumRequest {
            c.input = []
            c.output.append(contentsOf: Self.errorLine("request too long: expected one JSON object of at most \(ControlProtocol.maximumRequest) bytes per line").utf8)
            c.closeWhenFlushed = true
            connections[token] = c
            flush(token)
            return []
        }
        c.input = rest
        connections[token] = c
        return lines.map { Array($0)[...] }
    }

    /// Queues `text` (one or more lines) for a connection and writes what it can now.
    package func send(_ token: UInt64, _ text: [UInt8], thenClose: Bool = false) {
        guard var c = connections[token] else { return }
        c.output.append(contentsOf: text)
        if thenClose { c.closeWhenFlushed = true }
        connections[token] = c
        flush(token)
    }

    /// Makes `token` a follower of the event stream.
    package func follow(_ token: UInt64, _ filter: LogFilter) {
        guard connections[token] != nil else { return }
        connections[token]?.follow = filter
        followers[token] = filter
    }

    /// The connections that follow the event stream, and what they want (checked per line).
    package private(set) var followers: [UInt64: LogFilter] = [:]

    /// Queues a line for a follower; one that is too far behind is cut off.
    package func push(_ token: UInt64, _ line: [UInt8]) {
        guard var c = connections[token], c.follow != nil else { return }
        if c.output.count + line.count > Self.followerLimit {
            c.output = Array(Self.errorLine("cut off: this follower fell more than \(Self.followerLimit >> 20) MiB behind the event stream").utf8)
            c.follow = nil
            followers[token] = nil
            c.closeWhenFlushed = true
            connections[token] = c
            flush(token)
            if connections[token] != nil { close(token) }
            return
        }
        c.output.append(contentsOf: line)
        connections[token] = c
        flush(token)
    }

    /// Writes queued output; watches for writability while some remains.
    package func flush(_ token: UInt64) {
        guard var c = connections[token] else { return }
        if !c.output.isEmpty {
            guard let n = UnixSocket.writeSome(c.fd, c.output[...]) else { close(token); return }
            c.output.removeFirst(n)
        }
        if c.output.isEmpty && c.closeWhenFlushed { close(token); return }
        let wants = !c.output.isEmpty
        if wants != c.wantsWrite {
            c.wantsWrite = wants
            poller.modify(c.fd, token: token, readable: true, writable: wants)
        }
        connections[token] = c
    }

    /// Closes a connection.
    package func close(_ token: UInt64) {
        guard let c = connections.removeValue(forKey: token) else { return }
        followers[token] = nil
        poller.remove(c.fd)
        FileDescriptorIO.close(c.fd)
    }

    /// Closes every connection and the listener (paas is exiting).
    package func shutdown() {
        for token in Array(connections.keys) {
            flush(token)
            close(token)
        }
    }

    /// `{"v":1,"ok":false,"error":...}` and a newline.
    package static func errorLine(_ message: String, exitStatus: Int32? = nil) -> String {
        var fields: [(String, JSON)] = [("v", .int(ControlProtocol.version)), ("ok", .bool(false)), ("error", .string(message))]
        if let exitStatus { fields.append(("exit", .int(Int(exitStatus)))) }
        return JSON.object(fields).serialized() + "\n"
    }

    /// `{"v":1,"ok":true,...}` and a newline.
    package static func okLine(_ fields: [(String, JSON)]) -> String {
        JSON.object([("v", .int(ControlProtocol.version)), ("ok", .bool(true))] + fields).serialized() + "\n"
    }
}

/// Which lines of the event stream a `logs` request wants: by type or instance name
/// (`web`, `web.2`, `system`); empty means all.
package struct LogFilter: Sendable, Equatable {
    package var targets: Set<String>
    package func matches(name: String, type: String) -> Bool {
        targets.isEmpty || targets.contains(name) || targets.contains(type)
    }
}
