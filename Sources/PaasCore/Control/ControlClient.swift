package import PaasConfig

/// Why a control command could not talk to `paas up`.
package enum ControlClientError: Error, Sendable, CustomStringConvertible {
    /// Nothing listens for this root: no `paas up` runs.
    case notRunning(String)
    case failed(String)

    package var description: String {
        switch self {
        case .notRunning(let socket): "no paas up is running for this app (no control socket answers at \(socket))"
        case .failed(let why): why
        }
    }
}

/// The client side of the control socket, used by `paas ps|scale|restart|stop|logs`.
package enum ControlClient {
    /// Sends `request` and returns every reply line, parsed. One request per connection:
    /// the server closes it after replying.
    package static func send(_ request: ControlRequest, to sockets: [String], timeoutSeconds: Double = 30) throws(ControlClientError) -> [JSON] {
        var lines: [JSON] = []
        try stream(request, to: sockets, timeoutSeconds: timeoutSeconds) { lines.append($0); return true }
        return lines
    }

    /// Sends `request` and hands each reply line to `onLine` until the server closes the
    /// connection or `onLine` returns false.
    package static func stream(_ request: ControlRequest, to sockets: [String], timeoutSeconds: Double? = 30, _ onLine: (JSON) -> Bool) throws(ControlClientError) {
        var connected: Int32?
        for socket in sockets {
            do {
                connected = try UnixSocket.connect(socket)
                break
            } catch {
                if error.isRefused || error.isMissing { continue }
                throw .failed("could not reach paas up: \(error.description)")
            }
        }
        guard let fd = connected else { throw .notRunning(sockets.first ?? "") }
        defer { FileDescriptorIO.close(fd) }
        if let timeoutSeconds { UnixSocket.setReceiveTimeout(fd, seconds: timeoutSeconds) }
        guard FileDescriptorIO.writeAll(fd, Array((request.encoded() + "\n").utf8)) else {
            throw .failed("could not send the request to paas up")
        }
        var pending: [UInt8] = []
        while let bytes = UnixSocket.readBlocking(fd) {
            pending.append(contentsOf: bytes)
            var start = 0
            while let nl = pending[start...].firstIndex(of: 10) {
                let line = pending[start..<nl]
                start = nl + 1
                guard let json = try? JSONParser.parse(line) else { throw .failed("paas up sent a malformed reply") }
                if !onLine(json) { return }
            }
            pending.removeFirst(start)
        }
    }
}
