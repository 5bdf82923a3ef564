import Foundation
@testable import Journal
import PasserelleCore
import SQLiteKit
import Testing
import TestSupport

@Suite("journal schema upgrade")
struct SchemaUpgradeTests {
    @Test("a version 1 journal is upgraded in place: rows kept, new columns defaulted, report indexes added")
    func upgradeFromVersion1() async throws {
        let folder = try TestPaths.temporaryDirectory("journal-upgrade")
        let path = folder.appendingPathComponent("journal.db").path
        do {
            let db = try SQLiteConnection(path: path)
            try db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            try db.execute(JournalSchema.migrations[0].sql)
            _ = try db.run("INSERT INTO schema_migrations VALUES (1, 0)")
            _ = try db.run("""
                INSERT INTO documents (id, version, set_id, kind, finess, blob_sha256, state, received_at, received_month, updated_at)
                VALUES ('d1', 1, 'd1', '11490-0', '750712184', '', 'received', 0, '1970-01', 0)
                """)
            db.close()
        }
        let store = try SQLiteJournalStore(path: path, blobs: BlobStore(root: folder.appendingPathComponent("blobs")))
        #expect(try store.schemaVersion() == JournalSchema.latestVersion)
        let document = try #require(try await store.document(id: "d1", version: 1))
        #expect(document.action == .new)
        let db = try SQLiteConnection(path: path)
        let indexes = try db.query("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'")
            .compactMap { $0["name"].string }
        #expect(Set(["documents_received", "documents_stay", "stays_discharged"]).isSubset(of: Set(indexes)))
        // The report's range scans use those indexes.
        let plan = try db.query("EXPLAIN QUERY PLAN SELECT count(*) FROM documents WHERE received_at >= 0 AND received_at < 10")
            .compactMap { $0["detail"].string }.joined(separator: " ")
        #expect(plan.contains("documents_received"))
    }

    @Test("recordStay fills dates in without erasing known ones; a final failure keeps its class and code",
          arguments: JournalBackend.allCases)
    func staysAndFailures(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let discharge = JournalFixture.t0.plus(3600)
        try await f.store.recordStay(JournalStay(stayID: "S1", finess: JournalFixture.finess, admittedAt: JournalFixture.t0), now: JournalFixture.t0)
        try await f.store.recordStay(JournalStay(stayID: "S1", finess: JournalFixture.finess, dischargedAt: discharge), now: discharge)
        try await f.queued(1)   // accept() records S1 again, without dates
        let db = try f.raw()
        let row = try #require(try db.query("SELECT admitted_at, discharged_at FROM stays WHERE stay_id = 'S1'").first)
        #expect(row["admitted_at"].int64 == Int64(JournalFixture.t0.timeIntervalSince1970 * 1000))
        #expect(row["discharged_at"].int64 == Int64(discharge.timeIntervalSince1970 * 1000))

        let claim = try #require(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0.plus(1), lease: 60, owner: "w"))
        _ = try await f.store.complete(claim, owner: "w", outcome: .failure(.dmpBusinessRefusal(code: "XDSUnknownPatientId", "unknown")),
                                       now: JournalFixture.t0.plus(2))
        let t = try #require(try db.query("SELECT state, failure, error_code FROM transmissions WHERE id = ?", [claim.transmission.id]).first)
        #expect(t["state"].string == "failed" && t["failure"].string == "refused" && t["error_code"].string == "XDSUnknownPatientId")
        // An operator resend clears the classification with the failure.
        _ = try await f.store.requeue(TransmissionFilter(transmissionIDs: [claim.transmission.id]), now: JournalFixture.t0.plus(3))
        let again = try #require(try db.query("SELECT state, failure, error_code FROM transmissions WHERE id = ?", [claim.transmission.id]).first)
        #expect(again["state"].string == "queued" && again["failure"].isNull && again["error_code"].isNull)
    }
}
