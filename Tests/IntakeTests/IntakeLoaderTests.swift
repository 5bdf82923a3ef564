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

    @Test func readsWithoutFollowingLinksAndWithinTheLimit() throws {
        let dir = try TestPaths.temporaryDirectory("intake-load")
        let target = try file(dir, "target.json", Data("{}".utf8))
        let link = dir.appendingPathComponent("link.json")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        #expect(throws: RefusalReason.symbolicLink(name: "link.json")) { try IntakeLoader.read(link, limit: 100, key: "k") }
        // Sparse: the size is checked from fstat, nothing is read.
        let big = dir.appendingPathComponent("big.hl7")
        #expect(FileManager.default.createFile(atPath: big.path, contents: nil))
        let handle = try FileHandle(forWritingTo: big)
        try handle.truncate(atOffset: 150 * 1024 * 1024)
        try handle.close()
        #expect(throws: RefusalReason.tooLarge(name: "big.hl7", size: 150 * 1024 * 1024, limit: 32 * 1024 * 1024, key: "[mllp] max_message_bytes")) {
            try loader.load(.hl7(big))
        }
        let fifo = dir.appendingPathComponent("f.json")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        #expect(throws: RefusalReason.notRegularFile(name: "f.json")) { try IntakeLoader.read(fifo, limit: 100, key: "k") }
        #expect(try IntakeLoader.read(target, limit: 2, key: "k") == Data("{}".utf8))
        #expect(throws: RefusalReason.tooLarge(name: "target.json", size: 2, limit: 1, key: "k")) { try IntakeLoader.read(target, limit: 1, key: "k") }
        // A CDA may carry a PDF of max_pdf_bytes in base64 plus its header.
        let limits = IntakeLimits(maxPDFBytes: 3 * 1024 * 1024)
        #expect(limits.maxCDABytes > 4 * 1024 * 1024 + 1024 * 1024 && limits.maxCDABytes < 4 * 1024 * 1024 + 1200 * 1024)
    }

    @Test func overlongFieldsAreRefusedWithTheirLimit() throws {
        let dir = try TestPaths.temporaryDirectory("intake-load")
        var metadata = SampleMetadata.document(kind: .dischargeLetter)
        metadata.patient.traits.birthName = String(repeating: "A", count: 1_000_000)
        metadata.title = String(repeating: "t", count: 1025)
        let sidecar = try file(dir, "a.json", try JSONEncoder().encode(metadata))
        do {
            _ = try loader.load(.pdf(document: try file(dir, "a.pdf", TestPDF.make()), sidecar: sidecar))
            Issue.record("expected a refusal")
        } catch let error as RefusalReason {
            #expect(error.description.contains("patient.traits.birth_name: 1000000 characters, at most 256 (DMP XDS metadata: ebRIM LongName)"))
            #expect(error.description.contains("title: 1025 characters, at most 1024 (DMP XDS metadata: ebRIM FreeFormText)"))
            #expect(error.description.count < 2000, "the value itself is never quoted")
        }
        // The same limits on the HL7 path (PID-5 → patient.traits.birth_name).
        let oru = try String(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("Tests/IntakeTests/Fixtures/oru-ex0-biology-new.hl7"), encoding: .utf8)
        #expect(throws: Never.self) { try loader.loadMessage(Data(oru.utf8)) }
        let long = oru.replacingOccurrences(of: "|TESTINS^", with: "|" + String(repeating: "B", count: 300) + "^")
        do {
            _ = try loader.loadMessage(Data(long.utf8))
            Issue.record("expected a refusal")
        } catch {
            #expect(error.description.contains("300 characters, at most 256"), "\(error.description)")
        }
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
        #expect(throws: RefusalReason.invalidContent(.notPDF(name: "c.pdf"))) {
            try loader.load(.pdf(document: notPDF, sidecar: try file(dir, "c.json", good)))
        }
        #expect(throws: RefusalReason.invalidContent(.notXML(name: "c.pdf"))) {
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
