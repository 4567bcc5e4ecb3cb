import PaasCore
import Testing
@testable import PaasConfig

@Suite struct LogRingTests {
    static func add(_ ring: inout LogRing, _ text: String, source: Int32, stream: LogStream = .stdout, second: Int64 = 1) {
        var t = text
        t.withUTF8 { ring.append(source: source, stream: stream, continuation: false, time: WallTime(seconds: second, nanoseconds: 7), text: UnsafeRawBufferPointer($0)) }
    }

    @Test func lastLinesOfASourceInOrder() {
        var ring = LogRing()
        for i in 0..<10 { Self.add(&ring, "a\(i)", source: 0) ; Self.add(&ring, "b\(i)", source: 1, stream: .stderr, second: Int64(i)) }
        Self.add(&ring, "event", source: -1, stream: .event)
        let b = ring.last(3) { $0 == 1 }
        #expect(b.map { String(decoding: $0.text, as: UTF8.self) } == ["b7", "b8", "b9"])
        #expect(b.allSatisfy { $0.stream == .stderr && $0.source == 1 && $0.time.nanoseconds == 7 })
        #expect(b.map(\.time.seconds) == [7, 8, 9])
        #expect(ring.last(1) { _ in true }.first?.stream == .event)
        #expect(ring.last(0) { _ in true }.isEmpty)
        #expect(ring.last(100) { $0 == 0 }.count == 10)
    }

    @Test func memoryStaysWithinCapacityAndKeepsTheNewest() {
        var ring = LogRing(capacity: 4096)
        for i in 0..<1000 { Self.add(&ring, "line \(i) " + String(repeating: "x", count: 50), source: 2) }
        #expect(ring.byteCount <= 4096)
        let kept = ring.last(1000) { _ in true }
        #expect(!kept.isEmpty && kept.count < 1000)
        #expect(String(decoding: kept.last!.text, as: UTF8.self).hasPrefix("line 999 "))
        // What is kept is a contiguous tail: consecutive numbers up to the last.
        let numbers = kept.map { Int(String(decoding: $0.text, as: UTF8.self).split(separator: " ")[1])! }
        #expect(numbers == Array((1000 - numbers.count)..<1000))
    }
}
