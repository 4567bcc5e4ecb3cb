import Foundation
import PaasCore
import Testing

/// Which write errors on stdout are a requested stop and which are errors (issue 8, fault 21).
@Suite struct OutputFailureTests {
    @Test func onlyAReaderLeavingIsARequestedStop() {
        #expect(OutputFailure(code: EPIPE).isHangUp)
        #expect(OutputFailure(code: EIO).isHangUp)
        for code in [ENOSPC, EFBIG, EBADF, EINVAL, EDQUOT] {
            #expect(!OutputFailure(code: code).isHangUp, "errno \(code)")
        }
        #expect(OutputFailure(code: ENOSPC).description == "could not write to stdout: No space left on device (ENOSPC)")
        #expect(OutputFailure(code: EFBIG).description.hasSuffix("(EFBIG)"))
    }

    @Test func anOutputErrorEndsTheRunWith74() {
        var running = RunState(hasRelease: false, timeoutSeconds: 5)
        #expect(running.outputFailed(now: 0) == .stopAll)
        #expect(running.exitStatus == RunState.outputErrorStatus && RunState.outputErrorStatus == 74)
        // During a requested stop (exit 0), lines lost to an error still make it 74...
        var stopping = RunState(hasRelease: false, timeoutSeconds: 5)
        _ = stopping.received(signal: SIGTERM, now: 0)
        #expect(stopping.outputFailed(now: 1) == .none)
        #expect(stopping.exitStatus == 74)
        // ...but never hide a child's own failure.
        var failed = RunState(hasRelease: false, timeoutSeconds: 5)
        _ = failed.instanceExited(.exited(3), now: 0)
        #expect(failed.outputFailed(now: 1) == .none)
        #expect(failed.exitStatus == 3)
    }
}
