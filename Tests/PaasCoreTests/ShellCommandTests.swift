import Foundation
import Testing

@testable import PaasCore

/// A command and what `ShellCommand.execForm` makes of it (nil: the shell stays).
struct ExecCase: Sendable, CustomTestStringConvertible {
    var command: String
    var expected: String?
    var testDescription: String { command }
    init(_ command: String, _ expected: String?) {
        self.command = command
        self.expected = expected
    }
}

@Suite("exec for simple commands")
struct ShellCommandTests {
    static let execd: [ExecCase] = [
        // The common Procfile lines.
        .init("./listener", "exec ./listener"),
        .init("bundle exec puma -p $PORT", "exec bundle exec puma -p $PORT"),
        .init("bundle exec puma -C config/puma.rb", "exec bundle exec puma -C config/puma.rb"),
        .init("node server.js", "exec node server.js"),
        .init("python3 -m http.server ${PORT}", "exec python3 -m http.server ${PORT}"),
        .init("gunicorn app:app --bind 0.0.0.0:$PORT --workers=${WEB_CONCURRENCY:-2}", "exec gunicorn app:app --bind 0.0.0.0:$PORT --workers=${WEB_CONCURRENCY:-2}"),
        .init("/usr/bin/env ruby worker.rb", "exec /usr/bin/env ruby worker.rb"),
        .init("  sleep 1000  ", "  exec sleep 1000  "),
        .init("\tsleep 1000", "\texec sleep 1000"),
        // Leading assignments stay before `exec`, which exports them to the program.
        .init("FOO=1 ./x", "FOO=1 exec ./x"),
        .init("FOO=1 BAR=2 ./x", "FOO=1 BAR=2 exec ./x"),
        .init("FOO=1 ./x \"a b\" > log", "FOO=1 exec ./x \"a b\" > log"),
        .init("RAILS_ENV=production bundle exec rails s -p $PORT", "RAILS_ENV=production exec bundle exec rails s -p $PORT"),
        .init("FOO=\"a b\" ./x", "FOO=\"a b\" exec ./x"),
        .init("FOO='a b' ./x", "FOO='a b' exec ./x"),
        .init("FOO=$PORT ./x", "FOO=$PORT exec ./x"),
        .init("FOO=${A:-b} ./x", "FOO=${A:-b} exec ./x"),
        .init("FOO=$(date +%s) ./x", "FOO=$(date +%s) exec ./x"),
        .init("FOO=`date` ./x", "FOO=`date` exec ./x"),
        .init("_X=1 ./x", "_X=1 exec ./x"),
        .init("A1=1 ./x", "A1=1 exec ./x"),
        .init("FOO= ./x", "FOO= exec ./x"),
        .init("FOO=a=b ./x", "FOO=a=b exec ./x"),
        // Quotes and backslashes.
        .init("./x \"a b\"", "exec ./x \"a b\""),
        .init("./x 'a b' \"c $PORT\"", "exec ./x 'a b' \"c $PORT\""),
        .init("\"./my app\" --flag", "exec \"./my app\" --flag"),
        .init("'./my app'", "exec './my app'"),
        .init("./x a\\ b", "exec ./x a\\ b"),
        .init("./x 'a;b' \"c|d\" e\\&f", "exec ./x 'a;b' \"c|d\" e\\&f"),
        .init("./x \"a \\\" b\"", "exec ./x \"a \\\" b\""),
        .init("./x \"it's\"", "exec ./x \"it's\""),
        .init("./x 'say \"hi\"'", "exec ./x 'say \"hi\"'"),
        .init("./x \"\"", "exec ./x \"\""),
        .init("./x ''", "exec ./x ''"),
        // Expansions in arguments (operators inside them do not count).
        .init("./x $(cat port; echo)", "exec ./x $(cat port; echo)"),
        .init("./x \"$(a | b)\"", "exec ./x \"$(a | b)\""),
        .init("./x $(echo $(echo nested))", "exec ./x $(echo $(echo nested))"),
        .init("./x $((PORT + 1))", "exec ./x $((PORT + 1))"),
        .init("./x $(( (1 + 2) * 3 ))", "exec ./x $(( (1 + 2) * 3 ))"),
        .init("./x `echo a; echo b`", "exec ./x `echo a; echo b`"),
        .init("./x ${A:-a;b}", "exec ./x ${A:-a;b}"),
        .init("./x ${A:-\"x y\"}", "exec ./x ${A:-\"x y\"}"),
        .init("./x ${A:-${B:-c}}", "exec ./x ${A:-${B:-c}}"),
        .init("./x ${#A} $# $@ $* $? $$ $! $- $0 $1", "exec ./x ${#A} $# $@ $* $? $$ $! $- $0 $1"),
        .init("./x $", "exec ./x $"),
        .init("./x *.txt ?.log [ab].c", "exec ./x *.txt ?.log [ab].c"),
        .init("./x ~/dir", "exec ./x ~/dir"),
        .init("~/bin/app", "exec ~/bin/app"),
        .init("./x a=b", "exec ./x a=b"),
        // Reserved words and builtins are only special as the command name.
        .init("./x if then fi { } ! done", "exec ./x if then fi { } ! done"),
        .init("./x echo exec cd", "exec ./x echo exec cd"),
        .init("bundle exec sidekiq", "exec bundle exec sidekiq"),
        .init("./x#y", "exec ./x#y"),
        .init("./x a#b", "exec ./x a#b"),
        // Redirections, anywhere in the command.
        .init("./x > log", "exec ./x > log"),
        .init("./x >log 2>&1", "exec ./x >log 2>&1"),
        .init("./x 2>/dev/null", "exec ./x 2>/dev/null"),
        .init("./x >> log", "exec ./x >> log"),
        .init("./x < in", "exec ./x < in"),
        .init("./x <> f", "exec ./x <> f"),
        .init("./x >| f", "exec ./x >| f"),
        .init("./x <&0 >&2", "exec ./x <&0 >&2"),
        .init("./x 3>&-", "exec ./x 3>&-"),
        .init("> log ./x", "> log exec ./x"),
        .init("2>err FOO=1 ./x", "2>err FOO=1 exec ./x"),
        .init("FOO=1 >log ./x a", "FOO=1 >log exec ./x a"),
        .init("./x 12>f", "exec ./x 12>f"),
        // Comments.
        .init("./x # a comment; with | operators &", "exec ./x # a comment; with | operators &"),
        .init("./x #", "exec ./x #"),
        // Non-ASCII.
        .init("./x héllo", "exec ./x héllo"),
        .init("./prögram", "exec ./prögram"),
        // Builtin-like words that are programs.
        .init("env FOO=1 ./x", "exec env FOO=1 ./x"),
        .init("nice -n 5 ./x", "exec nice -n 5 ./x"),
        .init("setsid ./x", "exec setsid ./x"),
        .init("./echo", "exec ./echo"),
        .init("/bin/echo hi", "exec /bin/echo hi"),
        .init("timeout 10 ./x", "exec timeout 10 ./x"),
    ]

    static let kept: [String] = [
        // Lists, pipelines, background jobs.
        "a && b", "a || b", "a; b", "a ;b", "a;", "a | b", "a |& b", "a &", "a & b", "a&", "a & wait",
        "./x > log &", "./x &> log", "FOO=1 a | b", "a\nb", "a\n",
        "python3 slow.py; true", "trap '' TERM; ./x",
        // Subshells, groups, compound commands, functions.
        "(a)", "( a )", "(a) > log", "{ a; }", "{ a; } > log", "! a",
        "if true; then a; fi", "while :; do a; done", "until a; do b; done", "for i in 1 2; do a; done",
        "case $x in a) b;; esac", "f() { a; }", "f () { a; }", "function f { a; }",
        "[[ -f x ]]", "time ./x", "select x in a; do b; done", "coproc ./x",
        "FOO=1 if", "FOO=1 {",
        // Commands that already exec.
        "exec ./x", "FOO=1 exec ./x", "exec", "  exec sleep 1", "exec >log ./x",
        // Builtins: exec would run something else, or nothing.
        "echo hello", "echo $PORT", "printf '%s' x", "cd /tmp", "exit 3", "true", "false", ":", ". ./env.sh",
        "source env.sh", "kill -TERM $$", "test -f x", "[ -f x ]", "wait", "trap '' TERM", "eval ./x",
        "set -e", "export A=1", "read x", "ulimit -n 100", "umask 077", "command ./x", "type x", "pwd",
        "\"echo\" hi", "'cd' /tmp", "e\\cho hi", "FOO=1 echo hi", "> log echo x",
        // Names known only at run time.
        "$CMD", "$CMD arg", "${CMD:-./x}", "$(which app) --port $PORT", "`which app`", "\"$APP\" run",
        "./bin/*", "./x?", "./[ab]",
        // Nothing to run.
        "", "   ", "FOO=1", "FOO=1 BAR=2", "> log", "2>&1", "# only a comment", "FOO=1 # comment",
        // Here-documents and syntax the tokenizer does not follow.
        "./x <<EOF", "./x <<-EOF", "./x <<< word", "./x << EOF",
        "./x 'unterminated", "./x \"unterminated", "./x `unterminated", "./x $(unterminated",
        "./x ${unterminated", "./x $((1 + 2)", "./x trailing\\", "./x \"a\\\nb\"", "./x a\\\nb",
        "./x $'ansi c'", "./x $\"locale\"", "./x $(case a in a) echo;; esac)", "./x $(echo # c )",
        "./x $(cat <<EOF)", "./x $(( \"1\" ))",
        "./x >", "./x > > f", "./x 2>", "./x > # comment",
        "./x ${A:-\"unterminated}",
    ]

    @Test(arguments: execd)
    func simpleCommandsGetExec(_ c: ExecCase) {
        #expect(ShellCommand.execForm(c.command) == c.expected)
        #expect(ShellCommand.forSpawn(c.command) == c.expected)
    }

    @Test(arguments: kept)
    func everythingElseKeepsItsShell(_ command: String) {
        #expect(ShellCommand.execForm(command) == nil)
        #expect(ShellCommand.forSpawn(command) == command)
    }

    /// What `exec` is put before is exactly the command name: one `exec`, and once there,
    /// the result is left alone (it already starts with `exec`).
    @Test(arguments: execd)
    func execFormIsStable(_ c: ExecCase) throws {
        let once = try #require(ShellCommand.execForm(c.command))
        #expect(once.components(separatedBy: "exec ").count - 1 == c.command.components(separatedBy: "exec ").count)
        #expect(ShellCommand.execForm(once) == nil)
    }

    /// Random commands built from shell fragments never crash the tokenizer, and what it
    /// returns is always the command with `exec ` inserted at one place, never otherwise changed.
    @Test func fuzzedFragmentsNeverCrashOrRewrite() {
        let fragments = ["./x", " ", "a", "'", "\"", "\\", "$", "(", ")", "{", "}", "`", ";", "&", "|", "<", ">",
                         "#", "=", "FOO=", "\n", "$(", "${", "$((", "))", "case", "if", "exec", "echo", "2>", "<<", "é", "*"]
        var seed: UInt64 = 0x5eed_c0de
        func next(_ n: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(n))
        }
        var execd = 0
        for _ in 0..<20_000 {
            let text = (0...next(8)).map { _ in fragments[next(fragments.count)] }.joined()
            guard let form = ShellCommand.execForm(text) else { continue }
            execd += 1
            let bytes = Array(text.utf8)
            let insertedOnce = (0...bytes.count).contains { k in Array(bytes[..<k] + Array("exec ".utf8) + bytes[k...]) == Array(form.utf8) }
            #expect(insertedOnce, "\(text) -> \(form)")
            #expect(!bytes.contains(UInt8(ascii: ";")) || bytes.contains { "'\"\\$`#".utf8.contains($0) }, "an unquoted ; was missed in \(text)")
        }
        #expect(execd > 100)
    }

    /// The exec form prints what the original prints under the real `/bin/sh`.
    @Test(arguments: [
        "/bin/echo \"a b\" 'c d' $((1 + 2)) ${UNSET_FOR_TEST:-dflt} x\\ y *.none",
        "FOO=\"v w\" /usr/bin/printenv FOO",
        ">/dev/stdout /bin/echo redirected 2>&1",
        "/bin/echo $(/bin/echo sub; /bin/echo two) `/bin/echo tick`",
        "A=1 B=$A /usr/bin/env -u PWD /bin/sh -c 'echo $A,$B'",
    ])
    func execFormBehavesTheSameUnderSh(_ command: String) throws {
        let form = try #require(ShellCommand.execForm(command))
        #expect(try Self.sh(form) == (try Self.sh(command)))
    }

    /// ...and leaves no shell: the program's parent is whoever ran `sh -c`.
    @Test func execFormLeavesNoShellBetween() throws {
        let command = "/bin/sh -c 'echo $PPID'"
        let parent = "\(ProcessInfo.processInfo.processIdentifier)\n"
        #expect(try Self.sh(command) != parent)
        #expect(try Self.sh(try #require(ShellCommand.execForm(command))) == parent)
    }

    static func sh(_ command: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        p.currentDirectoryURL = URL(fileURLWithPath: "/")
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
