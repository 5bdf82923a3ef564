import Foundation
@testable import Journal
import PasserelleCore
import SQLiteKit
import Testing
import TestSupport

/// Migration 9: an SQLite journal opened as the gateway opens it keeps a document's small intake
/// record in its `blobs` table, in the admission's transaction, instead of a file of its own.
@Suite("journal: small intake records kept in the SQLite journal")
struct RecordInJournalTests {
    static let t0 = JournalFixture.t0

    func journal() throws -> (store: SQLiteJournalStore, blobs: BlobStore, path: String, folder: URL) {
        let folder = try TestPaths.temporaryDirectory("journal-record-inline")
        let path = folder.appendingPathComponent("journal.sqlite").path
        let (store, blobs) = try Journals.openWithBlobs(.sqlite(path: path))
        return (try #require(store as? SQLiteJournalStore), blobs, path, folder)
    }

    static func admission(_ n: Int, record: [Data]) -> Admission {
        Admission(document: JournalFixture.document(n), record: record, built: .data(Data(String(repeating: "<cda n=\"\(n)\"/>", count: 40_000).utf8)),
                  targets: [.dmp], input: InputFile(sha256: String(repeating: "\(n % 10)", count: 64), fileName: "doc\(n).pdf"), stay: nil)
    }

    func storedInTable(_ path: String) throws -> [String: Data] {
        let raw = try SQLiteConnection(path: path, mode: .readOnly)
        defer { raw.close() }
        return Dictionary(uniqueKeysWithValues: try raw.query("SELECT sha256, content FROM blobs").map { ($0["sha256"].string!, $0["content"].data!) })
    }

    @Test("a metadata-only record goes into the journal, the built CDA stays a file, both read back checked")
    func smallRecordInTheDatabase() async throws {
        let j = try journal()
        defer { try? FileManager.default.removeItem(at: j.folder) }
        let record = [Data("passerelle-intake/1 pdf-in-cda\n".utf8), Data("{\"kind\":\"CR-BIO\"}\n".utf8)]
        let result = try await j.store.admit(Self.admission(1, record: record), now: Self.t0)
        guard case .admitted(let document, _) = result else { Issue.record("not admitted: \(result)"); return }
        let whole = record.reduce(Data(), +)
        #expect(document.blobSHA256 == BlobStore.sha256Hex(whole))
        #expect(j.blobs.size(document.blobSHA256) == nil, "no file for the record")
        #expect(try storedInTable(j.path) == [document.blobSHA256: whole], "the record, and nothing else, in the table")
        let built = try #require(document.builtSHA256)
        #expect(j.blobs.size(built) == 480_000, "the built CDA is a file")
        // Read back through the folder's store: from the table, checked, and no file made for it.
        #expect(try j.blobs.get(document.blobSHA256) == whole)
        #expect(j.blobs.size(document.blobSHA256) == nil)
        // A store opened without the table's source (an older tool) does not find it: only the
        // gateway's own opening puts records there.
        #expect(throws: JournalError.self) { try BlobStore(root: j.blobs.root).get(document.blobSHA256) }
    }

    @Test("a record holding its content (a large PDF) stays a file; without the table's source nothing goes in")
    func largeRecordStaysAFile() async throws {
        let j = try journal()
        defer { try? FileManager.default.removeItem(at: j.folder) }
        let record = [Data("passerelle-intake/1 pdf\n{}\n".utf8), Data(repeating: 0x25, count: SQLiteJournalStore.recordInJournalBytes)]
        guard case .admitted(let large, _) = try await j.store.admit(Self.admission(1, record: record), now: Self.t0) else {
            Issue.record("not admitted"); return
        }
        #expect(j.blobs.size(large.blobSHA256) == Int64(record.reduce(0) { $0 + $1.count }))
        #expect(try storedInTable(j.path).isEmpty)

        // The same journal file opened with a plain folder store (tests, old tools): records are files.
        let plain = try SQLiteJournalStore(path: j.path, blobs: BlobStore(root: j.blobs.root))
        guard case .admitted(let small, _) = try await plain.admit(Self.admission(2, record: [Data("r\n{}\n".utf8)]), now: Self.t0) else {
            Issue.record("not admitted"); return
        }
        #expect(j.blobs.size(small.blobSHA256) == 5)
        #expect(try storedInTable(j.path).isEmpty)
    }

    @Test("a purge deletes a record kept in the journal and counts its bytes")
    func purgeDeletesTheRow() async throws {
        let j = try journal()
        defer { try? FileManager.default.removeItem(at: j.folder) }
        let record = [Data("passerelle-intake/1 pdf-in-cda\n{}\n".utf8)]
        guard case .admitted(let document, _) = try await j.store.admit(Self.admission(1, record: record), now: Self.t0) else {
            Issue.record("not admitted"); return
        }
        let claim = try #require(try await j.store.claimNext(target: .dmp, now: Self.t0.plus(1), lease: 60, owner: "w"))
        _ = try await j.store.complete(claim, owner: "w", outcome: .failure(.permanent("refusé")), now: Self.t0.plus(2))
        let dry = try await j.store.purge(endedBefore: Self.t0.plus(3600), dryRun: true, OperatorRequest(user: "ops", selection: ""),
                                          now: Self.t0.plus(7200))
        #expect(dry.blobs == 2 && dry.bytes == Int64(record[0].count + 480_000), "\(dry)")
        #expect(try storedInTable(j.path).count == 1, "a dry run deletes nothing")
        let result = try await j.store.purge(endedBefore: Self.t0.plus(3600), dryRun: false, OperatorRequest(user: "ops", selection: ""),
                                             now: Self.t0.plus(7200))
        #expect(result.documents == 1 && result.blobs == 2, "\(result)")
        #expect(try storedInTable(j.path).isEmpty)
        #expect(j.blobs.size(try #require(document.builtSHA256)) == nil)
        #expect(throws: JournalError.self) { try j.blobs.get(document.blobSHA256) }
    }

    @Test("a version 8 journal with rows → version 9: rows kept, the blobs table made (SQLite) or kept (PostgreSQL)",
          arguments: JournalBackend.allCases)
    func upgradeFromVersion8(_ backend: JournalBackend) async throws {
        let folder = try TestPaths.temporaryDirectory("journal-upgrade-9")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (_, raw) = try Migration7Tests.upgraded(backend, from: 8, in: folder)
        #expect(try raw.query("SELECT version FROM schema_migrations ORDER BY version").map { $0["version"].int } == [1, 2, 3, 4, 5, 6, 7, 8, 9])
        #expect(try raw.query("SELECT count(*) AS n FROM transmissions").first?["n"].int == 6)
        #expect(try raw.query("SELECT count(*) AS n FROM documents").first?["n"].int == 4)
        #expect(try raw.query("SELECT count(*) AS n FROM blobs").first?["n"].int == 0)
    }
}
