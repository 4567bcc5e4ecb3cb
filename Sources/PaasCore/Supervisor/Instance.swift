import PaasConfig

/// One running copy of a process type (`web.2`), or the release phase's process.
package struct InstanceIdentity: Sendable, Equatable {
    /// `web.2`, or `release`.
    package var name: String
    package var type: String
    /// 1-based; nil for the release process.
    package var number: Int?
    package var port: Int?
    package var command: String
    package var colorIndex: Int
    /// The generation of the configuration it was started from (1, then one more per reload).
    package var generation: Int = 1

    /// Type, number and generation, for an instance of the formation (not the release process).
    package var id: InstanceID? { number.map { InstanceID(type: type, number: $0, generation: generation) } }

    package var logSource: LogSource { LogSource(name: name, type: type, instance: number, colorIndex: colorIndex) }
}

/// The lifecycle of one instance: a value that decides, returning what the loop must do.
///
/// ```
/// pending ─spawned→ running ─stop→ stopping ─kill→ stopping(killed)
///    │                 │              │
///    └─failedToStart   └──────exited──┴─────→ exited
/// ```
package struct InstanceState: Sendable, Equatable {
    package enum Phase: Sendable, Equatable {
        case pending
        case running(pid: Int32)
        case stopping(pid: Int32, killed: Bool)
        case exited(Termination)
        case failedToStart(String)
    }

    /// What paas means to happen when the process exits: nothing decided (an exit on its
    /// own, which its type's restart policy judges), start it again (`restart`), forget it
    /// (`scale` down, a removed type, a retired generation), keep it down (`stop TARGET`), a
    /// failed start, or the old generation of a stop-first replacement.
    package enum Intent: Sendable, Equatable { case none, restart, remove, hold, failed, replaced }

    /// What the loop does once the process has been reaped.
    package enum ExitDecision: Sendable, Equatable {
        /// It ended on its own: its type's restart policy decides.
        case onItsOwn
        /// paas stopped it for the whole formation's stop: nothing more.
        case stopped
        case startAgain
        case forget
        case stayDown
        case failedStart
        /// A stop-first replacement goes on with the new generation.
        case replaced
    }

    /// What the supervisor loop does next for this instance.
    package enum Action: Sendable, Equatable {
        case none
        /// Send `signal` to the instance's process group (its pgid is its pid).
        case signalGroup(Int32, pgid: Int32)
    }

    package private(set) var phase: Phase = .pending
    /// What its exit will mean; set by whoever stops it.
    package var intent = Intent.none

    package init() {}

    /// The pid while the process is alive.
    package var pid: Int32? {
        switch phase {
        case .running(let pid), .stopping(let pid, _): pid
        default: nil
        }
    }

    /// Whether the process has ended (or never started).
    package var isFinished: Bool {
        switch phase {
        case .exited, .failedToStart: true
        default: false
        }
    }

    package mutating func spawned(pid: Int32) {
        precondition(phase == .pending, "spawned twice")
        phase = .running(pid: pid)
    }

    package mutating func failedToStart(_ reason: String) {
        phase = .failedToStart(reason)
    }

    /// A graceful stop: `signal` (SIGTERM unless the type chose another) to the group, once.
    /// An instance that never started just ends.
    package mutating func stop(signal: Int32 = Signal.terminate) -> Action {
        switch phase {
        case .pending:
            phase = .failedToStart("stopped before it started")
            return .none
        case .running(let pid):
            phase = .stopping(pid: pid, killed: false)
            return .signalGroup(signal, pgid: pid)
        case .stopping, .exited, .failedToStart:
            return .none
        }
    }

    /// The deadline passed, or a second interrupt: SIGKILL to the group, once.
    package mutating func kill() -> Action {
        switch phase {
        case .pending:
            phase = .failedToStart("stopped before it started")
            return .none
        case .running(let pid), .stopping(let pid, false):
            phase = .stopping(pid: pid, killed: true)
            return .signalGroup(Signal.kill, pgid: pid)
        case .stopping, .exited, .failedToStart:
            return .none
        }
    }

    /// The process was reaped: what its exit means, from its intent.
    package mutating func exited(_ status: Termination) -> ExitDecision {
        let onItsOwn: Bool
        if case .running = phase { onItsOwn = true } else { onItsOwn = false }
        phase = .exited(status)
        switch intent {
        case .none: return onItsOwn ? .onItsOwn : .stopped
        case .restart: return .startAgain
        case .remove: return .forget
        case .hold: return .stayDown
        case .failed: return .failedStart
        case .replaced: return .replaced
        }
    }
}
