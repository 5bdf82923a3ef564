import Foundation
import PasserelleCore
import SQLiteKit

extension SQLiteJournalStore {
    public func usageCounts(_ query: UsageQuery) async throws(JournalError) -> [UsageCounts] {
        guard query.boundaries.count >= 2, zip(query.boundaries, query.boundaries.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw JournalError.database("usage report: the period boundaries must be at least two increasing dates")
        }
        return try locked { db in
            // One read transaction: both aggregates see the same journal.
            try db.transaction(.deferred) {
                var cells: [String: UsageCounts] = [:]
                func cell(_ period: Int, _ finess: String) -> String {
                    let key = "\(period)|\(finess)"
                    if cells[key] == nil { cells[key] = UsageCounts(period: period, finess: finess) }
                    return key
                }
                for row in try UsageSQL.sets(db, query) {
                    guard let period = row["period"].int, let finess = row["finess"].string,
                          let kind = row["kind"].string.flatMap(DocumentKind.init(rawValue:)) else { continue }
                    let key = cell(period, finess)
                    let n = { (name: String) in row[name].int ?? 0 }
                    cells[key]!.kinds[kind, default: .init()].produced += n("produced")
                    cells[key]!.kinds[kind, default: .init()].dmpAccepted += n("dmp_ok")
                    cells[key]!.patient.sent += n("patient_sent")
                    cells[key]!.patient.delivered += n("patient_delivered")
                    cells[key]!.patient.read += n("patient_read")
                    cells[key]!.professional.sent += n("ps_sent")
                    cells[key]!.professional.delivered += n("ps_delivered")
                    cells[key]!.professional.read += n("ps_read")
                    cells[key]!.unqualified += n("unqualified")
                    cells[key]!.replaced += n("replaced")
                    cells[key]!.deleted += n("deleted")
                    cells[key]!.failedAfterRetries += n("exhausted")
                    cells[key]!.failedPermanently += n("permanent")
                    cells[key]!.waiting += n("waiting")
                    if let code = row["refusal"].string, n("refused") > 0 {
                        cells[key]!.dmpRefusals[code, default: 0] += n("refused")
                    }
                }
                for row in try UsageSQL.stays(db, query) {
                    guard let period = row["period"].int, let finess = row["finess"].string else { continue }
                    let key = cell(period, finess)
                    cells[key]!.staysDischarged += row["discharged"].int ?? 0
                    cells[key]!.staysWithDischargeLetter += row["with_letter"].int ?? 0
                }
                return cells.values.sorted { ($0.period, $0.finess) < ($1.period, $1.finess) }
            }
        }
    }
}

/// The report's two aggregates. Both walk an indexed time range (documents_received,
/// stays_discharged) and reach the other rows through primary or unique keys only.
enum UsageSQL {
    static let succeeded = "('sent', 'acknowledged', 'delivered', 'read')"

    /// `CASE WHEN col < b1 THEN 0 WHEN col < b2 THEN 1 … END`, bindings b1…b(n-1).
    static func period(_ column: String, _ boundaries: [Date]) -> (sql: String, bindings: [any SQLiteBindable]) {
        let inner = boundaries.dropFirst().dropLast()
        if inner.isEmpty { return ("0", []) }
        let whens = inner.enumerated().map { i, _ in "WHEN \(column) < ? THEN \(i)" }.joined(separator: " ")
        return ("CASE \(whens) ELSE \(inner.count) END", inner.map { JournalTime.millis($0) })
    }

    static func placeholders(_ count: Int) -> String { Array(repeating: "?", count: count).joined(separator: ", ") }

    /// One row per (period, FINESS, kind, refusal code) over the document sets first received in the range.
    static func sets(_ db: SQLiteConnection, _ q: UsageQuery) throws -> [SQLiteRow] {
        let (periodSQL, periodBindings) = period("d.received_at", q.boundaries)
        let qualified = q.qualifiedStatuses.isEmpty ? "(NULL)" : "(\(placeholders(q.qualifiedStatuses.count)))"
        let finessFilter = q.finess.isEmpty ? "" : "AND d.finess IN (\(placeholders(q.finess.count)))"
        var bindings: [any SQLiteBindable] = periodBindings
        bindings += [JournalTime.millis(q.boundaries.first!), JournalTime.millis(q.boundaries.last!)]
        bindings += q.finess.map { $0 as any SQLiteBindable }
        bindings += q.qualifiedStatuses.map { $0 as any SQLiteBindable }   // qualified
        bindings += q.qualifiedStatuses.map { $0 as any SQLiteBindable }   // dmp_ok
        // MSSanté progress of a set: 1 sent (or acknowledged), 2 delivered (DSN), 3 read (MDN).
        let rank = "CASE t.state WHEN 'read' THEN 3 WHEN 'delivered' THEN 2 WHEN 'sent' THEN 1 WHEN 'acknowledged' THEN 1 ELSE 0 END"
        let sql = """
            WITH firsts AS (
                SELECT d.set_id, d.finess, d.kind, \(periodSQL) AS period
                FROM documents d
                WHERE d.received_at >= ? AND d.received_at < ? AND d.action <> 'delete' \(finessFilter)
                  AND NOT EXISTS (SELECT 1 FROM documents p WHERE p.set_id = d.set_id AND p.version < d.version)
            ), sets AS (
                SELECT f.period, f.finess, f.kind,
                    IFNULL(MAX(v.action = 'delete'), 0) AS deleted,
                    IFNULL(MAX(v.action = 'replace'), 0) AS replaced,
                    IFNULL(MAX(v.identity_status IN \(qualified)), 0) AS qualified,
                    IFNULL(MAX(t.target = 'dmp' AND t.state IN \(succeeded) AND v.identity_status IN \(qualified)), 0) AS dmp_ok,
                    MAX(CASE WHEN t.target = 'dmp' AND t.state = 'failed' AND t.failure = 'refused'
                             THEN IFNULL(t.error_code, '?') END) AS refusal,
                    IFNULL(MAX(CASE WHEN t.target = 'mssante_patient' THEN \(rank) END), 0) AS patient,
                    IFNULL(MAX(CASE WHEN t.target = 'mssante_ps' THEN \(rank) END), 0) AS ps,
                    IFNULL(MAX(t.state = 'failed' AND t.failure = 'exhausted'), 0) AS exhausted,
                    IFNULL(MAX(t.state = 'failed' AND t.failure = 'permanent'), 0) AS permanent,
                    IFNULL(MAX(t.state IN ('queued', 'retry-wait', 'sending')), 0) AS waiting
                FROM firsts f
                JOIN documents v ON v.set_id = f.set_id
                LEFT JOIN transmissions t ON t.document_id = v.id AND t.version = v.version
                GROUP BY f.set_id
            )
            SELECT period, finess, kind, refusal,
                SUM(deleted) AS deleted,
                SUM(NOT deleted) AS produced,
                SUM(NOT deleted AND dmp_ok) AS dmp_ok,
                SUM(NOT deleted AND refusal IS NOT NULL) AS refused,
                SUM(NOT deleted AND replaced) AS replaced,
                SUM(NOT deleted AND NOT qualified) AS unqualified,
                SUM(NOT deleted AND patient >= 1) AS patient_sent,
                SUM(NOT deleted AND patient >= 2) AS patient_delivered,
                SUM(NOT deleted AND patient >= 3) AS patient_read,
                SUM(NOT deleted AND ps >= 1) AS ps_sent,
                SUM(NOT deleted AND ps >= 2) AS ps_delivered,
                SUM(NOT deleted AND ps >= 3) AS ps_read,
                SUM(NOT deleted AND exhausted) AS exhausted,
                SUM(NOT deleted AND permanent) AS permanent,
                SUM(NOT deleted AND waiting) AS waiting
            FROM sets
            GROUP BY period, finess, kind, refusal
            """
        return try db.query(sql, bindings)
    }

    /// One row per (period, FINESS) over the stays discharged in the range.
    static func stays(_ db: SQLiteConnection, _ q: UsageQuery) throws -> [SQLiteRow] {
        let (periodSQL, periodBindings) = period("s.discharged_at", q.boundaries)
        let kinds = q.dischargeLetterKinds.isEmpty ? "(NULL)" : "(\(placeholders(q.dischargeLetterKinds.count)))"
        let qualified = q.qualifiedStatuses.isEmpty ? "(NULL)" : "(\(placeholders(q.qualifiedStatuses.count)))"
        let finessFilter = q.finess.isEmpty ? "" : "AND s.finess IN (\(placeholders(q.finess.count)))"
        var bindings: [any SQLiteBindable] = periodBindings
        bindings += q.dischargeLetterKinds.map { $0.rawValue as any SQLiteBindable }
        bindings += q.qualifiedStatuses.map { $0 as any SQLiteBindable }
        bindings += [JournalTime.millis(q.boundaries.first!), JournalTime.millis(q.boundaries.last!)]
        bindings += q.finess.map { $0 as any SQLiteBindable }
        let sql = """
            SELECT \(periodSQL) AS period, s.finess, count(*) AS discharged,
                SUM(EXISTS (
                    SELECT 1 FROM documents d
                    JOIN transmissions t ON t.document_id = d.id AND t.version = d.version
                    WHERE d.finess = s.finess AND d.stay_id = s.stay_id AND d.kind IN \(kinds)
                      AND d.identity_status IN \(qualified) AND t.target = 'dmp' AND t.state IN \(succeeded)
                      AND NOT EXISTS (SELECT 1 FROM documents x WHERE x.set_id = d.set_id AND x.action = 'delete')
                )) AS with_letter
            FROM stays s
            WHERE s.discharged_at >= ? AND s.discharged_at < ? \(finessFilter)
            GROUP BY 1, 2
            """
        return try db.query(sql, bindings)
    }
}
