import Foundation
@testable import Journal
import PasserelleCore
import Testing
import TestSupport

/// Retention on real SQLite and PostgreSQL: what a purge clears beyond the blobs, and what it
/// never touches (report counts in ``RetentionReportTests``, IndicatorsTests).
@Suite("journal: retention purge")
struct RetentionTests {
    static let t0 = JournalFixture.t0
    static let address = "279035121518989@patient.mssante.fr"

    @Test("a purge masks patient mailboxes and NIRs in peers' texts, clears input file names; an active set is kept",
          arguments: JournalBackend.allCases)
    func purgeClearsPatientData(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let store = try #require(f.store as? any JournalRetention)
        try await f.queued(1, targets: [.mssantePatient])
        try await f.queued(2, targets: [.mssantePatient])
        let claim = try #require(try await f.store.claimNext(target: .mssantePatient, now: Self.t0.plus(1), lease: 60, owner: "w"))
        let failed = try await f.store.complete(claim, owner: "w",
                                                outcome: .failure(.smtpPermanent(code: 550, "5.1.1 <\(Self.address)> unknown; NIR 279035121518989")),
                                                now: Self.t0.plus(2))
        #expect(failed.state == .failed)
        let transmission = claim.transmission.id
        let raw = try f.raw()
        func texts(_ sql: String) throws -> String {
            try raw.query(sql).flatMap { $0.values.values.compactMap(\.string) }.sorted().joined(separator: "\n")
        }
        #expect(try texts("SELECT last_error FROM transmissions WHERE id = \(transmission)").contains(Self.address))
        try raw.run("INSERT INTO acknowledgements (transmission_id, kind, received_at, detail) VALUES (\(transmission), 'delivered', 1, 'DSN for \(Self.address)')")

        let result = try await store.purge(endedBefore: Self.t0.plus(3600), dryRun: false, OperatorRequest(user: "ops", selection: ""),
                                           now: Self.t0.plus(7200))
        #expect(result.sets == 1 && result.documents == 1 && result.blobs == 2, "document 2 is still queued: \(result)")
        let peers = try texts("SELECT last_error FROM transmissions WHERE id = \(transmission)")
            + (try texts("SELECT response FROM attempts WHERE transmission_id = \(transmission)"))
            + (try texts("SELECT detail FROM acknowledgements WHERE transmission_id = \(transmission)"))
        #expect(!peers.contains("279035121518989"), "\(peers)")
        #expect(peers.contains(LogRedaction.patientMailboxPlaceholder) && peers.contains("550"), "\(peers)")
        #expect(try texts("SELECT file_name FROM inputs") == "(purged)\nin2.pdf", "the active set keeps its file name")
        let kept = try #require(try await f.store.document(id: JournalFixture.document(2).id, version: 1))
        #expect(kept.purgedAt == nil && kept.patientKey == "pk-1")
        #expect(try texts("SELECT failure FROM transmissions WHERE id = \(transmission)") == "permanent", "what the report counts stays")
    }

    @Test("a large purge goes in batches, each one transaction with its own audit row", arguments: JournalBackend.allCases)
    func batches(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let purge: (Date, OperatorRequest, Date) async throws -> PurgeResult
        switch f.store {
        case let s as SQLiteJournalStore: purge = { try await s.purge(endedBefore: $0, dryRun: false, $1, now: $2, batch: 2) }
        case let s as PostgresJournalStore: purge = { try await s.purge(endedBefore: $0, dryRun: false, $1, now: $2, batch: 2) }
        default: throw FixtureError.notAccepted("unknown store")
        }
        try await check(f, purge: purge)
    }

    func check(_ f: JournalFixture, purge: (Date, OperatorRequest, Date) async throws -> PurgeResult) async throws {
        for n in 1...5 {
            try await f.queued(n)
            let claim = try #require(try await f.store.claimNext(target: .dmp, now: Self.t0.plus(1), lease: 60, owner: "w"))
            _ = try await f.store.complete(claim, owner: "w", outcome: .success(state: .acknowledged), now: Self.t0.plus(2))
        }
        let result = try await purge(Self.t0.plus(3600), OperatorRequest(user: "ops", selection: ""), Self.t0.plus(7200))
        #expect(result.sets == 5 && result.documents == 5 && result.blobs == 10 && result.transmissions == 5, "\(result)")
        let trail = try await (f.store as! any OperatorQueue).operatorActions(OperatorActionQuery(actions: [.purge]))
        #expect(trail.map(\.count) == [2, 2, 1], "three transactions of at most two sets: \(trail)")
        for n in 1...5 { #expect(try await f.store.document(id: JournalFixture.document(n).id, version: 1)?.purgedAt != nil) }
    }

    /// Issue 18: the journal, its WAL/SHM and blob files 0600, its folders 0700, whatever the umask.
    @Test func aNewJournalIsPrivateUnderUmask022() async throws {
        let previous = umask(0o022)
        defer { umask(previous) }
        let root = try TestPaths.temporaryDirectory("journal-modes")
        defer { try? FileManager.default.removeItem(at: root) }
        let path = root.appendingPathComponent("var/lib/passerelle/journal.sqlite").path
        let (store, blobs) = try Journals.openWithBlobs(.sqlite(path: path))
        let doc = JournalFixture.document(1)
        _ = try await store.accept(doc, content: Data("input".utf8), input: nil, stay: nil, now: Self.t0)
        _ = try await store.markBuilt(documentID: doc.id, version: 1, built: Data("<cda/>".utf8), now: Self.t0)
        func mode(_ path: String) -> Int? { (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? nil }
        for file in [path, path + "-wal", path + "-shm"] { #expect(mode(file) == 0o600, "\(file): \(String(mode(file) ?? 0, radix: 8))") }
        for folder in ["var", "var/lib", "var/lib/passerelle", "var/lib/passerelle/journal.blobs"] {
            let p = root.appendingPathComponent(folder).path
            #expect(mode(p) == 0o700, "\(folder): \(String(mode(p) ?? 0, radix: 8))")
        }
        let stored = try #require(try await store.document(id: doc.id, version: 1))
        for digest in [stored.blobSHA256, try #require(stored.builtSHA256)] {
            let file = blobs.url(for: digest)
            #expect(mode(file.path) == 0o600, "blob: \(String(mode(file.path) ?? 0, radix: 8))")
            #expect(mode(file.deletingLastPathComponent().path) == 0o700, "blob folder")
        }
    }
}
