import Foundation
import PasserelleCore
import PostgresKit

/// The journal in a PostgreSQL database, for several gateway nodes sharing one queue.
///
/// Same semantics as ``SQLiteJournalStore``; where SQLite serialises writers with `BEGIN
/// IMMEDIATE`, this store locks rows: ``claimNext(target:now:lease:owner:)`` picks its row with
/// `FOR UPDATE SKIP LOCKED` (concurrent claimers take different rows without waiting on each
/// other), and every read-then-write locks the row it reads (`FOR UPDATE`).
///
/// Blobs are stored in the `blobs` table in the same transaction as the row that points at
/// them, so any node can send any document; ``blobs`` is a local cache of that table whose
/// ``BlobStore/get(_:)`` reads through to the database.
public final class PostgresJournalStore: JournalStore {
    public let blobs: BlobStore
    public let policy: RetryPolicy
    private let client: PostgresClient
    private let random: @Sendable () -> Double

    /// Connects, creates or migrates the schema.
    /// - Parameters:
    ///   - cache: the folder of this node's local copy of the blobs.
    ///   - random: jitter source in [0, 1); injectable for deterministic tests.
    public init(configuration: PostgresConfiguration, cache: URL, policy: RetryPolicy = RetryPolicy(),
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                now: Date = Date()) throws(JournalError) {
        do {
            client = try PostgresClient(configuration)
            try client.withConnectionBlocking { db in try PostgresJournalSchema.migrate(db, now: now) }
        } catch {
            throw Self.journalError(error)
        }
        blobs = try BlobStore(root: cache, source: DatabaseBlobs(client: client))
        self.policy = policy
        self.random = random
    }

    /// The schema version in the database.
    public func schemaVersion() async throws(JournalError) -> Int {
        try await run { db in try db.scalar("SELECT MAX(version) FROM schema_migrations")?.int ?? 0 }
    }

    /// Closes the connection (its thread ends after the work already submitted).
    public func close() { client.close() }

    // MARK: - Documents

    public func accept(_ document: JournalDocument, content: Data, input: InputFile?, stay: JournalStay?,
                       now: Date) async throws(JournalError) -> AcceptResult {
        // Cheap check first, so a file dropped twice does not even ship its bytes again.
        if let earlier = try await run({ db in try Self.duplicate(db, of: document, input: input) }) { return earlier }
        let sha = try blobs.put(content)
        var stored = document
        stored.blobSHA256 = sha
        stored.receivedAt = now
        stored.state = .received
        let accepted = stored
        return try await run { db -> AcceptResult in
            do {
                return try db.transaction { () throws -> AcceptResult in
                    // Again inside the transaction: another node may have accepted it meanwhile.
                    if let earlier = try Self.duplicate(db, of: document, input: input) { return earlier }
                    try Self.storeBlob(db, sha: sha, content: content, now: now)
                    if let input {
                        try db.run("INSERT INTO inputs (sha256, file_name, received_at, document_id, version) VALUES ($1, $2, $3, $4, $5)",
                                   [input.sha256, input.fileName, JournalTime.millis(now), document.id, document.version])
                    }
                    if let stay { try Self.upsertStay(db, stay) }
                    try db.run("""
                        INSERT INTO documents (id, version, set_id, kind, ins_masked, patient_key, identity_status, finess, stay_id,
                                               blob_sha256, state, received_at, received_month, updated_at, action)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'received', $11, $12, $11, $13)
                        """, [accepted.id, accepted.version, accepted.setID, accepted.kind.rawValue, accepted.maskedINS,
                              accepted.patientKey, accepted.identityStatus, accepted.finess, accepted.stayID, sha,
                              JournalTime.millis(now), JournalTime.month(now), accepted.action.rawValue])
                    return .accepted(accepted)
                }
            } catch let error as PostgresError where error.isUniqueViolation {
                // Another node inserted the same input or document between our check and our
                // insert (both committed after our snapshot): report what it stored.
                guard let earlier = try Self.duplicate(db, of: document, input: input) else { throw error }
                return earlier
            }
        }
    }

    public func admit(_ admission: Admission, now: Date) async throws(JournalError) -> AdmitResult {
        // The database keeps a copy of every blob (shared by the nodes): a file-backed CDA is
        // read once here to be stored there.
        let record = admission.record.count == 1 ? admission.record[0] : admission.record.reduce(into: Data()) { $0.append($1) }
        let (recordSHA, builtSHA) = try await blobs.store(admission)
        let built: Data
        switch admission.built {
        case .data(let data, _): built = data
        case .file: built = try blobs.get(builtSHA)
        }
        var stored = admission.document
        stored.blobSHA256 = recordSHA
        stored.builtSHA256 = builtSHA
        stored.receivedAt = now
        stored.state = .queued
        let document = stored, input = admission.input, stay = admission.stay, targets = admission.targets
        let deadline = now.addingTimeInterval(policy.deadline)
        return try await run { db -> AdmitResult in
            do {
                return try db.transaction { () throws -> AdmitResult in
                    if let earlier = try Self.duplicate(db, of: document, input: input) { return AdmitResult(earlier) }
                    try Self.storeBlob(db, sha: recordSHA, content: record, now: now)
                    try Self.storeBlob(db, sha: builtSHA, content: built, now: now)
                    if let input {
                        try db.run("INSERT INTO inputs (sha256, file_name, received_at, document_id, version) VALUES ($1, $2, $3, $4, $5)",
                                   [input.sha256, input.fileName, JournalTime.millis(now), document.id, document.version])
                    }
                    if let stay { try Self.upsertStay(db, stay) }
                    try db.run("""
                        INSERT INTO documents (id, version, set_id, kind, ins_masked, patient_key, identity_status, finess, stay_id,
                                               blob_sha256, built_sha256, state, received_at, received_month, updated_at, action)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', $12, $13, $12, $14)
                        """, [document.id, document.version, document.setID, document.kind.rawValue, document.maskedINS,
                              document.patientKey, document.identityStatus, document.finess, document.stayID, recordSHA, builtSHA,
                              JournalTime.millis(now), JournalTime.month(now), document.action.rawValue])
                    let transmissions = try Self.insertTransmissions(db, documentID: document.id, version: document.version,
                                                                     targets: targets, deadline: deadline, now: now)
                    return .admitted(document, transmissions)
                }
            } catch let error as PostgresError where error.isUniqueViolation {
                // Another node admitted the same input or document between our check and our insert.
                guard let earlier = try Self.duplicate(db, of: document, input: input) else { throw error }
                return AdmitResult(earlier)
            }
        }
    }

    /// One queued transmission per target (the UNIQUE key makes a second one for the same
    /// document, version and target impossible); returns them as stored.
    private static func insertTransmissions(_ db: PostgresConnection, documentID: String, version: Int, targets: [Destination],
                                            deadline: Date, now: Date) throws -> [Transmission] {
        for target in targets {
            try db.run("""
                INSERT INTO transmissions (document_id, version, target, state, created_at, created_month, updated_at,
                                           deadline_at, next_attempt_at)
                VALUES ($1, $2, $3, 'queued', $4, $5, $4, $6, $4)
                ON CONFLICT (document_id, version, target) DO NOTHING
                """, [documentID, version, target.rawValue, JournalTime.millis(now), JournalTime.month(now),
                      JournalTime.millis(deadline)])
        }
        return try targets.compactMap { target in
            try db.query("SELECT * FROM transmissions WHERE document_id = $1 AND version = $2 AND target = $3",
                         [documentID, version, target.rawValue]).first.map(decodeTransmission)
        }
    }

    private static func duplicate(_ db: PostgresConnection, of document: JournalDocument, input: InputFile?) throws -> AcceptResult? {
        if let input, let row = try db.query("SELECT document_id, version FROM inputs WHERE sha256 = $1", [input.sha256]).first {
            return .duplicateInput(documentID: row["document_id"].string, version: row["version"].int)
        }
        let rows = try db.query("SELECT * FROM documents WHERE (id = $1 AND version = $2) OR (set_id = $3 AND version = $2)",
                                [document.id, document.version, document.setID])
        if let row = rows.first { return .duplicateDocument(try decodeDocument(row)) }
        return nil
    }

    private static func storeBlob(_ db: PostgresConnection, sha: String, content: Data, now: Date) throws {
        try db.run("INSERT INTO blobs (sha256, content, stored_at) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
                   [sha, content, JournalTime.millis(now)])
    }

    public func stay(finess: String, stayID: String) async throws(JournalError) -> JournalStay? {
        try await run { db in
            try db.query("SELECT * FROM stays WHERE finess = $1 AND stay_id = $2", [finess, stayID]).first.map { row in
                JournalStay(stayID: stayID, finess: finess, admittedAt: JournalTime.date(millis: row["admitted_at"].int64),
                            dischargedAt: JournalTime.date(millis: row["discharged_at"].int64))
            }
        }
    }

    public func recordStay(_ stay: JournalStay, now: Date) async throws(JournalError) {
        try await run { db in try db.transaction { try Self.upsertStay(db, stay) } }
    }

    /// Inserts or completes a stay: a date already known is kept when the new record lacks it.
    private static func upsertStay(_ db: PostgresConnection, _ stay: JournalStay) throws {
        try db.run("""
            INSERT INTO stays (finess, stay_id, admitted_at, discharged_at, discharged_month) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (finess, stay_id) DO UPDATE SET
                admitted_at = COALESCE(excluded.admitted_at, stays.admitted_at),
                discharged_at = COALESCE(excluded.discharged_at, stays.discharged_at),
                discharged_month = COALESCE(excluded.discharged_month, stays.discharged_month)
            """, [stay.finess, stay.stayID, JournalTime.millis(stay.admittedAt), JournalTime.millis(stay.dischargedAt),
                  stay.dischargedAt.map(JournalTime.month)])
    }

    public func markBuilt(documentID: String, version: Int, built: Data, now: Date) async throws(JournalError) -> JournalDocument {
        let sha = try blobs.put(built)
        return try await run { db in
            try db.transaction {
                let document = try Self.requireDocument(db, id: documentID, version: version, lock: true)
                guard document.state == .received else {
                    throw JournalError.documentState(id: documentID, version: version, state: document.state, expected: [.received])
                }
                try Self.storeBlob(db, sha: sha, content: built, now: now)
                try db.run("UPDATE documents SET state = 'built', built_sha256 = $1, updated_at = $2 WHERE id = $3 AND version = $4",
                           [sha, JournalTime.millis(now), documentID, version])
                return try Self.requireDocument(db, id: documentID, version: version)
            }
        }
    }

    /// The database holds a copy of every blob (shared by the nodes): this one is read into
    /// memory once to be stored there.
    public func markBuilt(documentID: String, version: Int, builtBlob sha: String, now: Date) async throws(JournalError) -> JournalDocument {
        try await markBuilt(documentID: documentID, version: version, built: try blobs.get(sha), now: now)
    }

    public func document(id: String, version: Int) async throws(JournalError) -> JournalDocument? {
        try await run { db in
            try db.query("SELECT * FROM documents WHERE id = $1 AND version = $2", [id, version]).first.map(Self.decodeDocument)
        }
    }

    public func documents(in state: DocumentState) async throws(JournalError) -> [JournalDocument] {
        try await run { db in
            try db.query("SELECT * FROM documents WHERE state = $1 ORDER BY received_at, id", [state.rawValue]).map(Self.decodeDocument)
        }
    }

    // MARK: - Transmissions

    public func enqueue(documentID: String, version: Int, targets: [Destination], now: Date) async throws(JournalError) -> [Transmission] {
        let deadline = now.addingTimeInterval(policy.deadline)
        return try await run { db in
            try db.transaction {
                let document = try Self.requireDocument(db, id: documentID, version: version, lock: true)
                guard document.state == .built || document.state == .queued else {
                    throw JournalError.documentState(id: documentID, version: version, state: document.state,
                                                     expected: [.built, .queued])
                }
                let queued = try Self.insertTransmissions(db, documentID: documentID, version: version, targets: targets,
                                                          deadline: deadline, now: now)
                try db.run("UPDATE documents SET state = 'queued', updated_at = $1 WHERE id = $2 AND version = $3",
                           [JournalTime.millis(now), documentID, version])
                return queued
            }
        }
    }

    public func claimNext(target: Destination, now: Date, lease: TimeInterval, owner: String) async throws(JournalError) -> ClaimedTransmission? {
        try await run { db in
            try db.transaction { () throws -> ClaimedTransmission? in
                // SKIP LOCKED: a row another node is claiming right now is passed over, not waited
                // for, and never taken twice; the UPDATE and the attempt commit together.
                guard let row = try db.query("""
                    UPDATE transmissions SET state = 'sending', attempts = attempts + 1, lease_owner = $1, lease_expires_at = $2,
                                             updated_at = $3
                    WHERE id = (
                        SELECT id FROM transmissions
                        WHERE target = $4 AND state IN ('queued', 'retry-wait') AND next_attempt_at <= $3
                        ORDER BY next_attempt_at, id LIMIT 1
                        FOR UPDATE SKIP LOCKED)
                    RETURNING *
                    """, [owner, JournalTime.millis(now.addingTimeInterval(lease)), JournalTime.millis(now), target.rawValue]).first
                else { return nil }
                let transmission = try Self.decodeTransmission(row)
                guard let attemptID = try db.scalar("INSERT INTO attempts (transmission_id, started_at) VALUES ($1, $2) RETURNING id",
                                                    [transmission.id, JournalTime.millis(now)])?.int64 else {
                    throw JournalError.database("no attempt id returned for transmission \(transmission.id)")
                }
                let document = try Self.requireDocument(db, id: transmission.documentID, version: transmission.version)
                return ClaimedTransmission(transmission: transmission, document: document, attemptID: attemptID)
            }
        }
    }

    public func recordMessageID(_ messageID: String, transmissionID: Int64, owner: String) async throws(JournalError) {
        try await run { db in
            try db.transaction {
                _ = try Self.requireLease(db, id: transmissionID, owner: owner)
                try db.run("UPDATE transmissions SET message_id = $1 WHERE id = $2", [messageID, transmissionID])
            }
        }
    }

    public func complete(_ claim: ClaimedTransmission, owner: String, outcome: TransmissionOutcome,
                         now: Date) async throws(JournalError) -> CompletionResult {
        let jitter = random()
        let policy = policy
        return try await run { db in
            try db.transaction { () throws -> CompletionResult in
                let t = try Self.requireLease(db, id: claim.transmission.id, owner: owner)
                let plan = try CompletionPlan(t, outcome: outcome, policy: policy, jitter: jitter, now: now)
                if let lastError = plan.lastError {
                    try db.run("""
                        UPDATE transmissions SET state = $1, next_attempt_at = $2, lease_owner = NULL, lease_expires_at = NULL,
                                                 alerted = true, last_error = $3, last_error_at = $4, updated_at = $4,
                                                 failure = $5, error_code = $6, pending_recipients = COALESCE($8, pending_recipients)
                        WHERE id = $7
                        """, [plan.result.state.rawValue, JournalTime.millis(plan.result.nextAttemptAt), lastError,
                              JournalTime.millis(now), plan.failure?.failure, plan.failure?.code, t.id, plan.pendingRecipients])
                } else {
                    try db.run("""
                        UPDATE transmissions SET state = $1, lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = NULL,
                                                 needs_recheck = false, alerted = false, updated_at = $2, pending_recipients = NULL,
                                                 last_error = COALESCE($4, last_error), last_error_at = COALESCE($5, last_error_at)
                        WHERE id = $3
                        """, [plan.result.state.rawValue, JournalTime.millis(now), t.id, plan.note,
                              plan.note == nil ? nil : JournalTime.millis(now)])
                }
                try db.run("UPDATE attempts SET ended_at = $1, outcome = $2, response = $3 WHERE id = $4 AND transmission_id = $5",
                           [JournalTime.millis(now), plan.attemptOutcome, plan.response, claim.attemptID, t.id])
                return plan.result
            }
        }
    }

    public func acknowledge(transmissionID: Int64, kind: AcknowledgementKind, detail: String?, now: Date) async throws(JournalError) -> Transmission {
        try await run { db in
            try db.transaction {
                let t = try Self.requireTransmission(db, id: transmissionID, lock: true)
                guard let rank = t.acknowledgementRank else {
                    throw JournalError.illegalTransition(transmissionID: t.id, from: t.state, to: kind.state)
                }
                try db.run("INSERT INTO acknowledgements (transmission_id, kind, received_at, detail) VALUES ($1, $2, $3, $4)",
                           [t.id, kind.rawValue, JournalTime.millis(now), detail.map(JournalText.bounded)])
                // Acknowledgements may arrive out of order (read before delivered): only move forward.
                if let newRank = kind.state.successRank, newRank > rank {
                    try db.run("UPDATE transmissions SET state = $1, updated_at = $2 WHERE id = $3",
                               [kind.state.rawValue, JournalTime.millis(now), t.id])
                }
                return try Self.requireTransmission(db, id: t.id)
            }
        }
    }

    public func acknowledgeFailure(transmissionID: Int64, reason: String, now: Date) async throws(JournalError) -> Transmission {
        try await run { db in
            try db.transaction {
                let t = try Self.requireTransmission(db, id: transmissionID, lock: true)
                if t.state == .failed { return t }
                guard t.state.canMove(to: .failed), TransmissionState.succeeded.contains(t.state) else {
                    throw JournalError.illegalTransition(transmissionID: t.id, from: t.state, to: .failed)
                }
                try db.run("""
                    UPDATE transmissions SET state = 'failed', alerted = true, last_error = $1, last_error_at = $2, updated_at = $2
                    WHERE id = $3
                    """, [JournalText.bounded(reason), JournalTime.millis(now), t.id])
                return try Self.requireTransmission(db, id: t.id)
            }
        }
    }

    public func transmission(messageID: String) async throws(JournalError) -> Transmission? {
        try await run { db in
            try db.query("SELECT * FROM transmissions WHERE message_id = $1 ORDER BY id DESC LIMIT 1", [messageID])
                .first.map(Self.decodeTransmission)
        }
    }

    public func recoverInterrupted(now: Date) async throws(JournalError) -> [Transmission] {
        let held = now.addingTimeInterval(policy.interruptedHold)
        return try await run { db in
            try db.transaction {
                // One UPDATE: two nodes recovering at once re-check the condition on the locked
                // rows, so each expired lease is recovered by exactly one of them.
                // A recorded Message-ID: the mail may be at the relay; give its DSN time to come.
                let ids = try db.query("""
                    UPDATE transmissions SET state = 'queued', needs_recheck = true, lease_owner = NULL, lease_expires_at = NULL,
                                             next_attempt_at = CASE WHEN message_id IS NULL THEN $1 ELSE $2 END, updated_at = $1
                    WHERE state = 'sending' AND lease_expires_at <= $1
                    RETURNING id
                    """, [JournalTime.millis(now), JournalTime.millis(held)])
                    .compactMap { $0["id"].int64 }.sorted()
                for id in ids {
                    try db.run("UPDATE attempts SET ended_at = $1, outcome = 'interrupted' WHERE transmission_id = $2 AND ended_at IS NULL",
                               [JournalTime.millis(now), id])
                }
                return try ids.map { try Self.requireTransmission(db, id: $0) }
            }
        }
    }

    public func confirmInterruptedSend(transmissionID: Int64, now: Date) async throws(JournalError) -> Transmission? {
        try await run { db in
            try db.transaction { () throws -> Transmission? in
                let t = try Self.requireTransmission(db, id: transmissionID, lock: true)
                guard t.awaitsInterruptedOutcome(now: now) else { return nil }
                try db.run("""
                    UPDATE transmissions SET state = 'sent', needs_recheck = false, lease_owner = NULL, lease_expires_at = NULL,
                                             next_attempt_at = NULL, alerted = false, updated_at = $1
                    WHERE id = $2
                    """, [JournalTime.millis(now), t.id])
                try db.run("UPDATE attempts SET ended_at = $1, outcome = 'interrupted' WHERE transmission_id = $2 AND ended_at IS NULL",
                           [JournalTime.millis(now), t.id])
                return try Self.requireTransmission(db, id: t.id)
            }
        }
    }

    public func requeue(_ filter: TransmissionFilter, now: Date) async throws(JournalError) -> [Transmission] {
        try await requeue(filter, includingSucceeded: false, now: now)
    }

    public func requeue(_ filter: TransmissionFilter, includingSucceeded: Bool, now: Date) async throws(JournalError) -> [Transmission] {
        let deadline = now.addingTimeInterval(policy.deadline)
        return try await run { db in
            try db.transaction {
                let allowed: Set<TransmissionState> = includingSucceeded ? TransmissionState.succeeded.union([.failed]) : [.failed]
                var eligible = filter
                // filter.states narrows the choice, never widens it (same rule as the SQLite store).
                eligible.states = filter.states.isEmpty || !includingSucceeded ? allowed : filter.states.intersection(allowed)
                let selected = eligible.states.isEmpty ? [] : try Self.select(db, eligible, lock: true)
                for t in selected {
                    // A new incident: fresh attempt budget and deadline, and a new alert if it fails again.
                    // A success sent again gets a new Message-ID; attempts and acknowledgements are kept.
                    try db.run("""
                        UPDATE transmissions SET state = 'queued', attempts = 0, alerted = false, needs_recheck = false,
                                                 failure = NULL, error_code = NULL,
                                                 message_id = CASE WHEN state = 'failed' THEN message_id ELSE NULL END,
                                                 pending_recipients = CASE WHEN state = 'failed' THEN pending_recipients ELSE NULL END,
                                                 next_attempt_at = $1, deadline_at = $2, updated_at = $1
                        WHERE id = $3 AND state = $4
                        """, [JournalTime.millis(now), JournalTime.millis(deadline), t.id, t.state.rawValue])
                }
                return try selected.map { try Self.requireTransmission(db, id: $0.id) }
            }
        }
    }

    // MARK: - Queries

    public func transmission(id: Int64) async throws(JournalError) -> Transmission? {
        try await run { db in try db.query("SELECT * FROM transmissions WHERE id = $1", [id]).first.map(Self.decodeTransmission) }
    }

    public func transmissions(matching filter: TransmissionFilter) async throws(JournalError) -> [Transmission] {
        try await run { db in try Self.select(db, filter) }
    }

    public func attempts(transmissionID: Int64) async throws(JournalError) -> [Attempt] {
        try await run { db in
            try db.query("SELECT * FROM attempts WHERE transmission_id = $1 ORDER BY id", [transmissionID]).map { row in
                Attempt(id: row["id"].int64 ?? 0, transmissionID: row["transmission_id"].int64 ?? 0,
                        startedAt: JournalTime.date(millis: row["started_at"].int64) ?? .distantPast,
                        endedAt: JournalTime.date(millis: row["ended_at"].int64),
                        outcome: row["outcome"].string, response: row["response"].string)
            }
        }
    }

    public func acknowledgements(transmissionID: Int64) async throws(JournalError) -> [Acknowledgement] {
        try await run { db in
            try db.query("SELECT * FROM acknowledgements WHERE transmission_id = $1 ORDER BY id", [transmissionID]).compactMap { row in
                guard let kind = row["kind"].string.flatMap(AcknowledgementKind.init(rawValue:)) else { return nil }
                return Acknowledgement(transmissionID: transmissionID, kind: kind,
                                       receivedAt: JournalTime.date(millis: row["received_at"].int64) ?? .distantPast,
                                       detail: row["detail"].string)
            }
        }
    }

    public func stateCounts() async throws(JournalError) -> [StateCount] {
        try await run { db in
            try db.query("SELECT target, state, count(*) AS n FROM transmissions GROUP BY target, state ORDER BY target, state")
                .compactMap { row in
                    guard let target = row["target"].string.flatMap(Destination.init(rawValue:)),
                          let state = row["state"].string.flatMap(TransmissionState.init(rawValue:)) else { return nil }
                    return StateCount(target: target, state: state, count: row["n"].int ?? 0)
                }
        }
    }

    public func oldestWaiting(target: Destination) async throws(JournalError) -> Date? {
        try await run { db in
            JournalTime.date(millis: try db.scalar("""
                SELECT MIN(created_at) FROM transmissions WHERE target = $1 AND state IN ('queued', 'retry-wait', 'sending')
                """, [target.rawValue])?.int64)
        }
    }

    public func lastErrors() async throws(JournalError) -> [TargetError] {
        try await run { db in
            try Destination.allCases.compactMap { target in
                guard let row = try db.query("""
                    SELECT id, document_id, last_error, last_error_at FROM transmissions
                    WHERE target = $1 AND last_error_at IS NOT NULL ORDER BY last_error_at DESC, id DESC LIMIT 1
                    """, [target.rawValue]).first else { return nil }
                return TargetError(target: target, transmissionID: row["id"].int64 ?? 0, documentID: row["document_id"].string ?? "",
                                   message: row["last_error"].string ?? "",
                                   at: JournalTime.date(millis: row["last_error_at"].int64) ?? .distantPast)
            }
        }
    }

    public func documentCountsByMonth() async throws(JournalError) -> [MonthlyCount] {
        try await run { db in
            try db.query("SELECT received_month, kind, count(*) AS n FROM documents GROUP BY received_month, kind ORDER BY 1, 2")
                .compactMap { row in
                    guard let month = row["received_month"].string,
                          let kind = row["kind"].string.flatMap(DocumentKind.init(rawValue:)) else { return nil }
                    return MonthlyCount(month: month, kind: kind, count: row["n"].int ?? 0)
                }
        }
    }

    public func usageCounts(_ query: UsageQuery) async throws(JournalError) -> [UsageCounts] {
        try UsageSQL.validate(query)
        return try await run { db in
            // One REPEATABLE READ transaction: both aggregates see the same snapshot of the journal.
            try db.transaction(isolation: "REPEATABLE READ READ ONLY") {
                func rows(_ statement: UsageSQL.Statement) throws -> [PostgresColumns] {
                    try db.query(statement.sql, statement.values.map { value -> any PostgresBindable in
                        switch value {
                        case .integer(let v): v
                        case .text(let v): v
                        }
                    }).map(PostgresColumns.init)
                }
                return UsageSQL.counts(sets: try rows(UsageSQL.sets(query, .postgresql)),
                                       stays: try rows(UsageSQL.stays(query, .postgresql)))
            }
        }
    }

    // MARK: - Helpers

    /// Runs `body` on the connection's own thread, errors as ``JournalError``.
    private func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws(JournalError) -> T {
        do {
            return try await client.withConnection(body)
        } catch {
            throw Self.journalError(error)
        }
    }

    static func journalError(_ error: any Error) -> JournalError {
        if let error = error as? JournalError { return error }
        if let error = error as? PostgresError { return .database(error.description) }
        return .database(String(describing: error))
    }

    private static func select(_ db: PostgresConnection, _ filter: TransmissionFilter, lock: Bool = false) throws -> [Transmission] {
        var clauses: [String] = []
        var bindings: [any PostgresBindable] = []
        func parameter(_ value: any PostgresBindable) -> String {
            bindings.append(value)
            return "$\(bindings.count)"
        }
        if !filter.transmissionIDs.isEmpty {
            clauses.append("t.id IN (\(filter.transmissionIDs.map { parameter($0) }.joined(separator: ", ")))")
        }
        if let documentID = filter.documentID { clauses.append("t.document_id = \(parameter(documentID))") }
        if let patientKey = filter.patientKey { clauses.append("d.patient_key = \(parameter(patientKey))") }
        if let target = filter.target { clauses.append("t.target = \(parameter(target.rawValue))") }
        if !filter.states.isEmpty {
            clauses.append("t.state IN (\(filter.states.map(\.rawValue).sorted().map { parameter($0) }.joined(separator: ", ")))")
        }
        if let from = filter.from { clauses.append("t.created_at >= \(parameter(JournalTime.millis(from)))") }
        if let until = filter.until { clauses.append("t.created_at < \(parameter(JournalTime.millis(until)))") }
        var sql = "SELECT t.* FROM transmissions t JOIN documents d ON d.id = t.document_id AND d.version = t.version"
        if !clauses.isEmpty { sql += " WHERE " + clauses.joined(separator: " AND ") }
        sql += " ORDER BY t.created_at, t.id"
        if let limit = filter.limit { sql += " LIMIT \(parameter(limit))" }
        if lock { sql += " FOR UPDATE OF t" }
        return try db.query(sql, bindings).map(decodeTransmission)
    }

    private static func requireDocument(_ db: PostgresConnection, id: String, version: Int, lock: Bool = false) throws -> JournalDocument {
        let sql = "SELECT * FROM documents WHERE id = $1 AND version = $2" + (lock ? " FOR UPDATE" : "")
        guard let row = try db.query(sql, [id, version]).first else { throw JournalError.unknownDocument(id: id, version: version) }
        return try decodeDocument(row)
    }

    private static func requireTransmission(_ db: PostgresConnection, id: Int64, lock: Bool = false) throws -> Transmission {
        let sql = "SELECT * FROM transmissions WHERE id = $1" + (lock ? " FOR UPDATE" : "")
        guard let row = try db.query(sql, [id]).first else { throw JournalError.unknownTransmission(id) }
        return try decodeTransmission(row)
    }

    /// The transmission, locked, if it is still `sending` under `owner`'s lease.
    private static func requireLease(_ db: PostgresConnection, id: Int64, owner: String) throws -> Transmission {
        let t = try requireTransmission(db, id: id, lock: true)
        guard t.state == .sending, t.leaseOwner == owner else { throw JournalError.leaseLost(transmissionID: id, owner: owner) }
        return t
    }

    private static func decodeDocument(_ row: PostgresRow) throws -> JournalDocument {
        try JournalRowDecoder.document(PostgresColumns(row: row))
    }

    private static func decodeTransmission(_ row: PostgresRow) throws -> Transmission {
        try JournalRowDecoder.transmission(PostgresColumns(row: row))
    }
}

/// Reads blobs missing from a node's cache folder out of the `blobs` table.
struct DatabaseBlobs: BlobSource {
    let client: PostgresClient

    func blob(sha256: String) throws(JournalError) -> Data? {
        do {
            return try client.withConnectionBlocking { db in
                try db.scalar("SELECT content FROM blobs WHERE sha256 = $1", [sha256])?.data
            }
        } catch {
            throw PostgresJournalStore.journalError(error)
        }
    }
}

/// PostgreSQL rows as the shared decoder reads them.
struct PostgresColumns: JournalColumns {
    let row: PostgresRow
    func text(_ name: String) -> String? { row[name].string }
    func integer(_ name: String) -> Int64? { row[name].int64 }
    func flag(_ name: String) -> Bool { row[name].bool ?? false }
}
