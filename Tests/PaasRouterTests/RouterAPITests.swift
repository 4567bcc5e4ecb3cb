import Testing

@testable import PaasRouter

@Suite("router values")
struct RouterAPITests {
    @Test("a rollout counts connect errors, resets and 5xx as errors")
    func errors() {
        var c = BackendCounters()
        c.connectErrors = 2
        c.resets = 3
        c.statusClasses[4] = 4
        c.statusClasses[3] = 10
        #expect(c.errors == 9)
    }
}
