import ArgumentParser
import PaasCore
import PaasConfig

/// Exit statuses, decided here and nowhere else (README.md lists them).
enum ExitStatusCode {
    static let success: Int32 = 0
    /// `paas config KEY` for a key the env files do not set.
    static let notFound: Int32 = 1
    /// Bad flags or arguments (argument-parser's validation status, EX_USAGE).
    static let usage: Int32 = 64
    /// A process could not be started (EX_OSERR).
    static let startFailure: Int32 = 71
    /// A bad Procfile, env file or option value (EX_CONFIG).
    static let configuration: Int32 = 78
}

@main
struct Paas: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paas",
        abstract: "Run a Procfile's processes as one app: the twelve-factor way, without orphans or lost log lines.",
        discussion: """
        Exit statuses: 0 after a requested shutdown; a child's own status when its exit ended the run \
        (128+N when signal N killed it); 1 when `config KEY` is not set or paas up refused a request; \
        64 for bad usage; 69 when no paas up runs for the app; 71 when a process could not be started; \
        74 when paas up could not write its output (a full disk, a file-size limit); \
        75 when another paas up already runs for the app (or a reload is under way); 78 for a configuration \
        error (also a reload's).
        """,
        version: PaasVersion.current,
        subcommands: [Up.self, Run.self, Check.self, ConfigCommand.self, PS.self, Scale.self, Restart.self, Stop.self, Reload.self, RolloutCommand.self, Logs.self]
    )
}

/// The options every command reads its app from.
struct AppOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .long], help: ArgumentHelp("The Procfile (default: ROOT/Procfile; env: PAAS_PROCFILE).", valueName: "file"))
    var procfile: String?

    @Option(name: [.customShort("e"), .long], help: ArgumentHelp("Env files, comma-separated or repeated; later wins (default: ROOT/.env if it exists; env: PAAS_ENV).", valueName: "file"))
    var env: [String] = []

    @Option(name: [.customShort("d"), .long], help: ArgumentHelp("The app root, where processes run (default: the Procfile's folder; env: PAAS_ROOT).", valueName: "dir"))
    var root: String?

    @Option(name: [.customShort("m"), .long], help: ArgumentHelp("Counts per type: web=2,worker=1 (all=N sets every type; default 1 each; env: PAAS_FORMATION).", valueName: "spec"))
    var formation: String?

    @Option(name: [.customShort("p"), .long], help: ArgumentHelp("Base port (default: $PORT, else 5000; env: PAAS_PORT).", valueName: "port"))
    var port: String?

    @Option(name: [.customShort("t"), .long], help: ArgumentHelp("Seconds between SIGTERM and SIGKILL at shutdown (default 5; env: PAAS_TIMEOUT).", valueName: "seconds"))
    var timeout: String?

    var options: Options {
        Options(procfile: procfile, envFiles: env.isEmpty ? nil : env, root: root, formation: formation, port: port, timeout: timeout)
    }
}

/// Prints a configuration error in compiler style and exits with the configuration status.
func fail(_ error: ConfigError) -> ExitCode {
    FileDescriptorIO.printError("paas: \(error.description)\n")
    return ExitCode(ExitStatusCode.configuration)
}

/// Prints warnings (undefined variables in env files) to stderr.
func printWarnings(_ warnings: [ConfigWarning]) {
    for w in warnings { FileDescriptorIO.printError("paas: \(w.description)\n") }
}

func currentEnvironment() -> [String: String] {
    var env: [String: String] = [:]
    for (k, v) in ProcessEnvironment.current() { env[k] = v }
    return env
}
