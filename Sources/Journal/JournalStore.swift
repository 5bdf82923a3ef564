import Foundation
import PasserelleCore

/// Journal failures. Messages carry document/transmission ids, never patient data.
public enum JournalError: Error, Sendable, CustomStringConvertible, LocalizedError {
    /// The database refused or failed (message from the backend itself).
    case database(String)
    /// The blob folder or a blob file could not be written or read; `cause` when the folder's
    /// state says why (full, read-only, permission, missing), see ``FileSystemCause``.
    case blobStore(path: String, reason: String, cause: FileSystemCause? = nil)
    /// The database was written by a newer Passerelle.
    case schemaTooNew(found: Int, supported: Int)
    /// The requested state change is not allowed from the current state.
    case illegalTransition(transmissionID: Int64, from: TransmissionState, to: TransmissionState)
    /// The sender's lease was lost (expired and recovered, or claimed by another worker):
    /// its result must not be recorded over someone else's attempt.
    case leaseLost(transmissionID: Int64, owner: String)
    case unknownTransmission(Int64)
    /// The document is not in a state that allows the operation (e.g. enqueue before build).
    case documentState(id: String, version: Int, state: DocumentState, expected: [DocumentState])
    case unknownDocument(id: String, version: Int)
    /// An operator command asked for something the journal refuses (``OperatorQueue``).
    case operatorRequest(String)

    public var description: String {
        switch self {
        case .database(let m): "journal database error: \(m)"
        case .blobStore(let path, let reason, let cause?):
            "journal blob store error at \(path): \(reason): \(cause): \(cause.fix(folder: URL(fileURLWithPath: path).deletingLastPathComponent().path, key: "[journal] path"))"
        case .blobStore(let path, let reason, nil):
            "journal blob store error at \(path): \(reason); check the folder's owner, permissions and free space"
        case .schemaTooNew(let found, let supported):
            "the journal schema is version \(found) but this passerelle supports up to \(supported): upgrade passerelle or restore a matching backup"
        case .illegalTransition(let id, let from, let to):
            "transmission \(id) cannot go from \(from.rawValue) to \(to.rawValue)"
        case .leaseLost(let id, let owner):
            "transmission \(id) is no longer leased by \(owner) (lease expired and recovered, or claimed elsewhere); its result was not recorded"
        case .unknownTransmission(let id): "no transmission \(id) in the journal"
        case .documentState(let id, let version, let state, let expected):
            "document \(id) version \(version) is \(state.rawValue); this needs it \(expected.map(\.rawValue).joined(separator: " or "))"
        case .unknownDocument(let id, let version): "no document \(id) version \(version) in the journal"
        case .operatorRequest(let message): message
        }
    }

    public var errorDescription: String? { description }
}

/// The gateway's durable queue and history, split by job: each stage holds only the part it
/// uses (admission, delivery, acknowledgements, operator queries, usage counts, service runs), so a test can
/// give a stage an in-memory queue and a stage cannot reach into another's rows. The SQLite (one
/// node) and PostgreSQL (several nodes sharing a queue) stores implement all of them, from one
/// statement table (``JournalSQL``). Every method is one transaction.
public protocol JournalStore: AdmissionJournal, DeliveryQueue, AcknowledgementJournal, JournalQueries, UsageCounting, ServiceRunJournal {}

/// What admission writes: accepted documents, their built CDA and queued transmissions, stays
/// from ADT events; and the reads it needs to place a new version after an earlier one.
public protocol AdmissionJournal: Sendable {
    /// Stores the blob (0600, fsynced) then, in one transaction, the input's digest, the stay and
    /// the document. Only after this returns may the caller delete the dropped file.
    func accept(_ document: JournalDocument, content: Data, input: InputFile?, stay: JournalStay?,
                now: Date) async throws(JournalError) -> AcceptResult

    /// ``accept(_:content:input:stay:now:)`` with the content given in parts (a record header
    /// and a large PDF), stored without joining them in memory where the backend allows.
    func accept(_ document: JournalDocument, contentParts: [Data], input: InputFile?, stay: JournalStay?,
                now: Date) async throws(JournalError) -> AcceptResult

    /// Stores an accepted, built document and queues its transmissions in one transaction (the
    /// two blobs are fsynced first). Concurrent admissions share the commit's fsync where the
    /// store can (SQLite: group commit on the journal's thread).
    func admit(_ admission: Admission, now: Date) async throws(JournalError) -> AdmitResult

    /// Marks a received document as built, pointing it at the built CDA (stored as a blob).
    func markBuilt(documentID: String, version: Int, built: Data, now: Date) async throws(JournalError) -> JournalDocument

    /// ``markBuilt(documentID:version:built:now:)`` for a CDA already in ``BlobStore`` under
    /// `sha256` (a large document written there as a file, see ``BlobStore/put(file:sha256:)``).
    func markBuilt(documentID: String, version: Int, builtBlob sha256: String, now: Date) async throws(JournalError) -> JournalDocument

    /// Creates one `queued` transmission per target; an existing (document, version, target)
    /// is returned unchanged, never duplicated.
    func enqueue(documentID: String, version: Int, targets: [Destination], now: Date) async throws(JournalError) -> [Transmission]

    /// Records or completes a stay from an ADT event (A01 admission, A03 discharge…): the
    /// denominator of the per-stay usage rates. Dates already known are kept when `stay` lacks them.
    func recordStay(_ stay: JournalStay, now: Date) async throws(JournalError)
    func document(id: String, version: Int) async throws(JournalError) -> JournalDocument?
    func documents(in state: DocumentState) async throws(JournalError) -> [JournalDocument]
}

/// What the workers do with the queue. A send starts only with a claim, by
/// ``claimNext(target:now:lease:owner:)`` or by the completion of the worker's previous send
/// (``complete(_:owner:outcome:now:thenClaim:lease:)``): it moves one due transmission to
/// `sending` atomically (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED`
/// then `UPDATE` in one transaction), so two workers or two processes never claim the same row.
public protocol DeliveryQueue: Sendable {
    /// Atomically claims the oldest due transmission for `target` (queued, or retry-wait whose
    /// time has come), moving it to `sending` with a lease held by `owner` until `now + lease`,
    /// and opens an attempt. Nil when nothing is due.
    func claimNext(target: Destination, now: Date, lease: TimeInterval, owner: String) async throws(JournalError) -> ClaimedTransmission?

    /// Keeps the SMTP Message-ID (or any peer-side id) chosen before the first byte is sent.
    func recordMessageID(_ messageID: String, transmissionID: Int64, owner: String) async throws(JournalError)

    /// Closes the claim: success, retry-wait (per the store's ``RetryPolicy``) or failed.
    func complete(_ claim: ClaimedTransmission, owner: String, outcome: TransmissionOutcome,
                  now: Date) async throws(JournalError) -> CompletionResult

    /// ``complete(_:owner:outcome:now:)``, then ``claimNext(target:now:lease:owner:)`` for
    /// `next` in the same transaction: a busy worker's two journal writes between sends become
    /// one commit. Atomic: when it throws, neither happened. Nil claim when nothing is due.
    func complete(_ claim: ClaimedTransmission, owner: String, outcome: TransmissionOutcome, now: Date,
                  thenClaim next: Destination, lease: TimeInterval) async throws(JournalError) -> (CompletionResult, ClaimedTransmission?)

    /// Puts `sending` rows whose lease has expired back to `queued` with `needsRecheck`, and
    /// marks their open attempt `interrupted`. Returns the recovered transmissions. A row with a
    /// recorded Message-ID may have reached the peer: it is due only after the policy's
    /// ``RetryPolicy/interruptedHold``, the others at once.
    func recoverInterrupted(now: Date) async throws(JournalError) -> [Transmission]
}

extension DeliveryQueue {
    /// Two steps where the store has no shared transaction (the tests' in-memory queue): a
    /// claim that fails after the completion is reported as nothing due, and the worker's next
    /// ``claimNext(target:now:lease:owner:)`` meets the error itself.
    public func complete(_ claim: ClaimedTransmission, owner: String, outcome: TransmissionOutcome, now: Date,
                         thenClaim next: Destination, lease: TimeInterval) async throws(JournalError) -> (CompletionResult, ClaimedTransmission?) {
        let result = try await complete(claim, owner: owner, outcome: outcome, now: now)
        return (result, try? await claimNext(target: next, now: now, lease: lease, owner: owner))
    }
}

/// What the acknowledgement poller records (DSN, MDN): found by the Message-ID kept at send time.
public protocol AcknowledgementJournal: Sendable {
    /// Records an acknowledgement and moves the transmission forward (never backwards).
    func acknowledge(transmissionID: Int64, kind: AcknowledgementKind, detail: String?, now: Date) async throws(JournalError) -> Transmission

    /// A negative acknowledgement after a successful send (MSSanté DSN "failed", MDN with an
    /// integration error): a `sent`, `acknowledged` or `delivered` transmission becomes `failed`
    /// with `reason` as its last error. Already failed: unchanged. Read: `illegalTransition`.
    func acknowledgeFailure(transmissionID: Int64, reason: String, now: Date) async throws(JournalError) -> Transmission

    /// The transmission whose recorded SMTP Message-ID is `messageID` (as `<id@domain>`).
    func transmission(messageID: String) async throws(JournalError) -> Transmission?

    /// An acknowledgement (DSN, MDN) names a transmission whose last send was interrupted: the
    /// peer did take that mail, so it must not go again. A transmission that waits to be sent
    /// again after a crash (``Transmission/awaitsInterruptedOutcome(now:)``) becomes `sent`, its
    /// open attempt closed as `interrupted`; the caller then records the acknowledgement itself.
    /// Nil (nothing changed) when the transmission is in no such state.
    func confirmInterruptedSend(transmissionID: Int64, now: Date) async throws(JournalError) -> Transmission?
}

/// What operators and monitors read (status, show, queue, readiness), and the operator resend.
public protocol JournalQueries: Sendable {
    /// Operator resend: failed transmissions matching `filter` go back to `queued`.
    func requeue(_ filter: TransmissionFilter, now: Date) async throws(JournalError) -> [Transmission]

    /// Operator resend that may also take transmissions that succeeded (sent, acknowledged,
    /// delivered, read) when `includingSucceeded` is true: they go back to `queued` with a fresh
    /// retry budget and no Message-ID (a new mail, not a crash recheck); their attempts and
    /// acknowledgements are kept. With `includingSucceeded` false this is ``requeue(_:now:)``.
    func requeue(_ filter: TransmissionFilter, includingSucceeded: Bool, now: Date) async throws(JournalError) -> [Transmission]
    func transmission(id: Int64) async throws(JournalError) -> Transmission?

    /// One stay, as recorded from documents and ADT events.
    func stay(finess: String, stayID: String) async throws(JournalError) -> JournalStay?
    func transmissions(matching filter: TransmissionFilter) async throws(JournalError) -> [Transmission]
    func attempts(transmissionID: Int64) async throws(JournalError) -> [Attempt]
    func acknowledgements(transmissionID: Int64) async throws(JournalError) -> [Acknowledgement]

    /// Counts per (target, state), for `passerelle status`.
    func stateCounts() async throws(JournalError) -> [StateCount]

    /// ``stateCounts()`` of the waiting transmissions alone (queued, retry-wait, sending): an
    /// index range, cheap at any journal size (the queue gauges sampled every few seconds).
    func waitingCounts() async throws(JournalError) -> [StateCount]

    /// The oldest `created_at` among waiting transmissions (queued, retry-wait, sending) of `target`.
    func oldestWaiting(target: Destination) async throws(JournalError) -> Date?

    /// The most recent error of each target.
    func lastErrors() async throws(JournalError) -> [TargetError]

    /// Documents received per UTC month and kind.
    func documentCountsByMonth() async throws(JournalError) -> [MonthlyCount]

    /// Every version of one document, oldest first (none: unknown id).
    func documentVersions(id: String) async throws(JournalError) -> [JournalDocument]

    /// The operator actions that changed one transmission, oldest first (the audit trail).
    func operatorActions(transmissionID: Int64) async throws(JournalError) -> [OperatorAction]

    /// Documents received and acknowledged over `from ..< until` per hour counted back from
    /// `until` (the last one ends there), oldest first; hours without any are absent.
    func hourlyActivity(from: Date, until: Date) async throws(JournalError) -> [HourlyActivity]
}

/// The monthly usage report's raw counts.
public protocol UsageCounting: Sendable {
    /// The usage report's raw counts, one element per (period, FINESS) that has any activity,
    /// computed by aggregates over indexed time ranges (see ``UsageQuery`` for what counts where).
    func usageCounts(_ query: UsageQuery) async throws(JournalError) -> [UsageCounts]

    /// The rows behind ``usageCounts(_:)``: every set and stay of the query with each measure's
    /// 0/1 value, from the same predicates (the audit evidence of the report).
    func usageEvidence(_ query: UsageQuery) async throws(JournalError) -> UsageEvidence

    /// The successful transmissions of the sets the report counts, with their times (delays).
    func usageDelaySamples(_ query: UsageQuery) async throws(JournalError) -> [DelaySample]

    /// The runs overlapping `from ..< until`, and the ended attempts of that range (and of the
    /// week before it), oldest first: what the report's availability is computed from.
    func availabilitySamples(from: Date, until: Date) async throws(JournalError) -> (runs: [ServiceRun], attempts: [AttemptSample])
}

/// What `passerelle run` writes of itself (the report's availability).
public protocol ServiceRunJournal: Sendable {
    /// Records a `passerelle run` process: at start, on each heartbeat, and at its stop.
    func recordServiceRun(id: String, host: String, pid: Int, startedAt: Date, now: Date, stopped: Bool) async throws(JournalError)
}

extension AdmissionJournal {
    /// Joins the parts (PostgreSQL keeps blobs in the database: one value).
    public func accept(_ document: JournalDocument, contentParts: [Data], input: InputFile?, stay: JournalStay?,
                       now: Date) async throws(JournalError) -> AcceptResult {
        try await accept(document, content: contentParts.reduce(into: Data()) { $0.append($1) }, input: input, stay: stay, now: now)
    }
}
