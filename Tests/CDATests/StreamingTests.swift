import CDA
import Foundation
import OpenSSLKit
import PasserelleCore
import Testing
import TestSupport
import XMLKit

/// The file-backed path of large documents: the streamed build gives the in-memory build's
/// bytes, and the streaming validation / header reading agree with the DOM ones.
@Suite struct StreamingTests {
    let builder = Fixtures.templatesBuilder

    func temporaryFile() throws -> URL {
        try TestPaths.temporaryDirectory("cda-stream").appendingPathComponent("built.xml")
    }

    /// Sizes around the base64 chunk (786,432 bytes) and not multiples of 3.
    @Test(arguments: [0, 5_000, 786_431, 786_432, 786_433, 2_000_001])
    func streamedBuildIsByteIdentical(_ minimumBytes: Int) throws {
        let pdf = TestPDF.make(text: "Streaming", minimumBytes: minimumBytes)
        var metadata = Fixtures.metadata(kind: .dischargeLetter)
        // Fixed ids: otherwise each build generates its own.
        metadata.id = SampleMetadata.oidDocumentID()
        metadata.setID = SampleMetadata.oidDocumentID()
        let url = try temporaryFile()
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let streamed = try builder.build(metadata: metadata, pdf: pdf, to: url)
        let inMemory = try builder.build(metadata: metadata, pdf: pdf)
        let bytes = try Data(contentsOf: url)
        #expect(bytes == inMemory.data)
        let file = try #require(streamed.file)
        #expect(file.size == bytes.count)
        #expect(file.sha1 == Digest.sha1(bytes))
        #expect(file.sha256 == Digest.sha256(bytes))
        #expect(streamed.sha1 == inMemory.sha1 && streamed.size == inMemory.size)
        #expect(streamed.id == inMemory.id && streamed.ins == inMemory.ins && streamed.kind == inMemory.kind)
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func streamedBuildRefusesBadMetadataAndLeavesNoFile() throws {
        var metadata = Fixtures.metadata(kind: .dischargeLetter)
        metadata.stay = nil
        let url = try temporaryFile()
        #expect(throws: CDAError.self) { try builder.build(metadata: metadata, pdf: TestPDF.make(), to: url) }
        #expect(!FileManager.default.fileExists(atPath: url.path))
    }

    @Test func streamingValidationAgreesWithTheDOMValidation() throws {
        let url = try temporaryFile()
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let document = try builder.build(metadata: Fixtures.metadata(kind: .imagingReport), pdf: TestPDF.make(minimumBytes: 3 << 20), to: url)
        let streamed = Fixtures.validator.validate(streaming: url, file: "built")
        #expect(streamed.isValid, "\(streamed)")
        #expect(streamed.schemaChecked)
        #expect(Fixtures.validator.validate(document.data, file: "built").isValid)

        // Broken for the XSD (an element the schema does not know): both must say so.
        let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
            .replacingOccurrences(of: "<title>", with: "<bogus/><title>")
        let broken = url.deletingLastPathComponent().appendingPathComponent("broken.xml")
        try Data(text.utf8).write(to: broken)
        let dom = Fixtures.validator.validate(Data(text.utf8), file: "broken")
        let stream = Fixtures.validator.validate(streaming: broken, file: "broken")
        #expect(!dom.isValid && !stream.isValid)
        #expect(stream.schemaIssues.contains { $0.message.contains("bogus") }, "\(stream)")

        // Not well-formed: a parse issue, not a crash.
        try Data(text.prefix(text.count / 2).utf8).write(to: broken)
        let truncated = Fixtures.validator.validate(streaming: broken, file: "truncated")
        #expect(!truncated.isValid && !truncated.parseIssues.isEmpty)
    }

    /// The pipeline checks a built document through its short view: the schema and header
    /// checks must give the same answer there as on the whole document, valid or not.
    @Test func checkViewValidationAgreesWithTheWholeDocument() throws {
        let folder = try TestPaths.temporaryDirectory("cda-view")
        defer { try? FileManager.default.removeItem(at: folder) }
        let pdf = TestPDF.make(minimumBytes: 200_000)
        let document = try builder.build(metadata: Fixtures.metadata(kind: .operativeReport), pdf: pdf)
        let view = try #require(document.checkView)
        #expect(view.count < 20_000 && document.size > 250_000)
        let whole = Fixtures.validator.validate(document.data, file: "built")
        let short = Fixtures.validator.validate(view, file: "built")
        #expect(whole.isValid && short.isValid, "\(whole) \(short)")
        let file = try builder.build(metadata: Fixtures.metadata(kind: .operativeReport), pdf: pdf,
                                     to: folder.appendingPathComponent("built.xml"))
        #expect(file.checkView.map { Fixtures.validator.validate($0, file: "file").isValid } == true)

        // A template broken for the XSD: the view fails with the same schema issue as the whole.
        let templates = folder.appendingPathComponent("templates")
        let path = templates.appendingPathComponent(CDABuilder.templatePath)
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        let original = try String(contentsOf: TestPaths.templates.appendingPathComponent(CDABuilder.templatePath), encoding: .utf8)
        try original.replacingOccurrences(of: "<title>", with: "<bogus/><title>").write(to: path, atomically: true, encoding: .utf8)
        let broken = try CDABuilder(templatesDirectory: templates, options: builder.options)
            .build(metadata: Fixtures.metadata(kind: .operativeReport), pdf: pdf)
        let brokenWhole = Fixtures.validator.validate(broken.data, file: "broken")
        let brokenView = Fixtures.validator.validate(try #require(broken.checkView), file: "broken")
        #expect(!brokenWhole.isValid && !brokenView.isValid)
        #expect(brokenView.schemaIssues.map(\.message) == brokenWhole.schemaIssues.map(\.message))
        #expect(brokenView.schemaIssues.contains { $0.message.contains("bogus") }, "\(brokenView)")
    }

    @Test func headerReadFromTheFileMatchesTheParsedDocument() throws {
        let url = try temporaryFile()
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let metadata = Fixtures.metadata(kind: .biologyReport)
        let built = try builder.build(metadata: metadata, pdf: TestPDF.make(minimumBytes: 1 << 20), to: url)
        let fromFile = try ProducerCDA.accept(file: try CDAFile.measure(url), declared: metadata)
        let fromData = try ProducerCDA.accept(try Data(contentsOf: url), declared: metadata)
        #expect(fromFile.file == built.file)
        #expect(fromFile.id == fromData.id && fromFile.setID == fromData.setID && fromFile.ins == fromData.ins)
        #expect(fromFile.kind == fromData.kind && fromFile.effectiveTime == fromData.effectiveTime)
        // The tree kept for the header holds only the start of the 1.4 MB base64 body (the limit
        // plus at most what libxml2 hands over in one call).
        let tree = try XMLDocument.parseStreaming(file: url).document
        let body = try tree.string("string(//hl7:nonXMLBody/hl7:text)", namespaces: Fixtures.hl7)
        #expect(body.utf8.count >= XMLDocument.streamingTextLimit && body.utf8.count <= 4 * XMLDocument.streamingTextLimit, "\(body.utf8.count) bytes kept")
    }
}
