import Testing

@testable import PaasCore
@testable import PaasConfig

/// A Procfile that parses: the text and the entries expected as `name|command|line`.
struct ProcfileValidCase: Sendable, CustomTestStringConvertible {
    var text: String
    var entries: [String]
    var testDescription: String { TextDecoding.quoted(text, limit: 60) }
    init(_ text: String, _ entries: [String]) {
        self.text = text
        self.entries = entries
    }
}

/// A Procfile that fails: the code, the line and a fragment of the message.
struct ProcfileErrorCase: Sendable, CustomTestStringConvertible {
    var text: String
    var code: ConfigError.Code
    var line: Int?
    var fragment: String
    var testDescription: String { TextDecoding.quoted(text, limit: 60) }
    init(_ text: String, _ code: ConfigError.Code, line: Int?, _ fragment: String) {
        self.text = text
        self.code = code
        self.line = line
        self.fragment = fragment
    }
}

private func rendered(_ procfile: Procfile) -> [String] {
    procfile.entries.map { "\($0.name)|\($0.command)|\($0.line)" }
}

@Suite("Procfile grammar")
struct ProcfileTests {
    static let valid: [ProcfileValidCase] = [
        // Basic entries and the order they come in.
        .init("web: bundle exec rails s\n", ["web|bundle exec rails s|1"]),
        .init("web: a\nworker: b\n", ["web|a|1", "worker|b|2"]),
        .init("worker: b\nweb: a\n", ["worker|b|1", "web|a|2"]),
        // Missing final newline.
        .init("web: a", ["web|a|1"]),
        .init("web: a\nworker: b", ["web|a|1", "worker|b|2"]),
        // Blank lines (spaces and tabs) and comments, indented comments too.
        .init("\n\nweb: a\n\n", ["web|a|3"]),
        .init("  \t \nweb: a\n", ["web|a|2"]),
        .init("# comment\nweb: a\n", ["web|a|2"]),
        .init("   # indented comment\nweb: a\n", ["web|a|2"]),
        .init("\t#tab comment\nweb: a\n", ["web|a|2"]),
        .init("#web: commented out\nweb: a\n", ["web|a|2"]),
        // Name characters.
        .init("web_1: a\n", ["web_1|a|1"]),
        .init("web-2: a\n", ["web-2|a|1"]),
        .init("123: a\n", ["123|a|1"]),
        .init("-: a\n", ["-|a|1"]),
        .init("_x: a\n", ["_x|a|1"]),
        .init("WEB: a\n", ["WEB|a|1"]),
        // Case-sensitive names are distinct.
        .init("web: a\nWeb: b\n", ["web|a|1", "Web|b|2"]),
        // Only the first colon separates; the command may contain colons.
        .init("web: echo a:b:c\n", ["web|echo a:b:c|1"]),
        .init("web: http://localhost:5000\n", ["web|http://localhost:5000|1"]),
        .init("web:: x\n", ["web|: x|1"]),
        // Blanks after the colon and at the end are trimmed; none are required.
        .init("web:cmd\n", ["web|cmd|1"]),
        .init("web:\t \tcmd  \t\n", ["web|cmd|1"]),
        .init("web: a   b\n", ["web|a   b|1"]),
        // The command is verbatim: no # stripping, no $ expansion, quotes kept.
        .init("web: echo hi # not a comment\n", ["web|echo hi # not a comment|1"]),
        .init("web: echo $PORT ${X:-y}\n", ["web|echo $PORT ${X:-y}|1"]),
        .init("web: sh -c 'echo \"a\\tb\"'\n", ["web|sh -c 'echo \"a\\tb\"'|1"]),
        .init("web: echo é ünïcödé\n", ["web|echo é ünïcödé|1"]),
        // CRLF read as LF; a lone CR inside a command is content.
        .init("web: a\r\nworker: b\r\n", ["web|a|1", "worker|b|2"]),
        .init("web: a\rb\n", ["web|a\rb|1"]),
        // One leading BOM skipped.
        .init("\u{FEFF}web: a\n", ["web|a|1"]),
        // A release type is just another entry at this level.
        .init("release: ./migrate\nweb: a\n", ["release|./migrate|1", "web|a|2"]),
        // No length limit.
        .init("web: " + String(repeating: "x", count: 100_000) + "\n", ["web|" + String(repeating: "x", count: 100_000) + "|1"]),
    ]

    @Test("valid Procfiles", arguments: valid)
    func parsesValid(_ testCase: ProcfileValidCase) throws {
        let procfile = try ProcfileParser.parse(testCase.text, file: "Procfile")
        #expect(rendered(procfile) == testCase.entries)
        // The byte entry point agrees with the text one.
        let fromBytes = try ProcfileParser.parse(Array(testCase.text.utf8), file: "Procfile")
        #expect(fromBytes == procfile)
    }

    static let errors: [ProcfileErrorCase] = [
        .init("web app: x\n", .syntax, line: 1, #"invalid process name "web app": expected letters, digits, '_' or '-'"#),
        .init("web.1: x\n", .syntax, line: 1, #"invalid process name "web.1""#),
        .init("wéb: x\n", .syntax, line: 1, #"invalid process name "wéb""#),
        .init("web/x: x\n", .syntax, line: 1, "invalid process name"),
        .init("web : x\n", .syntax, line: 1, #"blank between "web" and ':'"#),
        .init("web\t: x\n", .syntax, line: 1, #"blank between "web" and ':'"#),
        .init("web app : x\n", .syntax, line: 1, #"invalid process name "web app""#),
        .init(" web: x\n", .syntax, line: 1, #"indented line: expected "NAME: COMMAND""#),
        .init("web: a\n\tworker: b\n", .syntax, line: 2, "indented"),
        .init("hello world\n", .syntax, line: 1, #""hello world" is not a process entry: expected "NAME: COMMAND""#),
        .init("web: a\njust text\n", .syntax, line: 2, #"expected "NAME: COMMAND""#),
        .init(": x\n", .syntax, line: 1, "missing process name before ':'"),
        .init("web:\n", .syntax, line: 1, #"empty command for "web"; expected a command after the colon"#),
        .init("web:   \t \n", .syntax, line: 1, #"empty command for "web""#),
        .init("web:", .syntax, line: 1, "empty command"),
        .init("# c\n\nweb: a\nweb: b\n", .duplicate, line: 4, #"duplicate process name "web" (first defined on line 3)"#),
        .init("web: a\nworker: b\nweb: c\n", .duplicate, line: 3, "first defined on line 1"),
        .init("", .empty, line: nil, #"no processes defined; expected at least one "NAME: COMMAND" line"#),
        .init("\n\n  \n", .empty, line: nil, "no processes defined"),
        .init("# only\n# comments\n", .empty, line: nil, "no processes defined"),
        .init("\u{FEFF}", .empty, line: nil, "no processes defined"),
        // Only one BOM is skipped: a second one is part of the name.
        .init("\u{FEFF}\u{FEFF}web: a\n", .syntax, line: 1, "invalid process name"),
        // CRLF line numbers stay right.
        .init("web: a\r\n\r\nbad line\r\n", .syntax, line: 3, "is not a process entry"),
        // A lone CR is not a blank line.
        .init("web: a\n\r \n", .syntax, line: 2, "is not a process entry"),
        .init("web: a\0b\n", .syntax, line: 1, "NUL byte"),
        .init("web: a\nworker: \0\n", .syntax, line: 2, "NUL byte"),
    ]

    @Test("Procfile errors carry code, line and message", arguments: errors)
    func rejectsInvalid(_ testCase: ProcfileErrorCase) {
        let error = #expect(throws: ConfigError.self) {
            try ProcfileParser.parse(testCase.text, file: "Procfile")
        }
        #expect(error?.code == testCase.code)
        #expect(error?.line == testCase.line)
        #expect(error?.file == "Procfile")
        #expect(error?.message.contains(testCase.fragment) == true, "\(String(describing: error))")
    }

    /// Raw bytes: invalid UTF-8 is reported at the line of the first bad byte.
    static let invalidUTF8: [(bytes: [UInt8], line: Int)] = [
        ([0xFF], 1),
        (Array("web: a\n".utf8) + [0xC3], 2),  // truncated sequence at the end
        (Array("web: a\nworker: b\n# c\n".utf8) + [0x80] + Array("\n".utf8), 4),  // stray continuation
        (Array("web: \u{e9}\n".utf8) + [0xC0, 0xAF], 2),  // overlong '/'
        (Array("web: ".utf8) + [0xED, 0xA0, 0x80], 1),  // surrogate U+D800
        (Array("\n\n\nweb: ".utf8) + [0xF4, 0x90, 0x80, 0x80], 4),  // above U+10FFFF
        (Array("web: a\r\n\r\nx: ".utf8) + [0xE2, 0x82] + Array("\r\n".utf8), 3),  // cut before CRLF
    ]

    @Test("invalid UTF-8 names its line", arguments: invalidUTF8)
    func rejectsInvalidUTF8(bytes: [UInt8], line: Int) {
        let error = #expect(throws: ConfigError.self) {
            try ProcfileParser.parse(bytes, file: "app/Procfile")
        }
        #expect(error?.code == .invalidUTF8)
        #expect(error?.line == line)
        #expect(error?.file == "app/Procfile")
        #expect(error?.message.contains("expected UTF-8 text") == true)
    }

    @Test("a BOM and CRLF in raw bytes")
    func bomAndCRLFBytes() throws {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("web: a  \r\nworker: b:c\r\n".utf8)
        let procfile = try ProcfileParser.parse(bytes, file: "Procfile")
        #expect(rendered(procfile) == ["web|a|1", "worker|b:c|2"])
        #expect(procfile["worker"]?.command == "b:c")
        #expect(procfile["nope"] == nil)
    }

    @Test("error descriptions are compiler style")
    func descriptions() {
        let error = ConfigError(.syntax, file: "Procfile", line: 3, "invalid process name \"web app\": expected letters, digits, '_' or '-'")
        #expect(error.description == "Procfile:3: invalid process name \"web app\": expected letters, digits, '_' or '-'")
        let whole = ConfigError(.empty, file: "app/Procfile", line: nil, "no processes defined")
        #expect(whole.description == "app/Procfile: no processes defined")
        let warning = ConfigWarning(file: ".env", line: 4, "undefined variable \"X\" (it becomes empty)")
        #expect(warning.description == ".env:4: warning: undefined variable \"X\" (it becomes empty)")
    }

    @Test("long text in messages is cut")
    func longTextIsCut() {
        let error = #expect(throws: ConfigError.self) {
            try ProcfileParser.parse(String(repeating: "x ", count: 500), file: "Procfile")
        }
        #expect((error?.message.count ?? 1000) < 150)
        #expect(error?.message.contains("...\"") == true)
    }
}
