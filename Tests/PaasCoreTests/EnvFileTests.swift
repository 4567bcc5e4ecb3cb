import Testing

@testable import PaasCore
@testable import PaasConfig

/// An env file that parses: the assignments expected as `KEY=value` in order, the lookup
/// (earlier env files, then the environment), and the lines that should carry warnings.
struct EnvValidCase: Sendable, CustomTestStringConvertible {
    var text: String
    var expected: [String]
    var environment: [String: String]
    var warningLines: [Int]
    var assignmentLines: [Int]?
    var testDescription: String { TextDecoding.quoted(text, limit: 60) }

    init(
        _ text: String, _ expected: [String], env: [String: String] = [:], warnings: [Int] = [],
        lines: [Int]? = nil
    ) {
        self.text = text
        self.expected = expected
        self.environment = env
        self.warningLines = warnings
        self.assignmentLines = lines
    }
}

/// An env file that fails: the code, the line and a fragment of the message.
struct EnvErrorCase: Sendable, CustomTestStringConvertible {
    var text: String
    var code: ConfigError.Code
    var line: Int
    var fragment: String
    var environment: [String: String]
    var testDescription: String { TextDecoding.quoted(text, limit: 60) }

    init(_ text: String, _ code: ConfigError.Code = .syntax, line: Int, _ fragment: String, env: [String: String] = [:]) {
        self.text = text
        self.code = code
        self.line = line
        self.fragment = fragment
        self.environment = env
    }
}

private func parse(_ text: String, env: [String: String] = [:]) throws(ConfigError) -> EnvFile {
    try EnvFileParser.parse(text, file: ".env", lookup: { env[$0] })
}

@Suite("env file grammar")
struct EnvFileTests {
    static let statements: [EnvValidCase] = [
        .init("A=1\n", ["A=1"]),
        .init("A=1", ["A=1"]),  // missing final newline
        .init("A=1\nB=2\n", ["A=1", "B=2"], lines: [1, 2]),
        .init("_A_1=x\n", ["_A_1=x"]),
        .init("a=lower\n", ["a=lower"]),
        .init("\n# comment\n  # indented comment\n\nA=1\n", ["A=1"], lines: [5]),
        .init("  A=1\n", ["A=1"]),  // indented statement
        .init("A = 1\n", ["A=1"]),
        .init("A\t=\t1\n", ["A=1"]),
        .init("A=\n", ["A="]),
        .init("A=   \n", ["A="]),
        .init("export A=1\n", ["A=1"]),
        .init("export   A = 1\n", ["A=1"]),
        .init("export\tA=1\n", ["A=1"]),
        .init("export A\n", []),  // marks nothing, assigns nothing
        .init("export A # comment\nB=2\n", ["B=2"], lines: [2]),
        .init("export=1\n", ["export=1"]),
        .init("export = 1\n", ["export=1"]),
        .init("exportA=1\n", ["exportA=1"]),
        .init("export export=1\n", ["export=1"]),
        // Duplicate keys: every assignment is kept in order, the last wins in `values`.
        .init("A=1\nA=2\n", ["A=1", "A=2"], lines: [1, 2]),
        // BOM and CRLF.
        .init("\u{FEFF}A=1\n", ["A=1"]),
        .init("A=1\r\nB=2\r\n", ["A=1", "B=2"], lines: [1, 2]),
        .init("A=\"x\r\ny\"\r\nB=2\r\n", ["A=x\ny", "B=2"], lines: [1, 3]),
        .init("A='x\r\ny'\r\n", ["A=x\ny"]),
        .init("A=a\rb\n", ["A=a\rb"]),  // a lone CR is content
    ]

    static let unquoted: [EnvValidCase] = [
        .init("A=hello world\n", ["A=hello world"]),
        .init("A=  spaced   out  \n", ["A=spaced   out"]),
        .init("A=value # comment\n", ["A=value"]),
        .init("A=value\t# comment\n", ["A=value"]),
        .init("A=value#not-comment\n", ["A=value#not-comment"]),
        .init("A=#x\n", ["A=#x"]),  // the '#' has '=' before it, not a blank
        .init("A= #x\n", ["A="]),
        .init("A=a # b # c\n", ["A=a"]),
        .init("A=it's \"quoted\"\n", ["A=it's \"quoted\""]),
        .init("A=a\"b\"\n", ["A=a\"b\""]),
        .init(#"A=C:\path\n"# + "\n", [#"A=C:\path\n"#]),
        .init(#"A=price \$5"# + "\n", ["A=price $5"]),
        .init(#"A=\$HOME"# + "\n", ["A=$HOME"]),
        .init(#"A=a\\$X"# + "\n", [#"A=a\$X"#]),
        .init("A=trailing\\\nB=2\n", ["A=trailing\\", "B=2"]),  // no continuation
        .init("A=x=y=z\n", ["A=x=y=z"]),
        .init("A=ünï\n", ["A=ünï"]),
        .init("A=" + String(repeating: "v", count: 50_000) + "\n", ["A=" + String(repeating: "v", count: 50_000)]),
    ]

    static let singleQuoted: [EnvValidCase] = [
        .init("A='hello world'\n", ["A=hello world"]),
        .init("A=''\n", ["A="]),
        .init("A='$HOME ${X} \\n \\t'\n", ["A=$HOME ${X} \\n \\t"]),
        .init("A='it\\'s'\n", ["A=it's"]),
        .init("A='a # b'\n", ["A=a # b"]),
        .init("A='a' # comment\n", ["A=a"]),
        .init("A='a'# comment\n", ["A=a"]),
        .init("A = 'a'   \n", ["A=a"]),
        .init("A='\"double\" inside'\n", ["A=\"double\" inside"]),
        .init("A='line1\nline2\nline3'\nB=2\n", ["A=line1\nline2\nline3", "B=2"], lines: [1, 4]),
        .init("A='x\\y'\n", ["A=x\\y"]),
    ]

    static let doubleQuoted: [EnvValidCase] = [
        .init("A=\"hello world\"\n", ["A=hello world"]),
        .init("A=\"\"\n", ["A="]),
        .init(#"A="a\nb\tc\rd""# + "\n", ["A=a\nb\tc\rd"]),
        .init(#"A="say \"hi\"""# + "\n", [#"A=say "hi""#]),
        .init(#"A="back\\slash""# + "\n", [#"A=back\slash"#]),
        .init(#"A="\$HOME""# + "\n", ["A=$HOME"]),
        .init(#"A="\q\w""# + "\n", [#"A=\q\w"#]),
        .init(#"A="ends in \\""# + "\n", [#"A=ends in \"#]),
        .init("A=\"a # b\" # c\n", ["A=a # b"]),
        .init("A=\"it's\"\n", ["A=it's"]),
        .init("A=\"x\"\t\n", ["A=x"]),
        .init("A=\"one\ntwo\"\nB=\"three\nfour\nfive\"\nC=6\n", ["A=one\ntwo", "B=three\nfour\nfive", "C=6"], lines: [1, 3, 6]),
        .init("A=\"a\\\nb\"\n", ["A=a\\\nb"]),  // backslash-newline kept as written
        .init("A=\"${X}\"\n", ["A=x"], env: ["X": "x"]),
    ]

    static let interpolation: [EnvValidCase] = [
        .init("A=$X\n", ["A=ex"], env: ["X": "ex"]),
        .init("A=${X}\n", ["A=ex"], env: ["X": "ex"]),
        .init("A=pre${X}post\n", ["A=preexpost"], env: ["X": "ex"]),
        .init("A=$X.y\n", ["A=ex.y"], env: ["X": "ex"]),
        .init("A=$X_Y\n", ["A="], env: ["X": "ex"], warnings: [1]),  // the name is X_Y
        .init("A=\"$X and ${Y}\"\n", ["A=1 and 2"], env: ["X": "1", "Y": "2"]),
        // Undefined: empty, with a warning naming the line.
        .init("A=1\nB=$NOPE\n", ["A=1", "B="], warnings: [2]),
        .init("B=${NOPE}x\n", ["B=x"], warnings: [1]),
        .init("B=\"x\n$NOPE\"\n", ["B=x\n"], warnings: [2]),
        .init("B=$N1 $N2\n", ["B= "], warnings: [1, 1]),
        // Defaults and alternatives.
        .init("A=${X:-def}\n", ["A=def"]),
        .init("A=${X:-def}\n", ["A=def"], env: ["X": ""]),
        .init("A=${X:-def}\n", ["A=set"], env: ["X": "set"]),
        .init("A=${X-def}\n", ["A=def"]),
        .init("A=${X-def}\n", ["A="], env: ["X": ""]),
        .init("A=${X-def}\n", ["A=set"], env: ["X": "set"]),
        .init("A=${X:+alt}\n", ["A="]),
        .init("A=${X:+alt}\n", ["A="], env: ["X": ""]),
        .init("A=${X:+alt}\n", ["A=alt"], env: ["X": "set"]),
        .init("A=${X+alt}\n", ["A="]),
        .init("A=${X+alt}\n", ["A=alt"], env: ["X": ""]),
        .init("A=${X+alt}\n", ["A=alt"], env: ["X": "set"]),
        .init("A=${X:?needed}\n", ["A=set"], env: ["X": "set"]),
        .init("A=${X?needed}\n", ["A="], env: ["X": ""]),
        .init("A=${X:-}\n", ["A="]),  // an empty word, no warning
        // Words are interpolated, and nest.
        .init("A=${X:-$Y}\n", ["A=why"], env: ["Y": "why"]),
        .init("A=${X:-${Y:-deep}}\n", ["A=deep"]),
        .init("A=${X:-${Y:-${Z}}}\n", ["A=zed"], env: ["Z": "zed"]),
        .init("A=${X:-a b c}\n", ["A=a b c"]),
        .init("A=\"${X:-a \\\"q\\\" b}\"\n", ["A=a \"q\" b"]),
        .init("A=${X:-\\}}\n", ["A=}"]),
        .init("A=${X:-$}\n", ["A=$"]),
        // Unused words are not evaluated: no warning, no error.
        .init("A=${X:-$NOPE}\n", ["A=set"], env: ["X": "set"]),
        .init("A=${X:+${NOPE:?boom}}\n", ["A="]),
        // $$ and other literal dollars.
        .init("A=$$\n", ["A=$"]),
        .init("A=a$$b\n", ["A=a$b"]),
        .init("A=$5\n", ["A=$5"]),
        .init("A=abc$\n", ["A=abc$"]),
        .init("A=$(rm -rf /)\n", ["A=$(rm -rf /)"]),
        .init("A=\"$ x\"\n", ["A=$ x"]),
        .init("A=a$-b\n", ["A=a$-b"]),
        // Lookup order: this file first (current value), then the lookup closure.
        .init("X=file\nA=$X\n", ["X=file", "A=file"], env: ["X": "env"]),
        .init("A=$X\nX=file\n", ["A=env", "X=file"], env: ["X": "env"]),  // later keys are not visible
        .init("X=1\nX=2\nA=$X\n", ["X=1", "X=2", "A=2"]),
        .init("PATH=${PATH}:/app/bin\n", ["PATH=/usr/bin:/app/bin"], env: ["PATH": "/usr/bin"]),
        .init("PATH=/a\nPATH=${PATH}:/b\nPATH=$PATH:/c\n", ["PATH=/a", "PATH=/a:/b", "PATH=/a:/b:/c"], env: ["PATH": "/usr/bin"]),
        .init("A=\nB=${A-unset}${A:-empty}\n", ["A=", "B=empty"], env: ["A": "env"]),
        .init("A=$B\nB=x\n", ["A=", "B=x"], warnings: [1]),
        .init("A='$X'\nB=$A\n", ["A=$X", "B=$X"], env: ["X": "no"]),  // values are not re-expanded
    ]

    static let allValid: [EnvValidCase] = statements + unquoted + singleQuoted + doubleQuoted + interpolation

    @Test("valid env files", arguments: allValid)
    func parsesValid(_ testCase: EnvValidCase) throws {
        let env = testCase.environment
        let parsed = try parse(testCase.text, env: env)
        #expect(parsed.assignments.map { "\($0.key)=\($0.value)" } == testCase.expected)
        #expect(parsed.warnings.map(\.line) == testCase.warningLines)
        #expect(parsed.warnings.allSatisfy { $0.file == ".env" })
        #expect(parsed.file == ".env")
        if let lines = testCase.assignmentLines {
            #expect(parsed.assignments.map(\.line) == lines)
        }
        // The byte entry point agrees with the text one.
        let fromBytes = try EnvFileParser.parse(Array(testCase.text.utf8), file: ".env", lookup: { env[$0] })
        #expect(fromBytes == parsed)
    }

    static let errors: [EnvErrorCase] = [
        // Keys.
        .init("A.B=1\n", line: 1, #"invalid key "A.B": expected a letter or '_' followed by letters, digits or '_'"#),
        .init("A-B=1\n", line: 1, #"invalid key "A-B""#),
        .init("1A=1\n", line: 1, #"invalid key "1A""#),
        .init("KÉY=1\n", line: 1, #"invalid key "KÉY""#),
        .init("MY KEY=1\n", line: 1, #"invalid key "MY KEY""#),
        .init("=1\n", line: 1, "missing key before '='"),
        .init("  = 1\n", line: 1, "missing key before '='"),
        .init("A=1\nKEY: v\n", line: 2, #""KEY: v" is not an assignment: expected KEY=VALUE, not KEY: VALUE"#),
        .init("KEY:v\n", line: 1, "not KEY: VALUE"),
        .init("A=1\n\nKEY\n", line: 3, #"missing '=' after "KEY": expected KEY=VALUE"#),
        .init("KEY # comment\n", line: 1, "missing '='"),
        .init("export\n", line: 1, #"missing '=' after "export""#),
        .init("export # c\n", line: 1, #"missing '=' after "export""#),
        .init("export A.B\n", line: 1, #"invalid key "A.B""#),
        .init("export A B\n", line: 1, "is not an assignment"),
        .init("hello world\n", line: 1, #""hello world" is not an assignment: expected KEY=VALUE"#),
        .init("a.b\n", line: 1, #"invalid key "a.b""#),
        .init("A=1\r\n\r\nB C=2\r\n", line: 3, #"invalid key "B C""#),
        // Text after a closing quote.
        .init("K=\"a\"b\n", line: 1, ##"unexpected text after the closing quote: expected only blanks or a "# comment""##),
        .init("K='a' b\n", line: 1, "unexpected text after the closing quote"),
        .init("K=\"a\nb\" c\n", line: 2, "unexpected text after the closing quote"),
        // Unterminated quotes, at the line where the quote opened.
        .init("A=1\nK=\"abc\nB=2\n", line: 2, #"unterminated double-quoted value: expected a closing ""#),
        .init("A=1\nB=2\nK='abc\n\n\n", line: 3, "unterminated single-quoted value: expected a closing '"),
        .init("K=\"abc\\\"", line: 1, "unterminated double-quoted value"),
        .init("K='C:\\'\n", line: 1, "unterminated single-quoted value"),
        .init("K=\"", line: 1, "unterminated double-quoted value"),
        // Substitutions.
        .init("A=${X\n", line: 1, #"unterminated "${": expected "}""#),
        .init("A=${\n", line: 1, #"unterminated "${""#),
        .init("A=1\nB=\"x\n${X:-y\"\n", line: 3, #"unterminated "${""#),
        .init("A=${X:-${Y}\n", line: 1, #"unterminated "${""#),
        .init("A=${X:-a #b}\n", line: 1, #"unterminated "${""#),  // the comment cut comes first
        .init("A=${}\n", line: 1, #"invalid substitution "${}": expected a variable name after "${""#),
        .init("A=${5}\n", line: 1, "expected a variable name"),
        .init("A=${ X}\n", line: 1, "expected a variable name"),
        .init("A=${X:=y}\n", line: 1, #"invalid substitution "${X:=": expected "}" or one of"#),
        .init("A=${X/a/b}\n", line: 1, #"invalid substitution "${X/""#),
        .init("A=${X:}\n", line: 1, "invalid substitution"),
        .init("A=${X:-${1}}\n", line: 1, "expected a variable name"),
        .init("A=${X:+${}}\n", line: 1, "expected a variable name"),  // unused words are still checked
        // Required variables.
        .init("A=1\nB=${DB:?set DB to the database URL}\n", .undefinedRequired, line: 2,
              #"required variable "DB" is not set: set DB to the database URL"#),
        .init("B=${DB?need it}\n", .undefinedRequired, line: 1, "is not set: need it"),
        .init("B=${DB:?need it}\n", .undefinedRequired, line: 1, #"required variable "DB" is empty: need it"#, env: ["DB": ""]),
        .init("B=${DB:?}\n", .undefinedRequired, line: 1, "is not set; expected it from"),
        .init("B=\"x\ny\n${DB:?no $WHAT}\"\n", .undefinedRequired, line: 3, "is not set: no db", env: ["WHAT": "db"]),
        .init("B=${A:-${DB:?inner}}\n", .undefinedRequired, line: 1, "inner"),
        .init("DB=\nB=${DB:?empty here}\n", .undefinedRequired, line: 2, "is empty", env: ["DB": "env"]),
        // Text-level errors.
        .init("A=1\nB=a\0b\n", line: 2, "NUL byte"),
    ]

    @Test("env file errors carry code, line and message", arguments: errors)
    func rejectsInvalid(_ testCase: EnvErrorCase) {
        let env = testCase.environment
        let error = #expect(throws: ConfigError.self) {
            try EnvFileParser.parse(testCase.text, file: "config/.env", lookup: { env[$0] })
        }
        #expect(error?.code == testCase.code)
        #expect(error?.line == testCase.line)
        #expect(error?.file == "config/.env")
        #expect(error?.message.contains(testCase.fragment) == true, "\(String(describing: error))")
    }

    static let invalidUTF8: [(bytes: [UInt8], line: Int)] = [
        (Array("A=1\nB=".utf8) + [0xFE] + Array("\n".utf8), 2),
        (Array("A=\"multi\nline\n".utf8) + [0xC3, 0x28] + Array("\"\n".utf8), 3),
        ([0xEF, 0xBB, 0xBF] + Array("A=1\r\n".utf8) + [0xF8], 2),
    ]

    @Test("invalid UTF-8 names its line", arguments: invalidUTF8)
    func rejectsInvalidUTF8(bytes: [UInt8], line: Int) {
        let error = #expect(throws: ConfigError.self) {
            try EnvFileParser.parse(bytes, file: ".env", lookup: { _ in nil })
        }
        #expect(error?.code == .invalidUTF8)
        #expect(error?.line == line)
        #expect(error?.description.hasPrefix(".env:\(line): invalid UTF-8 byte 0x") == true)
    }

    @Test("warnings name the file, the line and the variable")
    func warningText() throws {
        let parsed = try EnvFileParser.parse("A=1\n\nB=\"$MISSING\"\n", file: "conf/prod.env", lookup: { _ in nil })
        #expect(parsed.warnings.map(\.description) == [#"conf/prod.env:3: warning: undefined variable "MISSING" (it becomes empty)"#])
    }

    @Test("the lookup is asked only for names not assigned earlier in the file")
    func lookupIsAskedInOrder() throws {
        // Collect the names asked for in a local box: the closure is non-escaping.
        var asked: [String] = []
        _ = try EnvFileParser.parse("A=1\nB=$A$C\nC=3\nD=${C}${E:-x}\n", file: ".env") { name in
            asked.append(name)
            return nil
        }
        #expect(asked == ["C", "E"])
    }

    @Test("values folds duplicates, the last wins")
    func lastWins() throws {
        let parsed = try parse("A=1\nB=2\nA=3\n")
        #expect(parsed.values == ["A": "3", "B": "2"])
        #expect(parsed.assignments.count == 3)
    }

    @Test("a BOM and CRLF in raw bytes, inside quoted values too")
    func bomAndCRLFBytes() throws {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("A=\"x\r\ny\"\r\nB='p\r\nq'\r\nC=z \r\n".utf8)
        let parsed = try EnvFileParser.parse(bytes, file: ".env", lookup: { _ in nil })
        #expect(parsed.assignments == [
            EnvAssignment(key: "A", value: "x\ny", line: 1),
            EnvAssignment(key: "B", value: "p\nq", line: 3),
            EnvAssignment(key: "C", value: "z", line: 5),
        ])
    }

    @Test("an empty file or only comments assigns nothing")
    func emptyFile() throws {
        #expect(try parse("").assignments.isEmpty)
        #expect(try parse("# nothing\n\n").assignments.isEmpty)
        #expect(try parse("\u{FEFF}").assignments.isEmpty)
    }
}
