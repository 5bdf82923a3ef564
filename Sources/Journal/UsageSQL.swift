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

    /// The one definition of each per-set measure, over the columns of the `sets` CTE: the
    /// report sums it, the evidence lists it. Deleted sets count in `deleted` only.
    static func predicate(_ m: SetMeasure) -> String {
        let live = "deleted = 0"
        return switch m {
        case .deleted: "deleted = 1"
        case .produced: live
        case .dmpAccepted: "\(live) AND dmp_ok = 1"
        case .refused: "\(live) AND refusal IS NOT NULL"
        case .replaced: "\(live) AND replaced = 1"
        case .unqualified: "\(live) AND qualified = 0"
        case .patientSent: "\(live) AND patient >= 1"
        case .patientDelivered: "\(live) AND patient >= 2"
        case .patientRead: "\(live) AND patient >= 3"
        case .professionalSent: "\(live) AND ps >= 1"
        case .professionalDelivered: "\(live) AND ps >= 2"
        case .professionalRead: "\(live) AND ps >= 3"
        case .failedAfterRetries: "\(live) AND exhausted = 1"
        case .failedPermanently: "\(live) AND permanent = 1"
        case .waiting: "\(live) AND waiting = 1"
        case .discarded: "\(live) AND discarded = 1 AND failed = 0"
        }
    }

    /// The per-set CTEs (`firsts`, `sets`) over the document sets first received in the range.
    /// With `evidence`, `sets` also carries what the evidence lists (set id, reception, stay,
    /// masked INS, identity status, the transmissions that prove the flags).
    static func setsCTE(_ q: UsageQuery, _ p: inout SQLParameters, evidence: Bool) -> String {
        let periodSQL = period("d.received_at", q.boundaries, &p)
        let from = p.add(JournalTime.millis(q.boundaries.first!))
        let until = p.add(JournalTime.millis(q.boundaries.last!))
        let finessFilter = q.finess.isEmpty ? "" : "AND d.finess IN \(p.list(q.finess))"
        let qualified = p.list(q.qualifiedStatuses)
        // MSSanté progress of a set: 1 sent (or acknowledged), 2 delivered (DSN), 3 read (MDN).
        let rank = "CASE t.state WHEN 'read' THEN 3 WHEN 'delivered' THEN 2 WHEN 'sent' THEN 1 WHEN 'acknowledged' THEN 1 ELSE 0 END"
        let dmpOK = "t.target = 'dmp' AND t.state IN \(succeeded) AND v.identity_status IN \(qualified)"
        let firstsExtra = evidence ? ", d.received_at, d.stay_id, d.ins_masked" : ""
        let setsExtra = evidence ? """
            , f.set_id, f.received_at, f.stay_id, f.ins_masked,
                    MAX(CASE WHEN v.version = (SELECT MAX(l.version) FROM documents l WHERE l.set_id = f.set_id)
                             THEN v.identity_status END) AS identity_status,
                    MIN(CASE WHEN \(dmpOK) THEN t.id END) AS dmp_tx,
                    MAX(CASE WHEN t.target = 'mssante_patient' AND \(rank) >= 1 THEN t.id END) AS patient_tx,
                    MAX(CASE WHEN t.target = 'mssante_ps' AND \(rank) >= 1 THEN t.id END) AS ps_tx
            """ : ""
        let groupExtra = evidence ? ", f.received_at, f.stay_id, f.ins_masked" : ""
        return """
            WITH firsts AS (
                SELECT d.set_id, d.finess, d.kind, \(periodSQL) AS period\(firstsExtra)
                FROM documents d
                WHERE d.received_at >= \(from) AND d.received_at < \(until) AND d.action <> 'delete' \(finessFilter)
                  AND NOT EXISTS (SELECT 1 FROM documents p WHERE p.set_id = d.set_id AND p.version < d.version)
            ), sets AS (
                SELECT f.period, f.finess, f.kind,
                    MAX(\(flag("v.action = 'delete'"))) AS deleted,
                    MAX(\(flag("v.action = 'replace'"))) AS replaced,
                    MAX(\(flag("v.identity_status IN \(qualified)"))) AS qualified,
                    MAX(\(flag(dmpOK))) AS dmp_ok,
                    MAX(CASE WHEN t.target = 'dmp' AND t.state = 'failed' AND t.failure = 'refused'
                             THEN COALESCE(t.error_code, '?') END) AS refusal,
                    COALESCE(MAX(CASE WHEN t.target = 'mssante_patient' THEN \(rank) END), 0) AS patient,
                    COALESCE(MAX(CASE WHEN t.target = 'mssante_ps' THEN \(rank) END), 0) AS ps,
                    MAX(\(flag("t.state = 'failed' AND t.failure = 'exhausted'"))) AS exhausted,
                    MAX(\(flag("t.state = 'failed' AND t.failure = 'permanent'"))) AS permanent,
                    MAX(\(flag("t.state IN ('queued', 'retry-wait', 'sending', 'held')"))) AS waiting,
                    MAX(\(flag("t.state = 'discarded'"))) AS discarded,
                    MAX(\(flag("t.state = 'failed'"))) AS failed\(setsExtra)
                FROM firsts f
                JOIN documents v ON v.set_id = f.set_id
                LEFT JOIN transmissions t ON t.document_id = v.id AND t.version = v.version
                GROUP BY f.set_id, f.period, f.finess, f.kind\(groupExtra)
            )
            """
    }

    /// One row per (period, FINESS, kind, refusal code) over the document sets first received in the range.
    static func sets(_ q: UsageQuery, _ dialect: SQLDialect) -> Statement {
        var p = SQLParameters(dialect: dialect)
        let sums = SetMeasure.allCases.map { "SUM(\(flag(predicate($0)))) AS \($0.rawValue)" }.joined(separator: ",\n    ")
        let sql = setsCTE(q, &p, evidence: false) + """

            SELECT period, finess, kind, refusal,
                \(sums)
            FROM sets
            GROUP BY period, finess, kind, refusal
            """
        return Statement(sql: sql, values: p.values)
    }

    /// One row per document set of the range: the 0/1 value of every measure (same predicates
    /// as ``sets(_:_:)``) and its proofs.
    static func setEvidence(_ q: UsageQuery, _ dialect: SQLDialect) -> Statement {
        var p = SQLParameters(dialect: dialect)
        let flags = SetMeasure.allCases.map { "\(flag(predicate($0))) AS \($0.rawValue)" }.joined(separator: ",\n    ")
        func proof(_ tx: String, _ prefix: String) -> String {
            """
            (SELECT x.message_id FROM transmissions x WHERE x.id = \(tx)) AS \(prefix)_message,
                (SELECT k.kind FROM acknowledgements k WHERE k.transmission_id = \(tx) ORDER BY k.received_at DESC, k.id DESC LIMIT 1) AS \(prefix)_ack,
                (SELECT k.received_at FROM acknowledgements k WHERE k.transmission_id = \(tx) ORDER BY k.received_at DESC, k.id DESC LIMIT 1) AS \(prefix)_ack_at,
                (SELECT k.detail FROM acknowledgements k WHERE k.transmission_id = \(tx) ORDER BY k.received_at DESC, k.id DESC LIMIT 1) AS \(prefix)_ack_detail
            """
        }
        let sql = setsCTE(q, &p, evidence: true) + """

            SELECT s.period, s.finess, s.kind, s.refusal, s.set_id, s.received_at, s.stay_id, s.ins_masked, s.identity_status,
                st.discharged_at,
                (SELECT MIN(a.ended_at) FROM attempts a WHERE a.transmission_id = s.dmp_tx AND a.outcome = 'sent') AS dmp_ack_at,
                (SELECT a.response FROM attempts a WHERE a.transmission_id = s.dmp_tx AND a.outcome = 'sent' ORDER BY a.id LIMIT 1) AS dmp_response,
                \(proof("s.patient_tx", "patient")),
                \(proof("s.ps_tx", "ps")),
                \(flags)
            FROM sets s
            LEFT JOIN stays st ON st.finess = s.finess AND st.stay_id = s.stay_id
            ORDER BY s.received_at, s.set_id
            """
        return Statement(sql: sql, values: p.values)
    }

    /// The per-stay measures, over a stay `s` (the letter subquery selects `what`).
    struct StayParts {
        var period: String, from: String, until: String, finessFilter: String
        var letter: (String) -> String
        func predicate(_ m: StayMeasure) -> String {
            m == .discharged ? "1 = 1" : "EXISTS (\(letter("1")))"
        }
    }

    static func stayParts(_ q: UsageQuery, _ p: inout SQLParameters) -> StayParts {
        let periodSQL = period("s.discharged_at", q.boundaries, &p)
        let kinds = p.list(q.dischargeLetterKinds.map(\.rawValue))
        let qualified = p.list(q.qualifiedStatuses)
        let from = p.add(JournalTime.millis(q.boundaries.first!))
        let until = p.add(JournalTime.millis(q.boundaries.last!))
        let finessFilter = q.finess.isEmpty ? "" : "AND s.finess IN \(p.list(q.finess))"
        return StayParts(period: periodSQL, from: from, until: until, finessFilter: finessFilter) { what in
            """
            SELECT \(what) FROM documents d
                    JOIN transmissions t ON t.document_id = d.id AND t.version = d.version
                    WHERE d.finess = s.finess AND d.stay_id = s.stay_id AND d.kind IN \(kinds)
                      AND d.identity_status IN \(qualified) AND t.target = 'dmp' AND t.state IN \(succeeded)
                      AND NOT EXISTS (SELECT 1 FROM documents x WHERE x.set_id = d.set_id AND x.action = 'delete')
            """
        }
    }

    /// One row per (period, FINESS) over the stays discharged in the range.
    static func stays(_ q: UsageQuery, _ dialect: SQLDialect) -> Statement {
        var p = SQLParameters(dialect: dialect)
        let s = stayParts(q, &p)
        let sums = StayMeasure.allCases.map { "SUM(\(flag(s.predicate($0)))) AS \($0.rawValue)" }.joined(separator: ", ")
        let sql = """
            SELECT \(s.period) AS period, s.finess, \(sums)
            FROM stays s
            WHERE s.discharged_at >= \(s.from) AND s.discharged_at < \(s.until) \(s.finessFilter)
            GROUP BY 1, 2
            """
        return Statement(sql: sql, values: p.values)
    }

    /// One row per stay discharged in the range, with its measures and the letter that proves one.
    static func stayEvidence(_ q: UsageQuery, _ dialect: SQLDialect) -> Statement {
        var p = SQLParameters(dialect: dialect)
        let s = stayParts(q, &p)
        let flags = StayMeasure.allCases.map { "\(flag(s.predicate($0))) AS \($0.rawValue)" }.joined(separator: ", ")
        let sql = """
            SELECT \(s.period) AS period, s.finess, s.stay_id, s.discharged_at, \(flags),
                (\(s.letter("MIN(d.set_id)"))) AS letter_set
            FROM stays s
            WHERE s.discharged_at >= \(s.from) AND s.discharged_at < \(s.until) \(s.finessFilter)
            ORDER BY s.discharged_at, s.finess, s.stay_id
            """
        return Statement(sql: sql, values: p.values)
    }

    static func iso(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false))
    }

    static func evidence(sets: [some JournalColumns], stays: [some JournalColumns]) -> UsageEvidence {
        let setRows = sets.compactMap { row -> UsageEvidence.SetRow? in
            guard let period = row.integer("period"), let finess = row.text("finess"), let setID = row.text("set_id"),
                  let kind = row.text("kind").flatMap(DocumentKind.init(rawValue:)),
                  let received = JournalTime.date(millis: row.integer("received_at")) else { return nil }
            func proof(_ prefix: String) -> String? {
                var parts = ["message-id \(row.text("\(prefix)_message") ?? "?")"]
                if let ack = row.text("\(prefix)_ack"), let at = JournalTime.date(millis: row.integer("\(prefix)_ack_at")) {
                    parts.append("\(ack == "read" ? "MDN" : ack == "delivered" ? "DSN" : ack) \(iso(at))"
                                 + (row.text("\(prefix)_ack_detail").map { " \($0)" } ?? ""))
                }
                return parts.joined(separator: " ; ")
            }
            let measures = Set(SetMeasure.allCases.filter { (row.integer($0.rawValue) ?? 0) == 1 })
            let sent: (SetMeasure) -> Bool = { measures.contains($0) }
            return UsageEvidence.SetRow(
                period: Int(period), setID: setID, kind: kind, finess: finess, stayID: row.text("stay_id"),
                dischargedAt: JournalTime.date(millis: row.integer("discharged_at")), firstReceivedAt: received,
                maskedINS: row.text("ins_masked"), identityStatus: row.text("identity_status"),
                dmpAcknowledgedAt: JournalTime.date(millis: row.integer("dmp_ack_at")), dmpResponse: row.text("dmp_response"),
                refusalCode: row.text("refusal"),
                patientProof: sent(.patientSent) ? proof("patient") : nil,
                professionalProof: sent(.professionalSent) ? proof("ps") : nil,
                measures: measures)
        }
        let stayRows = stays.compactMap { row -> UsageEvidence.StayRow? in
            guard let period = row.integer("period"), let finess = row.text("finess"), let stayID = row.text("stay_id"),
                  let discharged = JournalTime.date(millis: row.integer("discharged_at")) else { return nil }
            return UsageEvidence.StayRow(period: Int(period), finess: finess, stayID: stayID, dischargedAt: discharged,
                                         letterSetID: row.text("letter_set"),
                                         measures: Set(StayMeasure.allCases.filter { (row.integer($0.rawValue) ?? 0) == 1 }))
        }
        return UsageEvidence(sets: setRows, stays: stayRows)
    }

    /// Every successful transmission of the sets first received in the range (not deleted), with
    /// its success time (the attempt that succeeded) and the stay's discharge.
    static func delaySamples(_ q: UsageQuery, _ dialect: SQLDialect) -> Statement {
        var p = SQLParameters(dialect: dialect)
        let from = p.add(JournalTime.millis(q.boundaries.first!))
        let until = p.add(JournalTime.millis(q.boundaries.last!))
        let finessFilter = q.finess.isEmpty ? "" : "AND d.finess IN \(p.list(q.finess))"
        let qualified = p.list(q.qualifiedStatuses)
        let sql = """
            WITH firsts AS (
                SELECT d.set_id FROM documents d
                WHERE d.received_at >= \(from) AND d.received_at < \(until) AND d.action <> 'delete' \(finessFilter)
                  AND NOT EXISTS (SELECT 1 FROM documents p WHERE p.set_id = d.set_id AND p.version < d.version)
                  AND NOT EXISTS (SELECT 1 FROM documents x WHERE x.set_id = d.set_id AND x.action = 'delete')
            )
            SELECT v.set_id, v.kind, v.finess, v.received_at, t.target, st.discharged_at,
                \(flag("v.identity_status IN \(qualified)")) AS qualified,
                (SELECT MIN(a.ended_at) FROM attempts a WHERE a.transmission_id = t.id AND a.outcome = 'sent') AS ack_at
            FROM firsts f
            JOIN documents v ON v.set_id = f.set_id
            JOIN transmissions t ON t.document_id = v.id AND t.version = v.version
            LEFT JOIN stays st ON st.finess = v.finess AND st.stay_id = v.stay_id
            WHERE t.state IN \(succeeded)
            """
        return Statement(sql: sql, values: p.values)
    }

    static func delaySamples(_ rows: [some JournalColumns]) -> [DelaySample] {
        rows.compactMap { row in
            guard let setID = row.text("set_id"), let kind = row.text("kind").flatMap(DocumentKind.init(rawValue:)),
                  let finess = row.text("finess"), let target = row.text("target").flatMap(Destination.init(rawValue:)),
                  let received = JournalTime.date(millis: row.integer("received_at")),
                  let ack = JournalTime.date(millis: row.integer("ack_at")) else { return nil }
            return DelaySample(setID: setID, kind: kind, finess: finess, target: target, receivedAt: received, acknowledgedAt: ack,
                               dischargedAt: JournalTime.date(millis: row.integer("discharged_at")), qualified: row.integer("qualified") == 1)
        }
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
            let n = { (m: SetMeasure) in Int(row.integer(m.rawValue) ?? 0) }
            cells[key]!.kinds[kind, default: .init()].produced += n(.produced)
            cells[key]!.kinds[kind, default: .init()].dmpAccepted += n(.dmpAccepted)
            cells[key]!.patient.sent += n(.patientSent)
            cells[key]!.patient.delivered += n(.patientDelivered)
            cells[key]!.patient.read += n(.patientRead)
            cells[key]!.professional.sent += n(.professionalSent)
            cells[key]!.professional.delivered += n(.professionalDelivered)
            cells[key]!.professional.read += n(.professionalRead)
            cells[key]!.unqualified += n(.unqualified)
            cells[key]!.replaced += n(.replaced)
            cells[key]!.deleted += n(.deleted)
            cells[key]!.failedAfterRetries += n(.failedAfterRetries)
            cells[key]!.failedPermanently += n(.failedPermanently)
            cells[key]!.waiting += n(.waiting)
            cells[key]!.discarded += n(.discarded)
            if let code = row.text("refusal"), n(.refused) > 0 {
                cells[key]!.dmpRefusals[code, default: 0] += n(.refused)
            }
        }
        for row in stays {
            guard let period = row.integer("period").map({ Int($0) }), let finess = row.text("finess") else { continue }
            let key = cell(period, finess)
            cells[key]!.staysDischarged += Int(row.integer(StayMeasure.discharged.rawValue) ?? 0)
            cells[key]!.staysWithDischargeLetter += Int(row.integer(StayMeasure.withDischargeLetter.rawValue) ?? 0)
        }
        return cells.values.sorted { ($0.period, $0.finess) < ($1.period, $1.finess) }
    }
}
