import Foundation
import Testing

/// The router and rollouts (issue 10) with the built binary, real HTTP servers as instances
/// (Tests/Fixtures/webapp.py) and a load client that counts every failure (load.py).
@Suite(.serialized)
struct RouterTests {
    static let webapp = Binaries.packageRoot.appendingPathComponent("Tests/Fixtures/webapp.py").path
    static let loadScript = Binaries.packageRoot.appendingPathComponent("Tests/Fixtures/load.py").path
    static let routerOn = ["PAAS_NO_ROUTER": "0"]

    /// A Procfile whose web is the test app; `.env` gives its VERSION.
    static func app(version: String = "v1", json: String? = nil, extra: String = "") throws -> TempApp {
        var files = [".env": "VERSION=\(version)\n"]
        if let json { files["app.json"] = json }
        return try TempApp(procfile: "web: exec python3 -u \(webapp)\n\(extra)", files: files)
    }

    /// One HTTP GET on a fresh connection: (status, body), nil on any failure.
    static func get(_ port: Int, path: String = "/") -> (status: Int, body: String, headers: String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { return nil }
        let request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            data += buf[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let head = String(text[..<split.lowerBound])
        let parts = head.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        return (status, String(text[split.upperBound...]), head)
    }

    /// The load client, running until `stop()`.
    final class Load {
        let stopFile: String, outFile: String
        let process: Process
        init(port: Int, keepalive: Bool = false, threads: Int = 4) throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("paas-load-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            stopFile = dir + "/stop"
            outFile = dir + "/out.json"
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", RouterTests.loadScript, "\(port)", stopFile, outFile, "--threads", "\(threads)"] + (keepalive ? ["--keepalive"] : [])
            try process.run()
        }

        /// Stops the client and returns what it counted.
        func stop() -> (ok: Int, failures: [String: Int], answers: [String: Int], examples: [String]) {
            _ = FileManager.default.createFile(atPath: stopFile, contents: Data())
            process.waitUntilExit()
            guard let data = FileManager.default.contents(atPath: outFile),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return (0, ["no result": 1], [:], []) }
            return (json["ok"] as? Int ?? 0, json["failures"] as? [String: Int] ?? [:], json["answers"] as? [String: Int] ?? [:], json["examples"] as? [String] ?? [])
        }
    }

    static func failed(_ f: [String: Int]) -> Int { f.values.reduce(0, +) }

    /// The pids of `web.N started (pid P, port Q, generation G)` event lines.
    static func startedPids(_ stdout: String, generation: Int) -> [Int32] {
        stdout.split(separator: "\n").compactMap { line -> Int32? in
            guard line.contains("started (pid "), line.contains("generation \(generation))") else { return nil }
            guard let r = line.range(of: "(pid ") else { return nil }
            return Int32(line[r.upperBound...].prefix { $0.isNumber })
        }
    }

    @Test func requestsSpreadOverEveryReadyInstanceAndScaleUnderLoadFailsNothing() throws {
        let base = Ports.base()
        let app = try Self.app()
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=3", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(paas.waitForOutput("router: web on port \(base)"))
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 3 })
        // Private ports from the type's own block; the public one is web.1's plan port.
        let rows = psRows(app)
        #expect(Set(rows.compactMap { $0["port"] as? Int }) == [base + 1, base + 2, base + 3])
        #expect(rows.allSatisfy { $0["public_port"] as? Int == base })
        var seen = Set<String>()
        for _ in 0..<30 { if let r = Self.get(base) { seen.insert(String(r.body.split(separator: " ")[0])) } }
        #expect(seen == ["web.1", "web.2", "web.3"])

        let load = try Self.load(base)
        #expect(try runPaas(["scale", "web=4"], in: app.path).status == 0)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 4 })
        #expect(try runPaas(["scale", "web=2"], in: app.path).status == 0)
        #expect(eventually { psRows(app).count == 2 })
        let result = load.stop()
        #expect(Self.failed(result.failures) == 0, "\(result.failures) \(result.examples)")
        #expect(result.ok > 50)
        #expect(result.answers.keys.contains { $0.hasPrefix("web.4") }, "\(result.answers)")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
        #expect(!portAccepts(base))
    }

    static func load(_ port: Int, keepalive: Bool = false) throws -> Load { try Load(port: port, keepalive: keepalive) }

    @Test func killNineOfOneInstanceCostsNoNewConnection() throws {
        let base = Ports.base()
        let app = try Self.app(json: #"{"paas": {"processes": {"web": {"restart": "always"}}}}"#)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=3", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 3 })
        let load = try Self.load(base)
        #expect(eventually { Self.get(base) != nil })
        let victim = try #require(psRows(app).first { $0["name"] as? String == "web.2" }?["pid"] as? Int)
        kill(pid_t(victim), SIGKILL)
        #expect(paas.waitForOutput("web.2 killed by SIGKILL"))
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 3 })
        let result = load.stop()
        // A connection open on web.2 when it died may fail; no new connection does (refused ones are retried).
        #expect(result.failures["refused", default: 0] == 0, "\(result.failures) \(result.examples)")
        #expect(result.failures["timeout", default: 0] == 0)
        #expect(result.failures["reset", default: 0] <= 4, "\(result.failures) \(result.examples)")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// In http mode the router sees where requests end, so a kept-alive client moves to the new
    /// set with its next request; in tcp mode only new connections can (a kept-alive one stays
    /// on its old instance until the drain ends, and an app that exits mid-request fails it).
    @Test(arguments: ["http", "tcp"])
    func blueGreenUnderLoadFailsNothingAndLeavesOnlyTheNewSet(mode: String) throws {
        let base = Ports.base()
        let app = try Self.app(json: #"{"paas": {"processes": {"web": {"router": "\#(mode)", "rollout": {"drain_timeout": 5}}}}}"#)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=2", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        let oldPids = psRows(app).compactMap { $0["pid"] as? Int }
        let fresh = try Self.load(base)
        let kept = mode == "http" ? try Self.load(base, keepalive: true) : try Self.load(base)
        try app.write(".env", "VERSION=v2\n")
        let r = try runPaas(["rollout", "web"], in: app.path, timeout: 60)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("switching every new connection to the new set"), "\(r.stdout)")
        #expect(r.stdout.contains("web: rollout promoted"))
        for load in [fresh, kept] {
            let result = load.stop()
            #expect(Self.failed(result.failures) == 0, "\(result.failures) \(result.examples)")
            #expect(result.answers.keys.contains { $0.hasSuffix("v2") }, "\(result.answers)")
        }
        for _ in 0..<10 { #expect(Self.get(base)?.body.contains(" v2 ") == true) }
        #expect(eventually { oldPids.allSatisfy { !ProcTable.isAlive(Int32($0)) } })
        #expect(psRows(app).count == 2 && psRows(app).allSatisfy { $0["generation"] as? Int == 2 })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func aNewSetThatNeverGetsReadyIsStoppedAndTheOldOneServesThroughout() throws {
        let base = Ports.base()
        let app = try Self.app(json: #"{"paas": {"processes": {"web": {"boot_timeout": 60, "rollout": {"deploy_timeout": 2}}}}}"#)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=2", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        let load = try Self.load(base)
        try app.write(".env", "VERSION=v2\nNEVER_LISTEN=1\n")
        let r = try runPaas(["rollout", "web"], in: app.path, timeout: 60)
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("the new set was not ready in time (0/2 ready)"), "\(r.stdout)")
        let result = load.stop()
        #expect(Self.failed(result.failures) == 0, "\(result.failures) \(result.examples)")
        #expect(result.answers.keys.allSatisfy { $0.hasSuffix("v1") }, "\(result.answers)")
        // Nothing of the new set is left.
        #expect(eventually { psRows(app).count == 2 && psRows(app).allSatisfy { $0["generation"] as? Int == 1 } })
        let newSet = Self.startedPids(paas.stdout, generation: 2)
        #expect(newSet.count == 2)
        #expect(eventually { newSet.allSatisfy { !ProcTable.isAlive($0) } })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func aCanaryThatAnswers500IsRolledBackAtTheFirstStep() throws {
        let base = Ports.base()
        let app = try Self.app(json: #"{"paas": {"processes": {"web": {"router": "http", "rollout": {"strategy": "canary", "steps": [25, 100], "step_duration": 30}}}}}"#)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=2", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        let load = try Self.load(base)
        try app.write(".env", "VERSION=v2\nFAIL_EVERY=3\n")
        let r = try runPaas(["rollout", "web"], in: app.path, timeout: 60)
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("rolling back: canary error rate"), "\(r.stdout)")
        #expect(!r.stdout.contains("step 2 of 2"))
        _ = load.stop()
        #expect(eventually { psRows(app).count == 2 && psRows(app).allSatisfy { $0["generation"] as? Int == 1 } })
        for _ in 0..<10 { #expect(Self.get(base)?.body.contains(" v1 ") == true) }
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    @Test func aHealthyCanaryGoesToAHundredPercentAndAbortAndPromoteWorkMidway() throws {
        let base = Ports.base()
        let app = try Self.app(json: #"{"paas": {"processes": {"web": {"rollout": {"strategy": "canary", "steps": [50, 100], "step_duration": 0.5, "drain_timeout": 2}}}}}"#)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=2", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        let load = try Self.load(base)
        try app.write(".env", "VERSION=v2\n")
        let r = try runPaas(["rollout", "web"], in: app.path, timeout: 60)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("step 2 of 2: 100 %"), "\(r.stdout)")
        let result = load.stop()
        #expect(Self.failed(result.failures) == 0, "\(result.failures) \(result.examples)")
        #expect(eventually { psRows(app).count == 2 && psRows(app).allSatisfy { $0["generation"] as? Int == 2 } })

        // Abort mid-way: back to the set that served before.
        try app.write(".env", "VERSION=v3\n")
        let aborted = try Running(["rollout", "web", "--step-duration", "60"], in: app.path)
        #expect(eventually { (try? runPaas(["rollout", "status"], in: app.path).stdout.contains("step 1")) == true })
        #expect(try runPaas(["rollout", "abort"], in: app.path).status == 0)
        #expect(aborted.waitForExit() == 1)
        #expect(eventually { psRows(app).count == 2 && psRows(app).allSatisfy { $0["generation"] as? Int == 2 } })

        // Promote mid-way: the new set takes everything at once.
        let promoted = try Running(["rollout", "web", "--step-duration", "60"], in: app.path)
        #expect(eventually { (try? runPaas(["rollout", "status"], in: app.path).stdout.contains("step 1")) == true })
        #expect(try runPaas(["rollout", "promote"], in: app.path).status == 0)
        #expect(promoted.waitForExit(timeout: 30) == 0)
        #expect(eventually { psRows(app).count == 2 && Self.get(base)?.body.contains(" v3 ") == true })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A WebSocket through http mode stays on its old instance across a blue-green switch, and
    /// the old set is stopped once it closes (before the drain deadline).
    @Test func aWebSocketSurvivesABlueGreenSwitch() throws {
        let base = Ports.base()
        let app = try Self.app(json: #"{"paas": {"processes": {"web": {"router": "http", "rollout": {"drain_timeout": 30}}}}}"#)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).first?["ready"] as? Bool == true })
        let ws = try #require(RawClient(port: base))
        defer { ws.close() }
        ws.send("GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        #expect(ws.readUntil("\r\n\r\n")?.hasPrefix("HTTP/1.1 101") == true)
        ws.send("one\n")
        #expect(ws.readUntil("\n") == "web.1 v1 one\n")
        try app.write(".env", "VERSION=v2\n")
        let rollout = try Running(["rollout", "web"], in: app.path)
        #expect(paas.waitForOutput("switching every new connection to the new set", timeout: 30))
        #expect(eventually { Self.get(base)?.body.contains(" v2 ") == true })
        ws.send("two\n")
        #expect(ws.readUntil("\n") == "web.1 v1 two\n")
        #expect(rollout.process.isRunning, "the rollout waits for the old set to drain")
        ws.close()
        #expect(rollout.waitForExit(timeout: 20) == 0, "\(rollout.stdout)")
        #expect(rollout.stdout.contains("old set drained"), "\(rollout.stdout)")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A readiness check that fails takes an instance out of rotation; back in when it passes.
    @Test func aFailingReadinessCheckTakesAnInstanceOutAndBackIn() throws {
        let base = Ports.base()
        let json = #"{"healthchecks": {"web": [{"type": "readiness", "path": "/health", "wait": 0.1, "attempts": 1, "timeout": 1}]}}"#
        let app = try Self.app(json: json)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=2", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        try app.write("unready-web.2", "")
        #expect(paas.waitForOutput("web.2 unready"))
        for _ in 0..<20 { #expect(Self.get(base)?.body.hasPrefix("web.1 ") == true) }
        try FileManager.default.removeItem(atPath: app.file("unready-web.2"))
        #expect(eventually { (0..<10).contains { _ in Self.get(base)?.body.hasPrefix("web.2 ") == true } })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// `paas reload` of a routed type's changed config rolls it out (blue-green): no request fails.
    @Test func aReloadRollsARoutedTypeOutWithoutAFailedRequest() throws {
        let base = Ports.base()
        let app = try Self.app(json: #"{"paas": {"processes": {"web": {"rollout": {"drain_timeout": 2}}}}}"#)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=2", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        let load = try Self.load(base)
        try app.write(".env", "VERSION=v2\n")
        let r = try runPaas(["reload"], in: app.path)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(paas.waitForOutput("web: rollout promoted", timeout: 30))
        let result = load.stop()
        #expect(Self.failed(result.failures) == 0, "\(result.failures) \(result.examples)")
        #expect(Self.get(base)?.body.contains(" v2 ") == true)
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// `--no-router` gives foreman's direct ports back.
    @Test func noRouterGivesDirectPorts() throws {
        let base = Ports.base()
        let app = try Self.app()
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "--no-router", "-m", "web=2", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        #expect(Set(psRows(app).compactMap { $0["port"] as? Int }) == [base, base + 1])
        #expect(psRows(app).allSatisfy { $0["public_port"] is NSNull })
        #expect(Self.get(base)?.body.hasPrefix("web.1 ") == true)
        #expect(Self.get(base + 1)?.body.hasPrefix("web.2 ") == true)
        #expect(!paas.stdout.contains("router:"))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A public port that is taken: one clear error, exit 71, nothing started.
    @Test func aTakenPublicPortStartsNothing() throws {
        let base = Ports.base()
        let app = try Self.app(extra: "worker: exec sleep 1000\n")
        defer { app.remove() }
        let blocker = try #require(RawListener(port: base))
        defer { blocker.close() }
        let r = try runPaas(["up", "--no-color", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(r.status == 71)
        #expect(r.stderr.contains("web: could not listen on its public port \(base)"), "\(r.stderr)")
        #expect(!r.stdout.contains("started (pid"))
    }

    /// A canary instance that exits rolls the rollout back; the old set is untouched.
    @Test func aCanaryThatExitsIsRolledBack() throws {
        let base = Ports.base()
        let app = try Self.app(json: #"{"paas": {"processes": {"web": {"rollout": {"strategy": "canary", "steps": [50, 100], "step_duration": 30}}}}}"#)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=2", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        let oldPids = Set(psRows(app).compactMap { $0["pid"] as? Int })
        let load = try Self.load(base)
        try app.write(".env", "VERSION=v2\nCRASH_AFTER=3\n")
        let r = try runPaas(["rollout", "web"], in: app.path, timeout: 60)
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("of the new set ended (exited with status 3) before the switch"), "\(r.stdout)")
        _ = load.stop()
        #expect(eventually { Set(psRows(app).compactMap { $0["pid"] as? Int }) == oldPids })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// A type that is not routed rolls one instance at a time; a singleton stops first.
    @Test func typesThatAreNotRoutedRollOneAtATime() throws {
        let base = Ports.base()
        let json = #"{"paas": {"processes": {"worker": {"min_uptime": 0.2}, "clock": {"min_uptime": 0.2, "singleton": true}}}}"#
        let app = try Self.app(json: json, extra: "worker: echo worker $VERSION; exec sleep 1000\nclock: echo clock $VERSION; exec sleep 1001\n")
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "worker=2", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 4 })
        let r = try runPaas(["rollout", "worker", "clock"], in: app.path, timeout: 60)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("worker: rollout promoted") && r.stdout.contains("clock: rollout promoted"), "\(r.stdout)")
        #expect(paas.stdout.contains("worker: rollout requested, replacing 2 instances (each once its successor is ready)"))
        #expect(paas.stdout.contains("clock: rollout requested, replacing 1 instance (each stopped before its successor starts)"))
        #expect(psRows(app).filter { $0["type"] as? String == "worker" }.allSatisfy { $0["generation"] as? Int == 2 })
        // web was not named: untouched.
        #expect(psRows(app).first { $0["name"] as? String == "web.1" }?["generation"] as? Int == 1)
        let bad = try runPaas(["rollout", "nosuch"], in: app.path)
        #expect(bad.status == 78 && bad.stderr.contains("no running process type \"nosuch\""), "\(bad.stderr)")
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// An instance answering 5xx is ejected while the healthy one serves, and comes back after
    /// its cool-down once it answers.
    @Test func aFailingInstanceIsEjectedAndComesBack() throws {
        let base = Ports.base()
        let app = try Self.app(json: #"{"paas": {"processes": {"web": {"router": "http", "ejection": {"errors": 3, "cooldown": 1}}}}}"#)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=2", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        try app.write("fail-web.2", "")
        #expect(eventually { _ = Self.get(base); return paas.stdout.contains("router: web.2 ejected from web after 3 consecutive errors") })
        for _ in 0..<20 { #expect(Self.get(base).map { $0.status == 200 && $0.body.hasPrefix("web.1 ") } == true) }
        try FileManager.default.removeItem(atPath: app.file("fail-web.2"))
        #expect(eventually { _ = Self.get(base); return paas.stdout.contains("router: web.2 back in web's rotation") })
        #expect(eventually { (0..<10).contains { _ in Self.get(base)?.body.hasPrefix("web.2 ") == true } })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// `paas scale` of a type under a rollout that has not switched gives the rollout up (the
    /// old set serves on, the new set is stopped), then scales; `--detach` returns at once.
    @Test func scaleDuringARolloutGivesItUp() throws {
        let base = Ports.base()
        let app = try Self.app(json: #"{"paas": {"processes": {"web": {"rollout": {"strategy": "canary", "steps": [50, 100], "step_duration": 60}}}}}"#)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "-m", "web=2", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        let detached = try runPaas(["rollout", "web", "--detach"], in: app.path)
        #expect(detached.status == 0 && detached.stdout.contains("rolling out web"), "\(detached.stdout)\(detached.stderr)")
        #expect(eventually { (try? runPaas(["rollout", "status", "--json"], in: app.path).stdout.contains("\"step 1\"")) == true })
        let before = Set(psRows(app).filter { $0["generation"] as? Int == 1 }.compactMap { $0["pid"] as? Int })
        #expect(before.count == 2)
        #expect(try runPaas(["scale", "web=3"], in: app.path).status == 0)
        #expect(paas.waitForOutput("web: rollout aborted by paas scale; the old set serves as before"))
        // The old set serves on; the new instance of the scale runs the configuration as it is now.
        #expect(eventually { psRows(app).count == 3 && Set(psRows(app).filter { $0["generation"] as? Int == 1 }.compactMap { $0["pid"] as? Int }) == before })
        #expect(try runPaas(["rollout", "status"], in: app.path).stdout.contains("web: last rollout aborted"))
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
    }

    /// Socket activation: paas takes the listening socket it is handed (LISTEN_FDS) for its
    /// routed type, so a restart of paas refuses no connection: they wait in the socket's queue.
    @Test func aRestartOfPaasUnderSocketActivationRefusesNoConnection() throws {
        let base = Ports.base()
        let app = try Self.app()
        defer { app.remove() }
        let stop = app.file("stop-activation")
        let wrapper = try Running(["python3", Binaries.packageRoot.appendingPathComponent("Tests/Fixtures/activate.py").path, "\(base + 50)", "web", stop,
                                   Binaries.paas, "up", "--no-color", "-m", "web=2", "-p", "\(base)"],
                                  in: app.path, environment: Self.routerOn, executable: "/usr/bin/env", watching: ["started "])
        defer { wrapper.signal(SIGKILL) }
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        // The public port is the one handed over, not the plan's.
        #expect(psRows(app).allSatisfy { $0["public_port"] as? Int == base + 50 })
        #expect(!portAccepts(base))
        #expect(wrapper.stdout.contains("router: web on port \(base + 50) (socket activation, descriptor 3; taken once an instance is ready)"))
        #expect(wrapper.stdout.contains("router: web takes connections on port \(base + 50)"))
        let load = try Load(port: base + 50)
        #expect(eventually { Self.get(base + 50) != nil })
        let first = try #require(Self.paasPids(wrapper.stdout).first)
        kill(first, SIGTERM)
        #expect(eventually { Self.paasPids(wrapper.stdout).count == 2 })
        #expect(eventually { psRows(app).filter { $0["ready"] as? Bool == true }.count == 2 })
        let result = load.stop()
        #expect(Self.failed(result.failures) == 0, "\(result.failures) \(result.examples)")
        // The load ran from before the SIGTERM until the new paas was ready.
        #expect(result.ok > 5)
        _ = FileManager.default.createFile(atPath: stop, contents: Data())
        if let second = Self.paasPids(wrapper.stdout).last { kill(second, SIGTERM) }
        #expect(wrapper.waitForExit() == 0)
    }

    static func paasPids(_ stdout: String) -> [Int32] {
        stdout.split(separator: "\n").compactMap { $0.hasPrefix("started ") ? Int32($0.dropFirst(8)) : nil }
    }

    @Test func everyInstanceDownAnswersAtOnceAndTheRouterLeavesNothingAfterKillNine() throws {
        let base = Ports.base()
        let app = try Self.app(json: #"{"paas": {"processes": {"web": {"router": "http", "fallback": "503.html", "restart": "always", "backoff": {"initial": 30, "max": 60}}}}}"#)
        defer { app.remove() }
        try app.write("503.html", "<h1>back soon</h1>\n")
        let paas = try Running(["up", "--no-color", "-p", "\(base)"], in: app.path, environment: Self.routerOn)
        #expect(eventually { psRows(app).first?["ready"] as? Bool == true })
        let pid = try #require(psRows(app).first?["pid"] as? Int)
        kill(pid_t(pid), SIGKILL)
        #expect(paas.waitForOutput("restarting in"))
        let started = Date()
        let answer = Self.get(base)
        let elapsed = Date().timeIntervalSince(started)
        #expect(answer?.status == 503)
        #expect(answer?.headers.lowercased().contains("retry-after:") == true)
        #expect(answer?.body.contains("back soon") == true)
        // Within 10 ms (the median of a few, on a loaded test machine).
        var times = [elapsed]
        for _ in 0..<6 {
            let t = Date()
            #expect(Self.get(base)?.status == 503)
            times.append(Date().timeIntervalSince(t))
        }
        let median = times.sorted()[times.count / 2]
        #expect(median < 0.010, "503 took \(times) s")
        // kill -9 of paas: nothing left running, nothing listening.
        let children = ProcTable.children(of: paas.pid)
        paas.signal(SIGKILL)
        _ = paas.waitForExit()
        #expect(eventually { !portAccepts(base) })
        #expect(eventually { children.allSatisfy { !ProcTable.isAlive($0) } })
    }
}

/// A blocking TCP client for the tests' raw protocols (WebSocket after its upgrade).
final class RawClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    init?(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if r != 0 { Glibc.close(fd); return nil }
    }

    func send(_ text: String) { _ = text.withCString { Glibc.send(fd, $0, strlen($0), 0) } }

    /// Reads until `marker` has arrived (within the receive timeout); returns through it.
    func readUntil(_ marker: String) -> String? {
        let m = Array(marker.utf8)
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let r = find(m) {
                let out = Array(buffer[..<r])
                buffer.removeFirst(r)
                return String(decoding: out, as: UTF8.self)
            }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return nil }
            buffer += chunk[0..<n]
        }
    }

    private func find(_ m: [UInt8]) -> Int? {
        guard buffer.count >= m.count else { return nil }
        for i in 0...(buffer.count - m.count) where Array(buffer[i..<i + m.count]) == m { return i + m.count }
        return nil
    }

    func close() { Glibc.close(fd) }
}

/// A listening socket on 0.0.0.0:port, to take a port away from paas.
final class RawListener {
    let fd: Int32
    init?(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = INADDR_ANY
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0, listen(fd, 8) == 0 else { Glibc.close(fd); return nil }
    }
    func close() { Glibc.close(fd) }
}
