import Foundation
import PasserelleCore

/// One self-contained XHTML page (inline CSS and SVG, no script, no network), well-formed XML so
/// it can be checked by an XML parser. Every text from the journal or the configuration is escaped.
enum HTMLReport {
    static func escape(_ s: String) -> String { XMLText.escape(s, apostrophe: "&#39;") }

    static func number(_ value: Double) -> String { String(format: "%.1f", value) }

    static let style = """
        body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #1d2733; background: #fff; }
        h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 2px solid #0b5394; }
        p.meta { color: #555; margin: 0 0 12px; font-size: 13px; }
        table { border-collapse: collapse; font-size: 12px; margin-bottom: 12px; }
        th, td { border: 1px solid #ccd; padding: 3px 6px; } th { background: #e8eef6; text-align: left; }
        td.n { text-align: right; font-variant-numeric: tabular-nums; }
        tr.headline td { font-weight: bold; }
        .ok { color: #0a7a2f; font-weight: bold; } .ko { color: #b3261e; font-weight: bold; }
        .charts { display: flex; flex-wrap: wrap; gap: 12px; }
        svg { background: #fafbfd; border: 1px solid #dde; }
        svg text { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10px; fill: #333; }
        svg text.title { font-size: 12px; font-weight: bold; }
        rect.bar { fill: #0b5394; } rect.bar.dmp { fill: #2e9e5b; } rect.bar.produced { fill: #9fb6d3; }
        rect.bar.quality { fill: #d9822b; }
        line.target { stroke: #b3261e; stroke-width: 1.5; stroke-dasharray: 5 3; } line.axis { stroke: #888; }
        svg text.nodata { fill: #888; }
        table.availability caption, table.delays caption { text-align: left; font-weight: bold; padding: 4px 0; }
        div.summary { border: 1px solid #ccd; background: #f5f8fc; padding: 8px 14px; margin: 8px 0 16px; font-size: 14px; }
        div.summary ul { margin: 4px 0; padding-left: 20px; } p.note { font-size: 12px; color: #7a4b00; margin: 4px 0 12px; }
        @media print {
            @page { size: A4; margin: 12mm; }
            body { margin: 0; font-size: 11px; } h2 { break-after: avoid; } table, svg, div.summary { break-inside: avoid; }
            .charts { gap: 6px; } svg { max-width: 100%; height: auto; }
        }
        """

    static func render(_ report: UsageReport) -> String {
        let h = """
            <!DOCTYPE html>
            <html xmlns="http://www.w3.org/1999/xhtml" lang="fr">
            <head>
            <meta charset="utf-8"/>
            <title>\(escape("Rapport d'usage — \(report.title) — \(report.period.displayName)"))</title>
            <style>
            \(style)
            </style>
            </head>
            <body>

            """
        return h + body(report) + "</body>\n</html>\n"
    }

    /// The page's content (inside `<body>`): the console shows it under its own frame, with
    /// ``style`` as a stylesheet file (its Content-Security-Policy allows no inline style).
    static func body(_ report: UsageReport) -> String {
        var h = """
            <h1>\(escape("Rapport d'usage du numérique — \(report.title)"))</h1>
            <p class="meta">\(escape(meta(report)))</p>
            \(summary(report))
            """
        if !report.trend.isEmpty {
            h += "<h2>Évolution sur \(report.trend.count) mois</h2>\n<div class=\"charts\">\n"
            for code in report.trend.last!.lines.map(\.code) { h += trendChart(report.trend, code: code) }
            h += "</div>\n"
        }
        h += "<h2>\(escape("Indicateurs — \(report.total.title)"))</h2>\n" + linesTable(report.total.lines.filter { $0.programme != "Qualité" })
            + note(report.total.lines)
        h += "<h2>Par type de document</h2>\n" + kindChart(report.total.kinds)
        let quality = report.total.lines.filter { $0.programme == "Qualité" }
        h += "<h2>Lignes de qualité</h2>\n" + qualityChart(quality) + linesTable(quality)
        h += "<h2>Délais de transmission</h2>\n"
        for (title, rows) in TextReport.delayTables(report.delays) {
            h += "<table class=\"delays\">\n<caption>\(escape(title))</caption>\n<tr>" + rows[0].map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
            for row in rows.dropFirst() {
                h += "<tr><td>\(escape(row[0]))</td>" + row.dropFirst().map { "<td class=\"n\">\(escape($0))</td>" }.joined() + "</tr>\n"
            }
            h += "</table>\n"
        }
        let availability = report.availability.rows(timeZone: report.period.timeZone)
        h += "<h2>Disponibilité</h2>\n<table class=\"availability\">\n<caption>"
            + escape("Sur la période écoulée (\(AvailabilityReport.duration(report.availability.periodSeconds))) : passerelle en service, cibles injoignables (d'après les tentatives)")
            + "</caption>\n<tr>" + availability[0].map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
        for row in availability.dropFirst() {
            h += "<tr><td>\(escape(row[0]))</td>" + row.dropFirst().map { "<td class=\"n\">\(escape($0))</td>" }.joined() + "</tr>\n"
        }
        h += "</table>\n"
        for scope in report.byFiness {
            h += "<h2>\(escape(scope.title))</h2>\n" + linesTable(scope.lines) + note(scope.lines)
        }
        h += """
            <p class="meta">Lignes en gras : indicateur principal de chaque domaine (dénominateur choisi dans la configuration [report]). \
            Un document remplacé ou supprimé compte une fois ; les documents supprimés sont hors taux. \
            « — » : pas de dénominateur ce mois-là (aucune donnée), ce n&#39;est pas 0 %.</p>

            """
        return h
    }

    /// The comparison page: one table per scope, months as columns.
    static func comparison(_ c: ComparisonReport) -> String {
        let range = "\(FrenchCalendar.month(c.months.first!)) à \(FrenchCalendar.month(c.months.last!))"
        var h = """
            <!DOCTYPE html>
            <html xmlns="http://www.w3.org/1999/xhtml" lang="fr">
            <head>
            <meta charset="utf-8"/>
            <title>\(escape("Comparaison — \(c.title) — \(range)"))</title>
            <style>
            \(style)
            </style>
            </head>
            <body>
            <h1>\(escape("Comparaison des indicateurs — \(c.title)"))</h1>
            <p class="meta">\(escape("De \(range) (\(c.timeZone)) · taux en % · — : pas de données ce mois-là (pas 0 %)"))</p>

            """
        var scopes: [String] = []
        for row in c.rows where !scopes.contains(row.scope) { scopes.append(row.scope) }
        for scope in scopes {
            h += "<h2>\(escape(scope == "Ensemble" ? "Ensemble de la structure" : scope))</h2>\n<table class=\"comparison\">\n<tr><th>Code</th><th>Indicateur</th>"
                + c.months.map { "<th>\(escape(ComparisonReport.shortMonth($0)))</th>" }.joined() + "</tr>\n"
            for row in c.rows where row.scope == scope {
                h += "<tr\(row.lines.first?.headline == true ? " class=\"headline\"" : "") data-code=\"\(escape(row.code))\"><td>\(escape(row.code))</td><td>\(escape(row.label))</td>"
                for (month, l) in zip(c.months, row.lines) {
                    let cls = l.reached.map { $0 ? " ok" : " ko" } ?? ""
                    h += "<td class=\"n\(cls)\" data-month=\"\(escape(month))\" title=\"\(escape("\(l.numerator)/\(l.denominator)"))\">"
                        + "\(escape(l.shownRate))</td>"
                }
                h += "</tr>\n"
            }
            h += "</table>\n" + note(c.rows.filter { $0.scope == scope }.flatMap(\.lines))
        }
        return h + "<p class=\"meta\">Lignes en gras : indicateur principal de chaque domaine. Vert : cible atteinte ; rouge : non atteinte.</p>\n</body>\n</html>\n"
    }

    static func meta(_ report: UsageReport) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: report.period.timeZone)
        var text = "Période : \(report.period.displayName) (\(report.period.timeZone)), du \(formatter.string(from: report.period.start)) "
            + "au \(formatter.string(from: report.period.end)) exclu · \(report.total.staysDischarged) séjours clos · "
            + "généré le \(formatter.string(from: report.generatedAt))"
        if !report.finessFilter.isEmpty { text += " · FINESS : \(report.finessFilter.joined(separator: ", "))" }
        return text
    }

    /// The headline block: each SUN-ES domain reached or not, the three largest causes of loss.
    static func summary(_ report: UsageReport) -> String {
        let s = ReportSummary(report.total)
        var h = "<div class=\"summary\">\n<strong>En bref</strong>\n<ul class=\"domains\">\n"
        for d in s.domains {
            let cls = d.line.reached.map { $0 ? " class=\"ok\"" : " class=\"ko\"" } ?? ""
            h += "<li data-code=\"\(escape(d.line.code))\"><span\(cls)>\(escape(d.text))</span></li>\n"
        }
        h += "</ul>\n"
        if s.losses.isEmpty {
            h += "<p>Aucune perte : ni identité non qualifiée, ni refus du DMP, ni échec.</p>\n"
        } else {
            h += "<p>Principales causes de perte, à traiter en premier :</p>\n<ol class=\"losses\">\n"
            for l in s.losses {
                h += "<li data-code=\"\(escape(l.code))\" data-count=\"\(l.count)\">\(escape("\(l.label) : \(ReportSummary.documents(l.count))"))</li>\n"
            }
            h += "</ol>\n"
        }
        return h + "</div>\n"
    }

    static func note(_ lines: [IndicatorLine]) -> String {
        ReportSummary.overHundredNote(Array(Set(lines.filter(\.exceedsStays).map(\.code))).sorted().compactMap { code in
            lines.filter { $0.code == code }.max { ($0.rate ?? 0) < ($1.rate ?? 0) }
        }).map { "<p class=\"note over100\">\(escape($0))</p>\n" } ?? ""
    }

    static func linesTable(_ lines: [IndicatorLine]) -> String {
        var t = "<table class=\"indicators\">\n<tr><th>Programme</th><th>Code</th><th>Indicateur</th><th>Numérateur</th>"
            + "<th>Dénominateur</th><th>Taux (%)</th><th>Cible (%)</th><th>Atteint</th></tr>\n"
        for l in lines {
            let reached = l.reached.map { $0 ? "<span class=\"ok\">oui</span>" : "<span class=\"ko\">non</span>" } ?? ""
            t += "<tr\(l.headline ? " class=\"headline\"" : "") data-code=\"\(escape(l.code))\"><td>\(escape(l.programme))</td>"
                + "<td>\(escape(l.code))</td><td>\(escape(l.label))</td><td class=\"n\">\(l.numerator)</td>"
                + "<td class=\"n\">\(l.denominator)</td><td class=\"n\">\(escape(l.shownRate))</td>"
                + "<td class=\"n\">\(escape(l.targetText))</td><td>\(reached)</td></tr>\n"
        }
        return t + "</table>\n"
    }

    /// A bar per month, the target as a dashed line.
    static func trendChart(_ trend: [TrendMonth], code: String) -> String {
        let points = trend.map { month in (month.month, month.lines.first { $0.code == code }) }
        guard let any = points.compactMap(\.1).last else { return "" }
        // The full title, wrapped (a cut title hid which denominator the chart uses).
        let titleLines = wrap("\(code) — \(any.label)", width: 48)
        let width = 380.0, left = 36.0, right = 10.0, top = 20.0 + 13 * Double(titleLines.count), bottom = 30.0
        let height = top + 142 + bottom
        let plotW = width - left - right, plotH = height - top - bottom
        let peak = max(100, points.compactMap { $0.1?.rate }.max() ?? 0, Double(any.target ?? 0))
        let scale = (peak / 10).rounded(.up) * 10
        let y = { (v: Double) in top + plotH - plotH * v / scale }
        let slot = plotW / Double(max(points.count, 1))
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"trend\" data-code=\"\(escape(code))\" width=\"\(Int(width))\" "
            + "height=\(q(Int(height))) viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\">\n"
        s += "<text class=\"title\" x=\"8\" y=\"16\">" + titleLines.enumerated().map { i, t in
            // A space ends each wrapped line so the title's text content reads as one sentence.
            "<tspan x=\"8\" dy=\"\(i == 0 ? 0 : 13)\">\(escape(i < titleLines.count - 1 ? t + " " : t))</tspan>"
        }.joined() + "</text>\n"
        for tick in stride(from: 0.0, through: scale, by: scale / 4) {
            s += "<line class=\"axis\" x1=\"\(number(left))\" y1=\"\(number(y(tick)))\" x2=\"\(number(width - right))\" y2=\"\(number(y(tick)))\" stroke-opacity=\"0.3\"/>"
            s += "<text x=\"\(number(left - 4))\" y=\"\(number(y(tick) + 3))\" text-anchor=\"end\">\(Int(tick))</text>\n"
        }
        for (i, (month, line)) in points.enumerated() {
            let x = left + slot * Double(i) + slot * 0.15
            if let rate = line?.rate {
                s += "<rect class=\"bar\" data-month=\"\(escape(month))\" data-rate=\"\(number(rate))\" x=\"\(number(x))\" "
                    + "y=\"\(number(y(rate)))\" width=\"\(number(slot * 0.7))\" height=\"\(number(plotH * rate / scale))\">"
                    + "<title>\(escape("\(FrenchCalendar.month(month)) : \(line!.rateText) % (\(line!.numerator)/\(line!.denominator))"))</title></rect>"
            } else {
                // No denominator that month: a dash, not an empty bar that reads as 0 %.
                s += "<text class=\"nodata\" data-month=\"\(escape(month))\" x=\"\(number(x + slot * 0.35))\" y=\"\(number(top + plotH - 3))\" "
                    + "text-anchor=\"middle\">—<title>\(escape("\(FrenchCalendar.month(month)) : pas de données"))</title></text>"
            }
            s += "<text x=\"\(number(x + slot * 0.35))\" y=\"\(number(height - bottom + 12))\" text-anchor=\"middle\">\(escape(FrenchCalendar.shortMonth(month)))</text>\n"
        }
        if let target = any.target {
            s += "<line class=\"target\" data-target=\"\(target)\" x1=\"\(number(left))\" y1=\"\(number(y(Double(target))))\" "
                + "x2=\"\(number(width - right))\" y2=\"\(number(y(Double(target))))\"/>\n"
        }
        s += "<line class=\"axis\" x1=\"\(number(left))\" y1=\"\(number(top + plotH))\" x2=\"\(number(width - right))\" y2=\"\(number(top + plotH))\"/>\n"
        s += "<text x=\"\(number(left))\" y=\"\(number(height - 4))\">\(escape("\(FrenchCalendar.month(points.first!.0)) → \(FrenchCalendar.month(points.last!.0)), taux en %"))</text>\n"
        return s + "</svg>\n"
    }

    /// Produced and DMP-accepted documents, two bars per kind.
    static func kindChart(_ kinds: [KindLine]) -> String {
        let rowH = 34.0, labelW = 215.0, width = 640.0, barMax = width - labelW - 60
        let peak = Double(max(kinds.map(\.produced).max() ?? 0, 1))
        let height = 30 + rowH * Double(kinds.count)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"kinds\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
            + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\">\n"
        s += "<text class=\"title\" x=\"8\" y=\"16\">Documents produits (clair) et envoyés au DMP avec INS qualifiée (vert)</text>\n"
        for (i, k) in kinds.enumerated() {
            let y0 = 26 + rowH * Double(i)
            s += "<text x=\"8\" y=\"\(number(y0 + 17))\">\(escape("\(k.label) (\(k.loinc))"))</text>"
            for (j, (cls, value)) in [("produced", k.produced), ("dmp", k.dmpAccepted)].enumerated() {
                let w = barMax * Double(value) / peak
                let yy = y0 + 4 + Double(j) * 13
                s += "<rect class=\"bar \(cls)\" data-kind=\"\(escape(k.kind))\" data-value=\"\(value)\" x=\"\(number(labelW))\" "
                    + "y=\"\(number(yy))\" width=\"\(number(w))\" height=\"11\"/>"
                s += "<text x=\"\(number(labelW + w + 4))\" y=\"\(number(yy + 9))\">\(value)</text>"
            }
            s += "\n"
        }
        return s + "</svg>\n"
    }

    /// One horizontal bar per quality line (its rate in %).
    static func qualityChart(_ lines: [IndicatorLine]) -> String {
        let rowH = 20.0, labelW = 520.0, width = 820.0, barMax = width - labelW - 90
        let peak = max(lines.compactMap(\.rate).max() ?? 0, 1)
        let height = 10 + rowH * Double(lines.count)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"quality\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
            + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\">\n"
        for (i, l) in lines.enumerated() {
            let y0 = 6 + rowH * Double(i)
            let w = barMax * (l.rate ?? 0) / peak
            s += "<text x=\"8\" y=\"\(number(y0 + 12))\">\(escape("\(l.code) \(shortLabel(l.label, limit: 80))"))</text>"
            s += "<rect class=\"bar quality\" data-code=\"\(escape(l.code))\" data-value=\"\(l.numerator)\" x=\"\(number(labelW))\" "
                + "y=\"\(number(y0 + 2))\" width=\"\(number(w))\" height=\"13\"/>"
            s += "<text x=\"\(number(labelW + w + 4))\" y=\"\(number(y0 + 12))\">\(escape("\(l.numerator) (\(l.rateText.isEmpty ? "–" : l.rateText + " %"))"))</text>\n"
        }
        return s + "</svg>\n"
    }

    static func q(_ n: Int) -> String { "\"\(n)\"" }

    /// Words into lines of at most `width` characters.
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = [], current = ""
        for word in text.split(separator: " ") {
            if !current.isEmpty && current.count + 1 + word.count > width { lines.append(current); current = "" }
            current += (current.isEmpty ? "" : " ") + word
        }
        return current.isEmpty ? lines : lines + [current]
    }

    /// Labels are long: charts keep the part before the first comma, at most `limit` characters.
    static func shortLabel(_ label: String, limit: Int = 52) -> String {
        let head = label.split(separator: ",").first.map(String.init) ?? label
        return head.count > limit ? String(head.prefix(limit - 1)) + "…" : head
    }
}
