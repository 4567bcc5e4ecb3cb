/// The little JSON paas writes: strings escaped from arbitrary bytes, and a value tree for
/// command output (`check --json`, `config --json`). Hand-written because the event stream
/// needs to escape raw child bytes at pipe speed, and Foundation's encoder would add its
/// start-up cost to every `paas` command.
package enum JSON: Sendable, Equatable {
    case string(String)
    case int(Int)
    case number(Double)
    case bool(Bool)
    case null
    case array([JSON])
    /// An object whose keys keep their order.
    case object([(String, JSON)])

    package static func == (a: JSON, b: JSON) -> Bool { a.serialized() == b.serialized() }

    /// The value as compact JSON text.
    package func serialized(pretty: Bool = false) -> String {
        var out: [UInt8] = []
        write(to: &out, pretty: pretty, indent: 0)
        return String(decoding: out, as: UTF8.self)
    }

    private func write(to out: inout [UInt8], pretty: Bool, indent: Int) {
        func newline(_ level: Int) {
            if pretty { out.append(10); out.append(contentsOf: repeatElement(32, count: level * 2)) }
        }
        switch self {
        case .string(let s): JSON.appendString(s.utf8, to: &out)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .number(let d): out.append(contentsOf: (d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)).utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        case .array(let items):
            out.append(91)
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(44) }
                newline(indent + 1)
                item.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if !items.isEmpty { newline(indent) }
            out.append(93)
        case .object(let pairs):
            out.append(123)
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { out.append(44) }
                newline(indent + 1)
                JSON.appendString(key.utf8, to: &out)
                out.append(58)
                if pretty { out.append(32) }
                value.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if !pairs.isEmpty { newline(indent) }
            out.append(125)
        }
    }

    /// Appends `bytes` as a JSON string. Invalid UTF-8 becomes U+FFFD, so the output is
    /// always valid JSON whatever a child wrote.
    package static func appendString<C: Collection>(_ bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        out.append(34)
        var needsRepair = false
        for b in bytes where b >= 0x80 { needsRepair = true; break }
        if needsRepair {
            let repaired = String(decoding: bytes, as: UTF8.self)
            appendEscaped(repaired.utf8, to: &out)
        } else {
            appendEscaped(bytes, to: &out)
        }
        out.append(34)
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    private static func appendEscaped<C: Collection>(_ bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        for b in bytes {
            switch b {
            case 34: out.append(92); out.append(34)
            case 92: out.append(92); out.append(92)
            case 10: out.append(92); out.append(110)
            case 13: out.append(92); out.append(114)
            case 9: out.append(92); out.append(116)
            case 0..<32, 127:
                out.append(contentsOf: [92, 117, 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
    }
}
