import ArgumentParser
import PaasCore
import PaasConfig

extension ExitStatusCode {
    /// No `paas up` runs for this app (EX_UNAVAILABLE).
    static let notRunning: Int32 = 69
    /// Another `paas up` already runs for this app (EX_TEMPFAIL).
    static let alreadyRunning: Int32 = 75
    /// `paas up` refused the request (an unknown type, a bad count...).
    static let refused: Int32 = 1
}

/// How control commands name the app: the same root and Procfile as `up` (and PAAS_ROOT,
/// PAAS_PROCFILE), but no `-f` short flag, which `logs -f` uses for follow.
struct ControlAppOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The Procfile of the app (default: ROOT/Procfile; env: PAAS_PROCFILE).", valueName: "file"))
    var procfile: String?

    @Option(name: [.customShort("d"), .long], help: ArgumentHelp("The app root (default: the Procfile's folder; env: PAAS_ROOT).", valueName: "dir"))
    var root: String?

    var options: Options { Options(procfile: procfile, root: root) }
}

/// The places the control socket of the app these options name may be, in order.
func controlSocket(_ app: ControlAppOptions) -> [String] {
    let environment = currentEnvironment()
    let paths = Paths.resolve(app.options.withFallbacks(from: environment))
    return ControlAddress.candidates(root: paths.root, environment: environment, uid: UnixSocket.currentUID).map(\.socket)
}

/// Sends one request and returns the reply; maps failures to one line and an exit status.
func request(_ request: ControlRequest, _ app: ControlAppOptions) throws -> JSON {
    let replies: [JSON]
    do {
        replies = try ControlClient.send(request, to: controlSocket(app))
    } catch {
        FileDescriptorIO.printError("paas: \(error.description)\n")
        if case .notRunning = error { throw ExitCode(ExitStatusCode.notRunning) }
        throw ExitCode(ExitStatusCode.refused)
    }
    guard let reply = replies.first else {
        FileDescriptorIO.printError("paas: paas up closed the connection without a reply\n")
        throw ExitCode(ExitStatusCode.refused)
    }
    if reply["ok"]?.bool != true {
        FileDescriptorIO.printError("paas: \(reply["error"]?.string ?? "request refused")\n")
        // A refusal with a status of its own (a reload's configuration error: 78).
        throw ExitCode(reply["exit"]?.int.map { Int32(clamping: $0) } ?? ExitStatusCode.refused)
    }
    return reply
}

/// Prints `restarting web.1, web.2` (`doing` and the names a reply lists under `key`), or
/// `nothing to restart` when it lists none.
func printNames(_ reply: JSON, _ key: String, doing: String, nothing: String) {
    let names = (reply[key]?.array ?? []).compactMap(\.string)
    FileDescriptorIO.printOut(names.isEmpty ? "nothing to \(nothing)\n" : "\(doing) \(names.joined(separator: ", "))\n")
}

struct PS: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List the processes of a running paas up: pid, port, state, uptime, restarts, CPU and memory.")

    @OptionGroup var app: ControlAppOptions
    @Flag(help: "Print a JSON array of objects.") var json = false

    func run() throws {
        let reply = try request(.ps, app)
        let rows = reply["processes"]?.array ?? []
        if json {
            FileDescriptorIO.printOut(JSON.array(rows).serialized(pretty: true) + "\n")
            return
        }
        var table = [["NAME", "PID", "PORT", "STATE", "READY", "UPTIME", "RESTARTS", "CPU", "RSS", "LAST EXIT"]]
        for r in rows {
            func text(_ v: JSON?) -> String {
                switch v {
                case .string(let s)?: s
                case .int(let i)?: String(i)
                case .number(let d)?: String(d)
                default: "-"
                }
            }
            let uptime = r["uptime_s"].flatMap { v -> Double? in if case .number(let d) = v { return d }; return v.int.map(Double.init) } ?? 0
            let rss = r["rss_kb"]?.int.map { $0 >= 10240 ? "\($0 / 1024)M" : "\($0)K" } ?? "-"
            let cpu = r["cpu_s"].map { "\(text($0))s" } ?? "-"
            table.append([text(r["name"]), text(r["pid"]), text(r["port"]), text(r["state"]), r["ready"]?.bool == true ? "yes" : "no", r["pid"] == .null ? "-" : Self.duration(uptime), text(r["restarts"]), r["cpu_s"] == .null ? "-" : cpu, rss, text(r["last_exit"])])
        }
        let widths = (0..<table[0].count).map { c in table.map { $0[c].count }.max() ?? 0 }
        FileDescriptorIO.printOut(table.map { row in
            row.enumerated().map { c, cell in c == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[c] - cell.count) }.joined(separator: "  ") + "\n"
        }.joined())
        if let status = reply["status"]?.string { FileDescriptorIO.printOut("status: \(status)\n") }
        let checks = rows.compactMap { r -> String? in
            guard let c = r["check"]?.string, c != "-", let n = r["name"]?.string else { return nil }
            return "  \(n): \(c)\n"
        }
        if !checks.isEmpty { FileDescriptorIO.printOut("last checks:\n" + checks.joined()) }
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s)
        if t < 60 { return "\(t)s" }
        if t < 3600 { return "\(t / 60)m\(t % 60)s" }
        return "\(t / 3600)h\(t % 3600 / 60)m"
    }
}

struct Scale: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scale", abstract: "Change a running formation: paas scale web=4 worker=2 (also all=N).", discussion: "New instances take the next names and ports; scaling down stops the highest-numbered instances gracefully. Other instances are untouched.")

    @OptionGroup var app: ControlAppOptions
    @Argument(help: ArgumentHelp("TYPE=COUNT pairs.", valueName: "type=count")) var counts: [String]

    func run() throws {
        let spec: FormationSpec
        do {
            spec = try FormationSpec.parse(counts.joined(separator: ","), source: "scale")
        } catch {
            throw fail(error)
        }
        if spec.all == nil && spec.counts.isEmpty { throw ValidationError("Say what to scale, e.g. `paas scale web=4`.") }
        let reply = try request(.scale(spec), app)
        let formation = reply["formation"]?.objectPairs ?? []
        FileDescriptorIO.printOut("formation: " + formation.map { "\($0.0)=\($0.1.int ?? 0)" }.joined(separator: ", ") + "\n")
    }
}

struct Restart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart processes of a running paas up gracefully (a type, web, or one process, web.2; default all).")

    @OptionGroup var app: ControlAppOptions
    @Argument(help: "Types or processes (default: all).") var targets: [String] = []

    func run() throws {
        printNames(try request(.restart(targets), app), "restarted", doing: "restarting", nothing: "restart")
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop processes of a running paas up and keep them down; with no target, stop paas up itself.")

    @OptionGroup var app: ControlAppOptions
    @Argument(help: "Types or processes (default: everything, as SIGTERM would).") var targets: [String] = []

    func run() throws {
        let reply = try request(.stop(targets), app)
        if targets.isEmpty {
            FileDescriptorIO.printOut("stopping paas up\n")
        } else {
            printNames(reply, "stopped", doing: "stopping", nothing: "stop")
        }
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Re-read the Procfile, env files and app.json of a running paas up and apply the difference (also SIGHUP).",
        discussion: """
        Types whose command, environment or app.json settings changed are replaced one instance at a time \
        (the new one must be ready before the old one stops; a singleton or a type bound to $PORT stops first); \
        new types start, removed types stop, changed counts apply like scale; everything else keeps its pid, \
        port, restarts and backoff. A bad configuration changes nothing: the error is printed and paas exits 78.
        """
    )

    @OptionGroup var app: ControlAppOptions

    func run() throws {
        let reply = try request(.reload, app)
        let changed = (reply["changed"]?.array ?? []).compactMap(\.string)
        let generation = reply["generation"]?.int ?? 0
        if changed.isEmpty {
            FileDescriptorIO.printOut("nothing changed (generation \(generation))\n")
            return
        }
        let release = reply["release"]?.string == "running" ? " after the new release phase" : ""
        FileDescriptorIO.printOut(changed.map { "\($0)\n" }.joined() + "reloading to generation \(generation)\(release)\n")
    }
}

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print recent lines of a running paas up's event stream; -f follows it.", discussion: "paas up keeps the last 8 MiB of lines (about 65,000 lines of 100 bytes).")

    @OptionGroup var app: ControlAppOptions
    @Flag(name: .shortAndLong, help: "Keep printing new lines until interrupted.") var follow = false
    @Option(name: .short, help: ArgumentHelp("How many recent lines (default 100).", valueName: "lines")) var n: Int = 100
    @Flag(help: "Print JSON objects, one per line.") var json = false
    @Flag(name: .customLong("no-color"), help: "Never colour the output.") var noColor = false
    @Argument(help: "Types, processes or system (default: all).") var targets: [String] = []

    func validate() throws {
        if n < 0 { throw ValidationError("-n must be 0 or more.") }
    }

    func run() throws {
        let environment = currentEnvironment()
        let style: LogStyle
        do {
            style = try OutputOptions.resolve(format: "text", noColor: noColor, noTimestamp: false, stdoutIsTerminal: FileDescriptorIO.isTerminal(1), environment: environment)
        } catch {
            throw fail(error)
        }
        var replay = LogReplay(style: style)
        var first = true
        var failure: String?
        var outputClosed = false
        do {
            try ControlClient.stream(.logs(lines: n, follow: follow, targets: targets), to: controlSocket(app), timeoutSeconds: follow ? nil : 30) { object in
                if first {
                    first = false
                    if object["ok"]?.bool != true { failure = object["error"]?.string ?? "request refused"; return false }
                    return true
                }
                if object["ok"]?.bool == false {
                    failure = object["error"]?.string
                    return false
                }
                let bytes = json ? Array((object.serialized() + "\n").utf8) : replay.line(object) ?? []
                // A non-blocking stdout (from a node parent) is waited for, not taken for a closed one.
                if bytes.withUnsafeBytes({ OutputFile.writeAll(1, $0) }) != .written { outputClosed = true; return false }
                return true
            }
        } catch {
            FileDescriptorIO.printError("paas: \(error.description)\n")
            if case .notRunning = error { throw ExitCode(ExitStatusCode.notRunning) }
            throw ExitCode(ExitStatusCode.refused)
        }
        if outputClosed { return }
        if let failure {
            FileDescriptorIO.printError("paas: \(failure)\n")
            throw ExitCode(ExitStatusCode.refused)
        }
    }
}
