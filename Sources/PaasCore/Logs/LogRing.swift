
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
    /// The number of the current generation; the previous one has this minus one.
    private var generation: UInt64 = 1
    /// Three words: length and source; stream, continuation and nanoseconds; seconds.
    /// The header of the record at `i`: text length and source in the first word; stream,
    /// continuation and nanoseconds in the second; seconds in the third.
    private static func header(_ raw: UnsafeRawBufferPointer, at i: Int) -> (length: Int, source: Int32, stream: LogStream, continuation: Bool, time: WallTime) {
        let w0 = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        let w1 = raw.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
        let seconds = Int64(bitPattern: raw.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
        return (Int(UInt32(truncatingIfNeeded: w0)), Int32(bitPattern: UInt32(truncatingIfNeeded: w0 >> 32)),
                stream(UInt8(truncatingIfNeeded: w1)), UInt8(truncatingIfNeeded: w1 >> 8) == 1,
                WallTime(seconds: seconds, nanoseconds: Int32(bitPattern: UInt32(truncatingIfNeeded: w1 >> 32))))
    }

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
            generation += 1
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
                    let h = Self.header(raw, at: i)
                    let length = h.length
                    let source = h.source
                    if include(source) {
                        let start = i + Self.headerSize
                        result.append(Record(time: h.time, source: source, stream: h.stream, continuation: h.continuation, text: Array(raw[start..<start + length])))
                        if result.count - count > count { result.removeFirst(result.count - count) } // never count * 2: it may overflow
                    }
                    i += Self.headerSize + length
                }
            }
        }
        return Array(result.suffix(count))
    }

    /// A place in the ring: a generation and a byte offset in it. It stays valid while its
    /// generation is the current or the previous one, so a reader that keeps up can stream
    /// the history without copying it (`paas logs` sends it as the socket drains).
    package struct Cursor: Sendable, Equatable {
        package var generation: UInt64
        package var offset: Int
    }

    /// Just after the newest line.
    package var end: Cursor { Cursor(generation: generation, offset: current.count) }

    /// Where the last `count` lines for which `include(source)` holds begin, and how many
    /// there are (at most `count`).
    package func start(last count: Int, where include: (Int32) -> Bool) -> (cursor: Cursor, lines: Int) {
        guard count > 0 else { return (end, 0) }
        var total = 0
        forEachHeader { _, _, source in if include(source) { total += 1 } }
        var skip = max(0, total - count)
        var found: Cursor?
        forEachHeader { cursor, _, source in
            guard found == nil, include(source) else { return }
            if skip == 0 { found = cursor } else { skip -= 1 }
        }
        return (found ?? end, min(total, count))
    }

    /// Visits every record's place, length and source, oldest first.
    private func forEachHeader(_ body: (Cursor, Int, Int32) -> Void) {
        for (id, buffer) in [(generation &- 1, previous), (generation, current)] {
            buffer.withUnsafeBytes { raw in
                var i = 0
                while i + Self.headerSize <= raw.count {
                    let w0 = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    let length = Int(UInt32(truncatingIfNeeded: w0))
                    body(Cursor(generation: id, offset: i), length, Int32(bitPattern: UInt32(truncatingIfNeeded: w0 >> 32)))
                    i += Self.headerSize + length
                }
            }
        }
    }

    /// How a ``read(from:to:where:budget:_:)`` ended.
    package enum ReadResult: Sendable, Equatable {
        /// The budget is spent; more lines follow.
        case more
        /// The cursor reached `end` (or the newest line).
        case reachedEnd
        /// The lines at the cursor were dropped to make room: the reader fell too far behind.
        case lost
    }

    /// Hands the lines from `cursor` up to `end` (nil: the newest) for which `include(source)`
    /// holds to `body` (source, stream, continuation, time, text), until about `budget`
    /// bytes of text have been handed; moves `cursor` past them.
    package func read(from cursor: inout Cursor, to end: Cursor?, where include: (Int32) -> Bool, budget: Int,
                      _ body: (Int32, LogStream, Bool, WallTime, UnsafeRawBufferPointer) -> Void) -> ReadResult {
        var spent = 0
        while true {
            let target = end ?? self.end
            if cursor == target { return .reachedEnd }
            let buffer: [UInt8]
            if cursor.generation == generation {
                buffer = current
            } else if cursor.generation == generation &- 1 {
                buffer = previous
            } else {
                return .lost
            }
            if cursor.offset + Self.headerSize > buffer.count {
                if cursor.generation == generation { return .reachedEnd }
                cursor = Cursor(generation: cursor.generation + 1, offset: 0)
                continue
            }
            if spent >= budget { return .more }
            let length = buffer.withUnsafeBytes { raw -> Int in
                let i = cursor.offset
                let h = Self.header(raw, at: i)
                let length = h.length
                if include(h.source) {
                    let start = i + Self.headerSize
                    body(h.source, h.stream, h.continuation, h.time, UnsafeRawBufferPointer(rebasing: raw[start..<start + length]))
                    spent += Self.headerSize + length
                }
                return length
            }
            cursor.offset += Self.headerSize + length
        }
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
