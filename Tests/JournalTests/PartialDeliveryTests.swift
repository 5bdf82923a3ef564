import Foundation
import Journal
import PasserelleCore
import Testing

/// A mail some recipients accepted and others refused: the 4xx ones are retried alone with
/// backoff, the 5xx ones are shown on the transmission, the accepted ones are never sent again.
@Suite("journal: partial delivery of a mail")
struct PartialDeliveryTests {
    static let cause = FailureCause.smtpTemporary(code: 450, "b@x.mssante.fr: 450 4.2.1 mailbox busy")

    @Test("4xx recipients are kept pending, retried with a growing backoff, then cleared by their success",
          arguments: JournalBackend.allCases)
    func pendingRecipientsAreRetriedAlone(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1, targets: [.mssantePS])
        let t0 = JournalFixture.t0
        let first = try #require(try await f.store.claimNext(target: .mssantePS, now: t0.plus(1), lease: 60, owner: "w"))
        #expect(first.transmission.pendingRecipients == nil)
        let r1 = try await f.store.complete(first, owner: "w", outcome: .partial(pending: ["b@x.mssante.fr"], cause: Self.cause,
                                                                                 response: "accepted for 1 recipient(s)"), now: t0.plus(2))
        #expect(r1.state == .retryWait)
        // RetryPolicy(initialDelay 30, jitter 0.5, random 0.5): 22.5 s after the first failure.
        #expect(r1.nextAttemptAt == t0.plus(2 + 22.5))
        let waiting = try #require(try await f.store.transmission(id: first.transmission.id))
        #expect(waiting.pendingRecipients == ["b@x.mssante.fr"])
        #expect(waiting.lastError?.contains("SMTP 450") == true)

        // A DSN for the recipient that has it is recorded, without moving the state.
        let acked = try await f.store.acknowledge(transmissionID: waiting.id, kind: .delivered, detail: "DSN delivered", now: t0.plus(3))
        #expect(acked.state == .retryWait)
        #expect(try await f.store.acknowledgements(transmissionID: waiting.id).count == 1)

        // Not due before its time; the second attempt sees the pending list and fails again: longer delay.
        #expect(try await f.store.claimNext(target: .mssantePS, now: t0.plus(20), lease: 60, owner: "w") == nil)
        let second = try #require(try await f.store.claimNext(target: .mssantePS, now: t0.plus(30), lease: 60, owner: "w"))
        #expect(second.transmission.pendingRecipients == ["b@x.mssante.fr"])
        // A network failure on the retry keeps the pending list.
        let r2 = try await f.store.complete(second, owner: "w", outcome: .failure(.network("connection refused")), now: t0.plus(31))
        #expect(r2.nextAttemptAt == t0.plus(31 + 45))
        let third = try #require(try await f.store.claimNext(target: .mssantePS, now: t0.plus(80), lease: 60, owner: "w"))
        #expect(third.transmission.pendingRecipients == ["b@x.mssante.fr"])
        let done = try await f.store.complete(third, owner: "w", outcome: .success(state: .sent, response: "accepted"), now: t0.plus(81))
        #expect(done.state == .sent)
        let sent = try #require(try await f.store.transmission(id: first.transmission.id))
        #expect(sent.pendingRecipients == nil)
        #expect(try await f.store.attempts(transmissionID: sent.id).map(\.outcome) == ["transient", "transient", "sent"])
    }

    @Test("5xx for some recipients and the others accepted: sent, with the refusal as the last error",
          arguments: JournalBackend.allCases)
    func permanentRefusalsAreShownOnASentTransmission(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1, targets: [.mssantePS])
        let claim = try #require(try await f.store.claimNext(target: .mssantePS, now: JournalFixture.t0.plus(1), lease: 60, owner: "w"))
        let refused = FailureCause.smtpPermanent(code: 550, "c@x.mssante.fr: 550 5.1.1 mailbox unknown")
        let r = try await f.store.complete(claim, owner: "w", outcome: .partial(pending: [], cause: refused, response: "accepted for 1"),
                                           now: JournalFixture.t0.plus(2))
        #expect(r.state == .sent)
        let t = try #require(try await f.store.transmission(id: claim.transmission.id))
        #expect(t.state == .sent && t.pendingRecipients == nil)
        #expect(t.lastError?.contains("550") == true && t.lastError?.contains("c@x.mssante.fr") == true)
        #expect(try await f.store.lastErrors().first { $0.target == .mssantePS }?.transmissionID == t.id)
    }

    @Test("retries exhausted: failed with the reason; an operator resend still goes to the pending recipients only",
          arguments: JournalBackend.allCases)
    func exhaustedPartialDeliveryKeepsItsPendingRecipients(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend, policy: RetryPolicy(initialDelay: 1, maxDelay: 1, jitter: 0, maxAttempts: 1, deadline: 3600))
        try await f.queued(1, targets: [.mssantePS])
        let claim = try #require(try await f.store.claimNext(target: .mssantePS, now: JournalFixture.t0.plus(1), lease: 60, owner: "w"))
        let r = try await f.store.complete(claim, owner: "w", outcome: .partial(pending: ["b@x.mssante.fr"], cause: Self.cause),
                                           now: JournalFixture.t0.plus(2))
        #expect(r.state == .failed)
        let failed = try #require(try await f.store.transmission(id: claim.transmission.id))
        #expect(failed.lastError?.hasPrefix("gave up after 1 attempt") == true)
        #expect(failed.pendingRecipients == ["b@x.mssante.fr"])
        let requeued = try await f.store.requeue(TransmissionFilter(transmissionIDs: [failed.id]), now: JournalFixture.t0.plus(3))
        #expect(requeued.first?.pendingRecipients == ["b@x.mssante.fr"])
        // A deliberate resend of a success is a new mail to everyone: no pending list.
        let again = try #require(try await f.store.claimNext(target: .mssantePS, now: JournalFixture.t0.plus(4), lease: 60, owner: "w"))
        _ = try await f.store.complete(again, owner: "w", outcome: .success(state: .sent), now: JournalFixture.t0.plus(5))
        let resent = try await f.store.requeue(TransmissionFilter(transmissionIDs: [failed.id]), includingSucceeded: true,
                                               now: JournalFixture.t0.plus(6))
        #expect(resent.first?.pendingRecipients == nil)
    }
}
