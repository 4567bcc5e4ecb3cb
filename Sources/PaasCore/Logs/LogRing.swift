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
    /// Three words: length and source; stream, continuation and nanoseconds; seconds.
    private static let headerSize = 24

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
        // One append of a packed header, one of the text: this runs once per line of output.
        var header = (
            UInt64(UInt32(text.count)) | UInt64(UInt32(bitPattern: source)) << 32,
            UInt64(Self.code(stream)) | UInt64(continuation ? 1 : 0) << 8 | UInt64(UInt32(bitPattern: time.nanoseconds)) << 32,
            UInt64(bitPattern: time.seconds)
        )
        withUnsafeBytes(of: &header) { current.append(contentsOf: $0) }
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
                    let w0 = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    let w1 = raw.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
                    let length = Int(UInt32(truncatingIfNeeded: w0))
                    let source = Int32(bitPattern: UInt32(truncatingIfNeeded: w0 >> 32))
                    if include(source) {
                        let stream = Self.stream(UInt8(truncatingIfNeeded: w1))
                        let continuation = UInt8(truncatingIfNeeded: w1 >> 8) == 1
                        let nanos = Int32(bitPattern: UInt32(truncatingIfNeeded: w1 >> 32))
                        let seconds = Int64(bitPattern: raw.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
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
