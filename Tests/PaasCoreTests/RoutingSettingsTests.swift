import Testing

@testable import PaasConfig

/// app.json's router and rollout settings (issue 10): defaults, what is read, what is refused.
@Suite("app.json routing and rollout")
struct RoutingSettingsTests {
    static func parse(_ processes: String, types: [String] = ["web", "worker", "api"]) throws(ConfigError) -> AppManifest {
        try AppManifest.parse(Array("{\"paas\": {\"processes\": \(processes)}}".utf8), file: "app.json", types: types)
    }

    @Test("web is routed by default, other types are not, and the defaults are the documented ones")
    func defaults() throws {
        let m = try Self.parse("{}")
        let s = ProcessSettings()
        #expect(m.processes.isEmpty)
        #expect(s.isRouted("web"))
        #expect(!s.isRouted("worker"))
        #expect(s.router == .tcp)
        #expect(s.rollout.steps == [10, 50, 100])
        #expect(s.rollout.deployTimeout == 60 * ProcessSettings.second)
        #expect(s.rollout.drainTimeout == 30 * ProcessSettings.second)
        #expect(s.rollout.effectiveStrategy(routed: true) == .blueGreen)
        #expect(s.rollout.effectiveStrategy(routed: false) == .rolling)
    }

    @Test("every key is read")
    func everyKey() throws {
        let m = try Self.parse("""
            {"api": {"router": "http", "fallback": "public/503.html", "ejection": {"errors": 3, "cooldown": 2.5},
                     "rollout": {"strategy": "canary", "steps": [5, 25, 100], "step_duration": 1.5, "min_requests": 20,
                                 "deploy_timeout": 10, "drain_timeout": 0, "failure_threshold": 2}},
             "web": {"routed": false}}
            """)
        let api = try #require(m.processes["api"])
        #expect(api.isRouted("api"))  // `router` implies routed
        #expect(api.router == .http)
        #expect(api.fallback == "public/503.html")
        #expect(api.ejectionErrors == 3)
        #expect(api.ejectionCooldown == 2_500_000_000)
        #expect(api.rollout.strategy == .canary)
        #expect(api.rollout.steps == [5, 25, 100])
        #expect(api.rollout.stepDuration == 1_500_000_000)
        #expect(api.rollout.minRequests == 20)
        #expect(api.rollout.deployTimeout == 10 * ProcessSettings.second)
        #expect(api.rollout.drainTimeout == 0)
        #expect(api.rollout.failureThreshold == 2)
        #expect(m.processes["web"]?.isRouted("web") == false)
    }

    static let refused: [(String, String)] = [
        (#"{"web": {"router": "udp"}}"#, #"paas.processes.web.router: expected "tcp" or "http""#),
        (#"{"web": {"routed": "yes"}}"#, "paas.processes.web.routed: expected true or false"),
        (#"{"web": {"fallback": "/etc/passwd"}}"#, "paas.processes.web.fallback: expected a path relative to the app root"),
        (#"{"web": {"rollout": {"strategy": "big-bang"}}}"#, #"paas.processes.web.rollout.strategy: expected "blue-green", "canary" or "rolling""#),
        (#"{"web": {"rollout": {"steps": [50, 10, 100]}}}"#, "paas.processes.web.rollout.steps[1]: 10 after 50; expected increasing percentages ending with 100"),
        (#"{"web": {"rollout": {"steps": [10, 50]}}}"#, "paas.processes.web.rollout.steps: expected increasing percentages ending with 100"),
        (#"{"web": {"rollout": {"steps": [0, 100]}}}"#, "paas.processes.web.rollout.steps[0]: 0 is out of range; expected a whole number from 1 to 100"),
        (#"{"web": {"rollout": {"steps": []}}}"#, "paas.processes.web.rollout.steps: expected an array of percentages ending with 100"),
        (#"{"web": {"rollout": {"deploy_timeout": 0}}}"#, "paas.processes.web.rollout.deploy_timeout: 0 is out of range"),
        (#"{"web": {"rollout": {"drain": 5}}}"#, "paas.processes.web.rollout.drain: unknown key; expected strategy, steps"),
        (#"{"worker": {"rollout": {"strategy": "canary"}}}"#, "paas.processes.worker.rollout.strategy: canary needs a routed type"),
        (#"{"web": {"routed": false, "rollout": {"strategy": "canary"}}}"#, "paas.processes.web.rollout.strategy: canary needs a routed type"),
        (#"{"web": {"ejection": {"errors": 0}}}"#, "paas.processes.web.ejection.errors: 0 is out of range"),
    ]

    @Test("bad values are refused with their path", arguments: refused)
    func refusedValue(_ text: String, _ message: String) {
        #expect(throws: ConfigError.self) { try Self.parse(text) }
        do { _ = try Self.parse(text) } catch { #expect(error.description.contains(message), "\(error.description)") }
    }

    @Test("canary on a non-web type that is routed is accepted")
    func canaryRouted() throws {
        let m = try Self.parse(#"{"api": {"routed": true, "rollout": {"strategy": "canary"}}}"#)
        #expect(m.processes["api"]?.rollout.strategy == .canary)
    }
}
