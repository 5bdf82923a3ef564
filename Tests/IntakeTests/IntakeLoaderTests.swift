import Foundation
import Testing
import PasserelleCore
import TestSupport
@testable import Intake

@Suite struct IntakeLoaderTests {
    let loader = IntakeLoader()

    func file(_ dir: URL, _ name: String, _ data: Data) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    @Test func pdfWithSidecar() throws {
        let dir = try TestPaths.temporaryDirectory("intake-load")
        let sidecarData = try Data(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/examples/sidecar-ldl.json"))
        let pdf = TestPDF.make()
        let item = try loader.load(.pdf(document: try file(dir, "a.pdf", pdf), sidecar: try file(dir, "a.json", sidecarData)))
        guard case .document(let doc) = item else { Issue.record("expected a document"); return }
        #expect(doc.content == .pdf(pdf))
        #expect(doc.metadata == (try DocumentMetadata.decode(sidecar: sidecarData)))
        #expect(doc.action == doc.metadata.action)
    }

    @Test func refusals() throws {
        let dir = try TestPaths.temporaryDirectory("intake-load")
        let good = try Data(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/examples/sidecar-ldl.json"))
        let pdf = try file(dir, "a.pdf", TestPDF.make())
        #expect(throws: RefusalReason.invalidSidecar(.invalid(try DocumentMetadata.decode(sidecar: Data("{}".utf8)).validate()))) {
            try loader.load(.pdf(document: pdf, sidecar: try file(dir, "a.json", Data("{}".utf8))))
        }
        let broken = try file(dir, "b.json", Data("{".utf8))
        do {
            _ = try loader.load(.pdf(document: pdf, sidecar: broken))
            Issue.record("expected a refusal")
        } catch {
            guard case .invalidSidecar(.malformedJSON) = error else { Issue.record("got \(error)"); return }
        }
        let notPDF = try file(dir, "c.pdf", Data("hello".utf8))
        #expect(throws: RefusalReason.invalidContent("c.pdf is not a PDF (it does not start with %PDF-)")) {
            try loader.load(.pdf(document: notPDF, sidecar: try file(dir, "c.json", good)))
        }
        #expect(throws: RefusalReason.invalidContent("c.pdf is not XML")) {
            try loader.load(.cda(document: notPDF, sidecar: try file(dir, "c.json", good)))
        }
        let cda = try file(dir, "d.xml", Data("\u{FEFF}  <?xml version=\"1.0\"?><ClinicalDocument/>".utf8))
        guard case .document(let doc) = try loader.load(.cda(document: cda, sidecar: try file(dir, "d.json", good))) else {
            Issue.record("expected a document"); return
        }
        #expect(doc.content == .cda(try Data(contentsOf: cda)))
    }

    @Test func hl7Files() throws {
        let dir = try TestPaths.temporaryDirectory("intake-load")
        let oru = try file(dir, "o.hl7", try Fixture.data("oru-ex0-biology-new.hl7"))
        guard case .document(let doc) = try loader.load(.hl7(oru)) else { Issue.record("expected a document"); return }
        #expect(doc.metadata.kind == .biologyReport)
        let adt = try file(dir, "a.hl7", Data(StayEventTests.a01.joined(separator: "\r").utf8))
        guard case .stay(let stay) = try loader.load(.hl7(adt)) else { Issue.record("expected a stay"); return }
        #expect(stay.kind == .admission)
        let junk = try file(dir, "j.hl7", Data("not hl7".utf8))
        #expect(throws: RefusalReason.invalidMessage(.parse(.missingMSH))) { try loader.load(.hl7(junk)) }
        let text = try Fixture.text("oru-ex0-biology-new.hl7").replacingOccurrences(of: "11502-2^", with: "99999-9^")
        let unknown = try file(dir, "u.hl7", Data(text.utf8))
        #expect(throws: RefusalReason.invalidMessage(.unknownDocumentKind("99999-9"))) { try loader.load(.hl7(unknown)) }
    }
}
