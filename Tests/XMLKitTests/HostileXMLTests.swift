import Foundation
import Testing
import TestSupport
@testable import XMLKit

/// Safe parsing by construction: DOCTYPE refused (no entity can exist, so none can expand),
/// explicit byte and depth budgets, libxml2's text-node limit kept unless lifted.
@Suite(.serialized) struct HostileXMLTests {
    /// Parses `text` both ways (in memory and streaming from a file) and returns both errors.
    func refusals(_ text: String, options: XMLDocument.ParseOptions = .default) throws -> [XMLError] {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("hostile.xml")
        try Data(text.utf8).write(to: file)
        var errors: [XMLError] = []
        do { _ = try XMLDocument.parse(Data(text.utf8), options: options); Issue.record("parse accepted it") } catch let e as XMLError {
            errors.append(e)
        }
        do { _ = try XMLDocument.parseStreaming(file: file, options: options); Issue.record("parseStreaming accepted it") } catch let e as XMLError {
            errors.append(e)
        }
        return errors
    }

    func expectDoctypeRefused(_ text: String, options: XMLDocument.ParseOptions = .default,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        for error in try refusals(text, options: options) {
            guard case .doctypeRefused = error else {
                Issue.record("expected a DOCTYPE refusal, got \(error)", sourceLocation: sourceLocation)
                continue
            }
            #expect(error.isRefusal, sourceLocation: sourceLocation)
            #expect(error.description.hasPrefix("DOCTYPE refused"), sourceLocation: sourceLocation)
            #expect(error.description.contains("entity declarations refused"), sourceLocation: sourceLocation)
        }
    }

    /// Peak memory of `body` in this process (VmHWM reset first), in bytes.
    func peakGrowth(_ body: () throws -> Void) rethrows -> Int {
        let reset = ProcessMemory.resetPeak()
        let before = (reset ? ProcessMemory.resident() : ProcessMemory.peakResident()) ?? 0
        try body()
        return (ProcessMemory.peakResident() ?? 0) - before
    }

    @Test func billionLaughsIsRefusedInBoundedMemory() throws {
        let attack = HostileXML.billionLaughs()
        #expect(attack.utf8.count < 2048)
        // Even with the text-node limit lifted (the CDA setting, which also lifts libxml2's
        // own entity amplification checks in 2.9.x): the DOCTYPE stops the parse.
        let growth = try peakGrowth {
            try expectDoctypeRefused(attack)
            try expectDoctypeRefused(attack, options: .init(maxBytes: Int.max, allowLargeTextNodes: true))
        }
        #expect(growth < 64 << 20, "peak grew by \(growth >> 20) MB")
    }

    @Test func quadraticBlowupIsRefusedInBoundedMemory() throws {
        let attack = HostileXML.quadraticBlowup()
        let growth = try peakGrowth {
            try expectDoctypeRefused(attack, options: .init(maxBytes: Int.max, allowLargeTextNodes: true))
        }
        #expect(growth < 64 << 20, "peak grew by \(growth >> 20) MB")
    }

    @Test func everyDoctypeIsRefusedWithItsDeclaration() throws {
        let cases: [(String, String)] = [
            (HostileXML.externalDTD(system: "http://attacker.invalid/x.dtd"), "SYSTEM \"http://attacker.invalid/x.dtd\""),
            (HostileXML.externalDTD(system: "file:///etc/passwd"), "SYSTEM \"file:///etc/passwd\""),
            (HostileXML.parameterEntity(system: "file:///etc/passwd"), "<!DOCTYPE ClinicalDocument"),
            ("<!DOCTYPE r><r/>", "<!DOCTYPE r"),
            ("<?xml version=\"1.0\"?>\n<!DOCTYPE r PUBLIC \"-//X//DTD X//EN\" \"x.dtd\"><r/>", "PUBLIC \"-//X//DTD X//EN\" \"x.dtd\""),
        ]
        for (payload, named) in cases {
            for error in try refusals(payload) {
                guard case .doctypeRefused(let declaration, let line) = error else { Issue.record("\(payload): \(error)"); continue }
                #expect(declaration.contains(named), "\(declaration)")
                #expect(line >= 1)
            }
        }
    }

    @Test func deepNestingIsRefusedWithTheDepthLimit() throws {
        let attack = HostileXML.deepNesting(depth: 100_000)
        // Also with XML_PARSE_HUGE, under which libxml2 itself has no depth limit.
        for options in [XMLDocument.ParseOptions.default, .init(maxBytes: Int.max, allowLargeTextNodes: true)] {
            for error in try refusals(attack, options: options) {
                guard case .limitExceeded(.elementDepth, let limit, let found, _) = error else { Issue.record("\(error)"); continue }
                #expect(limit == XMLDocument.ParseOptions.defaultMaxDepth)
                #expect(found == limit + 1)
                #expect(error.description.contains("more than the limit of 256 levels"))
            }
        }
        // The limit is the caller's: exactly maxDepth levels pass, one more does not.
        let options = XMLDocument.ParseOptions(maxDepth: 10, budgetSource: "[test] depth")
        #expect(throws: Never.self) { try XMLDocument.parse(HostileXML.deepNesting(depth: 10), options: options) }
        for error in try refusals(HostileXML.deepNesting(depth: 11), options: options) {
            #expect(error.description == "XML elements nested 11 levels deep, more than the limit of 10 levels (maximum element depth)")
        }
    }

    @Test func byteBudgetIsCheckedBeforeParsing() throws {
        let text = "<r>" + String(repeating: "x", count: 2000) + "</r>"
        let options = XMLDocument.ParseOptions(maxBytes: 1000, budgetSource: "[cda] max_pdf_bytes")
        for error in try refusals(text, options: options) {
            guard case .limitExceeded(.documentBytes, 1000, let found, "[cda] max_pdf_bytes") = error else { Issue.record("\(error)"); continue }
            #expect(found == text.utf8.count)
            #expect(error.description.contains("more than the limit of 1000 bytes (from [cda] max_pdf_bytes)"))
        }
        #expect(throws: Never.self) { try XMLDocument.parse(text, options: .init(maxBytes: text.utf8.count)) }
        // A file is refused unread.
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("big.xml")
        try Data(text.utf8).write(to: file)
        #expect {
            _ = try XMLDocument.parse(contentsOf: file, options: options)
        } throws: { error in
            guard case XMLError.limitExceeded(.documentBytes, 1000, text.utf8.count, _) = error else { return false }
            return true
        }
    }

    @Test func textNodeLimitIsKeptUnlessLifted() throws {
        // Over libxml2's 10 MB text-node limit: refused by default, named as a limit.
        let body = String(repeating: "QUJD", count: 3_000_000)
        let text = "<r>\(body)</r>"
        for error in try refusals(text, options: .init(maxBytes: Int.max)) {
            guard case .limitExceeded(.textNodeBytes, XMLDocument.textNodeLimit, _, _) = error else { Issue.record("\(error)"); continue }
            #expect(error.description.contains("larger than the limit of 10000000 bytes"))
        }
        for error in try refusals("<r><![CDATA[\(body)]]></r>", options: .init(maxBytes: Int.max)) {
            guard case .limitExceeded(.textNodeBytes, _, _, _) = error else { Issue.record("\(error)"); continue }
        }
        let lifted = XMLDocument.ParseOptions(maxBytes: Int.max, allowLargeTextNodes: true)
        let doc = try XMLDocument.parse(text, options: lifted)
        #expect(doc.root?.text.utf8.count == body.utf8.count)
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("large.xml")
        try Data(text.utf8).write(to: file)
        let streamed = try XMLDocument.parseStreaming(file: file, options: lifted)
        // Cut to about streamingTextLimit (whole chunks are kept until the limit is reached).
        #expect((streamed.document.root?.text.utf8.count ?? 0) <= 2 * XMLDocument.streamingTextLimit)
    }

    @Test func aRefusalNeverBlocksTheNextParse() throws {
        _ = try? XMLDocument.parse(HostileXML.billionLaughs())
        _ = try? XMLDocument.parse(HostileXML.deepNesting(depth: 1000))
        let doc = try XMLDocument.parse("<r a=\"1\"><b>ok</b><![CDATA[ & more]]></r>")
        #expect(doc.root?.text == "ok & more")
        #expect(doc.root?.attribute("a") == "1")
        #expect(doc.root?.attributes.map(\.value) == ["1"])
    }

    @Test func textAndAttributesReadEscapedCharactersVerbatim() throws {
        let doc = try XMLDocument.parse("<r a=\"x&amp;y&#x41;&lt;\"><b>1&lt;2</b><c>&#233;<d>t</d></c>tail</r>")
        #expect(doc.root?.text == "1<2éttail")
        #expect(doc.root?.attribute("a") == "x&yA<")
        #expect(doc.root?.attribute("missing") == nil)
    }
}
