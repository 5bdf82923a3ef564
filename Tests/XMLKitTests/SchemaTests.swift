import Foundation
import Testing
import TestSupport
@testable import XMLKit

/// The CDA schema is compiled once for the whole suite, as the service does.
let cdaSchema: Result<XMLSchema, Error> = Result {
    try XMLSchema(contentsOf: TestPaths.shared.appendingPathComponent("conformance/cda/xsd/cda/CDA_extended.xsd"))
}

@Suite struct SchemaTests {
    static let examples = [
        "DOC_NON_STRUCTURE_CDA-R2-N1.xml", "IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml",
        "LDL-SES_2022.01.xml", "BIO-CR-BIO_2024.01_CR-2nde-intention-PDF.xml",
    ]

    @Test(arguments: examples)
    func ansExampleIsValid(_ name: String) throws {
        let schema = try cdaSchema.get()
        let doc = try XMLDocument.parse(contentsOf: ansExamples.appendingPathComponent(name))
        let issues = schema.validate(doc).filter { $0.severity != .warning }
        #expect(issues.isEmpty, "\(issues)")
    }

    static func broken(element: String) throws -> Data {
        var text = try String(contentsOf: ansExamples.appendingPathComponent("DOC_NON_STRUCTURE_CDA-R2-N1.xml"), encoding: .utf8)
        let range = try #require(text.range(of: "<languageCode code=\"fr-FR\"/>"))
        text.replaceSubrange(range, with: "<languageCode code=\"fr-FR\"/><\(element)/>")
        return Data(text.utf8)
    }

    @Test func brokenDocumentFailsNamingTheElement() throws {
        let schema = try cdaSchema.get()
        let issues = schema.validate(try Self.broken(element: "bogusElement"), url: "broken.xml")
        let first = try #require(issues.first)
        #expect(first.message.contains("bogusElement"), "\(first)")
        #expect(first.line == 48)  // the line of <languageCode> in the ANS example, where it was inserted
        #expect(first.severity == .error)
    }

    @Test func parseErrorsComeBackAsIssues() throws {
        let schema = try cdaSchema.get()
        let issues = schema.validate(Data("<ClinicalDocument xmlns='urn:hl7-org:v3'>".utf8))
        #expect(!issues.isEmpty)
    }

    @Test func missingSchemaFileIsReported() {
        #expect(throws: XMLError.self) { try XMLSchema(contentsOf: URL(fileURLWithPath: "/nonexistent.xsd")) }
    }

    @Test func brokenSchemaReportsLibxmlMessage() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let xsd = dir.appendingPathComponent("bad.xsd")
        try Data("""
            <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
              <xs:element name="a" type="missingType"/>
            </xs:schema>
            """.utf8).write(to: xsd)
        do {
            _ = try XMLSchema(contentsOf: xsd)
            Issue.record("broken schema accepted")
        } catch let error as XMLError {
            #expect(error.description.contains("missingType"), "\(error)")
        }
    }

    /// Concurrent validations share one schema; each sees its own errors only.
    @Test func concurrentValidationsKeepErrorsApart() async throws {
        let schema = try cdaSchema.get()
        let names = (0..<8).map { "bogus\($0)" }
        let inputs = try names.map { try Self.broken(element: $0) }
        let results = await withTaskGroup(of: (Int, [XMLIssue]).self) { group in
            for (i, data) in inputs.enumerated() {
                group.addTask { (i, schema.validate(data)) }
            }
            var out: [Int: [XMLIssue]] = [:]
            for await (i, issues) in group { out[i] = issues }
            return out
        }
        for (i, name) in names.enumerated() {
            let issues = try #require(results[i])
            #expect(!issues.isEmpty)
            for issue in issues {
                #expect(issue.message.contains(name + "'") || !issue.message.contains("bogus"), "\(issue) leaked into \(name)")
            }
            #expect(issues.contains { $0.message.contains(name) })
        }
    }
}
