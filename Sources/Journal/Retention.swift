import Foundation
import PasserelleCore

/// What a purge did (or, dry run, would do).
public struct PurgeResult: Sendable, Hashable {
    /// Content ended before this time is purged.
    public var cutoff: Date
    public var dryRun: Bool
    /// Document sets whose content is (would be) purged.
    public var sets: Int
    /// Document rows (all versions of those sets).
    public var documents: Int
    /// Their transmissions (kept; linked to the audit row).
    public var transmissions: Int
    /// Blobs deleted (intake records and built CDAs), and their bytes.
    public var blobs: Int
    public var bytes: Int64
    /// The audit row (nil for a dry run or when nothing was purged).
    public var action: OperatorAction?
}

/// Retention of the documents' content (`[journal] retention_days`, `passerelle purge`).
///
/// A document *set* (every version of a document) is purged once none of its transmissions can
/// still be sent (none queued, retry-wait, sending or held), all of its versions were queued,
/// and its last transmission changed before the cutoff. Purging deletes the intake record and
/// built CDA blobs and clears the columns that point at the patient (masked INS, patient hash,
/// the input's file name, pending MSSanté recipients). The document, transmission, attempt,
/// acknowledgement and stay rows stay, with every column the usage report counts (kind, FINESS,
/// stay, identity status, action, states, failure, error code, times), so a past month's report
/// is the same before and after.
public protocol JournalRetention: OperatorQueue {
    /// Purges (or counts, `dryRun`) the sets ended before `cutoff`, audited as an operator
    /// action (`purge`) in the same transaction.
    func purge(endedBefore cutoff: Date, dryRun: Bool, _ request: OperatorRequest, now: Date) async throws(JournalError) -> PurgeResult
}

extension SQLiteJournalStore: JournalRetention {}
extension PostgresJournalStore: JournalRetention {}

/// The retention statements, written once with `?N` marks (see ``SQLDialect/render(_:)``).
enum RetentionSQL {
    /// States in which a transmission may still be sent: its content must stay.
    static let active: Set<TransmissionState> = [.queued, .retryWait, .sending, .held]

    /// Sets with unpurged content whose every version is queued and whose transmissions are
    /// all ended, the last one before ?1. The `received_at` bound uses its index: a set whose
    /// last transmission ended before the cutoff was received before it.
    static let candidateSets = """
        SELECT d.set_id AS set_id FROM documents d
        JOIN transmissions t ON t.document_id = d.id AND t.version = d.version
        WHERE d.set_id IN (SELECT set_id FROM documents WHERE purged_at IS NULL AND received_at < ?1)
        GROUP BY d.set_id
        HAVING MAX(t.updated_at) < ?1
           AND SUM(CASE WHEN t.state IN ('queued', 'retry-wait', 'sending', 'held') THEN 1 ELSE 0 END) = 0
           AND NOT EXISTS (SELECT 1 FROM documents x WHERE x.set_id = d.set_id AND x.state <> 'queued')
        ORDER BY MIN(d.received_at), d.set_id
        """
    /// Sets per write transaction: a first purge of a year of documents must not hold the
    /// journal's write lock (SQLite) for long while intake and senders wait on it.
    static let batch = 500

    /// The set's transmissions (locked in PostgreSQL unless a dry run, which only reads: a
    /// resend or a sender waits for the purge, or the purge sees what they changed).
    static func setTransmissions(_ dialect: SQLDialect, lock: Bool) -> String {
        """
        SELECT t.id AS id, t.state AS state, t.updated_at AS updated_at FROM transmissions t
        JOIN documents d ON d.id = t.document_id AND d.version = t.version
        WHERE d.set_id = ?1 ORDER BY t.id\(lock ? dialect.forUpdate(of: "t") : "")
        """
    }

    static let setDocuments =
        "SELECT id, version, blob_sha256, built_sha256 FROM documents WHERE set_id = ?1 AND purged_at IS NULL ORDER BY version"

    static let markPurged = """
        UPDATE documents SET purged_at = ?1, ins_masked = NULL, patient_key = NULL
        WHERE id = ?2 AND version = ?3 AND purged_at IS NULL
        """
    /// The input's SHA-256 stays (the same file dropped again is still recognised); its name,
    /// which producers often build from the patient's name, goes.
    static let forgetInputName = "UPDATE inputs SET file_name = '(purged)' WHERE document_id = ?1 AND version = ?2"
    /// MSSanté recipients still pending (patients' addresses). `updated_at` is left alone: the
    /// report and retention read it as the time the transmission ended.
    static let forgetRecipients =
        "UPDATE transmissions SET pending_recipients = NULL WHERE document_id = ?1 AND version = ?2 AND pending_recipients IS NOT NULL"
    static let lastError = "SELECT id, last_error FROM transmissions WHERE id = ?1 AND last_error IS NOT NULL"
    static let setLastError = "UPDATE transmissions SET last_error = ?1 WHERE id = ?2"
    static let attemptResponses = "SELECT id, response FROM attempts WHERE transmission_id = ?1 AND response IS NOT NULL"
    static let setAttemptResponse = "UPDATE attempts SET response = ?1 WHERE id = ?2"
    static let acknowledgementDetails = "SELECT id, detail FROM acknowledgements WHERE transmission_id = ?1 AND detail IS NOT NULL"
    static let setAcknowledgementDetail = "UPDATE acknowledgements SET detail = ?1 WHERE id = ?2"
    /// The sets of the rows whose content is kept that point at a blob.
    static let blobUsers = """
        SELECT DISTINCT set_id FROM documents WHERE purged_at IS NULL AND (blob_sha256 = ?1 OR built_sha256 = ?1)
        """
    /// The size of a blob kept in `blobs` (PostgreSQL: every blob; SQLite: small intake records).
    static func blobSize(_ dialect: SQLDialect) -> String {
        "SELECT \(dialect == .postgresql ? "octet_length" : "length")(content) AS n FROM blobs WHERE sha256 = ?1"
    }
    static let deleteBlob = "DELETE FROM blobs WHERE sha256 = ?1"
    /// Blobs of documents purged recently whose file a crash may have left (the files are
    /// deleted after the commit): the next purge deletes them.
    static let recentlyPurgedBlobs = """
        SELECT blob_sha256, built_sha256 FROM documents WHERE purged_at >= ?1
        """
}

extension SQLJournalBackend {
    /// Rewrites `column` of the rows `select` returns for transmission `t` with ``LogRedaction``
    /// where that changes it.
    static func redact(_ db: Connection, select: String, update: String, column: String, _ t: Int64) throws {
        for row in try db.query(db.dialect.render(select), [.integer(t)]) {
            guard let id = row.integer("id"), let text = row.text(column) else { continue }
            let masked = LogRedaction.redact(text)
            if masked != text { _ = try db.change(db.dialect.render(update), [.text(masked), .integer(id)]) }
        }
    }

    public func purge(endedBefore cutoff: Date, dryRun: Bool, _ request: OperatorRequest,
                      now: Date) async throws(JournalError) -> PurgeResult {
        try await purge(endedBefore: cutoff, dryRun: dryRun, request, now: now, batch: RetentionSQL.batch)
    }

    func purge(endedBefore cutoff: Date, dryRun: Bool, _ request: OperatorRequest, now: Date,
               batch size: Int) async throws(JournalError) -> PurgeResult {
        // A dry run reads everything in one snapshot (readers block no one).
        if dryRun { return try await snapshot(purgeBatch(cutoff, dryRun: true, limit: nil, sweep: false, request, now: now)).result }
        // Batches, each one transaction with its own audit row, until a batch finds fewer
        // candidates than it may take (or purges none: a set that became active is skipped).
        var total = PurgeResult(cutoff: cutoff, dryRun: false, sets: 0, documents: 0, transmissions: 0, blobs: 0, bytes: 0)
        var first = true
        while true {
            let batch = try await write(purgeBatch(cutoff, dryRun: false, limit: size, sweep: first, request, now: now))
            first = false
            // After the commit: a crash before this leaves files the next purge deletes (the
            // sweep of recent purges); deleting first could lose content the journal still has.
            for digest in batch.files { blobs.remove(digest) }
            total.sets += batch.result.sets
            total.documents += batch.result.documents
            total.transmissions += batch.result.transmissions
            total.blobs += batch.result.blobs
            total.bytes += batch.result.bytes
            total.action = batch.result.action ?? total.action
            if batch.candidates < size || batch.result.sets == 0 { return total }
        }
    }

    /// One purge transaction's work: at most `limit` candidate sets.
    func purgeBatch(_ cutoff: Date, dryRun: Bool, limit: Int?, sweep: Bool, _ request: OperatorRequest,
                    now: Date) -> @Sendable (Connection) throws -> (result: PurgeResult, files: [String], candidates: Int) {
        let blobs = self.blobs
        let cut = JournalTime.millis(cutoff)
        let stamp = JournalTime.millis(now)
        return { db in
            func q(_ sql: String, _ values: any SQLBindable...) throws -> [Row] {
                try db.query(db.dialect.render(sql), values.map(\.sqlValue))
            }
            var result = PurgeResult(cutoff: cutoff, dryRun: dryRun, sets: 0, documents: 0, transmissions: 0, blobs: 0, bytes: 0)
            var transmissionIDs: [Int64] = []
            var digests: [String] = []
            var purgedSets: Set<String> = []
            let candidates = try q(RetentionSQL.candidateSets + (limit.map { " LIMIT \($0)" } ?? ""), cut).compactMap { $0.text("set_id") }
            for set in candidates {
                // Checked again under the locks: the candidate query took none.
                let transmissions = try q(RetentionSQL.setTransmissions(db.dialect, lock: !dryRun), set)
                let ended = transmissions.allSatisfy { row in
                    row.text("state").flatMap(TransmissionState.init(rawValue:)).map { !RetentionSQL.active.contains($0) } ?? false
                        && (row.integer("updated_at") ?? .max) < cut
                }
                guard ended, !transmissions.isEmpty else { continue }
                let documents = try q(RetentionSQL.setDocuments, set)
                guard !documents.isEmpty else { continue }
                result.sets += 1
                purgedSets.insert(set)
                result.documents += documents.count
                transmissionIDs += transmissions.compactMap { $0.integer("id") }
                for d in documents {
                    digests += [d.text("blob_sha256"), d.text("built_sha256")].compactMap { $0 }.filter { !$0.isEmpty }
                    guard !dryRun, let id = d.text("id"), let version = d.integer("version") else { continue }
                    _ = try db.change(db.dialect.render(RetentionSQL.markPurged), [.integer(stamp), .text(id), .integer(version)])
                    _ = try db.change(db.dialect.render(RetentionSQL.forgetInputName), [.text(id), .integer(version)])
                    _ = try db.change(db.dialect.render(RetentionSQL.forgetRecipients), [.text(id), .integer(version)])
                }
                // Peers' texts may quote a patient mailbox (its local part is the INS) or a NIR:
                // masked as in the logs. Codes and document ids stay (the report counts codes).
                if !dryRun {
                    for row in transmissions {
                        guard let t = row.integer("id") else { continue }
                        try Self.redact(db, select: RetentionSQL.lastError, update: RetentionSQL.setLastError, column: "last_error", t)
                        try Self.redact(db, select: RetentionSQL.attemptResponses, update: RetentionSQL.setAttemptResponse, column: "response", t)
                        try Self.redact(db, select: RetentionSQL.acknowledgementDetails, update: RetentionSQL.setAcknowledgementDetail,
                                        column: "detail", t)
                    }
                }
            }
            result.transmissions = transmissionIDs.count
            // A blob a kept document of another set still points at stays (the same bytes in
            // two documents). The purged sets' own rows are told apart by their set id, so a
            // dry run (nothing marked) counts exactly what the purge would delete.
            var deletable: [String] = []
            for digest in Set(digests).sorted() {
                let users = try q(RetentionSQL.blobUsers, digest).compactMap { $0.text("set_id") }
                if users.contains(where: { !purgedSets.contains($0) }) { continue }
                deletable.append(digest)
            }
            for digest in deletable {
                // PostgreSQL keeps every blob in `blobs`; SQLite its small intake records (migration 9).
                let inDatabase = try q(RetentionSQL.blobSize(db.dialect), digest).first?.integer("n")
                if db.dialect == .postgresql || inDatabase != nil {
                    result.bytes += inDatabase ?? 0
                    if !dryRun { _ = try db.change(db.dialect.render(RetentionSQL.deleteBlob), [.text(digest)]) }
                } else {
                    result.bytes += blobs.size(digest) ?? 0
                }
                result.blobs += 1
            }
            if !dryRun, !transmissionIDs.isEmpty {
                var audited = request
                audited.selection = "ended_before=\(Date.ISO8601FormatStyle().format(cutoff)) sets=\(result.sets) documents=\(result.documents)"
                    + (request.selection.isEmpty ? "" : " " + request.selection)
                result.action = try db.audit(.purge, audited, transmissionIDs, now: now)
            }
            // Files of recent purges a crash left behind (deleted after this commit too).
            var leftovers: [String] = []
            if !dryRun && sweep {
                let week = JournalTime.millis(now.addingTimeInterval(-7 * 86_400))
                for row in try q(RetentionSQL.recentlyPurgedBlobs, week) {
                    for digest in [row.text("blob_sha256"), row.text("built_sha256")].compactMap({ $0 })
                    where !digest.isEmpty && !deletable.contains(digest) && blobs.size(digest) != nil {
                        if try q(RetentionSQL.blobUsers, digest).isEmpty { leftovers.append(digest) }
                    }
                }
            }
            return (result, dryRun ? [] : deletable + leftovers, candidates.count)
        }
    }
}

