import Foundation
import Journal
import PasserelleCore
import Testing
import TestSupport

/// A peer's Retry-After (``FailureCause/retryAfter(seconds:_:)``): the next attempt is the
/// later of the backoff and the peer's wait, still bounded by the deadline; the cause keeps
/// its class.
@Suite struct RetryAfterPolicyTests {
    @Test func nextAttemptIsTheLaterOfBackoffAndTheRequestedWait() {
        let p = RetryPolicy(initialDelay: 30, multiplier: 2, maxDelay: 600, jitter: 0.5, maxAttempts: 8, deadline: 3600)
        let now = JournalFixture.t0
        #expect(p.nextAttempt(afterAttempts: 1, deadline: now.plus(3600), now: now, random: 0, notBefore: 120) == now.plus(120))
        // A shorter wait than the backoff changes nothing.
        #expect(p.nextAttempt(afterAttempts: 1, deadline: now.plus(3600), now: now, random: 0, notBefore: 5) == now.plus(15))
        // Past the deadline: the failure becomes final, as with the backoff alone.
        #expect(p.nextAttempt(afterAttempts: 1, deadline: now.plus(100), now: now, random: 0, notBefore: 120) == nil)
    }

    @Test func aCauseWithARequestedWaitKeepsItsClass() {
        let busy = FailureCause.retryAfter(seconds: 90, .httpServerError(status: 503, "busy"))
        #expect(busy.isTransient)
        #expect(busy.requestedDelay == 90)
        #expect(busy.underlying == .httpServerError(status: 503, "busy"))
        #expect(busy.description == "HTTP 503: busy (the server asks to wait 90 s)")
        #expect(!FailureCause.retryAfter(seconds: 90, .permanent("HTTP 400")).isTransient)
        #expect(FailureCause.network("reset").requestedDelay == nil)
    }

    @Test(arguments: JournalBackend.allCases) func completeSchedulesAfterTheRequestedWait(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend, random: { 0 })
        _ = try await f.queued(1, targets: [.dmp])
        let now = JournalFixture.t0
        let c = try #require(try await f.store.claimNext(target: .dmp, now: now, lease: 60, owner: "w"))
        let r = try await f.store.complete(c, owner: "w", outcome: .failure(.retryAfter(seconds: 900, .httpServerError(status: 503, "busy"))),
                                           now: now.plus(1))
        #expect(r.state == .retryWait)
        #expect(r.nextAttemptAt == now.plus(901), "backoff \(f.policy.baseDelay(afterAttempts: 1) / 2) s, Retry-After 900 s")
        #expect(try await f.store.claimNext(target: .dmp, now: now.plus(900), lease: 60, owner: "w") == nil)
        #expect(try await f.store.claimNext(target: .dmp, now: now.plus(901), lease: 60, owner: "w") != nil)
    }
}
