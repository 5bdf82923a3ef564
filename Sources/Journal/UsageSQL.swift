import Foundation
import PasserelleCore

/// The usage report's two aggregates, written once for both backends. Both walk an indexed
/// time range (documents_received, stays_discharged) and reach the other rows through primary
/// or unique keys only.
///
/// Portable SQL: flags are `CASE WHEN … THEN 1 ELSE 0 END` (PostgreSQL has no MAX/SUM over
/// booleans), parameters are numbered (`?N` in SQLite, `$N` in PostgreSQL).
enum UsageSQL {
    struct Statement: Sendable {
        var sql: String
        var values: [SQLValue]
    }

    static let succeeded = "('sent', 'acknowledged', 'delivered', 'read')"

    static func flag(_ condition: String) -> String { "CASE WHEN \(condition) THEN 1 ELSE 0 END" }

    static func validate(_ query: UsageQuery) throws(JournalError) {
        guard query.boundaries.count >= 2, zip(query.boundaries, query.boundaries.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw JournalError.database("usage report: the period boundaries must be at least two increasing dates")
        }
    }

    /// `CASE WHEN col < b1 THEN 0 WHEN col < b2 THEN 1 … END`.
    static func period(_ column: String, _ boundaries: [Date], _ p: inout SQLParameters) -> String {
        let inner = boundaries.dropFirst().dropLast()
        if inner.isEmpty { return "0" }
        let whens = inner.enumerated().map { i, b in "WHEN \(column) < \(p.add(JournalTime.millis(b))) THEN \(i)" }
        return "CASE \(whens.joined(separator: " ")) ELSE \(inner.count) END"
    }

    /// One row per (period, FINESS, kind, refusal code) over the document sets first received in the range.
    static func sets(_ q: UsageQuery, _ dialect: SQLDialect) -> Statement {
        var p = SQLParameters(dialect: dialect)
        let periodSQL = period("d.received_at", q.boundaries, &p)
        let from = p.add(JournalTime.millis(q.boundaries.first!))
        let until = p.add(JournalTime.millis(q.boundaries.last!))
        let finessFilter = q.finess.isEmpty ? "" : "AND d.finess IN \(p.list(q.finess))"
        let qualified = p.list(q.qualifiedStatuses)
        // MSSanté progress of a set: 1 sent (or acknowledged), 2 delivered (DSN), 3 read (MDN).
        let rank = "CASE t.state WHEN 'read' THEN 3 WHEN 'delivered' THEN 2 WHEN 'sent' THEN 1 WHEN 'acknowledged' THEN 1 ELSE 0 END"
        let live = "deleted = 0"
        let sql = """
            WITH firsts AS (
                SELECT d.set_id, d.finess, d.kind, \(periodSQL) AS period
                FROM documents d
                WHERE d.received_at >= \(from) AND d.received_at < \(until) AND d.action <> 'delete' \(finessFilter)
                  AND NOT EXISTS (SELECT 1 FROM documents p WHERE p.set_id = d.set_id AND p.version < d.version)
            ), sets AS (
                SELECT f.period, f.finess, f.kind,
                    MAX(\(flag("v.action = 'delete'"))) AS deleted,
                    MAX(\(flag("v.action = 'replace'"))) AS replaced,
                    MAX(\(flag("v.identity_status IN \(qualified)"))) AS qualified,
                    MAX(\(flag("t.target = 'dmp' AND t.state IN \(succeeded) AND v.identity_status IN \(qualified)"))) AS dmp_ok,
                    MAX(CASE WHEN t.target = 'dmp' AND t.state = 'failed' AND t.failure = 'refused'
                             THEN COALESCE(t.error_code, '?') END) AS refusal,
                    COALESCE(MAX(CASE WHEN t.target = 'mssante_patient' THEN \(rank) END), 0) AS patient,
                    COALESCE(MAX(CASE WHEN t.target = 'mssante_ps' THEN \(rank) END), 0) AS ps,
                    MAX(\(flag("t.state = 'failed' AND t.failure = 'exhausted'"))) AS exhausted,
                    MAX(\(flag("t.state = 'failed' AND t.failure = 'permanent'"))) AS permanent,
                    MAX(\(flag("t.state IN ('queued', 'retry-wait', 'sending', 'held')"))) AS waiting,
                    MAX(\(flag("t.state = 'discarded'"))) AS discarded,
                    MAX(\(flag("t.state = 'failed'"))) AS failed
                FROM firsts f
                JOIN documents v ON v.set_id = f.set_id
                LEFT JOIN transmissions t ON t.document_id = v.id AND t.version = v.version
                GROUP BY f.set_id, f.period, f.finess, f.kind
            )
            SELECT period, finess, kind, refusal,
                SUM(deleted) AS deleted,
                SUM(1 - deleted) AS produced,
                SUM(\(flag("\(live) AND dmp_ok = 1"))) AS dmp_ok,
                SUM(\(flag("\(live) AND refusal IS NOT NULL"))) AS refused,
                SUM(\(flag("\(live) AND replaced = 1"))) AS replaced,
                SUM(\(flag("\(live) AND qualified = 0"))) AS unqualified,
                SUM(\(flag("\(live) AND patient >= 1"))) AS patient_sent,
                SUM(\(flag("\(live) AND patient >= 2"))) AS patient_delivered,
                SUM(\(flag("\(live) AND patient >= 3"))) AS patient_read,
                SUM(\(flag("\(live) AND ps >= 1"))) AS ps_sent,
                SUM(\(flag("\(live) AND ps >= 2"))) AS ps_delivered,
                SUM(\(flag("\(live) AND ps >= 3"))) AS ps_read,
                SUM(\(flag("\(live) AND exhausted = 1"))) AS exhausted,
                SUM(\(flag("\(live) AND permanent = 1"))) AS permanent,
                SUM(\(flag("\(live) AND waiting = 1"))) AS waiting,
                SUM(\(flag("\(live) AND discarded = 1 AND failed = 0"))) AS discarded
            FROM sets
            GROUP BY period, finess, kind, refusal
            """
        return Statement(sql: sql, values: p.values)
    }

    /// One row per (period, FINESS) over the stays discharged in the range.
    static func stays(_ q: UsageQuery, _ dialect: SQLDialect) -> Statement {
        var p = SQLParameters(dialect: dialect)
        let periodSQL = period("s.discharged_at", q.boundaries, &p)
        let kinds = p.list(q.dischargeLetterKinds.map(\.rawValue))
        let qualified = p.list(q.qualifiedStatuses)
        let from = p.add(JournalTime.millis(q.boundaries.first!))
        let until = p.add(JournalTime.millis(q.boundaries.last!))
        let finessFilter = q.finess.isEmpty ? "" : "AND s.finess IN \(p.list(q.finess))"
        let sql = """
            SELECT \(periodSQL) AS period, s.finess, count(*) AS discharged,
                SUM(CASE WHEN EXISTS (
                    SELECT 1 FROM documents d
                    JOIN transmissions t ON t.document_id = d.id AND t.version = d.version
                    WHERE d.finess = s.finess AND d.stay_id = s.stay_id AND d.kind IN \(kinds)
                      AND d.identity_status IN \(qualified) AND t.target = 'dmp' AND t.state IN \(succeeded)
                      AND NOT EXISTS (SELECT 1 FROM documents x WHERE x.set_id = d.set_id AND x.action = 'delete')
                ) THEN 1 ELSE 0 END) AS with_letter
            FROM stays s
            WHERE s.discharged_at >= \(from) AND s.discharged_at < \(until) \(finessFilter)
            GROUP BY 1, 2
            """
        return Statement(sql: sql, values: p.values)
    }

    /// The two aggregates' rows gathered per (period, FINESS).
    static func counts(sets: [some JournalColumns], stays: [some JournalColumns]) -> [UsageCounts] {
        var cells: [String: UsageCounts] = [:]
        func cell(_ period: Int, _ finess: String) -> String {
            let key = "\(period)|\(finess)"
            if cells[key] == nil { cells[key] = UsageCounts(period: period, finess: finess) }
            return key
        }
        for row in sets {
            guard let period = row.integer("period").map({ Int($0) }), let finess = row.text("finess"),
                  let kind = row.text("kind").flatMap(DocumentKind.init(rawValue:)) else { continue }
            let key = cell(period, finess)
            let n = { (name: String) in Int(row.integer(name) ?? 0) }
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
            cells[key]!.discarded += n("discarded")
            if let code = row.text("refusal"), n("refused") > 0 {
                cells[key]!.dmpRefusals[code, default: 0] += n("refused")
            }
        }
        for row in stays {
            guard let period = row.integer("period").map({ Int($0) }), let finess = row.text("finess") else { continue }
            let key = cell(period, finess)
            cells[key]!.staysDischarged += Int(row.integer("discharged") ?? 0)
            cells[key]!.staysWithDischargeLetter += Int(row.integer("with_letter") ?? 0)
        }
        return cells.values.sorted { ($0.period, $0.finess) < ($1.period, $1.finess) }
    }
}
