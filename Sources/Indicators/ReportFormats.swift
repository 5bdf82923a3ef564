import Foundation
import Journal
import PasserelleCore

/// The output formats of `passerelle report`.
public enum ReportFormat: String, Sendable, Hashable, CaseIterable, Codable {
    case table, csv, json, html

    /// Renders `report` in this format.
    public func render(_ report: UsageReport) throws -> String {
        switch self {
        case .table: TextReport.table(report)
        case .csv: TextReport.csv(report)
        case .json: try TextReport.json(report)
        case .html: HTMLReport.render(report)
        }
    }
}

extension IndicatorLine {
    /// `75,0` (French decimal comma), empty without a denominator.
    public var rateText: String { rate.map { String(format: "%.1f", $0).replacingOccurrences(of: ".", with: ",") } ?? "" }
    /// For people: `75,0`, or `—` without a denominator (no data is not 0 %).
    var shownRate: String { rate == nil ? "—" : rateText }
    /// A per-stay rate above 100 %: several documents for one stay (not an error).
    var exceedsStays: Bool { code.hasSuffix("-SEJ") && (rate ?? 0) > 100 }
    /// `≥ 50` or `≤ 2`, empty without a target.
    public var targetText: String { target.map { "\(targetKind == .minimum ? "≥" : "≤") \($0)" } ?? "" }
    /// `O` / `N` (oui / non), empty when it cannot be judged.
    public var reachedText: String { reached.map { $0 ? "O" : "N" } ?? "" }

    // Explicit nulls keep the JSON shape stable: every key is always present.
    public func encode(to encoder: any Encoder) throws {
        enum Keys: String, CodingKey {
            case programme, code, label, numerator, denominator, rate, target, targetKind, reached, headline
        }
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(programme, forKey: .programme)
        try c.encode(code, forKey: .code)
        try c.encode(label, forKey: .label)
        try c.encode(numerator, forKey: .numerator)
        try c.encode(denominator, forKey: .denominator)
        try c.encode(rate, forKey: .rate)
        try c.encode(target, forKey: .target)
        try c.encode(targetKind, forKey: .targetKind)
        try c.encode(reached, forKey: .reached)
        try c.encode(headline, forKey: .headline)
    }
}

extension ScopeReport {
    public func encode(to encoder: any Encoder) throws {
        enum Keys: String, CodingKey { case finess, lines, kinds, staysDischarged }
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(finess, forKey: .finess)
        try c.encode(lines, forKey: .lines)
        try c.encode(kinds, forKey: .kinds)
        try c.encode(staysDischarged, forKey: .staysDischarged)
    }

    /// "Ensemble de la structure" or "FINESS 750712184".
    var title: String { finess.map { "FINESS \($0)" } ?? "Ensemble de la structure" }
}

/// The headline block of the human formats: each SUN-ES domain's headline line reached or
/// not, and the three largest causes of loss.
struct ReportSummary {
    static let causes: [(code: String, label: String)] = [
        ("Q-INS", "identité non qualifiée (documents retenus)"),
        ("Q-REFUS-DMP", "refus du DMP"),
        ("Q-ECHEC-RETRY", "échecs après épuisement des nouvelles tentatives"),
        ("Q-ECHEC-DEF", "échecs définitifs (hors refus DMP)"),
    ]

    /// One sentence per SUN-ES domain.
    var domains: [(line: IndicatorLine, text: String)]
    /// At most three, largest first, none at zero.
    var losses: [(code: String, label: String, count: Int)]
    /// Per-stay lines above 100 %.
    var overHundred: [IndicatorLine]

    init(_ scope: ScopeReport) {
        domains = scope.lines.filter { $0.code.hasPrefix("V1-") && $0.headline }.map { l in
            let name = IndicatorCalculator.domainLabel(SUNESDomain(rawValue: String(l.code.dropFirst(3).prefix(2))) ?? .d1)
            let verdict = switch (l.rate, l.reached) {
            case (nil, _): "pas de données ce mois-ci (—)"
            case (_, true?): "\(l.rateText) % pour une cible \(l.targetText) % : atteint"
            case (_, false?): "\(l.rateText) % pour une cible \(l.targetText) % : NON atteint"
            case (_, nil): "\(l.rateText) % (pas de cible configurée)"
            }
            return (l, "\(l.code.dropFirst(3).prefix(2)) \(name) — \(verdict)")
        }
        let byCode = Dictionary(scope.lines.map { ($0.code, $0.numerator) }, uniquingKeysWith: { a, _ in a })
        losses = Array(Self.causes.compactMap { c in byCode[c.code].flatMap { $0 > 0 ? (c.code, c.label, $0) : nil } }
            .enumerated().sorted { ($0.element.2, -$0.offset) > ($1.element.2, -$1.offset) }.map(\.element).prefix(3))
        overHundred = scope.lines.filter(\.exceedsStays)
    }

    static func documents(_ n: Int) -> String { "\(n) document\(n == 1 ? "" : "s")" }

    /// The note under a table with a per-stay rate above 100 %.
    static func overHundredNote(_ lines: [IndicatorLine]) -> String? {
        guard !lines.isEmpty else { return nil }
        return "Taux par séjour supérieur à 100 % (\(lines.map { "\($0.code) \($0.rateText) %" }.joined(separator: ", "))) : "
            + "plusieurs documents pour un même séjour (compte rendu et lettre de liaison, plusieurs comptes rendus…), "
            + "le numérateur compte des documents et le dénominateur des séjours."
    }
}

/// Table, CSV and JSON.
enum TextReport {
    static let csvHeader = ["Programme", "Code", "Indicateur", "Période", "Numérateur", "Dénominateur", "Taux", "Cible", "Atteint"]

    /// `;`-separated, UTF-8 with a BOM (without it spreadsheet software reads the French text as
    /// Latin-1), CRLF line ends, fields quoted only when needed. The rows are the whole selected scope.
    static func csv(_ report: UsageReport) -> String {
        var rows = [csvHeader]
        for l in report.total.lines {
            rows.append([l.programme, l.code, l.label, report.period.label, String(l.numerator), String(l.denominator),
                         l.rateText, l.targetText, l.reachedText])
        }
        // The delays as lines of the same shape: numerator = delays within the bound, denominator =
        // delays measured, the median and 90th percentile in the label.
        for (prefix, what, lines) in [("DELAI-SORTIE-DMP", "Délai sortie → DMP (documents D1)", report.delays.dischargeToDmp),
                                      ("DELAI-RECEPTION-ACCUSE", "Délai réception → accusé", report.delays.receptionToAcknowledgement)] {
            for l in lines {
                let code = ([prefix] + [l.kind, l.finess, l.target].compactMap { $0 }).joined(separator: "-")
                let label = "\(what), \(l.scope) : médiane \(DelayStats.duration(l.stats.medianHours)), 90e centile \(DelayStats.duration(l.stats.p90Hours))"
                for (suffix, bound, n, rate) in [("J1", "en 1 jour au plus", l.stats.withinOneDay, l.stats.withinOneDayRate),
                                                 ("J7", "en 7 jours au plus", l.stats.withinSevenDays, l.stats.withinSevenDaysRate)] {
                    rows.append(["Délais", "\(code)-\(suffix)", "\(label), part \(bound)", report.period.label, String(n),
                                 String(l.stats.count), rate.map { String(format: "%.1f", $0).replacingOccurrences(of: ".", with: ",") } ?? "", "", ""])
                }
            }
        }
        // Availability in minutes: running / elapsed, then per target unreachable / elapsed.
        let a = report.availability, elapsed = a.periodSeconds / 60
        if a.runningRate != nil {
            rows.append(["Disponibilité", "DISPO-SERVICE", "Temps de fonctionnement de la passerelle (minutes)", report.period.label,
                         String(a.runningSeconds / 60), String(elapsed), rateText(a.runningSeconds, a.periodSeconds), "", ""])
        }
        for t in a.targets {
            rows.append(["Disponibilité", "INDISPO-\(t.target)",
                         "Cible \(t.target) injoignable (minutes), \(t.outages) interruption(s), la plus longue \(AvailabilityReport.duration(t.longestOutageSeconds))",
                         report.period.label, String(t.unreachableSeconds / 60), String(elapsed), rateText(t.unreachableSeconds, a.periodSeconds), "", ""])
        }
        return String(decoding: CSVText.encode(rows), as: UTF8.self)
    }

    static func json(_ report: UsageReport) throws -> String { try encodeJSON(report) }

    static func encodeJSON(_ report: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        // snake_case, as every command's JSON (format version 2; version 1 was camelCase).
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
    }

    /// Aligned columns for a terminal; `*` marks each domain's headline line.
    static func table(_ report: UsageReport) -> String {
        var out = "Rapport d'usage — \(report.title) — période \(report.period.displayName) (\(report.period.timeZone))\n"
        if !report.finessFilter.isEmpty { out += "FINESS retenus : \(report.finessFilter.joined(separator: ", "))\n" }
        let summary = ReportSummary(report.total)
        out += "En bref :\n"
        for d in summary.domains { out += "  \(d.text)\n" }
        out += summary.losses.isEmpty ? "  Aucune perte (identité, refus DMP, échecs).\n"
            : "  Principales causes de perte : " + summary.losses.map { "\($0.label) \(ReportSummary.documents($0.count))" }
                .joined(separator: " ; ") + "\n"
        for scope in [report.total] + report.byFiness {
            out += "\n\(scope.title) — \(scope.staysDischarged) séjour\(scope.staysDischarged == 1 ? "" : "s") clos\n"
            var rows = [["Programme", "Code", "Indicateur", "Num.", "Dén.", "Taux %", "Cible %", "Atteint"]]
            for l in scope.lines {
                rows.append([l.programme, (l.headline ? "*" : " ") + l.code, l.label, String(l.numerator), String(l.denominator),
                             l.shownRate, l.targetText, l.reached.map { $0 ? "oui" : "NON" } ?? ""])
            }
            out += aligned(rows, rightAligned: [3, 4, 5, 6])
            if let note = ReportSummary.overHundredNote(scope.lines.filter(\.exceedsStays)) { out += note + "\n" }
            out += "\nPar type de document : produits / envoyés au DMP avec INS qualifiée\n"
            var kinds = [["Type", "LOINC", "Domaine", "Produits", "DMP"]]
            for k in scope.kinds {
                kinds.append([k.label, k.loinc, k.domains.joined(separator: ","), String(k.produced), String(k.dmpAccepted)])
            }
            out += aligned(kinds, rightAligned: [3, 4])
        }
        out += "\n" + delayTables(report.delays).map { title, rows in "\(title)\n" + aligned(rows, rightAligned: [1, 2, 3, 4, 5]) }
            .joined(separator: "\n")
        out += "\nDisponibilité sur la période écoulée (\(AvailabilityReport.duration(report.availability.periodSeconds)))\n"
            + aligned(report.availability.rows(timeZone: report.period.timeZone), rightAligned: [3, 5])
        out += "\n* ligne principale du domaine (dénominateur choisi dans [report]). — : pas de dénominateur (aucune donnée), pas 0 %.\n"
        return out
    }

    static func rateText(_ n: Int, _ d: Int) -> String {
        d <= 0 ? "" : String(format: "%.1f", (Double(n) * 1000 / Double(d)).rounded() / 10).replacingOccurrences(of: ".", with: ",")
    }

    static let delayHeader = ["Périmètre", "Nombre", "Médiane", "90e centile", "≤ 1 jour", "≤ 7 jours"]

    /// The two delay tables (title, header + rows).
    static func delayTables(_ d: DelayReport) -> [(String, [[String]])] {
        [("Délai de la sortie à l'enregistrement dans le DMP (documents D1, INS qualifiée)", d.dischargeToDmp),
         ("Délai de la réception à l'accusé (enregistrement DMP, acceptation par le relais MSSanté)", d.receptionToAcknowledgement)]
            .map { title, lines in (title, [delayHeader] + lines.map { [$0.scope] + $0.stats.cells }) }
    }

    static func aligned(_ rows: [[String]], rightAligned: Set<Int>) -> String {
        var widths = Array(repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }.joined(separator: "\n") + "\n"
    }
}

extension UsageReporter {
    /// Months of trend a format shows: the HTML page draws 12 months of charts, the others none.
    public static func trendMonths(for format: ReportFormat) -> Int { format == .html ? 12 : 0 }

    /// The report of `period` in `format`, as `passerelle report` writes it and the console
    /// downloads it (one rendering for both).
    public static func rendered(store: any UsageCounting, period: ReportPeriod, finess: [String] = [],
                                settings: PasserelleConfiguration.Report, format: ReportFormat, title: String = "Passerelle",
                                now: Date = Date()) async throws -> String {
        let report = try await make(store: store, period: period, finess: finess, settings: settings,
                                    trendMonths: trendMonths(for: format), title: title, now: now)
        return try format.render(report)
    }

    /// The HTML page's content without its head, for a page that has its own frame; its
    /// stylesheet is ``htmlStyle`` (served as a file where inline style is not allowed).
    public static func htmlFragment(_ report: UsageReport) -> String { HTMLReport.body(report) }

    /// The HTML report's stylesheet.
    public static var htmlStyle: String { HTMLReport.style }
}
