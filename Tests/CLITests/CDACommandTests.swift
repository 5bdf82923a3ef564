import Foundation
import Testing
import TestSupport

@Suite("passerelle build / validate")
struct CDACommandTests {
    static let sidecar = TestPaths.repositoryRoot.appendingPathComponent("docs/examples/sidecar-ldl.json").path
    static let schema = TestPaths.shared.appendingPathComponent("conformance/cda/xsd/cda/CDA_extended.xsd").path
    static let templates = TestPaths.templates.path

    @Test func buildThenValidate() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pdf = dir.appendingPathComponent("doc.pdf")
        try TestPDF.make().write(to: pdf)
        let out = dir.appendingPathComponent("doc.xml").path
        let build = try CLI.run(["build", "--kind", "ldl", "--pdf", pdf.path, "--meta", Self.sidecar, "--out", out,
                                 "--templates", Self.templates, "--schema", Self.schema])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stderr.contains("XSD valid"))
        #expect(!build.stderr.contains("279035121518989"))   // the INS is masked
        let attributes = try FileManager.default.attributesOfItem(atPath: out)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.contains("<code code=\"11490-0\""))

        let validate = try CLI.run(["validate", "--schema", Self.schema, out])
        #expect(validate.status == 0, "\(validate.stdout)")
        #expect(validate.stdout.hasPrefix("VALID   \(out)"))

        let broken = dir.appendingPathComponent("broken.xml").path
        try Data(text.replacingOccurrences(of: "<languageCode code=\"fr-FR\"/>", with: "<languageCode code=\"en\"/><oops/>").utf8)
            .write(to: URL(fileURLWithPath: broken))
        let bad = try CLI.run(["validate", "--json", "--schema", Self.schema, out, broken])
        #expect(bad.status == 1)
        struct Entry: Decodable { var file: String; var valid: Bool; var errors: [String] }
        let entries = try JSONDecoder().decode([Entry].self, from: Data(bad.stdout.utf8))
        #expect(entries.map(\.valid) == [true, false])
        #expect(entries[1].errors.contains { $0.hasPrefix("xsd:") && $0.contains("oops") })
        #expect(entries[1].errors.contains { $0.contains("ClinicalDocument/languageCode/@code") })
    }

    @Test func buildRefusals() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let notPDF = dir.appendingPathComponent("x.pdf")
        try Data("hello".utf8).write(to: notPDF)
        let r = try CLI.run(["build", "--pdf", notPDF.path, "--meta", Self.sidecar, "--templates", Self.templates])
        #expect(r.status == 1)
        #expect(r.stderr.contains("not a PDF"))
        #expect(r.stdout.isEmpty)
        let pdf = dir.appendingPathComponent("ok.pdf")
        try TestPDF.make().write(to: pdf)
        let kind = try CLI.run(["build", "--kind", "radio", "--pdf", pdf.path, "--meta", Self.sidecar, "--templates", Self.templates])
        #expect(kind.status == 1 && kind.stderr.contains("unknown document kind"))
        let clash = try CLI.run(["build", "--kind", "cro", "--pdf", pdf.path, "--meta", Self.sidecar, "--templates", Self.templates])
        #expect(clash.status == 1 && clash.stderr.contains("contradicts"))
    }
}
