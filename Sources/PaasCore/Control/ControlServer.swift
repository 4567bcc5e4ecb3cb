package import PaasConfig

/// Why the control socket could not be opened.
package enum ControlStartError: Error, Sendable, CustomStringConvertible {
    /// Another `paas up` holds this app's lock (running, or stopped by SIGSTOP/Ctrl-Z).
    case alreadyRunning(pid: Int?, lock: String, stopped: Bool = false)
    case system(SocketError)

    package var description: String {
        switch self {
        case .alreadyRunning(let pid, let lock, let stopped):
            if stopped, let pid {
                "paas up is already running for this app (pid \(pid), stopped: resume it with `fg` or `kill -CONT \(pid)`, or end it; lock \(lock))"
            } else {
                "paas up is already running for this app (\(pid.map { "pid \($0)" } ?? "pid unknown"), lock \(lock)); stop it first or use another --root"
            }
        case .system(let e): "could not open the control socket: \(e.description)"
        }
    }
}

/// A `logs` reply being streamed from the history ring as the client's socket drains
/// (never materialised whole: a client that does not read costs one chunk, not the ring).
package struct HistoryStream: Sendable {
    package var cursor: LogRing.Cursor
    /// Where the reply ends; nil for `logs -f`, which reads on to the newest line and then
    /// becomes a follower.
    package var end: LogRing.Cursor?
    package var filter: LogFilter

    package init(cursor: LogRing.Cursor, end: LogRing.Cursor?, filter: LogFilter) {
        self.cursor = cursor
        self.end = end
        self.filter = filter
    }
}

/// The server side of the control socket, driven by the supervisor loop: a non-blocking
/// listener and non-blocking connections, so a client that says nothing, sends garbage or
/// reads slowly never blocks the formation.
///
/// Bounds: at most ``maximumConnections`` at once (beyond that the oldest silent one is
/// evicted, else the listener pauses and clients wait in the kernel's backlog); a client
/// that has not sent a complete request, or does not read its reply, within
/// ``idleTimeout`` is closed; running out of descriptors pauses the listener instead of
/// spinning on `accept`; a `logs` reply is streamed in chunks of ``historyChunk``.
package final class ControlServer {
    /// One client connection.
    package struct Connection {
        package var fd: Int32
        var input: [UInt8] = []
        var output: [UInt8] = []
        /// Set for `logs -f`: which lines this follower wants.
        package var follow: LogFilter?
        /// Set while a `logs` reply streams from the ring.
        var history: HistoryStream?
        /// Whether a follow stream follows the history.
        var followAfterHistory = false
        var closeWhenFlushed = false
        var wantsWrite = false
        /// The first request line has arrived; later lines are ignored (one request per connection).
        var requestSeen = false
        /// The client shut down its sending side (or we stopped reading): finish the reply.
        var readClosed = false
        /// When bytes last moved either way (monotonic nanoseconds).
        var lastActivity: UInt64
        /// The largest line queued for a follower since its queue was last empty.
        var largestQueued = 0
    }

    /// A follower further behind than this plus the largest line in its queue is cut off.
    /// Measuring past the largest line means one huge line (a 1 MiB line, escaped up to six
    /// times in JSON) never cuts off a follower that keeps up.
    package static let followerLimit = 4 << 20
    /// A client without a complete request, or not reading a plain reply, for this long is closed.
    package static let idleTimeout: UInt64 = 10_000_000_000
    /// A silent connection younger than this is never evicted to make room: a client sends
    /// its request right after connecting.
    package static let evictionGrace: UInt64 = 100_000_000
    /// How long the listener rests after `accept` found no descriptor left.
    package static let descriptorPause: UInt64 = 250_000_000
    /// A history reply is formatted in chunks of about this many bytes, when the queue is
    /// below ``historyRefillBelow``.
    package static let historyChunk = 256 << 10
    package static let historyRefillBelow = 64 << 10
    /// At most this many connections at once: 64, or a quarter of the descriptor limit when
    /// that is lower, so that children's pipes always find descriptors.
    package static let maximumConnections = max(4, min(64, ResourceLimits.openFiles / 4))

    package let address: ControlAddress
    package let listenFD: Int32
    package private(set) var connections: [UInt64: Connection] = [:]
    private var nextToken: UInt64 = 1 << 32
    private let poller: Poller
    private let listenToken: UInt64
    /// The listener is out of the poll set: until a connection closes, or until this time.
    private var listenerPaused = false
    private var resumeAt: UInt64?
    /// The socket file this server made, to remove at exit only if it is still that file.
    private let socketIdentity: FileIdentity?
    /// Held for the life of `paas up`: it, not the socket, says that paas up runs here.
    private let lock: FileLock

    /// Takes the app's lock (refusing when another `paas up` holds it, even a stopped one),
    /// then binds the socket at the first of `candidates` that can hold it, replacing a
    /// stale socket file left by a killed paas. Registers the listener in `poller` under `token`.
    package init(candidates: [ControlAddress], locks: [ControlAddress], poller: Poller, token: UInt64) throws(ControlStartError) {
        self.poller = poller
        self.listenToken = token
        var taken: FileLock?
        var lastError: SocketError?
        for place in locks {
            do {
                if place.shared { try PrivateDirectory.makeOrVerify(place.directory) } else { try UnixSocket.makePrivateDirectory(place.directory) }
                taken = try FileLock(path: place.socket)
                break
            } catch let error as SocketError {
                lastError = error
            } catch let error as FileLock.Failure {
                switch error {
                case .held(let pid): throw .alreadyRunning(pid: pid, lock: place.socket, stopped: pid.map(Self.isStopped) ?? false)
                case .system(let e): lastError = e
                }
            } catch {
                lastError = SocketError(step: "lock \(place.socket)", code: nil)
            }
        }
        guard let taken else { throw .system(lastError ?? SocketError(step: "lock", code: nil)) }
        lock = taken
        for address in candidates {
            do {
                listenFD = try Self.bind(address)
                self.address = address
                socketIdentity = FileIdentity.of(link: address.socket)
                poller.add(listenFD, token: token)
                return
            } catch {
                lastError = error
            }
        }
        throw .system(lastError ?? SocketError(step: "bind", code: nil))
    }

    /// Whether `pid` is stopped (state T in /proc/PID/stat: SIGSTOP, Ctrl-Z).
    private static func isStopped(_ pid: Int) -> Bool {
        guard let stat = try? FileSystem.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")), close + 2 < stat.count else { return false }
        return stat[close + 2] == UInt8(ascii: "T")
    }

    private static func bind(_ address: ControlAddress) throws(SocketError) -> Int32 {
        if address.shared { try PrivateDirectory.makeOrVerify(address.directory) } else { try UnixSocket.makePrivateDirectory(address.directory) }
        do {
            return try UnixSocket.listen(address.socket)
        } catch where error.isInUse {
            // We hold the app's lock, so no paas up lives here: the file was left by one
            // that was killed. Replace it.
            UnixSocket.remove(address.socket)
            return try UnixSocket.listen(address.socket)
        }
    }

    deinit {
        for c in connections.values { FileDescriptorIO.close(c.fd) }
        FileDescriptorIO.close(listenFD)
        UnixSocket.remove(address.socket, ifStill: socketIdentity)
    }

    /// Whether `token` is one of this server's connections.
    package func owns(_ token: UInt64) -> Bool { connections[token] != nil }

    /// Accepts pending connections up to the cap; refuses those from another user.
    package func acceptAll() {
        let now = Clock.monotonicNanos()
        var failures = 0
        while true {
            if connections.count >= Self.maximumConnections && evictable(now: now).isEmpty {
                if connections.values.contains(where: { $0.follow == nil && $0.history == nil }) {
                    // Full of clients being served (or soon evictable, or timed out): let the
                    // rest wait in the backlog until one closes, or until the oldest silent one
                    // may be evicted.
                    pauseListener(until: oldestSilent()?.since.map { $0 + Self.evictionGrace })
                    return
                }
                // Full of followers, which never end by themselves: refuse, saying why.
                switch UnixSocket.accept(listenFD) {
                case .connection(let fd):
                    _ = UnixSocket.writeSome(fd, Array(Self.errorLine("too many control connections: \(connections.count) clients follow the logs; end one (paas logs -f), then try again").utf8)[...])
                    FileDescriptorIO.close(fd)
                    continue
                case .none:
                    return
                case .outOfDescriptors, .failed:
                    pauseListener(until: now + Self.descriptorPause)
                    return
                }
            }
            switch UnixSocket.accept(listenFD) {
            case .none:
                return
            case .failed:
                // One connection that failed on the way in (ECONNABORTED): try the next,
                // but never loop on an error that does not go away.
                failures += 1
                if failures > 16 { pauseListener(until: now + Self.descriptorPause); return }
            case .outOfDescriptors:
                if evictOldestSilent(now: now) { continue }
                pauseListener(until: now + Self.descriptorPause)
                return
            case .connection(let fd):
                // Room is made once someone is really waiting, not before.
                if connections.count >= Self.maximumConnections { _ = evictOldestSilent(now: now) }
                var c = Connection(fd: fd, lastActivity: now)
                let token = nextToken
                nextToken += 1
                if UnixSocket.peerUID(fd) != UnixSocket.currentUID {
                    c.output = Array(Self.errorLine("permission denied: the control socket only answers its owner").utf8)
                    c.closeWhenFlushed = true
                    c.requestSeen = true
                }
                connections[token] = c
                poller.add(fd, token: token)
                if c.closeWhenFlushed { flush(token) }
            }
        }
    }

    /// The connection that has sent nothing for longest, and since when.
    private func oldestSilent() -> (token: UInt64, since: UInt64?)? {
        var best: (UInt64, UInt64)?
        for (token, c) in connections where !c.requestSeen && c.input.isEmpty && c.follow == nil {
            if best == nil || c.lastActivity < best!.1 { best = (token, c.lastActivity) }
        }
        return best.map { ($0.0, $0.1) }
    }

    /// Closes the oldest connection that has sent nothing for at least ``evictionGrace``
    /// (and has nothing waiting to be read), with a line saying why. False when there is none.
    private func evictOldestSilent(now: UInt64) -> Bool {
        for (token, c) in evictable(now: now) {
            _ = UnixSocket.writeSome(c.fd, Array(Self.errorLine("closed: too many control connections and this one sent nothing").utf8)[...])
            close(token)
            return true
        }
        return false
    }

    /// Connections that have sent nothing (not even bytes still in the socket) for at least
    /// ``evictionGrace``, oldest first.
    private func evictable(now: UInt64) -> [(key: UInt64, value: Connection)] {
        connections.filter { !$0.value.requestSeen && $0.value.input.isEmpty && $0.value.follow == nil && $0.value.lastActivity + Self.evictionGrace <= now && !UnixSocket.hasPendingInput($0.value.fd) }
            .sorted { $0.value.lastActivity < $1.value.lastActivity }
    }

    private func pauseListener(until time: UInt64?) {
        if !listenerPaused {
            listenerPaused = true
            poller.remove(listenFD)
        }
        resumeAt = time
    }

    private func resumeListener() {
        guard listenerPaused else { return }
        listenerPaused = false
        resumeAt = nil
        poller.add(listenFD, token: listenToken)
    }

    /// The earliest time ``tick(now:)`` has work: an idle connection's deadline, or the
    /// listener's rest ending.
    package var nextDeadline: UInt64? {
        var next = listenerPaused ? resumeAt : nil
        for c in connections.values where c.follow == nil && c.history == nil {
            let t = c.lastActivity + Self.idleTimeout
            if next == nil || t < next! { next = t }
        }
        return next
    }

    /// Closes connections idle past ``idleTimeout`` and resumes a resting listener.
    package func tick(now: UInt64) {
        for (token, c) in connections where c.follow == nil && c.history == nil && c.lastActivity + Self.idleTimeout <= now {
            let why = c.requestSeen ? "closed: the reply was not read within \(Self.idleTimeout / 1_000_000_000) s" : "closed: no complete request within \(Self.idleTimeout / 1_000_000_000) s"
            _ = UnixSocket.writeSome(c.fd, Array(Self.errorLine(why).utf8)[...])
            close(token)
        }
        if listenerPaused, let resumeAt, resumeAt <= now { resumeListener() }
    }

    /// Reads what a connection sent and returns its request line once complete (only the
    /// first: one request per connection, later lines are ignored). Closes the connection
    /// on end-of-file before a request, or on an oversized line; after a request, an
    /// end-of-file (a client that shut down its sending side) lets the reply finish.
    package func readRequest(_ token: UInt64) -> ArraySlice<UInt8>? {
        guard var c = connections[token] else { return nil }
        if c.readClosed {
            // Only a hang-up wakes us now: the peer is gone both ways, or the reply is done.
            flush(token)
            if let left = connections[token], left.output.isEmpty && left.history == nil { close(token) }
            return nil
        }
        guard let bytes = UnixSocket.readAvailable(c.fd) else {
            if c.requestSeen && c.follow == nil {
                // A half-close after the request: stop reading, finish writing the reply.
                c.readClosed = true
                connections[token] = c
                poller.modify(c.fd, token: token, readable: false, writable: c.wantsWrite)
                return nil
            }
            // The client hung up: a follower's end or a finished exchange.
            close(token)
            return nil
        }
        if bytes.isEmpty { return nil }
        c.lastActivity = Clock.monotonicNanos()
        if c.requestSeen || c.closeWhenFlushed {
            connections[token] = c
            return nil
        }
        c.input.append(contentsOf: bytes)
        if let nl = c.input.firstIndex(of: 10) {
            let line = Array(c.input[..<nl])
            c.input = []
            c.requestSeen = true
            connections[token] = c
            return line[...]
        }
        if c.input.count > ControlProtocol.maximumRequest {
            c.input = []
            c.requestSeen = true
            c.output.append(contentsOf: Self.errorLine("request too long: expected one JSON object of at most \(ControlProtocol.maximumRequest) bytes per line").utf8)
            c.closeWhenFlushed = true
            connections[token] = c
            flush(token)
            return nil
        }
        connections[token] = c
        return nil
    }

    /// Queues `text` (one or more lines) for a connection and writes what it can now.
    package func send(_ token: UInt64, _ text: [UInt8], thenClose: Bool = false) {
        guard var c = connections[token] else { return }
        c.output.append(contentsOf: text)
        if thenClose { c.closeWhenFlushed = true }
        connections[token] = c
        flush(token)
    }

    /// Starts streaming a `logs` reply from the ring; `first` is its first line. With
    /// `follow`, the connection becomes a follower once the history has caught up.
    package func beginHistory(_ token: UInt64, _ history: HistoryStream, follow: Bool, first: [UInt8]) {
        guard var c = connections[token] else { return }
        c.history = history
        c.followAfterHistory = follow
        c.output.append(contentsOf: first)
        connections[token] = c
        flush(token)
    }

    /// The history streams whose queue is low enough for the next chunk.
    package func historiesWanted() -> [(token: UInt64, stream: HistoryStream)] {
        connections.compactMap { token, c in
            guard let h = c.history, c.output.count < Self.historyRefillBelow else { return nil }
            return (token, h)
        }
    }

    /// What the next chunk of a history stream ended in.
    package enum HistoryStep {
        /// More to come, from this place.
        case more(HistoryStream)
        /// The reply is complete (for `logs -f`: caught up with the newest line).
        case done
        /// The ring dropped the lines at the cursor before the client read them.
        case lost
    }

    /// Queues the next chunk of a history stream and moves it on.
    package func continueHistory(_ token: UInt64, _ chunk: [UInt8], _ step: HistoryStep) {
        guard var c = connections[token], let h = c.history else { return }
        c.output.append(contentsOf: chunk)
        switch step {
        case .more(let next):
            c.history = next
        case .done:
            c.history = nil
            if c.followAfterHistory {
                c.follow = h.filter
                followers[token] = h.filter
            } else {
                c.closeWhenFlushed = true
            }
        case .lost:
            c.history = nil
            c.output.append(contentsOf: Self.errorLine("cut off: this client read the history more slowly than new lines replaced it").utf8)
            c.closeWhenFlushed = true
        }
        connections[token] = c
        flush(token)
    }

    /// The connections that follow the event stream, and what they want (checked per line).
    package private(set) var followers: [UInt64: LogFilter] = [:]

    /// Queues a line for a follower; one that is really behind is cut off.
    package func push(_ token: UInt64, _ line: [UInt8]) {
        guard var c = connections[token], c.follow != nil else { return }
        if c.output.count > Self.followerLimit + c.largestQueued {
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
        c.largestQueued = max(c.largestQueued, line.count)
        connections[token] = c
        flush(token)
    }

    /// Writes queued output; watches for writability while some remains.
    package func flush(_ token: UInt64) {
        guard var c = connections[token] else { return }
        if !c.output.isEmpty {
            guard let n = UnixSocket.writeSome(c.fd, c.output[...]) else { close(token); return }
            if n > 0 {
                c.output.removeFirst(n)
                c.lastActivity = Clock.monotonicNanos()
            }
        }
        if c.output.isEmpty {
            c.largestQueued = 0
            if c.closeWhenFlushed { close(token); return }
        }
        // A history stream wants writability while it has more to send: the next chunk is
        // formatted when the queue drains.
        let wants = !c.output.isEmpty
        if wants != c.wantsWrite {
            c.wantsWrite = wants
            poller.modify(c.fd, token: token, readable: !c.readClosed, writable: wants)
        }
        connections[token] = c
    }

    /// Closes a connection.
    package func close(_ token: UInt64) {
        guard let c = connections.removeValue(forKey: token) else { return }
        followers[token] = nil
        poller.remove(c.fd)
        FileDescriptorIO.close(c.fd)
        if listenerPaused && resumeAt == nil && connections.count < Self.maximumConnections { resumeListener() }
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
