import Foundation
@testable import Journal
import PasserelleCore
import Synchronization

/// The delivery part of the journal in memory, for tests of the workers' logic that need no
/// files and can run in parallel. It decides a completion with the journal's own
/// ``CompletionPlan`` (the same retry, Retry-After and dead-letter rules as SQLite and
/// PostgreSQL); the claim takes the oldest due row of the target, as the SQL does.
final class InMemoryDeliveryQueue: DeliveryQueue {
    struct State {
        var transmissions: [Int64: Transmission] = [:]
        var documents: [Int64: JournalDocument] = [:]
        var attempts: [Int64: (transmissionID: Int64, outcome: String?)] = [:]
        var nextAttemptID: Int64 = 1
        var claims = 0
        /// Claims made by a completion (``complete(_:owner:outcome:now:thenClaim:lease:)``).
        var claimsAfterCompletion = 0
        /// Claims that found nothing due, by target.
        var emptyClaims: [Destination: Int] = [:]
        var recoveries = 0
    }
    let policy: RetryPolicy
    let state = Mutex(State())
    /// Called inside a completion that claims the next transmission, before it returns (a test
    /// stops the workers there: the stop lands while the loop holds a fresh claim).
    let duringCompletionClaim = Mutex<(@Sendable () -> Void)?>(nil)

    init(policy: RetryPolicy) { self.policy = policy }

    /// Queues one transmission of `document` to `target`, due at `due`.
    @discardableResult
    func enqueue(_ document: JournalDocument, target: Destination, due: Date = Date()) -> Int64 {
        state.withLock { s in
            let id = Int64(s.transmissions.count + 1)
            s.transmissions[id] = Transmission(
                id: id, documentID: document.id, version: document.version, target: target, state: .queued, attempts: 0,
                createdAt: due, updatedAt: due, deadline: nil, nextAttemptAt: due, leaseOwner: nil, leaseExpiresAt: nil,
                needsRecheck: false, alerted: false, lastError: nil, lastErrorAt: nil, messageID: nil)
            s.documents[id] = document
            return id
        }
    }

    func transmission(_ id: Int64) -> Transmission? { state.withLock { $0.transmissions[id] } }
    var claims: Int { state.withLock { $0.claims } }
    func emptyClaims(_ target: Destination) -> Int { state.withLock { $0.emptyClaims[target] ?? 0 } }
    var recoveries: Int { state.withLock { $0.recoveries } }
    var claimsAfterCompletion: Int { state.withLock { $0.claimsAfterCompletion } }

    func claimNext(target: Destination, now: Date, lease: TimeInterval, owner: String) async throws(JournalError) -> ClaimedTransmission? {
        state.withLock { s in Self.claim(&s, target: target, now: now, lease: lease, owner: owner) }
    }

    private static func claim(_ s: inout State, target: Destination, now: Date, lease: TimeInterval, owner: String) -> ClaimedTransmission? {
        let due = s.transmissions.values
            .filter { $0.target == target && ($0.state == .queued || $0.state == .retryWait) && ($0.nextAttemptAt ?? .distantPast) <= now }
            .min { ($0.nextAttemptAt ?? .distantPast, $0.id) < ($1.nextAttemptAt ?? .distantPast, $1.id) }
        guard var t = due else {
            s.emptyClaims[target, default: 0] += 1
            return nil
        }
        t.state = .sending
        t.attempts += 1
        t.leaseOwner = owner
        t.leaseExpiresAt = now.addingTimeInterval(lease)
        t.updatedAt = now
        s.transmissions[t.id] = t
        let attemptID = s.nextAttemptID
        s.nextAttemptID += 1
        s.attempts[attemptID] = (t.id, nil)
        s.claims += 1
        return ClaimedTransmission(transmission: t, document: s.documents[t.id]!, attemptID: attemptID)
    }

    /// Both under one lock, as the SQL stores do both in one transaction.
    func complete(_ claim: ClaimedTransmission, owner: String, outcome: TransmissionOutcome, now: Date,
                  thenClaim next: Destination, lease: TimeInterval) async throws(JournalError) -> (CompletionResult, ClaimedTransmission?) {
        let done = try state.withLock { s throws(JournalError) in
            let result = try complete(&s, claim, owner: owner, outcome: outcome, now: now)
            let claimed = Self.claim(&s, target: next, now: now, lease: lease, owner: owner)
            if claimed != nil { s.claimsAfterCompletion += 1 }
            return (result, claimed)
        }
        duringCompletionClaim.withLock { $0 }?()
        return done
    }

    func recordMessageID(_ messageID: String, transmissionID: Int64, owner: String) async throws(JournalError) {
        try state.withLock { s throws(JournalError) in
            var t = try Self.leased(s, transmissionID, owner)
            t.messageID = messageID
            s.transmissions[t.id] = t
        }
    }

    func complete(_ claim: ClaimedTransmission, owner: String, outcome: TransmissionOutcome, now: Date) async throws(JournalError) -> CompletionResult {
        try state.withLock { s throws(JournalError) in try complete(&s, claim, owner: owner, outcome: outcome, now: now) }
    }

    private func complete(_ s: inout State, _ claim: ClaimedTransmission, owner: String, outcome: TransmissionOutcome,
                          now: Date) throws(JournalError) -> CompletionResult {
        var t = try Self.leased(s, claim.transmission.id, owner)
        let plan = try CompletionPlan(t, outcome: outcome, policy: policy, jitter: 0, now: now)
        t.state = plan.result.state
        t.leaseOwner = nil
        t.leaseExpiresAt = nil
        t.updatedAt = now
        if let lastError = plan.lastError {
            t.nextAttemptAt = plan.result.nextAttemptAt
            t.lastError = lastError
            t.lastErrorAt = now
            t.alerted = true
        } else {
            t.nextAttemptAt = nil
            t.needsRecheck = false
            t.alerted = false
        }
        s.transmissions[t.id] = t
        s.attempts[claim.attemptID]?.outcome = plan.attemptOutcome
        return plan.result
    }

    func recoverInterrupted(now: Date) async throws(JournalError) -> [Transmission] {
        state.withLock { s in
            s.recoveries += 1
            var recovered: [Transmission] = []
            for var t in s.transmissions.values where t.state == .sending && (t.leaseExpiresAt ?? .distantFuture) <= now {
                t.state = .queued
                t.needsRecheck = true
                t.leaseOwner = nil
                t.leaseExpiresAt = nil
                t.nextAttemptAt = now
                s.transmissions[t.id] = t
                recovered.append(t)
            }
            return recovered.sorted { $0.id < $1.id }
        }
    }

    private static func leased(_ s: State, _ id: Int64, _ owner: String) throws(JournalError) -> Transmission {
        guard let t = s.transmissions[id] else { throw .unknownTransmission(id) }
        guard t.state == .sending, t.leaseOwner == owner else { throw .leaseLost(transmissionID: id, owner: owner) }
        return t
    }
}
