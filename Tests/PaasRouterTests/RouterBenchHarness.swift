import Testing

@testable import PaasRouter

#if canImport(Glibc)
import Glibc
#endif

private func env(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// Not a test: with `PAAS_ROUTER_BENCH=SECONDS` set, serves a tcp route on
/// `PAAS_ROUTER_BENCH_TCP` (default 9101) and an http route on `PAAS_ROUTER_BENCH_HTTP` (9102)
/// over the backends on 127.0.0.1 ports `PAAS_ROUTER_BENCH_BACKENDS` (comma-separated), with
/// `PAAS_ROUTER_BENCH_THREADS` threads, for wrk to measure; then prints the counters.
@Suite("router benchmark harness")
struct RouterBenchHarness {
    @Test("serves routes for a benchmark", .enabled(if: env("PAAS_ROUTER_BENCH") != nil))
    func serve() throws {
        let seconds = UInt32(env("PAAS_ROUTER_BENCH") ?? "") ?? 30
        let threads = Int(env("PAAS_ROUTER_BENCH_THREADS") ?? "") ?? 1
        let ports = (env("PAAS_ROUTER_BENCH_BACKENDS") ?? "").split(separator: ",").compactMap { Int($0) }
        let backends = ports.enumerated().map { Backend(id: $0 + 1, name: "web.\($0 + 1)", port: $1) }
        let router = Router(threads: threads, wake: {})
        defer { router.shutdown() }
        for (name, mode, port) in [
            ("tcp", RouteMode.tcp, Int(env("PAAS_ROUTER_BENCH_TCP") ?? "") ?? 9101),
            ("http", RouteMode.http, Int(env("PAAS_ROUTER_BENCH_HTTP") ?? "") ?? 9102),
        ] {
            router.update(route: name, table: RouteTable(backends: backends))
            _ = try router.listen(RouteSettings(name: name, mode: mode, source: .port(port)))
        }
        print("router bench: ready, threads=\(threads), backends=\(ports)")
        sleep(seconds)
        for name in ["tcp", "http"] {
            for (id, c) in router.snapshot(route: name).sorted(by: { $0.key < $1.key }) {
                print("router bench: \(name) backend \(id): \(c)")
            }
        }
    }
}
