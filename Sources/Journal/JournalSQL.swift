import Foundation
import PasserelleCore
import PostgresKit
import SQLiteKit

/// The two SQL dialects the journal speaks. Statements are written once; what differs is the
/// parameter mark and the row locks, decided here.
enum SQLDialect: Sendable, CaseIterable {
    case sqlite, postgresql

    /// `?N` in SQLite, `$N` in PostgreSQL (SQLite reads `$1` as a *named* parameter).
    func parameter(_ n: Int) -> String { (self == .sqlite ? "?" : "$") + String(n) }

    /// A read that is followed by a write in the same transaction locks its rows in PostgreSQL
    /// (several nodes share the database); SQLite's `BEGIN IMMEDIATE` already holds the whole
    /// database's write lock.
    func forUpdate(of table: String? = nil) -> String {
        self == .sqlite ? "" : " FOR UPDATE" + (table.map { " OF \($0)" } ?? "")
    }

    /// The claim: a row another PostgreSQL node is claiming right now is passed over, not waited
    /// for, and never taken twice. SQLite has one writer at a time (`BEGIN IMMEDIATE`).
    var skipLocked: String { self == .sqlite ? "" : " FOR UPDATE SKIP LOCKED" }

    /// `text` with its `?N` marks in this dialect (statements of ``JournalStatement`` hold no
    /// other `?`).
    func render(_ text: String) -> String {
        guard self == .postgresql else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count)
        var previous: Character = " "
        for c in text {
            if previous == "?", c.isNumber { out.removeLast(); out.append("$") }
            out.append(c)
            previous = c
        }
        return out
    }
}

/// A parameter value, bound by each kit as it binds the Swift value itself.
enum SQLValue: Sendable, Equatable {
    case integer(Int64), text(String), bytes(Data), null

    var bound: (sqlite: any SQLiteBindable, postgres: any PostgresBindable) {
        switch self {
        case .integer(let v): (v, v)
        case .text(let v): (v, v)
        case .bytes(let v): (v, v)
        case .null: (SQLiteValue.null, PostgresValue.null)
        }
    }
}

protocol SQLBindable: Sendable { var sqlValue: SQLValue { get } }
extension Int: SQLBindable { var sqlValue: SQLValue { .integer(Int64(self)) } }
extension Int64: SQLBindable { var sqlValue: SQLValue { .integer(self) } }
extension String: SQLBindable { var sqlValue: SQLValue { .text(self) } }
extension Data: SQLBindable { var sqlValue: SQLValue { .bytes(self) } }
extension Optional: SQLBindable where Wrapped: SQLBindable { var sqlValue: SQLValue { self?.sqlValue ?? .null } }

/// Numbered parameters in the order they are added, whatever their place in the text (for
/// statements built from a filter).
struct SQLParameters {
    let dialect: SQLDialect
    var values: [SQLValue] = []

    mutating func add(_ value: some SQLBindable) -> String {
        values.append(value.sqlValue)
        return dialect.parameter(values.count)
    }
    mutating func list(_ items: [some SQLBindable]) -> String {
        items.isEmpty ? "(NULL)" : "(" + items.map { add($0) }.joined(separator: ", ") + ")"
    }
}

/// The executor seam: one connection of either backend, running a statement already in its
/// dialect. Backend errors pass through; the store turns them into ``JournalError``.
struct JournalConnection<Row: JournalColumns> {
    let dialect: SQLDialect
    /// Every row a statement returns.
    let query: (_ sql: String, _ values: [SQLValue]) throws -> [Row]
    /// Runs a statement; the number of rows it changed.
    let change: (_ sql: String, _ values: [SQLValue]) throws -> Int
}

extension JournalConnection {
    func rows(_ statement: JournalStatement, _ values: any SQLBindable...) throws -> [Row] {
        try query(dialect.render(statement.sql(dialect)), values.map(\.sqlValue))
    }
    @discardableResult func run(_ statement: JournalStatement, _ values: any SQLBindable...) throws -> Int {
        try change(dialect.render(statement.sql(dialect)), values.map(\.sqlValue))
    }
}

/// Every statement of the journal's stores, written once with `?N` marks and the dialect's
/// clauses. Flags are written `TRUE`/`FALSE`: SQLite stores them as 1/0, PostgreSQL as booleans.
enum JournalStatement: Sendable {
    case insertInput, insertDocument, insertTransmission, transmissionForTarget
    case stay, upsertStay, inputBySHA, documentOrSet
    case document(lock: Bool), transmission(lock: Bool), documentsInState
    case markBuilt, markQueued, claim, insertAttempt, setMessageID
    case completeFailure, completeSuccess, endAttempt, insertAcknowledgement, setState, failAfterSuccess
    case transmissionByMessageID, recoverExpired, interruptAttempts, confirmSent, requeue
    case attempts, acknowledgements, stateCounts, waitingCounts, oldestWaiting, lastError, documentCountsByMonth
    /// Operator commands (``OperatorQueue``): one transmission each, guarded by its state.
    case flush, hold, release, discard
    case insertOperatorAction, insertOperatorActionTransmission, operatorActionsOfTransmission
    /// The console: one document's versions, the activity per hour.
    case documentVersions, hourlyActivity
    /// The console's logins and logouts (``ConsoleEventLog``).
    case insertConsoleEvent
    /// Blob bytes kept in the journal: every blob on PostgreSQL; an SQLite journal's small intake records.
    case storeBlob

    static let all: [JournalStatement] = [
        .insertInput, .insertDocument, .insertTransmission, .transmissionForTarget, .stay, .upsertStay, .inputBySHA,
        .documentOrSet, .document(lock: false), .document(lock: true), .transmission(lock: false), .transmission(lock: true),
        .documentsInState, .markBuilt, .markQueued, .claim, .insertAttempt, .setMessageID, .completeFailure,
        .completeSuccess, .endAttempt, .insertAcknowledgement, .setState, .failAfterSuccess, .transmissionByMessageID,
        .recoverExpired, .interruptAttempts, .confirmSent, .requeue, .attempts, .acknowledgements, .stateCounts,
        .waitingCounts, .oldestWaiting, .lastError, .documentCountsByMonth, .flush, .hold, .release, .discard, .insertOperatorAction,
        .insertOperatorActionTransmission, .operatorActionsOfTransmission, .documentVersions, .hourlyActivity,
        .insertConsoleEvent, .storeBlob,
    ]

    func sql(_ d: SQLDialect) -> String {
        switch self {
        case .insertInput:
            "INSERT INTO inputs (sha256, file_name, received_at, document_id, version) VALUES (?1, ?2, ?3, ?4, ?5)"
        case .insertDocument:
            """
            INSERT INTO documents (id, version, set_id, kind, ins_masked, patient_key, identity_status, finess, stay_id,
                                   blob_sha256, built_sha256, state, received_at, received_month, updated_at, action)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?13, ?15)
            """
        case .insertTransmission:
            // The UNIQUE key makes a second one for the same document, version and target impossible.
            """
            INSERT INTO transmissions (document_id, version, target, state, created_at, created_month, updated_at,
                                       deadline_at, next_attempt_at)
            VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?4, ?6, ?4)
            ON CONFLICT (document_id, version, target) DO NOTHING
            """
        case .transmissionForTarget: "SELECT * FROM transmissions WHERE document_id = ?1 AND version = ?2 AND target = ?3"
        case .stay: "SELECT * FROM stays WHERE finess = ?1 AND stay_id = ?2"
        case .upsertStay:
            // A date already known is kept when the new record lacks it.
            """
            INSERT INTO stays (finess, stay_id, admitted_at, discharged_at, discharged_month) VALUES (?1, ?2, ?3, ?4, ?5)
            ON CONFLICT (finess, stay_id) DO UPDATE SET
                admitted_at = COALESCE(excluded.admitted_at, stays.admitted_at),
                discharged_at = COALESCE(excluded.discharged_at, stays.discharged_at),
                discharged_month = COALESCE(excluded.discharged_month, stays.discharged_month)
            """
        case .inputBySHA: "SELECT document_id, version FROM inputs WHERE sha256 = ?1"
        case .documentOrSet: "SELECT * FROM documents WHERE (id = ?1 AND version = ?2) OR (set_id = ?3 AND version = ?2)"
        case .document(let lock): "SELECT * FROM documents WHERE id = ?1 AND version = ?2" + (lock ? d.forUpdate() : "")
        case .transmission(let lock): "SELECT * FROM transmissions WHERE id = ?1" + (lock ? d.forUpdate() : "")
        case .documentsInState: "SELECT * FROM documents WHERE state = ?1 ORDER BY received_at, id"
        case .markBuilt: "UPDATE documents SET state = 'built', built_sha256 = ?1, updated_at = ?2 WHERE id = ?3 AND version = ?4"
        case .markQueued: "UPDATE documents SET state = 'queued', updated_at = ?1 WHERE id = ?2 AND version = ?3"
        case .claim:
            """
            UPDATE transmissions SET state = 'sending', attempts = attempts + 1, lease_owner = ?1, lease_expires_at = ?2,
                                     updated_at = ?3
            WHERE id = (
                SELECT id FROM transmissions
                WHERE target = ?4 AND state IN ('queued', 'retry-wait') AND next_attempt_at <= ?3
                ORDER BY next_attempt_at, id LIMIT 1\(d.skipLocked))
            RETURNING *
            """
        case .insertAttempt: "INSERT INTO attempts (transmission_id, started_at) VALUES (?1, ?2) RETURNING id"
        case .setMessageID: "UPDATE transmissions SET message_id = ?1 WHERE id = ?2"
        case .completeFailure:
            """
            UPDATE transmissions SET state = ?1, next_attempt_at = ?2, lease_owner = NULL, lease_expires_at = NULL,
                                     alerted = TRUE, last_error = ?3, last_error_at = ?4, updated_at = ?4,
                                     failure = ?5, error_code = ?6, pending_recipients = COALESCE(?8, pending_recipients)
            WHERE id = ?7
            """
        case .completeSuccess:
            """
            UPDATE transmissions SET state = ?1, lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = NULL,
                                     needs_recheck = FALSE, alerted = FALSE, updated_at = ?2, pending_recipients = NULL,
                                     last_error = COALESCE(?4, last_error), last_error_at = COALESCE(?5, last_error_at)
            WHERE id = ?3
            """
        case .endAttempt: "UPDATE attempts SET ended_at = ?1, outcome = ?2, response = ?3 WHERE id = ?4 AND transmission_id = ?5"
        case .insertAcknowledgement:
            "INSERT INTO acknowledgements (transmission_id, kind, received_at, detail) VALUES (?1, ?2, ?3, ?4)"
        case .setState: "UPDATE transmissions SET state = ?1, updated_at = ?2 WHERE id = ?3"
        case .failAfterSuccess:
            """
            UPDATE transmissions SET state = 'failed', alerted = TRUE, last_error = ?1, last_error_at = ?2, updated_at = ?2
            WHERE id = ?3
            """
        case .transmissionByMessageID:
            // Few rows carry a message id and acknowledgements are rare: a scan is acceptable
            // until an index comes with the next schema migration.
            "SELECT * FROM transmissions WHERE message_id = ?1 ORDER BY id DESC LIMIT 1"
        case .recoverExpired:
            // One UPDATE: two PostgreSQL nodes recovering at once re-check the condition on the
            // locked rows, so each expired lease is recovered by exactly one of them. A recorded
            // Message-ID: the mail may be at the relay; its DSN gets time to come (?2).
            """
            UPDATE transmissions SET state = 'queued', needs_recheck = TRUE, lease_owner = NULL, lease_expires_at = NULL,
                                     next_attempt_at = CASE WHEN message_id IS NULL THEN ?1 ELSE ?2 END, updated_at = ?1
            WHERE state = 'sending' AND lease_expires_at <= ?1
            RETURNING id
            """
        case .interruptAttempts:
            "UPDATE attempts SET ended_at = ?1, outcome = 'interrupted' WHERE transmission_id = ?2 AND ended_at IS NULL"
        case .confirmSent:
            """
            UPDATE transmissions SET state = 'sent', needs_recheck = FALSE, lease_owner = NULL, lease_expires_at = NULL,
                                     next_attempt_at = NULL, alerted = FALSE, updated_at = ?1
            WHERE id = ?2
            """
        case .requeue:
            // A success sent again is a new mail, with a new Message-ID (receivers may drop a
            // Message-ID they already have); a failed one keeps its id for the recheck.
            """
            UPDATE transmissions SET state = 'queued', attempts = 0, alerted = FALSE, needs_recheck = FALSE,
                                     failure = NULL, error_code = NULL,
                                     message_id = CASE WHEN state = 'failed' THEN message_id ELSE NULL END,
                                     pending_recipients = CASE WHEN state = 'failed' THEN pending_recipients ELSE NULL END,
                                     next_attempt_at = ?1, deadline_at = ?2, updated_at = ?1
            WHERE id = ?3 AND state = ?4
            """
        case .attempts: "SELECT * FROM attempts WHERE transmission_id = ?1 ORDER BY id"
        case .acknowledgements: "SELECT * FROM acknowledgements WHERE transmission_id = ?1 ORDER BY id"
        case .stateCounts: "SELECT target, state, count(*) AS n FROM transmissions GROUP BY target, state ORDER BY target, state"
        case .waitingCounts:
            // Migration 7's index ranges: the waiting rows only, whatever the journal's size.
            "SELECT target, state, count(*) AS n FROM transmissions WHERE \(JournalSchema.waitingStates) GROUP BY target, state ORDER BY target, state"
        case .oldestWaiting:
            "SELECT MIN(created_at) AS oldest FROM transmissions WHERE target = ?1 AND \(JournalSchema.waitingStates)"
        case .lastError:
            """
            SELECT id, document_id, last_error, last_error_at FROM transmissions
            WHERE target = ?1 AND last_error_at IS NOT NULL ORDER BY last_error_at DESC, id DESC LIMIT 1
            """
        case .documentCountsByMonth:
            "SELECT received_month, kind, count(*) AS n FROM documents GROUP BY received_month, kind ORDER BY 1, 2"
        case .flush:
            // Due now: the next claim takes it (attempts and deadline unchanged).
            "UPDATE transmissions SET next_attempt_at = ?1, updated_at = ?1 WHERE id = ?2 AND state = 'retry-wait'"
        case .hold: "UPDATE transmissions SET state = 'held', updated_at = ?1 WHERE id = ?2 AND state IN ('queued', 'retry-wait')"
        case .release:
            // Due now, with a fresh deadline: the time spent held is not counted against it.
            """
            UPDATE transmissions SET state = 'queued', next_attempt_at = ?1, deadline_at = ?2, updated_at = ?1
            WHERE id = ?3 AND state = 'held'
            """
        case .discard:
            "UPDATE transmissions SET state = 'discarded', next_attempt_at = NULL, updated_at = ?1 WHERE id = ?2 AND state IN ('failed', 'held')"
        case .insertOperatorAction:
            """
            INSERT INTO operator_actions (acted_at, os_user, action, selection, transmission_count, reason)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id
            """
        case .insertOperatorActionTransmission:
            "INSERT INTO operator_action_transmissions (action_id, transmission_id) VALUES (?1, ?2)"
        case .operatorActionsOfTransmission:
            """
            SELECT a.* FROM operator_actions a JOIN operator_action_transmissions x ON x.action_id = a.id
            WHERE x.transmission_id = ?1 ORDER BY a.acted_at, a.id
            """
        case .documentVersions: "SELECT * FROM documents WHERE id = ?1 ORDER BY version"
        case .hourlyActivity:
            // Hours counted back from ?2 (bucket 0: the hour that ends there), so one query gives
            // the last hour and the last day exactly. Each range is on an indexed time column
            // (documents_received, attempts_started); the DMP's answer closes the send (no
            // acknowledgement row), MSSanté's delivery notification is a row.
            """
            SELECT bucket, SUM(received) AS received, SUM(acknowledged) AS acknowledged FROM (
                SELECT (CAST(?2 AS BIGINT) - 1 - received_at) / 3600000 AS bucket, 1 AS received, 0 AS acknowledged FROM documents
                WHERE received_at >= ?1 AND received_at < ?2
                UNION ALL
                SELECT (CAST(?2 AS BIGINT) - 1 - a.started_at) / 3600000, 0, 1 FROM attempts a JOIN transmissions t ON t.id = a.transmission_id
                WHERE a.started_at >= ?1 AND a.started_at < ?2 AND a.outcome = 'sent' AND t.target = 'dmp'
                UNION ALL
                SELECT (CAST(?2 AS BIGINT) - 1 - received_at) / 3600000, 0, 1 FROM acknowledgements
                WHERE received_at >= ?1 AND received_at < ?2 AND kind IN ('acknowledged', 'delivered')
            ) events GROUP BY bucket ORDER BY bucket DESC
            """
        case .insertConsoleEvent:
            "INSERT INTO console_events (occurred_at, user_name, address, event) VALUES (?1, ?2, ?3, ?4) RETURNING id"
        case .storeBlob: "INSERT INTO blobs (sha256, content, stored_at) VALUES (?1, ?2, ?3) ON CONFLICT (sha256) DO NOTHING"
        }
    }

    /// The transmissions a filter selects (joined to their document for the patient key), oldest
    /// first; `lock` for a read followed by a write.
    static func transmissions(matching filter: TransmissionFilter, lock: Bool, _ dialect: SQLDialect) -> (sql: String, values: [SQLValue]) {
        var p = SQLParameters(dialect: dialect)
        var clauses: [String] = []
        if !filter.transmissionIDs.isEmpty { clauses.append("t.id IN \(p.list(filter.transmissionIDs))") }
        if let documentID = filter.documentID { clauses.append("t.document_id = \(p.add(documentID))") }
        if let patientKey = filter.patientKey { clauses.append("d.patient_key = \(p.add(patientKey))") }
        if let target = filter.target { clauses.append("t.target = \(p.add(target.rawValue))") }
        if !filter.states.isEmpty { clauses.append("t.state IN \(p.list(filter.states.map(\.rawValue).sorted()))") }
        if let kind = filter.kind { clauses.append("d.kind = \(p.add(kind.rawValue))") }
        if let from = filter.from { clauses.append("t.created_at >= \(p.add(JournalTime.millis(from)))") }
        if let until = filter.until { clauses.append("t.created_at < \(p.add(JournalTime.millis(until)))") }
        if let afterID = filter.afterID { clauses.append("t.id > \(p.add(afterID))") }
        var sql = "SELECT t.* FROM transmissions t JOIN documents d ON d.id = t.document_id AND d.version = t.version"
        if !clauses.isEmpty { sql += " WHERE " + clauses.joined(separator: " AND ") }
        sql += filter.order == .id ? " ORDER BY t.id" : " ORDER BY t.created_at, t.id"
        if let limit = filter.limit { sql += " LIMIT \(p.add(limit))" }
        if lock { sql += dialect.forUpdate(of: "t") }
        return (sql, p.values)
    }

    /// Operator actions, oldest first; with a limit, the most recent ones.
    static func operatorActions(_ query: OperatorActionQuery, _ dialect: SQLDialect) -> (sql: String, values: [SQLValue]) {
        recentRows(of: "operator_actions", time: "acted_at", from: query.from, until: query.until, limit: query.limit, dialect) { p in
            query.actions.isEmpty ? [] : ["action IN \(p.list(query.actions.map(\.rawValue).sorted()))"]
        }
    }

    /// The rows of an audit trail (`table`, timed by `time`) in `[from, until)` and the `more`
    /// conditions, oldest first; with a `limit`, the most recent ones.
    static func recentRows(of table: String, time: String, from: Date?, until: Date?, limit: Int?, _ dialect: SQLDialect,
                           more: (inout SQLParameters) -> [String] = { _ in [] }) -> (sql: String, values: [SQLValue]) {
        var p = SQLParameters(dialect: dialect)
        var clauses: [String] = []
        if let from { clauses.append("\(time) >= \(p.add(JournalTime.millis(from)))") }
        if let until { clauses.append("\(time) < \(p.add(JournalTime.millis(until)))") }
        clauses += more(&p)
        var sql = "SELECT * FROM \(table)"
        if !clauses.isEmpty { sql += " WHERE " + clauses.joined(separator: " AND ") }
        sql += " ORDER BY \(time) DESC, id DESC"
        if let limit { sql += " LIMIT \(p.add(limit))" }
        return ("SELECT * FROM (\(sql)) recent ORDER BY \(time), id", p.values)
    }
}
