import Foundation
import Indicators
import Journal
import PasserelleCore
import Testing
import TestSupport
import XMLKit

/// One expected line: the figures every format must show.
struct Expected: Equatable, CustomStringConvertible {
    var code: String, numerator: Int, denominator: Int, rate: String, target: String, reached: String
    init(_ code: String, _ n: Int, _ d: Int, _ rate: String, _ target: String = "", _ reached: String = "") {
        self.code = code; numerator = n; denominator = d; self.rate = rate; self.target = target; self.reached = reached
    }
    var description: String { "\(code) \(numerator)/\(denominator) \(rate) \(target) \(reached)" }
}

@Suite("usage report over a journal of known content", .serialized)
struct ReportTests {
    /// October 2026, whole structure, default settings (see ``KnownJournal`` for the why of each figure).
    static let october: [Expected] = [
        Expected("V1-D1-SEJ", 4, 6, "66,7", "≥ 50", "O"),     // ldl-1 (once), cro-3, ord-4, ldl-12 / S1 S2 S3 S4 S5 S6
        Expected("V1-D1-DOC", 4, 5, "80,0"),                  // + ldl-5 held back; ldl-2 deleted is out
        Expected("V1-D2-SEJ", 0, 6, "0,0"),
        Expected("V1-D2-DOC", 0, 2, "0,0", "≥ 80", "N"),      // bio-6 refused, bio-8 waiting
        Expected("V1-D3-SEJ", 1, 6, "16,7"),
        Expected("V1-D3-DOC", 1, 2, "50,0", "≥ 80", "N"),     // img-9 (1 Oct local), img-7 failed
        Expected("V2-PAT", 2, 9, "22,2", "≥ 10", "O"),        // ldl-1, ldl-12
        Expected("V2-PAT-DSN", 1, 2, "50,0", "≥ 95", "N"),
        Expected("V2-PAT-MDN", 1, 2, "50,0"),
        Expected("V2-PS", 2, 9, "22,2"),                      // cro-3, ord-4 (ldl-12 refused by SMTP)
        Expected("V2-PS-DSN", 1, 2, "50,0", "≥ 95", "N"),
        Expected("V2-PS-MDN", 0, 2, "0,0"),
        Expected("HN-D2-LDL", 2, 6, "33,3", "≥ 80", "N"),     // S1 (ldl-1), S5 (ldl-12); S4's letter was deleted
        Expected("Q-INS", 1, 9, "11,1", "≤ 10", "N"),
        Expected("Q-REFUS-DMP", 1, 9, "11,1", "≤ 2", "N"),
        Expected("Q-REFUS-DMP-\(KnownJournal.refusalCode)", 1, 9, "11,1"),
        Expected("Q-ECHEC-RETRY", 1, 9, "11,1", "≤ 1", "N"),
        Expected("Q-ECHEC-DEF", 1, 9, "11,1", "≤ 1", "N"),
        Expected("Q-ATTENTE", 1, 9, "11,1"),
        Expected("Q-ECARTE", 0, 9, "0,0"),                   // nothing discarded (OperatorQueueTests counts one)
        Expected("Q-REMPL", 1, 9, "11,1"),                    // ldl-1 replaced twice: once
        Expected("Q-SUPPR", 1, 10, "10,0"),
    ]

    static let settings = PasserelleConfiguration.Report.default
    static let generatedAt = KnownJournal.date("2026-11-02T08:00:00Z")

    static func report(_ j: KnownJournal, month: String = "2026-10", finess: [String] = [], trend: Int = 0) async throws -> UsageReport {
        try await UsageReporter.make(store: j.store, period: ReportPeriod.month(month, timeZone: "Europe/Paris"), finess: finess,
                                     settings: settings, trendMonths: trend, title: "CH <Démo> & Co", now: generatedAt)
    }

    static func expected(_ line: IndicatorLine) -> Expected {
        Expected(line.code, line.numerator, line.denominator, line.rateText, line.targetText, line.reachedText)
    }

    @Test("the report model: every figure of October, per structure and per FINESS", arguments: ["sqlite", "postgresql"])
    func model(backend: String) async throws {
        let j = try await KnownJournal(postgresql: backend == "postgresql")
        let r = try await Self.report(j)
        #expect(r.total.lines.map(Self.expected) == Self.october)
        #expect(r.total.staysDischarged == 6)
        #expect(r.period.start == KnownJournal.date("2026-09-30T22:00:00Z"))
        #expect(r.period.end == KnownJournal.date("2026-10-31T23:00:00Z"))
        let kinds = Dictionary(uniqueKeysWithValues: r.total.kinds.map { ($0.kind, [$0.produced, $0.dmpAccepted]) })
        #expect(kinds == ["ldl": [3, 2], "ordonnance": [1, 1], "cro": [1, 1], "cr-bio": [2, 0], "cr-imagerie": [2, 1]])
        let headlines = r.total.lines.filter(\.headline).map(\.code)
        #expect(headlines == ["V1-D1-SEJ", "V1-D2-DOC", "V1-D3-DOC"])

        #expect(r.byFiness.map(\.finess) == [KnownJournal.a, KnownJournal.b])
        let a = Dictionary(uniqueKeysWithValues: r.byFiness[0].lines.map { ($0.code, Self.expected($0)) })
        let b = Dictionary(uniqueKeysWithValues: r.byFiness[1].lines.map { ($0.code, Self.expected($0)) })
        #expect(a["V1-D1-SEJ"] == Expected("V1-D1-SEJ", 3, 4, "75,0", "≥ 50", "O"))
        #expect(a["V1-D1-DOC"] == Expected("V1-D1-DOC", 3, 4, "75,0"))
        #expect(a["HN-D2-LDL"] == Expected("HN-D2-LDL", 1, 4, "25,0", "≥ 80", "N"))
        #expect(a["Q-SUPPR"] == Expected("Q-SUPPR", 1, 9, "11,1"))
        #expect(b["V1-D1-SEJ"] == Expected("V1-D1-SEJ", 1, 2, "50,0", "≥ 50", "O"))
        #expect(b["V1-D1-DOC"] == Expected("V1-D1-DOC", 1, 1, "100,0"))
        #expect(b["Q-ECHEC-DEF"] == Expected("Q-ECHEC-DEF", 1, 1, "100,0", "≤ 1", "N"))
        #expect(b["V1-D2-DOC"] == Expected("V1-D2-DOC", 0, 0, "", "≥ 80", ""))   // no denominator: no verdict

        // --finess B alone: the total is B's, and there is no per-FINESS breakdown.
        let onlyB = try await Self.report(j, finess: [KnownJournal.b])
        #expect(onlyB.total.lines.map(Self.expected) == r.byFiness[1].lines.map(Self.expected))
        #expect(onlyB.byFiness.isEmpty)
    }

    @Test("month boundaries are Europe/Paris midnights, not UTC", arguments: ["sqlite", "postgresql"])
    func boundaries(backend: String) async throws {
        let j = try await KnownJournal(postgresql: backend == "postgresql")
        let september = try await Self.report(j, month: "2026-09")
        let s = Dictionary(uniqueKeysWithValues: september.total.lines.map { ($0.code, Self.expected($0)) })
        // S0 (30 Sep 23:30 +02:00) and ldl-11 (30 Sep 23:50 +02:00) only; S2 and img-9 are October's.
        #expect(september.total.staysDischarged == 1)
        #expect(s["V1-D1-SEJ"] == Expected("V1-D1-SEJ", 1, 1, "100,0", "≥ 50", "O"))
        #expect(s["V1-D3-DOC"] == Expected("V1-D3-DOC", 0, 0, "", "≥ 80", ""))
        let november = try await Self.report(j, month: "2026-11")
        let n = Dictionary(uniqueKeysWithValues: november.total.lines.map { ($0.code, Self.expected($0)) })
        // S9 (1 Nov 00:30 +01:00) and ldl-10 (1 Nov 00:10 +01:00): November although October in UTC.
        #expect(november.total.staysDischarged == 1)
        #expect(n["V1-D1-SEJ"] == Expected("V1-D1-SEJ", 1, 1, "100,0", "≥ 50", "O"))
        #expect(n["HN-D2-LDL"] == Expected("HN-D2-LDL", 1, 1, "100,0", "≥ 80", "O"))

        // A range of days: 1–15 October holds S2, S3, S4 and every October document but ldl-12.
        let range = try await UsageReporter.make(
            store: j.store, period: ReportPeriod.days(from: "2026-10-01", to: "2026-10-15", timeZone: "Europe/Paris"),
            settings: Self.settings, now: Self.generatedAt)
        let d = Dictionary(uniqueKeysWithValues: range.total.lines.map { ($0.code, Self.expected($0)) })
        #expect(range.period.label == "2026-10-01..2026-10-15")
        #expect(range.total.staysDischarged == 3)
        #expect(d["V1-D1-SEJ"] == Expected("V1-D1-SEJ", 3, 3, "100,0", "≥ 50", "O"))
        #expect(d["V1-D1-DOC"] == Expected("V1-D1-DOC", 3, 4, "75,0"))

        // The trend: 12 months ending in October, September and October filled in.
        let trend = try await Self.report(j, trend: 12)
        #expect(trend.trend.map(\.month) == ["2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
                                            "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"])
        let d1 = trend.trend.map { $0.lines.first { $0.code == "V1-D1-SEJ" }?.rate }
        #expect(d1 == Array(repeating: nil, count: 10) + [100.0, 66.7])
        #expect(trend.trend.last!.lines.map(\.code) == ["V1-D1-SEJ", "V1-D2-DOC", "V1-D3-DOC", "V2-PAT", "V2-PS", "HN-D2-LDL"])
    }

    @Test("CSV: the prescribed header and every figure")
    func csv() async throws {
        let j = try await KnownJournal()
        let text = try ReportFormat.csv.render(try await Self.report(j))
        let rows = text.components(separatedBy: "\r\n").dropLast()
        #expect(text.hasSuffix("\r\n"))
        // A UTF-8 BOM first (issue 22: without it spreadsheet software garbles the accents).
        #expect(rows.first == "\u{FEFF}Programme;Code;Indicateur;Période;Numérateur;Dénominateur;Taux;Cible;Atteint")
        let all = rows.dropFirst().map { $0.components(separatedBy: ";") }
        #expect(all.allSatisfy { $0.count == 9 && $0[3] == "2026-10" })
        // The indicator lines, then the delay rows (issue 22: delays in every format).
        let parsed = all.filter { $0[0] != "Délais" && $0[0] != "Disponibilité" }
        let delays = Dictionary(uniqueKeysWithValues: all.filter { $0[0] == "Délais" }.map { ($0[1], [$0[4], $0[5], $0[6]]) })
        #expect(delays["DELAI-SORTIE-DMP-J1"] == ["2", "3", "66,7"])
        #expect(delays["DELAI-SORTIE-DMP-J7"] == ["3", "3", "100,0"])
        #expect(delays["DELAI-SORTIE-DMP-cro-750712184-J7"] == ["1", "1", "100,0"])
        #expect(delays["DELAI-RECEPTION-ACCUSE-dmp-J1"] == ["7", "7", "100,0"])
        #expect(parsed.map { Expected($0[1], Int($0[4]) ?? -1, Int($0[5]) ?? -1, $0[6], $0[7], $0[8]) } == Self.october)
        #expect(parsed.first.map { Array($0.prefix(3)) } == ["SUN-ES", "V1-D1-SEJ",
                                                            "Documents de sortie envoyés au DMP avec INS qualifiée, par séjour clos"])
    }

    @Test("JSON: stable keys, explicit nulls, every figure")
    func json() async throws {
        let j = try await KnownJournal()
        let report = try await Self.report(j)
        let text = try ReportFormat.json.render(report)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        // + delays and availability (issue 22; additions: format_version stays 2).
        #expect(Set(object.keys) == ["format_version", "title", "period", "generated_at", "finess_filter", "total", "by_finess", "trend",
                                     "delays", "availability"])
        #expect(object["format_version"] as? Int == 2)
        #expect(object["generated_at"] as? String == "2026-11-02T08:00:00Z")
        let period = try #require(object["period"] as? [String: Any])
        #expect(period["start"] as? String == "2026-09-30T22:00:00Z")
        #expect(period["end"] as? String == "2026-10-31T23:00:00Z")
        #expect(period["time_zone"] as? String == "Europe/Paris")
        let total = try #require(object["total"] as? [String: Any])
        #expect(total["finess"] is NSNull)
        #expect(total["stays_discharged"] as? Int == 6)
        let lines = try #require(total["lines"] as? [[String: Any]])
        #expect(lines.allSatisfy { Set($0.keys) == ["programme", "code", "label", "numerator", "denominator", "rate", "target",
                                                    "target_kind", "reached", "headline"] })
        let got = lines.map { l in
            Expected(l["code"] as? String ?? "", l["numerator"] as? Int ?? -1, l["denominator"] as? Int ?? -1,
                     (l["rate"] as? Double).map { String(format: "%.1f", $0).replacingOccurrences(of: ".", with: ",") } ?? "",
                     (l["target"] as? Int).map { "\(l["target_kind"] as? String == "minimum" ? "≥" : "≤") \($0)" } ?? "",
                     (l["reached"] as? Bool).map { $0 ? "O" : "N" } ?? "")
        }
        #expect(got == Self.october)
        #expect(lines.filter { $0["target"] is NSNull }.count == Self.october.filter { $0.target.isEmpty }.count)
        // Decodes back to the same report.
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        #expect(try decoder.decode(UsageReport.self, from: Data(text.utf8)) == report)
    }

    @Test("table: aligned columns with every figure")
    func table() async throws {
        let j = try await KnownJournal()
        let text = try ReportFormat.table.render(try await Self.report(j))
        // French month name (issue 22), then the headline block.
        #expect(text.hasPrefix("Rapport d'usage — CH <Démo> & Co — période octobre 2026 (Europe/Paris)\nEn bref :\n"))
        #expect(text.contains("  D1 Documents de sortie — 66,7 % pour une cible ≥ 50 % : atteint\n"))
        #expect(text.contains("  D2 CR de biologie — 0,0 % pour une cible ≥ 80 % : NON atteint\n"))
        // Four causes at 1 document each: the first three in the report's order.
        #expect(text.contains("  Principales causes de perte : identité non qualifiée (documents retenus) 1 document ; "
                              + "refus du DMP 1 document ; échecs après épuisement des nouvelles tentatives 1 document\n"))
        // FINESS B has no biology: its D2 line reads "—", not 0.
        #expect(text.contains("FINESS \(KnownJournal.b) — 2 séjours clos"))
        #expect(text.components(separatedBy: "FINESS \(KnownJournal.b)")[1].contains(
            /\*V1-D2-DOC\s+CR de biologie envoyés au DMP avec INS qualifiée, par document produit\s+0\s+0\s+—\s+≥ 80\n/))
        #expect(text.contains("Ensemble de la structure — 6 séjours clos"))
        #expect(text.contains("FINESS \(KnownJournal.a) — 4 séjours clos"))
        // The first block of indicator rows is the whole structure.
        let section = text.components(separatedBy: "\n\n")[1]
        let rows = section.split(separator: "\n").dropFirst(2).map(String.init)
        let pattern = /^(\S+)\s+[* ](\S+)\s+(.+?)\s+(\d+)\s+(\d+)(?:\s+(\d+,\d))?(?:\s+([≥≤] \d+))?(?:\s+(oui|NON))?$/
        let got = try rows.map { row in
            let m = try #require(row.wholeMatch(of: pattern), "unreadable row: \(row)")
            return Expected(String(m.2), Int(m.4)!, Int(m.5)!, m.6.map(String.init) ?? "", m.7.map(String.init) ?? "",
                            m.8.map { $0 == "oui" ? "O" : "N" } ?? "")
        }
        #expect(got == Self.october)
        #expect(text.contains("*V1-D1-SEJ"))
        let header = section.split(separator: "\n")[1]
        #expect(header.hasPrefix("Programme"))
        #expect(header.hasSuffix("Atteint"))
    }

    @Test("HTML: well-formed, self-contained, escaped, with trend charts, kind bars and quality lines")
    func html() async throws {
        let j = try await KnownJournal()
        let text = try ReportFormat.html.render(try await Self.report(j, trend: 12))
        // The only URIs are the XHTML and SVG namespace names.
        #expect(!text.replacingOccurrences(of: "http://www.w3.org/", with: "").contains("http"))
        #expect(!text.contains("<script"))
        #expect(text.contains("CH &lt;Démo&gt; &amp; Co"))
        // XMLKit refuses every DOCTYPE (hostile-input rule): the HTML5 one is checked as text,
        // the rest parsed as XML.
        #expect(text.hasPrefix("<!DOCTYPE html>"), "\(text.prefix(40))")
        let doc = try XMLDocument.parse(text.hasPrefix("<!DOCTYPE html>") ? String(text.dropFirst("<!DOCTYPE html>".count)) : text)
        let ns = ["h": "http://www.w3.org/1999/xhtml", "s": "http://www.w3.org/2000/svg"]
        func nodes(_ xpath: String) throws -> [XMLNode] { try doc.nodes(xpath, namespaces: ns) }
        #expect(try nodes("/h:html/h:head/h:style").count == 1)
        #expect(try nodes("//h:link | //h:img | //*[@src]").isEmpty)   // nothing fetched

        // Six trend charts of 12 months; October's D1 bar is 66.7 %, September's 100 %.
        let charts = try nodes("//s:svg[@class='trend']")
        #expect(charts.map { $0.attribute("data-code") } == ["V1-D1-SEJ", "V1-D2-DOC", "V1-D3-DOC", "V2-PAT", "V2-PS", "HN-D2-LDL"])
        let d1 = try nodes("//s:svg[@data-code='V1-D1-SEJ']/s:rect[@class='bar']")
        #expect(d1.map { $0.attribute("data-month") } == ["2026-09", "2026-10"])
        #expect(d1.map { $0.attribute("data-rate") } == ["100.0", "66.7"])
        #expect(try nodes("//s:svg[@data-code='V1-D1-SEJ']/s:line[@class='target']").first?.attribute("data-target") == "50")
        // title, ticks, months, a "—" for each of the 10 months without data (issue 22: not 0 %), caption
        #expect(try nodes("//s:svg[@data-code='V1-D1-SEJ']/s:text").count == 1 + 5 + 12 + 10 + 1)
        let dashes = try nodes("//s:svg[@data-code='V1-D1-SEJ']/s:text[@class='nodata']")
        #expect(dashes.first?.attribute("data-month") == "2025-11" && dashes.allSatisfy { $0.text.hasPrefix("—") })
        // The full title (was cut at the first comma), the French months.
        let title = try #require(try nodes("//s:svg[@data-code='V1-D1-SEJ']/s:text[@class='title']").first)
        #expect(title.text == "V1-D1-SEJ — Documents de sortie envoyés au DMP avec INS qualifiée, par séjour clos")
        #expect(try nodes("//s:svg[@data-code='V1-D1-SEJ']/s:text").map(\.text).contains("sept."))
        #expect(text.contains("novembre 2025 → octobre 2026, taux en %"))
        #expect(try nodes("//h:title").first?.text == "Rapport d'usage — CH <Démo> & Co — octobre 2026")
        // The headline block: domains reached or not, the causes of loss with their counts.
        #expect(try nodes("//h:div[@class='summary']/h:ul/h:li").map { $0.attribute("data-code")! } == ["V1-D1-SEJ", "V1-D2-DOC", "V1-D3-DOC"])
        #expect(try nodes("//h:div[@class='summary']/h:ul/h:li/h:span[@class='ok']").count == 1)
        #expect(try nodes("//h:ol[@class='losses']/h:li").map { "\($0.attribute("data-code")!)=\($0.attribute("data-count")!)" }
                == ["Q-INS=1", "Q-REFUS-DMP=1", "Q-ECHEC-RETRY=1"])
        #expect(text.contains("@media print") && text.contains("size: A4"))
        #expect(try nodes("//h:p[contains(@class, 'over100')]").isEmpty)

        // Bars per kind: produced and DMP for each of the five kinds.
        let kindBars = try nodes("//s:svg[@class='kinds']/s:rect")
        #expect(kindBars.map { "\($0.attribute("data-kind")!)=\($0.attribute("data-value")!)" }
                == ["ldl=3", "ldl=2", "ordonnance=1", "ordonnance=1", "cro=1", "cro=1", "cr-bio=2", "cr-bio=0",
                    "cr-imagerie=2", "cr-imagerie=1"])

        // Quality bars, one per quality line.
        let quality = try nodes("//s:svg[@class='quality']/s:rect")
        #expect(quality.map { $0.attribute("data-code")! } == Self.october.filter { $0.code.hasPrefix("Q-") }.map(\.code))

        // The tables: the structure's lines (indicators, then quality), then one table per FINESS.
        let tables = try nodes("//h:table[@class='indicators']")
        #expect(tables.count == 4)
        let rows = try nodes("(//h:table[@class='indicators'])[1]/h:tr[@data-code] | (//h:table[@class='indicators'])[2]/h:tr[@data-code]")
        let got = rows.map { row -> Expected in
            let cells = row.elements.map(\.text)
            return Expected(cells[1], Int(cells[3]) ?? -1, Int(cells[4]) ?? -1, cells[5], cells[6],
                            cells[7] == "oui" ? "O" : cells[7] == "non" ? "N" : "")
        }
        #expect(got == Self.october)
        #expect(try nodes("(//h:table[@class='indicators'])[1]/h:tr[@class='headline']").map { $0.attribute("data-code") }
                == ["V1-D1-SEJ", "V1-D2-DOC", "V1-D3-DOC"])
    }

    @Test("a per-stay rate above 100 % carries its explanation; the biggest cause of loss comes first")
    func overHundred() async throws {
        let j = try await KnownJournal()
        var report = try await Self.report(j)
        let i = try #require(report.total.lines.firstIndex { $0.code == "V1-D1-SEJ" })
        report.total.lines[i].numerator = 9
        report.total.lines[i].rate = 150
        let q = try #require(report.total.lines.firstIndex { $0.code == "Q-ECHEC-DEF" })
        report.total.lines[q].numerator = 5
        let html = try ReportFormat.html.render(report)
        #expect(html.contains("<p class=\"note over100\">Taux par séjour supérieur à 100 % (V1-D1-SEJ 150,0 %) : plusieurs documents pour un même séjour"))
        let table = try ReportFormat.table.render(report)
        #expect(table.contains("Taux par séjour supérieur à 100 % (V1-D1-SEJ 150,0 %)"))
        #expect(table.contains("Principales causes de perte : échecs définitifs (hors refus DMP) 5 documents ; identité non qualifiée"))
    }

    @Test("delays: discharge → DMP for D1 per kind and FINESS, reception → acknowledgement per target", arguments: ["sqlite", "postgresql"])
    func delays(backend: String) async throws {
        let j = try await KnownJournal(postgresql: backend == "postgresql")
        let d = try await Self.report(j).delays
        // ldl-1: registered 2 Oct, its stay S1 discharged 31 Oct (0, not negative); cro-3: S2 out
        // 1 Oct 00:30, registered 7 Oct 09:00:01 (152.5 h); ldl-12: 2 h after S5's discharge.
        // ord-4 has no stay, ldl-2 was deleted, ldl-5 was never sent: none of them counts.
        let total = try #require(d.dischargeToDmp.first)
        #expect(total.kind == nil && total.finess == nil)
        #expect(total.stats.count == 3)
        #expect(total.stats.medianHours == 2.0)
        #expect(total.stats.p90Hours == 152.5)
        #expect(total.stats.withinOneDay == 2 && total.stats.withinSevenDays == 3)
        #expect(total.stats.withinOneDayRate == 66.7)
        #expect(d.dischargeToDmp.map { "\($0.kind ?? "*")/\($0.finess ?? "*")=\($0.stats.count)" }
                == ["*/*=3", "cro/*=1", "cro/\(KnownJournal.a)=1", "ldl/*=2", "ldl/\(KnownJournal.a)=1", "ldl/\(KnownJournal.b)=1"])
        #expect(d.dischargeToDmp.first { $0.kind == "ldl" && $0.finess == KnownJournal.b }?.stats.medianHours == 2.0)
        // Reception → success: every successful transmission of the month's live sets (1 s each here).
        #expect(d.receptionToAcknowledgement.map { "\($0.target ?? "*")=\($0.stats.count)" }
                == ["*=11", "dmp=7", "mssante_ps=2", "mssante_patient=2"])
        #expect(d.receptionToAcknowledgement.allSatisfy { $0.stats.medianHours == 0 && $0.stats.withinOneDayRate == 100 })

        let table = try ReportFormat.table.render(try await Self.report(j))
        #expect(table.contains(/ensemble\s+3\s+2,0 h\s+6,4 j\s+66,7 %\s+100,0 %/))
        let html = try ReportFormat.html.render(try await Self.report(j))
        #expect(html.contains("<table class=\"delays\">") && html.contains("6,4 j"))
    }

    @Test("availability: the runs' union within the month, each target's outages from its attempts", arguments: ["sqlite", "postgresql"])
    func availability(backend: String) async throws {
        let j = try await KnownJournal(postgresql: backend == "postgresql")
        let d = KnownJournal.date
        // A run stopped cleanly (2 h), a second node overlapping it by 1 h, and a run that crashed
        // across the month's end: its last beat (1 Nov 01:00 local) ends it, clipped at midnight.
        try await j.store.recordServiceRun(id: "a", host: "h", pid: 1, startedAt: d("2026-10-05T10:00:00+02:00"),
                                           now: d("2026-10-05T11:00:00+02:00"), stopped: false)
        try await j.store.recordServiceRun(id: "a", host: "h", pid: 1, startedAt: d("2026-10-05T10:00:00+02:00"),
                                           now: d("2026-10-05T12:00:00+02:00"), stopped: true)
        try await j.store.recordServiceRun(id: "b", host: "h2", pid: 2, startedAt: d("2026-10-05T11:00:00+02:00"),
                                           now: d("2026-10-05T13:00:00+02:00"), stopped: true)
        try await j.store.recordServiceRun(id: "c", host: "h", pid: 3, startedAt: d("2026-10-31T23:00:00+01:00"),
                                           now: d("2026-11-01T01:00:00+01:00"), stopped: false)
        try await j.store.recordServiceRun(id: "old", host: "h", pid: 4, startedAt: d("2026-09-01T00:00:00+02:00"),
                                           now: d("2026-09-02T00:00:00+02:00"), stopped: true)
        let a = try await Self.report(j).availability
        #expect(a.periodSeconds == 31 * 86_400 + 3600)     // October ends on winter time: one hour more
        #expect(a.runs == 3)
        #expect(a.runningSeconds == 3 * 3600 + 3600)       // 10:00–13:00 once, plus 23:00–24:00
        #expect(a.runningRate == 0.5)
        // img-7: two network failures 5 s apart, then the DMP answered (ldl-12): one outage of 5 s.
        let dmp = try #require(a.targets.first { $0.target == "dmp" })
        #expect(dmp.outages == 1 && dmp.unreachableSeconds == 5 && dmp.longestOutageSeconds == 5 && !dmp.ongoing)
        #expect(dmp.longestOutageStart == d("2026-10-11T09:00:01+02:00"))
        #expect(dmp.attempts == 11)   // ldl-1 ×3, ldl-2, cro-3, ord-4, bio-6, img-7 ×2, img-9, ldl-12
        // The SMTP 550 is an answer, not an outage.
        #expect(a.targets.first { $0.target == "mssante_ps" }?.outages == 0)

        let table = try ReportFormat.table.render(try await Self.report(j))
        #expect(table.contains(/Passerelle \(passerelle run\)\s+4 h 00 min \(0,5 %\)\s+30 j 21 h/))
        #expect(table.contains(/Cible dmp\s+5 s\s+1\s+5 s dès 2026-10-11T09:00:01\+02:00\s+11\n/))
        let csv = try ReportFormat.csv.render(try await Self.report(j))
        #expect(csv.contains("Disponibilité;DISPO-SERVICE;Temps de fonctionnement de la passerelle (minutes);2026-10;240;44700;0,5;;\r\n"))
    }

    @Test("availability arithmetic: an outage begun before the month, one still going on, interrupted attempts ignored")
    func availabilityArithmetic() {
        let from = KnownJournal.date("2026-10-01T00:00:00Z"), until = KnownJournal.date("2026-11-01T00:00:00Z")
        func at(_ h: Double) -> Date { from.addingTimeInterval(h * 3600) }
        let attempts = [
            AttemptSample(target: .dmp, startedAt: at(-2), endedAt: at(-2), outcome: "transient"),
            AttemptSample(target: .dmp, startedAt: at(3), endedAt: at(3), outcome: "transient"),
            AttemptSample(target: .dmp, startedAt: at(3.5), endedAt: at(3.5), outcome: "interrupted"),
            AttemptSample(target: .dmp, startedAt: at(4), endedAt: at(4), outcome: "sent"),
            AttemptSample(target: .dmp, startedAt: at(10), endedAt: at(10), outcome: "transient"),
            AttemptSample(target: .dmp, startedAt: at(11), endedAt: at(11), outcome: "permanent"),
            AttemptSample(target: .mssantePS, startedAt: at(100), endedAt: at(100), outcome: "transient"),
            AttemptSample(target: .mssantePS, startedAt: at(130), endedAt: at(130.5), outcome: "transient"),
        ]
        let a = AvailabilityReport.make(runs: [], attempts: attempts, from: from, until: until, now: at(200))
        #expect(a.periodSeconds == 200 * 3600)    // the elapsed part of a month not over
        #expect(a.runningRate == nil)             // no run recorded: not 0 %
        let dmp = a.targets[0], ps = a.targets[1]
        // -2 h → 3 h clipped to 0 → 3 h; 10 h → 10 h (one failure, no length); the refusal is an answer.
        #expect(dmp.outages == 1 && dmp.unreachableSeconds == 3 * 3600 && dmp.longestOutageStart == from && !dmp.ongoing)
        #expect(ps.ongoing && ps.unreachableSeconds == Int(30.5 * 3600) && ps.longestOutageSeconds == Int(30.5 * 3600))
    }

    @Test("comparison across months and FINESS: each month's figures are that month's report", arguments: ["sqlite", "postgresql"])
    func comparison(backend: String) async throws {
        let j = try await KnownJournal(postgresql: backend == "postgresql")
        let c = try await ComparisonReport.make(store: j.store, from: "2026-09", to: "2026-11", settings: Self.settings, title: "CH",
                                                now: Self.generatedAt)
        #expect(c.months == ["2026-09", "2026-10", "2026-11"])
        #expect(c.rows.map(\.finess).uniqued == [nil, KnownJournal.a, KnownJournal.b])
        // Each cell is the monthly report of that month restricted to that scope (--finess).
        for (index, month) in c.months.enumerated() {
            for finess in [nil, KnownJournal.a, KnownJournal.b] {
                let r = try await Self.report(j, month: month, finess: finess.map { [$0] } ?? [])
                let lines = r.total.lines.filter { !$0.code.hasPrefix("Q-REFUS-DMP-") }.map(Self.expected)
                #expect(c.rows.filter { $0.finess == finess }.map { Self.expected($0.lines[index]) } == lines, "\(month) \(finess ?? "total")")
            }
        }
        #expect(!c.rows.contains { $0.code.hasPrefix("Q-REFUS-DMP-") })
        let d1 = try #require(c.rows.first { $0.finess == nil && $0.code == "V1-D1-SEJ" })
        #expect(d1.lines.map(\.rateText) == ["100,0", "66,7", "100,0"])

        let table = try c.render(.table)
        #expect(table.hasPrefix("Comparaison — CH — septembre 2026 à novembre 2026 (Europe/Paris)"))
        #expect(table.contains(/\*V1-D1-SEJ\s+Documents de sortie envoyés au DMP avec INS qualifiée\s+100,0\s+66,7\s+100,0\n/))
        #expect(table.contains(/\n\*V1-D2-DOC\s+CR de biologie envoyés au DMP avec INS qualifiée\s+—\s+0,0!\s+—\n/))
        let csv = try c.render(.csv)
        #expect(csv.hasPrefix("\u{FEFF}Périmètre;Code;Indicateur;Période;Numérateur;Dénominateur;Taux;Cible;Atteint\r\n"))
        #expect(csv.contains("\r\n;V1-D1-SEJ;Documents de sortie envoyés au DMP avec INS qualifiée, par séjour clos;2026-10;4;6;66,7;≥ 50;O\r\n"))
        #expect(csv.contains("\r\n\(KnownJournal.b);V1-D1-SEJ;Documents de sortie envoyés au DMP avec INS qualifiée, par séjour clos;2026-10;1;2;50,0;≥ 50;O\r\n"))
        let html = try c.render(.html)
        let doc = try XMLDocument.parse(String(html.dropFirst("<!DOCTYPE html>".count)))
        let cells = try doc.nodes("(//h:table)[1]/h:tr[@data-code='V1-D1-SEJ']/h:td[@data-month]", namespaces: ["h": "http://www.w3.org/1999/xhtml"])
        #expect(cells.map(\.text) == ["100,0", "66,7", "100,0"])
        #expect(try doc.nodes("//h:table", namespaces: ["h": "http://www.w3.org/1999/xhtml"]).count == 3)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(try c.render(.json).utf8)) as? [String: Any])
        #expect(Set(json.keys) == ["format_version", "title", "months", "time_zone", "generated_at", "finess_filter", "rows"])

        await #expect(throws: ReportError.self) {
            try await ComparisonReport.make(store: j.store, from: "2026-11", to: "2026-09", settings: Self.settings)
        }
    }
}

extension Array where Element: Hashable {
    var uniqued: [Element] { var seen: Set<Element> = []; return filter { seen.insert($0).inserted } }
}
