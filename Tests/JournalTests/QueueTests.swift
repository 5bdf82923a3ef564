import Foundation
import Journal
import PasserelleCore
import SQLiteKit
import Testing

@Suite struct ClaimTests {
    @Test(arguments: JournalBackend.allCases) func claimTakesOnlyDueRowsOfItsTarget(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1, targets: [.dmp])
        try await f.queued(2, targets: [.mssantePS], at: JournalFixture.t0.plus(1))
        #expect(try await f.store.claimNext(target: .mssantePatient, now: JournalFixture.t0.plus(5), lease: 60, owner: "w") == nil)
        let dmp = try #require(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0.plus(5), lease: 60, owner: "w"))
        #expect(dmp.transmission.target == .dmp)
        // Nothing else due for the DMP: the claimed row is not handed out again.
        #expect(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0.plus(5), lease: 60, owner: "w2") == nil)
        // Not yet due: enqueued after `now`.
        try await f.queued(3, targets: [.dmp], at: JournalFixture.t0.plus(100))
        #expect(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0.plus(50), lease: 60, owner: "w") == nil)
        #expect(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0.plus(100), lease: 60, owner: "w") != nil)
    }

    @Test(arguments: JournalBackend.allCases) func oldestDueIsClaimedFirst(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1, at: JournalFixture.t0.plus(20))
        try await f.queued(2, at: JournalFixture.t0)
        try await f.queued(3, at: JournalFixture.t0.plus(10))
        var order: [String] = []
        while let c = try await f.store.claimNext(target: .dmp, now: JournalFixture.t0.plus(30), lease: 60, owner: "w") {
            order.append(c.document.id)
        }
        #expect(order == ["1.2.250.1.999.1.2", "1.2.250.1.999.1.3", "1.2.250.1.999.1.1"])
    }

    /// A worker's completion claims its next transmission in the same transaction: the claim
    /// is an ordinary one (lease, attempt) and completes like any other.
    @Test(arguments: JournalBackend.allCases) func completionClaimsTheNextOneInItsTransaction(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1, at: JournalFixture.t0)
        try await f.queued(2, at: JournalFixture.t0.plus(1))
        try await f.queued(3, targets: [.mssantePS], at: JournalFixture.t0.plus(2))
        let now = JournalFixture.t0.plus(5)
        let first = try #require(try await f.store.claimNext(target: .dmp, now: now, lease: 60, owner: "w"))
        let (done, next) = try await f.store.complete(first, owner: "w", outcome: .success(), now: now.plus(1), thenClaim: .dmp, lease: 60)
        #expect(done.state == .sent)
        let second = try #require(next)
        #expect(second.document.id == "1.2.250.1.999.1.2")
        #expect(second.transmission.state == .sending)
        #expect(second.transmission.leaseOwner == "w")
        #expect(abs((second.transmission.leaseExpiresAt ?? .distantPast).timeIntervalSince(now.plus(61))) < 0.001)
        // The other target's row is not taken; nothing else is due for the DMP.
        let (last, none) = try await f.store.complete(second, owner: "w", outcome: .success(), now: now.plus(2), thenClaim: .dmp, lease: 60)
        #expect(last.state == .sent)
        #expect(none == nil)
        #expect(try await f.store.stateCounts() == [StateCount(target: .dmp, state: .sent, count: 2),
                                                    StateCount(target: .mssantePS, state: .queued, count: 1)])
        let raw = try f.raw()
        #expect(try raw.scalar("SELECT count(*) FROM attempts WHERE ended_at IS NOT NULL")?.int == 2)
        #expect(try raw.scalar("SELECT count(*) FROM attempts")?.int == 2)
    }

    /// One transaction: a completion the journal refuses (the lease went to someone else)
    /// claims nothing, and the next row stays queued for any worker.
    @Test(arguments: JournalBackend.allCases) func refusedCompletionClaimsNothing(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1, at: JournalFixture.t0)
        try await f.queued(2, at: JournalFixture.t0.plus(1))
        let now = JournalFixture.t0.plus(5)
        let first = try #require(try await f.store.claimNext(target: .dmp, now: now, lease: 60, owner: "w"))
        let refused = await #expect(throws: JournalError.self) {
            _ = try await f.store.complete(first, owner: "intruder", outcome: .success(), now: now.plus(1), thenClaim: .dmp, lease: 60)
        }
        if case .leaseLost(let id, let owner) = refused { #expect(id == first.transmission.id && owner == "intruder") } else {
            Issue.record("expected leaseLost, got \(String(describing: refused))")
        }
        let raw = try f.raw()
        #expect(try raw.scalar("SELECT count(*) FROM attempts")?.int == 1)
        let second = try #require(try await f.store.claimNext(target: .dmp, now: now.plus(2), lease: 60, owner: "w2"))
        #expect(second.document.id == "1.2.250.1.999.1.2")
        #expect(try await f.store.transmission(id: first.transmission.id)?.leaseOwner == "w")
    }

    /// Four workers, each with its own connection on the same file (as separate processes
    /// would have), race to claim 200 transmissions: each must be claimed exactly once.
    @Test(arguments: JournalBackend.allCases) func concurrentClaimersNeverClaimTheSameTransmission(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let count = 200
        for n in 0..<count { try await f.queued(n, targets: [.dmp]) }
        let stores = try (0..<4).map { _ in try f.secondStore() }
        let gate = StartGate(parties: stores.count)
        let claimed = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for (i, store) in stores.enumerated() {
                group.addTask {
                    try await Task.detached {
                        var mine: [Int64] = []
                        await gate.arrive()  // all start together, so they really race
                        while let c = try await store.claimNext(target: .dmp, now: JournalFixture.t0.plus(1), lease: 60, owner: "w\(i)") {
                            #expect(c.transmission.leaseOwner == "w\(i)")
                            mine.append(c.transmission.id)
                            _ = try await store.complete(c, owner: "w\(i)", outcome: .success(), now: JournalFixture.t0.plus(2))
                            // The store's calls do not suspend; let the other workers in even on one pool thread.
                            await Task.yield()
                        }
                        return mine
                    }.value
                }
            }
            var all: [[Int64]] = []
            for try await ids in group { all.append(ids) }
            return all
        }
        let flat = claimed.flatMap { $0 }
        #expect(flat.count == count)
        #expect(Set(flat).count == count, "a transmission was claimed twice")
        #expect(claimed.filter { !$0.isEmpty }.count >= 2, "the workers did not actually run concurrently")
        let counts = try await f.store.stateCounts()
        #expect(counts == [StateCount(target: .dmp, state: .sent, count: count)])
        // One attempt per transmission, never two.
        let raw = try f.raw()
        #expect(try raw.scalar("SELECT count(*) FROM attempts")?.int == count)
        #expect(try raw.scalar("SELECT max(attempts) FROM transmissions")?.int == 1)
    }
}

/// Releases its waiters once `parties` of them have arrived.
actor StartGate {
    let parties: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []
    init(parties: Int) { self.parties = parties }
    func arrive() async {
        if waiting.count + 1 == parties {
            waiting.forEach { $0.resume() }
            waiting.removeAll()
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }
}

@Suite struct CrashRecoveryTests {
    /// A mail interrupted by a crash after its Message-ID was recorded may be at the relay: it is
    /// held for the grace (a DMP row, with no Message-ID, is due at once), and an acknowledgement
    /// naming it settles it as sent, so it is never claimed again.
    @Test(arguments: JournalBackend.allCases) func anInterruptedMailIsHeldForItsDSNThenSettledWithoutResend(_ backend: JournalBackend) async throws {
        var policy = RetryPolicy(initialDelay: 30, multiplier: 2, maxDelay: 600, jitter: 0.5, maxAttempts: 5, deadline: 24 * 3600)
        policy.interruptedHold = 600
        let f = try JournalFixture(backend, policy: policy)
        let rows = try await f.queued(1, targets: [.dmp, .mssantePS])
        let (dmp, mail) = (rows[0], rows[1])
        _ = try #require(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0, lease: 60, owner: "A"))
        _ = try #require(try await f.store.claimNext(target: .mssantePS, now: JournalFixture.t0, lease: 60, owner: "A"))
        try await f.store.recordMessageID("<m2@passerelle.test>", transmissionID: mail.id, owner: "A")
        // A dies. While its lease runs, the mail is being sent as far as anyone knows: not settled.
        #expect(try await f.store.transmission(id: mail.id)?.isBeingSent(now: JournalFixture.t0.plus(30)) == true)
        #expect(try await f.store.confirmInterruptedSend(transmissionID: mail.id, now: JournalFixture.t0.plus(30)) == nil)

        let recovered = try await f.store.recoverInterrupted(now: JournalFixture.t0.plus(61))
        #expect(Set(recovered.map(\.id)) == [dmp.id, mail.id])
        #expect(recovered.first { $0.id == dmp.id }?.nextAttemptAt == JournalFixture.t0.plus(61))
        #expect(recovered.first { $0.id == mail.id }?.nextAttemptAt == JournalFixture.t0.plus(661))
        #expect(try await f.store.claimNext(target: .mssantePS, now: JournalFixture.t0.plus(120), lease: 60, owner: "B") == nil, "held")
        #expect(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0.plus(120), lease: 60, owner: "B") != nil)

        // Its DSN arrives: sent, then delivered; nothing left to claim after the hold.
        let held = try #require(try await f.store.transmission(id: mail.id))
        #expect(held.awaitsInterruptedOutcome(now: JournalFixture.t0.plus(130)))
        let settled = try #require(try await f.store.confirmInterruptedSend(transmissionID: mail.id, now: JournalFixture.t0.plus(130)))
        #expect(settled.state == .sent && !settled.needsRecheck && settled.nextAttemptAt == nil)
        #expect(try await f.store.confirmInterruptedSend(transmissionID: mail.id, now: JournalFixture.t0.plus(131)) == nil, "once")
        _ = try await f.store.acknowledge(transmissionID: mail.id, kind: .delivered, detail: "DSN", now: JournalFixture.t0.plus(131))
        #expect(try await f.store.claimNext(target: .mssantePS, now: JournalFixture.t0.plus(10_000), lease: 60, owner: "B") == nil)
        #expect(try await f.store.transmission(id: mail.id)?.state == .delivered)
        #expect(try await f.store.attempts(transmissionID: mail.id).map(\.outcome) == ["interrupted"], "one send only")
    }

    @Test(arguments: JournalBackend.allCases) func aClaimInterruptedByACrashIsRecheckedNotLostNorDoubled(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let t = try await f.queued(1, targets: [.mssantePS])[0]
        // Process A claims, keeps its Message-ID, then dies (kill -9): its connection just goes away.
        var crashed: (any JournalStore)? = try f.secondStore()
        let claim = try #require(try await crashed!.claimNext(target: .mssantePS, now: JournalFixture.t0, lease: 120, owner: "A"))
        try await crashed!.recordMessageID("<m1@passerelle.test>", transmissionID: t.id, owner: "A")
        crashed = nil

        // Process B restarts. While A's lease runs, the row is not taken from it.
        let b = try f.secondStore()
        #expect(try await b.recoverInterrupted(now: JournalFixture.t0.plus(60)).isEmpty)
        #expect(try await b.claimNext(target: .mssantePS, now: JournalFixture.t0.plus(60), lease: 120, owner: "B") == nil)

        // Lease expired: back to queued, marked for a recheck, the open attempt marked interrupted.
        let recovered = try await b.recoverInterrupted(now: JournalFixture.t0.plus(121))
        #expect(recovered.map(\.id) == [t.id])
        #expect(recovered[0].state == .queued)
        #expect(recovered[0].needsRecheck)
        #expect(recovered[0].leaseOwner == nil)
        #expect(recovered[0].messageID == "<m1@passerelle.test>")
        let attempts = try await b.attempts(transmissionID: t.id)
        #expect(attempts.map(\.outcome) == ["interrupted"])
        #expect(attempts[0].endedAt == JournalFixture.t0.plus(121))

        // B claims it and sees it must check before resending, with the same Message-ID.
        let again = try #require(try await b.claimNext(target: .mssantePS, now: JournalFixture.t0.plus(122), lease: 120, owner: "B"))
        #expect(again.transmission.needsRecheck)
        #expect(again.transmission.messageID == "<m1@passerelle.test>")
        #expect(again.transmission.attempts == 2)
        // A late result from A (had it survived) is refused: it no longer holds the lease.
        let stale = await #expect(throws: JournalError.self) {
            _ = try await b.complete(claim, owner: "A", outcome: .success(), now: JournalFixture.t0.plus(123))
        }
        if case .leaseLost(let id, let owner) = stale { #expect(id == t.id && owner == "A") } else { Issue.record("expected leaseLost") }
        let done = try await b.complete(again, owner: "B", outcome: .success(response: "already registered (uniqueId)"),
                                        now: JournalFixture.t0.plus(124))
        #expect(done.state == .sent)
        let final = try #require(try await b.transmission(id: t.id))
        #expect(!final.needsRecheck)
        #expect(try await b.attempts(transmissionID: t.id).map(\.outcome) == ["interrupted", "sent"])
    }

    @Test(arguments: JournalBackend.allCases) func aCommittedStepSurvivesAnUncleanCloseOfTheFile(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1)
        // Everything below is committed (SQLite: synchronous=FULL): a new connection sees it
        // without any checkpoint or clean close by the first one.
        let reopened = try f.secondStore()
        #expect(try await reopened.transmissions(matching: TransmissionFilter()).count == 1)
        #expect(try await f.schemaVersion() == 9)
    }
}

@Suite struct RetryTests {
    @Test func backoffMath() {
        let p = RetryPolicy(initialDelay: 30, multiplier: 2, maxDelay: 600, jitter: 0.5, maxAttempts: 8, deadline: 3600)
        #expect((1...7).map { p.baseDelay(afterAttempts: $0) } == [30, 60, 120, 240, 480, 600, 600])
        #expect(p.delay(afterAttempts: 3, random: 0) == 60)  // half of 120
        #expect(p.delay(afterAttempts: 3, random: 0.5) == 90)
        #expect(p.delay(afterAttempts: 3, random: 1) == 120)
        let noJitter = RetryPolicy(initialDelay: 10, multiplier: 3, maxDelay: 1000, jitter: 0, maxAttempts: 3, deadline: 1e6)
        #expect(noJitter.delay(afterAttempts: 2, random: 0.9) == 30)
        let now = JournalFixture.t0
        #expect(p.nextAttempt(afterAttempts: 1, deadline: now.plus(3600), now: now, random: 0) == now.plus(15))
        // Attempts exhausted.
        #expect(p.nextAttempt(afterAttempts: 8, deadline: now.plus(3600), now: now, random: 0) == nil)
        // The next try would fall after the deadline.
        #expect(p.nextAttempt(afterAttempts: 6, deadline: now.plus(299), now: now, random: 0) == nil)
        #expect(p.nextAttempt(afterAttempts: 6, deadline: now.plus(300), now: now, random: 0) == now.plus(300))
    }

    @Test(arguments: [
        (FailureCause.network("connection reset"), true),
        (.httpServerError(status: 503, "Service Unavailable"), true),
        (.smtpTemporary(code: 451, "try later"), true),
        (.dmpServiceUnavailable("DMP indisponible"), true),
        (.schema("cvc-complex-type"), false),
        (.identity("INS non qualifiée"), false),
        (.smtpPermanent(code: 550, "mailbox unknown"), false),
        (.dmpBusinessRefusal(code: "DMPPatientNotFound", "patient inconnu"), false),
        (.permanent("HTTP 400"), false),
    ])
    func classification(cause: FailureCause, transient: Bool) {
        #expect(cause.isTransient == transient)
    }

    @Test(arguments: JournalBackend.allCases) func transientFailuresRetryWithBackoffAndAlertOncePerIncident(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend, random: { 0 })  // jitter source fixed: delays are exactly half the base
        let t = try await f.queued(1, targets: [.dmp])[0]
        var now = JournalFixture.t0
        var alerts = 0
        var expectedDelays: [TimeInterval] = []
        var nextTimes: [Date] = []
        for attempt in 1...4 {
            let c = try #require(try await f.store.claimNext(target: .dmp, now: now, lease: 60, owner: "w"))
            #expect(c.transmission.attempts == attempt)
            let r = try await f.store.complete(c, owner: "w", outcome: .failure(.httpServerError(status: 503, "busy"), response: "<soap:Fault/>"),
                                               now: now.plus(1))
            #expect(r.state == .retryWait)
            if r.shouldAlert { alerts += 1 }
            let next = try #require(r.nextAttemptAt)
            expectedDelays.append(f.policy.baseDelay(afterAttempts: attempt) / 2)
            nextTimes.append(next)
            #expect(next == now.plus(1 + expectedDelays.last!))
            // Not due yet.
            #expect(try await f.store.claimNext(target: .dmp, now: next.plus(-0.5), lease: 60, owner: "w") == nil)
            now = next
        }
        #expect(alerts == 1, "one alert per incident, not per retry")
        #expect(expectedDelays == [15, 30, 60, 120])
        let waiting = try #require(try await f.store.transmission(id: t.id))
        #expect(waiting.alerted)
        #expect(waiting.lastError == "HTTP 503: busy")
        #expect(try await f.store.lastErrors().map(\.target) == [.dmp])
        // Success ends the incident; a later failure is a new incident and alerts again.
        let c = try #require(try await f.store.claimNext(target: .dmp, now: now, lease: 60, owner: "w"))
        _ = try await f.store.complete(c, owner: "w", outcome: .success(state: .acknowledged), now: now)
        #expect(try await f.store.transmission(id: t.id)?.alerted == false)
        let attempts = try await f.store.attempts(transmissionID: t.id)
        #expect(attempts.map(\.outcome) == ["transient", "transient", "transient", "transient", "sent"])
        #expect(attempts[0].response == "<soap:Fault/>")

        let t2 = try await f.queued(2, targets: [.dmp], at: now)[0]
        let c2 = try #require(try await f.store.claimNext(target: .dmp, now: now, lease: 60, owner: "w"))
        #expect(c2.transmission.id == t2.id)
        #expect(try await f.store.complete(c2, owner: "w", outcome: .failure(.network("refused")), now: now).shouldAlert)
    }

    @Test(arguments: JournalBackend.allCases) func transientFailuresBecomeFinalAtTheAttemptLimit(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend, random: { 0.25 })
        let t = try await f.queued(1, targets: [.mssantePS])[0]
        var now = JournalFixture.t0
        var states: [TransmissionState] = []
        var alerts = 0
        while let c = try await f.store.claimNext(target: .mssantePS, now: now, lease: 60, owner: "w") {
            let r = try await f.store.complete(c, owner: "w", outcome: .failure(.smtpTemporary(code: 421, "too busy")), now: now)
            states.append(r.state)
            if r.shouldAlert { alerts += 1 }
            now = r.nextAttemptAt ?? now.plus(1)
        }
        #expect(states == [.retryWait, .retryWait, .retryWait, .retryWait, .failed])
        #expect(alerts == 1)
        let failed = try #require(try await f.store.transmission(id: t.id))
        #expect(failed.state == .failed)
        #expect(failed.lastError?.contains("gave up after 5 attempts") == true)
        #expect(failed.lastError?.contains("SMTP 421") == true)
    }

    @Test(arguments: JournalBackend.allCases) func transientFailuresBecomeFinalAtTheDeadline(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1, targets: [.dmp])
        let c = try #require(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0.plus(24 * 3600 - 10), lease: 60, owner: "w"))
        let r = try await f.store.complete(c, owner: "w", outcome: .failure(.network("timeout")), now: JournalFixture.t0.plus(24 * 3600 - 5))
        #expect(r.state == .failed)
        #expect(r.nextAttemptAt == nil)
    }

    @Test(arguments: JournalBackend.allCases) func permanentFailuresFailAtOnceWithTheReason(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let t = try await f.queued(1, targets: [.dmp])[0]
        let c = try #require(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0, lease: 60, owner: "w"))
        let r = try await f.store.complete(c, owner: "w",
                                           outcome: .failure(.dmpBusinessRefusal(code: "DMPAccessDeniedByExpressRefusal", "opposition du patient"),
                                                             response: "<RegistryError errorCode=\"DMPAccessDeniedByExpressRefusal\"/>"),
                                           now: JournalFixture.t0.plus(1))
        #expect(r == CompletionResult(state: .failed, nextAttemptAt: nil, shouldAlert: true))
        let failed = try #require(try await f.store.transmission(id: t.id))
        #expect(failed.attempts == 1)
        #expect(failed.lastError == "DMP refusal DMPAccessDeniedByExpressRefusal: opposition du patient")
        #expect(failed.lastErrorAt == JournalFixture.t0.plus(1))
        #expect(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0.plus(1e6), lease: 60, owner: "w") == nil)
        // Operator resend: the dead letter goes back to the queue as a new incident.
        let requeued = try await f.store.requeue(TransmissionFilter(documentID: t.documentID), now: JournalFixture.t0.plus(100))
        #expect(requeued.map(\.state) == [.queued])
        #expect(requeued[0].attempts == 0 && !requeued[0].alerted)
        #expect(requeued[0].deadline == JournalFixture.t0.plus(100 + 24 * 3600))
        #expect(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0.plus(100), lease: 60, owner: "w") != nil)
    }

    /// `passerelle resend --include-sent`: a success goes back to the queue only when asked,
    /// with a new Message-ID, and its earlier attempts and acknowledgements stay.
    @Test(arguments: JournalBackend.allCases) func aSuccessIsRequeuedOnlyWhenAskedAndKeepsItsHistory(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let t = try await f.queued(1, targets: [.mssantePS])[0]
        let c = try #require(try await f.store.claimNext(target: .mssantePS, now: JournalFixture.t0, lease: 60, owner: "w"))
        try await f.store.recordMessageID("<first@passerelle.test>", transmissionID: t.id, owner: "w")
        _ = try await f.store.complete(c, owner: "w", outcome: .success(response: "250 queued"), now: JournalFixture.t0.plus(1))
        _ = try await f.store.acknowledge(transmissionID: t.id, kind: .delivered, detail: "DSN", now: JournalFixture.t0.plus(2))

        #expect(try await f.store.requeue(TransmissionFilter(documentID: t.documentID), now: JournalFixture.t0.plus(10)).isEmpty)
        #expect(try await f.store.requeue(TransmissionFilter(documentID: t.documentID), includingSucceeded: false, now: JournalFixture.t0.plus(10)).isEmpty)
        // --status narrows: asking for acknowledged ones leaves this delivered one alone.
        #expect(try await f.store.requeue(TransmissionFilter(documentID: t.documentID, states: [.acknowledged]),
                                          includingSucceeded: true, now: JournalFixture.t0.plus(10)).isEmpty)
        #expect(try await f.store.transmission(id: t.id)?.state == .delivered)

        let again = try await f.store.requeue(TransmissionFilter(documentID: t.documentID), includingSucceeded: true, now: JournalFixture.t0.plus(10))
        #expect(again.map(\.state) == [.queued])
        #expect(again[0].attempts == 0 && again[0].messageID == nil)
        #expect(again[0].deadline == JournalFixture.t0.plus(10 + 24 * 3600))
        let second = try #require(try await f.store.claimNext(target: .mssantePS, now: JournalFixture.t0.plus(10), lease: 60, owner: "w"))
        _ = try await f.store.complete(second, owner: "w", outcome: .success(response: "250 queued again"), now: JournalFixture.t0.plus(11))
        let attempts = try await f.store.attempts(transmissionID: t.id)
        #expect(attempts.map(\.response) == ["250 queued", "250 queued again"], "the new attempt is appended")
        #expect(try await f.store.acknowledgements(transmissionID: t.id).map(\.kind) == [.delivered])
        #expect(try await f.store.transmission(id: t.id)?.state == .sent)
    }
}
