import ArgumentParser
import PaasCore
import PaasConfig

struct RolloutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Replace a type's processes with zero downtime (blue-green, canary, rolling); status, promote, abort.",
        discussion: """
        paas rollout TYPE... re-reads the configuration (as paas reload) and replaces TYPE's processes with ones \
        started from it, even when nothing changed (a zero-downtime restart). A routed type rolls out by its \
        strategy: blue-green starts a whole new set, switches when every new instance is ready and drains the \
        old set; canary sends the new set a growing share of traffic (--steps) and rolls back on its own when \
        a new instance exits, fails its checks, or errs more than max(1 %, 2 x the old set). Other types roll \
        one instance at a time. Blocks and prints each decision; exits 0 when promoted, 1 when rolled back or \
        aborted. paas rollout status|promote|abort acts on the rollouts under way.
        """
    )

    @OptionGroup var app: ControlAppOptions
    @Option(help: ArgumentHelp("blue-green, canary or rolling (default: app.json, else blue-green for a routed type).", valueName: "strategy"))
    var strategy: String?
    @Option(help: ArgumentHelp("Canary weights in percent, e.g. 10,50,100.", valueName: "list"))
    var steps: String?
    @Option(name: .customLong("step-duration"), help: ArgumentHelp("Seconds each canary step is held.", valueName: "seconds"))
    var stepDuration: Double?
    @Flag(help: "Return once the rollout has started.") var detach = false
    @Flag(help: "With status: print JSON.") var json = false
    @Argument(help: "Process types to roll out, or status, promote or abort.") var types: [String] = []

    func run() throws {
        guard let first = types.first else { throw ValidationError("Name the process types to roll out, or status, promote or abort.") }
        switch first {
        case "status":
            let reply = try request(.rolloutStatus(since: Int.max), app)
            if json { FileDescriptorIO.printOut(reply.serialized() + "\n"); return }
            let active = reply["active"]?.array ?? []
            var out = active.isEmpty ? "no rollout under way\n" : ""
            for a in active {
                let ready = a["ready"]?.string.map { ", \($0) new ready" } ?? ""
                let weight = a["weight"]?.int.map { ", \($0) % to the new set" } ?? ""
                out += "\(a["type"]?.string ?? "?"): \(a["strategy"]?.string ?? "?"), \(a["phase"]?.string ?? "?")\(weight)\(ready)\n"
            }
            for (type, o) in reply["outcomes"]?.objectPairs ?? [] { out += "\(type): last rollout \(o["outcome"]?.string ?? "?")\n" }
            FileDescriptorIO.printOut(out)
        case "promote", "abort":
            let reply = try request(first == "promote" ? .rolloutPromote : .rolloutAbort, app)
            let names = (reply[first == "promote" ? "promoted" : "aborted"]?.array ?? []).compactMap(\.string)
            FileDescriptorIO.printOut("\(first == "promote" ? "promoting" : "aborting") \(names.joined(separator: ", "))\n")
        default:
            try rollOut()
        }
    }

    private func rollOut() throws {
        var overrides = RolloutOverrides()
        if let strategy {
            guard let s = RolloutSettings.Strategy(rawValue: strategy) else { throw ValidationError("--strategy must be blue-green, canary or rolling.") }
            overrides.strategy = s
        }
        if let steps {
            let parts = steps.split(separator: ",").map { Int($0.filter { $0 != " " }) }
            guard !parts.isEmpty, parts.allSatisfy({ $0.map { (1...100).contains($0) } ?? false }), parts.last == 100,
                  zip(parts, parts.dropFirst()).allSatisfy({ $0! < $1! }) else {
                throw ValidationError("--steps must be increasing percentages from 1 to 100 ending with 100, e.g. 10,50,100.")
            }
            overrides.steps = parts.compactMap { $0 }
        }
        if let stepDuration {
            guard stepDuration >= 0, stepDuration <= 86400 else { throw ValidationError("--step-duration must be from 0 to 86400 seconds.") }
            overrides.stepDuration = UInt64(stepDuration * 1e9)
        }
        let reply = try request(.rollout(types: types, overrides: overrides), app)
        for line in (reply["changed"]?.array ?? []).compactMap(\.string) { FileDescriptorIO.printOut("\(line)\n") }
        if detach { FileDescriptorIO.printOut("rolling out \(types.joined(separator: ", ")) (paas rollout status follows it)\n"); return }
        var since = reply["log_from"]?.int ?? 0
        let start = since
        var outcomes: [String: Bool] = [:]
        while outcomes.count < Set(types).count {
            let status = try request(.rolloutStatus(since: since), app)
            for line in (status["log"]?.array ?? []).compactMap(\.string) { FileDescriptorIO.printOut("\(line)\n") }
            since = status["next"]?.int ?? since
            for (type, o) in status["outcomes"]?.objectPairs ?? [] where types.contains(type) {
                if let at = o["at"]?.int, at >= start { outcomes[type] = o["promoted"]?.bool == true }
            }
            if outcomes.count < Set(types).count { Pause.milliseconds(100) }
        }
        if outcomes.values.contains(false) { throw ExitCode(ExitStatusCode.refused) }
    }
}
