import ArgumentParser
import PaasCore
import PaasConfig

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run the formation in the foreground (alias: start).",
        discussion: """
        Runs the release phase first when the Procfile has a `release` entry, then every process type \
        (or only the TYPEs named). SIGINT or SIGTERM stops everything: SIGTERM to each process \
        group, SIGKILL after the timeout; a second Ctrl-C kills at once. SIGHUP reloads the configuration \
        (as `paas reload`); closing the terminal still stops everything. When a process exits on its own \
        the rest are stopped and paas exits with its status.
        """,
        aliases: ["start"]
    )

    @OptionGroup var app: AppOptions

    @Flag(name: .customLong("no-router"), help: "No router: every instance binds its own port from the plan, as with foreman (also PAAS_NO_ROUTER=1).")
    var noRouter = false

    @Flag(name: .customLong("no-color"), help: "Never colour the output (also NO_COLOR, PAAS_NO_COLOR).")
    var noColor = false

    @Flag(name: .customLong("no-timestamp"), help: "Leave out the time at the start of each line (also PAAS_NO_TIMESTAMP).")
    var noTimestamp = false

    @Option(name: .customLong("log-format"), help: ArgumentHelp("text or json: one object per line (env: PAAS_LOG_FORMAT).", valueName: "format"))
    var logFormat: String?

    @Argument(help: "Process types to run (default: all).")
    var types: [String] = []

    func run() throws {
        let environment = currentEnvironment()
        let plan: RunPlan
        do {
            let config = try AppConfig.load(app.options, environment: environment)
            let style = try OutputOptions.resolve(format: logFormat, noColor: noColor, noTimestamp: noTimestamp, stdoutIsTerminal: FileDescriptorIO.isTerminal(1), environment: environment)
            var made = try RunPlan.make(app: config, only: types, style: style)
            made.routerEnabled = !(noRouter || ["1", "true", "yes"].contains(environment["PAAS_NO_ROUTER"]?.lowercased() ?? ""))
            plan = made
            printWarnings(config.env.warnings)
        } catch {
            throw fail(error)
        }
        // The control socket comes first: if another paas up owns this app, nothing starts.
        let poller = Poller()
        let control: ControlServer
        do {
            let root = plan.app.paths.root, uid = UnixSocket.currentUID
            control = try ControlServer(candidates: ControlAddress.candidates(root: root, environment: environment, uid: uid),
                                        locks: ControlAddress.lockCandidates(root: root, environment: environment, uid: uid),
                                        poller: poller, token: Supervisor.Token.control)
        } catch {
            FileDescriptorIO.printError("paas: \(error.description)\n")
            if case .alreadyRunning = error { throw ExitCode(ExitStatusCode.alreadyRunning) }
            throw ExitCode(ExitStatusCode.startFailure)
        }
        let options = app.options
        let reloader: @Sendable () throws(ConfigError) -> AppConfig = { () throws(ConfigError) -> AppConfig in
            try AppConfig.load(options, environment: environment)
        }
        let status = Supervisor(plan: plan, control: control, poller: poller, reloader: reloader).run()
        throw ExitCode(status)
    }
}
