/// The replacement of one type's instances by a new generation, one instance at a time: a
/// value that takes events and returns what the loop must do.
///
/// - `startFirst`: start the new instance beside the old one, wait until it is ready, then
///   stop the old one and go on with the next number. Capacity never drops.
/// - `stopFirst`: stop the old instance, wait until its whole group is gone, start the new
///   one, wait until it is ready, go on. For a singleton (two must never run at once) and for
///   a type whose instances bind `$PORT` (the new one could not bind it beside the old one).
///
/// A new instance that exits before it is ready stops the replacement: the instances not
/// replaced yet keep running the old generation (never a switch to something not ready).
package struct Replacement: Sendable, Equatable {
    package enum Order: Sendable, Equatable { case startFirst, stopFirst }

    package enum Action: Sendable, Equatable {
        /// Start instance n in the new generation.
        case start(Int)
        /// Stop the old generation's instance n (it is being replaced).
        case stopOld(Int)
        /// Every instance runs the new generation.
        case finished
        /// Instance n of the new generation failed before it was ready; the rest stay old.
        case abandoned(Int)
    }

    package enum Step: Sendable, Equatable {
        case idle
        /// The new instance n is starting; it must become ready.
        case awaitingReady(Int)
        /// The old instance n is stopping; its group must be gone.
        case awaitingGone(Int)
        case done
    }

    package let type: String
    package let order: Order
    /// Numbers still to replace, in order.
    package private(set) var queue: [Int]
    package private(set) var step = Step.idle

    package init(type: String, order: Order, numbers: [Int]) {
        self.type = type
        self.order = order
        self.queue = numbers
    }

    /// How many instances are left to replace, the one under way included.
    package var remaining: Int {
        switch step {
        case .awaitingReady, .awaitingGone: queue.count + 1
        case .idle: queue.count
        case .done: 0
        }
    }

    package var isDone: Bool { step == .done }

    /// Starts with the first number.
    package mutating func begin() -> [Action] { next() }

    /// The new instance n is ready.
    package mutating func ready(_ n: Int) -> [Action] {
        guard step == .awaitingReady(n) else { return [] }
        return order == .startFirst ? [.stopOld(n)] + next() : next()
    }

    /// The old instance n is gone, with its whole group.
    package mutating func oldGone(_ n: Int) -> [Action] {
        guard step == .awaitingGone(n) else { return [] }
        step = .awaitingReady(n)
        return [.start(n)]
    }

    /// The new instance n exited (or failed its start) before it was ready.
    package mutating func failed(_ n: Int) -> [Action] {
        guard step == .awaitingReady(n) else { return [] }
        queue = []
        step = .done
        return [.abandoned(n)]
    }

    /// Instance n is no longer wanted (scaled away): skip it.
    package mutating func drop(_ n: Int) -> [Action] {
        queue.removeAll { $0 == n }
        switch step {
        case .awaitingReady(n), .awaitingGone(n): return next()
        default: return []
        }
    }

    private mutating func next() -> [Action] {
        guard !queue.isEmpty else {
            step = .done
            return [.finished]
        }
        let n = queue.removeFirst()
        switch order {
        case .startFirst:
            step = .awaitingReady(n)
            return [.start(n)]
        case .stopFirst:
            step = .awaitingGone(n)
            return [.stopOld(n)]
        }
    }
}
