package import PaasConfig

/// The control protocol between a running `paas up` and `paas ps|scale|restart|stop|logs`:
/// one JSON object per line each way, over a Unix stream socket.
///
/// Request: `{"v":1,"cmd":"ps"}`, `{"v":1,"cmd":"scale","counts":{"web":4}}`,
/// `{"v":1,"cmd":"restart","targets":["web.2"]}`, `{"v":1,"cmd":"stop","targets":[]}`,
/// `{"v":1,"cmd":"logs","lines":200,"follow":false,"targets":["web"]}`.
/// Reply: `{"v":1,"ok":true,...}` or `{"v":1,"ok":false,"error":"..."}`; `logs` follows its
/// reply with one event object per line (the `--log-format json` shape plus `epoch`).
package enum ControlProtocol {
    package static let version = 1
    /// A request line longer than this is refused and the connection closed.
    package static let maximumRequest = 64 * 1024
    /// The largest `lines` a `logs` request may ask for (the history holds far fewer).
    package static let maximumLines = 1_000_000
    /// The largest count a `scale` request may ask for: every instance needs a port.
    package static let maximumCount = 65535
}

/// One decoded request.
package enum ControlRequest: Sendable, Equatable {
    case hello
    case ps
    case scale(FormationSpec)
    case restart([String])
    case stop([String])
    case logs(lines: Int, follow: Bool, targets: [String])
    case reload
    /// `paas rollout TYPE...`: a reload that replaces these types even when unchanged.
    case rollout(types: [String], overrides: RolloutOverrides)
    /// `paas rollout status`: what runs, how the last ones ended, decision lines from `since`.
    case rolloutStatus(since: Int)
    case rolloutPromote
    case rolloutAbort

    /// Decodes one request line; the error text goes back to the client as is.
    package static func decode(_ line: ArraySlice<UInt8>) -> Result<ControlRequest, ControlError> {
        let json: JSON
        do { json = try JSONParser.parse(line) } catch { return .failure(ControlError("malformed request: \(error.description)")) }
        guard json.objectPairs != nil else { return .failure(ControlError("malformed request: expected a JSON object")) }
        guard let v = json["v"]?.int else { return .failure(ControlError("missing \"v\": expected the protocol version \(ControlProtocol.version)")) }
        guard v == ControlProtocol.version else { return .failure(ControlError("unsupported protocol version \(v); this paas speaks \(ControlProtocol.version)")) }
        guard let cmd = json["cmd"]?.string else { return .failure(ControlError("missing \"cmd\"")) }
        func targets() -> Result<[String], ControlError> {
            guard let t = json["targets"] else { return .success([]) }
            guard let items = t.array, items.allSatisfy({ $0.string != nil }) else { return .failure(ControlError("\"targets\" must be an array of strings")) }
            return .success(items.compactMap(\.string))
        }
        switch cmd {
        case "hello": return .success(.hello)
        case "reload": return .success(.reload)
        case "ps": return .success(.ps)
        case "scale":
            guard let pairs = json["counts"]?.objectPairs, !pairs.isEmpty else { return .failure(ControlError("\"counts\" must be an object like {\"web\": 4}")) }
            var spec = FormationSpec()
            for (name, value) in pairs {
                // Range-checked here, before any port arithmetic sees it (a count near Int.max
                // used to overflow the port plan and trap).
                guard let n = value.int, (0...ControlProtocol.maximumCount).contains(n) else {
                    return .failure(ControlError("count for \(name) must be a whole number from 0 to \(ControlProtocol.maximumCount)"))
                }
                if name == "all" { spec.all = n; spec.counts.removeAll() } else { spec.counts.append((name, n)) }
            }
            return .success(.scale(spec))
        case "restart": return targets().map { .restart($0) }
        case "stop": return targets().map { .stop($0) }
        case "logs":
            var lines = 100
            if let value = json["lines"] {
                guard let n = value.int, (0...ControlProtocol.maximumLines).contains(n) else {
                    return .failure(ControlError("\"lines\" must be a whole number from 0 to \(ControlProtocol.maximumLines)"))
                }
                lines = n
            }
            var follow = false
            if let value = json["follow"] {
                guard let b = value.bool else { return .failure(ControlError("\"follow\" must be true or false")) }
                follow = b
            }
            return targets().map { .logs(lines: lines, follow: follow, targets: $0) }
        case "rollout":
            guard case .success(let types) = targets(), !types.isEmpty else { return .failure(ControlError("\"targets\" must name the process types to roll out")) }
            var o = RolloutOverrides()
            if let s = json["strategy"] {
                guard let name = s.string, let strategy = RolloutSettings.Strategy(rawValue: name) else {
                    return .failure(ControlError("\"strategy\" must be \"blue-green\", \"canary\" or \"rolling\""))
                }
                o.strategy = strategy
            }
            if let s = json["steps"] {
                guard let items = s.array, !items.isEmpty, items.allSatisfy({ $0.int.map { (1...100).contains($0) } ?? false }) else {
                    return .failure(ControlError("\"steps\" must be increasing percentages from 1 to 100 ending with 100"))
                }
                let steps = items.compactMap(\.int)
                guard steps.last == 100, zip(steps, steps.dropFirst()).allSatisfy({ $0 < $1 }) else {
                    return .failure(ControlError("\"steps\" must be increasing percentages from 1 to 100 ending with 100"))
                }
                o.steps = steps
            }
            if let s = json["step_duration_ms"] {
                guard let ms = s.int, (0...86_400_000).contains(ms) else { return .failure(ControlError("\"step_duration_ms\" must be from 0 to 86400000")) }
                o.stepDuration = UInt64(ms) * 1_000_000
            }
            return .success(.rollout(types: types, overrides: o))
        case "rollout-status":
            let since = json["since"]?.int ?? 0
            guard since >= 0 else { return .failure(ControlError("\"since\" must be 0 or more")) }
            return .success(.rolloutStatus(since: since))
        case "rollout-promote": return .success(.rolloutPromote)
        case "rollout-abort": return .success(.rolloutAbort)
        default:
            return .failure(ControlError("unknown command \"\(cmd)\"; expected hello, ps, scale, restart, stop, logs, reload, rollout, rollout-status, rollout-promote or rollout-abort"))
        }
    }

    /// The request as one line of JSON (no newline).
    package func encoded() -> String {
        var pairs: [(String, JSON)] = [("v", .int(ControlProtocol.version))]
        switch self {
        case .hello: pairs.append(("cmd", .string("hello")))
        case .reload: pairs.append(("cmd", .string("reload")))
        case .ps: pairs.append(("cmd", .string("ps")))
        case .scale(let spec):
            var counts: [(String, JSON)] = []
            if let all = spec.all { counts.append(("all", .int(all))) }
            counts += spec.counts.map { ($0.0, .int($0.1)) }
            pairs += [("cmd", .string("scale")), ("counts", .object(counts))]
        case .restart(let t): pairs += [("cmd", .string("restart")), ("targets", .array(t.map { .string($0) }))]
        case .stop(let t): pairs += [("cmd", .string("stop")), ("targets", .array(t.map { .string($0) }))]
        case .logs(let lines, let follow, let t):
            pairs += [("cmd", .string("logs")), ("lines", .int(lines)), ("follow", .bool(follow)), ("targets", .array(t.map { .string($0) }))]
        case .rollout(let types, let o):
            pairs += [("cmd", .string("rollout")), ("targets", .array(types.map { .string($0) }))]
            if let s = o.strategy { pairs.append(("strategy", .string(s.rawValue))) }
            if let steps = o.steps { pairs.append(("steps", .array(steps.map { .int($0) }))) }
            if let d = o.stepDuration { pairs.append(("step_duration_ms", .int(Int(d / 1_000_000)))) }
        case .rolloutStatus(let since): pairs += [("cmd", .string("rollout-status")), ("since", .int(since))]
        case .rolloutPromote: pairs.append(("cmd", .string("rollout-promote")))
        case .rolloutAbort: pairs.append(("cmd", .string("rollout-abort")))
        }
        return JSON.object(pairs).serialized()
    }
}

/// An error reply.
package struct ControlError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String
    /// The exit status the client should end with, when the refusal has one of its own
    /// (`paas reload` of a bad configuration: 78); else the client's usual one.
    package var exitStatus: Int32?
    package init(_ message: String, exitStatus: Int32? = nil) {
        self.message = message
        self.exitStatus = exitStatus
    }
    package var description: String { message }
}

/// Where the control socket of an app root lives: `ROOT/.paas/control.sock`, or, when that
/// path is too long for `sun_path` (108 bytes) or the root cannot hold it (read-only, or
/// missing), `$XDG_RUNTIME_DIR/paas/` (else `${TMPDIR:-/tmp}/paas-UID/`) with a name derived
/// from the root. Clients try the same places in the same order.
package struct ControlAddress: Sendable, Equatable {
    package var directory: String
    package var socket: String
    /// The directory is in a place other users can write to (`/tmp`, the runtime dir): it
    /// must already be ours, a real directory, mode 0700, or paas refuses it.
    package var shared = false

    /// The places, in order of preference.
    package static func candidates(root: String, environment: [String: String], uid: UInt32) -> [ControlAddress] {
        let dir = root.hasSuffix("/") ? root + ".paas" : root + "/.paas"
        let path = dir + "/control.sock"
        let base = environment["XDG_RUNTIME_DIR"].flatMap { $0.isEmpty ? nil : $0 + "/paas" } ?? sharedDirectory(environment: environment, uid: uid)
        let fallback = ControlAddress(directory: base, socket: base + "/\(fnv1a(root)).sock", shared: true)
        if path.utf8.count < 100 { return [ControlAddress(directory: dir, socket: path), fallback] }
        return [fallback]
    }

    /// `${TMPDIR:-/tmp}/paas-UID`: the last resort for the socket, and the home of the
    /// lock when the root cannot hold it. `TMPDIR` lets a test (or a user) point it elsewhere.
    package static func sharedDirectory(environment: [String: String], uid: UInt32) -> String {
        var tmp = environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        while tmp.count > 1 && tmp.hasSuffix("/") { tmp.removeLast() }
        return (tmp == "/" ? "" : tmp) + "/paas-\(uid)"
    }

    /// Where the lock that says "a paas up runs for this root" lives, in order: `ROOT/.paas/up.lock`,
    /// else (a read-only root) a file in ``sharedDirectory(environment:uid:)`` named by the
    /// root's device and inode. Neither depends on `XDG_RUNTIME_DIR` or on where the socket
    /// went, so two `paas up` of one app always meet at the same lock.
    package static func lockCandidates(root: String, environment: [String: String], uid: UInt32) -> [ControlAddress] {
        let dir = root.hasSuffix("/") ? root + ".paas" : root + "/.paas"
        let shared = sharedDirectory(environment: environment, uid: uid)
        let key = FileIdentity.of(root).map { "\(String($0.device, radix: 16))-\(String($0.inode, radix: 16))" } ?? fnv1a(root)
        return [ControlAddress(directory: dir, socket: dir + "/up.lock"), ControlAddress(directory: shared, socket: shared + "/up-\(key).lock", shared: true)]
    }

    /// FNV-1a of the root path, in hex: a short, stable file name.
    private static func fnv1a(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }
}
