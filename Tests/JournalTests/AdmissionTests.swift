import Foundation
import Journal
import PasserelleCore
import Testing
import TestSupport

/// ``JournalStore/admit(_:now:)``: record, built CDA and queued transmissions in one
/// transaction, on both backends.
@Suite struct AdmissionTests {
    static func admission(_ n: Int, targets: [Destination] = [.dmp, .mssantePS], input: String? = nil) -> Admission {
        Admission(document: JournalFixture.document(n), record: [Data("record-head-\(n)\n".utf8), Data("%PDF-1.7 \(n)".utf8)],
                  built: .data(Data("<ClinicalDocument n=\"\(n)\"/>".utf8)), targets: targets,
                  input: input.map { InputFile(sha256: $0, fileName: "doc\(n).pdf") }, stay: nil)
    }

    @Test(arguments: JournalBackend.allCases) func admittedDocumentIsQueuedWithItsBlobsInOneStep(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let result = try await f.store.admit(Self.admission(1, input: String(repeating: "a", count: 64)), now: JournalFixture.t0)
        guard case .admitted(let document, let transmissions) = result else { Issue.record("not admitted: \(result)"); return }
        #expect(document.state == .queued)
        #expect(transmissions.map(\.target) == [.dmp, .mssantePS])
        #expect(transmissions.allSatisfy { $0.state == .queued && $0.documentID == document.id })
        // Both blobs stored under their digests, the record as the concatenation of its parts.
        #expect(try f.blobs.get(document.blobSHA256) == Data("record-head-1\n%PDF-1.7 1".utf8))
        #expect(try f.blobs.get(try #require(document.builtSHA256)) == Data("<ClinicalDocument n=\"1\"/>".utf8))
        // What the journal holds is what admit returned.
        let stored = try #require(try await f.store.document(id: document.id, version: 1))
        #expect(stored.state == .queued && stored.builtSHA256 == document.builtSHA256 && stored.blobSHA256 == document.blobSHA256)
        // Nothing left half-way for resume().
        #expect(try await f.store.documents(in: .received).isEmpty)
        #expect(try await f.store.documents(in: .built).isEmpty)
        // A worker can claim it at once.
        let claim = try await f.store.claimNext(target: .dmp, now: JournalFixture.t0, lease: 60, owner: "w")
        #expect(claim?.document.id == document.id)
    }

    /// A CDA whose first sends come from memory: SQLite's folder, the only copy, still gets its
    /// file; a PostgreSQL node writes none (the database holds it) until something reads it back.
    @Test(arguments: JournalBackend.allCases) func firstSendFromMemoryWritesNoCacheFile(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        var inMemory = Self.admission(1, targets: [.dmp])
        inMemory.firstSendFromMemory = true
        let notHeld = Self.admission(2, targets: [.dmp])
        guard case .admitted(let first, _) = try await f.store.admit(inMemory, now: JournalFixture.t0),
              case .admitted(let second, _) = try await f.store.admit(notHeld, now: JournalFixture.t0) else {
            Issue.record("not admitted"); return
        }
        let firstCDA = try #require(first.builtSHA256), secondCDA = try #require(second.builtSHA256)
        #expect(f.blobs.size(secondCDA) != nil, "a CDA the hand-off does not hold has its file at once (its read-back is near)")
        #expect(f.blobs.size(second.blobSHA256) != nil)
        switch backend {
        case .sqlite:
            #expect(f.blobs.size(firstCDA) != nil, "SQLite: the folder holds the only copy")
        case .postgresql:
            #expect(f.blobs.size(firstCDA) == nil && f.blobs.size(first.blobSHA256) == nil, "no cache file written at admission")
            // Read back (a retry, a restart): from the database, then cached.
            #expect(try f.blobs.get(firstCDA) == Data("<ClinicalDocument n=\"1\"/>".utf8))
            #expect(f.blobs.size(firstCDA) != nil)
            #expect(try f.blobs.get(first.blobSHA256) == Data("record-head-1\n%PDF-1.7 1".utf8))
        }
    }

    @Test(arguments: JournalBackend.allCases) func duplicatesAreReportedAndStoreNothing(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let sha = String(repeating: "b", count: 64)
        _ = try await f.store.admit(Self.admission(1, input: sha), now: JournalFixture.t0)
        // The same input again (same bytes): recognised, nothing new.
        let again = try await f.store.admit(Self.admission(2, input: sha), now: JournalFixture.t0)
        #expect(again == .duplicateInput(documentID: JournalFixture.document(1).id, version: 1))
        // The same document from another input: refused as a duplicate document.
        let other = try await f.store.admit(Self.admission(1, input: String(repeating: "c", count: 64)), now: JournalFixture.t0)
        guard case .duplicateDocument(let earlier) = other else { Issue.record("\(other)"); return }
        #expect(earlier.id == JournalFixture.document(1).id)
        #expect(try await f.store.transmissions(matching: TransmissionFilter()).count == 2)
    }

    /// Many admissions in flight at once (as concurrent intake makes them): every one lands
    /// whole, none twice (the sharing of commits is shown deterministically by CommitQueueTests).
    @Test(arguments: JournalBackend.allCases) func concurrentAdmissionsAllLandWhole(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 1...40 {
                group.addTask {
                    let result = try await f.store.admit(Self.admission(n, targets: [.dmp]), now: JournalFixture.t0)
                    guard case .admitted = result else { throw JournalError.database("not admitted: \(result)") }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await f.store.documents(in: .queued).count == 40)
        #expect(try await f.store.transmissions(matching: TransmissionFilter()).count == 40)
    }
}
