/// Outlier ejection for one backend, as Envoy models it, as a pure value: the router feeds it the
/// outcome of each connection (tcp) or request (http) and the time, and it says whether the
/// backend is in rotation, whether it may take its one trial connection, and when an ejection or a
/// restoration happened (the router turns those into events).
///
/// - In rotation, `threshold` consecutive failures (connect errors, resets, http 5xx) eject it
///   until `now + cooldown`. A success resets the run.
/// - Ejected, it takes nothing until the cool-down ends; then exactly one trial (`beginTrial`).
///   The trial's success puts it back; its failure ejects it again for another cool-down.
/// - Outcomes of connections opened before the ejection (not the trial) change nothing while
///   ejected: they are old news.
package struct OutlierState: Sendable, Equatable {
    /// Failures in a row while in rotation.
    package private(set) var consecutive = 0
    /// Set while ejected: the monotonic time (ns) its cool-down ends.
    package private(set) var ejectedUntil: UInt64?
    /// Its trial connection is open and has no verdict yet.
    package private(set) var trialInFlight = false

    package init() {}

    package enum Availability: Sendable, Equatable {
        /// In rotation.
        case available
        /// Ejected, cool-down over, no trial open: may take one trial connection.
        case trial
        /// Ejected (cooling down, or its trial is open).
        case unavailable
    }

    package enum Transition: Sendable, Equatable {
        /// Taken out of rotation after `consecutive` failures in a row.
        case ejected(consecutive: Int)
        /// Its trial succeeded: back in rotation.
        case restored
    }

    package var isEjected: Bool { ejectedUntil != nil }

    package func availability(now: UInt64) -> Availability {
        guard let until = ejectedUntil else { return .available }
        if trialInFlight || now < until { return .unavailable }
        return .trial
    }

    /// The router gave the backend its trial connection.
    package mutating func beginTrial() {
        precondition(ejectedUntil != nil, "a trial is only for an ejected backend")
        trialInFlight = true
    }

    /// A connection or request went well (tcp: the backend answered; http: a non-5xx response).
    package mutating func recordSuccess(trial: Bool) -> Transition? {
        if trial {
            trialInFlight = false
            guard ejectedUntil != nil else { return nil }
            ejectedUntil = nil
            consecutive = 0
            return .restored
        }
        if ejectedUntil == nil { consecutive = 0 }
        return nil
    }

    /// A connect error, a reset, or (http) a 5xx.
    package mutating func recordFailure(trial: Bool, now: UInt64, threshold: Int, cooldown: UInt64) -> Transition? {
        if trial {
            trialInFlight = false
            guard ejectedUntil != nil else { return nil }
            consecutive += 1
            ejectedUntil = now &+ cooldown
            return .ejected(consecutive: consecutive)
        }
        guard ejectedUntil == nil else { return nil }
        consecutive += 1
        guard threshold > 0, consecutive >= threshold else { return nil }
        ejectedUntil = now &+ cooldown
        return .ejected(consecutive: consecutive)
    }

    /// The trial connection ended with no verdict (the client left before the backend said
    /// anything): the next connection may be the trial.
    package mutating func recordNeutral(trial: Bool) {
        if trial { trialInFlight = false }
    }
}
