import Foundation
@testable import Journal
import PasserelleCore
import PostgresKit
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

/// Migration 7 (the console on a large journal): a journal of version 6 with rows of every kind
/// is upgraded in place on both backends, every row kept, the three indexes made, and the
/// console's queries answer from them.
@Suite("journal schema upgrade: migration 7")
struct Migration7Tests {
    /// Rows as a version-6 gateway wrote them: a document per transmission, waiting ones, done
    /// ones, failed ones with their error.
    static let rows = """
        INSERT INTO documents (id, version, set_id, kind, finess, blob_sha256, state, received_at, received_month, updated_at)
        VALUES ('d1', 1, 'd1', '11490-0', '750712184', 'b1', 'queued', 1000, '1970-01', 1000),
               ('d2', 1, 'd2', '11490-0', '750712184', 'b2', 'queued', 2000, '1970-01', 2000),
               ('d3', 1, 'd3', '11490-0', '750712184', 'b3', 'queued', 3000, '1970-01', 3000),
               ('d4', 1, 'd4', '11490-0', '750712184', 'b4', 'queued', 4000, '1970-01', 4000);
        INSERT INTO transmissions (id, document_id, version, target, state, created_at, created_month, updated_at, last_error, last_error_at)
        VALUES (1, 'd1', 1, 'dmp', 'acknowledged', 1000, '1970-01', 1000, NULL, NULL),
               (2, 'd2', 1, 'dmp', 'failed', 2000, '1970-01', 2500, 'refusé', 2500),
               (3, 'd3', 1, 'dmp', 'retry-wait', 3000, '1970-01', 3500, 'HTTP 503', 3500),
               (4, 'd4', 1, 'dmp', 'queued', 4000, '1970-01', 4000, NULL, NULL),
               (5, 'd4', 1, 'mssante_ps', 'sending', 4000, '1970-01', 4000, NULL, NULL),
               (6, 'd1', 1, 'mssante_ps', 'sent', 1000, '1970-01', 1000, NULL, NULL);
        """
    /// A journal as a version-6 gateway (or `through`) left it: migrations 1–6 recorded, then the rows.
    static func version6(_ migrations: [(version: Int, sql: String)], through last: Int = 6, execute: (String) throws -> Void,
                         record: (Int) throws -> Void) throws {
        try execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")
        for migration in migrations where migration.version <= last {
            try execute(migration.sql)
            try record(migration.version)
        }
        try execute(rows)
    }

    /// The console's counts scan every row (an index): on SQLite they run on a read-only
    /// connection of their own, so they neither wait for the gateway's writes nor hold them.
    @Test("SQLite: the counts over every row answer while the journal's writer is busy")
    func countsDoNotWaitForTheWriter() async throws {
        let f = try JournalFixture(.sqlite)
        try await f.queued(1)
        let store = try #require(f.store as? SQLiteJournalStore)
        let writing = Task { try await store.write { _ in Thread.sleep(forTimeInterval: 1.5) } }
        try await Task.sleep(for: .milliseconds(200))  // the writer's thread is in that unit now
        var counts: [StateCount] = []
        let elapsed = try await ContinuousClock().measure { counts = try await store.stateCounts() }
        #expect(counts == [StateCount(target: .dmp, state: .queued, count: 1)])
        #expect(elapsed < .milliseconds(1000), "the counts waited for the writer: \(elapsed)")
        try await writing.value
    }

    /// A journal left at `version` (with ``rows``) in `folder`, then opened by the store, which
    /// migrates it: the store, and a raw connection to look at the result.
    static func upgraded(_ backend: JournalBackend, from version: Int, in folder: URL) throws -> (any JournalStore, RawDatabase) {
        switch backend {
        case .sqlite:
            let path = folder.appendingPathComponent("journal.db").path
            do {
                let db = try SQLiteConnection(path: path)
                try version6(JournalSchema.migrations, through: version, execute: { try db.execute($0) },
                             record: { _ = try db.run("INSERT INTO schema_migrations VALUES (?, 0)", [$0]) })
                db.close()
            }
            return (try SQLiteJournalStore(path: path, blobs: BlobStore(root: folder.appendingPathComponent("blobs"))),
                    RawDatabase(sqlite: try SQLiteConnection(path: path)))
        case .postgresql:
            let url = try PostgresTestServer.createDatabase()
            do {
                let db = try PostgresConnection(PostgresTestServer.configuration(url))
                try version6(PostgresJournalSchema.migrations, through: version, execute: { try db.execute($0) },
                             record: { _ = try db.run("INSERT INTO schema_migrations VALUES ($1, 0)", [$0]) })
                db.close()
            }
            return (try PostgresJournalStore(configuration: PostgresTestServer.configuration(url), cache: folder.appendingPathComponent("blobs")),
                    RawDatabase(postgres: try PostgresConnection(PostgresTestServer.configuration(url))))
        }
    }

    /// The names of a table's indexes, as each backend lists them.
    static func indexNames(_ backend: JournalBackend, table: String) -> String {
        backend == .sqlite ? "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '\(table)'"
            : "SELECT indexname AS name FROM pg_indexes WHERE tablename = '\(table)'"
    }

    static let newIndexes: Set<String> = ["transmissions_waiting", "transmissions_last_error", "transmissions_state_id"]

    @Test("a version 6 journal with rows → the latest: rows kept, migration 7's three indexes made and used", arguments: JournalBackend.allCases)
    func upgradeFromVersion6(_ backend: JournalBackend) async throws {
        let folder = try TestPaths.temporaryDirectory("journal-upgrade-7")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (store, raw) = try Self.upgraded(backend, from: 6, in: folder)
        let indexNames = Self.indexNames(backend, table: "transmissions")
        #expect(JournalSchema.latestVersion == 9 && PostgresJournalSchema.latestVersion == 9)
        #expect(try raw.query("SELECT max(version) AS v FROM schema_migrations").first?["v"].int == 9)
        #expect(try raw.query("SELECT count(*) AS n FROM transmissions").first?["n"].int == 6)
        #expect(try raw.query("SELECT count(*) AS n FROM documents").first?["n"].int == 4)
        let states = try raw.query("SELECT id, state, last_error FROM transmissions ORDER BY id").map { "\($0["id"].string ?? "")/\($0["state"].string ?? "")/\($0["last_error"].string ?? "-")" }
        #expect(states == ["1/acknowledged/-", "2/failed/refusé", "3/retry-wait/HTTP 503", "4/queued/-", "5/sending/-", "6/sent/-"])
        let indexes = Set(try raw.query(indexNames).compactMap { $0["name"].string })
        #expect(Self.newIndexes.isSubset(of: indexes), "\(indexes)")

        // The console's queries on the upgraded journal.
        #expect(try await store.oldestWaiting(target: .dmp) == Date(timeIntervalSince1970: 3))
        #expect(try await store.oldestWaiting(target: .mssantePS) == Date(timeIntervalSince1970: 4))
        let errors = try await store.lastErrors()
        #expect(errors.map(\.transmissionID) == [3] && errors.first?.message == "HTTP 503")
        #expect(try await store.waitingCounts() == [StateCount(target: .dmp, state: .queued, count: 1),
                                                    StateCount(target: .dmp, state: .retryWait, count: 1),
                                                    StateCount(target: .mssantePS, state: .sending, count: 1)])
        #expect(try await store.stateCounts().reduce(0) { $0 + $1.count } == 6)

        if let db = raw.sqlite {
            // SQLite takes a partial index only when the query repeats its condition: the shared
            // constant keeps them the same text.
            func plan(_ statement: JournalStatement) throws -> String {
                try db.query("EXPLAIN QUERY PLAN " + statement.sql(.sqlite), [Destination.dmp.rawValue])
                    .compactMap { $0["detail"].string }.joined(separator: " ")
            }
            let oldest = try plan(.oldestWaiting), lastError = try plan(.lastError)
            #expect(oldest.contains("transmissions_waiting"), "\(oldest)")
            #expect(lastError.contains("transmissions_last_error"), "\(lastError)")
            let waiting = try db.query("EXPLAIN QUERY PLAN " + JournalStatement.waitingCounts.sql(.sqlite)).compactMap { $0["detail"].string }
            #expect(!waiting.joined().contains("SCAN transmissions"), "a scan of the whole table: \(waiting)")
        }
    }
}

/// Migration 8 (issue 19: every console login journaled): a version-7 journal with rows is
/// upgraded in place on both backends, every row kept, `console_events` and its index made,
/// and the login trail written and read back through the journal's API.
@Suite("journal schema upgrade: migration 8")
struct Migration8Tests {
    @Test("a version 7 journal with rows → version 8: rows kept, console_events made, events recorded and listed", arguments: JournalBackend.allCases)
    func upgradeFromVersion7(_ backend: JournalBackend) async throws {
        let folder = try TestPaths.temporaryDirectory("journal-upgrade-8")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (store, raw) = try Migration7Tests.upgraded(backend, from: 7, in: folder)
        let indexNames = Migration7Tests.indexNames(backend, table: "console_events")
        #expect(try raw.query("SELECT version FROM schema_migrations ORDER BY version").map { $0["version"].int } == [1, 2, 3, 4, 5, 6, 7, 8, 9])
        #expect(try raw.query("SELECT count(*) AS n FROM transmissions").first?["n"].int == 6)
        #expect(try raw.query("SELECT count(*) AS n FROM documents").first?["n"].int == 4)
        let states = try raw.query("SELECT id, state, last_error FROM transmissions ORDER BY id").map { "\($0["id"].string ?? "")/\($0["state"].string ?? "")/\($0["last_error"].string ?? "-")" }
        #expect(states == ["1/acknowledged/-", "2/failed/refusé", "3/retry-wait/HTTP 503", "4/queued/-", "5/sending/-", "6/sent/-"])
        #expect(try raw.query("SELECT count(*) AS n FROM console_events").first?["n"].int == 0)
        #expect(Set(try raw.query(indexNames).compactMap { $0["name"].string }).contains("console_events_time"))

        // The login trail on the upgraded journal: oldest first, the limit keeps the newest.
        let log = try #require(store as? any ConsoleEventLog)
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let written = [ConsoleEvent(at: t0, user: "alice", address: "192.0.2.10", kind: .login),
                       ConsoleEvent(at: t0.addingTimeInterval(1), user: "bob", address: "192.0.2.11", kind: .loginRefused),
                       ConsoleEvent(at: t0.addingTimeInterval(2), user: "bob", address: "192.0.2.11", kind: .lockout),
                       ConsoleEvent(at: t0.addingTimeInterval(3), user: "alice", address: "192.0.2.10", kind: .logout)]
        for event in written { try await log.record(event) }
        let all = try await log.consoleEvents(since: nil, until: nil, limit: 100)
        #expect(all.map { "\($0.user)/\($0.address)/\($0.kind.rawValue)" }
                == ["alice/192.0.2.10/login", "bob/192.0.2.11/login-refused", "bob/192.0.2.11/lockout", "alice/192.0.2.10/logout"])
        #expect(all.map(\.at) == written.map(\.at))
        #expect(try await log.consoleEvents(since: nil, until: nil, limit: 2).map(\.kind) == [.lockout, .logout])
        #expect(try await log.consoleEvents(since: t0.addingTimeInterval(1), until: t0.addingTimeInterval(3), limit: 100).map(\.kind)
                == [.loginRefused, .lockout])
        // The CHECK keeps the trail to the four events.
        #expect(throws: (any Error).self) {
            _ = try raw.query("INSERT INTO console_events (occurred_at, user_name, address, event) VALUES (0, 'x', 'y', 'password')")
        }
    }
}
