import Foundation
import Testing
import TestSupport

@Suite("passerelle report")
struct ReportCLITests {
    @Test("an empty journal: every format, files, and the example configuration's [report]")
    func emptyJournal() throws {
        let folder = try TestPaths.temporaryDirectory("report-cli")
        let journal = folder.appendingPathComponent("journal.sqlite").path
        // An empty file is an empty SQLite database: the report creates the schema and counts nothing.
        #expect(FileManager.default.createFile(atPath: journal, contents: Data()))

        let csv = try CLI.run(["report", "--journal", journal, "--month", "2026-10", "--format", "csv"])
        #expect(csv.status == 0, "\(csv.stderr)")
        let rows = csv.stdout.components(separatedBy: "\r\n")
        #expect(rows[0] == "\u{FEFF}Programme;Code;Indicateur;Période;Numérateur;Dénominateur;Taux;Cible;Atteint")   // BOM (issue 22)
        #expect(rows[1] == "SUN-ES;V1-D1-SEJ;Documents de sortie envoyés au DMP avec INS qualifiée, par séjour clos;2026-10;0;0;;≥ 50;")

        let html = folder.appendingPathComponent("report.html").path
        let r = try CLI.run(["report", "--journal", journal, "--from", "2026-10-01", "--to", "2026-10-15", "--format", "html", "-o", html])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.hasPrefix("<!DOCTYPE html>"))
        #expect(page.components(separatedBy: "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"trend\"").count == 7)

        // The example configuration's [report] (its targets) applies with --config.
        let json = try CLI.run(["report", "--config", CLITests.example, "--journal", journal, "--month", "2026-10",
                                "--format", "json", "--finess", "750712184"])
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["finess_filter"] as? [String] == ["750712184"])
        #expect((object["title"] as? String)?.isEmpty == false)

        let comparison = try CLI.run(["report", "--journal", journal, "--from-month", "2026-01", "--to-month", "2026-03", "--format", "csv"])
        #expect(comparison.status == 0, "\(comparison.stderr)")
        #expect(comparison.stdout.contains(";V1-D1-SEJ;Documents de sortie envoyés au DMP avec INS qualifiée, par séjour clos;2026-03;0;0;;≥ 50;\r\n"))

        let table = try CLI.run(["report", "--journal", journal, "--month", "2026-10"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("Ensemble de la structure — 0 séjours clos"))
    }

    @Test("usage errors exit 64, a bad month or a missing journal exit 1 with the reason")
    func errors() throws {
        let none = try TestPaths.temporaryDirectory("report-cli").appendingPathComponent("none.sqlite").path
        let noPeriod = try CLI.run(["report", "--journal", none])
        #expect(noPeriod.status == 64)
        #expect(noPeriod.stderr.contains("give --month YYYY-MM"))
        #expect(try CLI.run(["report", "--journal", none, "--month", "2026-10", "--from", "2026-10-01", "--to", "2026-10-02"]).status == 64)
        #expect(try CLI.run(["report", "--journal", none, "--month", "2026-10", "--format", "pdf"]).status == 64)
        // The comparison's options (issue 22).
        #expect(try CLI.run(["report", "--journal", none, "--from-month", "2026-01"]).stderr.contains("--from-month and --to-month go together"))
        #expect(try CLI.run(["report", "--journal", none, "--from-month", "2026-01", "--to-month", "2026-03", "--month", "2026-02"]).status == 64)
        let withEvidence = try CLI.run(["report", "--journal", none, "--from-month", "2026-01", "--to-month", "2026-03", "--evidence", "/tmp/x"])
        #expect(withEvidence.status == 64 && withEvidence.stderr.contains("--evidence goes with one period"))
        let missing = try CLI.run(["report", "--journal", none, "--month", "2026-10"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no journal at \(none)"))
        let journal = try TestPaths.temporaryDirectory("report-cli").appendingPathComponent("j.sqlite").path
        FileManager.default.createFile(atPath: journal, contents: Data())
        let badMonth = try CLI.run(["report", "--journal", journal, "--month", "2026-13"])
        #expect(badMonth.status == 1)
        #expect(badMonth.stderr.contains("'2026-13' is not a month; write it YYYY-MM"))
        let badDay = try CLI.run(["report", "--journal", journal, "--from", "2026-02-30", "--to", "2026-03-02"])
        #expect(badDay.status == 1)
        #expect(badDay.stderr.contains("'2026-02-30' is not a date"))
        let reversed = try CLI.run(["report", "--journal", journal, "--from", "2026-03-02", "--to", "2026-03-01"])
        #expect(reversed.stderr.contains("is empty: --from must not be after --to"))
    }
}
