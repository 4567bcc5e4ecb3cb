
/// Cuts one child stream into lines.
///
/// Lines end at `\n` (a `\r` before it is dropped). A line is handed on whole up to
/// ``maximumLine`` bytes of text (line ending not counted); a longer one is cut into pieces of exactly that size,
/// every piece after the first marked as a continuation. Nothing is dropped: a partial last
/// line is handed on by ``flush(_:)`` when its process ends.
package struct LineFramer {
    /// 1 MiB of text: so a line of up to 1 MiB, newline included, certainly arrives whole.
    package static let defaultMaximumLine = 1 << 20

    package let maximumLine: Int
    private var pending: [UInt8] = []
    /// Whether the text in `pending` continues a piece already handed on.
    private var pendingIsContinuation = false

    package init(maximumLine: Int = LineFramer.defaultMaximumLine) {
        self.maximumLine = maximumLine
    }

    /// Bytes held back, waiting for the end of their line.
    package var pendingCount: Int { pending.count }

    /// Frames `bytes`, calling `emit(line, isContinuation)` for every complete line or piece.
    /// `line` is valid only during the call.
    package mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer, Bool) -> Void) {
        guard let base = bytes.baseAddress else { return }
        var start = 0
        let end = bytes.count
        // Finish the line held back from earlier reads.
        if !pending.isEmpty {
            guard let nl = Self.newline(in: bytes, from: 0) else {
                append(UnsafeRawBufferPointer(rebasing: bytes[0..<end]), emit)
                return
            }
            // The '\r' of a CRLF does not count against the limit.
            append(UnsafeRawBufferPointer(rebasing: bytes[0..<Self.trimCR(base, nl)]), emit)
            emitPending(emit, trimmingCR: nl == 0)
            start = nl + 1
        }
        // Fast path: whole lines straight from the read buffer, no copy.
        while start < end {
            guard let nl = Self.newline(in: bytes, from: start) else { break }
            if Self.trimCR(base + start, nl - start) <= maximumLine {
                emit(UnsafeRawBufferPointer(start: base + start, count: Self.trimCR(base + start, nl - start)), pendingIsContinuation)
                pendingIsContinuation = false
            } else {
                append(UnsafeRawBufferPointer(start: base + start, count: Self.trimCR(base + start, nl - start)), emit)
                emitPending(emit, trimmingCR: false)
            }
            start = nl + 1
        }
        if start < end {
            append(UnsafeRawBufferPointer(start: base + start, count: end - start), emit)
        }
    }

    /// Hands on a partial last line, if any (the stream ended or its process exited).
    package mutating func flush(_ emit: (UnsafeRawBufferPointer, Bool) -> Void) {
        if !pending.isEmpty { emitPending(emit, trimmingCR: false) }
    }

    private mutating func append(_ bytes: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer, Bool) -> Void) {
        var rest = bytes
        while pending.count + rest.count > maximumLine {
            let take = maximumLine - pending.count
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<take]))
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            // A piece is cut; keep a trailing '\r' in it (it was not a line end).
            pending.withUnsafeBytes { emit($0, pendingIsContinuation) }
            pending.removeAll(keepingCapacity: true)
            pendingIsContinuation = true
        }
        pending.append(contentsOf: rest)
    }

    /// Hands on `pending`; `trimmingCR` drops a final '\r' that was the first half of a CRLF
    /// split across two reads.
    private mutating func emitPending(_ emit: (UnsafeRawBufferPointer, Bool) -> Void, trimmingCR: Bool) {
        pending.withUnsafeBytes { raw in
            let count = trimmingCR ? Self.trimCR(raw.baseAddress, raw.count) : raw.count
            // Only the CR of a CRLF was held back after a full piece: the line ended with
            // that piece, and there is no empty piece to hand on.
            if count == 0 && trimmingCR && pendingIsContinuation && raw.count == 1 { return }
            emit(UnsafeRawBufferPointer(start: raw.baseAddress, count: count), pendingIsContinuation)
        }
        pending.removeAll(keepingCapacity: pending.count <= 65536)
        pendingIsContinuation = false
    }

    private static func trimCR(_ base: UnsafeRawPointer?, _ count: Int) -> Int {
        guard count > 0, let base, base.load(fromByteOffset: count - 1, as: UInt8.self) == 13 else { return count }
        return count - 1
    }

    private static func newline(in bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard let base = bytes.baseAddress, from < bytes.count else { return nil }
        var i = from
        let count = bytes.count
        // Eight bytes at a time (the classic "has zero byte" test on word ^ "\n\n\n..."):
        // framing is on the hot path of the event stream, once per byte of child output.
        while i + 8 <= count {
            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ 0x0A0A_0A0A_0A0A_0A0A
            let found = (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080
            if found != 0 { return i + UInt64(littleEndian: found).trailingZeroBitCount / 8 }
            i += 8
        }
        while i < count {
            if base.load(fromByteOffset: i, as: UInt8.self) == 10 { return i }
            i += 1
        }
        return nil
    }
}
