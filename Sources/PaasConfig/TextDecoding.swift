/// Shared text handling for the files paas reads: UTF-8 validation that reports the line of the
/// first bad byte, one leading BOM skipped, CRLF read as LF.
///
/// The parsers work on UTF-8 bytes rather than `Character`s: every byte that matters to the
/// grammars is ASCII, byte offsets make line counting trivial, and Swift's `Character` would
/// treat `"\r\n"` as one grapheme, which hides the CR we must drop.
public enum TextDecoding {
    /// Decodes a whole file: validates UTF-8, skips one leading BOM, reads CRLF as LF.
    ///
    /// Suitable for any text file paas reads (Procfile, env files, app.json).
    public static func text(_ bytes: [UInt8], file: String) throws(ConfigError) -> String {
        String(decoding: try normalizedBytes(bytes, file: file), as: UTF8.self)
    }

    /// Validated, BOM-less, LF-only UTF-8 bytes of `bytes`.
    static func normalizedBytes(_ bytes: [UInt8], file: String) throws(ConfigError) -> [UInt8] {
        if let bad = firstInvalidUTF8Offset(bytes) {
            let hex = String(bytes[bad], radix: 16, uppercase: true)
            throw ConfigError(
                .invalidUTF8, file: file, line: lineNumber(ofOffset: bad, in: bytes),
                "invalid UTF-8 byte 0x\(hex.count == 1 ? "0" + hex : hex); expected UTF-8 text")
        }
        return normalizeLineEnds(skippingBOM(bytes))
    }

    /// The UTF-8 bytes of `text`, BOM-less and LF-only (a `String` is valid Unicode already).
    static func normalizedBytes(_ text: String) -> [UInt8] {
        normalizeLineEnds(skippingBOM(Array(text.utf8)))
    }

    /// Rejects NUL bytes: neither a command line nor an environment variable can carry one
    /// (both become C strings), so a NUL is a mistake we report rather than truncate silently.
    static func rejectNUL(_ bytes: [UInt8], file: String) throws(ConfigError) {
        if let nul = bytes.firstIndex(of: 0) {
            throw ConfigError(
                .syntax, file: file, line: lineNumber(ofOffset: nul, in: bytes),
                "NUL byte in the text; expected printable text")
        }
    }

    /// The offset of the first byte that does not belong to a well-formed UTF-8 sequence
    /// (overlong forms, surrogates, values above U+10FFFF and truncated sequences included),
    /// or nil when all of `bytes` is valid UTF-8. For a bad multi-byte sequence this is the
    /// offset of its lead byte.
    static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
        let n = bytes.count
        var i = 0
        while i < n {
            let lead = bytes[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            let need: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; low = 0xA0  // no overlongs
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; high = 0x9F  // no surrogates
            case 0xF0: need = 3; low = 0x90  // no overlongs
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; high = 0x8F  // nothing above U+10FFFF
            default: return i
            }
            for k in 1...need {
                let j = i + k
                guard j < n else { return i }
                let byte = bytes[j]
                let (lo, hi): (UInt8, UInt8) = k == 1 ? (low, high) : (0x80, 0xBF)
                guard byte >= lo && byte <= hi else { return i }
            }
            i += need + 1
        }
        return nil
    }

    /// The 1-based line holding `offset`: one more than the number of LFs before it.
    static func lineNumber(ofOffset offset: Int, in bytes: [UInt8]) -> Int {
        var line = 1
        for byte in bytes[..<min(offset, bytes.count)] where byte == ASCII.lf {
            line += 1
        }
        return line
    }

    /// `bytes` without one leading UTF-8 byte-order mark. Only one is skipped: a second BOM is
    /// content, and the grammar then reports it.
    static func skippingBOM(_ bytes: [UInt8]) -> [UInt8] {
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF {
            return Array(bytes[3...])
        }
        return bytes
    }

    /// `bytes` with every CRLF replaced by LF. A CR not followed by LF is left alone: it is not a
    /// line end (old Mac line ends are not supported), so the grammar sees it as content.
    static func normalizeLineEnds(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(ASCII.cr) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == ASCII.cr && i + 1 < bytes.count && bytes[i + 1] == ASCII.lf {
                i += 1
                continue
            }
            out.append(bytes[i])
            i += 1
        }
        return out
    }

    /// `text` quoted for an error message, escaped like a Swift string literal and cut to
    /// `limit` characters so one long line cannot flood the terminal.
    static func quoted<S: Sequence<UInt8>>(_ bytes: S, limit: Int = 60) -> String {
        quoted(String(decoding: Array(bytes), as: UTF8.self), limit: limit)
    }

    /// `text` quoted for an error message (see `quoted(_:limit:)` for bytes).
    static func quoted(_ text: String, limit: Int = 60) -> String {
        if text.count > limit {
            let cut = String(text.prefix(limit)).debugDescription
            return String(cut.dropLast()) + "...\""
        }
        return text.debugDescription
    }
}

/// The ASCII bytes the grammars care about.
enum ASCII {
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let tab: UInt8 = 0x09
    static let space: UInt8 = 0x20
    static let hash: UInt8 = 0x23  // #
    static let dollar: UInt8 = 0x24  // $
    static let singleQuote: UInt8 = 0x27  // '
    static let doubleQuote: UInt8 = 0x22  // "
    static let backslash: UInt8 = 0x5C  // \
    static let colon: UInt8 = 0x3A  // :
    static let equals: UInt8 = 0x3D  // =
    static let openBrace: UInt8 = 0x7B  // {
    static let closeBrace: UInt8 = 0x7D  // }
    static let minus: UInt8 = 0x2D  // -
    static let plus: UInt8 = 0x2B  // +
    static let question: UInt8 = 0x3F  // ?
    static let underscore: UInt8 = 0x5F  // _

    /// A blank is a space or a tab, as in POSIX `[[:blank:]]`; other whitespace is content.
    static func isBlank(_ byte: UInt8) -> Bool { byte == space || byte == tab }
    static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A }
    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
}

extension Collection where Element == UInt8 {
    /// `self` without leading and trailing blanks (spaces and tabs).
    func trimmingBlanks() -> SubSequence {
        guard let first = firstIndex(where: { !ASCII.isBlank($0) }) else { return self[endIndex...] }
        var last = first
        var i = first
        while i != endIndex {
            if !ASCII.isBlank(self[i]) { last = i }
            i = index(after: i)
        }
        return self[first...last]
    }
}
