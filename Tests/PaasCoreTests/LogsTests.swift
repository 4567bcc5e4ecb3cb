import Foundation
import Testing

@testable import PaasCore
@testable import PaasConfig

/// One piece handed on by the framer.
struct Piece: Equatable, CustomStringConvertible {
    var bytes: [UInt8]
    var continuation: Bool
    var description: String { "\(continuation ? "+" : "|")\(String(decoding: bytes, as: UTF8.self).debugDescription)" }

    init(_ text: String, _ continuation: Bool = false) {
        self.bytes = Array(text.utf8)
        self.continuation = continuation
    }

    init(bytes: [UInt8], continuation: Bool) {
        self.bytes = bytes
        self.continuation = continuation
    }
}

/// Frames `chunks` fed one after another, then flushes when asked.
private func frame(_ chunks: [[UInt8]], maximumLine: Int, flush: Bool = true) -> (pieces: [Piece], pending: Int) {
    var framer = LineFramer(maximumLine: maximumLine)
    var pieces: [Piece] = []
    for chunk in chunks {
        chunk.withUnsafeBytes { buffer in
            framer.feed(buffer) { line, continuation in pieces.append(Piece(bytes: Array(line), continuation: continuation)) }
        }
    }
    let pending = framer.pendingCount
    if flush { framer.flush { line, continuation in pieces.append(Piece(bytes: Array(line), continuation: continuation)) } }
    return (pieces, pending)
}

private func frame(_ chunks: [String], maximumLine: Int = 1024, flush: Bool = true) -> [Piece] {
    frame(chunks.map { Array($0.utf8) }, maximumLine: maximumLine, flush: flush).pieces
}

/// Joins pieces back into lines: a continuation piece extends the line before it.
private func reassemble(_ pieces: [Piece]) -> [[UInt8]] {
    var lines: [[UInt8]] = []
    for p in pieces {
        if p.continuation, !lines.isEmpty { lines[lines.count - 1] += p.bytes } else { lines.append(p.bytes) }
    }
    return lines
}

@Suite struct LineFramerTests {
    @Test func defaultMaximumIsOneMebibyte() {
        #expect(LineFramer.defaultMaximumLine == 1 << 20)
        #expect(LineFramer().maximumLine == 1 << 20)
    }

    @Test func wholeLinesInOneFeed() {
        #expect(frame(["one\ntwo\n\nthree\n"]) == [Piece("one"), Piece("two"), Piece(""), Piece("three")])
    }

    @Test func linesSplitAcrossFeeds() {
        #expect(frame(["he", "llo\nwor", "ld", "\n"]) == [Piece("hello"), Piece("world")])
    }

    @Test func byteByByte() {
        let text = "ab\r\ncd\n\nef"
        let chunks = text.utf8.map { [$0] }
        #expect(frame(chunks, maximumLine: 1024).pieces == [Piece("ab"), Piece("cd"), Piece(""), Piece("ef")])
    }

    @Test func crlfIsReadAsLF() {
        #expect(frame(["a\r\nb\r\n"]) == [Piece("a"), Piece("b")])
        // The CR and the LF in different reads.
        #expect(frame(["a\r", "\nb\r", "\n"]) == [Piece("a"), Piece("b")])
    }

    @Test func loneCRIsContent() {
        #expect(frame(["a\rb\n", "\r\r\n"]) == [Piece("a\rb"), Piece("\r")])
    }

    @Test func partialLineIsHeldUntilFlush() {
        let r = frame([Array("done\npart".utf8)], maximumLine: 64, flush: false)
        #expect(r.pieces == [Piece("done")])
        #expect(r.pending == 4)
        #expect(frame(["done\npart"]) == [Piece("done"), Piece("part")])
    }

    @Test func flushWithNothingPendingEmitsNothing() {
        #expect(frame(["a\n"]) == [Piece("a")])
        #expect(frame([String]()) == [])
        #expect(frame([""]) == [])
    }

    @Test func lineOfExactlyMaximumIsWhole() {
        #expect(frame(["abcd\n"], maximumLine: 4) == [Piece("abcd")])
        #expect(frame(["ab", "cd\n"], maximumLine: 4) == [Piece("abcd")])
        #expect(frame(["abcd", "\n"], maximumLine: 4) == [Piece("abcd")])
        #expect(frame(["abcd"], maximumLine: 4) == [Piece("abcd")])
    }

    // The CR of a CRLF does not count against the limit: no spurious empty continuation piece.
    @Test func crlfLineOfExactlyMaximumIsWhole() {
        #expect(frame(["abcd\r\n"], maximumLine: 4) == [Piece("abcd")])
        #expect(frame(["ab", "cd\r\n"], maximumLine: 4) == [Piece("abcd")])
        // Fault 25: the CR and the LF in separate reads.
        #expect(frame(["abcd\r", "\n"], maximumLine: 4) == [Piece("abcd")])
        #expect(frame(["abcd\r", "\nnext\n"], maximumLine: 4) == [Piece("abcd"), Piece("next")])
        #expect(frame(["abcdefgh\r", "\n"], maximumLine: 4) == [Piece("abcd"), Piece("efgh", true)])
        // A CR that is not half of a CRLF stays content.
        #expect(frame(["abcd\r", "x\n"], maximumLine: 4) == [Piece("abcd"), Piece("\rx", true)])
    }

    @Test func longerLineIsCutIntoPiecesOfMaximum() {
        #expect(frame(["abcdefghij\n"], maximumLine: 4) == [Piece("abcd"), Piece("efgh", true), Piece("ij", true)])
        #expect(frame(["abcde\n", "next\n"], maximumLine: 4) == [Piece("abcd"), Piece("e", true), Piece("next")])
    }

    @Test func exactMultipleOfMaximum() {
        #expect(frame(["abcdefgh\n"], maximumLine: 4) == [Piece("abcd"), Piece("efgh", true)])
    }

    @Test func longLineAcrossFeedsIsCutAsItArrives() {
        let r = frame([Array("abcdef".utf8)], maximumLine: 4, flush: false)
        // The first piece goes out before the line ends, so memory stays bounded.
        #expect(r.pieces == [Piece("abcd")])
        #expect(r.pending == 2)
        #expect(frame(["abc", "def", "ghi", "j\nk\n"], maximumLine: 4) == [Piece("abcd"), Piece("efgh", true), Piece("ij", true), Piece("k")])
    }

    @Test func longPartialLineIsFlushedAsContinuation() {
        #expect(frame(["abcdef"], maximumLine: 4) == [Piece("abcd"), Piece("ef", true)])
    }

    @Test func maximumOfOne() {
        #expect(frame(["abc\n\nd\n"], maximumLine: 1) == [Piece("a"), Piece("b", true), Piece("c", true), Piece(""), Piece("d")])
    }

    @Test func pendingNeverExceedsMaximum() {
        var framer = LineFramer(maximumLine: 8)
        var most = 0
        for _ in 0..<100 {
            Array("0123456".utf8).withUnsafeBytes { framer.feed($0) { line, _ in most = max(most, line.count) } }
            #expect(framer.pendingCount <= 8)
        }
        #expect(most == 8)
    }

    @Test(arguments: [1, 2, 3, 5, 8, 64])
    func nothingIsLost(maximumLine: Int) {
        var rng = SplitMix64(seed: UInt64(maximumLine) &* 7919)
        let alphabet: [UInt8] = Array("ab\n\r\u{7F}x".utf8) + [0xFF, 0xC3]
        for _ in 0..<200 {
            let input = (0..<Int.random(in: 0...60, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            var chunks: [[UInt8]] = []
            var i = 0
            while i < input.count {
                let n = Int.random(in: 1...7, using: &rng)
                chunks.append(Array(input[i..<min(input.count, i + n)]))
                i += n
            }
            let pieces = frame(chunks, maximumLine: maximumLine).pieces
            // Expected: every line without its LF (and one CR before it); an unterminated last
            // line is flushed as written, a final CR included (it was not a line end).
            var expected = input.split(separator: 10, omittingEmptySubsequences: false).map { Array($0) }
            let partial = expected.removeLast()
            expected = expected.map { $0.last == 13 ? Array($0.dropLast()) : $0 }
            if !partial.isEmpty { expected.append(partial) }
            #expect(reassemble(pieces) == expected, "input \(input), max \(maximumLine)")
            #expect(pieces.allSatisfy { $0.bytes.count <= maximumLine })
            #expect(pieces.allSatisfy { !$0.bytes.contains(10) })
            // Concatenation of all bytes is the input without line ends.
            #expect(pieces.flatMap(\.bytes) == expected.flatMap { $0 })
        }
    }
}

@Suite struct LogFormatterTests {
    static let web1 = LogSource(name: "web.1", type: "web", instance: 1, colorIndex: 0)
    static let worker12 = LogSource(name: "worker.12", type: "worker", instance: 12, colorIndex: 1)
    /// 2023-11-14T22:13:20.123Z
    static let time = WallTime(seconds: 1_700_000_000, nanoseconds: 123_456_789)

    private func format(_ style: LogStyle, width: Int = 6, _ lines: [(String, LogSource, LogStream, Bool)]) -> String {
        var f = LogFormatter(style: style, nameWidth: width)
        var out: [UInt8] = []
        for (text, source, stream, continuation) in lines {
            var text = text
            text.withUTF8 { f.append(UnsafeRawBufferPointer($0), source: source, stream: stream, continuation: continuation, at: Self.time, to: &out) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func formatBytes(_ bytes: [UInt8], style: LogStyle) -> [UInt8] {
        var f = LogFormatter(style: style, nameWidth: 6)
        var out: [UInt8] = []
        bytes.withUnsafeBytes { f.append($0, source: Self.web1, stream: .stderr, at: Self.time, to: &out) }
        return out
    }

    private let plain = LogStyle(format: .text, color: false, timestamps: false)

    @Test func textPadsNamesToTheWidth() {
        let out = format(plain, width: 9, [("hello", Self.web1, .stdout, false), ("busy", Self.worker12, .stderr, false)])
        #expect(out == "web.1     | hello\nworker.12 | busy\n")
    }

    @Test func nameLongerThanWidthIsNotCut() {
        #expect(format(plain, width: 3, [("x", Self.worker12, .stdout, false)]) == "worker.12 | x\n")
    }

    @Test func continuationUsesPlus() {
        let out = format(plain, width: 5, [("abcd", Self.web1, .stdout, false), ("efgh", Self.web1, .stdout, true)])
        #expect(out == "web.1 | abcd\nweb.1 + efgh\n")
    }

    @Test func emptyLineKeepsTheSeparatorSpace() {
        #expect(format(plain, width: 5, [("", Self.web1, .stdout, false)]) == "web.1 | \n")
    }

    @Test func fitWidensButNeverNarrows() {
        var f = LogFormatter(style: plain, nameWidth: 6)
        f.fit(name: "web.1")
        #expect(f.nameWidth == 6)
        f.fit(name: "worker.10")
        #expect(f.nameWidth == 9)
        f.fit(name: "a")
        #expect(f.nameWidth == 9)
        f.fit(name: "日本.1")
        #expect(f.nameWidth == 9)
        f.fit(name: "日本語.10")  // 12 bytes of UTF-8
        #expect(f.nameWidth == 12)
    }

    @Test func timestampIsLocalClock() throws {
        let out = format(LogStyle(format: .text, color: false, timestamps: true), width: 5, [("hi", Self.web1, .stdout, false)])
        let c = Self.time.localClock()
        let two = { (v: Int) in v < 10 ? "0\(v)" : "\(v)" }
        #expect(out == "\(two(c.hour)):\(two(c.minute)):\(two(c.second)) web.1 | hi\n")
    }

    @Test func colourOnlyWhenAsked() {
        let coloured = format(LogStyle(format: .text, color: true, timestamps: false), width: 5, [("hi", Self.web1, .stdout, false), ("yo", Self.worker12, .stdout, false)])
        #expect(coloured == "\u{1B}[36mweb.1 |\u{1B}[0m hi\n\u{1B}[33mworker.12 |\u{1B}[0m yo\n")
        let plainOut = format(plain, width: 5, [("hi", Self.web1, .stdout, false)])
        #expect(!plainOut.contains("\u{1B}"))
    }

    @Test func colourCyclesThroughThePalette() {
        let a = LogSource(name: "a.1", type: "a", instance: 1, colorIndex: 2)
        let b = LogSource(name: "b.1", type: "b", instance: 1, colorIndex: 13)  // 13 % 11 == 2
        let out = format(LogStyle(format: .text, color: true, timestamps: false), width: 3, [("x", a, .stdout, false), ("y", b, .stdout, false)])
        #expect(out == "\u{1B}[32ma.1 |\u{1B}[0m x\n\u{1B}[32mb.1 |\u{1B}[0m y\n")
    }

    @Test func systemEventsAreBoldWhite() {
        var f = LogFormatter(style: LogStyle(format: .text, color: true, timestamps: false), nameWidth: 6)
        var out: [UInt8] = []
        f.appendEvent("web.1 started (pid 42)", at: Self.time, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "\u{1B}[1;37msystem |\u{1B}[0m web.1 started (pid 42)\n")
    }

    @Test func textPassesBytesThrough() {
        let bytes: [UInt8] = [0x61, 0xFF, 0x09, 0x1B, 0x62]
        #expect(formatBytes(bytes, style: plain) == Array("web.1  | ".utf8) + bytes + [10])
    }

    // MARK: JSON

    private func parse(_ line: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(object as? [String: Any])
    }

    @Test func jsonLineHasEveryField() throws {
        let out = format(LogStyle(format: .json), [("hello \"world\"", Self.web1, .stdout, false)])
        #expect(out.hasSuffix("}\n"))
        #expect(out.filter { $0 == "\n" }.count == 1)
        let o = try parse(out)
        #expect(o["time"] as? String == "2023-11-14T22:13:20.123Z")
        #expect(o["process"] as? String == "web.1")
        #expect(o["type"] as? String == "web")
        #expect(o["instance"] as? Int == 1)
        #expect(o["stream"] as? String == "stdout")
        #expect(o["text"] as? String == "hello \"world\"")
        #expect(o["continuation"] == nil)
        #expect(Set(o.keys) == ["time", "process", "type", "instance", "stream", "text"])
    }

    @Test func jsonExactText() {
        let out = format(LogStyle(format: .json), [("x", Self.worker12, .stderr, true)])
        #expect(out == #"{"time":"2023-11-14T22:13:20.123Z","process":"worker.12","type":"worker","instance":12,"stream":"stderr","text":"x","continuation":true}"# + "\n")
    }

    @Test func jsonIgnoresColourAndTimestampSettings() {
        let a = format(LogStyle(format: .json, color: true, timestamps: false), [("x", Self.web1, .stdout, false)])
        let b = format(LogStyle(format: .json), [("x", Self.web1, .stdout, false)])
        #expect(a == b)
        #expect(!a.contains("\u{1B}"))
    }

    @Test(arguments: [(0, "000"), (1_000_000, "001"), (999_999_999, "999"), (50_000_000, "050")])
    func jsonMilliseconds(nanos: Int32, millis: String) throws {
        var f = LogFormatter(style: LogStyle(format: .json), nameWidth: 6)
        var out: [UInt8] = []
        f.appendEvent("e", at: WallTime(seconds: 0, nanoseconds: nanos), to: &out)
        let o = try parse(String(decoding: out, as: UTF8.self))
        #expect(o["time"] as? String == "1970-01-01T00:00:00.\(millis)Z")
    }

    @Test func jsonEvent() throws {
        var f = LogFormatter(style: LogStyle(format: .json), nameWidth: 6)
        var out: [UInt8] = []
        f.appendEvent("sending SIGTERM to web.1", at: Self.time, to: &out)
        let o = try parse(String(decoding: out, as: UTF8.self))
        #expect(o["process"] as? String == "system")
        #expect(o["type"] as? String == "system")
        #expect(o["instance"] is NSNull)
        #expect(o["stream"] as? String == "event")
        #expect(o["text"] as? String == "sending SIGTERM to web.1")
    }

    @Test func jsonRepairsInvalidUTF8() throws {
        let bytes: [UInt8] = [0x61, 0xFF, 0x62, 0xC3, 0x28, 0xE2, 0x82, 0x63] + Array("é".utf8)
        let out = formatBytes(bytes, style: LogStyle(format: .json))
        let o = try parse(String(decoding: out, as: UTF8.self))
        let text = try #require(o["text"] as? String)
        #expect(text == String(decoding: bytes, as: UTF8.self))
        #expect(text.hasPrefix("a\u{FFFD}b\u{FFFD}("))
        #expect(text.hasSuffix("c" + "é"))
        #expect(o["stream"] as? String == "stderr")
    }

    @Test func jsonEscapesControlCharacters() throws {
        var bytes: [UInt8] = Array(0..<32) + [127, 34, 92, 47]
        bytes += Array("end".utf8)
        let out = formatBytes(bytes, style: LogStyle(format: .json))
        let line = String(decoding: out, as: UTF8.self)
        // One line: no raw control byte but the final newline.
        #expect(out.dropLast().allSatisfy { $0 >= 32 && $0 != 127 })
        #expect(line.contains(#"\u0000\u0001"#))
        #expect(line.contains(#"\t\n\u000b\u000c\r"#))
        #expect(line.contains(#"\u001f\u007f\"\\/end"#))
        let o = try parse(line)
        #expect(o["text"] as? String == String(decoding: bytes, as: UTF8.self))
    }
}

@Suite struct JSONValueTests {
    @Test(arguments: [
        (JSON.string("a\"b\\c\nd"), #""a\"b\\c\nd""#),
        (JSON.string(""), #""""#),
        (JSON.string("é日本"), "\"é日本\""),
        (JSON.int(-42), "-42"),
        (JSON.int(0), "0"),
        (JSON.number(2), "2"),
        (JSON.number(1.5), "1.5"),
        (JSON.number(-0.25), "-0.25"),
        (JSON.bool(true), "true"),
        (JSON.bool(false), "false"),
        (JSON.null, "null"),
        (JSON.array([]), "[]"),
        (JSON.object([]), "{}"),
        (JSON.array([.int(1), .string("x"), .null]), #"[1,"x",null]"#),
        (JSON.object([("b", .int(1)), ("a", .array([.bool(true)]))]), #"{"b":1,"a":[true]}"#),
    ])
    func compact(_ value: JSON, _ text: String) {
        #expect(value.serialized() == text)
    }

    @Test func pretty() {
        let value = JSON.object([("a", .int(1)), ("b", .array([.int(1), .int(2)])), ("c", .object([])), ("d", .array([]))])
        #expect(value.serialized(pretty: true) == """
            {
              "a": 1,
              "b": [
                1,
                2
              ],
              "c": {},
              "d": []
            }
            """)
    }

    @Test func everyOutputParses() throws {
        let value = JSON.object([
            ("s", .string("\u{0}\u{1F}\u{7F}\t\"\\")), ("n", .number(0.1)), ("big", .number(1e20)), ("i", .int(Int.max)),
            ("nested", .object([("x", .array([.object([("y", .null)])]))])),
        ])
        for pretty in [false, true] {
            let parsed = try JSONSerialization.jsonObject(with: Data(value.serialized(pretty: pretty).utf8))
            let o = try #require(parsed as? [String: Any])
            #expect(o["s"] as? String == "\u{0}\u{1F}\u{7F}\t\"\\")
            #expect(o["n"] as? Double == 0.1)
            #expect(o["big"] as? Double == 1e20)
            #expect((o["i"] as? NSNumber)?.int64Value == Int64.max)
            let nested = try #require(o["nested"] as? [String: Any])
            #expect(((nested["x"] as? [Any])?.first as? [String: Any])?["y"] is NSNull)
        }
    }

    @Test func keysKeepTheirOrder() {
        let keys = (0..<20).map { "k\(19 - $0)" }
        let text = JSON.object(keys.map { ($0, .int(0)) }).serialized()
        let positions = keys.map { text.range(of: "\"\($0)\"")!.lowerBound }
        #expect(positions == positions.sorted())
    }

    @Test func appendStringFromBytes() {
        var out: [UInt8] = []
        JSON.appendString([0x41, 0x80, 0x0A] as [UInt8], to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "\"A\u{FFFD}\\n\"")
    }

    @Test func equalityIsBySerialization() {
        #expect(JSON.object([("a", .int(1))]) == JSON.object([("a", .number(1))]))
        #expect(JSON.object([("a", .int(1)), ("b", .int(2))]) != JSON.object([("b", .int(2)), ("a", .int(1))]))
    }
}
