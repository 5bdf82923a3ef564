import Foundation

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

/// Table, CSV and JSON.
enum TextReport {
    static let csvHeader = ["Programme", "Code", "Indicateur", "Période", "Numérateur", "Dénominateur", "Taux", "Cible", "Atteint"]

    /// `;`-separated, UTF-8, CRLF line ends (what spreadsheet software expects), fields quoted only when needed.
    /// The rows are the whole selected scope.
    static func csv(_ report: UsageReport) -> String {
        func field(_ s: String) -> String {
            s.contains(where: { $0 == ";" || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        var rows = [csvHeader]
        for l in report.total.lines {
            rows.append([l.programme, l.code, l.label, report.period.label, String(l.numerator), String(l.denominator),
                         l.rateText, l.targetText, l.reachedText])
        }
        return rows.map { $0.map(field).joined(separator: ";") }.joined(separator: "\r\n") + "\r\n"
    }

    static func json(_ report: UsageReport) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        // snake_case, as every command's JSON (format version 2; version 1 was camelCase).
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
    }

    /// Aligned columns for a terminal; `*` marks each domain's headline line.
    static func table(_ report: UsageReport) -> String {
        var out = "Rapport d'usage — \(report.title) — période \(report.period.label) (\(report.period.timeZone))\n"
        if !report.finessFilter.isEmpty { out += "FINESS retenus : \(report.finessFilter.joined(separator: ", "))\n" }
        for scope in [report.total] + report.byFiness {
            out += "\n\(scope.title) — \(scope.staysDischarged) séjour\(scope.staysDischarged == 1 ? "" : "s") clos\n"
            var rows = [["Programme", "Code", "Indicateur", "Num.", "Dén.", "Taux %", "Cible %", "Atteint"]]
            for l in scope.lines {
                rows.append([l.programme, (l.headline ? "*" : " ") + l.code, l.label, String(l.numerator), String(l.denominator),
                             l.rateText, l.targetText, l.reached.map { $0 ? "oui" : "NON" } ?? ""])
            }
            out += aligned(rows, rightAligned: [3, 4, 5, 6])
            out += "\nPar type de document : produits / envoyés au DMP avec INS qualifiée\n"
            var kinds = [["Type", "LOINC", "Domaine", "Produits", "DMP"]]
            for k in scope.kinds {
                kinds.append([k.label, k.loinc, k.domains.joined(separator: ","), String(k.produced), String(k.dmpAccepted)])
            }
            out += aligned(kinds, rightAligned: [3, 4])
        }
        out += "\n* ligne principale du domaine (dénominateur choisi dans [report]).\n"
        return out
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
