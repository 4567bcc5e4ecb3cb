import Atomics
import Dispatch
import Testing

@testable import PaasRouter

#if canImport(Glibc)
import Glibc
#endif

@Suite("router, tcp mode", .serialized)
struct RouterTCPTests {
    @Test("new connections spread over the backends by least connections, ties round-robin")
    func spread() throws {
        let backends = try (1...4).map { try TestBackend(name: "b\($0)", behaviour: .echo) }
        defer { backends.forEach { $0.stop() } }
        let f = try RouterFixture()
        f.update(backends.enumerated().map { $1.backend(id: $0 + 1) })

        var clients: [(String, TestClient)] = []
        for _ in 0..<8 {
            let c = try f.connect()
            clients.append((try #require(c.readLine()), c))
        }
        #expect(Dictionary(grouping: clients.map(\.0), by: { $0 }).mapValues(\.count) == ["b1": 2, "b2": 2, "b3": 2, "b4": 2])
        #expect(f.snapshot().values.map(\.active) == [2, 2, 2, 2])

        // b3 loses its two: the next two connections go to it.
        clients.removeAll { $0.0 == "b3" }
        #expect(eventually { f.snapshot()[3]?.active == 0 })
        for _ in 0..<2 {
            let c = try f.connect()
            #expect(c.readLine() == "b3")
            clients.append(("b3", c))
        }
        #expect(f.snapshot().mapValues(\.total) == [1: 2, 2: 2, 3: 4, 4: 2])
    }

    @Test("a new table takes new connections; an open one to a removed backend keeps working (drain)")
    func swapAndDrain() throws {
        let a = try TestBackend(name: "a", behaviour: .echo)
        let b = try TestBackend(name: "b", behaviour: .echo)
        let c = try TestBackend(name: "c", behaviour: .echo)
        defer { [a, b, c].forEach { $0.stop() } }
        let f = try RouterFixture()
        f.update([a.backend(id: 1)])
        let old = try f.connect()
        #expect(old.readLine() == "a")

        f.update([b.backend(id: 2), c.backend(id: 3)])
        var names: [String] = []
        var fresh: [TestClient] = []
        for _ in 0..<6 {
            let client = try f.connect()
            names.append(client.readLine() ?? "?")
            fresh.append(client)
        }
        #expect(names.sorted() == ["b", "b", "b", "c", "c", "c"])

        old.send("still here\n")
        #expect(old.readLine() == "still here")
        #expect(f.snapshot()[1]?.active == 1)

        // Closed and read once with active 0, the removed backend's entry goes.
        old.shutdownWrite()
        #expect(old.readToEOF() == "")
        #expect(eventually { f.snapshot()[1]?.active == 0 })
        #expect(f.snapshot()[1] == nil)
        #expect(f.snapshot().keys.sorted() == [2, 3])
    }

    @Test("a refused connect is retried on another backend: no client sees it")
    func connectRetry() throws {
        let live = try TestBackend(name: "live", behaviour: .echo)
        defer { live.stop() }
        let f = try RouterFixture(ejectionErrors: 1000)
        f.update([Backend(id: 1, name: "dead", port: deadPort()), live.backend(id: 2)])
        for _ in 0..<20 {
            let c = try f.connect()
            #expect(c.readLine() == "live")
        }
        let snap = f.snapshot()
        #expect(snap[2]?.total == 20)
        #expect(snap[1]?.total == 0)
        #expect((snap[1]?.connectErrors ?? 0) >= 5)
        #expect(eventually { f.snapshot()[2]?.active == 0 && f.snapshot()[1]?.active == 0 })
    }

    @Test("no backend can take it: the client is closed at once (empty table, all refused)")
    func noBackendCloses() throws {
        let f = try RouterFixture(ejectionErrors: 1000)
        for table in [[], [Backend(id: 1, name: "d1", port: deadPort()), Backend(id: 2, name: "d2", port: deadPort())]] {
            f.update(table)
            for _ in 0..<5 {
                let start = monotonicNow()
                let c = try f.connect(timeout: 2)
                #expect(c.waitClosed())
                let ms = Double(monotonicNow() - start) / 1e6
                #expect(ms < 50, "closed after \(ms) ms")
            }
        }
        #expect(eventually {
            f.allEvents().contains { if case .unavailable(route: "web", _) = $0 { return true } else { return false } }
        })
        #expect(f.wakes > 0)
        // Counted, at most one event a second: the 10 refusals fit in at most two.
        #expect(eventually(3) {
            let refused = f.allEvents().reduce(0) { n, e in
                if case .unavailable(_, let r) = e { return n + r } else { return n }
            }
            return refused == 10
        })
        #expect(f.allEvents().count <= 2)
    }

    @Test("N connect errors eject a backend; after its cool-down one trial puts it back")
    func ejectionAndReturn() throws {
        let port = deadPort()
        let live = try TestBackend(name: "live", behaviour: .echo)
        defer { live.stop() }
        let f = try RouterFixture(ejectionErrors: 3, cooldown: 300_000_000)
        f.update([Backend(id: 1, name: "web.1", port: port), live.backend(id: 2)])
        let ejected = { f.allEvents().contains(.ejected(route: "web", backend: 1, name: "web.1", consecutive: 3, cooldown: 300_000_000)) }
        var tries = 0
        while !ejected() && tries < 30 {
            let c = try f.connect()
            #expect(c.readLine() == "live")
            tries += 1
        }
        #expect(ejected())
        #expect(f.snapshot()[1]?.ejected == true)
        let errors = f.snapshot()[1]?.connectErrors
        #expect(errors == 3)

        // Ejected: not even tried.
        for _ in 0..<5 {
            let c = try f.connect()
            #expect(c.readLine() == "live")
        }
        #expect(f.snapshot()[1]?.connectErrors == errors)

        // Still down after the cool-down (300 ms; the time passing is the scenario): the trial
        // fails (retried on live), ejected again.
        usleep(350_000)
        let c1 = try f.connect()
        #expect(c1.readLine() == "live")
        #expect(f.snapshot()[1]?.connectErrors == 4)
        #expect(f.allEvents().filter { if case .ejected(_, 1, _, _, _) = $0 { return true } else { return false } }.count == 2)

        // It comes up; after the next cool-down its trial succeeds and it is back.
        let revived = try TestBackend(name: "web.1", behaviour: .echo, port: port)
        defer { revived.stop() }
        #expect(eventually(3) {
            guard let c = try? f.connect() else { return false }
            return c.readLine() == "web.1"
        })
        #expect(eventually { f.allEvents().contains(.restored(route: "web", backend: 1, name: "web.1")) })
        #expect(f.snapshot()[1]?.ejected == false)
    }

    @Test("a backend that closes before answering counts resets and is ejected")
    func resetsEject() throws {
        let bad = try TestBackend(name: "bad", behaviour: .closeAtOnce)
        let good = try TestBackend(name: "good", behaviour: .echo)
        defer { [bad, good].forEach { $0.stop() } }
        let f = try RouterFixture(ejectionErrors: 2, cooldown: 60_000_000_000)
        f.update([bad.backend(id: 1), good.backend(id: 2)])
        var answered = 0
        for _ in 0..<10 {
            let c = try f.connect()
            if c.readLine() == "good" { answered += 1 }
        }
        #expect(eventually { f.snapshot()[1]?.resets == 2 })
        #expect(answered == 8)
        #expect(f.snapshot()[1]?.ejected == true)
        #expect(f.allEvents().contains(.ejected(route: "web", backend: 1, name: "bad", consecutive: 2, cooldown: 60_000_000_000)))
    }

    @Test("canary weight 10 sends 10 % of 1000 connections to the canary")
    func canaryWeight() throws {
        let stable = try TestBackend(name: "stable", behaviour: .echo)
        let canary = try TestBackend(name: "canary", behaviour: .echo)
        defer { [stable, canary].forEach { $0.stop() } }
        let f = try RouterFixture()
        f.update([stable.backend(id: 1), canary.backend(id: 2, group: .canary)], canaryWeight: 10)
        var counts: [String: Int] = [:]
        for _ in 0..<1000 {
            let c = try f.connect()
            counts[c.readLine() ?? "?", default: 0] += 1
        }
        #expect(counts["canary"] == 100)
        #expect(counts["stable"] == 900)

        // An empty canary group: the stable one takes everything (and the other way round).
        f.update([stable.backend(id: 1)], canaryWeight: 50)
        for _ in 0..<4 { #expect(try f.connect().readLine() == "stable") }
        f.update([canary.backend(id: 2, group: .canary)], canaryWeight: 0)
        for _ in 0..<4 { #expect(try f.connect().readLine() == "canary") }
    }

    @Test("half-close: the client shuts its write side and still gets the whole answer")
    func halfClose() throws {
        let echo = try TestBackend(name: "echo", behaviour: .quietEcho)
        defer { echo.stop() }
        let f = try RouterFixture()
        f.update([echo.backend(id: 1)])
        let c = try f.connect()
        let payload = String(repeating: "0123456789", count: 20_000)
        c.send(payload)
        c.shutdownWrite()
        #expect(c.readToEOF() == payload)
        #expect(c.sawEOF)
    }

    @Test("counters: total, active, bytes both ways")
    func counters() throws {
        let echo = try TestBackend(name: "echo", behaviour: .quietEcho)
        defer { echo.stop() }
        let f = try RouterFixture()
        f.update([echo.backend(id: 7)])
        for _ in 0..<3 {
            let c = try f.connect()
            c.send(String(repeating: "x", count: 1000))
            #expect(c.read(exactly: 1000)?.count == 1000)
        }
        #expect(eventually {
            let s = f.snapshot()[7]
            return s?.active == 0 && s?.total == 3 && s?.bytesIn == 3000 && s?.bytesOut == 3000
        })
        #expect(f.snapshot()[7]?.errors == 0)
    }

    @Test("a client that stops reading does not make the router buffer without bound")
    func backpressure() throws {
        let hose = try TestBackend(name: "hose", behaviour: .firehose)
        defer { hose.stop() }
        let f = try RouterFixture()
        f.update([hose.backend(id: 1)])
        let c = try f.connect()
        #expect(eventually { hose.writtenCount > 0 })
        // Let it fill every buffer on the way, then see that it stopped.
        var last = -1
        #expect(eventually(10) {
            let now = hose.writtenCount
            defer { last = now }
            // The sampling interval of "stopped growing": two counts 200 ms apart are equal.
            usleep(200_000)
            return now == last
        })
        #expect(hose.writtenCount < 32 << 20, "the backend wrote \(hose.writtenCount) bytes to a client that reads nothing")
        // Reading again lets it go on.
        #expect(c.read(exactly: 1 << 20)?.count == 1 << 20)
        #expect(eventually { hose.writtenCount > last })
    }

    @Test("a connect that hangs times out after about a second, counts an error, and is retried")
    func connectTimeout() throws {
        let stuck = StuckListener()
        let live = try TestBackend(name: "live", behaviour: .echo)
        defer { live.stop() }
        let f = try RouterFixture(ejectionErrors: 1000)
        f.update([Backend(id: 1, name: "stuck", port: stuck.port), live.backend(id: 2)])
        let start = monotonicNow()
        let c = try f.connect(timeout: 5)
        #expect(c.readLine() == "live")
        let seconds = Double(monotonicNow() - start) / 1e9
        #expect(seconds > 0.9 && seconds < 2.5, "answered after \(seconds) s")
        #expect(f.snapshot()[1]?.connectErrors == 1)
        #expect(f.snapshot()[1]?.active == 0)
    }

    @Test("listen: an adopted listening descriptor; a taken port; a descriptor that is no socket")
    func listenSources() throws {
        let echo = try TestBackend(name: "echo", behaviour: .echo)
        defer { echo.stop() }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(listen(fd, 128) == 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let expected = Int(UInt16(bigEndian: addr.sin_port))

        let router = Router(wake: {})
        defer { router.shutdown() }
        router.update(route: "web", table: RouteTable(backends: [echo.backend(id: 1)]))
        let port = try router.listen(RouteSettings(name: "web", mode: .tcp, source: .descriptor(fd)))
        #expect(port == expected)
        #expect(try TestClient(port: port).readLine() == "echo")

        let other = Router(wake: {})
        defer { other.shutdown() }
        #expect {
            _ = try other.listen(RouteSettings(name: "web", mode: .tcp, source: .port(port)))
        } throws: { error in
            (error as? RouterError)?.description == "port \(port) is in use (EADDRINUSE)"
        }
        let devnull = open("/dev/null", O_RDONLY)
        defer { close(devnull) }
        #expect {
            _ = try other.listen(RouteSettings(name: "worker", mode: .tcp, source: .descriptor(devnull)))
        } throws: { error in
            (error as? RouterError)?.description.hasPrefix("descriptor \(devnull)") == true
        }
        // Closing a route stops new connections; listening again works.
        router.close(route: "web")
        #expect(throws: (any Error).self) { try TestClient(port: port) }
    }

    @Test("two router threads, eight client threads: every connection answered, counters add up")
    func threads() throws {
        let backends = try (1...4).map { try TestBackend(name: "b\($0)", behaviour: .quietEcho) }
        defer { backends.forEach { $0.stop() } }
        let f = try RouterFixture(threads: 2)
        f.update(backends.enumerated().map { $1.backend(id: $0 + 1) })
        let port = f.port
        let failures = ManagedAtomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for i in 0..<50 {
                guard let c = try? TestClient(port: port) else {
                    failures.wrappingIncrement(ordering: .relaxed)
                    continue
                }
                c.send("line \(i)\n")
                if c.readLine() != "line \(i)" { failures.wrappingIncrement(ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(eventually {
            let s = f.snapshot()
            return s.values.map(\.total).reduce(0, +) == 400 && s.values.allSatisfy { $0.active == 0 }
        })
        #expect(f.snapshot().values.allSatisfy { $0.total >= 50 })
    }
}
