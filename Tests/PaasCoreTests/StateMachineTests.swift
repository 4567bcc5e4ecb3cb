import PaasCore
import Testing
@testable import PaasConfig

@Suite struct InstanceStateTests {
    private func running(_ pid: Int32 = 42) -> InstanceState {
        var s = InstanceState()
        s.spawned(pid: pid)
        return s
    }

    @Test func startsPending() {
        let s = InstanceState()
        #expect(s.phase == .pending)
        #expect(s.pid == nil)
        #expect(!s.isFinished)
    }

    @Test func spawnedIsRunning() {
        let s = running(42)
        #expect(s.phase == .running(pid: 42))
        #expect(s.pid == 42)
        #expect(!s.isFinished)
    }

    @Test func stopSendsSIGTERMToTheGroupOnce() {
        var s = running(42)
        #expect(s.stop() == .signalGroup(Signal.terminate, pgid: 42))
        #expect(s.phase == .stopping(pid: 42, killed: false))
        #expect(s.pid == 42)
        #expect(!s.isFinished)
        #expect(s.stop() == .none)
        #expect(s.stop() == .none)
        #expect(s.phase == .stopping(pid: 42, killed: false))
    }

    @Test func killAfterStopSendsSIGKILLOnce() {
        var s = running(7)
        _ = s.stop()
        #expect(s.kill() == .signalGroup(Signal.kill, pgid: 7))
        #expect(s.phase == .stopping(pid: 7, killed: true))
        #expect(s.kill() == .none)
        // A stop after the kill sends nothing either.
        #expect(s.stop() == .none)
        #expect(s.phase == .stopping(pid: 7, killed: true))
    }

    @Test func killWhileRunningGoesStraightToSIGKILL() {
        var s = running(9)
        #expect(s.kill() == .signalGroup(Signal.kill, pgid: 9))
        #expect(s.phase == .stopping(pid: 9, killed: true))
        #expect(s.stop() == .none)
    }

    @Test(arguments: [Termination.exited(0), .exited(3), .signaled(Signal.terminate)])
    func exitedOnItsOwn(_ status: Termination) {
        var s = running()
        #expect(s.exited(status) == .onItsOwn)
        #expect(s.phase == .exited(status))
        #expect(s.isFinished)
        #expect(s.pid == nil)
        #expect(s.stop() == .none)
        #expect(s.kill() == .none)
        #expect(s.phase == .exited(status))
    }

    @Test func exitedWhileStoppingIsNotOnItsOwn() {
        var s = running()
        _ = s.stop()
        #expect(s.exited(.signaled(Signal.terminate)) == .stopped)
        #expect(s.phase == .exited(.signaled(Signal.terminate)))
        #expect(s.isFinished)
    }

    @Test func exitedAfterKillIsNotOnItsOwn() {
        var s = running()
        _ = s.stop()
        _ = s.kill()
        #expect(s.exited(.signaled(Signal.kill)) == .stopped)
        #expect(s.isFinished)
    }

    /// The intent set by whoever stopped it decides what its exit means.
    @Test(arguments: [
        (InstanceState.Intent.restart, InstanceState.ExitDecision.startAgain), (.remove, .forget), (.hold, .stayDown),
        (.failed, .failedStart), (.replaced, .replaced), (.none, .stopped),
    ])
    func theIntentDecidesTheExit(intent: InstanceState.Intent, decision: InstanceState.ExitDecision) {
        var s = running()
        s.intent = intent
        _ = s.stop()
        #expect(s.exited(.signaled(Signal.terminate)) == decision)
    }

    @Test func aFailedStartDecidedWhileRunningIsAFailedStartEvenIfItExitsFirst() {
        var s = running()
        s.intent = .failed
        #expect(s.exited(.exited(0)) == .failedStart)
    }

    @Test func stopBeforeItStartedJustEnds() {
        var s = InstanceState()
        #expect(s.stop() == .none)
        #expect(s.phase == .failedToStart("stopped before it started"))
        #expect(s.isFinished)
        #expect(s.pid == nil)
        #expect(s.stop() == .none)
        #expect(s.kill() == .none)
    }

    @Test func killBeforeItStartedJustEnds() {
        var s = InstanceState()
        #expect(s.kill() == .none)
        #expect(s.phase == .failedToStart("stopped before it started"))
        #expect(s.isFinished)
    }

    @Test func failedToStart() {
        var s = InstanceState()
        s.failedToStart("execve failed: No such file or directory (ENOENT)")
        #expect(s.isFinished)
        #expect(s.pid == nil)
        #expect(s.stop() == .none)
        #expect(s.kill() == .none)
        #expect(s.phase == .failedToStart("execve failed: No such file or directory (ENOENT)"))
    }

    @Test func shellStatus() {
        #expect(Termination.exited(0).shellStatus == 0)
        #expect(Termination.exited(42).shellStatus == 42)
        #expect(Termination.signaled(Signal.kill).shellStatus == 137)
        #expect(Termination.signaled(Signal.terminate).shellStatus == 143)
        #expect(Termination.signaled(Signal.interrupt).shellStatus == 130)
    }
}

@Suite struct RunStateTests {
    /// 2 s between SIGTERM and SIGKILL.
    static let timeout: UInt64 = 2_000_000_000

    private func running() -> RunState { RunState(hasRelease: false, timeoutSeconds: 2) }

    @Test func initialPhase() {
        let withRelease = RunState(hasRelease: true, timeoutSeconds: 2)
        #expect(withRelease.phase == .release)
        #expect(!withRelease.isStopping)
        #expect(withRelease.exitStatus == nil)
        #expect(withRelease.deadline == nil)
        let without = running()
        #expect(without.phase == .running)
        #expect(without.timeoutNanos == Self.timeout)
        #expect(RunState(hasRelease: false, timeoutSeconds: 0.25).timeoutNanos == 250_000_000)
    }

    @Test(arguments: [Signal.interrupt, Signal.terminate, Signal.hangup])
    func signalStopsAllWithStatusZero(_ signal: Int32) {
        var s = running()
        #expect(s.received(signal: signal, now: 1_000) == .stopAll)
        #expect(s.phase == .stopping(deadline: 1_000 + Self.timeout))
        #expect(s.deadline == 1_000 + Self.timeout)
        #expect(s.isStopping)
        #expect(s.exitStatus == 0)
    }

    @Test func signalDuringReleaseStopsAll() {
        var s = RunState(hasRelease: true, timeoutSeconds: 2)
        #expect(s.received(signal: Signal.terminate, now: 5) == .stopAll)
        #expect(s.exitStatus == 0)
        // The release ending afterwards does not start the formation.
        #expect(s.releaseExited(.exited(0), now: 6) == .none)
        #expect(s.isStopping)
    }

    @Test func secondSIGINTKillsAtOnce() {
        var s = running()
        _ = s.received(signal: Signal.interrupt, now: 0)
        #expect(s.received(signal: Signal.interrupt, now: 10) == .killAll)
        #expect(s.phase == .killing)
        #expect(s.deadline == nil)
        #expect(s.isStopping)
        #expect(s.exitStatus == 0)
        #expect(s.received(signal: Signal.interrupt, now: 20) == .none)
        #expect(s.tick(now: Self.timeout * 10) == .none)
    }

    @Test func sigintAfterSIGTERMKills() {
        var s = running()
        _ = s.received(signal: Signal.terminate, now: 0)
        #expect(s.received(signal: Signal.interrupt, now: 1) == .killAll)
    }

    @Test(arguments: [Signal.terminate, Signal.hangup])
    func secondSIGTERMOrSIGHUPIsIgnored(_ second: Int32) {
        var s = running()
        _ = s.received(signal: Signal.terminate, now: 100)
        #expect(s.received(signal: second, now: 200) == .none)
        // The deadline is not pushed back.
        #expect(s.phase == .stopping(deadline: 100 + Self.timeout))
    }

    @Test(arguments: [(Termination.exited(3), Int32(3)), (.exited(0), 0), (.signaled(Signal.kill), 137), (.signaled(Signal.terminate), 143)])
    func instanceExitStopsTheRestWithItsStatus(_ status: Termination, _ expected: Int32) {
        var s = running()
        #expect(s.instanceExited(status, now: 50) == .stopAll)
        #expect(s.exitStatus == expected)
        #expect(s.phase == .stopping(deadline: 50 + Self.timeout))
    }

    @Test func theFirstReasonFixesTheStatus() {
        var s = running()
        _ = s.instanceExited(.exited(3), now: 0)
        #expect(s.instanceExited(.exited(9), now: 1) == .none)
        #expect(s.received(signal: Signal.terminate, now: 2) == .none)
        #expect(s.outputClosed(now: 3) == .none)
        #expect(s.startFailed(now: 4) == .none)
        #expect(s.exitStatus == 3)
        #expect(s.received(signal: Signal.interrupt, now: 5) == .killAll)
        #expect(s.exitStatus == 3)
    }

    @Test func instanceExitAfterASignalKeepsStatusZero() {
        var s = running()
        _ = s.received(signal: Signal.terminate, now: 0)
        #expect(s.instanceExited(.signaled(Signal.terminate), now: 1) == .none)
        #expect(s.exitStatus == 0)
    }

    @Test func instanceExitDuringReleaseIsNotTheFormationsExit() {
        var s = RunState(hasRelease: true, timeoutSeconds: 2)
        #expect(s.instanceExited(.exited(1), now: 0) == .none)
        #expect(s.phase == .release)
        #expect(s.exitStatus == nil)
    }

    @Test func releaseSuccessStartsTheFormation() {
        var s = RunState(hasRelease: true, timeoutSeconds: 2)
        #expect(s.releaseExited(.exited(0), now: 10) == .startFormation)
        #expect(s.phase == .running)
        #expect(s.exitStatus == nil)
        #expect(!s.isStopping)
        // Only once.
        #expect(s.releaseExited(.exited(0), now: 11) == .none)
        #expect(s.phase == .running)
    }

    @Test(arguments: [(Termination.exited(1), Int32(1)), (.exited(42), 42), (.signaled(Signal.kill), 137)])
    func releaseFailureStopsWithItsStatus(_ status: Termination, _ expected: Int32) {
        var s = RunState(hasRelease: true, timeoutSeconds: 2)
        #expect(s.releaseExited(status, now: 10) == .stopAll)
        #expect(s.exitStatus == expected)
        #expect(s.phase == .stopping(deadline: 10 + Self.timeout))
    }

    @Test func releaseExitOutsideTheReleasePhaseIsIgnored() {
        var s = running()
        #expect(s.releaseExited(.exited(1), now: 0) == .none)
        #expect(s.phase == .running)
        #expect(s.exitStatus == nil)
    }

    @Test func tickKillsAtTheDeadline() {
        var s = running()
        _ = s.received(signal: Signal.terminate, now: 1_000)
        let deadline = 1_000 + Self.timeout
        #expect(s.tick(now: 1_000) == .none)
        #expect(s.tick(now: deadline - 1) == .none)
        #expect(s.phase == .stopping(deadline: deadline))
        #expect(s.tick(now: deadline) == .killAll)
        #expect(s.phase == .killing)
        #expect(s.tick(now: deadline + 1) == .none)
    }

    @Test func tickAfterTheDeadlineKills() {
        var s = running()
        _ = s.received(signal: Signal.terminate, now: 0)
        #expect(s.tick(now: Self.timeout * 3) == .killAll)
    }

    @Test func tickWhileRunningDoesNothing() {
        var s = running()
        #expect(s.tick(now: .max) == .none)
        #expect(s.phase == .running)
        var r = RunState(hasRelease: true, timeoutSeconds: 0)
        #expect(r.tick(now: .max) == .none)
        #expect(r.phase == .release)
    }

    @Test func zeroTimeoutKillsOnTheNextTick() {
        var s = RunState(hasRelease: false, timeoutSeconds: 0)
        _ = s.received(signal: Signal.terminate, now: 77)
        #expect(s.deadline == 77)
        #expect(s.tick(now: 77) == .killAll)
    }

    @Test func outputClosedStopsCleanly() {
        var s = running()
        #expect(s.outputClosed(now: 5) == .stopAll)
        #expect(s.exitStatus == 0)
        #expect(s.isStopping)
        #expect(s.outputClosed(now: 6) == .none)
        // A later instance exit does not change the status.
        #expect(s.instanceExited(.exited(1), now: 7) == .none)
        #expect(s.exitStatus == 0)
    }

    @Test func outputClosedDuringRelease() {
        var s = RunState(hasRelease: true, timeoutSeconds: 1)
        #expect(s.outputClosed(now: 0) == .stopAll)
        #expect(s.exitStatus == 0)
    }

    @Test func startFailureStopsWithStatus71() {
        var s = running()
        #expect(RunState.startFailureStatus == 71)
        #expect(s.startFailed(now: 3) == .stopAll)
        #expect(s.exitStatus == 71)
        #expect(s.startFailed(now: 4) == .none)
    }

    @Test func nothingButSIGINTActsWhileKilling() {
        var s = running()
        _ = s.received(signal: Signal.terminate, now: 0)
        _ = s.tick(now: Self.timeout)
        #expect(s.phase == .killing)
        #expect(s.received(signal: Signal.interrupt, now: 1) == .none)
        #expect(s.received(signal: Signal.terminate, now: 1) == .none)
        #expect(s.instanceExited(.exited(1), now: 1) == .none)
        #expect(s.outputClosed(now: 1) == .none)
        #expect(s.startFailed(now: 1) == .none)
        #expect(s.phase == .killing)
        #expect(s.exitStatus == 0)
    }
}
