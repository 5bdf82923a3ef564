import Foundation
import Handoff
import Intake
import MSSante
import PasserelleCore
import Testing
import TestSupport

@Suite struct IntakeRecordTests {
    @Test func roundTripKeepsMetadataAndBytes() throws {
        var metadata = SampleMetadata.document(kind: .biologyReport, id: SampleMetadata.oidDocumentID())
        metadata.flags = [.masquePS]
        let pdf = Data("%PDF-1.4\n\n\u{0}\u{1}binary\nend".utf8)
        let record = IntakeRecord(metadata: metadata, content: .pdf(pdf))
        let back = try IntakeRecord.decode(try record.encoded())
        #expect(back.content == .pdf(pdf))
        #expect(back.metadata == metadata)
    }

    @Test func aRecordWhoseContentIsInTheBuiltCDAHoldsTheHeaderOnly() throws {
        let metadata = SampleMetadata.document(kind: .operativeReport, id: SampleMetadata.oidDocumentID())
        let pdf = Data("%PDF-1.7 body".utf8)
        let parts = try IntakeRecord(metadata: metadata, content: .pdf(pdf)).encodedParts(contentInBuiltCDA: true)
        #expect(parts.count == 1 && !parts[0].contains(pdf))
        #expect(String(decoding: parts[0].prefix(40), as: UTF8.self).hasPrefix("passerelle-intake/1 pdf-in-cda\n"))
        // The sender reads the header (metadata, kind); the content is not there to decode.
        #expect(throws: GatewayError.self) { try IntakeRecord.decode(parts[0]) }
        let cdaParts = try IntakeRecord(metadata: metadata, content: .cda(Data("<ClinicalDocument/>".utf8))).encodedParts(contentInBuiltCDA: true)
        #expect(String(decoding: cdaParts[0].prefix(40), as: UTF8.self).hasPrefix("passerelle-intake/1 cda-in-cda\n"))
    }

    /// Through the pipeline: a PDF in memory is stored once (in the built CDA), and what a
    /// sender loads back from the journal after a restart still carries it.
    @Test func anAdmittedPDFIsStoredOnceAndLoadsBackWhole() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let (pipeline, journal) = try PipelineTests.pipeline(h)
        let metadata = Documents.metadata()
        let pdf = Documents.pdf()
        let outcome = try await pipeline.ingest(.document(IncomingDocument(metadata: metadata, content: .pdf(pdf), action: .new, controlID: "")), input: nil)
        guard case .accepted(let id, let version, _) = outcome else { Issue.record("\(outcome)"); return }
        let document = try #require(try await journal.document(id: id, version: version))
        let record = try journal.blobs.get(document.blobSHA256)
        #expect(record.count < 4096 && !record.contains(pdf), "the record holds no second copy of the PDF")
        let loaded = try OutgoingDocument.load(document, blobs: journal.blobs)
        #expect(loaded.recordPDF == nil && loaded.cda.origin == .built && loaded.metadata.id == metadata.id)
        #expect(MSSanteSender.embeddedPDF(loaded.cda.data) == pdf, "the mail's PDF comes from the CDA's body")
    }

    @Test func truncatedOrForeignRecordsAreRefused() throws {
        #expect(throws: GatewayError.self) { try IntakeRecord.decode(Data("passerelle-intake/1 pdf\n{".utf8)) }
        #expect(throws: GatewayError.self) { try IntakeRecord.decode(Data("something/9 pdf\n{}\nx".utf8)) }
    }
}
