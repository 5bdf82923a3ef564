import Foundation
import Journal
import PasserelleCore
import SQLiteKit
import Testing
import TestSupport

@Suite struct BlobAndKeyTests {
    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test(arguments: JournalBackend.allCases) func blobsAreContentAddressedAndPrivate(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let content = Data("%PDF-1.7 compte rendu".utf8)
        let result = try await f.store.accept(JournalFixture.document(1), content: content, input: nil, stay: nil, now: JournalFixture.t0)
        guard case .accepted(let doc) = result else { Issue.record("not accepted"); return }
        // sha256("%PDF-1.7 compte rendu") computed independently.
        let expected = try #require(try sha256sum(content))
        #expect(doc.blobSHA256 == expected)
        let url = f.blobs.url(for: expected)
        #expect(url.lastPathComponent == expected)
        #expect(url.deletingLastPathComponent().lastPathComponent == String(expected.prefix(2)))
        #expect(try mode(url.path) == 0o600)
        #expect(try mode(url.deletingLastPathComponent().path) == 0o700)
        #expect(try mode(f.blobs.root.path) == 0o700)
        #expect(try f.blobs.get(expected) == content)
        // Same bytes for another document: one file.
        _ = try await f.store.accept(JournalFixture.document(2), content: content, input: nil, stay: nil, now: JournalFixture.t0)
        let files = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
        #expect(files == [expected], "no temporary file left, no second copy")
        // A corrupted blob: SQLite's folder holds the only copy, so reading it fails; a
        // PostgreSQL node's folder caches the database (its files are not fsynced), so the
        // damaged file is replaced from there.
        try Data("tampered".utf8).write(to: url)
        switch backend {
        case .sqlite:
            #expect(!f.blobs.isCache)
            #expect(throws: JournalError.self) { _ = try f.blobs.get(expected) }
            #expect(throws: JournalError.self) { _ = try f.blobs.verifiedFile(expected) }
            #expect(try Data(contentsOf: url) == Data("tampered".utf8), "the only copy is left for the operator to see")
        case .postgresql:
            #expect(f.blobs.isCache)
            #expect(try f.blobs.get(expected) == content)
            #expect(try Data(contentsOf: url) == content, "the cached file is repaired")
            try Data().write(to: url)  // what a power cut can leave of a file never fsynced
            #expect(try Data(contentsOf: f.blobs.verifiedFile(expected)) == content)
            #expect(try mode(url.path) == 0o600)
        }
        #expect(throws: JournalError.self) { _ = try f.blobs.get(String(repeating: "0", count: 64)) }
    }

    /// Independent SHA-256 via coreutils, so the test does not check the code against itself.
    func sha256sum(_ data: Data) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(data)
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text.split(separator: " ").first.map(String.init)
    }

    @Test func patientKeyIsHMACSHA256() {
        // RFC 4231 test case 1 and 2.
        #expect(PatientKey.derive(matricule: "Hi There", secret: Data(repeating: 0x0b, count: 20))
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(PatientKey.derive(matricule: "what do ya want for nothing?", secret: Data("Jefe".utf8))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // RFC 4231 test case 6: a key longer than the block is hashed first.
        #expect(PatientKey.derive(matricule: "Test Using Larger Than Block-Size Key - Hash Key First",
                                  secret: Data(repeating: 0xaa, count: 131))
            == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        let a = PatientKey.derive(matricule: "279035121518989", secret: Data("site secret".utf8))
        #expect(a != PatientKey.derive(matricule: "279035121518989", secret: Data("other site".utf8)))
        #expect(!a.contains("279035121518989"))
    }
}

@Suite struct TimeAndQueryTests {
    @Test(arguments: JournalBackend.allCases) func timesAreUTCMillisecondsAndMonthsAreUTCMonths(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        // 2026-01-31T23:30:00Z is already February in Paris (00:30 CET): it counts in January.
        let endOfJanuaryUTC = try #require(ISO8601DateFormatter().date(from: "2026-01-31T23:30:00Z"))
        let startOfFebruaryUTC = try #require(ISO8601DateFormatter().date(from: "2026-02-01T00:00:00.250Z".replacingOccurrences(of: ".250", with: "")))
            .plus(0.25)
        try await f.queued(1, at: endOfJanuaryUTC)
        try await f.queued(2, at: startOfFebruaryUTC)
        let raw = try f.raw()
        let rows = try raw.query("SELECT id, received_at, received_month FROM documents ORDER BY received_at")
        #expect(rows.map { $0["received_month"].string } == ["2026-01", "2026-02"])
        #expect(rows[0]["received_at"].int64 == 1_769_902_200_000)
        #expect(rows[1]["received_at"].int64 == 1_769_904_000_250)  // milliseconds kept
        #expect(try raw.query("SELECT created_month FROM transmissions ORDER BY id").map { $0["created_month"].string }
            == ["2026-01", "2026-02"])
        let counts = try await f.store.documentCountsByMonth()
        #expect(counts.map(\.month) == ["2026-01", "2026-02"])
        #expect(counts.allSatisfy { $0.kind == .dischargeLetter && $0.count == 1 })
        // Read back as the same instants.
        let back = try await f.store.transmissions(matching: TransmissionFilter())
        #expect(back.map(\.createdAt) == [endOfJanuaryUTC, startOfFebruaryUTC])
        // A stay's discharge month is UTC too.
        let stayRows = try raw.query("SELECT count(*) AS n FROM stays")
        #expect(stayRows[0]["n"].int == 2)
    }

    @Test(arguments: JournalBackend.allCases) func statusQueries(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1, targets: [.dmp, .mssantePS], at: JournalFixture.t0)
        try await f.queued(2, targets: [.dmp], at: JournalFixture.t0.plus(10))
        try await f.queued(3, targets: [.mssantePatient], at: JournalFixture.t0.plus(20))
        let c = try #require(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0.plus(30), lease: 60, owner: "w"))
        _ = try await f.store.complete(c, owner: "w", outcome: .failure(.identity("INS non qualifiée")), now: JournalFixture.t0.plus(31))
        let counts = try await f.store.stateCounts()
        #expect(counts == [
            StateCount(target: .dmp, state: .failed, count: 1),
            StateCount(target: .dmp, state: .queued, count: 1),
            StateCount(target: .mssantePatient, state: .queued, count: 1),
            StateCount(target: .mssantePS, state: .queued, count: 1),
        ])
        #expect(try await f.store.oldestWaiting(target: .dmp) == JournalFixture.t0.plus(10))
        #expect(try await f.store.oldestWaiting(target: .mssantePS) == JournalFixture.t0)
        let errors = try await f.store.lastErrors()
        #expect(errors.count == 1)
        #expect(errors[0].target == .dmp && errors[0].documentID == c.document.id)
        #expect(errors[0].message == "identity refused: INS non qualifiée")
        #expect(errors[0].at == JournalFixture.t0.plus(31))
    }

    @Test(arguments: JournalBackend.allCases) func resendSelection(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1, targets: [.dmp, .mssantePS], at: JournalFixture.t0, patientKey: "alice")
        try await f.queued(2, targets: [.dmp], at: JournalFixture.t0.plus(3600), patientKey: "bob")
        try await f.queued(3, targets: [.dmp], at: JournalFixture.t0.plus(7200), patientKey: "alice")
        let s = f.store
        #expect(try await s.transmissions(matching: TransmissionFilter(patientKey: "alice")).map(\.documentID)
            == ["1.2.250.1.999.1.1", "1.2.250.1.999.1.1", "1.2.250.1.999.1.3"])
        #expect(try await s.transmissions(matching: TransmissionFilter(patientKey: "alice", target: .mssantePS)).count == 1)
        #expect(try await s.transmissions(matching: TransmissionFilter(documentID: "1.2.250.1.999.1.2")).count == 1)
        #expect(try await s.transmissions(matching: TransmissionFilter(from: JournalFixture.t0.plus(1), until: JournalFixture.t0.plus(7200)))
            .map(\.documentID) == ["1.2.250.1.999.1.2"])
        let all = try await s.transmissions(matching: TransmissionFilter())
        #expect(try await s.transmissions(matching: TransmissionFilter(transmissionIDs: [all[0].id, all[3].id])).map(\.id) == [all[0].id, all[3].id])
        #expect(try await s.transmissions(matching: TransmissionFilter(states: [.failed])).isEmpty)
        #expect(try await s.transmissions(matching: TransmissionFilter(limit: 2)).count == 2)
        // Fail alice's DMP documents, then resend only those.
        while let c = try await s.claimNext(target: .dmp, now: JournalFixture.t0.plus(9000), lease: 60, owner: "w") {
            _ = try await s.complete(c, owner: "w", outcome: .failure(.schema("bad")), now: JournalFixture.t0.plus(9000))
        }
        let requeued = try await s.requeue(TransmissionFilter(patientKey: "alice", target: .dmp), now: JournalFixture.t0.plus(9100))
        #expect(requeued.map(\.documentID) == ["1.2.250.1.999.1.1", "1.2.250.1.999.1.3"])
        #expect(try await s.transmissions(matching: TransmissionFilter(states: [.failed])).map(\.documentID) == ["1.2.250.1.999.1.2"])
        // A queued (not failed) transmission is never requeued.
        #expect(try await s.requeue(TransmissionFilter(target: .mssantePS), now: JournalFixture.t0.plus(9200)).isEmpty)
    }

    @Test(arguments: JournalBackend.allCases) func migrationsAreRecordedAndNotReapplied(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1)
        let raw = try f.raw()
        #expect(try raw.query("SELECT version FROM schema_migrations ORDER BY version").map { $0["version"].int } == [1, 2, 3, 4, 5, 6, 7, 8, 9])
        _ = try f.secondStore()
        #expect(try raw.scalar("SELECT count(*) FROM schema_migrations")?.int == 9)
        #expect(try raw.scalar("SELECT count(*) FROM transmissions")?.int == 1)
        if backend == .postgresql {
            // Migration 6: blob bytes out of line and uncompressed (no pglz on PDFs and base64).
            #expect(try raw.scalar("SELECT attstorage::text FROM pg_attribute WHERE attrelid = 'blobs'::regclass AND attname = 'content'")?.string == "e")
        }
        // A journal written by a newer passerelle is refused with a clear message.
        try raw.run("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
        let error = try #require(throws: JournalError.self) { _ = try f.secondStore() }
        #expect(error.description.contains("version 99"))
    }
}

@Suite struct OpenJournalTests {
    @Test func opensTheConfiguredSQLiteJournalWithItsBlobFolderBesideIt() async throws {
        let folder = try TestPaths.temporaryDirectory("journal-open")
        let path = folder.appendingPathComponent("journal.sqlite").path
        let store = try Journals.open(.sqlite(path: path))
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(Journals.blobFolder(forDatabase: path).lastPathComponent == "journal.blobs")
        _ = try await store.accept(JournalFixture.document(1), content: Data("x".utf8), input: nil, stay: nil, now: JournalFixture.t0)
        let blob = Journals.blobFolder(forDatabase: path).appendingPathComponent(String(BlobStore.sha256Hex(Data("x".utf8)).prefix(2)))
        #expect(FileManager.default.fileExists(atPath: blob.path))
    }

    @Test func opensTheConfiguredPostgreSQLJournalWithItsPasswordFileAndBlobCache() async throws {
        let url = try PostgresTestServer.createDatabase()
        let server = try PostgresTestServer.shared()
        let cache = try TestPaths.temporaryDirectory("journal-open").appendingPathComponent("cache")
        let (store, blobs) = try Journals.openWithBlobs(.postgresql(url: url, passwordFile: server.passwordFile.path,
                                                                   blobCache: cache.path))
        #expect(store is PostgresJournalStore)
        #expect(blobs.root == cache)
        let result = try await store.accept(JournalFixture.document(1), content: Data("x".utf8), input: nil, stay: nil,
                                            now: JournalFixture.t0)
        guard case .accepted(let document) = result else { Issue.record("not accepted: \(result)"); return }
        // Another node, with an empty cache, reads the bytes from the database.
        let other = try Journals.openWithBlobs(.postgresql(url: url, passwordFile: server.passwordFile.path,
                                                           blobCache: cache.path + "-node2"))
        #expect(try other.blobs.get(document.blobSHA256) == Data("x".utf8))
        #expect(FileManager.default.fileExists(atPath: other.blobs.url(for: document.blobSHA256).path), "kept in the node's cache")
    }

    @Test func aWrongPostgreSQLPasswordIsRefusedWithoutShowingIt() throws {
        let server = try PostgresTestServer.shared()
        let folder = try TestPaths.temporaryDirectory("journal-open")
        let wrong = folder.appendingPathComponent("password")
        try Data("not-the-password\n".utf8).write(to: wrong)
        let error = try #require(throws: JournalError.self) {
            _ = try Journals.open(.postgresql(url: server.url(database: "postgres"), passwordFile: wrong.path,
                                              blobCache: folder.appendingPathComponent("cache").path))
        }
        #expect(error.description.contains("password authentication failed"))
        #expect(error.description.contains("password_file"))
        #expect(!error.description.contains("not-the-password"))
        // A password in the URL itself is redacted from the message too.
        let inURL = try #require(throws: JournalError.self) {
            _ = try Journals.open(.postgresql(url: "postgresql://passerelle:hunter2@127.0.0.1:\(server.port)/nope",
                                              blobCache: folder.appendingPathComponent("cache").path))
        }
        #expect(!inURL.description.contains("hunter2"))
        #expect(inURL.description.contains("passerelle:***@"))
    }
}
