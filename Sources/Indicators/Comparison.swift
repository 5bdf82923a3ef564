import Foundation
import Journal
import PasserelleCore

/// Several months side by side, for the whole structure and each FINESS (`passerelle report
/// --from-month … --to-month …`): the steering committee's table. One aggregate over the whole
/// range (monthly boundaries), the same lines as the monthly report.
public struct ComparisonReport: Sendable, Hashable, Codable {
    /// Bumped when a field changes meaning or disappears.
    public var formatVersion = 1
    public var title: String
    /// `YYYY-MM`, oldest first.
    public var months: [String]
    public var timeZone: String
    public var generatedAt: Date
    public var finessFilter: [String]
    /// One row per scope and line: the whole structure's first, then each FINESS's.
    public var rows: [ComparisonRow]
}

/// One indicator of one scope across the months (``lines`` follows ``ComparisonReport/months``).
public struct ComparisonRow: Sendable, Hashable, Codable {
    public var finess: String?
    public var code: String
    public var label: String
    public var lines: [IndicatorLine]

    var scope: String { finess.map { "FINESS \($0)" } ?? "Ensemble" }
}

extension ComparisonReport {
    /// Lines per DMP error code change from month to month: the comparison keeps their total.
    static func compared(_ code: String) -> Bool { !code.hasPrefix("Q-REFUS-DMP-") }

    public static func make(store: any JournalStore, from: String, to: String, finess: [String] = [],
                            settings: PasserelleConfiguration.Report, title: String = "Passerelle",
                            now: Date = Date()) async throws(ReportError) -> ComparisonReport {
        let first = try ReportPeriod.month(from, timeZone: settings.timeZone)
        let last = try ReportPeriod.month(to, timeZone: settings.timeZone)
        guard first.start <= last.start else { throw .emptyRange(from: from, to: to) }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: settings.timeZone) ?? .gmt
        var months = [first]
        while months.last!.start < last.start {
            guard months.count < 120 else { throw .tooManyMonths(from: from, to: to) }
            let parts = calendar.dateComponents([.year, .month], from: months.last!.end)
            months.append(try ReportPeriod.month(String(format: "%04d-%02d", parts.year!, parts.month!), timeZone: settings.timeZone))
        }
        let query = UsageQuery(boundaries: months.map(\.start) + [months.last!.end], finess: finess,
                               qualifiedStatuses: settings.qualifiedStatuses, dischargeLetterKinds: settings.dischargeLetterKinds)
        let cells: [UsageCounts]
        do { cells = try await store.usageCounts(query) } catch { throw .journal(error) }
        let scopes: [String?] = [nil] + Set(cells.map(\.finess)).sorted().map { Optional($0) }
        var rows: [ComparisonRow] = []
        for scope in scopes where scope == nil || scopes.count > 2 {
            let perMonth: [[IndicatorLine]] = months.indices.map { index in
                var sum = UsageCounts(period: index, finess: scope ?? "")
                for cell in cells where cell.period == index && (scope == nil || cell.finess == scope) { sum.add(cell) }
                // No per-code lines: the same rows every month.
                sum.dmpRefusals = sum.dmpRefusals.isEmpty ? [:] : ["*": sum.dmpRefusals.values.reduce(0, +)]
                return IndicatorCalculator.lines(sum, settings: settings).filter { compared($0.code) }
            }
            for (i, line) in perMonth[0].enumerated() {
                rows.append(ComparisonRow(finess: scope, code: line.code, label: line.label, lines: perMonth.map { $0[i] }))
            }
        }
        return ComparisonReport(title: title, months: months.map(\.label), timeZone: settings.timeZone, generatedAt: now,
                                finessFilter: finess, rows: rows)
    }

    /// Renders in `format` (table, csv, json or html).
    public func render(_ format: ReportFormat) throws -> String {
        switch format {
        case .json: return try TextReport.encodeJSON(self)
        case .csv:
            var out: [[String]] = [["Périmètre", "Code", "Indicateur", "Période", "Numérateur", "Dénominateur", "Taux", "Cible", "Atteint"]]
            for row in rows {
                for (month, l) in zip(months, row.lines) {
                    out.append([row.finess ?? "", row.code, row.label, month, String(l.numerator), String(l.denominator),
                                l.rateText, l.targetText, l.reachedText])
                }
            }
            return String(decoding: CSVText.encode(out), as: UTF8.self)
        case .table:
            let range = "\(FrenchCalendar.month(months.first!)) à \(FrenchCalendar.month(months.last!))"
            var text = "Comparaison — \(title) — \(range) (\(timeZone)), taux en % (— : pas de données)\n"
            if !finessFilter.isEmpty { text += "FINESS retenus : \(finessFilter.joined(separator: ", "))\n" }
            var scopes: [String] = []
            for row in rows where !scopes.contains(row.scope) { scopes.append(row.scope) }
            for scope in scopes {
                var table = [["Code", "Indicateur"] + months.map(Self.shortMonth)]
                for row in rows where row.scope == scope {
                    table.append([(row.lines.first?.headline == true ? "*" : " ") + row.code, HTMLReport.shortLabel(row.label, limit: 60)]
                                 + row.lines.map { $0.shownRate + ($0.reached == false ? "!" : "") })
                }
                text += "\n\(scope)\n" + TextReport.aligned(table, rightAligned: Set(2..<(2 + months.count)))
                let over = rows.filter { $0.scope == scope }.compactMap { row in row.lines.filter(\.exceedsStays).max { ($0.rate ?? 0) < ($1.rate ?? 0) } }
                if let note = ReportSummary.overHundredNote(over) { text += note + " (taux le plus haut de la période)\n" }
            }
            return text + "\n* ligne principale du domaine ; ! cible non atteinte.\n"
        case .html:
            return HTMLReport.comparison(self)
        }
    }

    /// `janv. 26`.
    static func shortMonth(_ label: String) -> String { "\(FrenchCalendar.shortMonth(label)) \(label.prefix(4).suffix(2))" }
}
