package import PaasConfig

/// Turns event objects received from `paas up` (the JSON shape, with `epoch`) back into
/// text lines for `paas logs`, with the same prefix and padding as the live stream.
package struct LogReplay {
    private var formatter: LogFormatter
    private var colors: [String: Int] = [:]

    package init(style: LogStyle) {
        formatter = LogFormatter(style: style, nameWidth: LogSource.system.name.count)
    }

    /// The line for `object`, or nil when it is not an event object.
    package mutating func line(_ object: JSON) -> [UInt8]? {
        guard let process = object["process"]?.string, let type = object["type"]?.string, let text = object["text"]?.string,
              let stream = object["stream"]?.string.flatMap(LogStream.init(rawValue:)) else { return nil }
        let epoch: Double
        switch object["epoch"] {
        case .number(let d)?: epoch = d
        case .int(let i)?: epoch = Double(i)
        default: epoch = 0
        }
        let seconds = Int64(epoch.rounded(.down))
        let time = WallTime(seconds: seconds, nanoseconds: Int32((epoch - Double(seconds)) * 1e9))
        let color = type == "system" ? -1 : colors[type] ?? { let c = colors.count; colors[type] = c; return c }()
        let source = LogSource(name: process, type: type, instance: object["instance"]?.int, colorIndex: color)
        formatter.fit(name: process)
        var out: [UInt8] = []
        var t = text
        t.withUTF8 { formatter.append(UnsafeRawBufferPointer($0), source: source, stream: stream, continuation: object["continuation"]?.bool ?? false, at: time, to: &out) }
        return out
    }
}
