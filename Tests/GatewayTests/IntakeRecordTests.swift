import Foundation
import Gateway
import Intake
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

    @Test func truncatedOrForeignRecordsAreRefused() throws {
        #expect(throws: GatewayError.self) { try IntakeRecord.decode(Data("passerelle-intake/1 pdf\n{".utf8)) }
        #expect(throws: GatewayError.self) { try IntakeRecord.decode(Data("something/9 pdf\n{}\nx".utf8)) }
    }
}
