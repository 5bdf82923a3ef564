import Foundation
import PasserelleCore

/// A blob as a store keeps it: its digest, and the bytes that must also go into the database
/// in the transaction that points at them (PostgreSQL; nil for SQLite's files).
struct StoredBlob: Sendable {
    var sha256: String
    var inDatabase: Data?
}

/// What the two SQL stores do differently; everything else (``JournalStore``'s operations) is
/// written once below, over ``JournalConnection`` and ``JournalStatement``.
///
/// - How a transaction runs: SQLite on its ``SQLiteCommitQueue`` thread (`BEGIN IMMEDIATE`,
///   group commit); PostgreSQL on its connection's thread, with row locks (``SQLDialect``).
/// - Where blobs live: SQLite in ``BlobStore`` files; PostgreSQL also in the `blobs` table.
protocol SQLJournalBackend: JournalStore {
    associatedtype Row: JournalColumns
    typealias Connection = JournalConnection<Row>
    var policy: RetryPolicy { get }
    /// The blob files (SQLite: the only copy; PostgreSQL: this node's cache).
    var blobs: BlobStore { get }
    /// The retry jitter, in [0, 1).
    func jitter() -> Double
    /// Statements outside any transaction (each one atomic by itself).
    func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T
    /// A long read (a count over every row) where it holds no writer up: SQLite runs it on a
    /// read-only connection of its own (in WAL mode a reader never blocks the writer).
    func readAside<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T
    /// One write transaction.
    func write<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T
    /// One write transaction that inserts a document after checking it is new; `raced` tells
    /// what another writer stored when the insert still hits a unique key.
    func insert<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T,
                             raced: @escaping @Sendable (Connection) throws -> T?) async throws(JournalError) -> T
    /// One read-only transaction: its statements see the same journal.
    func snapshot<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T
    func storeBlob(parts: [Data]) throws(JournalError) -> StoredBlob
    func storeBlob(file: URL, sha256: String) throws(JournalError) -> StoredBlob
    /// A blob already in ``BlobStore`` (a large CDA written there as a file).
    func storedBlob(_ sha256: String) throws(JournalError) -> StoredBlob
    /// An admission's intake record and built CDA, written and fsynced off the cooperative pool.
    func storeBlobs(of admission: Admission) async throws(JournalError) -> (record: StoredBlob, built: StoredBlob)
}

extension SQLJournalBackend {
    /// PostgreSQL: any pooled connection already reads beside the writers.
    func readAside<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T {
        try await read(body)
    }

    // MARK: - Documents

    public func accept(_ document: JournalDocument, content: Data, input: InputFile?, stay: JournalStay?,
                       now: Date) async throws(JournalError) -> AcceptResult {
        try await accept(document, contentParts: [content], input: input, stay: stay, now: now)
    }

    public func accept(_ document: JournalDocument, contentParts: [Data], input: InputFile?, stay: JournalStay?,
                       now: Date) async throws(JournalError) -> AcceptResult {
        // Cheap check first, so a file dropped twice does not even rewrite its blob.
        if let earlier = try await read({ db in try db.duplicate(of: document, input: input) }) { return earlier }
        let blob = try storeBlob(parts: contentParts)
        var stored = document
        stored.blobSHA256 = blob.sha256
        stored.receivedAt = now
        stored.state = .received
        let accepted = stored
        return try await insert({ db -> AcceptResult in
            // Again inside the transaction: another process or node may have accepted it meanwhile.
            if let earlier = try db.duplicate(of: document, input: input) { return earlier }
            try db.keep([blob], now: now)
            try db.insertDocument(accepted, input: input, stay: stay, now: now)
            return .accepted(accepted)
        }, raced: { db in try db.duplicate(of: document, input: input) })
    }

    public func admit(_ admission: Admission, now: Date) async throws(JournalError) -> AdmitResult {
        // Blobs first, fsynced: the row that points at them must never outlive them. A duplicate
        // found below leaves them unreferenced (content-addressed: harmless, and rare).
        let (record, built) = try await storeBlobs(of: admission)
        var stored = admission.document
        stored.blobSHA256 = record.sha256
        stored.builtSHA256 = built.sha256
        stored.receivedAt = now
        stored.state = .queued
        let document = stored, input = admission.input, stay = admission.stay, targets = admission.targets
        let deadline = now.addingTimeInterval(policy.deadline)
        return try await insert({ db -> AdmitResult in
            if let earlier = try db.duplicate(of: document, input: input) { return AdmitResult(earlier) }
            try db.keep([record, built], now: now)
            try db.insertDocument(document, input: input, stay: stay, now: now)
            let transmissions = try db.insertTransmissions(documentID: document.id, version: document.version,
                                                           targets: targets, deadline: deadline, now: now)
            return .admitted(document, transmissions)
        }, raced: { db in try db.duplicate(of: document, input: input).map(AdmitResult.init) })
    }

    public func markBuilt(documentID: String, version: Int, built: Data, now: Date) async throws(JournalError) -> JournalDocument {
        try await markBuilt(documentID: documentID, version: version, blob: try storeBlob(parts: [built]), now: now)
    }

    public func markBuilt(documentID: String, version: Int, builtBlob sha: String, now: Date) async throws(JournalError) -> JournalDocument {
        try await markBuilt(documentID: documentID, version: version, blob: try storedBlob(sha), now: now)
    }

    private func markBuilt(documentID: String, version: Int, blob: StoredBlob, now: Date) async throws(JournalError) -> JournalDocument {
        try await write { db in
            let document = try db.requireDocument(id: documentID, version: version, lock: true)
            guard document.state == .received else {
                throw JournalError.documentState(id: documentID, version: version, state: document.state, expected: [.received])
            }
            try db.keep([blob], now: now)
            try db.run(.markBuilt, blob.sha256, JournalTime.millis(now), documentID, version)
            return try db.requireDocument(id: documentID, version: version)
        }
    }

    public func stay(finess: String, stayID: String) async throws(JournalError) -> JournalStay? {
        try await read { db in
            try db.rows(.stay, finess, stayID).first.map { row in
                JournalStay(stayID: stayID, finess: finess, admittedAt: JournalTime.date(millis: row.integer("admitted_at")),
                            dischargedAt: JournalTime.date(millis: row.integer("discharged_at")))
            }
        }
    }

    public func recordStay(_ stay: JournalStay, now: Date) async throws(JournalError) {
        try await write { db in try db.upsertStay(stay) }
    }

    public func document(id: String, version: Int) async throws(JournalError) -> JournalDocument? {
        try await read { db in try db.rows(.document(lock: false), id, version).first.map(JournalRowDecoder.document) }
    }

    public func documents(in state: DocumentState) async throws(JournalError) -> [JournalDocument] {
        try await read { db in try db.rows(.documentsInState, state.rawValue).map(JournalRowDecoder.document) }
    }

    public func documentVersions(id: String) async throws(JournalError) -> [JournalDocument] {
        try await read { db in try db.rows(.documentVersions, id).map(JournalRowDecoder.document) }
    }

    public func hourlyActivity(from: Date, until: Date) async throws(JournalError) -> [HourlyActivity] {
        try await read { db in
            try db.rows(.hourlyActivity, JournalTime.millis(from), JournalTime.millis(until)).compactMap { row in
                guard let bucket = row.integer("bucket") else { return nil }
                return HourlyActivity(hour: until.addingTimeInterval(-3600 * TimeInterval(bucket + 1)),
                                      received: Int(row.integer("received") ?? 0), acknowledged: Int(row.integer("acknowledged") ?? 0))
            }
        }
    }

    // MARK: - Transmissions

    public func enqueue(documentID: String, version: Int, targets: [Destination], now: Date) async throws(JournalError) -> [Transmission] {
        let deadline = now.addingTimeInterval(policy.deadline)
        return try await write { db in
            let document = try db.requireDocument(id: documentID, version: version, lock: true)
            guard document.state == .built || document.state == .queued else {
                throw JournalError.documentState(id: documentID, version: version, state: document.state, expected: [.built, .queued])
            }
            let queued = try db.insertTransmissions(documentID: documentID, version: version, targets: targets,
                                                    deadline: deadline, now: now)
            try db.run(.markQueued, JournalTime.millis(now), documentID, version)
            return queued
        }
    }

    public func claimNext(target: Destination, now: Date, lease: TimeInterval, owner: String) async throws(JournalError) -> ClaimedTransmission? {
        try await write { db in try Self.claimNext(db, target: target, now: now, lease: lease, owner: owner) }
    }

    private static func claimNext(_ db: Connection, target: Destination, now: Date, lease: TimeInterval,
                                  owner: String) throws -> ClaimedTransmission? {
        // Picked and updated in one statement (see ``SQLDialect/skipLocked``); the UPDATE and
        // the attempt commit together.
        guard let row = try db.rows(.claim, owner, JournalTime.millis(now.addingTimeInterval(lease)), JournalTime.millis(now),
                                    target.rawValue).first else { return nil }
        let transmission = try JournalRowDecoder.transmission(row)
        guard let attemptID = try db.rows(.insertAttempt, transmission.id, JournalTime.millis(now)).first?.integer("id") else {
            throw JournalError.database("no attempt id returned for transmission \(transmission.id)")
        }
        let document = try db.requireDocument(id: transmission.documentID, version: transmission.version)
        return ClaimedTransmission(transmission: transmission, document: document, attemptID: attemptID)
    }

    public func recordMessageID(_ messageID: String, transmissionID: Int64, owner: String) async throws(JournalError) {
        try await write { db in
            _ = try db.requireLease(id: transmissionID, owner: owner)
            try db.run(.setMessageID, messageID, transmissionID)
        }
    }

    public func complete(_ claim: ClaimedTransmission, owner: String, outcome: TransmissionOutcome,
                         now: Date) async throws(JournalError) -> CompletionResult {
        let jitter = jitter(), policy = policy
        return try await write { db in
            try Self.complete(db, claim, owner: owner, outcome: outcome, policy: policy, jitter: jitter, now: now)
        }
    }

    public func complete(_ claim: ClaimedTransmission, owner: String, outcome: TransmissionOutcome, now: Date,
                         thenClaim next: Destination, lease: TimeInterval) async throws(JournalError) -> (CompletionResult, ClaimedTransmission?) {
        let jitter = jitter(), policy = policy
        return try await write { db in
            let result = try Self.complete(db, claim, owner: owner, outcome: outcome, policy: policy, jitter: jitter, now: now)
            return (result, try Self.claimNext(db, target: next, now: now, lease: lease, owner: owner))
        }
    }

    private static func complete(_ db: Connection, _ claim: ClaimedTransmission, owner: String, outcome: TransmissionOutcome,
                                 policy: RetryPolicy, jitter: Double, now: Date) throws -> CompletionResult {
        let t = try db.requireLease(id: claim.transmission.id, owner: owner)
        let plan = try CompletionPlan(t, outcome: outcome, policy: policy, jitter: jitter, now: now)
        if let lastError = plan.lastError {
            try db.run(.completeFailure, plan.result.state.rawValue, JournalTime.millis(plan.result.nextAttemptAt), lastError,
                       JournalTime.millis(now), plan.failure?.failure, plan.failure?.code, t.id, plan.pendingRecipients)
        } else {
            try db.run(.completeSuccess, plan.result.state.rawValue, JournalTime.millis(now), t.id, plan.note,
                       plan.note == nil ? nil : JournalTime.millis(now))
        }
        try db.run(.endAttempt, JournalTime.millis(now), plan.attemptOutcome, plan.response, claim.attemptID, t.id)
        return plan.result
    }

    public func acknowledge(transmissionID: Int64, kind: AcknowledgementKind, detail: String?, now: Date) async throws(JournalError) -> Transmission {
        try await write { db in
            let t = try db.requireTransmission(id: transmissionID, lock: true)
            guard let rank = t.acknowledgementRank else {
                throw JournalError.illegalTransition(transmissionID: t.id, from: t.state, to: kind.state)
            }
            try db.run(.insertAcknowledgement, t.id, kind.rawValue, JournalTime.millis(now), detail.map(JournalText.bounded))
            // Acknowledgements may arrive out of order (read before delivered): only move forward.
            if let newRank = kind.state.successRank, newRank > rank {
                try db.run(.setState, kind.state.rawValue, JournalTime.millis(now), t.id)
            }
            return try db.requireTransmission(id: t.id)
        }
    }

    public func acknowledgeFailure(transmissionID: Int64, reason: String, now: Date) async throws(JournalError) -> Transmission {
        try await write { db in
            let t = try db.requireTransmission(id: transmissionID, lock: true)
            if t.state == .failed { return t }
            guard t.state.canMove(to: .failed), TransmissionState.succeeded.contains(t.state) else {
                throw JournalError.illegalTransition(transmissionID: t.id, from: t.state, to: .failed)
            }
            try db.run(.failAfterSuccess, JournalText.bounded(reason), JournalTime.millis(now), t.id)
            return try db.requireTransmission(id: t.id)
        }
    }

    public func transmission(messageID: String) async throws(JournalError) -> Transmission? {
        try await read { db in try db.rows(.transmissionByMessageID, messageID).first.map(JournalRowDecoder.transmission) }
    }

    public func recoverInterrupted(now: Date) async throws(JournalError) -> [Transmission] {
        let held = now.addingTimeInterval(policy.interruptedHold)
        return try await write { db in
            let ids = try db.rows(.recoverExpired, JournalTime.millis(now), JournalTime.millis(held))
                .compactMap { $0.integer("id") }.sorted()
            for id in ids { try db.run(.interruptAttempts, JournalTime.millis(now), id) }
            return try ids.map { try db.requireTransmission(id: $0) }
        }
    }

    public func confirmInterruptedSend(transmissionID: Int64, now: Date) async throws(JournalError) -> Transmission? {
        try await write { db -> Transmission? in
            let t = try db.requireTransmission(id: transmissionID, lock: true)
            guard t.awaitsInterruptedOutcome(now: now) else { return nil }
            try db.run(.confirmSent, JournalTime.millis(now), t.id)
            try db.run(.interruptAttempts, JournalTime.millis(now), t.id)
            return try db.requireTransmission(id: t.id)
        }
    }

    public func requeue(_ filter: TransmissionFilter, now: Date) async throws(JournalError) -> [Transmission] {
        try await requeue(filter, includingSucceeded: false, now: now)
    }

    public func requeue(_ filter: TransmissionFilter, includingSucceeded: Bool, now: Date) async throws(JournalError) -> [Transmission] {
        let deadline = now.addingTimeInterval(policy.deadline)
        return try await write { db in try db.requeue(filter, includingSucceeded: includingSucceeded, deadline: deadline, now: now) }
    }

    // MARK: - Queries

    public func transmission(id: Int64) async throws(JournalError) -> Transmission? {
        try await read { db in try db.rows(.transmission(lock: false), id).first.map(JournalRowDecoder.transmission) }
    }

    public func transmissions(matching filter: TransmissionFilter) async throws(JournalError) -> [Transmission] {
        try await read { db in try db.transmissions(matching: filter, lock: false) }
    }

    public func attempts(transmissionID: Int64) async throws(JournalError) -> [Attempt] {
        try await read { db in
            try db.rows(.attempts, transmissionID).map { row in
                Attempt(id: row.integer("id") ?? 0, transmissionID: row.integer("transmission_id") ?? 0,
                        startedAt: JournalTime.date(millis: row.integer("started_at")) ?? .distantPast,
                        endedAt: JournalTime.date(millis: row.integer("ended_at")),
                        outcome: row.text("outcome"), response: row.text("response"))
            }
        }
    }

    public func acknowledgements(transmissionID: Int64) async throws(JournalError) -> [Acknowledgement] {
        try await read { db in
            try db.rows(.acknowledgements, transmissionID).compactMap { row in
                guard let kind = row.text("kind").flatMap(AcknowledgementKind.init(rawValue:)) else { return nil }
                return Acknowledgement(transmissionID: transmissionID, kind: kind,
                                       receivedAt: JournalTime.date(millis: row.integer("received_at")) ?? .distantPast,
                                       detail: row.text("detail"))
            }
        }
    }

    /// Every row counted (an index scan): beside the writer, so the console's counts on a large
    /// journal never hold the gateway's commits.
    public func stateCounts() async throws(JournalError) -> [StateCount] {
        try await readAside { db in try Self.counts(db.rows(.stateCounts)) }
    }

    public func waitingCounts() async throws(JournalError) -> [StateCount] {
        try await read { db in try Self.counts(db.rows(.waitingCounts)) }
    }

    private static func counts(_ rows: [Row]) -> [StateCount] {
        rows.compactMap { row in
            guard let target = row.text("target").flatMap(Destination.init(rawValue:)),
                  let state = row.text("state").flatMap(TransmissionState.init(rawValue:)) else { return nil }
            return StateCount(target: target, state: state, count: Int(row.integer("n") ?? 0))
        }
    }

    public func oldestWaiting(target: Destination) async throws(JournalError) -> Date? {
        try await read { db in JournalTime.date(millis: try db.rows(.oldestWaiting, target.rawValue).first?.integer("oldest")) }
    }

    public func lastErrors() async throws(JournalError) -> [TargetError] {
        try await read { db in
            try Destination.allCases.compactMap { target in
                guard let row = try db.rows(.lastError, target.rawValue).first else { return nil }
                return TargetError(target: target, transmissionID: row.integer("id") ?? 0, documentID: row.text("document_id") ?? "",
                                   message: row.text("last_error") ?? "",
                                   at: JournalTime.date(millis: row.integer("last_error_at")) ?? .distantPast)
            }
        }
    }

    public func documentCountsByMonth() async throws(JournalError) -> [MonthlyCount] {
        try await read { db in
            try db.rows(.documentCountsByMonth).compactMap { row in
                guard let month = row.text("received_month"),
                      let kind = row.text("kind").flatMap(DocumentKind.init(rawValue:)) else { return nil }
                return MonthlyCount(month: month, kind: kind, count: Int(row.integer("n") ?? 0))
            }
        }
    }

    public func usageCounts(_ query: UsageQuery) async throws(JournalError) -> [UsageCounts] {
        try UsageSQL.validate(query)
        return try await snapshot { db in
            let sets = UsageSQL.sets(query, db.dialect), stays = UsageSQL.stays(query, db.dialect)
            return UsageSQL.counts(sets: try db.query(sets.sql, sets.values), stays: try db.query(stays.sql, stays.values))
        }
    }

    public func recordServiceRun(id: String, host: String, pid: Int, startedAt: Date, now: Date, stopped: Bool) async throws(JournalError) {
        try await write { db in
            _ = try db.change("""
                INSERT INTO service_runs (id, host, pid, started_at, last_seen_at, stopped_at) VALUES (\(db.dialect.parameter(1)), \
                \(db.dialect.parameter(2)), \(db.dialect.parameter(3)), \(db.dialect.parameter(4)), \(db.dialect.parameter(5)), \
                \(db.dialect.parameter(6)))
                ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at, stopped_at = excluded.stopped_at
                """, [id.sqlValue, host.sqlValue, Int64(pid).sqlValue, JournalTime.millis(startedAt).sqlValue, JournalTime.millis(now).sqlValue,
                      (stopped ? JournalTime.millis(now) : nil).sqlValue])
        }
    }

    public func availabilitySamples(from: Date, until: Date) async throws(JournalError) -> (runs: [ServiceRun], attempts: [AttemptSample]) {
        try await snapshot { db in
            let p = { (i: Int) in db.dialect.parameter(i) }
            let values = [JournalTime.millis(from).sqlValue, JournalTime.millis(until).sqlValue]
            let runs = try db.query("""
                SELECT id, started_at, COALESCE(stopped_at, last_seen_at) AS ended_at, stopped_at FROM service_runs
                WHERE started_at < \(p(2)) AND COALESCE(stopped_at, last_seen_at) >= \(p(1)) ORDER BY started_at
                """, values).compactMap { row -> ServiceRun? in
                guard let id = row.text("id"), let start = JournalTime.date(millis: row.integer("started_at")),
                      let end = JournalTime.date(millis: row.integer("ended_at")) else { return nil }
                return ServiceRun(id: id, startedAt: start, endedAt: end, stopped: row.integer("stopped_at") != nil)
            }
            // A week before the range too: an outage that began before it is measured from its start.
            let attempts = try db.query("""
                SELECT t.target, a.started_at, a.ended_at, a.outcome FROM attempts a JOIN transmissions t ON t.id = a.transmission_id
                WHERE a.started_at >= \(p(1)) AND a.started_at < \(p(2)) AND a.ended_at IS NOT NULL ORDER BY a.started_at, a.id
                """, [JournalTime.millis(from.addingTimeInterval(-7 * 86_400)).sqlValue, values[1]]).compactMap { row -> AttemptSample? in
                guard let target = row.text("target").flatMap(Destination.init(rawValue:)),
                      let start = JournalTime.date(millis: row.integer("started_at")),
                      let end = JournalTime.date(millis: row.integer("ended_at")), let outcome = row.text("outcome") else { return nil }
                return AttemptSample(target: target, startedAt: start, endedAt: end, outcome: outcome)
            }
            return (runs, attempts)
        }
    }

    public func usageDelaySamples(_ query: UsageQuery) async throws(JournalError) -> [DelaySample] {
        try UsageSQL.validate(query)
        return try await snapshot { db in
            let s = UsageSQL.delaySamples(query, db.dialect)
            return UsageSQL.delaySamples(try db.query(s.sql, s.values))
        }
    }

    public func usageEvidence(_ query: UsageQuery) async throws(JournalError) -> UsageEvidence {
        try UsageSQL.validate(query)
        return try await snapshot { db in
            let sets = UsageSQL.setEvidence(query, db.dialect), stays = UsageSQL.stayEvidence(query, db.dialect)
            return UsageSQL.evidence(sets: try db.query(sets.sql, sets.values), stays: try db.query(stays.sql, stays.values))
        }
    }
}

/// The steps several operations share, inside their transaction.
extension JournalConnection {
    /// What an earlier accept stored for the same input bytes or the same document (id or set, and version).
    func duplicate(of document: JournalDocument, input: InputFile?) throws -> AcceptResult? {
        if let input, let row = try rows(.inputBySHA, input.sha256).first {
            return .duplicateInput(documentID: row.text("document_id"), version: row.integer("version").map { Int($0) })
        }
        if let row = try rows(.documentOrSet, document.id, document.version, document.setID).first {
            return .duplicateDocument(try JournalRowDecoder.document(row))
        }
        return nil
    }

    func keep(_ blobs: [StoredBlob], now: Date) throws {
        for blob in blobs { if let content = blob.inDatabase { try run(.storeBlob, blob.sha256, content, JournalTime.millis(now)) } }
    }

    /// The input that brought `document` (so the same bytes are recognised), its stay, and its
    /// row, in the state, blob digests and times `document` carries.
    func insertDocument(_ document: JournalDocument, input: InputFile?, stay: JournalStay?, now: Date) throws {
        if let input {
            try run(.insertInput, input.sha256, input.fileName, JournalTime.millis(now), document.id, document.version)
        }
        if let stay { try upsertStay(stay) }
        try run(.insertDocument, document.id, document.version, document.setID, document.kind.rawValue, document.maskedINS,
                document.patientKey, document.identityStatus, document.finess, document.stayID, document.blobSHA256,
                document.builtSHA256, document.state.rawValue, JournalTime.millis(now), JournalTime.month(now),
                document.action.rawValue)
    }

    func upsertStay(_ stay: JournalStay) throws {
        try run(.upsertStay, stay.finess, stay.stayID, JournalTime.millis(stay.admittedAt), JournalTime.millis(stay.dischargedAt),
                stay.dischargedAt.map(JournalTime.month))
    }

    /// One queued transmission per target (an existing one is kept, never duplicated); returns them as stored.
    func insertTransmissions(documentID: String, version: Int, targets: [Destination], deadline: Date,
                             now: Date) throws -> [Transmission] {
        for target in targets {
            try run(.insertTransmission, documentID, version, target.rawValue, JournalTime.millis(now), JournalTime.month(now),
                    JournalTime.millis(deadline))
        }
        return try targets.compactMap { target in
            try rows(.transmissionForTarget, documentID, version, target.rawValue).first.map { try JournalRowDecoder.transmission($0) }
        }
    }

    /// Operator resend, inside the caller's transaction: see ``JournalStore/requeue(_:includingSucceeded:now:)``.
    func requeue(_ filter: TransmissionFilter, includingSucceeded: Bool, deadline: Date, now: Date) throws -> [Transmission] {
        let allowed: Set<TransmissionState> = includingSucceeded ? TransmissionState.succeeded.union([.failed]) : [.failed]
        var eligible = filter
        // filter.states narrows the choice (e.g. only acknowledged ones), never widens it.
        eligible.states = filter.states.isEmpty || !includingSucceeded ? allowed : filter.states.intersection(allowed)
        // A document whose content retention purged has nothing left to send: never queued
        // again (`passerelle resend` names them with their purge date).
        let selected = eligible.states.isEmpty ? [] : try transmissions(matching: eligible, lock: true).filter {
            try requireDocument(id: $0.documentID, version: $0.version).purgedAt == nil
        }
        for t in selected {
            // A new incident: fresh attempt budget and deadline, and a new alert if it fails again.
            // Attempts and acknowledgements are never touched: the new attempt is appended.
            try run(.requeue, JournalTime.millis(now), JournalTime.millis(deadline), t.id, t.state.rawValue)
        }
        return try selected.map { try requireTransmission(id: $0.id) }
    }

    func transmissions(matching filter: TransmissionFilter, lock: Bool) throws -> [Transmission] {
        let statement = JournalStatement.transmissions(matching: filter, lock: lock, dialect)
        return try query(statement.sql, statement.values).map { try JournalRowDecoder.transmission($0) }
    }

    func requireDocument(id: String, version: Int, lock: Bool = false) throws -> JournalDocument {
        guard let row = try rows(.document(lock: lock), id, version).first else { throw JournalError.unknownDocument(id: id, version: version) }
        return try JournalRowDecoder.document(row)
    }

    func requireTransmission(id: Int64, lock: Bool = false) throws -> Transmission {
        guard let row = try rows(.transmission(lock: lock), id).first else { throw JournalError.unknownTransmission(id) }
        return try JournalRowDecoder.transmission(row)
    }

    /// The transmission, locked, if it is still `sending` under `owner`'s lease.
    func requireLease(id: Int64, owner: String) throws -> Transmission {
        let t = try requireTransmission(id: id, lock: true)
        guard t.state == .sending, t.leaseOwner == owner else { throw JournalError.leaseLost(transmissionID: id, owner: owner) }
        return t
    }
}

extension JournalError {
    /// A failure as the journal reports it: its own errors unchanged, a backend's (SQLiteError,
    /// PostgreSQL's) with the backend's message.
    static func wrapping(_ error: any Error) -> JournalError {
        error as? JournalError ?? .database(String(describing: error))
    }
}
