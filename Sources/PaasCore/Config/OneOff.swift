package import PaasConfig

/// `paas run`: what a one-off process runs, and with which environment.
package enum OneOff {
    /// The process for `paas run WORDS...`: a Procfile entry's command (ARGs appended, each
    /// quoted for the shell) or the words as a shell command (one word is taken as a whole
    /// command line, so `paas run 'echo $PORT'` works; several are quoted one by one).
    /// The environment is the app's: inherited < env files < PORT (the type's first port, or
    /// the base port), PS and DYNO `run.1`. The Procfile is optional unless a name needs it.
    package static func request(for words: [String], options: Options, environment: [String: String]) throws(ConfigError) -> SpawnRequest {
        let options = options.withFallbacks(from: environment)
        let paths = Paths.resolve(options)
        let env = try ConfigLoader.env(paths, environment: environment)
        let base = try ConfigLoader.basePort(options, env: env, environment: environment)
        var procfile: Procfile?
        if !FileSystem.isAbsent(paths.procfile) || options.procfile != nil {
            procfile = try ConfigLoader.procfile(paths)
        }
        let name = words[0]
        let args = words.dropFirst().map(shellQuote)
        var port = base
        let command: String
        if let procfile, let entry = procfile.entries.first(where: { $0.name == name }) {
            command = ([entry.command] + args).joined(separator: " ")
            let types = procfile.entries.filter { $0.name != Formation.releaseName }
            if let i = types.firstIndex(where: { $0.name == name }) { port = base + 100 * i }
        } else if words.count == 1 {
            command = name
        } else {
            command = words.map(shellQuote).joined(separator: " ")
        }
        let app = AppConfig(paths: paths, procfile: procfile ?? Procfile(entries: []), env: env, formation: Formation(types: [], release: nil, basePort: base), timeout: 0)
        let childEnv = app.childEnvironment(inherited: ProcessEnvironment.current(), extra: [("PORT", String(port)), ("PS", "run.1"), ("DYNO", "run.1")])
        return SpawnRequest.shell(command, environment: childEnv, directory: paths.root)
    }

    /// `word` quoted for a POSIX shell: `'it'\''s'`.
    package static func shellQuote(_ word: String) -> String {
        if !word.isEmpty && word.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:,@%+".contains($0)) }) {
            return word
        }
        return "'" + word.replacingAll("'", with: "'\\''") + "'"
    }
}

extension String {
    /// The string with every occurrence of `target` replaced (no Foundation).
    package func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        out.reserveCapacity(utf8.count)
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
