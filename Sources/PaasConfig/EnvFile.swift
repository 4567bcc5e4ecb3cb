/// One `KEY=VALUE` statement of an env file, after unquoting and interpolation.
public struct EnvAssignment: Sendable, Equatable {
    /// The variable name, `[A-Za-z_][A-Za-z0-9_]*`.
    public var key: String
    /// The final value.
    public var value: String
    /// The 1-based line the statement starts on (a quoted value may continue on later lines).
    public var line: Int

    /// Creates an assignment.
    public init(key: String, value: String, line: Int) {
        self.key = key
        self.value = value
        self.line = line
    }
}

/// A parsed env file.
///
/// `assignments` keeps every assignment in file order, duplicates included, so a tool can say
/// where a value came from; `values` folds them (the last wins).
public struct EnvFile: Sendable, Equatable {
    /// The path as the user gave it.
    public var file: String
    /// Every assignment in file order, including keys assigned more than once.
    public var assignments: [EnvAssignment]
    /// Warnings found while parsing (undefined variables).
    public var warnings: [ConfigWarning]

    /// Creates an env file value.
    public init(file: String, assignments: [EnvAssignment], warnings: [ConfigWarning]) {
        self.file = file
        self.assignments = assignments
        self.warnings = warnings
    }

    /// The variables this file sets, the last assignment of each key winning.
    public var values: [String: String] {
        var result: [String: String] = [:]
        for assignment in assignments {
            result[assignment.key] = assignment.value
        }
        return result
    }
}

/// Parses env files (`.env`) (DESIGN.md, "Procfile and .env grammar").
///
/// Decisions where the grammar leaves room:
/// - Statements, comments and `export` may be indented by blanks (python-dotenv and Compose
///   accept that); "blank" means space or tab.
/// - `export` is a prefix only when blanks and then something other than `=`, `#` or the end of
///   the line follow it: `export=1` and `export = 1` assign the key `export`; `export` alone or
///   `export # c` is a bare key, an error. `export KEY` assigns nothing even when KEY is unknown;
///   `export KEY # comment` is fine.
/// - Unquoted values: a `#` right after `=` (`K=#x`) has no blank before it, so it is the value;
///   `K= #x` is an empty value with a comment. A backslash is literal unless `$` follows, so
///   `\\$X` is a backslash followed by a literal `$X`.
/// - Single quotes: only `\'` is an escape, so a single-quoted value cannot end in a backslash
///   (`'C:\'` is unterminated); use double quotes (`"C:\\"`).
/// - Double quotes: the value ends at the first `"` not escaped by a backslash, before any
///   interpolation is looked at, so a quote inside `${A:-...}` must be written `\"`. An unknown
///   escape, including a backslash before a line end, is kept as written (backslash and character);
///   there is no line continuation.
/// - After a closing quote, a `#` comment may follow with or without a blank before it.
/// - Inside a `${NAME<op>word}` word (both quoting styles), `\}` is a literal `}`.
/// - `${` must be followed by a name and then `}` or one of `:- - :+ + :? ?`: `${}`, `${5}`,
///   `${A:=x}`, `${A/x/y}` are errors, and an unterminated `${` is an error at the line where it
///   opened; `$` followed by anything else (`$5`, `$(`, a blank, the end) is literal.
/// - The word of an operator is only evaluated when it is used (as in sh): an unused word gives no
///   warnings and no `:?` errors, though its syntax is still checked.
/// - Warnings: every `$NAME` / `${NAME}` use of an undefined name gives one warning at the line the
///   `$` is on (later lines of a multi-line value count); the operator forms do not warn, since
///   they handle the unset case on purpose.
/// - `${NAME:?}` with an empty message reports "is not set" / "is empty" and what was expected.
/// - A NUL byte anywhere is an error: an environment variable cannot carry one.
public enum EnvFileParser {
    /// How deep `${NAME:-${OTHER:-...}}` words may nest: 64 levels. Expansion recurses once per
    /// level, so without a bound a hostile file (10,000 levels) overflowed the stack; 64 is far
    /// beyond any real default chain.
    public static let maximumNesting = 64

    /// Parses an env file from raw bytes: validates UTF-8 (reporting the line of the first bad
    /// byte), skips one leading BOM and reads CRLF as LF (inside quoted values too).
    ///
    /// `lookup` answers names NOT assigned earlier in this file: it covers earlier env files and
    /// then the process environment (the caller builds it).
    public static func parse(
        _ bytes: [UInt8], file: String, lookup: (String) -> String?
    ) throws(ConfigError) -> EnvFile {
        try parseNormalized(TextDecoding.normalizedBytes(bytes, file: file), file: file, lookup: lookup)
    }

    /// Parses an env file from text (one leading BOM skipped, CRLF read as LF).
    ///
    /// `lookup` answers names NOT assigned earlier in this file: it covers earlier env files and
    /// then the process environment (the caller builds it).
    public static func parse(
        _ text: String, file: String, lookup: (String) -> String?
    ) throws(ConfigError) -> EnvFile {
        try parseNormalized(TextDecoding.normalizedBytes(text), file: file, lookup: lookup)
    }

    static func parseNormalized(
        _ bytes: [UInt8], file: String, lookup: (String) -> String?
    ) throws(ConfigError) -> EnvFile {
        try TextDecoding.rejectNUL(bytes, file: file)
        var scanner = EnvScanner(bytes: bytes, file: file)
        try scanner.run(lookup: lookup)
        return EnvFile(file: file, assignments: scanner.assignments, warnings: scanner.warnings)
    }
}

/// The env-file scanner: one pass over normalized bytes, keeping the current line number.
///
/// `lookup` is passed down rather than stored because it is a non-escaping closure.
struct EnvScanner {
    let bytes: [UInt8]
    let file: String
    var i = 0
    var line = 1
    /// The current value of each key assigned so far in this file.
    var current: [String: String] = [:]
    var assignments: [EnvAssignment] = []
    var warnings: [ConfigWarning] = []

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    private static let expectedKey = "expected a letter or '_' followed by letters, digits or '_'"

    private func error(_ message: String, line: Int) -> ConfigError {
        ConfigError(.syntax, file: file, line: line, message)
    }

    private var atLineEnd: Bool { i >= bytes.count || bytes[i] == ASCII.lf }

    private mutating func skipBlanks() {
        while i < bytes.count && ASCII.isBlank(bytes[i]) { i += 1 }
    }

    /// Moves to the LF ending the current line (or the end), without consuming it.
    private mutating func skipToLineEnd() {
        while i < bytes.count && bytes[i] != ASCII.lf { i += 1 }
    }

    private func lineEnd(from index: Int) -> Int {
        bytes[index...].firstIndex(of: ASCII.lf) ?? bytes.count
    }

    static func isValidKey<C: Collection<UInt8>>(_ key: C) -> Bool {
        guard let first = key.first, ASCII.isLetter(first) || first == ASCII.underscore else { return false }
        return key.allSatisfy { ASCII.isLetter($0) || ASCII.isDigit($0) || $0 == ASCII.underscore }
    }

    mutating func run(lookup: (String) -> String?) throws(ConfigError) {
        while i < bytes.count {
            skipBlanks()
            if i >= bytes.count { break }
            if bytes[i] == ASCII.lf {
                i += 1
                line += 1
                continue
            }
            if bytes[i] == ASCII.hash {
                skipToLineEnd()
                continue
            }
            try statement(lookup: lookup)
            // statement() stops at the LF ending its last line (or the end); the loop takes it.
        }
    }

    private func matchesExport(at index: Int) -> Bool {
        let word: [UInt8] = Array("export".utf8)
        guard index + word.count < bytes.count else { return false }
        return bytes[index..<(index + word.count)].elementsEqual(word) && ASCII.isBlank(bytes[index + word.count])
    }

    private mutating func statement(lookup: (String) -> String?) throws(ConfigError) {
        let statementLine = line
        let statementStart = i
        var hadExport = false
        if matchesExport(at: i) {
            var j = i + 6
            while j < bytes.count && ASCII.isBlank(bytes[j]) { j += 1 }
            if j < bytes.count && bytes[j] != ASCII.lf && bytes[j] != ASCII.hash && bytes[j] != ASCII.equals {
                hadExport = true
                i = j
            }
        }

        let tokenStart = i
        while i < bytes.count && bytes[i] != ASCII.equals && bytes[i] != ASCII.lf && !ASCII.isBlank(bytes[i]) {
            i += 1
        }
        let token = bytes[tokenStart..<i]
        let tokenEnd = i
        skipBlanks()
        let blankAfterToken = i > tokenEnd

        if i < bytes.count && bytes[i] == ASCII.equals {
            if token.isEmpty {
                throw error("missing key before '=': expected KEY=VALUE", line: statementLine)
            }
            guard Self.isValidKey(token) else {
                throw error("invalid key \(TextDecoding.quoted(token)): \(Self.expectedKey)", line: statementLine)
            }
            i += 1
            skipBlanks()
            let value = try value(lookup: lookup)
            let key = String(decoding: token, as: UTF8.self)
            current[key] = value
            assignments.append(EnvAssignment(key: key, value: value, line: statementLine))
            return
        }

        // No '=' right after the first word: find the most helpful thing to say.
        let end = lineEnd(from: statementStart)
        let wholeLine = bytes[statementStart..<end].trimmingBlanks()
        let tokenOnly = atLineEnd || (bytes[i] == ASCII.hash && blankAfterToken)
        if tokenOnly && Self.isValidKey(token) {
            if hadExport {
                skipToLineEnd()  // `export KEY`: marks nothing, assigns nothing
                return
            }
            throw error(
                "missing '=' after \(TextDecoding.quoted(token)): expected KEY=VALUE", line: statementLine)
        }
        if token.contains(ASCII.colon) {  // `KEY: v`, `KEY:v`
            throw error(
                "\(TextDecoding.quoted(wholeLine)) is not an assignment: expected KEY=VALUE, not KEY: VALUE",
                line: statementLine)
        }
        if let equals = bytes[tokenStart..<end].firstIndex(of: ASCII.equals) {
            // `MY KEY=v`: blanks inside the key.
            let key = bytes[tokenStart..<equals].trimmingBlanks()
            throw error("invalid key \(TextDecoding.quoted(key)): \(Self.expectedKey)", line: statementLine)
        }
        if tokenOnly && (hadExport || !token.isEmpty) {
            throw error("invalid key \(TextDecoding.quoted(token)): \(Self.expectedKey)", line: statementLine)
        }
        throw error("\(TextDecoding.quoted(wholeLine)) is not an assignment: expected KEY=VALUE", line: statementLine)
    }

    /// Reads the value starting at `i` (blanks after `=` already skipped), leaving `i` at the LF
    /// that ends the statement (or at the end).
    private mutating func value(lookup: (String) -> String?) throws(ConfigError) -> String {
        guard i < bytes.count else { return "" }
        switch bytes[i] {
        case ASCII.singleQuote:
            let result = try singleQuoted()
            try afterClosingQuote()
            return result
        case ASCII.doubleQuote:
            let result = try doubleQuoted(lookup: lookup)
            try afterClosingQuote()
            return result
        default:
            return try unquoted(lookup: lookup)
        }
    }

    private mutating func unquoted(lookup: (String) -> String?) throws(ConfigError) -> String {
        let start = i
        var end = i
        while end < bytes.count && bytes[end] != ASCII.lf {
            // A comment starts at the first '#' with a blank before it.
            if bytes[end] == ASCII.hash && end > 0 && ASCII.isBlank(bytes[end - 1]) { break }
            end += 1
        }
        let trimmed = bytes[start..<end].trimmingBlanks()
        var cursor = Cursor(position: trimmed.startIndex, end: trimmed.endIndex, line: line)
        let value = try expand(&cursor, mode: .unquoted, inWord: false, evaluate: true, depth: 0, lookup: lookup)
        skipToLineEnd()
        return String(decoding: value, as: UTF8.self)
    }

    private mutating func singleQuoted() throws(ConfigError) -> String {
        let openLine = line
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else {
                throw error("unterminated single-quoted value: expected a closing '", line: openLine)
            }
            let byte = bytes[i]
            if byte == ASCII.backslash && i + 1 < bytes.count && bytes[i + 1] == ASCII.singleQuote {
                out.append(ASCII.singleQuote)
                i += 2
            } else if byte == ASCII.singleQuote {
                i += 1
                return String(decoding: out, as: UTF8.self)
            } else {
                if byte == ASCII.lf { line += 1 }
                out.append(byte)
                i += 1
            }
        }
    }

    private mutating func doubleQuoted(lookup: (String) -> String?) throws(ConfigError) -> String {
        let openLine = line
        i += 1
        let start = i
        // Pass 1: find the closing quote; a backslash always protects the next byte.
        while true {
            guard i < bytes.count else {
                throw error("unterminated double-quoted value: expected a closing \"", line: openLine)
            }
            let byte = bytes[i]
            if byte == ASCII.doubleQuote { break }
            if byte == ASCII.lf { line += 1 }
            if byte == ASCII.backslash && i + 1 < bytes.count {
                i += 1
                if bytes[i] == ASCII.lf { line += 1 }
            }
            i += 1
        }
        let end = i
        i += 1
        // Pass 2: escapes and interpolation, counting lines from the opening quote.
        var cursor = Cursor(position: start, end: end, line: openLine)
        let value = try expand(&cursor, mode: .double, inWord: false, evaluate: true, depth: 0, lookup: lookup)
        return String(decoding: value, as: UTF8.self)
    }

    private mutating func afterClosingQuote() throws(ConfigError) {
        skipBlanks()
        if atLineEnd || bytes[i] == ASCII.hash {
            skipToLineEnd()
            return
        }
        throw error(
            "unexpected text after the closing quote: expected only blanks or a \"# comment\"", line: line)
    }

    // MARK: Interpolation

    enum Mode { case unquoted, double }

    struct Cursor {
        var position: Int
        let end: Int
        var line: Int
    }

    private static func doubleEscape(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "n"): return ASCII.lf
        case UInt8(ascii: "t"): return ASCII.tab
        case UInt8(ascii: "r"): return ASCII.cr
        case ASCII.doubleQuote, ASCII.backslash, ASCII.dollar: return byte
        default: return nil
        }
    }

    /// Expands `bytes[cursor.position..<cursor.end]`. With `inWord`, stops before an unescaped `}`
    /// (the caller checks it is there). With `evaluate` false it only checks syntax: no lookups,
    /// no warnings, no `:?` errors. `depth` counts the `${...}` words this one is inside.
    private mutating func expand(
        _ cursor: inout Cursor, mode: Mode, inWord: Bool, evaluate: Bool, depth: Int, lookup: (String) -> String?
    ) throws(ConfigError) -> [UInt8] {
        var out: [UInt8] = []
        while cursor.position < cursor.end {
            let byte = bytes[cursor.position]
            if inWord && byte == ASCII.closeBrace { return out }
            switch byte {
            case ASCII.backslash:
                let next: UInt8? = cursor.position + 1 < cursor.end ? bytes[cursor.position + 1] : nil
                if mode == .double, let next, let escaped = Self.doubleEscape(next) {
                    out.append(escaped)
                    cursor.position += 2
                } else if next == ASCII.dollar || (inWord && next == ASCII.closeBrace) {
                    out.append(next!)
                    cursor.position += 2
                } else if mode == .double, let next {
                    // Unknown escape: kept as written, and the escaped byte is not interpreted.
                    out.append(ASCII.backslash)
                    out.append(next)
                    if next == ASCII.lf { cursor.line += 1 }
                    cursor.position += 2
                } else {
                    out.append(ASCII.backslash)
                    cursor.position += 1
                }
            case ASCII.dollar:
                try dollar(&cursor, into: &out, mode: mode, evaluate: evaluate, depth: depth, lookup: lookup)
            case ASCII.lf:
                cursor.line += 1
                out.append(byte)
                cursor.position += 1
            default:
                out.append(byte)
                cursor.position += 1
            }
        }
        return out
    }

    private func readName(from start: Int, end: Int) -> Int {
        var j = start
        guard j < end, ASCII.isLetter(bytes[j]) || bytes[j] == ASCII.underscore else { return j }
        while j < end && (ASCII.isLetter(bytes[j]) || ASCII.isDigit(bytes[j]) || bytes[j] == ASCII.underscore) {
            j += 1
        }
        return j
    }

    private func resolve(_ name: String, lookup: (String) -> String?) -> String? {
        current[name] ?? lookup(name)
    }

    /// Handles the `$` at `cursor.position`.
    private mutating func dollar(
        _ cursor: inout Cursor, into out: inout [UInt8], mode: Mode, evaluate: Bool, depth: Int,
        lookup: (String) -> String?
    ) throws(ConfigError) {
        let dollarLine = cursor.line
        let start = cursor.position
        let end = cursor.end
        let next: UInt8? = start + 1 < end ? bytes[start + 1] : nil

        func simple(_ name: String, _ this: inout EnvScanner) {
            guard evaluate else { return }
            if let value = this.resolve(name, lookup: lookup) {
                out.append(contentsOf: value.utf8)
            } else {
                this.warnings.append(
                    ConfigWarning(
                        file: this.file, line: dollarLine,
                        "undefined variable \(TextDecoding.quoted(name)) (it becomes empty)"))
            }
        }

        if next == ASCII.dollar {
            out.append(ASCII.dollar)
            cursor.position += 2
            return
        }
        if let next, ASCII.isLetter(next) || next == ASCII.underscore {
            let nameEnd = readName(from: start + 1, end: end)
            cursor.position = nameEnd
            simple(String(decoding: bytes[(start + 1)..<nameEnd], as: UTF8.self), &self)
            return
        }
        guard next == ASCII.openBrace else {
            out.append(ASCII.dollar)  // `$5`, `$(`, `abc$`: literal
            cursor.position += 1
            return
        }

        let unterminated = error("unterminated \"${\": expected \"}\"", line: dollarLine)
        let nameStart = start + 2
        let nameEnd = readName(from: nameStart, end: end)
        guard nameEnd < end else { throw unterminated }
        if nameEnd == nameStart {
            let shown = bytes[start..<min(end, nameStart + 1)]
            throw error(
                "invalid substitution \(TextDecoding.quoted(shown)): expected a variable name after \"${\"",
                line: dollarLine)
        }
        let name = String(decoding: bytes[nameStart..<nameEnd], as: UTF8.self)
        var j = nameEnd
        if bytes[j] == ASCII.closeBrace {
            cursor.position = j + 1
            simple(name, &self)
            return
        }
        var colon = false
        if bytes[j] == ASCII.colon {
            colon = true
            j += 1
            guard j < end else { throw unterminated }
        }
        let op = bytes[j]
        guard op == ASCII.minus || op == ASCII.plus || op == ASCII.question else {
            throw error(
                "invalid substitution \(TextDecoding.quoted(bytes[start...j])): expected \"}\" or one of "
                    + "\":-\", \"-\", \":+\", \"+\", \":?\", \"?\" after the name",
                line: dollarLine)
        }
        cursor.position = j + 1
        // The word is expanded by recursion: bound it before going one level deeper.
        guard depth < EnvFileParser.maximumNesting else {
            throw error(
                "substitutions nested more than \(EnvFileParser.maximumNesting) levels deep; expected at most "
                    + "\(EnvFileParser.maximumNesting) levels of \"${NAME:-...}\" inside one another",
                line: dollarLine)
        }

        let value = evaluate ? resolve(name, lookup: lookup) : nil
        let isSet = value != nil
        let isSetAndNonEmpty = !(value ?? "").isEmpty
        let condition = colon ? isSetAndNonEmpty : isSet
        // Which of value / word the result is; the word is evaluated only when it is used.
        let useWord: Bool
        switch op {
        case ASCII.minus: useWord = !condition
        case ASCII.plus: useWord = condition
        default: useWord = !condition  // '?': the word is the error message
        }
        let word = try expand(&cursor, mode: mode, inWord: true, evaluate: evaluate && useWord, depth: depth + 1, lookup: lookup)
        guard cursor.position < cursor.end && bytes[cursor.position] == ASCII.closeBrace else {
            throw unterminated
        }
        cursor.position += 1
        guard evaluate else { return }

        switch op {
        case ASCII.minus:
            out.append(contentsOf: useWord ? word : Array((value ?? "").utf8))
        case ASCII.plus:
            if useWord { out.append(contentsOf: word) }
        default:
            if useWord {
                let state = isSet ? "is empty" : "is not set"
                let detail =
                    word.isEmpty
                    ? "; expected it from an earlier line, an earlier env file or the environment"
                    : ": " + String(decoding: word, as: UTF8.self)
                throw ConfigError(
                    .undefinedRequired, file: file, line: dollarLine,
                    "required variable \(TextDecoding.quoted(name)) \(state)\(detail)")
            }
            out.append(contentsOf: (value ?? "").utf8)
        }
    }
}
