/// How a Procfile command is handed to `/bin/sh -c`: when it is one simple command, with
/// `exec` before its command name, so that the shell replaces itself with the program.
///
/// Why: `/bin/sh` is dash on Debian and Ubuntu, and dash forks and waits for the last command
/// of `sh -c 'CMD ARGS'` instead of exec'ing it. Without `exec` every instance is two
/// processes (a shell of about 1.6 MB and the app), `paas ps` shows the shell's pid, and the
/// signals paas sends reach a shell first. foreman avoids the shell only when the command has
/// no shell syntax at all; placing `exec` keeps the shell's expansion, quoting and
/// redirections (`web: bundle exec puma -p $PORT` must lose its shell too) and costs nothing.
///
/// The rule (also in docs/grammar.md): the command gets `exec ` just before its command name,
/// after any leading `NAME=value` assignment words and redirections, when a conservative
/// POSIX-shell tokenizer finds exactly one simple command: no `;`, `&`, `|`, `&&`, `||`,
/// `(`, `)` or newline outside quotes and expansions, no here-document, a command name that
/// is neither a reserved word (`if`, `{`, `!`, ...) nor a shell builtin (`echo`, `cd`,
/// `exit`, `exec` itself, ...) and that needs no expansion to be known. Anything the
/// tokenizer cannot classify with certainty (an unterminated quote, `case` inside `$(...)`,
/// `$'...'`, a trailing backslash) keeps the shell: a wrong `exec` would change what runs,
/// a missing one only costs a process.
package enum ShellCommand {
    /// `command` with `exec` before its command name, or `command` itself when the shell must
    /// stay (see ``execForm(_:)``).
    package static func forSpawn(_ command: String) -> String {
        execForm(command) ?? command
    }

    /// `command` with `exec ` inserted before its command name when it is one simple command
    /// that is safe to exec; nil when the shell must stay (or the command already starts
    /// with `exec`, where nothing needs to change).
    package static func execForm(_ command: String) -> String? {
        var scanner = Scanner(Array(command.utf8))
        guard let start = scanner.commandNameStart() else { return nil }
        var bytes = Array(command.utf8)
        bytes.insert(contentsOf: Array("exec ".utf8), at: start)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Words that are reserved in command position (POSIX, plus bash's, in case `/bin/sh` is bash).
    static let reservedWords: Set<String> = [
        "!", "{", "}", "case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "in", "then",
        "until", "while", "[[", "]]", "function", "select", "time", "coproc",
    ]

    /// Builtins of dash and bash: `exec` would run an external program of that name instead
    /// (with other semantics: `echo`, `kill $$`, `test`) or nothing at all (`cd`, `exit`).
    static let builtins: Set<String> = [
        ".", ":", "[", "alias", "bg", "break", "cd", "chdir", "command", "continue", "echo", "eval",
        "exec", "exit", "export", "false", "fg", "getopts", "hash", "jobs", "kill", "local", "printf",
        "pwd", "read", "readonly", "return", "set", "shift", "test", "times", "trap", "true", "type",
        "ulimit", "umask", "unalias", "unset", "wait",
        "source", "declare", "typeset", "let", "builtin", "enable", "help", "history", "logout",
        "mapfile", "readarray", "shopt", "suspend", "disown", "dirs", "popd", "pushd", "caller",
        "compgen", "complete", "compopt", "bind", "fc",
    ]

    /// One pass over the command's bytes. Every method returns nil as soon as it meets
    /// something it cannot classify with certainty.
    struct Scanner {
        let b: [UInt8]
        var i = 0

        init(_ bytes: [UInt8]) { b = bytes }

        /// What one word turned out to be.
        struct Word {
            var start: Int
            /// The word after quote removal, when it has no expansion.
            var literal: [UInt8] = []
            var quoted = false
            var expands = false
            var globs = false
            var assignment = false
        }

        static let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), newline = UInt8(ascii: "\n")
        static let semicolon = UInt8(ascii: ";"), ampersand = UInt8(ascii: "&"), bar = UInt8(ascii: "|")
        static let open = UInt8(ascii: "("), close = UInt8(ascii: ")")
        static let less = UInt8(ascii: "<"), greater = UInt8(ascii: ">")
        static let backslash = UInt8(ascii: "\\"), single = UInt8(ascii: "'"), double = UInt8(ascii: "\"")
        static let dollar = UInt8(ascii: "$"), backtick = UInt8(ascii: "`"), hash = UInt8(ascii: "#")
        static let equals = UInt8(ascii: "="), openBrace = UInt8(ascii: "{"), closeBrace = UInt8(ascii: "}")

        /// Ends an unquoted word: blanks and the shell's operator characters.
        static func isDelimiter(_ c: UInt8) -> Bool {
            c == space || c == tab || c == newline || c == semicolon || c == ampersand || c == bar
                || c == open || c == close || c == less || c == greater
        }

        static func isNameStart(_ c: UInt8) -> Bool {
            (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95
        }

        static func isNameChar(_ c: UInt8) -> Bool { isNameStart(c) || (c >= 48 && c <= 57) }

        func peek(_ offset: Int = 0) -> UInt8? { i + offset < b.count ? b[i + offset] : nil }

        /// The offset of the command name of a simple command that may be exec'd, else nil.
        mutating func commandNameStart() -> Int? {
            var name: Word?
            var redirectTarget = false // the next word is a redirection's target
            while true {
                while let c = peek(), c == Self.space || c == Self.tab { i += 1 }
                guard let c = peek() else { break }
                switch c {
                case Self.newline, Self.semicolon, Self.ampersand, Self.bar, Self.open, Self.close:
                    return nil // a list, pipeline, background job, subshell or function definition
                case Self.less, Self.greater:
                    guard !redirectTarget, redirection() else { return nil }
                    redirectTarget = true
                    continue
                case Self.hash:
                    i = b.count // a comment: the rest of the line is not part of the command
                    continue
                default:
                    break
                }
                guard let word = word() else { return nil }
                // An IO number: digits written right before `<` or `>` (`2>&1`).
                if !word.quoted, !word.literal.isEmpty, word.literal.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                   let next = peek(), next == Self.less || next == Self.greater {
                    if redirectTarget { return nil }
                    continue
                }
                if redirectTarget { redirectTarget = false; continue }
                if name == nil && !word.assignment { name = word }
            }
            guard !redirectTarget, let name else { return nil } // a dangling `>`, or no command at all
            if name.expands || name.globs { return nil } // the name is known only at run time
            let text = String(decoding: name.literal, as: UTF8.self)
            if !name.quoted && ShellCommand.reservedWords.contains(text) { return nil }
            if ShellCommand.builtins.contains(text) { return nil } // quoting does not hide a builtin
            return name.start
        }

        /// A redirection operator (`<`, `>`, `>>`, `<&`, `>&`, `<>`, `>|`); false for a
        /// here-document (`<<`, `<<-`, bash's `<<<`), whose body the tokenizer does not follow.
        mutating func redirection() -> Bool {
            let c = b[i]
            i += 1
            guard let next = peek() else { return true }
            if c == Self.less {
                if next == Self.less { return false }
                if next == Self.ampersand || next == Self.greater { i += 1 }
            } else if next == Self.greater || next == Self.ampersand || next == Self.bar {
                i += 1
            }
            return true
        }

        /// One word from the current position (not a delimiter).
        mutating func word() -> Word? {
            var w = Word(start: i)
            var sawEquals = false
            var nameSoFar = true // the unquoted bytes before the first `=` form a name
            while let c = peek(), !Self.isDelimiter(c) {
                switch c {
                case Self.backslash:
                    guard let next = peek(1), next != Self.newline else { return nil }
                    w.literal.append(next)
                    w.quoted = true
                    nameSoFar = false
                    i += 2
                case Self.single:
                    guard let end = b[(i + 1)...].firstIndex(of: Self.single) else { return nil }
                    w.literal += b[(i + 1)..<end]
                    w.quoted = true
                    nameSoFar = false
                    i = end + 1
                case Self.double:
                    i += 1
                    guard doubleQuoted(&w) else { return nil }
                    w.quoted = true
                    nameSoFar = false
                case Self.dollar:
                    guard dollar() else { return nil }
                    w.expands = true
                    nameSoFar = false
                case Self.backtick:
                    guard backticks() else { return nil }
                    w.expands = true
                    nameSoFar = false
                case Self.equals where !sawEquals:
                    sawEquals = true
                    w.assignment = nameSoFar && !w.literal.isEmpty && !w.quoted
                    w.literal.append(c)
                    i += 1
                default:
                    if c == UInt8(ascii: "*") || c == UInt8(ascii: "?") || c == UInt8(ascii: "[") { w.globs = true }
                    if !sawEquals {
                        nameSoFar = nameSoFar && (w.literal.isEmpty ? Self.isNameStart(c) : Self.isNameChar(c))
                    }
                    w.literal.append(c)
                    i += 1
                }
            }
            return w
        }

        /// The inside of `"..."` after its opening quote, through the closing one.
        mutating func doubleQuoted(_ w: inout Word) -> Bool {
            while let c = peek() {
                switch c {
                case Self.double:
                    i += 1
                    return true
                case Self.backslash:
                    guard let next = peek(1), next != Self.newline else { return false }
                    if next == Self.dollar || next == Self.backtick || next == Self.double || next == Self.backslash {
                        w.literal.append(next)
                    } else {
                        w.literal += [c, next]
                    }
                    i += 2
                case Self.dollar:
                    guard dollar() else { return false }
                    w.expands = true
                case Self.backtick:
                    guard backticks() else { return false }
                    w.expands = true
                default:
                    w.literal.append(c)
                    i += 1
                }
            }
            return false // unterminated
        }

        /// An expansion starting at `$`: `$NAME`, `$1`, `$@`, `${...}`, `$(...)`, `$((...))`.
        /// A lone `$` (before a blank or the end) is a literal `$`, also an expansion-free word
        /// but counted as one, which only makes the classifier more careful.
        mutating func dollar() -> Bool {
            i += 1
            guard let c = peek() else { return true }
            if c == Self.openBrace {
                i += 1
                return braced()
            }
            if c == Self.open {
                if peek(1) == Self.open {
                    i += 2
                    return arithmetic()
                }
                i += 1
                return commandSubstitution()
            }
            if c == Self.single || c == Self.double { return false } // bash's $'...' and $"..."
            if Self.isNameStart(c) {
                while let n = peek(), Self.isNameChar(n) { i += 1 }
                return true
            }
            if (c >= 48 && c <= 57) || "@*#?$!-".utf8.contains(c) { i += 1 }
            return true
        }

        /// `${...}` after `${`, through its `}`, nested expansions and quotes included.
        mutating func braced() -> Bool {
            while let c = peek() {
                switch c {
                case Self.closeBrace:
                    i += 1
                    return true
                case Self.backslash:
                    guard peek(1) != nil, peek(1) != Self.newline else { return false }
                    i += 2
                case Self.single:
                    guard let end = b[(i + 1)...].firstIndex(of: Self.single) else { return false }
                    i = end + 1
                case Self.double:
                    i += 1
                    var ignored = Word(start: i)
                    guard doubleQuoted(&ignored) else { return false }
                case Self.dollar:
                    guard dollar() else { return false }
                case Self.backtick:
                    guard backticks() else { return false }
                case Self.newline:
                    return false
                default:
                    i += 1
                }
            }
            return false
        }

        /// `$((...))` after `$((`: plain arithmetic only (no quotes), through `))`.
        mutating func arithmetic() -> Bool {
            var depth = 0
            while let c = peek() {
                switch c {
                case Self.open: depth += 1
                case Self.close:
                    if depth == 0 {
                        guard peek(1) == Self.close else { return false }
                        i += 2
                        return true
                    }
                    depth -= 1
                case Self.single, Self.double, Self.backslash, Self.backtick, Self.newline: return false
                case Self.dollar:
                    guard dollar() else { return false }
                    continue
                default: break
                }
                i += 1
            }
            return false
        }

        /// `$(...)` after `$(`, through its `)`. Parentheses are counted outside quotes; a
        /// `case` (whose patterns end in an unbalanced `)`), a comment or a here-document
        /// inside makes the command unclassifiable.
        mutating func commandSubstitution() -> Bool {
            var depth = 0
            var atWordStart = true
            while let c = peek() {
                let wordStart = atWordStart
                atWordStart = Self.isDelimiter(c)
                switch c {
                case Self.open: depth += 1
                case Self.close:
                    if depth == 0 { i += 1; return true }
                    depth -= 1
                case Self.backslash:
                    guard peek(1) != nil, peek(1) != Self.newline else { return false }
                    i += 2
                    continue
                case Self.single:
                    guard let end = b[(i + 1)...].firstIndex(of: Self.single) else { return false }
                    i = end + 1
                    continue
                case Self.double:
                    i += 1
                    var ignored = Word(start: i)
                    guard doubleQuoted(&ignored) else { return false }
                    continue
                case Self.dollar:
                    guard dollar() else { return false }
                    continue
                case Self.backtick:
                    guard backticks() else { return false }
                    continue
                case Self.hash where wordStart:
                    return false
                case Self.less where peek(1) == Self.less:
                    return false
                default:
                    if wordStart && b[i...].starts(with: "case".utf8) {
                        let after = i + 4 < b.count ? b[i + 4] : Self.space
                        if Self.isDelimiter(after) { return false }
                    }
                }
                i += 1
            }
            return false
        }

        /// `` `...` `` from its opening backtick through the closing one.
        mutating func backticks() -> Bool {
            i += 1
            while let c = peek() {
                if c == Self.backslash {
                    guard peek(1) != nil else { return false }
                    i += 2
                    continue
                }
                i += 1
                if c == Self.backtick { return true }
            }
            return false
        }
    }
}
