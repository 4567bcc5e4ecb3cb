/// The options every command shares, as given: flags first, `PAAS_<OPTION>` variables as
/// the fallback. `nil` means not given.
package struct Options: Sendable, Equatable {
    package var procfile: String?
    package var envFiles: [String]?
    package var root: String?
    package var formation: String?
    package var port: String?
    package var timeout: String?

    package init(procfile: String? = nil, envFiles: [String]? = nil, root: String? = nil, formation: String? = nil, port: String? = nil, timeout: String? = nil) {
        self.procfile = procfile
        self.envFiles = envFiles
        self.root = root
        self.formation = formation
        self.port = port
        self.timeout = timeout
    }

    /// The variable that stands in for each option: a flag beats it.
    package static let variables = (procfile: "PAAS_PROCFILE", env: "PAAS_ENV", root: "PAAS_ROOT", formation: "PAAS_FORMATION", port: "PAAS_PORT", timeout: "PAAS_TIMEOUT")

    /// Fills every option not given as a flag from its `PAAS_*` variable. This is the one
    /// place where flags and the environment meet.
    package func withFallbacks(from environment: [String: String]) -> Options {
        var o = self
        o.procfile = o.procfile ?? environment[Self.variables.procfile].nonEmpty
        o.envFiles = o.envFiles ?? environment[Self.variables.env].nonEmpty.map { [$0] }
        o.root = o.root ?? environment[Self.variables.root].nonEmpty
        o.formation = o.formation ?? environment[Self.variables.formation].nonEmpty
        o.port = o.port ?? environment[Self.variables.port].nonEmpty
        o.timeout = o.timeout ?? environment[Self.variables.timeout].nonEmpty
        return o
    }
}

extension Optional where Wrapped == String {
    fileprivate var nonEmpty: String? { self.flatMap { $0.isEmpty ? nil : $0 } }
}

/// Where things are, resolved from ``Options``: paths as the user gave them (for messages)
/// and as paas opens them.
package struct Paths: Sendable, Equatable {
    /// The Procfile as the user named it (or the default, `Procfile` or `ROOT/Procfile`).
    package var procfile: String
    /// The app root, absolute: children run here.
    package var root: String
    /// The root as given or derived, for messages.
    package var rootDisplay: String
    /// The env files in order, as named, and whether each was named (a missing default
    /// `.env` is not an error).
    package var envFiles: [(path: String, explicit: Bool)]

    package static func == (a: Paths, b: Paths) -> Bool {
        a.procfile == b.procfile && a.root == b.root && a.envFiles.map(\.path) == b.envFiles.map(\.path)
    }

    /// Resolves paths: `-f` is taken as given (relative to the current directory); without
    /// it the Procfile is `ROOT/Procfile`. `-d` defaults to the Procfile's folder. `-e`
    /// files are taken as given; without `-e`, `ROOT/.env` is read if it exists.
    package static func resolve(_ options: Options) -> Paths {
        let procfile: String
        if let f = options.procfile {
            procfile = f
        } else if let r = options.root {
            procfile = join(r, "Procfile")
        } else {
            procfile = "Procfile"
        }
        let rootDisplay = options.root ?? directoryName(procfile)
        let envFiles: [(String, Bool)]
        if let given = options.envFiles {
            envFiles = given.flatMap { $0.split(separator: ",").map { (String($0).trimmingBlanks(), true) } }.filter { !$0.0.isEmpty }
        } else {
            envFiles = [(join(rootDisplay, ".env"), false)]
        }
        return Paths(procfile: procfile, root: FileSystem.absolute(rootDisplay), rootDisplay: rootDisplay, envFiles: envFiles)
    }

    private static func join(_ dir: String, _ name: String) -> String {
        if dir == "." || dir.isEmpty { return name }
        return dir.hasSuffix("/") ? dir + name : dir + "/" + name
    }

    private static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }
}

/// The variables env files set, after interpolation, folded in order: the first
/// appearance of a key fixes its position, the last assignment its value.
///
/// A dictionary from key to position keeps `set` and lookups O(1): with a linear search per
/// key, 100,000 keys took 14 s (issue 8, fault 24).
package struct EnvConfig: Sendable, Equatable {
    package var files: [String] = []
    package var warnings: [ConfigWarning] = []
    /// Every key once, at its first position, with its last value.
    package var variables: [(key: String, value: String)] {
        get { ordered }
        set {
            ordered = []
            position = [:]
            for (k, v) in newValue { set(k, v) }
        }
    }
    private var ordered: [(key: String, value: String)] = []
    /// The index of each key in `ordered`.
    private var position: [String: Int] = [:]

    package static func == (a: EnvConfig, b: EnvConfig) -> Bool {
        a.files == b.files && a.variables.map(\.key) == b.variables.map(\.key) && a.variables.map(\.value) == b.variables.map(\.value) && a.warnings == b.warnings
    }

    package init() {}

    /// The value of `key`, if the files set it.
    package subscript(key: String) -> String? {
        position[key].map { ordered[$0].value }
    }

    fileprivate mutating func set(_ key: String, _ value: String) {
        if let i = position[key] {
            ordered[i].value = value
        } else {
            position[key] = ordered.count
            ordered.append((key, value))
        }
    }
}

/// Reads the files named by ``Paths`` and turns read failures into configuration errors.
package enum ConfigLoader {
    /// Reads `path`, mapping failures to errors that name it and say what was expected.
    package static func readFile(_ path: String, expected: String) throws(ConfigError) -> [UInt8] {
        do throws(FileReadError) {
            return try FileSystem.read(path)
        } catch {
            switch error {
            case .notFound:
                throw ConfigError(.fileNotFound, file: path, line: nil, "no such file; expected \(expected)")
            case .isDirectory:
                throw ConfigError(.isDirectory, file: path, line: nil, "is a directory; expected \(expected)")
            case .unreadable(let why):
                throw ConfigError(.unreadable, file: path, line: nil, "cannot be read: \(why); expected \(expected)")
            case .danglingLink:
                throw ConfigError(.brokenLink, file: path, line: nil, "is a symbolic link to a file that does not exist; expected \(expected)")
            case .linkLoop:
                throw ConfigError(.brokenLink, file: path, line: nil, "cannot be resolved: a loop of symbolic links (ELOOP); expected \(expected)")
            case .notRegularFile(let kind):
                throw ConfigError(.notRegularFile, file: path, line: nil, "is \(kind), not a regular file; expected \(expected)")
            case .tooLarge(let limit):
                throw ConfigError(.tooLarge, file: path, line: nil, "is larger than \(limit >> 20) MiB; expected a file of at most \(limit >> 20) MiB")
            }
        }
    }

    /// Parses the Procfile.
    package static func procfile(_ paths: Paths) throws(ConfigError) -> Procfile {
        let bytes = try readFile(paths.procfile, expected: "a Procfile (name another with -f)")
        return try ProcfileParser.parse(bytes, file: paths.procfile)
    }

    /// Reads the env files in order as one sequence: each file sees the keys of the files
    /// before it, then the process environment.
    package static func env(_ paths: Paths, environment: [String: String]) throws(ConfigError) -> EnvConfig {
        var config = EnvConfig()
        for (path, explicit) in paths.envFiles {
            if !explicit && FileSystem.isAbsent(path) { continue }  // a broken link is read, and named
            let bytes = try readFile(path, expected: "an env file of KEY=VALUE lines")
            let earlier = config
            let file = try EnvFileParser.parse(bytes, file: path) { name in earlier[name] ?? environment[name] }
            config.files.append(path)
            for a in file.assignments { config.set(a.key, a.value) }
            config.warnings.append(contentsOf: file.warnings)
        }
        return config
    }

    /// The base port: `-p`/`PAAS_PORT`, else `PORT` from the env files, else the inherited
    /// `$PORT`, else 5000 (foreman's order).
    package static func basePort(_ options: Options, env: EnvConfig, environment: [String: String], source flagSource: String = "-p/--port") throws(ConfigError) -> Int {
        let (text, source): (String, String)
        if let p = options.port { (text, source) = (p, flagSource) }
        else if let p = env["PORT"] { (text, source) = (p, "PORT (env file)") }
        else if let p = environment["PORT"], !p.isEmpty { (text, source) = (p, "PORT (environment)") }
        else { return 5000 }
        let trimmed = text.trimmingBlanks()
        guard !trimmed.isEmpty, trimmed.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(trimmed), (1...65535).contains(port) else {
            throw ConfigError(.badOption, file: source, line: nil, "port \"\(text)\" is not valid; expected a whole number from 1 to 65535")
        }
        return port
    }

    /// The grace period between SIGTERM and SIGKILL, in seconds (default 5).
    package static func timeout(_ options: Options, source: String = "-t/--timeout") throws(ConfigError) -> Double {
        guard let t = options.timeout else { return 5 }
        let trimmed = t.trimmingBlanks()
        let decimal = !trimmed.isEmpty && trimmed.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") } && trimmed.filter { $0 == "." }.count <= 1
        guard decimal, let value = Double(trimmed), value >= 0, value <= 86400 else {
            throw ConfigError(.badOption, file: source, line: nil, "timeout \"\(t)\" is not valid; expected seconds from 0 to 86400")
        }
        return value
    }
}

/// Everything `paas up`, `check` and `run` need: paths, Procfile, env files, formation.
package struct AppConfig: Sendable {
    package var paths: Paths
    package var procfile: Procfile
    package var env: EnvConfig
    package var formation: Formation
    package var timeout: Double
    /// app.json's settings (empty without the file).
    package var manifest = AppManifest()
    /// app.json as named in messages, when it exists.
    package var manifestPath: String?

    package init(paths: Paths, procfile: Procfile, env: EnvConfig, formation: Formation, timeout: Double, manifest: AppManifest = AppManifest(), manifestPath: String? = nil) {
        self.paths = paths
        self.procfile = procfile
        self.env = env
        self.formation = formation
        self.timeout = timeout
        self.manifest = manifest
        self.manifestPath = manifestPath
    }

    /// The settings of a type (defaults when app.json says nothing).
    package func settings(_ type: String) -> ProcessSettings { manifest.processes[type] ?? ProcessSettings() }

    /// Whether the router owns `type`'s public port (before `--no-router`).
    package func isRouted(_ type: String) -> Bool { settings(type).isRouted(type) }

    /// Loads and validates everything; the first problem is thrown.
    package static func load(_ options: Options, environment: [String: String]) throws(ConfigError) -> AppConfig {
        // Name each value's source as the user gave it, before the fallbacks merge them.
        let formationSource = options.formation != nil ? "-m/--formation" : Options.variables.formation
        let portSource = options.port != nil ? "-p/--port" : Options.variables.port
        let timeoutSource = options.timeout != nil ? "-t/--timeout" : Options.variables.timeout
        let options = options.withFallbacks(from: environment)
        let paths = Paths.resolve(options)
        let timeout = try ConfigLoader.timeout(options, source: timeoutSource)
        let procfile = try ConfigLoader.procfile(paths)
        let env = try ConfigLoader.env(paths, environment: environment)
        let base = try ConfigLoader.basePort(options, env: env, environment: environment, source: portSource)
        let spec = try options.formation.map { (text) throws(ConfigError) in try FormationSpec.parse(text, source: formationSource) } ?? FormationSpec()
        let manifestPath = paths.rootDisplay == "." ? AppManifest.fileName : paths.rootDisplay + "/" + AppManifest.fileName
        var manifest = AppManifest()
        let typeNames = procfile.entries.map(\.name).filter { $0 != Formation.releaseName }
        let hasManifest = !FileSystem.isAbsent(manifestPath)  // a broken link is an error, not "no app.json"
        if hasManifest {
            manifest = try AppManifest.parse(try ConfigLoader.readFile(manifestPath, expected: "an app.json file"), file: manifestPath, types: typeNames)
        }
        // A plan that does not fit is the counts' fault when counts were given, else the base port's.
        let planSource = options.formation != nil ? formationSource : options.port != nil ? portSource : "base port \(base)"
        let formation = try Formation.plan(procfile, counts: spec, defaults: manifest.formation, basePort: base, source: formationSource, portSource: planSource)
        return AppConfig(paths: paths, procfile: procfile, env: env, formation: formation, timeout: timeout, manifest: manifest, manifestPath: hasManifest ? manifestPath : nil)
    }

    /// The environment of a child: inherited < env files < `extra` (PORT, PS, DYNO).
    /// Variables that belong to paas's own supervisor (systemd's notify and socket
    /// activation) are never passed on.
    package func childEnvironment(inherited: [(key: String, value: String)], extra: [(String, String)]) -> [String] {
        var order: [String] = []
        var values: [String: String] = [:]
        func set(_ k: String, _ v: String) {
            if values.updateValue(v, forKey: k) == nil { order.append(k) }
        }
        for (k, v) in inherited where !Self.hidden(k) { set(k, v) }
        for (k, v) in env.variables { set(k, v) }
        for (k, v) in extra { set(k, v) }
        return order.map { "\($0)=\(values[$0]!)" }
    }

    private static func hidden(_ key: String) -> Bool {
        key == "NOTIFY_SOCKET" || key == "JOURNAL_STREAM" || key.hasPrefix("WATCHDOG_") || key.hasPrefix("LISTEN_")
    }
}
