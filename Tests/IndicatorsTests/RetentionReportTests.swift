import Foundation
import Indicators
import Journal
import PasserelleCore
import Testing
import TestSupport

/// Retention (`passerelle purge`) on the known October journal, on real SQLite and PostgreSQL:
/// exactly the ended sets lose their content, and the month's report is byte-identical in every
/// format before and after.
@Suite("retention: purge keeps past reports identical")
struct RetentionReportTests {
    static let now = KnownJournal.date("2026-12-05T10:00:00Z")
    static let cutoff = KnownJournal.date("2026-12-01T00:00:00Z")
    /// The sets whose every version was queued and whose transmissions all ended (see KnownJournal):
    /// not ldl-2 (its deletion row was never queued), ldl-5 (never queued), bio-8 (still queued).
    static let ended = ["bio-6", "cro-3", "img-7", "img-9", "ldl-1", "ldl-10", "ldl-11", "ldl-12", "ord-4"]

    static func rendered(_ j: KnownJournal) async throws -> [String] {
        var out: [String] = []
        for (month, trend) in [("2026-10", 0), ("2026-11", 3)] {
            let report = try await UsageReporter.make(store: j.store, period: ReportPeriod.month(month, timeZone: "Europe/Paris"),
                                                      settings: .default, trendMonths: trend, title: "CH", now: now)
            for format in [ReportFormat.table, .csv, .json, .html] { out.append(try format.render(report)) }
        }
        return out
    }

    static func blobs(_ j: KnownJournal) throws -> BlobStore {
        switch j.store {
        case let s as SQLiteJournalStore: s.blobs
        case let s as PostgresJournalStore: s.blobs
        default: throw KnownJournalError.notAccepted("unknown store")
        }
    }

    /// Every document row of a set (versions 1…3 are all KnownJournal writes).
    static func documents(_ j: KnownJournal, _ set: String) async throws -> [JournalDocument] {
        var found: [JournalDocument] = []
        for version in 1...3 {
            let id = version == 1 ? set : "\(set).v\(version)"
            if let d = try await j.store.document(id: id, version: version) { found.append(d) }
        }
        return found
    }

    @Test(arguments: ["sqlite", "postgresql"])
    func purgeLeavesTheReportsByteIdentical(backend: String) async throws {
        let j = try await KnownJournal(postgresql: backend == "postgresql")
        let store = try #require(j.store as? any JournalRetention)
        let blobs = try Self.blobs(j)
        // Held and still queued: never purged, however old.
        let bio8 = try #require(try await store.transmissions(matching: TransmissionFilter(documentID: "bio-8")).first)
        _ = try await store.hold(TransmissionFilter(transmissionIDs: [bio8.id]), OperatorRequest(user: "ops", selection: "id"),
                                 now: KnownJournal.date("2026-10-13T09:00:00Z"))
        let before = try await Self.rendered(j)
        let kept = try await Self.documents(j, "ldl-12")[0]
        #expect(kept.maskedINS != nil && kept.patientKey != nil)
        let keptBlobs = [kept.blobSHA256, try #require(kept.builtSHA256)]
        for digest in keptBlobs { _ = try blobs.get(digest) }

        let request = OperatorRequest(user: "ops", selection: "test")
        let dry = try await store.purge(endedBefore: Self.cutoff, dryRun: true, request, now: Self.now)
        #expect(dry.sets == Self.ended.count && dry.documents == Self.ended.count + 2, "\(dry)")  // ldl-1 has 3 versions
        #expect(dry.blobs == 2 * dry.documents && dry.bytes > 0 && dry.action == nil, "\(dry)")
        #expect(try await Self.documents(j, "ldl-12")[0].purgedAt == nil, "a dry run changes nothing")
        _ = try blobs.get(keptBlobs[0])

        // A cutoff before the last transmissions ended purges less (ldl-10 ended on 31 Oct 23:10 UTC).
        let early = try await store.purge(endedBefore: KnownJournal.date("2026-10-31T23:00:00Z"), dryRun: true, request, now: Self.now)
        #expect(early.sets == Self.ended.count - 1, "\(early)")

        let done = try await store.purge(endedBefore: Self.cutoff, dryRun: false, request, now: Self.now)
        #expect(done.sets == dry.sets && done.documents == dry.documents && done.blobs == dry.blobs && done.bytes == dry.bytes
                && done.transmissions == dry.transmissions, "the dry run counted what the purge did: \(dry) \(done)")
        let action = try #require(done.action)
        #expect(action.action == .purge && action.user == "ops" && action.count == done.transmissions)
        #expect(action.selection.hasPrefix("ended_before=2026-12-01T00:00:00Z sets=9 documents=11"), "\(action.selection)")

        for set in Self.ended {
            for d in try await Self.documents(j, set) {
                #expect(d.purgedAt != nil && d.maskedINS == nil && d.patientKey == nil, "\(set) v\(d.version)")
                #expect(throws: JournalError.self, "\(set): blob deleted") { try blobs.get(d.blobSHA256) }
                #expect(blobs.size(d.blobSHA256) == nil && blobs.size(d.builtSHA256 ?? "") == nil, "\(set): no file left")
            }
        }
        for set in ["ldl-2", "ldl-5", "bio-8"] {
            for d in try await Self.documents(j, set) {
                #expect(d.purgedAt == nil && d.maskedINS != nil, "\(set) kept")
                _ = try blobs.get(d.blobSHA256)
            }
        }
        #expect(try await store.transmission(id: bio8.id)?.state == .held)
        // The audit trail links the purge to each transmission (`show` lists it).
        let failed = try #require(try await store.transmissions(matching: TransmissionFilter(documentID: "bio-6")).first)
        #expect(try await store.operatorActions(transmissionID: failed.id).map(\.action) == [.purge])
        // A purged dead letter is never queued again.
        let resent = try await store.resend(TransmissionFilter(documentID: "bio-6"), includingSucceeded: false, request, now: Self.now)
        #expect(resent.transmissions.isEmpty && resent.action == nil)
        #expect(try await store.transmission(id: failed.id)?.state == .failed)

        let after = try await Self.rendered(j)
        #expect(after.count == before.count)
        for (b, a) in zip(before, after) { #expect(a == b, "byte-identical report") }

        // Nothing left to purge: nothing changed, nothing audited.
        let again = try await store.purge(endedBefore: Self.cutoff, dryRun: false, request, now: Self.now.addingTimeInterval(60))
        #expect(again.sets == 0 && again.blobs == 0 && again.action == nil)
        #expect(try await store.operatorActions(OperatorActionQuery(actions: [.purge])).count == 1)
    }

    /// The PostgreSQL backup recipe of docs/operations.md (`passerelle backup` prints it):
    /// `pg_dump --format=custom`, then `pg_restore --no-owner` into an empty database, gives a
    /// journal with the same report, the same counts and every blob.
    @Test func theDocumentedPgDumpRecipeRestoresTheSameJournal() async throws {
        let j = try await KnownJournal(postgresql: true)
        let url = try #require(j.postgresURL)
        let server = try PostgresTestServer.shared()
        let tools = try #require(PostgresTestServer.binaries, "PostgreSQL client tools of the server's version")
        let password = try String(contentsOf: server.passwordFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let env = ["PGPASSWORD": password]
        let dump = j.folder.appendingPathComponent("journal.dump").path
        let dumped = try ProcessRunner.run(tools.appendingPathComponent("pg_dump").path, ["--format=custom", "--file=\(dump)", url], environment: env)
        #expect(dumped.succeeded, "\(dumped.stderr)")
        let target = try PostgresTestServer.createDatabase(prefix: "restored")
        let restored = try ProcessRunner.run(tools.appendingPathComponent("pg_restore").path, ["--no-owner", "--dbname=\(target)", dump],
                                             environment: env)
        #expect(restored.succeeded, "\(restored.stderr)")

        let copy = try PostgresJournalStore(configuration: PostgresTestServer.configuration(target),
                                            cache: j.folder.appendingPathComponent("restored-cache"))
        var again = j
        again.store = copy
        #expect(try await Self.rendered(again) == (try await Self.rendered(j)))
        #expect(try await copy.stateCounts() == (try await j.store.stateCounts()))
        #expect(try await copy.schemaVersion() == (try await #require(j.store as? PostgresJournalStore).schemaVersion()))
        // The blobs came with the rows (a fresh cache reads them from the database).
        for d in try await copy.documents(in: .queued) {
            #expect(try copy.blobs.get(d.blobSHA256) == (try Self.blobs(j).get(d.blobSHA256)))
        }
    }
}
