import ArgumentParser
import Foundation
import Indicators
import Journal
import PasserelleCore
import OpenSSLKit
import SQLiteKit
import Signing
import BenchSupport

/// `passerelle-bench report`: generates a journal of `--transmissions` transmissions (two per
/// document row, one year of activity, two FINESS) and `--stays` stays by bulk SQL, then times
/// the usage report for one month (table, with its delays and availability), the HTML page with
/// its 12-month trend, the signed evidence package of the month (`report --evidence`) and a
/// 12-month comparison (`--from-month/--to-month`).
struct ReportBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "Usage report time over a large journal.")

    @Option(help: "Measured iterations (after one warm-up).")
    var iterations = 5

    @Option(help: "Transmissions to generate (two per document row).")
    var transmissions = 1_000_000

    @Option(help: "Stays to generate.")
    var stays = 300_000

    @Option(help: "Month to report (the generated year is 2026).")
    var month = "2026-10"

    @Option(help: "Journal file to reuse or create (default: a temporary file, deleted at the end).")
    var journal: String?

    @Flag(help: "Only generate the journal (with --journal), do not time anything.")
    var generateOnly = false

    func run() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("passerelle-bench-report-\(getpid())")
        let path = journal ?? folder.appendingPathComponent("journal.sqlite").path
        defer { if journal == nil { try? FileManager.default.removeItem(at: folder) } }
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        let blobs = try BlobStore(root: Journals.blobFolder(forDatabase: path))
        let store = try SQLiteJournalStore(path: path, blobs: blobs)   // creates and migrates the schema

        let existing = try SQLiteConnection(path: path).scalar("SELECT count(*) FROM transmissions")?.int ?? 0
        var generateMs = 0.0
        if existing == 0 {
            let clock = ContinuousClock()
            let elapsed = try clock.measure { try SyntheticJournal.generate(path: path, transmissions: transmissions, stays: stays) }
            generateMs = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        }
        if generateOnly { return }
        let db = try SQLiteConnection(path: path)
        let counts = ["transmissions": "transmissions", "documents": "documents", "stays": "stays"].mapValues {
            (try? db.scalar("SELECT count(*) FROM \($0)")?.int) ?? 0
        }
        db.close()

        let settings = PasserelleConfiguration.Report.default
        let period = try ReportPeriod.month(month, timeZone: settings.timeZone)
        var results: [BenchResult] = []
        // The evidence is signed as `report --evidence` does, with the test PKI's signing bundle.
        let pki = TestPaths.testPKI
        let keys = try KeyMaterial.load(KeyMaterialSource(authentication: nil, signing: pki.appendingPathComponent("org-sign.p12"),
                                                          passphrase: .file(TestPaths.testPKIPassphraseFile),
                                                          trustAnchors: pki.appendingPathComponent("ca.pem")))
        let evidenceFolder = folder.appendingPathComponent("evidence")
        defer { try? FileManager.default.removeItem(at: evidenceFolder) }
        let year = "\(month.prefix(4))"
        let runs: [(String, Int, @Sendable () async throws -> Int)] = [
            ("report.month.table", iterations, {
                let report = try await UsageReporter.make(store: store, period: period, settings: settings)
                return try ReportFormat.table.render(report).split(separator: "\n").count
            }),
            ("report.month.html+trend12", iterations, {
                let report = try await UsageReporter.make(store: store, period: period, settings: settings, trendMonths: 12)
                return try ReportFormat.html.render(report).split(separator: "\n").count
            }),
            ("report.month.evidence", max(1, iterations / 2), {
                let report = try await UsageReporter.make(store: store, period: period, settings: settings)
                let rows = try await store.usageEvidence(UsageQuery(boundaries: [period.start, period.end],
                                                                    qualifiedStatuses: settings.qualifiedStatuses,
                                                                    dischargeLetterKinds: settings.dischargeLetterKinds))
                try EvidencePackage.write(to: evidenceFolder, report: report, evidence: rows, settings: settings,
                                          sha256: { Digest.sha256($0).hexString }, sign: { try DetachedSignature.sign($0, keys: keys) })
                return rows.sets.count + rows.stays.count
            }),
            ("report.comparison.12months", iterations, {
                let c = try await ComparisonReport.make(store: store, from: "\(year)-01", to: "\(year)-12", settings: settings)
                return try c.render(.table).split(separator: "\n").count
            }),
        ]
        for (name, count, body) in runs {
            var samples: [Double] = []
            var lines = 0
            for i in 0...count {
                let start = ContinuousClock.now
                lines = try await body()
                let elapsed = ContinuousClock.now - start
                if i > 0 { samples.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15) }
            }
            samples.sort()
            results.append(BenchResult(benchmark: name, iterations: samples.count, meanMs: samples.reduce(0, +) / Double(samples.count),
                                       medianMs: samples[samples.count / 2], p95Ms: samples.last!, minMs: samples[0],
                                       details: counts.merging(["output_lines_or_rows": lines, "generate_ms": Int(generateMs)]) { a, _ in a }))
        }
        results.forEach { $0.printTableLine() }
        results.forEach { $0.printJSON() }
    }
}

/// Bulk journal content for the benchmark, written by SQL (recursive CTEs) in one transaction.
/// Document row i: kind by i % 10 (4 LDL, 1 prescription, 1 CRO, 2 biology, 2 imaging),
/// identity PROV for i % 20 == 7, every 50th row a replacement and every 500th a deletion of
/// the row before; a DMP transmission (90 % accepted, refusals, exhausted retries, waiting) and
/// an MSSanté one (patient or professional; read, delivered, sent or failed).
enum SyntheticJournal {
    static let yearStart: Int64 = 1_767_222_000_000   // 2026-01-01T00:00:00+01:00
    static let yearMillis: Int64 = 365 * 86_400_000

    static func generate(path: String, transmissions: Int, stays: Int) throws {
        let db = try SQLiteConnection(path: path)
        defer { db.close() }
        try db.execute("PRAGMA synchronous = OFF")
        let documents = max(1, transmissions / 2)
        try db.transaction(.immediate) {
            try db.run("""
                INSERT INTO stays (finess, stay_id, admitted_at, discharged_at, discharged_month)
                WITH RECURSIVE c(s) AS (SELECT 0 UNION ALL SELECT s + 1 FROM c WHERE s < ? - 1)
                SELECT CASE s % 3 WHEN 0 THEN '920000650' ELSE '750712184' END, 'st-' || s,
                       ? + s * (? / ?) - 259200000, ? + s * (? / ?), ''
                FROM c
                """, [stays, yearStart, yearMillis, stays, yearStart, yearMillis, stays])
            try db.run("""
                INSERT INTO documents (id, version, set_id, kind, ins_masked, patient_key, identity_status, finess, stay_id,
                                       blob_sha256, state, received_at, received_month, updated_at, action)
                WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ? - 1),
                r AS (SELECT i, CASE WHEN i % 50 = 49 THEN 'replace' WHEN i % 500 = 123 THEN 'delete' ELSE 'new' END AS action,
                             (i * ? / ?) AS s, ? + i * (? / ?) AS t FROM c)
                SELECT 'doc-' || i, CASE action WHEN 'new' THEN 1 ELSE 2 END,
                       CASE action WHEN 'new' THEN 'doc-' || i ELSE 'doc-' || (i - 1) END,
                       CASE i % 10 WHEN 0 THEN '11490-0' WHEN 1 THEN '11490-0' WHEN 2 THEN '11490-0' WHEN 3 THEN '11490-0'
                                   WHEN 4 THEN '57833-6' WHEN 5 THEN '34874-8' WHEN 6 THEN '11502-2' WHEN 7 THEN '11502-2'
                                   ELSE '18748-4' END,
                       '2**********' || (10 + i % 90), 'pk-' || (i % 200000), CASE WHEN i % 20 = 7 THEN 'PROV' ELSE 'QUAL' END,
                       CASE s % 3 WHEN 0 THEN '920000650' ELSE '750712184' END, 'st-' || s,
                       '', 'queued', t, '', t, action
                FROM r
                """, [documents, stays, documents, yearStart, yearMillis, documents])
            try db.run("""
                INSERT INTO transmissions (id, document_id, version, target, state, attempts, created_at, created_month, updated_at,
                                           failure, error_code)
                SELECT 2 * rowid - 1, id, version, 'dmp',
                       CASE WHEN rowid % 100 < 90 THEN 'acknowledged' WHEN rowid % 100 < 96 THEN 'failed'
                            WHEN rowid % 100 < 98 THEN 'retry-wait' ELSE 'queued' END,
                       1, received_at, '', received_at,
                       CASE WHEN rowid % 100 BETWEEN 90 AND 93 THEN 'refused' WHEN rowid % 100 BETWEEN 94 AND 95 THEN 'exhausted' END,
                       CASE WHEN rowid % 100 BETWEEN 90 AND 93 THEN 'XDS-' || (rowid % 3) END
                FROM documents
                """)
            try db.run("""
                INSERT INTO transmissions (id, document_id, version, target, state, attempts, created_at, created_month, updated_at,
                                           failure, error_code)
                SELECT 2 * rowid, id, version, CASE rowid % 2 WHEN 0 THEN 'mssante_patient' ELSE 'mssante_ps' END,
                       CASE WHEN rowid % 10 < 6 THEN 'read' WHEN rowid % 10 < 8 THEN 'delivered' WHEN rowid % 10 = 8 THEN 'sent'
                            ELSE 'failed' END,
                       1, received_at, '', received_at,
                       CASE WHEN rowid % 10 = 9 THEN 'permanent' END, CASE WHEN rowid % 10 = 9 THEN '550' END
                FROM documents
                """)
            // One ended attempt per transmission that left the queue (the delays and the
            // targets' outages read them): 0–96 min after reception, 0.8 s long.
            try db.run("""
                INSERT INTO attempts (transmission_id, started_at, ended_at, outcome, response)
                SELECT id, created_at + (id % 97) * 60000, created_at + (id % 97) * 60000 + 800,
                       CASE WHEN state IN ('sent', 'acknowledged', 'delivered', 'read') THEN 'sent'
                            WHEN failure IN ('refused', 'permanent') THEN 'permanent' ELSE 'transient' END,
                       CASE WHEN state IN ('sent', 'acknowledged', 'delivered', 'read') THEN 'stored by the DMP' END
                FROM transmissions WHERE state <> 'queued'
                """)
            // One run per month, with a two-hour stop on the 15th.
            for m in 0..<12 {
                let start = yearStart + Int64(m) * yearMillis / 12
                try db.run("INSERT INTO service_runs (id, host, pid, started_at, last_seen_at, stopped_at) VALUES (?, 'bench', ?, ?, ?, ?)",
                           ["bench-\(m)-a", m, start, start + 14 * 86_400_000, start + 14 * 86_400_000])
                try db.run("INSERT INTO service_runs (id, host, pid, started_at, last_seen_at, stopped_at) VALUES (?, 'bench', ?, ?, ?, NULL)",
                           ["bench-\(m)-b", m, start + 14 * 86_400_000 + 7_200_000, start + yearMillis / 12])
            }
        }
        try db.execute("ANALYZE")
    }
}
