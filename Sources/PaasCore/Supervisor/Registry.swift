/// Who an instance is: its type, its number, and the generation of the configuration it
/// was started from (a reload that changes a type starts its instances in a new generation,
/// beside the old ones until they are replaced).
package struct InstanceID: Sendable, Hashable, CustomStringConvertible {
    package var type: String
    package var number: Int
    package var generation: Int

    /// `web.2`: the name in the event stream, `PS` and `DYNO` (the same for every generation).
    package var name: String { "\(type).\(number)" }
    package var description: String { name }
}

/// Every process paas has started and still needs to know about, by a serial number that
/// is never reused. A reaped instance is forgotten once nothing refers to it any more (it is
/// not the latest of its name, and its pipes are closed), so memory stays flat however often
/// instances restart. What outlives it is interned apart: the names its log lines carry in
/// the history ring (``LogSources``).
struct Registry<Member> {
    private var members: [Int: Member] = [:]
    private var nextSerial = 0

    /// Adds `member`; returns its serial.
    mutating func add(_ member: Member) -> Int {
        let serial = nextSerial
        nextSerial += 1
        members[serial] = member
        return serial
    }

    /// The member with `serial`. - Important: it must not have been forgotten; where a
    /// serial may be stale (a probe, a timer), use ``member(_:)``.
    subscript(serial: Int) -> Member {
        get { members[serial]! }
        _modify { yield &members[serial]! }
    }

    /// The member with `serial`, if it is still known.
    func member(_ serial: Int) -> Member? { members[serial] }

    mutating func forget(_ serial: Int) { members[serial] = nil }

    /// Every known serial, oldest first.
    var serials: [Int] { members.keys.sorted() }

    var all: Dictionary<Int, Member>.Values { members.values }

    var count: Int { members.count }
}

/// The sources of log lines, interned by name: the history ring stores a small number per
/// line, and the name, type and colour behind it outlive the instances that wrote it.
struct LogSources {
    private(set) var sources: [LogSource] = []
    private var ids: [String: Int32] = [:]

    /// The number of `source`, interning it the first time its name is seen.
    mutating func id(_ source: LogSource) -> Int32 {
        if let id = ids[source.name] { return id }
        let id = Int32(sources.count)
        sources.append(source)
        ids[source.name] = id
        return id
    }

    /// The source behind `id`: ``LogSource/system`` for the negative ids of paas's own events.
    subscript(id: Int32) -> LogSource { id < 0 ? .system : sources[Int(id)] }

    /// Whether a line was ever written under `name`.
    func contains(name: String) -> Bool { ids[name] != nil }
}
