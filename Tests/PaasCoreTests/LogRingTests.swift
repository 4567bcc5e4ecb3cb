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

    /// Reads everything from `cursor` in chunks of `budget`, as the control server does.
    static func stream(_ ring: LogRing, from cursor: LogRing.Cursor, to end: LogRing.Cursor?, budget: Int, where include: (Int32) -> Bool = { _ in true }) -> (texts: [String], result: LogRing.ReadResult, chunks: Int) {
        var cursor = cursor
        var texts: [String] = []
        var chunks = 0
        while true {
            chunks += 1
            let result = ring.read(from: &cursor, to: end, where: include, budget: budget) { _, _, _, _, text in texts.append(String(decoding: text, as: UTF8.self)) }
            if result != .more { return (texts, result, chunks) }
        }
    }

    @Test func theHistoryStreamsInChunksFromACursor() {
        var ring = LogRing()
        for i in 0..<100 { Self.add(&ring, "a\(i)", source: 0); Self.add(&ring, "b\(i)", source: 1) }
        let start = ring.start(last: 5) { $0 == 1 }
        #expect(start.lines == 5)
        let five = Self.stream(ring, from: start.cursor, to: ring.end, budget: 1 << 20) { $0 == 1 }
        #expect(five.texts == (95..<100).map { "b\($0)" } && five.result == .reachedEnd)
        // Small budgets: many chunks, the same lines in the same order.
        let all = ring.start(last: 1000) { _ in true }
        #expect(all.lines == 200)
        let chunked = Self.stream(ring, from: all.cursor, to: ring.end, budget: 100)
        #expect(chunked.texts.count == 200 && chunked.texts.first == "a0" && chunked.texts.last == "b99" && chunked.chunks > 10)
        // Lines appended after the request are not part of a reply that ends where it began...
        let end = ring.end
        Self.add(&ring, "later", source: 0)
        #expect(Self.stream(ring, from: all.cursor, to: end, budget: 1 << 20).texts.last == "b99")
        // ...but a follow stream (no end) reads on to the newest.
        #expect(Self.stream(ring, from: all.cursor, to: nil, budget: 1 << 20).texts.last == "later")
        #expect(ring.start(last: 0) { _ in true }.lines == 0)
    }

    @Test func aCursorSurvivesOneRotationAndIsLostAfterTwo() {
        var ring = LogRing(capacity: 4096)
        for i in 0..<10 { Self.add(&ring, "old \(i)", source: 0) }
        let start = ring.start(last: 10) { _ in true }
        // Fill about one generation (half the capacity): the lines move to the previous one.
        for i in 0..<40 { Self.add(&ring, "new \(i) " + String(repeating: "x", count: 20), source: 0) }
        let survived = Self.stream(ring, from: start.cursor, to: nil, budget: 64)
        #expect(survived.result == .reachedEnd && survived.texts.first == "old 0" && survived.texts.last == "new 39 " + String(repeating: "x", count: 20))
        // Many more: the generation the cursor points into is gone.
        for i in 0..<400 { Self.add(&ring, "newer \(i) " + String(repeating: "x", count: 20), source: 0) }
        #expect(Self.stream(ring, from: start.cursor, to: nil, budget: 64).result == .lost)
    }
}
