/// A strict JSON parser (RFC 8259) for the control protocol and app.json, with the line and
/// column of every error. Hand-written for the same reason as the writer: no Foundation
/// start-up cost in every `paas` command, and errors that can name a line.
///
/// It reads untrusted input (any local client's request, any app.json), so every choice RFC 8259
/// leaves to implementations is made the strict way, and every resource is bounded:
/// - Nesting deeper than ``maximumDepth`` is an error (the parser recurses once per level).
/// - A key repeated in one object is an error: which one wins is ambiguous, and a file that
///   says `"restart"` twice is a mistake worth a line number.
/// - A number must be finite as a `Double` (`1e400` is refused); an integer that fits an `Int`
///   stays exact, a larger one becomes a `Double`.
/// - Only space, tab, LF and CR are whitespace; no BOM, no comments, no trailing commas.
/// - Strings must be valid UTF-8 and may not hold raw control characters; a `\u` escape of a
///   lone surrogate is refused (a Swift `String` cannot hold one).
/// - Time and memory are linear in the input: no path or position is stored per value.
///   ``line(of:in:)`` finds a value's line again only when an error is to be reported.
package enum JSONParser {
    /// Where and why the text is not JSON.
    package struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        package var message: String
        package var line: Int
        package var column: Int
        package var description: String { "line \(line), column \(column): \(message)" }
    }

    /// One step of a path into a JSON value: an object's key or an array's index.
    package enum PathComponent: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    /// Nesting deeper than this is refused (a hostile request cannot exhaust the stack).
    package static let maximumDepth = 64

    /// Parses one JSON value; only blanks may surround it.
    package static func parse<C: Collection>(_ text: C) throws(Failure) -> JSON where C.Element == UInt8 {
        var p = Parser(Array(text))
        return try p.document()
    }

    /// The line of the value at `path` in `text`: for an object member, the line of its key; for
    /// an array element, the line where it starts. When the path does not exist (a setting
    /// that is missing, say), the line of the deepest part of it that does; 1 for the root.
    ///
    /// This parses `text` again, so it costs as much as ``parse(_:)``: call it only to report an
    /// error. Storing the path of every value while parsing made memory grow with the number of
    /// values times the length of their paths (1.6 GB for a 120 KB app.json).
    package static func line<C: Collection>(of path: [PathComponent], in text: C) -> Int where C.Element == UInt8 {
        var p = Parser(Array(text))
        p.target = path
        _ = try? p.document()
        return p.targetLine
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0
        /// The current line: newlines only occur between tokens (never raw inside strings).
        var line = 1
        /// When looking for a path's line: the path, how many of its components the values
        /// being parsed match so far, the line of the deepest match, and whether the search is
        /// over (the matched value has been left, so nothing after it can match deeper).
        var target: [PathComponent]?
        var matched = 0
        var targetLine = 1
        var searchDone = false

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func document() throws(Failure) -> JSON {
            skipBlanks()
            let value = try value(depth: 0)
            skipBlanks()
            if i < bytes.count { throw failure("unexpected text after the JSON value; expected the end of the input") }
            return value
        }

        func failure(_ message: String, at position: Int? = nil) -> Failure {
            var line = 1, column = 1
            for b in bytes[0..<min(position ?? i, bytes.count)] {
                if b == 10 { line += 1; column = 1 } else { column += 1 }
            }
            return Failure(message: message, line: line, column: column)
        }

        mutating func skipBlanks() {
            while i < bytes.count {
                switch bytes[i] {
                case 10: line += 1
                case 32, 9, 13: break
                default: return
                }
                i += 1
            }
        }

        mutating func expect(_ word: StaticString, _ value: JSON) throws(Failure) -> JSON {
            let count = word.utf8CodeUnitCount
            let matches = word.withUTF8Buffer { w in i + count <= bytes.count && bytes[i..<i + count].elementsEqual(w) }
            guard matches else { throw failure("expected a JSON value") }
            i += count
            return value
        }

        /// Called as the member or element at `depth` (its component `component`) starts.
        mutating func entering(_ component: PathComponent, depth: Int) {
            guard let target, !searchDone, matched == depth, depth < target.count, target[depth] == component else { return }
            matched = depth + 1
            targetLine = line
        }

        /// Called when the member or element at `depth` is over.
        mutating func leaving(depth: Int) {
            if target != nil && matched > depth { searchDone = true }
        }

        mutating func value(depth: Int) throws(Failure) -> JSON {
            guard depth < JSONParser.maximumDepth else {
                throw failure("nested more than \(JSONParser.maximumDepth) levels deep; expected at most \(JSONParser.maximumDepth) levels of arrays and objects")
            }
            guard i < bytes.count else { throw failure("unexpected end of input; expected a JSON value") }
            switch bytes[i] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try expect("true", .bool(true))
            case UInt8(ascii: "f"): return try expect("false", .bool(false))
            case UInt8(ascii: "n"): return try expect("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw failure("expected a JSON value")
            }
        }

        mutating func object(depth: Int) throws(Failure) -> JSON {
            i += 1
            var pairs: [(String, JSON)] = []
            var keys = Set<String>()
            skipBlanks()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
            while true {
                skipBlanks()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw failure("expected a string key") }
                let keyStart = i
                let key = try string()
                guard keys.insert(key).inserted else {
                    throw failure("duplicate key \(JSON.string(key).serialized()); expected each key once in an object", at: keyStart)
                }
                entering(.key(key), depth: depth)
                skipBlanks()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw failure("expected ':' after the key") }
                i += 1
                skipBlanks()
                pairs.append((key, try value(depth: depth + 1)))
                leaving(depth: depth)
                skipBlanks()
                guard i < bytes.count else { throw failure("unexpected end of input; expected ',' or '}'") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
                throw failure("expected ',' or '}'")
            }
        }

        mutating func array(depth: Int) throws(Failure) -> JSON {
            i += 1
            var items: [JSON] = []
            skipBlanks()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipBlanks()
                entering(.index(items.count), depth: depth)
                items.append(try value(depth: depth + 1))
                leaving(depth: depth)
                skipBlanks()
                guard i < bytes.count else { throw failure("unexpected end of input; expected ',' or ']'") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw failure("expected ',' or ']'")
            }
        }

        mutating func string() throws(Failure) -> String {
            i += 1
            var out: [UInt8] = []
            while true {
                guard i < bytes.count else { throw failure("unterminated string; expected a closing '\"'") }
                let b = bytes[i]
                i += 1
                switch b {
                case UInt8(ascii: "\""):
                    guard let s = String(validating: out, as: UTF8.self) else { throw failure("invalid UTF-8 in a string; expected UTF-8 text") }
                    return s
                case UInt8(ascii: "\\"):
                    guard i < bytes.count else { throw failure("unterminated escape; expected a character after '\\'") }
                    let e = bytes[i]
                    i += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(8)
                    case UInt8(ascii: "f"): out.append(12)
                    case UInt8(ascii: "n"): out.append(10)
                    case UInt8(ascii: "r"): out.append(13)
                    case UInt8(ascii: "t"): out.append(9)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { throw Self.unpaired(self) }
                            i += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw Self.unpaired(self) }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let u = Unicode.Scalar(scalar) else { throw Self.unpaired(self) } // a lone low surrogate
                        UTF8.encode(u) { out.append($0) }
                    default: throw failure("invalid escape; expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX", at: i - 2)
                    }
                case 0..<32: throw failure("control character in a string; expected it escaped (\\n, \\t, \\u00XX)", at: i - 1)
                default: out.append(b)
                }
            }
        }

        static func unpaired(_ p: Parser) -> Failure {
            p.failure("unpaired surrogate; expected a \\uD800-\\uDBFF escape followed by a \\uDC00-\\uDFFF one")
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            guard i + 4 <= bytes.count else { throw failure("invalid \\u escape; expected four hex digits") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                i += 1
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - 48
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - 87
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - 55
                default: throw failure("invalid \\u escape; expected four hex digits")
                }
                v = v * 16 + UInt32(d)
            }
            return v
        }

        mutating func number() throws(Failure) -> JSON {
            let start = i
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            func digits(_ p: inout Parser) -> Int {
                let s = p.i
                while p.i < p.bytes.count, (48...57).contains(p.bytes[p.i]) { p.i += 1 }
                return p.i - s
            }
            let intStart = i
            guard digits(&self) > 0 else { throw failure("invalid number; expected a digit") }
            if bytes[intStart] == 48 && i - intStart > 1 { throw failure("invalid number (leading zero); expected no leading zeros", at: start) }
            var isInteger = true
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                isInteger = false
                guard digits(&self) > 0 else { throw failure("invalid number; expected a digit") }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                isInteger = false
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits(&self) > 0 else { throw failure("invalid number; expected a digit") }
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            if isInteger, let v = Int(text) { return .int(v) }
            guard let d = Double(text), d.isFinite else {
                throw failure("number \(TextDecoding.quoted(text, limit: 30)) is out of range; expected a finite number", at: start)
            }
            return .number(d)
        }
    }
}

extension JSON {
    /// The value of `key` in an object (keys are unique: the parser refuses a repeated one).
    package subscript(key: String) -> JSON? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.last(where: { $0.0 == key })?.1
    }

    package var string: String? { if case .string(let s) = self { return s }; return nil }
    package var int: Int? {
        switch self {
        case .int(let i): return i
        case .number(let d) where d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: return nil
        }
    }
    package var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    package var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    package var objectPairs: [(String, JSON)]? { if case .object(let p) = self { return p }; return nil }
}
