/// One `NAME: COMMAND` line of a Procfile.
public struct ProcfileEntry: Sendable, Equatable {
    /// The process type name, `[A-Za-z0-9_-]+`, case-sensitive.
    public var name: String
    /// The command for `/bin/sh -c`, verbatim except for the blanks trimmed around it.
    public var command: String
    /// The 1-based line the entry is on.
    public var line: Int

    /// Creates an entry.
    public init(name: String, command: String, line: Int) {
        self.name = name
        self.command = command
        self.line = line
    }
}

/// A parsed Procfile: its entries in file order (the order decides port blocks).
public struct Procfile: Sendable, Equatable {
    /// The entries in file order; names are unique.
    public var entries: [ProcfileEntry]

    /// Creates a Procfile from entries.
    public init(entries: [ProcfileEntry]) {
        self.entries = entries
    }

    /// The entry named `name`, if any.
    public subscript(name: String) -> ProcfileEntry? {
        entries.first { $0.name == name }
    }
}

/// Parses Procfiles (DESIGN.md, "Procfile and .env grammar").
///
/// Decisions where the grammar leaves room:
/// - "Blank" means space or tab. A line of other whitespace (a lone CR, a form feed) is content
///   and therefore an error, not a blank line.
/// - A comment line may be indented (its first non-blank character is `#`); an entry may not.
/// - A NUL byte anywhere is an error (it cannot reach `/bin/sh -c`).
/// - `web:cmd` (no blank after the colon) is accepted: blanks after the colon are optional.
/// - An empty name (`: cmd`) is an error of its own ("missing process name").
/// - When the name has blanks before the colon and the rest is a valid name (`web : x`) the error
///   says so; when the trimmed name itself is invalid (`web app : x`) it is an invalid name.
public enum ProcfileParser {
    /// Parses a Procfile from its raw bytes: validates UTF-8 (reporting the line of the first bad
    /// byte), skips one leading BOM and reads CRLF as LF.
    public static func parse(_ bytes: [UInt8], file: String) throws(ConfigError) -> Procfile {
        try parseNormalized(TextDecoding.normalizedBytes(bytes, file: file), file: file)
    }

    /// Parses a Procfile from text (one leading BOM skipped, CRLF read as LF).
    public static func parse(_ text: String, file: String) throws(ConfigError) -> Procfile {
        try parseNormalized(TextDecoding.normalizedBytes(text), file: file)
    }

    static func parseNormalized(_ bytes: [UInt8], file: String) throws(ConfigError) -> Procfile {
        try TextDecoding.rejectNUL(bytes, file: file)
        var entries: [ProcfileEntry] = []
        var firstLine: [String: Int] = [:]
        var lineNumber = 0
        var start = 0
        while start <= bytes.count {
            lineNumber += 1
            let end = bytes[start...].firstIndex(of: ASCII.lf) ?? bytes.count
            let line = bytes[start..<end]
            defer { start = end + 1 }

            guard let firstNonBlank = line.firstIndex(where: { !ASCII.isBlank($0) }) else {
                continue  // blank line
            }
            if line[firstNonBlank] == ASCII.hash {
                continue  // comment line
            }
            func fail(_ message: String) -> ConfigError {
                ConfigError(.syntax, file: file, line: lineNumber, message)
            }
            if firstNonBlank != line.startIndex {
                throw fail("indented line: expected \"NAME: COMMAND\" starting in column 1")
            }
            guard let colon = line.firstIndex(of: ASCII.colon) else {
                throw fail(
                    "\(TextDecoding.quoted(line)) is not a process entry: expected \"NAME: COMMAND\"")
            }
            let rawName = line[line.startIndex..<colon]
            if rawName.isEmpty {
                throw fail("missing process name before ':': expected \"NAME: COMMAND\"")
            }
            if let last = rawName.last, ASCII.isBlank(last) {
                let trimmed = rawName.trimmingBlanks()
                if isValidName(trimmed) {
                    throw fail(
                        "blank between \(TextDecoding.quoted(trimmed)) and ':': "
                            + "expected \"NAME: COMMAND\" with the colon right after the name")
                }
                throw invalidName(trimmed, file: file, line: lineNumber)
            }
            guard isValidName(rawName) else {
                throw invalidName(rawName, file: file, line: lineNumber)
            }
            let name = String(decoding: rawName, as: UTF8.self)
            let command = line[(colon + 1)...].trimmingBlanks()
            if command.isEmpty {
                throw fail(
                    "empty command for \(TextDecoding.quoted(name)); expected a command after the colon")
            }
            if let first = firstLine[name] {
                throw ConfigError(
                    .duplicate, file: file, line: lineNumber,
                    "duplicate process name \(TextDecoding.quoted(name)) (first defined on line \(first))")
            }
            firstLine[name] = lineNumber
            entries.append(
                ProcfileEntry(name: name, command: String(decoding: command, as: UTF8.self), line: lineNumber))
        }
        if entries.isEmpty {
            throw ConfigError(
                .empty, file: file, line: nil,
                "no processes defined; expected at least one \"NAME: COMMAND\" line")
        }
        return Procfile(entries: entries)
    }

    /// `[A-Za-z0-9_-]+`, ASCII only.
    static func isValidName<C: Collection<UInt8>>(_ name: C) -> Bool {
        !name.isEmpty
            && name.allSatisfy { ASCII.isLetter($0) || ASCII.isDigit($0) || $0 == ASCII.underscore || $0 == ASCII.minus }
    }

    static func invalidName<C: Collection<UInt8>>(_ name: C, file: String, line: Int) -> ConfigError {
        ConfigError(
            .syntax, file: file, line: line,
            "invalid process name \(TextDecoding.quoted(name)): expected letters, digits, '_' or '-'")
    }
}
