import Admission
import CDA
import DMP
import Foundation
import Handoff
import IHE
import Intake
import Journal
import PasserelleCore
import Testing
import TestSupport

/// The pipeline's steps on their own, without the service around them.
@Suite struct PipelineTests {
    static func pipeline(_ h: Harness, enabled: Set<Destination> = [.dmp]) throws -> (Pipeline, SQLiteJournalStore) {
        let journal = try h.journal()
        let settings = PipelineSettings(structureOID: "1.2.250.1.999.1", finess: "750803447", enabledTargets: enabled,
                                        patientKeySecret: Data("secret-for-tests".utf8))
        return (Pipeline(journal: journal, blobs: journal.blobs, settings: settings, builder: Documents.builder), journal)
    }

    @Test func aDocumentLeftBetweenAcceptAndQueueIsFinishedOnResume() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let (pipeline, journal) = try Self.pipeline(h)
        // What a crash right after the journal commit leaves: the document received, nothing built or queued.
        let metadata = Documents.metadata()
        let record = try IntakeRecord(metadata: metadata, content: .pdf(Documents.pdf())).encoded()
        let id = DocumentEntryMapper.uniqueId(metadata.id!)
        _ = try await journal.accept(JournalDocument(id: id, kind: .dischargeLetter, finess: "750803447", receivedAt: Date()),
                                     content: record, input: nil, stay: nil, now: Date())
        #expect(try await pipeline.resume() == 1)
        #expect(try await journal.document(id: id, version: 1)?.state == .queued)
        #expect(try await journal.transmissions(matching: TransmissionFilter(documentID: id)).map(\.target) == [.dmp])
        #expect(try await pipeline.resume() == 0, "nothing left to finish")
    }

    @Test func routingKeepsOnlyEnabledTargetsAndRefusesTheRest() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let (pipeline, journal) = try Self.pipeline(h)
        var both = Documents.metadata()
        both.destinations = [.dmp, .mssantePS]
        let outcome = try await pipeline.ingest(.document(IncomingDocument(metadata: both, content: .pdf(Documents.pdf()), action: .new, controlID: "")), input: nil)
        #expect(outcome == .accepted(documentID: DocumentEntryMapper.uniqueId(both.id!), version: 1, targets: [.dmp]))

        var mailOnly = Documents.metadata()
        mailOnly.destinations = [.mssantePatient]
        await #expect(throws: IngestFailure.self) {
            try await pipeline.ingest(.document(IncomingDocument(metadata: mailOnly, content: .pdf(Documents.pdf()), action: .new, controlID: "")), input: nil)
        }
        #expect(try await journal.document(id: DocumentEntryMapper.uniqueId(mailOnly.id!), version: 1) == nil, "refused before the journal")
    }

    @Test func theSameDocumentFromAnotherFileIsRefusedAndTheSameFileIsRecognised() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let (pipeline, _) = try Self.pipeline(h)
        let m = Documents.metadata()
        let item = IntakeItem.document(IncomingDocument(metadata: m, content: .pdf(Documents.pdf()), action: .new, controlID: ""))
        let input = InputFile(sha256: String(repeating: "a", count: 64), fileName: "a.pdf")
        _ = try await pipeline.ingest(item, input: input)
        #expect(try await pipeline.ingest(item, input: input) == .duplicateInput(documentID: DocumentEntryMapper.uniqueId(m.id!)))
        do {
            _ = try await pipeline.ingest(item, input: InputFile(sha256: String(repeating: "b", count: 64), fileName: "b.pdf"))
            Issue.record("a second file with the same document id and version must be refused")
        } catch {
            guard case .refused(let reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.description.contains("already in the journal"))
        }
    }
}
