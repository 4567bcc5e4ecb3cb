import ArgumentParser
import PaasCore
import PaasConfig

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the Procfile and env files; print the formation and its ports."
    )

    @OptionGroup var app: AppOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let config: AppConfig
        do {
            config = try AppConfig.load(app.options, environment: currentEnvironment())
        } catch {
            throw fail(error)
        }
        printWarnings(config.env.warnings)
        FileDescriptorIO.printOut(json ? CheckReport.json(config) + "\n" : CheckReport.text(config))
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the variables the env files set, after interpolation (like heroku config).",
        discussion: "Without --json, prints KEY='value' lines that a POSIX shell can eval. With KEY, prints only its value, and exits 1 if the env files do not set it. Needs no Procfile."
    )

    @OptionGroup var app: AppOptions

    @Flag(help: "Print one JSON object of the variables.")
    var json = false

    @Argument(help: "Print only this variable's value.")
    var key: String?

    func run() throws {
        let env: EnvConfig
        do {
            let environment = currentEnvironment()
            let options = app.options.withFallbacks(from: environment)
            env = try ConfigLoader.env(Paths.resolve(options), environment: environment)
        } catch {
            throw fail(error)
        }
        printWarnings(env.warnings)
        if let key {
            guard let value = env[key] else {
                FileDescriptorIO.printError("paas: \(key) is not set by \(env.files.isEmpty ? "any env file (none was read)" : env.files.joined(separator: ", "))\n")
                throw ExitCode(ExitStatusCode.notFound)
            }
            FileDescriptorIO.printOut(json ? JSON.string(value).serialized() + "\n" : value + "\n")
            return
        }
        if json {
            FileDescriptorIO.printOut(JSON.object(env.variables.map { ($0.key, .string($0.value)) }).serialized(pretty: true) + "\n")
        } else {
            FileDescriptorIO.printOut(env.variables.map { "\($0.key)=\(OneOff.shellQuote($0.value))\n" }.joined())
        }
    }
}
