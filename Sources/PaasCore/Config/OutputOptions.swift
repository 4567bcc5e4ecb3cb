package import PaasConfig

/// The `up` options that shape the event stream, with their `PAAS_*` fallbacks.
package enum OutputOptions {
    /// Resolves the log style: flags beat `PAAS_LOG_FORMAT`, `PAAS_NO_COLOR`,
    /// `PAAS_NO_TIMESTAMP`; colour only on a terminal and never with `NO_COLOR` set.
    package static func resolve(format: String?, noColor: Bool, noTimestamp: Bool, stdoutIsTerminal: Bool, environment: [String: String]) throws(ConfigError) -> LogStyle {
        let formatText = format ?? environment["PAAS_LOG_FORMAT"].flatMap { $0.isEmpty ? nil : $0 } ?? "text"
        guard let parsed = LogStyle.Format(rawValue: formatText) else {
            let source = format != nil ? "--log-format" : "PAAS_LOG_FORMAT"
            throw ConfigError(.badOption, file: source, line: nil, "log format \"\(formatText)\" is not known; expected text or json")
        }
        let noColorSet = noColor || isTrue(environment["PAAS_NO_COLOR"]) || (environment["NO_COLOR"].map { !$0.isEmpty } ?? false)
        let noTimestampSet = noTimestamp || isTrue(environment["PAAS_NO_TIMESTAMP"])
        return LogStyle(format: parsed, color: parsed == .text && stdoutIsTerminal && !noColorSet, timestamps: !noTimestampSet)
    }

    private static func isTrue(_ value: String?) -> Bool {
        guard let v = value?.lowercased() else { return false }
        return ["1", "true", "yes", "on"].contains(v)
    }
}
