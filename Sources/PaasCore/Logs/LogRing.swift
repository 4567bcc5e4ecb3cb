/// The recent history of the event stream, for `paas logs -n N`: every line (children's and
/// paas's own events) in a bounded byte buffer.
///
/// Two generations of at most half the capacity each: when the current one is full it
/// becomes the previous one and the old previous one is dropped, so appending is a copy
/// into an array (no allocation per line) and memory never exceeds ``capacity`` bytes.
package struct LogRing {
    /// The history kept by `paas up`: 8 MiB of lines, headers included (about 65,000 lines
    /// of 100 bytes).
    package static let defaultCapacity = 8 << 20

    /// One line of history.
    package struct Record: Sendable, Equatable {
        package var time: WallTime
        /// The member index of the process that wrote it, or -1 for `system`.
        package var source: Int32
        package var stream: LogStream
        package var continuation: Bool
        package var text: [UInt8]
    }

    package let capacity: Int
    private var current: [UInt8] = []
    private var previous: [UInt8] = []
    private static let headerSize = 22

    package init(capacity: Int = LogRing.defaultCapacity) {
        self.capacity = capacity
        current.reserveCapacity(min(capacity / 2, 1 << 20))
    }

    /// Bytes held now (at most ``capacity``).
    package var byteCount: Int { current.count + previous.count }

    /// Appends one line.
    package mutating func append(source: Int32, stream: LogStream, continuation: Bool, time: WallTime, text: UnsafeRawBufferPointer) {
        let size = Self.headerSize + text.count
        if current.count + size > capacity / 2 {
            previous = current
            current = []
            current.reserveCapacity(min(capacity / 2, max(size, 1 << 20)))
            // A single line larger than half the ring is kept alone in the current generation.
        }
        var header = (UInt32(text.count), source, Self.code(stream), UInt8(continuation ? 1 : 0), time.seconds, time.nanoseconds)
        withUnsafeBytes(of: &header.0) { current.append(contentsOf: $0) }
        withUnsafeBytes(of: &header.1) { current.append(contentsOf: $0) }
        current.append(header.2)
        current.append(header.3)
        withUnsafeBytes(of: &header.4) { current.append(contentsOf: $0) }
        withUnsafeBytes(of: &header.5) { current.append(contentsOf: $0) }
        current.append(contentsOf: text)
    }

    /// The last `count` lines for which `include(source)` holds, oldest first.
    package func last(_ count: Int, where include: (Int32) -> Bool) -> [Record] {
        guard count > 0 else { return [] }
        var result: [Record] = []
        for generation in [previous, current] {
            generation.withUnsafeBytes { raw in
                var i = 0
                while i + Self.headerSize <= raw.count {
                    let length = Int(raw.loadUnaligned(fromByteOffset: i, as: UInt32.self))
                    let source = raw.loadUnaligned(fromByteOffset: i + 4, as: Int32.self)
                    if include(source) {
                        let stream = Self.stream(raw[i + 8])
                        let continuation = raw[i + 9] == 1
                        let seconds = raw.loadUnaligned(fromByteOffset: i + 10, as: Int64.self)
                        let nanos = raw.loadUnaligned(fromByteOffset: i + 18, as: Int32.self)
                        let start = i + Self.headerSize
                        result.append(Record(time: WallTime(seconds: seconds, nanoseconds: nanos), source: source, stream: stream, continuation: continuation, text: Array(raw[start..<start + length])))
                        if result.count > count * 2 { result.removeFirst(result.count - count) }
                    }
                    i += Self.headerSize + length
                }
            }
        }
        return Array(result.suffix(count))
    }

    private static func code(_ stream: LogStream) -> UInt8 {
        switch stream {
        case .stdout: 0
        case .stderr: 1
        case .event: 2
        }
    }

    private static func stream(_ code: UInt8) -> LogStream {
        switch code {
        case 0: .stdout
        case 1: .stderr
        default: .event
        }
    }
}
