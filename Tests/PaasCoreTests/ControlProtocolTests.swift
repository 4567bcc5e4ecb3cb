import PaasCore
import Testing
@testable import PaasConfig

/// Decoding control requests: every number is range-checked, and a bad one is an error
/// reply, never a trap further on.
@Suite struct ControlProtocolTests {
    static func decode(_ text: String) -> Result<ControlRequest, ControlError> {
        ControlRequest.decode(Array(text.utf8)[...])
    }

    @Test(arguments: [
        (#"{"v":1,"cmd":"logs","lines":9223372036854775807}"#, "\"lines\" must be a whole number from 0 to 1000000"),
        (#"{"v":1,"cmd":"logs","lines":1000001}"#, "\"lines\" must be a whole number"),
        (#"{"v":1,"cmd":"logs","lines":-1}"#, "\"lines\" must be a whole number"),
        (#"{"v":1,"cmd":"logs","lines":1e300}"#, "\"lines\" must be a whole number"),
        (#"{"v":1,"cmd":"logs","lines":99999999999999999999999}"#, "\"lines\" must be a whole number"),
        (#"{"v":1,"cmd":"logs","lines":2.5}"#, "\"lines\" must be a whole number"),
        (#"{"v":1,"cmd":"logs","lines":"10"}"#, "\"lines\" must be a whole number"),
        (#"{"v":1,"cmd":"logs","follow":"yes"}"#, "\"follow\" must be true or false"),
        (#"{"v":1,"cmd":"scale","counts":{"web":9223372036854775807}}"#, "count for web must be a whole number from 0 to 65535"),
        (#"{"v":1,"cmd":"scale","counts":{"web":65536}}"#, "count for web must be a whole number"),
        (#"{"v":1,"cmd":"scale","counts":{"all":-9223372036854775808}}"#, "count for all must be a whole number"),
        (#"{"v":1,"cmd":"scale","counts":{"web":-1}}"#, "count for web must be a whole number"),
        (#"{"v":1,"cmd":"scale","counts":{"web":1e19}}"#, "count for web must be a whole number"),
        (#"{"v":9223372036854775807,"cmd":"ps"}"#, "unsupported protocol version"),
        (#"{"v":1e400,"cmd":"ps"}"#, "out of range"),
    ])
    func outOfRangeNumbersAreErrors(request: String, expected: String) {
        guard case .failure(let error) = Self.decode(request) else {
            Issue.record("\(request) was accepted")
            return
        }
        #expect(error.message.contains(expected), "\(request): \(error.message)")
    }

    @Test func numbersInRangeAreAccepted() {
        #expect(Self.decode(#"{"v":1,"cmd":"logs","lines":1000000,"follow":true}"#) == .success(.logs(lines: 1_000_000, follow: true, targets: [])))
        #expect(Self.decode(#"{"v":1,"cmd":"logs"}"#) == .success(.logs(lines: 100, follow: false, targets: [])))
        #expect(Self.decode(#"{"v":1,"cmd":"scale","counts":{"web":65535}}"#) == .success(.scale(FormationSpec(counts: [("web", 65535)]))))
        #expect(Self.decode(#"{"v":1,"cmd":"scale","counts":{"web":0}}"#) == .success(.scale(FormationSpec(counts: [("web", 0)]))))
    }
}
