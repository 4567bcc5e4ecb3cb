import Foundation
import Testing

/// `paas run`: one-off processes that replace paas (exec), in the app's environment.
struct RunTests {
    @Test(arguments: [(["false"], Int32(1)), (["true"], Int32(0)), (["exit 7"], Int32(7)), (["sh", "-c", "exit 9"], Int32(9))])
    func theExitStatusIsTheCommands(words: [String], status: Int32) throws {
        let app = try TempApp(procfile: "web: true\n")
        defer { app.remove() }
        #expect(try runPaas(["run"] + words, in: app.path).status == status)
    }

    @Test func aProcfileEntryRunsWithTheAppsEnvironmentAndArguments() throws {
        let app = try TempApp(procfile: "web: true\nmigrate: echo \"migrating $DATABASE_URL port=$PORT ps=$PS\"\n",
                              files: [".env": "DATABASE_URL=postgres://localhost/${APP:-app}\n"])
        defer { app.remove() }
        let r = try runPaas(["run", "migrate", "--step", "it's"], in: app.path, environment: ["APP": "shop"])
        #expect(r.status == 0)
        // ARGs are appended to the entry's command, each quoted.
        #expect(r.stdout == "migrating postgres://localhost/shop port=5100 ps=run.1 --step it's\n")
    }

    @Test func aCommandSeesEnvFilesFromRootAndNamedFiles() throws {
        let app = try TempApp(procfile: "web: true\n", files: [".env": "A=1\n", "other.env": "B=2\n"])
        defer { app.remove() }
        let fromRoot = try runPaas(["run", "-d", app.path, "echo A=$A B=$B dir=$(pwd)"])
        #expect(fromRoot.stdout == "A=1 B= dir=\(app.url.resolvingSymlinksInPath().path)\n" || fromRoot.stdout == "A=1 B= dir=\(app.path)\n")
        let named = try runPaas(["run", "-e", "other.env", "printenv", "B"], in: app.path)
        #expect(named.status == 0 && named.stdout == "2\n")
    }

    @Test func stdinIsTheCommandsAndPaasIsReplaced() throws {
        let app = try TempApp(procfile: "web: true\n")
        defer { app.remove() }
        let r = try Running(["run", "read line; echo got:$line; echo pid:$$; echo parent:$PPID"], in: app.path, stdin: true)
        r.writeStdin("hello\n")
        r.closeStdin()
        #expect(r.waitForExit() == 0)
        #expect(r.stdout.contains("got:hello"))
        // exec: the shell has paas's pid, and its parent is the test process.
        #expect(r.stdout.contains("pid:\(r.pid)\n"))
        #expect(r.stdout.contains("parent:\(getpid())\n"))
    }

    @Test func signalsReachTheCommand() throws {
        let app = try TempApp(procfile: "web: true\n")
        defer { app.remove() }
        let r = try Running(["run", "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.05; done"], in: app.path)
        #expect(r.waitForOutput("ready"))
        r.signal(SIGTERM)
        #expect(r.waitForExit() == 42)
        #expect(r.stdout.contains("got TERM"))
    }

    @Test func configErrorsAndMissingCommands() throws {
        let app = try TempApp(procfile: "web: true\n", files: [".env": "BAD-KEY=1\n"])
        defer { app.remove() }
        let bad = try runPaas(["run", "true"], in: app.path)
        #expect(bad.status == 78)
        #expect(bad.stderr.contains(".env:1:"))
        let missing = try runPaas(["run"], in: app.path)
        #expect(missing.status == 64)
        let empty = try TempApp()
        defer { empty.remove() }
        // No Procfile is needed for a plain command.
        #expect(try runPaas(["run", "echo ok"], in: empty.path).stdout == "ok\n")
    }
}
