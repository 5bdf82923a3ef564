import Foundation
import Testing
import TestSupport
@testable import XMLKit

let hl7 = ["hl7": "urn:hl7-org:v3", "xsi": "http://www.w3.org/2001/XMLSchema-instance"]
let ansExamples = TestPaths.shared.appendingPathComponent("conformance/cda/examples")

@Suite struct XPathTests {
    @Test func namespacedQueriesOnANSExample() throws {
        let doc = try XMLDocument.parse(contentsOf: ansExamples.appendingPathComponent("DOC_NON_STRUCTURE_CDA-R2-N1.xml"))
        #expect(try doc.count("/hl7:ClinicalDocument/hl7:templateId", namespaces: hl7) == 3)
        #expect(try doc.string("/hl7:ClinicalDocument/hl7:code/@code", namespaces: hl7) == "11502-2")
        #expect(try doc.string("//hl7:recordTarget/hl7:patientRole/hl7:id[@root='1.2.250.1.213.1.4.10']/@extension",
                               namespaces: hl7) == "279035121518989")
        #expect(try doc.string("//hl7:patient/hl7:name/hl7:family[@qualifier='BR']", namespaces: hl7) == "PAT-TROIS")
        let text = try #require(try doc.nodes("//hl7:nonXMLBody/hl7:text", namespaces: hl7).first)
        #expect(text.attribute("mediaType") == "application/pdf")
        #expect(text.text.hasPrefix("JVBERi0"))
        #expect(text.line > 300)
        // The same prefix mapped to another URI finds nothing: matching is by namespace URI.
        #expect(try doc.count("//hl7:templateId", namespaces: ["hl7": "urn:other"]) == 0)
        // Unprefixed names never match elements in the default namespace (XPath 1.0).
        #expect(try doc.count("//templateId") == 0)
        // Relative to a context node.
        let patientRole = try #require(try doc.nodes("//hl7:patientRole", namespaces: hl7).first)
        #expect(try patientRole.count("hl7:id", namespaces: hl7) == 2)
        if case .number(let n) = try doc.evaluate("count(//hl7:author)", namespaces: hl7) {
            #expect(n == 1)
        } else { Issue.record("count() did not yield a number") }
        if case .boolean(let b) = try doc.evaluate("boolean(//hl7:legalAuthenticator)", namespaces: hl7) {
            #expect(b)
        } else { Issue.record("boolean() did not yield a boolean") }
    }

    @Test func invalidExpressionAndUnknownPrefixFail() throws {
        let doc = try XMLDocument.parse("<r/>")
        do {
            _ = try doc.nodes("//x[")
            Issue.record("invalid XPath accepted")
        } catch let error as XMLError {
            guard case .xpath(let expr, let issues) = error else { Issue.record("wrong error"); return }
            #expect(expr == "//x[")
            #expect(!issues.isEmpty)
        }
        #expect(throws: XMLError.self) { try doc.nodes("//nope:x") }
        #expect(throws: XMLError.self) { try doc.nodes("count(/r)") }
    }
}
