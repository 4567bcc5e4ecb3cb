import ArgumentParser
import PaasCore
import PaasConfig

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a one-off process in the app's environment (paas run migrate).",
        discussion: """
        NAME is a Procfile entry (its command runs, with any ARGs appended); anything else runs as a \
        command through /bin/sh. paas replaces itself with the process, so the terminal, stdin, signals \
        and the exit status are the command's own.
        """
    )

    @OptionGroup var app: AppOptions

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("A Procfile entry or a command, and its arguments.", valueName: "name|command"))
    var command: [String] = []

    func validate() throws {
        // Passthrough parsing takes every word after the options, so help is handled here.
        if command.first == "--help" || command.first == "-h" { throw CleanExit.helpRequest(self) }
        if command.isEmpty { throw ValidationError("Missing NAME or COMMAND: say what to run, e.g. `paas run migrate`.") }
    }

    func run() throws {
        let environment = currentEnvironment()
        let request: SpawnRequest
        do {
            request = try OneOff.request(for: command, options: app.options, environment: environment)
        } catch {
            throw fail(error)
        }
        let failure = Spawner.replaceProcess(with: request)
        FileDescriptorIO.printError("paas: could not run \(command.joined(separator: " ")): \(failure.description)\n")
        throw ExitCode(ExitStatusCode.startFailure)
    }
}
