import Foundation
@testable import Journal
import PasserelleCore
import PostgresKit
import SQLiteKit
import Testing
import TestSupport

/// The operator's queue commands (``OperatorQueue``) on real SQLite and PostgreSQL: each
/// changes only the states it applies to, and writes its audit row in the same transaction.
@Suite("journal: operator queue commands and audit trail")
struct OperatorQueueTests {
    static let t0 = JournalFixture.t0

    func queue(_ f: JournalFixture) throws -> any OperatorQueue { try #require(f.store as? any OperatorQueue) }

    /// Claims document `n`'s DMP transmission and ends it with `outcome`.
    func attempt(_ f: JournalFixture, at now: Date, _ outcome: TransmissionOutcome) async throws -> Transmission {
        let claim = try #require(try await f.store.claimNext(target: .dmp, now: now, lease: 60, owner: "w"))
        _ = try await f.store.complete(claim, owner: "w", outcome: outcome, now: now.plus(1))
        return try #require(try await f.store.transmission(id: claim.transmission.id))
    }

    @Test("flush makes retry-wait due now (and nothing else); the audit row names user, selection, count",
          arguments: JournalBackend.allCases)
    func flush(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let q = try queue(f)
        try await f.queued(1)
        try await f.queued(2)
        let waiting = try await attempt(f, at: Self.t0, .failure(.network("connection refused")))
        #expect(waiting.state == .retryWait)
        let later = try #require(waiting.nextAttemptAt)
        #expect(later > Self.t0.plus(10))
        let now = Self.t0.plus(5)
        // Not due yet: the second document is claimable, the retry-wait one is not.
        let other = try #require(try await f.store.claimNext(target: .dmp, now: now, lease: 60, owner: "w"))
        #expect(other.transmission.id != waiting.id)
        #expect(try await f.store.claimNext(target: .dmp, now: now, lease: 60, owner: "w") == nil)

        let result = try await q.flush(TransmissionFilter(target: .dmp), OperatorRequest(user: "alice", selection: "target=dmp"), now: now)
        #expect(result.transmissions.map(\.id) == [waiting.id], "the sending one is left alone")
        #expect(result.transmissions.first?.state == .retryWait && result.transmissions.first?.nextAttemptAt == now)
        #expect(result.transmissions.first?.attempts == 1, "attempts kept")
        let claimed = try #require(try await f.store.claimNext(target: .dmp, now: now, lease: 60, owner: "w"))
        #expect(claimed.transmission.id == waiting.id)

        let action = try #require(result.action)
        #expect(action.user == "alice" && action.action == .flush && action.selection == "target=dmp" && action.count == 1)
        let trail = try await q.operatorActions(OperatorActionQuery())
        #expect(trail == [action])
        #expect(try await q.operatorActions(transmissionID: waiting.id) == [action])
        #expect(try await q.operatorActions(transmissionID: other.transmission.id).isEmpty)

        // Nothing to flush: nothing changed, nothing recorded.
        let none = try await q.flush(TransmissionFilter(), OperatorRequest(user: "alice", selection: "all"), now: now)
        #expect(none.transmissions.isEmpty && none.action == nil)
        #expect(try await q.operatorActions(OperatorActionQuery()).count == 1)
    }

    @Test("held transmissions are never claimed; release makes them due with a fresh deadline",
          arguments: JournalBackend.allCases)
    func holdAndRelease(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let q = try queue(f)
        let queued = try await f.queued(1)
        try await f.queued(2)
        let r = try await q.hold(TransmissionFilter(documentID: queued[0].documentID), OperatorRequest(user: "bob", selection: "document"),
                                 now: Self.t0.plus(1))
        #expect(r.transmissions.map(\.state) == [.held])
        // Only document 2 is claimable, however late it is.
        let c = try #require(try await f.store.claimNext(target: .dmp, now: Self.t0.plus(86_400 * 30), lease: 60, owner: "w"))
        #expect(c.transmission.id != queued[0].id)
        #expect(try await f.store.claimNext(target: .dmp, now: Self.t0.plus(86_400 * 30), lease: 60, owner: "w") == nil)
        // Holding a transmission being sent does nothing.
        let busy = try await q.hold(TransmissionFilter(transmissionIDs: [c.transmission.id]), OperatorRequest(user: "bob", selection: "x"),
                                    now: Self.t0.plus(2))
        #expect(busy.transmissions.isEmpty && busy.action == nil)
        #expect(try await f.store.transmission(id: c.transmission.id)?.state == .sending)
        // A lease recovery never touches held rows.
        _ = try await f.store.recoverInterrupted(now: Self.t0.plus(86_400 * 30))
        #expect(try await f.store.transmission(id: queued[0].id)?.state == .held)

        let releasedAt = Self.t0.plus(86_400 * 3)
        let released = try await q.release(TransmissionFilter(), OperatorRequest(user: "bob", selection: "all"), now: releasedAt)
        let t = try #require(released.transmissions.first)
        #expect(released.transmissions.count == 1 && t.id == queued[0].id)
        #expect(t.state == .queued && t.nextAttemptAt == releasedAt && t.deadline == releasedAt.plus(f.policy.deadline))
        #expect(try await f.store.claimNext(target: .dmp, now: releasedAt, lease: 60, owner: "w")?.transmission.id == queued[0].id)
        let trail = try await q.operatorActions(transmissionID: queued[0].id)
        #expect(trail.map(\.action) == [.hold, .release])
    }

    @Test("discard: failed or held only, final, needs a reason; status and report leave it out of the failures",
          arguments: JournalBackend.allCases)
    func discard(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let q = try queue(f)
        try await f.queued(1)
        try await f.queued(2)
        let failed = try await attempt(f, at: Self.t0, .failure(.dmpBusinessRefusal(code: "XDSUnknownPatientId", "unknown")))
        #expect(failed.state == .failed)
        await #expect(throws: JournalError.self) {
            try await q.discard(TransmissionFilter(), OperatorRequest(user: "carol", selection: "all", reason: "  "), now: Self.t0.plus(5))
        }
        #expect(try await f.store.transmission(id: failed.id)?.state == .failed, "refused: nothing changed")
        #expect(try await q.operatorActions(OperatorActionQuery()).isEmpty)

        let r = try await q.discard(TransmissionFilter(), OperatorRequest(user: "carol", selection: "all", reason: "test document"),
                                    now: Self.t0.plus(5))
        #expect(r.transmissions.map(\.id) == [failed.id], "the queued one is not discardable")
        #expect(r.transmissions.first?.state == .discarded)
        #expect(r.action?.reason == "test document" && r.action?.user == "carol")
        // Final: resend, release, hold and a second discard leave it alone.
        #expect(try await f.store.requeue(TransmissionFilter(transmissionIDs: [failed.id]), now: Self.t0.plus(6)).isEmpty)
        #expect(try await q.release(TransmissionFilter(transmissionIDs: [failed.id]), OperatorRequest(user: "c", selection: "x"), now: Self.t0.plus(6)).transmissions.isEmpty)
        #expect(try await q.discard(TransmissionFilter(transmissionIDs: [failed.id]), OperatorRequest(user: "c", selection: "x", reason: "again"), now: Self.t0.plus(6)).transmissions.isEmpty)
        #expect(try await f.store.transmission(id: failed.id)?.state == .discarded)
        let counts = try await f.store.stateCounts()
        #expect(counts.contains(StateCount(target: .dmp, state: .discarded, count: 1)))
        #expect(!counts.contains { $0.state == .failed })

        // The report: the discarded set on its own line, not among refusals or failures.
        let usage = try await f.store.usageCounts(UsageQuery(boundaries: [Self.t0.plus(-60), Self.t0.plus(86_400)]))
        let cell = try #require(usage.first)
        #expect(cell.discarded == 1)
        #expect(cell.dmpRefusals.isEmpty && cell.failedPermanently == 0 && cell.failedAfterRetries == 0)
        #expect(cell.waiting == 1)
    }

    @Test("an audited resend writes its row with the transmissions it queued again", arguments: JournalBackend.allCases)
    func auditedResend(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let q = try queue(f)
        try await f.queued(1)
        let failed = try await attempt(f, at: Self.t0, .failure(.schema("cvc-complex-type")))
        let filter = TransmissionFilter(patientKey: "pk-1", target: .dmp)
        let r = try await q.resend(filter, includingSucceeded: false, OperatorRequest(user: "dave", selection: filter.selectionText),
                                   now: Self.t0.plus(9))
        #expect(r.transmissions.map(\.state) == [.queued])
        let action = try #require(r.action)
        #expect(action.action == .resend && action.count == 1 && action.selection == "patient_key=pk-1 target=dmp")
        #expect(try await q.operatorActions(transmissionID: failed.id) == [action])
        // --limit keeps the most recent, listed oldest first; filters by action and time.
        _ = try await q.hold(TransmissionFilter(), OperatorRequest(user: "dave", selection: "all"), now: Self.t0.plus(20))
        let all = try await q.operatorActions(OperatorActionQuery())
        #expect(all.map(\.action) == [.resend, .hold])
        #expect(try await q.operatorActions(OperatorActionQuery(limit: 1)).map(\.action) == [.hold])
        #expect(try await q.operatorActions(OperatorActionQuery(actions: [.resend])).map(\.id) == [action.id])
        #expect(try await q.operatorActions(OperatorActionQuery(from: Self.t0.plus(10))).map(\.action) == [.hold])
    }

    @Test("the current OS user is the effective account, with sudo's caller")
    func currentUser() {
        let plain = OperatorRequest.currentUser(environment: [:])
        #expect(!plain.isEmpty && !plain.hasPrefix("uid "), "a named account: \(plain)")
        #expect(OperatorRequest.currentUser(environment: ["SUDO_USER": "alice-\(getpid())"]) == "\(plain) (sudo: alice-\(getpid()))")
    }
}

/// Migration 4 rebuilds `transmissions` in SQLite (a CHECK cannot be altered) and alters the
/// constraint in PostgreSQL: an upgrade must never lose a row, nor any column of one.
@Suite("journal schema upgrade to version 4")
struct SchemaUpgradeV4Tests {
    static let states = ["queued", "sending", "sent", "acknowledged", "delivered", "read", "retry-wait", "failed"]

    /// A version 3 journal holding a transmission in each state, with attempts and acknowledgements.
    static func fillVersion3(_ run: (String) throws -> Void) throws {
        try run("""
            INSERT INTO documents (id, version, set_id, kind, finess, blob_sha256, state, received_at, received_month, updated_at)
            VALUES ('d1', 1, 'd1', '11490-0', '750712184', 'abc', 'queued', 1000, '1970-01', 1000)
            """)
        for (i, state) in states.enumerated() {
            let target = ["dmp", "mssante_ps", "mssante_patient"][i % 3]
            try run("""
                INSERT INTO documents (id, version, set_id, kind, finess, blob_sha256, state, received_at, received_month, updated_at)
                VALUES ('d\(i + 2)', 1, 'd\(i + 2)', '11490-0', '750712184', 'abc', 'queued', 1000, '1970-01', 1000)
                """)
            try run("""
                INSERT INTO transmissions (id, document_id, version, target, state, attempts, created_at, created_month, updated_at,
                    deadline_at, next_attempt_at, lease_owner, lease_expires_at, needs_recheck, alerted, last_error, last_error_at,
                    message_id, failure, error_code, pending_recipients)
                VALUES (\(i + 10), 'd\(i + 2)', 1, '\(target)', '\(state)', \(i), \(1000 + i), '1970-01', \(2000 + i), 99999, \(3000 + i),
                    'owner\(i)', 4000, \(i % 2 == 0 ? "TRUE" : "FALSE"), TRUE, 'error \(i)', 5000, '<m\(i)@x>',
                    \(state == "failed" ? "'refused'" : "NULL"), 'code\(i)', 'a@x\nb@y')
                """)
            try run("INSERT INTO attempts (transmission_id, started_at, ended_at, outcome, response) VALUES (\(i + 10), 1, 2, 'transient', 'r\(i)')")
            try run("INSERT INTO acknowledgements (transmission_id, kind, received_at, detail) VALUES (\(i + 10), 'delivered', 3, 'k\(i)')")
        }
    }

    static let columns = """
        id, document_id, version, target, state, attempts, created_at, created_month, updated_at, deadline_at, next_attempt_at,
        lease_owner, lease_expires_at, needs_recheck, alerted, last_error, last_error_at, message_id, failure, error_code, pending_recipients
        """

    @Test(arguments: JournalBackend.allCases)
    func everyRowOfEveryStateSurvives(_ backend: JournalBackend) async throws {
        let folder = try TestPaths.temporaryDirectory("journal-upgrade-v4")
        let path = folder.appendingPathComponent("journal.db").path
        let raw: RawDatabase
        var postgresURL: String?
        switch backend {
        case .sqlite:
            let db = try SQLiteConnection(path: path)
            try db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            for m in JournalSchema.migrations where m.version <= 3 {
                try db.execute(m.sql)
                _ = try db.run("INSERT INTO schema_migrations VALUES (?, 0)", [m.version])
            }
            raw = RawDatabase(sqlite: db)
        case .postgresql:
            postgresURL = try PostgresTestServer.createDatabase()
            let db = try PostgresConnection(PostgresTestServer.configuration(postgresURL!))
            try db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")
            for m in PostgresJournalSchema.migrations where m.version <= 3 {
                try db.execute(m.sql)
                try db.execute("INSERT INTO schema_migrations VALUES (\(m.version), 0)")
            }
            raw = RawDatabase(postgres: db)
        }
        try Self.fillVersion3({ try raw.run($0) })
        let before = try raw.query("SELECT \(Self.columns) FROM transmissions ORDER BY id").map(\.values)
        let attemptsBefore = try raw.query("SELECT * FROM attempts ORDER BY id").map(\.values)
        let acksBefore = try raw.query("SELECT * FROM acknowledgements ORDER BY id").map(\.values)
        #expect(before.count == Self.states.count)
        // The old CHECK refuses the new states.
        #expect(throws: RawDatabase.Failure.self) { try raw.run("UPDATE transmissions SET state = 'held' WHERE id = 10") }

        let store: any JournalStore
        switch backend {
        case .sqlite:
            let s = try SQLiteJournalStore(path: path, blobs: BlobStore(root: folder.appendingPathComponent("blobs")))
            #expect(try s.schemaVersion() == JournalSchema.latestVersion, "migrated to the latest version")
            store = s
        case .postgresql:
            let s = try PostgresJournalStore(configuration: PostgresTestServer.configuration(postgresURL!),
                                             cache: folder.appendingPathComponent("blobs"))
            #expect(try await s.schemaVersion() == JournalSchema.latestVersion, "migrated to the latest version")
            store = s
        }
        #expect(try raw.query("SELECT \(Self.columns) FROM transmissions ORDER BY id").map(\.values) == before, "every column of every row")
        #expect(try raw.query("SELECT * FROM attempts ORDER BY id").map(\.values) == attemptsBefore)
        #expect(try raw.query("SELECT * FROM acknowledgements ORDER BY id").map(\.values) == acksBefore)
        // The new states are accepted, unknown ones still refused, foreign keys still enforced.
        try raw.run("UPDATE transmissions SET state = 'held' WHERE id = 10")
        try raw.run("UPDATE transmissions SET state = 'discarded' WHERE id = 17")
        #expect(throws: RawDatabase.Failure.self) { try raw.run("UPDATE transmissions SET state = 'lost' WHERE id = 11") }
        if backend == .sqlite {
            let db = try SQLiteConnection(path: path)
            #expect(throws: (any Error).self) { try db.run("INSERT INTO attempts (transmission_id, started_at) VALUES (999, 1)") }
            let indexes = try db.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transmissions'")
                .compactMap { $0["name"].string }
            #expect(Set(["transmissions_due", "transmissions_lease", "transmissions_report"]).isSubset(of: Set(indexes)))
            #expect(try db.query("PRAGMA integrity_check").first?["integrity_check"].string == "ok")
        }
        // The store reads them back.
        #expect(try await store.transmission(id: 10)?.state == .held)
        #expect(try await store.transmission(id: 17)?.state == .discarded)
        #expect(try await store.transmission(id: 16)?.pendingRecipients == ["a@x", "b@y"])
    }
}
