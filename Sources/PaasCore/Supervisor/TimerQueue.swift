/// Every deadline of the owner loop in one place: a min-heap of (time, timer), so the poll
/// timeout is the top of the heap and a wake-up pops only what is due, whatever the number
/// of instances. An entry is a reminder, not a promise: when it fires, the loop checks that
/// what it refers to still stands (a restart may have been cancelled, a check may have
/// answered), so cancelling costs nothing and stale entries simply find nothing to do.
struct TimerQueue<Timer> {
    private var heap: [(at: UInt64, order: UInt64, timer: Timer)] = []
    private var order: UInt64 = 0

    /// Reminds the loop of `timer` at `at` (monotonic nanoseconds).
    mutating func schedule(_ timer: Timer, at: UInt64) {
        order += 1
        heap.append((at, order, timer))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.before(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    /// The earliest reminder.
    var next: UInt64? { heap.first?.at }

    var count: Int { heap.count }

    /// Removes and returns every timer due at `now`, earliest first (equal times in the
    /// order they were scheduled).
    mutating func popDue(now: UInt64) -> [Timer] {
        var due: [Timer] = []
        while let top = heap.first, top.at <= now {
            due.append(top.timer)
            let last = heap.removeLast()
            guard !heap.isEmpty else { break }
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, Self.before(heap[l], heap[m]) { m = l }
                if r < heap.count, Self.before(heap[r], heap[m]) { m = r }
                guard m != i else { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return due
    }

    private static func before(_ a: (at: UInt64, order: UInt64, timer: Timer), _ b: (at: UInt64, order: UInt64, timer: Timer)) -> Bool {
        a.at != b.at ? a.at < b.at : a.order < b.order
    }
}
