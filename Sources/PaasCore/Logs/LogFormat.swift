import PaasConfig

/// Which stream a line came from.
package enum LogStream: String, Sendable {
    case stdout, stderr, event
}

/// How the event stream is written.
package struct LogStyle: Sendable, Equatable {
    package enum Format: String, Sendable, CaseIterable { case text, json }
    package var format: Format = .text
    package var color = false
    package var timestamps = true

    package init(format: Format = .text, color: Bool = false, timestamps: Bool = true) {
        self.format = format
        self.color = color
        self.timestamps = timestamps
    }
}

/// Who wrote a line: `web.1` (type `web`, instance 1) or `system`.
package struct LogSource: Sendable, Equatable {
    package var name: String
    package var type: String
    package var instance: Int?
    package var colorIndex: Int

    package init(name: String, type: String, instance: Int?, colorIndex: Int) {
        self.name = name
        self.type = type
        self.instance = instance
        self.colorIndex = colorIndex
    }

    /// paas's own lifecycle events.
    package static let system = LogSource(name: "system", type: "system", instance: nil, colorIndex: -1)
}

/// Formats lines of the event stream into bytes, appending to a batch.
///
/// Text: `HH:MM:SS web.1  | text` (a continuation piece of a cut line uses `+` for `|`).
/// JSON: one object per line: time, process, type, instance, stream, text (and
/// `"continuation": true` on pieces after the first).
/// The prefix of each source is cached; the clock text is recomputed once per second.
package struct LogFormatter {
    package let style: LogStyle
    package private(set) var nameWidth: Int
    private var cachedSecond: Int64 = -1
    private var clockText: [UInt8] = []
    private var isoPrefix: [UInt8] = []

    // ANSI colours per process type, as foreman cycles them; `system` is bold white.
    private static let palette: [[UInt8]] = ["36", "33", "32", "35", "34", "91", "96", "93", "92", "95", "94"].map { Array("\u{1B}[\($0)m".utf8) }
    private static let systemColor = Array("\u{1B}[1;37m".utf8)
    private static let reset = Array("\u{1B}[0m".utf8)

    package init(style: LogStyle, nameWidth: Int) {
        self.style = style
        self.nameWidth = nameWidth
    }

    /// Widens the name column (never narrows it, so columns stay aligned).
    package mutating func fit(name: String) {
        nameWidth = max(nameWidth, name.utf8.count)
    }

    /// Appends one formatted line to `out`.
    /// `epoch` adds the time as seconds since 1970 (the control protocol's `logs` replies, so a
    /// client can print local time).
    package mutating func append(_ text: UnsafeRawBufferPointer, source: LogSource, stream: LogStream, continuation: Bool = false, at time: WallTime, epoch: Bool = false, to out: inout [UInt8]) {
        updateClock(time)
        switch style.format {
        case .text: appendText(text, source: source, continuation: continuation, time: time, to: &out)
        case .json: appendJSON(text, source: source, stream: stream, continuation: continuation, time: time, epoch: epoch, to: &out)
        }
    }

    /// Appends one event line from `system`.
    package mutating func appendEvent(_ message: String, at time: WallTime, to out: inout [UInt8]) {
        var message = message
        message.withUTF8 { append(UnsafeRawBufferPointer($0), source: .system, stream: .event, at: time, to: &out) }
    }

    private mutating func updateClock(_ time: WallTime) {
        guard time.seconds != cachedSecond else { return }
        cachedSecond = time.seconds
        let c = time.localClock()
        clockText = Array("\(Self.two(c.hour)):\(Self.two(c.minute)):\(Self.two(c.second))".utf8)
        let u = time.utcParts()
        isoPrefix = Array("\(u.year)-\(Self.two(u.month))-\(Self.two(u.day))T\(Self.two(u.hour)):\(Self.two(u.minute)):\(Self.two(u.second))".utf8)
    }

    private static func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }

    /// The bytes that start a text line from `source` in the second of `time`, or nil in JSON
    /// format. A caller that frames many lines from one read appends this prefix, the text and
    /// a newline itself: the hot path of the event stream.
    package mutating func textPrefix(for source: LogSource, continuation: Bool = false, at time: WallTime) -> [UInt8]? {
        guard style.format == .text else { return nil }
        updateClock(time)
        var prefix: [UInt8] = []
        prefix.reserveCapacity(32 + nameWidth)
        appendTextPrefix(source: source, continuation: continuation, to: &prefix)
        return prefix
    }

    private func appendText(_ text: UnsafeRawBufferPointer, source: LogSource, continuation: Bool, time: WallTime, to out: inout [UInt8]) {
        appendTextPrefix(source: source, continuation: continuation, to: &out)
        out.append(contentsOf: text)
        out.append(10)
    }

    private func appendTextPrefix(source: LogSource, continuation: Bool, to out: inout [UInt8]) {
        if style.color {
            out.append(contentsOf: source.colorIndex < 0 ? Self.systemColor : Self.palette[source.colorIndex % Self.palette.count])
        }
        if style.timestamps {
            out.append(contentsOf: clockText)
            out.append(32)
        }
        out.append(contentsOf: source.name.utf8)
        let pad = nameWidth - source.name.utf8.count
        if pad > 0 { out.append(contentsOf: repeatElement(32, count: pad)) }
        out.append(contentsOf: continuation ? [32, 43] : [32, 124]) // " +" or " |"
        if style.color { out.append(contentsOf: Self.reset) }
        out.append(32)
    }

    private func appendJSON(_ text: UnsafeRawBufferPointer, source: LogSource, stream: LogStream, continuation: Bool, time: WallTime, epoch: Bool, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"time":""#.utf8)
        out.append(contentsOf: isoPrefix)
        let millis = Int(time.nanoseconds / 1_000_000)
        out.append(46) // '.'
        out.append(UInt8(48 + millis / 100))
        out.append(UInt8(48 + millis / 10 % 10))
        out.append(UInt8(48 + millis % 10))
        out.append(contentsOf: #"Z","process":"#.utf8)
        JSON.appendString(source.name.utf8, to: &out)
        out.append(contentsOf: #","type":"#.utf8)
        JSON.appendString(source.type.utf8, to: &out)
        out.append(contentsOf: #","instance":"#.utf8)
        if let n = source.instance { out.append(contentsOf: String(n).utf8) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: #","stream":""#.utf8)
        out.append(contentsOf: stream.rawValue.utf8)
        out.append(contentsOf: #"","text":"#.utf8)
        JSON.appendString(text, to: &out)
        if continuation { out.append(contentsOf: #","continuation":true"#.utf8) }
        if epoch {
            out.append(contentsOf: #","epoch":"#.utf8)
            out.append(contentsOf: "\(time.seconds).\(String(1_000_000_000 + Int(time.nanoseconds)).dropFirst())".utf8)
        }
        out.append(contentsOf: "}\n".utf8)
    }
}
