/// A strict JSON parser (RFC 8259) for the control protocol (and later app.json), with the
/// line and column of every error. Hand-written for the same reason as the writer: no
/// Foundation start-up cost in every `paas` command, and errors that can name a line.
package enum JSONParser {
    /// Where and why the text is not JSON.
    package struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        package var message: String
        package var line: Int
        package var column: Int
        package var description: String { "line \(line), column \(column): \(message)" }
    }

    /// Nesting deeper than this is refused (a hostile request cannot exhaust the stack).
    package static let maximumDepth = 64

    /// Parses one JSON value; only blanks may surround it.
    package static func parse<C: Collection>(_ text: C) throws(Failure) -> JSON where C.Element == UInt8 {
        try parseWithLines(text).value
    }

    /// Parses one JSON value and also returns the line of every object member, by its path
    /// (`paas.processes.web.restart`), so that a file's errors can name their line.
    package static func parseWithLines<C: Collection>(_ text: C) throws(Failure) -> (value: JSON, lines: [String: Int]) where C.Element == UInt8 {
        var p = Parser(Array(text))
        p.skipBlanks()
        let value = try p.value(depth: 0, path: "")
        p.skipBlanks()
        if p.i < p.bytes.count { throw p.failure("unexpected text after the JSON value") }
        return (value, p.lines)
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0
        /// The current line: newlines only occur between tokens (never raw inside strings).
        var line = 1
        var lines: [String: Int] = [:]

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        func failure(_ message: String) -> Failure {
            var line = 1, column = 1
            for b in bytes[0..<min(i, bytes.count)] {
                if b == 10 { line += 1; column = 1 } else { column += 1 }
            }
            return Failure(message: message, line: line, column: column)
        }

        mutating func skipBlanks() {
            while i < bytes.count, [32, 9, 10, 13].contains(bytes[i]) {
                if bytes[i] == 10 { line += 1 }
                i += 1
            }
        }

        mutating func expect(_ word: String, _ value: JSON) throws(Failure) -> JSON {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<i + w.count]) == w else { throw failure("expected a JSON value") }
            i += w.count
            return value
        }

        mutating func value(depth: Int, path: String) throws(Failure) -> JSON {
            guard depth < JSONParser.maximumDepth else { throw failure("nested too deeply") }
            guard i < bytes.count else { throw failure("unexpected end of input; expected a JSON value") }
            switch bytes[i] {
            case UInt8(ascii: "{"): return try object(depth: depth, path: path)
            case UInt8(ascii: "["): return try array(depth: depth, path: path)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try expect("true", .bool(true))
            case UInt8(ascii: "f"): return try expect("false", .bool(false))
            case UInt8(ascii: "n"): return try expect("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw failure("expected a JSON value")
            }
        }

        mutating func object(depth: Int, path: String) throws(Failure) -> JSON {
            i += 1
            var pairs: [(String, JSON)] = []
            skipBlanks()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
            while true {
                skipBlanks()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw failure("expected a string key") }
                let key = try string()
                let memberPath = path.isEmpty ? key : path + "." + key
                lines[memberPath] = line
                skipBlanks()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw failure("expected ':' after the key") }
                i += 1
                skipBlanks()
                pairs.append((key, try value(depth: depth + 1, path: memberPath)))
                skipBlanks()
                guard i < bytes.count else { throw failure("unexpected end of input; expected ',' or '}'") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
                throw failure("expected ',' or '}'")
            }
        }

        mutating func array(depth: Int, path: String) throws(Failure) -> JSON {
            i += 1
            var items: [JSON] = []
            skipBlanks()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipBlanks()
                lines[path + "[\(items.count)]"] = line
                items.append(try value(depth: depth + 1, path: path + "[\(items.count)]"))
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
                guard i < bytes.count else { throw failure("unterminated string") }
                let b = bytes[i]
                i += 1
                switch b {
                case UInt8(ascii: "\""):
                    guard let s = String(validating: out, as: UTF8.self) else { throw failure("invalid UTF-8 in a string") }
                    return s
                case UInt8(ascii: "\\"):
                    guard i < bytes.count else { throw failure("unterminated escape") }
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
                            guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { throw failure("unpaired surrogate") }
                            i += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw failure("unpaired surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let u = Unicode.Scalar(scalar) else { throw failure("invalid \\u escape") }
                        out.append(contentsOf: Array(String(Character(u)).utf8))
                    default: throw failure("invalid escape")
                    }
                case 0..<32: throw failure("control character in a string")
                default: out.append(b)
                }
            }
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            guard i + 4 <= bytes.count else { throw failure("invalid \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                i += 1
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - 48
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - 87
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - 55
                default: throw failure("invalid \\u escape")
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
            guard digits(&self) > 0 else { throw failure("invalid number") }
            if bytes[intStart] == 48 && i - intStart > 1 { throw failure("invalid number (leading zero)") }
            var isInteger = true
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                isInteger = false
                guard digits(&self) > 0 else { throw failure("invalid number") }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                isInteger = false
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits(&self) > 0 else { throw failure("invalid number") }
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            if isInteger, let v = Int(text) { return .int(v) }
            guard let d = Double(text) else { throw failure("invalid number") }
            return .number(d)
        }
    }
}

extension JSON {
    /// The value of `key` in an object (the last one, if repeated).
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
