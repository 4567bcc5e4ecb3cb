import PaasConfig

/// Where every line of the event stream goes, in one place: the terminal (a batch for the
/// stdout writer thread, formatted as text or JSON), the history ring (`paas logs -n`), and
/// the `logs -f` followers. A child's line, a flushed partial line and paas's own events all
/// pass through ``deliver(_:source:id:stream:continuation:at:prefix:)``; the journal
/// (issue 11) joins as one more sink here.
struct EventSinks {
    /// stdout: the loop hands `batch` to the writer thread once per wake-up.
    var formatter: LogFormatter
    var batch: [UInt8] = []
    /// The last 8 MiB of lines, for `paas logs`.
    var ring = LogRing()
    /// The followers' format (JSON with an epoch), shared with the history replies.
    var jsonFormatter = LogFormatter(style: LogStyle(format: .json), nameWidth: 0)
    let control: ControlServer?

    init(style: LogStyle, nameWidth: Int, control: ControlServer?, ringCapacity: Int = LogRing.defaultCapacity) {
        formatter = LogFormatter(style: style, nameWidth: nameWidth)
        ring = LogRing(capacity: ringCapacity)
        self.control = control
    }

    /// An empty stand-in while the loop holds the real sinks in a local.
    static var moved: EventSinks { EventSinks(style: LogStyle(format: .text), nameWidth: 0, control: nil, ringCapacity: 0) }

    /// Whether any `logs -f` follower listens (checked once per read, not per line).
    var following: Bool { !(control?.followers.isEmpty ?? true) }

    /// One line to every sink. `prefix`: the cached text prefix of the line's source (the hot
    /// path of the text format), or nil to format in full. `following`: whether to look for
    /// followers at all.
    @inline(__always)
    mutating func deliver(_ line: UnsafeRawBufferPointer, source: LogSource, id: Int32, stream: LogStream, continuation: Bool, at time: WallTime, prefix: [UInt8]? = nil, following: Bool = true) {
        ring.append(source: id, stream: stream, continuation: continuation, time: time, text: line)
        if following { publish(line, source: source, stream: stream, continuation: continuation, at: time) }
        if let prefix, !continuation {
            batch.append(contentsOf: prefix)
            batch.append(contentsOf: line)
            batch.append(10)
        } else {
            formatter.append(line, source: source, stream: stream, continuation: continuation, at: time, to: &batch)
        }
    }

    /// Sends a line to every `logs -f` follower that wants it.
    private mutating func publish(_ text: UnsafeRawBufferPointer, source: LogSource, stream: LogStream, continuation: Bool, at time: WallTime) {
        guard let control, !control.followers.isEmpty else { return }
        var line: [UInt8] = []
        jsonFormatter.append(text, source: source, stream: stream, continuation: continuation, at: time, epoch: true, to: &line)
        for (token, filter) in control.followers where filter.matches(name: source.name, type: source.type) {
            control.push(token, line)
        }
    }

    /// Takes the batch for the writer.
    mutating func takeBatch() -> [UInt8] {
        let out = batch
        batch = []
        batch.reserveCapacity(1 << 16)
        return out
    }
}
