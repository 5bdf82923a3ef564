import Foundation
import Indicators
import Journal
import Observability
import OpenSSLKit
import PasserelleCore
import Testing
import TestSupport
import WebServer

/// The console's File d'attente, Document and Rapport pages and the overview's activity, served
/// by a real StatusServer over TCP on a real SQLite journal of 60 documents × 2 destinations
/// (enough for three queue pages), five DMP sends refused with a NIR in the peer's error.
@Suite("console pages: queue, document, report, activity", .serialized)
struct ConsolePagesTests {
    static let nir = "279035121518989"
    static let maskedINS = "1***********042"
    /// The NIR as LogRedaction masks it in a peer's error text.
    static let redactedError = "patient NIR 2***********989 refused"

    /// Status, lower-cased headers, body of one GET (`path` already percent-encoded).
    static func fetch(_ server: StatusServer, _ path: String) async throws -> (code: Int, headers: [String: String], body: String) {
        try await ObservabilityTests.fetch(server, path)
    }

    /// The ids of the queue table's rows, in page order.
    static func rowIDs(_ body: String) -> [Int64] {
        body.components(separatedBy: "<tr data-id=\"").dropFirst().compactMap { Int64($0.prefix { $0 != "\"" }) }
    }

    /// The `href` of the link with `id` (written after the id in the tag), entities decoded.
    static func link(_ body: String, id: String) -> String? {
        guard let start = body.range(of: "id=\"\(id)\"") else { return nil }
        let tag = body[start.upperBound...].prefix { $0 != ">" }
        guard let href = tag.range(of: "href=\"") else { return nil }
        return String(tag[href.upperBound...].prefix { $0 != "\"" }).replacingOccurrences(of: "&amp;", with: "&")
    }

    struct Fixture {
        let folder: URL
        let journal: any JournalStore
        let server: StatusServer
        let now: Date

        init() async throws {
            folder = try TestPaths.temporaryDirectory("console-pages")
            journal = try Journals.open(.sqlite(path: folder.appendingPathComponent("journal.sqlite").path))
            now = Date()
            for n in 1...60 {
                let id = "1.2.250.1.999.1.\(n)"
                let doc = JournalDocument(id: id, setID: id, kind: n % 4 == 0 ? .biologyReport : .dischargeLetter,
                                          maskedINS: ConsolePagesTests.maskedINS, patientKey: "pk", identityStatus: "VALI",
                                          finess: "750712184", stayID: "S\(n)", receivedAt: now)
                let content = Data("input \(n)".utf8)
                _ = try await journal.accept(doc, content: content, input: nil, stay: nil, now: now)
                _ = try await journal.markBuilt(documentID: id, version: 1, built: Data("<ClinicalDocument/>".utf8), now: now)
                _ = try await journal.enqueue(documentID: id, version: 1, targets: [.dmp, .mssantePS], now: now)
            }
            for _ in 1...5 {
                let claim = try #require(try await journal.claimNext(target: .dmp, now: now, lease: 60, owner: "w"))
                _ = try await journal.complete(claim, owner: "w", outcome: .failure(.permanent("patient NIR \(ConsolePagesTests.nir) refused by the registry")),
                                               now: now)
            }
            let sent = try #require(try await journal.claimNext(target: .dmp, now: now, lease: 60, owner: "w"))
            _ = try await journal.complete(sent, owner: "w", outcome: .success(state: .acknowledged), now: now)
            let console = Console(journal: journal, targets: [.dmp, .mssantePS], timeZone: TimeZone(identifier: "Europe/Paris")!,
                                  report: ConsoleReportSource(store: journal, settings: .default, title: "Hôpital test"),
                                  certificates: { [] })
            server = try await StatusServer.start(metrics: MetricsRegistry(), probes: [], console: console)
        }

        func close() {
            server.stop()
            try? FileManager.default.removeItem(at: folder)
        }
    }

    @Test("the queue: 50 rows a page by id, Page suivante to the end, Première page back; no NIR")
    func paging() async throws {
        let f = try await Fixture()
        defer { f.close() }
        let first = try await Self.fetch(f.server, "/console/file")
        #expect(first.code == 200 && first.headers["content-security-policy"]?.hasPrefix("default-src 'self'") == true)
        #expect(first.body.contains("<h2>File d’attente</h2>") && first.body.contains("aria-current=\"page\">File d’attente"))
        let all = try await f.journal.transmissions(matching: TransmissionFilter(order: .id)).map(\.id)
        #expect(all.count == 120)
        var seen = Self.rowIDs(first.body)
        #expect(seen == Array(all.prefix(50)))
        #expect(Self.link(first.body, id: "first-page") == nil, "already on the first page")
        var page = first
        while let next = Self.link(page.body, id: "next-page") {
            #expect(next.hasPrefix("/console/file?apres="), "\(next)")
            page = try await Self.fetch(f.server, next)
            #expect(page.code == 200)
            #expect(Self.link(page.body, id: "first-page") == "/console/file")
            seen += Self.rowIDs(page.body)
        }
        #expect(seen == all, "every transmission once, in id order, over three pages")
        #expect(Self.rowIDs(page.body).count == 20)
        for body in [first.body, page.body] {
            #expect(!body.contains(Self.nir) && !body.contains(Self.maskedINS) && !body.contains("<script") && !body.contains("style="))
        }
        #expect(first.body.contains(Self.redactedError), "the peer's error shown redacted: \(first.body)")
    }

    @Test("the queue's filters: state, destination, kind, dates, document, kept in the next page's link")
    func filters() async throws {
        let f = try await Fixture()
        defer { f.close() }
        let failed = try await Self.fetch(f.server, "/console/file?etat=failed&destination=dmp&type=&du=&au=&document=")
        #expect(failed.code == 200)
        let failedIDs = try await f.journal.transmissions(matching: TransmissionFilter(states: [.failed], order: .id)).map(\.id)
        #expect(failedIDs.count == 5 && Self.rowIDs(failed.body) == failedIDs)
        #expect(failed.body.contains("<option value=\"failed\" selected>En échec</option>"), "the form shows the filter")
        #expect(failed.body.contains("data-state=\"failed\"") && !failed.body.contains("data-state=\"queued\""))

        let biology = try await Self.fetch(f.server, "/console/file?type=cr-bio&destination=mssante_ps")
        let expected = try await f.journal.transmissions(matching: TransmissionFilter(target: .mssantePS, kind: .biologyReport, order: .id))
        #expect(expected.count == 15 && Self.rowIDs(biology.body) == expected.map(\.id))
        #expect(Self.link(biology.body, id: "next-page") == nil)

        let one = try await Self.fetch(f.server, "/console/file?document=1.2.250.1.999.1.7")
        let seven = try await f.journal.transmissions(matching: TransmissionFilter(documentID: "1.2.250.1.999.1.7"))
        #expect(Self.rowIDs(one.body) == seven.map(\.id).sorted())
        #expect(one.body.contains("href=\"/console/document/1.2.250.1.999.1.7\""))

        let day = ISO8601DateFormatter.string(from: f.now, timeZone: TimeZone(identifier: "Europe/Paris")!, formatOptions: [.withFullDate])
        let today = try await Self.fetch(f.server, "/console/file?du=\(day)&au=\(day)&destination=dmp")
        #expect(Self.rowIDs(today.body).count == 50)
        let next = try #require(Self.link(today.body, id: "next-page"))
        #expect(next.contains("destination=dmp") && next.contains("du=\(day)") && next.contains("au=\(day)"), "\(next)")
        #expect(Self.rowIDs(try await Self.fetch(f.server, next).body).count == 10)
        let tomorrow = try await Self.fetch(f.server, "/console/file?du=2099-01-01")
        #expect(tomorrow.code == 200 && Self.rowIDs(tomorrow.body).isEmpty && tomorrow.body.contains("id=\"queue-empty\""))
    }

    static let refused = [
        "/console/file?etat=bogus", "/console/file?destination=fax", "/console/file?type=x-ray", "/console/file?du=2026-13-01",
        "/console/file?du=2026-02-30", "/console/file?au=yesterday", "/console/file?du=2026-10-02&au=2026-10-01",
        "/console/file?apres=-1", "/console/file?apres=12abc", "/console/file?apres=99999999999999999999",
        "/console/file?document=%3Cscript%3E", "/console/file?document=" + String(repeating: "1", count: 129),
        "/console/file?etat=failed&etat=queued", "/console/file?patient=279035121518989", "/console/document/a%20b",
        "/console/document/%3Cscript%3E", "/console/rapport?mois=2026-13", "/console/rapport?mois=oct",
        "/console/rapport?finess=123456789", "/console/rapport/telechargement?mois=2026-10&format=pdf",
        "/console/rapport/telechargement?mois=2026-10&format=table", "/console/rapport/telechargement?mois=2026-10",
    ]

    /// One journal for all of them: each request is refused before the journal is read.
    @Test("bad parameters are a 400 page in French, never a 500")
    func refusals() async throws {
        let f = try await Fixture()
        defer { f.close() }
        for path in Self.refused {
            let r = try await Self.fetch(f.server, path)
            #expect(r.code == 400, "\(path): \(r.code)")
            #expect(r.headers["content-type"] == "text/html; charset=utf-8" && r.body.contains("id=\"refusal\""), "\(path): \(r.body)")
            #expect(r.headers["content-security-policy"] != nil, "\(path)")
            #expect(!r.body.contains("<script") && !r.body.contains(Self.nir), "\(path): \(r.body)")
        }
    }

    @Test("a document's page: versions, transmissions, attempts with the error redacted, masked INS only; 404 when unknown")
    func document() async throws {
        let f = try await Fixture()
        defer { f.close() }
        let page = try await Self.fetch(f.server, "/console/document/1.2.250.1.999.1.1")
        #expect(page.code == 200, "\(page.body)")
        #expect(page.body.contains("<span id=\"document-id\">1.2.250.1.999.1.1</span>"))
        #expect(page.body.contains("id=\"masked-ins-1\">\(Self.maskedINS)<"))
        #expect(page.body.contains("Lettre de liaison") && page.body.contains("Erreur définitive") && page.body.contains("MSSanté (professionnels)"))
        let history = try #require(try await f.journal.documentHistory(id: "1.2.250.1.999.1.1"))
        for entry in history.versions[0].transmissions { #expect(page.body.contains("id=\"transmission-\(entry.transmission.id)\"")) }
        #expect(!page.body.contains(Self.nir) && page.body.contains(Self.redactedError), "\(page.body)")
        #expect(!page.body.contains("<script") && !page.body.contains("style="))
        // `^` in ids arrives percent-encoded.
        let unknown = try await Self.fetch(f.server, "/console/document/1.2.250.1.999.1.404%5Eext")
        #expect(unknown.code == 404 && unknown.body.contains("Aucun document « 1.2.250.1.999.1.404^ext »"), "\(unknown.body)")
    }

    @Test("the report: this month's tables under the console's frame, downloads as passerelle report renders them")
    func report() async throws {
        let f = try await Fixture()
        defer { f.close() }
        let month = ISO8601DateFormatter.string(from: f.now, timeZone: TimeZone(identifier: "Europe/Paris")!, formatOptions: [.withFullDate]).prefix(7)
        let page = try await Self.fetch(f.server, "/console/rapport")
        #expect(page.code == 200)
        #expect(page.body.contains("value=\"\(month)\"") && page.body.contains("Rapport d&#39;usage du numérique — Hôpital test"), "\(page.body)")
        #expect(page.body.contains("<section class=\"rapport\" id=\"report\">") && !page.body.contains("<style") && !page.body.contains("style="))
        #expect(try await Self.fetch(f.server, "/console/static/rapport.css").body.hasPrefix(".rapport {"))

        let period = try ReportPeriod.month(String(month), timeZone: PasserelleConfiguration.Report.default.timeZone)
        for format in [ReportFormat.csv, .json, .html] {
            let download = try await Self.fetch(f.server, "/console/rapport/telechargement?mois=\(month)&format=\(format.rawValue)")
            #expect(download.code == 200)
            #expect(download.headers["content-disposition"] == "attachment; filename=\"rapport-\(month).\(format.rawValue)\"")
            let expected = try await UsageReporter.rendered(store: f.journal, period: period, settings: .default, format: format, title: "Hôpital test")
            // The generation time differs between the two renderings (JSON/HTML carry it); CSV is exact.
            if format == .csv { #expect(download.body == expected) } else { #expect(download.body.count > 200) }
        }
        let csv = try await Self.fetch(f.server, "/console/rapport/telechargement?mois=\(month)&finess=750712184&format=csv")
        #expect(csv.headers["content-disposition"] == "attachment; filename=\"rapport-\(month)-750712184.csv\"")
        #expect(csv.headers["content-type"] == "text/csv; charset=utf-8" && csv.body.hasPrefix("\u{FEFF}Programme;Code;"), "\(csv.body.prefix(200))")
    }

    @Test("the overview's activity: 24 hourly bars, the last hour's and day's totals from the journal")
    func activity() async throws {
        let f = try await Fixture()
        defer { f.close() }
        let page = try await Self.fetch(f.server, "/console/")
        #expect(page.body.contains("<td id=\"received-hour\">60</td><td id=\"received-day\">60</td>"), "\(page.body)")
        #expect(page.body.contains("<td id=\"acknowledged-hour\">1</td><td id=\"acknowledged-day\">1</td>"))
        #expect(page.body.components(separatedBy: "<rect class=\"bar received\"").count - 1 == 24)
        #expect(page.body.contains("data-value=\"60\""))
        let last = try #require(try await f.journal.lastErrors().first)
        #expect(page.body.contains("<a href=\"/console/document/\(last.documentID)\">\(last.documentID)</a>"), "the last error links to its document")
        #expect(!page.body.contains("style="))
        let api = try await Self.fetch(f.server, "/console/api/overview")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(api.body.utf8)) as? [String: Any])
        let activity = try #require(json["activity"] as? [String: Any], "\(api.body)")
        #expect((activity["hours"] as? [Any])?.count == 24)
        #expect((activity["last_day"] as? [String: Int])?["received"] == 60)
    }

    static let chromium = "/usr/bin/chromium"
    static let python = TestPaths.repositoryRoot.appendingPathComponent(".venv/bin/python").path
    static var browserAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: chromium) && (try? ProcessRunner.run(python, ["-c", "import playwright"]))?.status == 0
    }

    /// In a real browser (Chromium driven by Playwright, Tests/Browser/console_pages.py): the
    /// queue filtered through its form and paged, a document opened from its link, the report
    /// read and its CSV downloaded, nothing refused by the CSP. With
    /// PASSERELLE_CONSOLE_SCREENSHOTS=1 the pages are also saved into docs/console/.
    @Test(.enabled(if: browserAvailable, "needs /usr/bin/chromium and playwright in .venv"))
    func aBrowserWalksThePages() async throws {
        let f = try await Fixture()
        defer { f.close() }
        var arguments = [TestPaths.repositoryRoot.appendingPathComponent("Tests/Browser/console_pages.py").path,
                         "http://127.0.0.1:\(f.server.port)/console/", "--chromium", Self.chromium]
        if ProcessInfo.processInfo.environment["PASSERELLE_CONSOLE_SCREENSHOTS"] == "1" {
            let folder = TestPaths.repositoryRoot.appendingPathComponent("docs/console")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            arguments += ["--screenshots", folder.path]
        }
        // Off the cooperative pool: the server answers the browser from it meanwhile.
        let run = try await withCheckedThrowingContinuation { (c: CheckedContinuation<ProcessResult, any Error>) in
            DispatchQueue.global().async { [arguments] in c.resume(with: Result { try ProcessRunner.run(Self.python, arguments) }) }
        }
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        let line = try #require(run.stdout.split(separator: "\n").last { $0.hasPrefix("{") }, "\(run.stdout)\n\(run.stderr)")
        let walk = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let overview = try #require(walk["overview"] as? [String: Any])
        #expect(overview["bars"] as? Int == 48 && overview["received_day"] as? Int == 60, "\(overview)")
        #expect(overview["bar_fill"] as? String == "rgb(0, 0, 145)", "the stylesheet colours the chart: \(overview)")

        let dmp = try await f.journal.transmissions(matching: TransmissionFilter(target: .dmp, order: .id)).map { Int($0.id) }
        let failed = try await f.journal.transmissions(matching: TransmissionFilter(states: [.failed], order: .id)).map { Int($0.id) }
        let queue = try #require(walk["queue"] as? [String: Any])
        #expect((queue["filtered_url"] as? String)?.contains("destination=dmp") == true, "a GET form: \(queue)")
        #expect(queue["first_page"] as? [Int] == Array(dmp.prefix(50)))
        #expect(queue["targets"] as? [String] == ["DMP"])
        #expect(queue["second_page"] as? [Int] == Array(dmp.dropFirst(50)) && queue["next_on_second"] as? Bool == false)
        #expect(queue["back_to_first"] as? [Int] == Array(dmp.prefix(50)))
        #expect(queue["failed"] as? [Int] == failed)
        #expect((queue["failed_error"] as? String)?.contains(Self.redactedError) == true, "\(queue)")

        let document = try #require(walk["document"] as? [String: Any])
        #expect(document["id"] as? String == "1.2.250.1.999.1.1" && document["masked_ins"] as? String == Self.maskedINS, "\(document)")
        #expect(document["transmissions"] as? Int == 2 && document["attempts"] as? Int == 1, "\(document)")
        #expect((document["text"] as? String)?.contains(Self.nir) == false)

        let report = try #require(walk["report"] as? [String: Any])
        #expect((report["heading"] as? String)?.contains("Hôpital test") == true && (report["tables"] as? Int ?? 0) >= 3, "\(report)")
        #expect(report["h2_border"] as? String == "rgb(11, 83, 148)", "rapport.css applies: \(report)")
        #expect((report["csv_name"] as? String)?.hasPrefix("rapport-") == true && (report["csv_name"] as? String)?.hasSuffix(".csv") == true)
        #expect(report["csv_bom"] as? Bool == true && (report["csv_first_line"] as? String)?.hasPrefix("Programme;Code;Indicateur") == true, "\(report)")
        #expect((walk["console"] as? [String])?.isEmpty == true, "\(line)")
        #expect((walk["failed_requests"] as? [String])?.isEmpty == true, "\(line)")
    }

    /// A measurement, not a check (off unless PASSERELLE_CONSOLE_PAGES_BENCH=<documents>): the
    /// pages' latency on a journal bulk-filled by sqlite3 with that many documents, each sent to
    /// the DMP (2 % failed) and to MSSanté, one a minute back from now, one attempt each.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["PASSERELLE_CONSOLE_PAGES_BENCH"] != nil))
    func pagesOnALargeJournal() async throws {
        let documents = Int(ProcessInfo.processInfo.environment["PASSERELLE_CONSOLE_PAGES_BENCH"] ?? "") ?? 500_000
        // PASSERELLE_CONSOLE_PAGES_BENCH_KEEP=1 keeps the journal for a look with sqlite3 (its path is printed).
        let folder = try TestPaths.temporaryDirectory("console-pages-bench")
        let keep = ProcessInfo.processInfo.environment["PASSERELLE_CONSOLE_PAGES_BENCH_KEEP"] == "1"
        defer { if !keep { try? FileManager.default.removeItem(at: folder) } }
        print("bench journal \(folder.path)/journal.sqlite")
        let path = folder.appendingPathComponent("journal.sqlite").path
        _ = try Journals.open(.sqlite(path: path))  // the schema, migrated
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let sql = """
            PRAGMA synchronous = OFF;
            BEGIN;
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(documents))
            INSERT INTO documents (id, version, set_id, kind, ins_masked, patient_key, identity_status, finess, stay_id, blob_sha256,
                                   built_sha256, state, received_at, received_month, updated_at)
            SELECT '1.2.250.1.999.2.' || i, 1, '1.2.250.1.999.2.' || i, CASE i % 4 WHEN 0 THEN '11502-2' ELSE '11490-0' END,
                   '1***********042', 'pk', 'VALI', '750712184', 'S' || i, 'x', 'y', 'queued',
                   \(now) - (\(documents) - i) * 60000, '2026-12', \(now) FROM n;
            INSERT INTO transmissions (document_id, version, target, state, attempts, created_at, created_month, updated_at, last_error, last_error_at)
            SELECT id, 1, 'dmp', CASE WHEN rowid % 50 = 0 THEN 'failed' ELSE 'acknowledged' END, 1, received_at, received_month, received_at,
                   CASE WHEN rowid % 50 = 0 THEN 'refused by the registry' END, CASE WHEN rowid % 50 = 0 THEN received_at END FROM documents;
            INSERT INTO transmissions (document_id, version, target, state, attempts, created_at, created_month, updated_at)
            SELECT id, 1, 'mssante_ps', 'sent', 1, received_at, received_month, received_at FROM documents;
            INSERT INTO attempts (transmission_id, started_at, ended_at, outcome)
            SELECT id, created_at, created_at + 1000, CASE state WHEN 'failed' THEN 'permanent' ELSE 'sent' END FROM transmissions;
            COMMIT;
            ANALYZE;
            """
        let fill = try ProcessRunner.run("sqlite3", [path], stdin: Data(sql.utf8))
        try #require(fill.status == 0, "\(fill.stderr)")
        let journal = try Journals.open(.sqlite(path: path))
        let console = Console(journal: journal, targets: [.dmp, .mssantePS], report: ConsoleReportSource(store: journal, settings: .default, title: "Bench"),
                              certificates: { [] })
        let server = try await StatusServer.start(metrics: MetricsRegistry(), probes: [], console: console)
        defer { server.stop() }
        let middle = documents  // a transmission id halfway through the 2 × documents
        for path in ["/console/file", "/console/file?apres=\(middle)", "/console/file?etat=failed", "/console/file?etat=failed&apres=\(middle)",
                     "/console/file?type=cr-bio&destination=dmp", "/console/file?document=1.2.250.1.999.2.\(documents / 2)",
                     "/console/document/1.2.250.1.999.2.\(documents / 2)", "/console/", "/console/rapport"] {
            var times: [Double] = []
            for _ in 0..<20 {
                let start = ContinuousClock.now
                guard let r = try? await Self.fetch(server, path) else {
                    Issue.record("\(path): no answer within the client's 5 s")
                    break
                }
                let elapsed = ContinuousClock.now - start
                times.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
                #expect(r.code == 200, "\(path): \(r.code)")
            }
            guard times.count == 20 else { continue }
            times.sort()
            print("bench \(path) documents=\(documents) median=\(String(format: "%.1f", times[10])) ms max=\(String(format: "%.1f", times[19])) ms")
        }
    }
}
