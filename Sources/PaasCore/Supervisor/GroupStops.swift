/// The process groups paas is stopping one at a time (restart, `stop TARGET`, scale-down, a
/// failed start, a liveness failure, or what is left of a group whose leader exited): SIGTERM
/// was sent, SIGKILL is due at a deadline. A group stays here until it is empty, even after
/// its leader was reaped (npm dies, node keeps `$PORT`), so every stop of an instance ends by
/// its deadline, and a new instance of the same name starts only once the old group is gone.
///
/// A value: the loop asks it what is due and carries out the kills.
package struct GroupStops: Sendable, Equatable {
    package struct Entry: Sendable, Equatable {
        /// Whose group it is (`web.2`), for the event stream.
        package var name: String
        package var deadline: UInt64
        package var killed: Bool
    }

    package private(set) var entries: [Int32: Entry] = [:]

    package init() {}

    /// Starts the stop of `pgid` with its SIGKILL `deadline`. Returns false when the group is
    /// stopping already: it gets no second SIGTERM, and its deadline does not move.
    package mutating func begin(_ pgid: Int32, name: String, deadline: UInt64) -> Bool {
        guard entries[pgid] == nil else { return false }
        entries[pgid] = Entry(name: name, deadline: deadline, killed: false)
        return true
    }

    /// The group was sent SIGKILL (a second interrupt, or the whole run's deadline).
    package mutating func killed(_ pgid: Int32, name: String) {
        entries[pgid, default: Entry(name: name, deadline: 0, killed: true)].killed = true
    }

    /// The groups whose deadline has passed and that were not killed yet, lowest first;
    /// they count as killed from now on.
    package mutating func due(now: UInt64) -> [(pgid: Int32, name: String)] {
        let groups = entries.filter { !$0.value.killed && $0.value.deadline <= now }.keys.sorted()
        for pgid in groups { entries[pgid]?.killed = true }
        return groups.map { ($0, entries[$0]?.name ?? "") }
    }

    /// The group is empty: forget it.
    package mutating func ended(_ pgid: Int32) {
        entries[pgid] = nil
    }

    package func contains(_ pgid: Int32) -> Bool { entries[pgid] != nil }

    /// The earliest SIGKILL still to send.
    package var nextDeadline: UInt64? {
        entries.values.lazy.filter { !$0.killed }.map(\.deadline).min()
    }

    package var isEmpty: Bool { entries.isEmpty }
}
