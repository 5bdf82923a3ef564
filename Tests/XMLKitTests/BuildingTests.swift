import Foundation
import Testing
@testable import XMLKit

@Suite struct BuildingTests {
    @Test func buildAndSerialise() throws {
        let doc = try XMLDocument(rootName: "ClinicalDocument", namespaceURI: "urn:hl7-org:v3")
        let root = try #require(doc.root)
        try root.declareNamespace("http://www.w3.org/2001/XMLSchema-instance", prefix: "xsi")
        let name = try root.addElement("name", namespaceURI: "urn:hl7-org:v3")
        try name.addText("</name><x>&amp; \"quoted\" 'single' ]]>")
        try name.setAttribute("use", "a\"b<c>&d'e")
        try name.setAttribute("type", "PN", namespaceURI: "http://www.w3.org/2001/XMLSchema-instance", prefix: "xsi")
        let other = try root.addElement("ext", namespaceURI: "urn:other", prefix: "o")
        try other.addText("tab\tnewline\n")

        let data = try doc.serialized()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"))
        #expect(!text.contains("<x>"))
        #expect(text.contains("xmlns=\"urn:hl7-org:v3\""))
        #expect(text.contains("xmlns:o=\"urn:other\""))
        // The name element was declared in the in-scope default namespace, not redeclared.
        #expect(text.components(separatedBy: "xmlns=\"urn:hl7-org:v3\"").count == 2)

        let back = try XMLDocument.parse(data)
        let r = try #require(back.root)
        #expect(r.elements.map(\.name) == ["name", "ext"])
        let n = r.elements[0]
        #expect(n.elements.isEmpty)
        #expect(n.text == "</name><x>&amp; \"quoted\" 'single' ]]>")
        #expect(n.attribute("use") == "a\"b<c>&d'e")
        #expect(n.attribute("type", namespaceURI: "http://www.w3.org/2001/XMLSchema-instance") == "PN")
        #expect(r.elements[1].namespaceURI == "urn:other")
        #expect(r.elements[1].text == "tab\tnewline\n")
    }

    @Test func controlCharactersAndBadNamesAreRefused() throws {
        let doc = try XMLDocument(rootName: "r")
        let root = try #require(doc.root)
        #expect(throws: XMLError.self) { try root.addText("a\u{01}b") }
        #expect(throws: XMLError.self) { try root.setAttribute("a", "x\u{0B}") }
        #expect(throws: XMLError.self) { try root.addText("\u{FFFE}") }
        #expect(throws: XMLError.self) { try root.addElement("a b") }
        #expect(throws: XMLError.self) { try root.addElement("x><y") }
        #expect(throws: XMLError.self) { try root.setAttribute("a=\"1\"", "v") }
        try root.addText("ok é 漢字 🙂")
        let back = try XMLDocument.parse(try doc.serialized())
        #expect(back.root?.text == "ok é 漢字 🙂")
    }

    @Test func subtreeSerialisation() throws {
        let doc = try XMLDocument.parse("<r xmlns='urn:a'><x a='1'><y/></x></r>")
        let x = try #require(doc.root?.elements.first)
        let text = String(decoding: try x.serialized(), as: UTF8.self)
        #expect(text == "<x a=\"1\"><y/></x>")
    }
}
