import Foundation
import PasserelleCore
import SQLiteKit

/// The journal in one SQLite file (WAL, fsync on commit) for a single gateway node.
///
/// One connection per store, guarded by a mutex; several stores (threads or processes) may
/// open the same file: writers serialise on `BEGIN IMMEDIATE` and wait up to the busy timeout.
public final class SQLiteJournalStore: JournalStore {
    public let path: String
    public let blobs: BlobStore
    public let policy: RetryPolicy
    private let random: @Sendable () -> Double
    /// The connection's own thread: statements and commit fsyncs never run on the cooperative
    /// pool, and concurrent writers share one commit (group commit).
    let queue: SQLiteCommitQueue

    /// Opens (creating and migrating if needed) the journal at `path`.
    /// - Parameter random: jitter source in [0, 1); injectable for deterministic tests.
    public init(path: String, blobs: BlobStore, policy: RetryPolicy = RetryPolicy(),
                busyTimeout: Duration = .seconds(10),
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                now: Date = Date()) throws(JournalError) {
        self.path = path
        self.blobs = blobs
        self.policy = policy
        self.random = random
        let db: SQLiteConnection
        do {
            db = try SQLiteConnection(path: path, busyTimeout: busyTimeout)
            try JournalSchema.migrate(db, now: now)
        } catch {
            throw Self.journalError(error)
        }
        // SQLite syncs the folder when it creates the -wal file, not the database file: a journal
        // created just before a power cut could otherwise vanish with everything committed to it.
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if let failure = DurableFiles.syncDirectory(folder) { throw .database("\(folder): \(failure)") }
        queue = SQLiteCommitQueue(connection: db, name: "passerelle-sqlite")
    }

    deinit { queue.finish() }


    /// The schema version in the file.
    public func schemaVersion() throws(JournalError) -> Int {
        try locked { db in try db.scalar("SELECT MAX(version) FROM schema_migrations")?.int ?? 0 }
    }

    // MARK: - Documents

    public func accept(_ document: JournalDocument, content: Data, input: InputFile?, stay: JournalStay?,
                       now: Date) async throws(JournalError) -> AcceptResult {
        try await accept(document, contentParts: [content], input: input, stay: stay, now: now)
    }

    public func accept(_ document: JournalDocument, contentParts: [Data], input: InputFile?, stay: JournalStay?,
                       now: Date) async throws(JournalError) -> AcceptResult {
        // Cheap checks first, so a file dropped twice does not even rewrite its blob.
        if let earlier = try await onThread({ db in try Self.duplicate(db, of: document, input: input) }) { return earlier }
        let sha = try blobs.put(parts: contentParts)
        var stored = document
        stored.blobSHA256 = sha
        stored.receivedAt = now
        stored.state = .received
        let accepted = stored
        return try await onThread { db in
            try db.transaction(.immediate) { () throws -> AcceptResult in
                // Again inside the write lock: another process may have accepted it meanwhile.
                if let earlier = try Self.duplicate(db, of: document, input: input) { return earlier }
                try Self.insertDocument(db, accepted, input: input, stay: stay, now: now)
                return .accepted(accepted)
            }
        }
    }

    public func admit(_ admission: Admission, now: Date) async throws(JournalError) -> AdmitResult {
        // Blobs first, fsynced: the row that points at them must never outlive them. A duplicate
        // found below leaves them unreferenced (content-addressed: harmless, and rare).
        let (recordSHA, builtSHA) = try await blobs.store(admission)
        var stored = admission.document
        stored.blobSHA256 = recordSHA
        stored.builtSHA256 = builtSHA
        stored.receivedAt = now
        stored.state = .queued
        let document = stored, input = admission.input, stay = admission.stay, targets = admission.targets
        let deadline = now.addingTimeInterval(policy.deadline)
        return try await onThread { db in
            try db.transaction(.immediate) { () throws -> AdmitResult in
                if let earlier = try Self.duplicate(db, of: document, input: input) { return AdmitResult(earlier) }
                try Self.insertDocument(db, document, input: input, stay: stay, now: now)
                let transmissions = try Self.insertTransmissions(db, documentID: document.id, version: document.version,
                                                                 targets: targets, deadline: deadline, now: now)
                return .admitted(document, transmissions)
            }
        }
    }

    /// The input that brought `document` (so the same bytes are recognised), its stay, and its
    /// row, in the state, blob digests and times `document` carries.
    private static func insertDocument(_ db: SQLiteConnection, _ document: JournalDocument, input: InputFile?, stay: JournalStay?,
                                       now: Date) throws {
        if let input {
            try db.run("INSERT INTO inputs (sha256, file_name, received_at, document_id, version) VALUES (?, ?, ?, ?, ?)",
                       [input.sha256, input.fileName, JournalTime.millis(now), document.id, document.version])
        }
        if let stay { try upsertStay(db, stay) }
        try db.run("""
            INSERT INTO documents (id, version, set_id, kind, ins_masked, patient_key, identity_status, finess, stay_id,
                                   blob_sha256, built_sha256, state, received_at, received_month, updated_at, action)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [document.id, document.version, document.setID, document.kind.rawValue, document.maskedINS, document.patientKey,
                  document.identityStatus, document.finess, document.stayID, document.blobSHA256, document.builtSHA256,
                  document.state.rawValue, JournalTime.millis(now), JournalTime.month(now), JournalTime.millis(now),
                  document.action.rawValue])
    }

    /// One queued transmission per target (the UNIQUE key makes a second one for the same
    /// document, version and target impossible); returns them as stored.
    private static func insertTransmissions(_ db: SQLiteConnection, documentID: String, version: Int, targets: [Destination],
                                            deadline: Date, now: Date) throws -> [Transmission] {
        for target in targets {
            try db.run("""
                INSERT INTO transmissions (document_id, version, target, state, created_at, created_month, updated_at,
                                           deadline_at, next_attempt_at)
                VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)
                ON CONFLICT (document_id, version, target) DO NOTHING
                """, [documentID, version, target.rawValue, JournalTime.millis(now), JournalTime.month(now),
                      JournalTime.millis(now), JournalTime.millis(deadline), JournalTime.millis(now)])
        }
        return try targets.compactMap { target in
            try db.query("SELECT * FROM transmissions WHERE document_id = ? AND version = ? AND target = ?",
                         [documentID, version, target.rawValue]).first.map(decodeTransmission)
        }
    }

    public func stay(finess: String, stayID: String) async throws(JournalError) -> JournalStay? {
        try await onThread { db in
            try db.query("SELECT * FROM stays WHERE finess = ? AND stay_id = ?", [finess, stayID]).first.map { row in
                JournalStay(stayID: stayID, finess: finess, admittedAt: JournalTime.date(row["admitted_at"]),
                            dischargedAt: JournalTime.date(row["discharged_at"]))
            }
        }
    }

    public func recordStay(_ stay: JournalStay, now: Date) async throws(JournalError) {
        try await onThread { db in try db.transaction(.immediate) { try Self.upsertStay(db, stay) } }
    }

    /// Inserts or completes a stay: a date already known is kept when the new record lacks it.
    private static func upsertStay(_ db: SQLiteConnection, _ stay: JournalStay) throws {
        try db.run("""
            INSERT INTO stays (finess, stay_id, admitted_at, discharged_at, discharged_month) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (finess, stay_id) DO UPDATE SET
                admitted_at = COALESCE(excluded.admitted_at, admitted_at),
                discharged_at = COALESCE(excluded.discharged_at, discharged_at),
                discharged_month = COALESCE(excluded.discharged_month, discharged_month)
            """, [stay.finess, stay.stayID, JournalTime.millis(stay.admittedAt), JournalTime.millis(stay.dischargedAt),
                  stay.dischargedAt.map(JournalTime.month)])
    }

    private static func duplicate(_ db: SQLiteConnection, of document: JournalDocument, input: InputFile?) throws -> AcceptResult? {
        if let input, let row = try db.query("SELECT document_id, version FROM inputs WHERE sha256 = ?", [input.sha256]).first {
            return .duplicateInput(documentID: row["document_id"].string, version: row["version"].int)
        }
        let rows = try db.query("SELECT * FROM documents WHERE (id = ? AND version = ?) OR (set_id = ? AND version = ?)",
                                [document.id, document.version, document.setID, document.version])
        if let row = rows.first { return .duplicateDocument(try decodeDocument(row)) }
        return nil
    }

    public func markBuilt(documentID: String, version: Int, built: Data, now: Date) async throws(JournalError) -> JournalDocument {
        try await markBuilt(documentID: documentID, version: version, builtBlob: try blobs.put(built), now: now)
    }

    public func markBuilt(documentID: String, version: Int, builtBlob sha: String, now: Date) async throws(JournalError) -> JournalDocument {
        try await onThread { db in
            try db.transaction(.immediate) {
                let document = try Self.requireDocument(db, id: documentID, version: version)
                guard document.state == .received else {
                    throw JournalError.documentState(id: documentID, version: version, state: document.state, expected: [.received])
                }
                try db.run("UPDATE documents SET state = 'built', built_sha256 = ?, updated_at = ? WHERE id = ? AND version = ?",
                           [sha, JournalTime.millis(now), documentID, version])
                return try Self.requireDocument(db, id: documentID, version: version)
            }
        }
    }

    public func document(id: String, version: Int) async throws(JournalError) -> JournalDocument? {
        try await onThread { db in
            try db.query("SELECT * FROM documents WHERE id = ? AND version = ?", [id, version]).first.map(Self.decodeDocument)
        }
    }

    public func documents(in state: DocumentState) async throws(JournalError) -> [JournalDocument] {
        try await onThread { db in
            try db.query("SELECT * FROM documents WHERE state = ? ORDER BY received_at, id", [state.rawValue]).map(Self.decodeDocument)
        }
    }

    // MARK: - Transmissions

    public func enqueue(documentID: String, version: Int, targets: [Destination], now: Date) async throws(JournalError) -> [Transmission] {
        try await onThread { db in
            try db.transaction(.immediate) {
                let document = try Self.requireDocument(db, id: documentID, version: version)
                guard document.state == .built || document.state == .queued else {
                    throw JournalError.documentState(id: documentID, version: version, state: document.state,
                                                     expected: [.built, .queued])
                }
                let queued = try Self.insertTransmissions(db, documentID: documentID, version: version, targets: targets,
                                                          deadline: now.addingTimeInterval(self.policy.deadline), now: now)
                try db.run("UPDATE documents SET state = 'queued', updated_at = ? WHERE id = ? AND version = ?",
                           [JournalTime.millis(now), documentID, version])
                return queued
            }
        }
    }

    public func claimNext(target: Destination, now: Date, lease: TimeInterval, owner: String) async throws(JournalError) -> ClaimedTransmission? {
        try await onThread { db in
            // BEGIN IMMEDIATE takes the write lock before the SELECT: no other connection can
            // pick the same row between our SELECT and UPDATE (PostgreSQL: FOR UPDATE SKIP LOCKED).
            try db.transaction(.immediate) { () throws -> ClaimedTransmission? in
                guard let id = try db.scalar("""
                    SELECT id FROM transmissions
                    WHERE target = ? AND state IN ('queued', 'retry-wait') AND next_attempt_at <= ?
                    ORDER BY next_attempt_at, id LIMIT 1
                    """, [target.rawValue, JournalTime.millis(now)])?.int64 else { return nil }
                let changed = try db.run("""
                    UPDATE transmissions SET state = 'sending', attempts = attempts + 1, lease_owner = ?, lease_expires_at = ?,
                                             updated_at = ?
                    WHERE id = ? AND state IN ('queued', 'retry-wait')
                    """, [owner, JournalTime.millis(now.addingTimeInterval(lease)), JournalTime.millis(now), id])
                guard changed == 1 else { return nil }
                try db.run("INSERT INTO attempts (transmission_id, started_at) VALUES (?, ?)", [id, JournalTime.millis(now)])
                let attemptID = db.lastInsertRowID
                let transmission = try Self.requireTransmission(db, id: id)
                let document = try Self.requireDocument(db, id: transmission.documentID, version: transmission.version)
                return ClaimedTransmission(transmission: transmission, document: document, attemptID: attemptID)
            }
        }
    }

    public func recordMessageID(_ messageID: String, transmissionID: Int64, owner: String) async throws(JournalError) {
        try await onThread { db in
            try db.transaction(.immediate) {
                _ = try Self.requireLease(db, id: transmissionID, owner: owner)
                try db.run("UPDATE transmissions SET message_id = ? WHERE id = ?", [messageID, transmissionID])
            }
        }
    }

    public func complete(_ claim: ClaimedTransmission, owner: String, outcome: TransmissionOutcome,
                         now: Date) async throws(JournalError) -> CompletionResult {
        let jitter = random()
        return try await onThread { db in
            try db.transaction(.immediate) { () throws -> CompletionResult in
                let t = try Self.requireLease(db, id: claim.transmission.id, owner: owner)
                let plan = try CompletionPlan(t, outcome: outcome, policy: self.policy, jitter: jitter, now: now)
                if let lastError = plan.lastError {
                    try db.run("""
                        UPDATE transmissions SET state = ?, next_attempt_at = ?, lease_owner = NULL, lease_expires_at = NULL,
                                                 alerted = 1, last_error = ?, last_error_at = ?, updated_at = ?,
                                                 failure = ?, error_code = ?, pending_recipients = COALESCE(?, pending_recipients)
                        WHERE id = ?
                        """, [plan.result.state.rawValue, JournalTime.millis(plan.result.nextAttemptAt), lastError,
                              JournalTime.millis(now), JournalTime.millis(now), plan.failure?.failure, plan.failure?.code,
                              plan.pendingRecipients, t.id])
                } else {
                    try db.run("""
                        UPDATE transmissions SET state = ?, lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = NULL,
                                                 needs_recheck = 0, alerted = 0, updated_at = ?, pending_recipients = NULL,
                                                 last_error = COALESCE(?, last_error), last_error_at = COALESCE(?, last_error_at)
                        WHERE id = ?
                        """, [plan.result.state.rawValue, JournalTime.millis(now), plan.note,
                              plan.note == nil ? nil : JournalTime.millis(now), t.id])
                }
                try db.run("UPDATE attempts SET ended_at = ?, outcome = ?, response = ? WHERE id = ? AND transmission_id = ?",
                           [JournalTime.millis(now), plan.attemptOutcome, plan.response, claim.attemptID, t.id])
                return plan.result
            }
        }
    }

    public func acknowledge(transmissionID: Int64, kind: AcknowledgementKind, detail: String?, now: Date) async throws(JournalError) -> Transmission {
        try await onThread { db in
            try db.transaction(.immediate) {
                let t = try Self.requireTransmission(db, id: transmissionID)
                guard let rank = t.acknowledgementRank else {
                    throw JournalError.illegalTransition(transmissionID: t.id, from: t.state, to: kind.state)
                }
                try db.run("INSERT INTO acknowledgements (transmission_id, kind, received_at, detail) VALUES (?, ?, ?, ?)",
                           [t.id, kind.rawValue, JournalTime.millis(now), detail.map(Self.bounded)])
                // Acknowledgements may arrive out of order (read before delivered): only move forward.
                if let newRank = kind.state.successRank, newRank > rank {
                    try db.run("UPDATE transmissions SET state = ?, updated_at = ? WHERE id = ?",
                               [kind.state.rawValue, JournalTime.millis(now), t.id])
                }
                return try Self.requireTransmission(db, id: t.id)
            }
        }
    }

    public func acknowledgeFailure(transmissionID: Int64, reason: String, now: Date) async throws(JournalError) -> Transmission {
        try await onThread { db in
            try db.transaction(.immediate) {
                let t = try Self.requireTransmission(db, id: transmissionID)
                if t.state == .failed { return t }
                guard t.state.canMove(to: .failed), TransmissionState.succeeded.contains(t.state) else {
                    throw JournalError.illegalTransition(transmissionID: t.id, from: t.state, to: .failed)
                }
                try db.run("""
                    UPDATE transmissions SET state = 'failed', alerted = 1, last_error = ?, last_error_at = ?, updated_at = ?
                    WHERE id = ?
                    """, [Self.bounded(reason), JournalTime.millis(now), JournalTime.millis(now), t.id])
                return try Self.requireTransmission(db, id: t.id)
            }
        }
    }

    public func transmission(messageID: String) async throws(JournalError) -> Transmission? {
        // Few rows carry a message id and acknowledgements are rare: a scan is acceptable
        // until an index comes with the next schema migration.
        try await onThread { db in
            try db.query("SELECT * FROM transmissions WHERE message_id = ? ORDER BY id DESC LIMIT 1", [messageID])
                .first.map(Self.decodeTransmission)
        }
    }

    public func recoverInterrupted(now: Date) async throws(JournalError) -> [Transmission] {
        try await onThread { db in
            try db.transaction(.immediate) {
                let ids = try db.query("SELECT id FROM transmissions WHERE state = 'sending' AND lease_expires_at <= ? ORDER BY id",
                                       [JournalTime.millis(now)]).compactMap { $0["id"].int64 }
                for id in ids {
                    // A recorded Message-ID: the mail may be at the relay; give its DSN time to come.
                    try db.run("""
                        UPDATE transmissions SET state = 'queued', needs_recheck = 1, lease_owner = NULL, lease_expires_at = NULL,
                                                 next_attempt_at = CASE WHEN message_id IS NULL THEN ? ELSE ? END, updated_at = ?
                        WHERE id = ?
                        """, [JournalTime.millis(now), JournalTime.millis(now.addingTimeInterval(self.policy.interruptedHold)),
                              JournalTime.millis(now), id])
                    try db.run("UPDATE attempts SET ended_at = ?, outcome = 'interrupted' WHERE transmission_id = ? AND ended_at IS NULL",
                               [JournalTime.millis(now), id])
                }
                return try ids.map { try Self.requireTransmission(db, id: $0) }
            }
        }
    }

    public func confirmInterruptedSend(transmissionID: Int64, now: Date) async throws(JournalError) -> Transmission? {
        try await onThread { db in
            try db.transaction(.immediate) { () throws -> Transmission? in
                let t = try Self.requireTransmission(db, id: transmissionID)
                guard t.awaitsInterruptedOutcome(now: now) else { return nil }
                try db.run("""
                    UPDATE transmissions SET state = 'sent', needs_recheck = 0, lease_owner = NULL, lease_expires_at = NULL,
                                             next_attempt_at = NULL, alerted = 0, updated_at = ?
                    WHERE id = ?
                    """, [JournalTime.millis(now), t.id])
                try db.run("UPDATE attempts SET ended_at = ?, outcome = 'interrupted' WHERE transmission_id = ? AND ended_at IS NULL",
                           [JournalTime.millis(now), t.id])
                return try Self.requireTransmission(db, id: t.id)
            }
        }
    }

    public func requeue(_ filter: TransmissionFilter, now: Date) async throws(JournalError) -> [Transmission] {
        try await requeue(filter, includingSucceeded: false, now: now)
    }

    public func requeue(_ filter: TransmissionFilter, includingSucceeded: Bool, now: Date) async throws(JournalError) -> [Transmission] {
        try await onThread { db in
            try db.transaction(.immediate) {
                let allowed: Set<TransmissionState> = includingSucceeded ? TransmissionState.succeeded.union([.failed]) : [.failed]
                var eligible = filter
                // filter.states narrows the choice (e.g. only acknowledged ones), never widens it.
                eligible.states = filter.states.isEmpty || !includingSucceeded ? allowed : filter.states.intersection(allowed)
                let selected = eligible.states.isEmpty ? [] : try Self.select(db, eligible)
                for t in selected {
                    // A new incident: fresh attempt budget and deadline, and a new alert if it fails again.
                    // A success sent again is a new mail, with a new Message-ID (receivers may drop a
                    // Message-ID they already have); a failed one keeps its id for the recheck.
                    // Attempts and acknowledgements are never touched: the new attempt is appended.
                    try db.run("""
                        UPDATE transmissions SET state = 'queued', attempts = 0, alerted = 0, needs_recheck = 0,
                                                 failure = NULL, error_code = NULL,
                                                 message_id = CASE WHEN state = 'failed' THEN message_id ELSE NULL END,
                                                 pending_recipients = CASE WHEN state = 'failed' THEN pending_recipients ELSE NULL END,
                                                 next_attempt_at = ?, deadline_at = ?, updated_at = ?
                        WHERE id = ? AND state = ?
                        """, [JournalTime.millis(now), JournalTime.millis(now.addingTimeInterval(self.policy.deadline)),
                              JournalTime.millis(now), t.id, t.state.rawValue])
                }
                return try selected.map { try Self.requireTransmission(db, id: $0.id) }
            }
        }
    }

    // MARK: - Queries

    public func transmission(id: Int64) async throws(JournalError) -> Transmission? {
        try await onThread { db in try db.query("SELECT * FROM transmissions WHERE id = ?", [id]).first.map(Self.decodeTransmission) }
    }

    public func transmissions(matching filter: TransmissionFilter) async throws(JournalError) -> [Transmission] {
        try await onThread { db in try Self.select(db, filter) }
    }

    public func attempts(transmissionID: Int64) async throws(JournalError) -> [Attempt] {
        try await onThread { db in
            try db.query("SELECT * FROM attempts WHERE transmission_id = ? ORDER BY id", [transmissionID]).map { row in
                Attempt(id: row["id"].int64 ?? 0, transmissionID: row["transmission_id"].int64 ?? 0,
                        startedAt: JournalTime.date(row["started_at"]) ?? .distantPast, endedAt: JournalTime.date(row["ended_at"]),
                        outcome: row["outcome"].string, response: row["response"].string)
            }
        }
    }

    public func acknowledgements(transmissionID: Int64) async throws(JournalError) -> [Acknowledgement] {
        try await onThread { db in
            try db.query("SELECT * FROM acknowledgements WHERE transmission_id = ? ORDER BY id", [transmissionID]).compactMap { row in
                guard let kind = row["kind"].string.flatMap(AcknowledgementKind.init(rawValue:)) else { return nil }
                return Acknowledgement(transmissionID: transmissionID, kind: kind,
                                       receivedAt: JournalTime.date(row["received_at"]) ?? .distantPast, detail: row["detail"].string)
            }
        }
    }

    public func stateCounts() async throws(JournalError) -> [StateCount] {
        try await onThread { db in
            try db.query("SELECT target, state, count(*) AS n FROM transmissions GROUP BY target, state ORDER BY target, state")
                .compactMap { row in
                    guard let target = row["target"].string.flatMap(Destination.init(rawValue:)),
                          let state = row["state"].string.flatMap(TransmissionState.init(rawValue:)) else { return nil }
                    return StateCount(target: target, state: state, count: row["n"].int ?? 0)
                }
        }
    }

    public func oldestWaiting(target: Destination) async throws(JournalError) -> Date? {
        try await onThread { db in
            try db.scalar("""
                SELECT MIN(created_at) FROM transmissions WHERE target = ? AND state IN ('queued', 'retry-wait', 'sending')
                """, [target.rawValue]).flatMap(JournalTime.date)
        }
    }

    public func lastErrors() async throws(JournalError) -> [TargetError] {
        try await onThread { db in
            try Destination.allCases.compactMap { target in
                guard let row = try db.query("""
                    SELECT id, document_id, last_error, last_error_at FROM transmissions
                    WHERE target = ? AND last_error_at IS NOT NULL ORDER BY last_error_at DESC, id DESC LIMIT 1
                    """, [target.rawValue]).first else { return nil }
                return TargetError(target: target, transmissionID: row["id"].int64 ?? 0, documentID: row["document_id"].string ?? "",
                                   message: row["last_error"].string ?? "", at: JournalTime.date(row["last_error_at"]) ?? .distantPast)
            }
        }
    }

    public func documentCountsByMonth() async throws(JournalError) -> [MonthlyCount] {
        try await onThread { db in
            try db.query("SELECT received_month, kind, count(*) AS n FROM documents GROUP BY received_month, kind ORDER BY 1, 2")
                .compactMap { row in
                    guard let month = row["received_month"].string,
                          let kind = row["kind"].string.flatMap(DocumentKind.init(rawValue:)) else { return nil }
                    return MonthlyCount(month: month, kind: kind, count: row["n"].int ?? 0)
                }
        }
    }

    // MARK: - Helpers

    /// Synchronous access (schema checks): runs on the calling thread between two batches.
    func locked<T>(_ body: (SQLiteConnection) throws -> T) throws(JournalError) -> T {
        do { return try queue.withConnection(body) } catch { throw Self.journalError(error) }
    }

    /// Runs `body` on the journal's thread; it commits with whatever else is in flight.
    func onThread<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws(JournalError) -> T {
        do { return try await queue.run(body) } catch { throw Self.journalError(error) }
    }

    private static func journalError(_ error: any Error) -> JournalError {
        if let error = error as? JournalError { return error }
        if let error = error as? SQLiteError { return .database(error.description) }
        return .database(String(describing: error))
    }

    private static func bounded(_ text: String) -> String { JournalText.bounded(text) }

    private static func select(_ db: SQLiteConnection, _ filter: TransmissionFilter) throws -> [Transmission] {
        var clauses: [String] = []
        var bindings: [any SQLiteBindable] = []
        if !filter.transmissionIDs.isEmpty {
            clauses.append("t.id IN (\(filter.transmissionIDs.map { _ in "?" }.joined(separator: ", ")))")
            bindings += filter.transmissionIDs.map { $0 as any SQLiteBindable }
        }
        if let documentID = filter.documentID { clauses.append("t.document_id = ?"); bindings.append(documentID) }
        if let patientKey = filter.patientKey { clauses.append("d.patient_key = ?"); bindings.append(patientKey) }
        if let target = filter.target { clauses.append("t.target = ?"); bindings.append(target.rawValue) }
        if !filter.states.isEmpty {
            let states = filter.states.map(\.rawValue).sorted()
            clauses.append("t.state IN (\(states.map { _ in "?" }.joined(separator: ", ")))")
            bindings += states.map { $0 as any SQLiteBindable }
        }
        if let from = filter.from { clauses.append("t.created_at >= ?"); bindings.append(JournalTime.millis(from)) }
        if let until = filter.until { clauses.append("t.created_at < ?"); bindings.append(JournalTime.millis(until)) }
        var sql = "SELECT t.* FROM transmissions t JOIN documents d ON d.id = t.document_id AND d.version = t.version"
        if !clauses.isEmpty { sql += " WHERE " + clauses.joined(separator: " AND ") }
        sql += " ORDER BY t.created_at, t.id"
        if let limit = filter.limit { sql += " LIMIT ?"; bindings.append(limit) }
        return try db.query(sql, bindings).map(decodeTransmission)
    }

    private static func requireDocument(_ db: SQLiteConnection, id: String, version: Int) throws -> JournalDocument {
        guard let row = try db.query("SELECT * FROM documents WHERE id = ? AND version = ?", [id, version]).first else {
            throw JournalError.unknownDocument(id: id, version: version)
        }
        return try decodeDocument(row)
    }

    private static func requireTransmission(_ db: SQLiteConnection, id: Int64) throws -> Transmission {
        guard let row = try db.query("SELECT * FROM transmissions WHERE id = ?", [id]).first else {
            throw JournalError.unknownTransmission(id)
        }
        return try decodeTransmission(row)
    }

    /// The transmission, if it is still `sending` under `owner`'s lease.
    private static func requireLease(_ db: SQLiteConnection, id: Int64, owner: String) throws -> Transmission {
        let t = try requireTransmission(db, id: id)
        guard t.state == .sending, t.leaseOwner == owner else { throw JournalError.leaseLost(transmissionID: id, owner: owner) }
        return t
    }

    private static func decodeDocument(_ row: SQLiteRow) throws -> JournalDocument {
        try JournalRowDecoder.document(SQLiteColumns(row: row))
    }

    private static func decodeTransmission(_ row: SQLiteRow) throws -> Transmission {
        try JournalRowDecoder.transmission(SQLiteColumns(row: row))
    }
}

/// SQLite rows as the shared decoder reads them.
struct SQLiteColumns: JournalColumns {
    let row: SQLiteRow
    func text(_ name: String) -> String? { row[name].string }
    func integer(_ name: String) -> Int64? { row[name].int64 }
    func flag(_ name: String) -> Bool { row[name].int == 1 }
}
