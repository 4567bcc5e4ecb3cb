import Testing

@testable import PaasRouter

#if canImport(Glibc)
import Glibc
#endif

private func get(_ path: String, headers: [String] = [], close: Bool = false) -> String {
    var text = "GET \(path) HTTP/1.1\r\nHost: app.test\r\n"
    for h in headers { text += h + "\r\n" }
    if close { text += "Connection: close\r\n" }
    return text + "\r\n"
}

/// The request headers the test backend saw, from its answer's body.
private func seen(_ response: TestClient.Response) -> [String: String] {
    var result: [String: String] = [:]
    for line in response.text.split(separator: "\n") {
        if let i = line.firstIndex(of: ":") {
            result[String(line[..<i])] = String(line[line.index(after: i)...]).trimmingCharacters(in: " ")
        } else if let i = line.firstIndex(of: "=") {
            result[String(line[..<i])] = String(line[line.index(after: i)...])
        }
    }
    return result
}

@Suite("router, http mode", .serialized)
struct RouterHTTPTests {
    @Test("X-Forwarded-For is appended, X-Forwarded-Proto set, X-Request-Id added when absent")
    func forwardedHeaders() throws {
        let app = try TestBackend(name: "app", behaviour: .http)
        defer { app.stop() }
        let f = try RouterFixture(mode: .http)
        f.update([app.backend(id: 1)])
        let c = try f.connect()
        c.send(get("/", headers: ["X-Forwarded-For: 10.1.2.3", "X-Forwarded-Proto: https"]))
        let r = try #require(c.readResponse())
        #expect(r.status == 200)
        #expect(r.header("x-backend") == "app")
        let h = seen(r)
        #expect(h["x-forwarded-for"] == "10.1.2.3, 127.0.0.1")
        #expect(h["x-forwarded-proto"] == "http")
        #expect(h["x-request-id"]?.count == 32)
        #expect(h["host"] == "app.test")

        c.send(get("/", headers: ["X-Request-Id: mine"]))
        let r2 = try #require(c.readResponse())
        #expect(seen(r2)["x-request-id"] == "mine")
        #expect(seen(r2)["x-forwarded-for"] == "127.0.0.1")
    }

    @Test("keep-alive on both sides; pipelined requests answered in order; a POST body goes through")
    func keepAliveAndOrder() throws {
        let app = try TestBackend(name: "app", behaviour: .http)
        defer { app.stop() }
        let f = try RouterFixture(mode: .http)
        f.update([app.backend(id: 1)])
        let c = try f.connect()
        for i in 0..<5 {
            c.send(get("/seq/\(i)"))
            #expect(c.readResponse().map { seen($0)["uri"] } == "/seq/\(i)")
        }
        c.send(get("/p/1") + get("/p/2") + "POST /p/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world" + get("/p/4"))
        let uris = (0..<4).compactMap { _ in c.readResponse().flatMap { seen($0)["uri"] } }
        #expect(uris == ["/p/1", "/p/2", "/p/3", "/p/4"])
        #expect(app.acceptedCount == 1)

        c.send("POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        #expect(c.readResponse().flatMap { seen($0)["body"] } == "11")

        c.send(get("/last", close: true))
        let last = try #require(c.readResponse())
        #expect(last.header("connection") == "close")
        #expect(c.waitClosed())
        #expect(eventually { f.snapshot()[1]?.total == 11 && f.snapshot()[1]?.active == 0 })
    }

    @Test("responses are counted by status class with their latency; 5xx ejects")
    func statusClasses() throws {
        let app = try TestBackend(name: "app", behaviour: .http)
        let bad = try TestBackend(name: "bad", behaviour: .httpStatus(500))
        defer { [app, bad].forEach { $0.stop() } }
        let f = try RouterFixture(mode: .http, ejectionErrors: 3, cooldown: 60_000_000_000)
        f.update([app.backend(id: 1)])
        let c = try f.connect()
        for path in ["/status/200", "/status/204", "/status/301", "/status/404", "/status/503", "/"] {
            c.send(get(path))
            #expect(c.readResponse(head: path == "/status/204") != nil)
        }
        let s = try #require(f.snapshot()[1])
        #expect(s.statusClasses == [0, 3, 1, 1, 1])
        #expect(s.total == 6 && s.latencyCount == 6 && s.latencyTotal > 0)
        #expect(s.errors == 1)

        // A backend answering 500 to everything: ejected after 3, the rest go to the good one.
        f.update([app.backend(id: 1), bad.backend(id: 2)])
        var statuses: [Int] = []
        for _ in 0..<20 {
            let c = try f.connect()
            c.send(get("/", close: true))
            statuses.append(c.readResponse()?.status ?? 0)
        }
        #expect(statuses.filter { $0 == 500 }.count == 3)
        #expect(statuses.filter { $0 == 200 }.count == 17)
        #expect(f.snapshot()[2]?.ejected == true)
        #expect(f.allEvents().contains(.ejected(route: "web", backend: 2, name: "bad", consecutive: 3, cooldown: 60_000_000_000)))
    }

    @Test("no backend: 503 with Retry-After and the fallback page, at once; the connection stays usable")
    func unavailable() throws {
        let page = Array("<html><body>back soon</body></html>".utf8)
        let f = try RouterFixture(mode: .http, ejectionErrors: 1000, fallback: page)
        let c = try f.connect()
        for table in [[], [Backend(id: 1, name: "d1", port: deadPort()), Backend(id: 2, name: "d2", port: deadPort())]] {
            f.update(table)
            for _ in 0..<5 {
                let start = monotonicNow()
                c.send(get("/"))
                let r = try #require(c.readResponse())
                let ms = Double(monotonicNow() - start) / 1e6
                #expect(r.status == 503)
                #expect(r.header("retry-after") == "7")
                #expect(r.header("content-type")?.hasPrefix("text/html") == true)
                #expect(r.body == page)
                #expect(ms < 50, "503 after \(ms) ms")
            }
        }
        let app = try TestBackend(name: "app", behaviour: .http)
        defer { app.stop() }
        f.update([app.backend(id: 3)])
        c.send(get("/"))
        #expect(c.readResponse()?.status == 200)

        // Without a fallback page: a short text.
        let g = try RouterFixture(mode: .http)
        let d = try g.connect()
        d.send(get("/", close: true))
        let r = try #require(d.readResponse())
        #expect(r.status == 503 && r.header("content-type")?.hasPrefix("text/plain") == true && r.header("retry-after") == "7")
        #expect(eventually { g.allEvents().contains(.unavailable(route: "web", refused: 1)) })
    }

    @Test("a refused connect is retried on another backend before any 503")
    func connectRetry() throws {
        let app = try TestBackend(name: "app", behaviour: .http)
        defer { app.stop() }
        let f = try RouterFixture(mode: .http, ejectionErrors: 1000)
        f.update([Backend(id: 1, name: "dead", port: deadPort()), app.backend(id: 2)])
        for _ in 0..<20 {
            let c = try f.connect()
            c.send(get("/", close: true))
            #expect(c.readResponse()?.status == 200)
        }
        #expect((f.snapshot()[1]?.connectErrors ?? 0) >= 5)
        #expect(f.snapshot()[2]?.statusClasses[1] == 20)
    }

    @Test("a new table moves a kept-alive client's next request; canary weight splits per request")
    func tableAndCanary() throws {
        let a = try TestBackend(name: "a", behaviour: .http)
        let b = try TestBackend(name: "b", behaviour: .http)
        defer { [a, b].forEach { $0.stop() } }
        let f = try RouterFixture(mode: .http)
        f.update([a.backend(id: 1)])
        let c = try f.connect()
        c.send(get("/"))
        #expect(c.readResponse()?.header("x-backend") == "a")
        f.update([b.backend(id: 2)])
        c.send(get("/"))
        #expect(c.readResponse()?.header("x-backend") == "b")

        f.update([a.backend(id: 1), b.backend(id: 2, group: .canary)], canaryWeight: 20)
        var counts: [String: Int] = [:]
        for _ in 0..<100 {
            c.send(get("/"))
            counts[c.readResponse()?.header("x-backend") ?? "?", default: 0] += 1
        }
        #expect(counts == ["a": 80, "b": 20])
        // One connection per group, kept: a and b each accepted one from the router since.
        #expect(a.acceptedCount == 2 && b.acceptedCount == 2)
    }

    @Test("an Upgrade answered 101 becomes a byte pipe both ways")
    func upgrade() throws {
        let app = try TestBackend(name: "app", behaviour: .http)
        defer { app.stop() }
        let f = try RouterFixture(mode: .http)
        f.update([app.backend(id: 1)])
        let c = try f.connect()
        c.send(get("/ws", headers: ["Upgrade: echo", "Connection: Upgrade"]))
        let r = try #require(c.readResponse())
        #expect(r.status == 101)
        #expect(r.header("upgrade") == "echo")
        #expect(r.header("connection")?.lowercased() == "upgrade")
        c.send("raw bytes, not HTTP\n")
        #expect(c.readLine() == "raw bytes, not HTTP")
        c.send(String(repeating: "z", count: 100_000) + "\n")
        #expect(c.readLine()?.count == 100_000)
        // The table changes: the upgraded connection stays where it is.
        f.update([])
        c.send("still\n")
        #expect(c.readLine() == "still")
        #expect(f.snapshot()[1]?.active == 1)
        c.shutdownWrite()
        #expect(c.readToEOF() == "")
        #expect(eventually { f.snapshot()[1]?.active == 0 })
    }

    @Test("a backend that closes without answering: 502, counted as a reset")
    func resetIs502() throws {
        let bad = try TestBackend(name: "bad", behaviour: .closeAtOnce)
        defer { bad.stop() }
        let f = try RouterFixture(mode: .http)
        f.update([bad.backend(id: 1)])
        let c = try f.connect()
        c.send(get("/"))
        #expect(c.readResponse()?.status == 502)
        #expect(eventually { f.snapshot()[1]?.resets == 1 && f.snapshot()[1]?.active == 0 })
    }

    @Test("Expect: 100-continue gets the backend's 100 through, then the answer")
    func expectContinue() throws {
        let app = try TestBackend(name: "app", behaviour: .http)
        defer { app.stop() }
        let f = try RouterFixture(mode: .http)
        f.update([app.backend(id: 1)])
        let c = try f.connect()
        c.send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        #expect(c.readResponse()?.status == 100)
        c.send("12345")
        let r = try #require(c.readResponse())
        #expect(r.status == 200 && seen(r)["body"] == "5")
        #expect(f.snapshot()[1]?.statusClasses == [0, 1, 0, 0, 0])
    }

    @Test("a client that stops reading a large answer does not make the router buffer it")
    func backpressure() throws {
        let hose = try TestBackend(name: "hose", behaviour: .httpFirehose)
        defer { hose.stop() }
        let f = try RouterFixture(mode: .http)
        f.update([hose.backend(id: 1)])
        let c = try f.connect()
        c.send(get("/"))
        #expect(c.readLine()?.hasPrefix("HTTP/1.1 200") == true)
        var last = -1
        #expect(eventually(10) {
            let now = hose.writtenCount
            defer { last = now }
            // The sampling interval of "stopped growing": two counts 200 ms apart are equal.
            usleep(200_000)
            return now == last
        })
        #expect(hose.writtenCount < 32 << 20, "the backend wrote \(hose.writtenCount) bytes to a client that reads nothing")
        #expect(c.read(exactly: 1 << 20)?.count == 1 << 20)
        #expect(eventually { hose.writtenCount > last })
    }
}
