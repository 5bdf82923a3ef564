import Foundation
import Testing
import TestSupport
@testable import XMLKit

@Suite struct ParsingTests {
    @Test func parseErrorCarriesLibxmlMessageAndLine() throws {
        let text = "<?xml version=\"1.0\"?>\n<a>\n  <b>\n  </c>\n</a>\n"
        do {
            _ = try XMLDocument.parse(text)
            Issue.record("ill-formed XML was accepted")
        } catch let error as XMLError {
            guard case .parse(let issues) = error else { Issue.record("wrong error \(error)"); return }
            let first = try #require(issues.first)
            #expect(first.line == 4)
            #expect(first.message.contains("mismatch"), "libxml2's message: \(first.message)")
            #expect(error.description.contains("4:"))
        }
    }

    @Test func emptyInputIsAParseError() {
        #expect(throws: XMLError.self) { try XMLDocument.parse(Data()) }
    }

    @Test func missingFileIsAnIOError() {
        do {
            _ = try XMLDocument.parse(contentsOf: URL(fileURLWithPath: "/nonexistent/x.xml"))
            Issue.record("no error")
        } catch let error as XMLError {
            guard case .io(let path, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(path == "/nonexistent/x.xml")
        } catch { Issue.record("unexpected \(error)") }
    }

    @Test func externalEntitiesAreNeverExpanded() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let secret = dir.appendingPathComponent("secret.txt")
        try Data("TOP-SECRET-MARKER".utf8).write(to: secret)
        let dtd = dir.appendingPathComponent("evil.dtd")
        try Data("<!ENTITY leak \"TOP-SECRET-MARKER\">".utf8).write(to: dtd)

        let payloads = [
            // Classic XXE: external general entity.
            "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY xxe SYSTEM \"file://\(secret.path)\">]><r>&xxe;</r>",
            // Through an external parameter entity that would declare the entity.
            "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY % p SYSTEM \"file://\(dtd.path)\"> %p;]><r>&leak;</r>",
            // External DTD subset.
            "<?xml version=\"1.0\"?><!DOCTYPE r SYSTEM \"file://\(dtd.path)\"><r>&leak;</r>",
            // Entity used in an attribute value.
            "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY xxe SYSTEM \"file://\(secret.path)\">]><r a=\"&xxe;\"/>",
        ]
        for payload in payloads {
            var rendered = ""
            if let doc = try? XMLDocument.parse(payload) {
                rendered = String(decoding: try doc.serialized(), as: UTF8.self) + (doc.root?.text ?? "")
                    + (doc.root?.attributes.map(\.value).joined() ?? "")
            }
            #expect(!rendered.contains("TOP-SECRET-MARKER"), "expanded: \(payload)")
        }
    }

    /// The entity points at a FIFO with no writer: if libxml2 ever opened it, the parse would
    /// block (a plain file could be read without trace). Proves the file is not even opened.
    @Test func externalEntityFileIsNeverOpened() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("trap.fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let payloads = [
            "<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file://\(fifo)\">]><r>&xxe;</r>",
            "<!DOCTYPE r [<!ENTITY % p SYSTEM \"file://\(fifo)\"> %p;]><r/>",
            "<!DOCTYPE r SYSTEM \"\(fifo)\"><r/>",
        ]
        for payload in payloads {
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                _ = try? XMLDocument.parse(payload)
                done.signal()
            }
            let finished = done.wait(timeout: .now() + 5) == .success
            if !finished {
                // Release the blocked reader so the test process can finish.
                let fd = open(fifo, O_WRONLY | O_NONBLOCK)
                if fd >= 0 { close(fd) }
                _ = done.wait(timeout: .now() + 5)
            }
            #expect(finished, "libxml2 opened the entity file for: \(payload)")
        }
    }

    /// Errors are collected per call: concurrent parses never see each other's messages.
    @Test func concurrentParsesKeepTheirErrors() async {
        let results = await withTaskGroup(of: (Int, [XMLIssue]).self) { group in
            for i in 0..<32 {
                group.addTask {
                    do {
                        _ = try XMLDocument.parse("<r>\n<open\(i)>\n</close\(i)>\n</r>")
                        return (i, [])
                    } catch {
                        return (i, (error as? XMLError)?.issues ?? [])
                    }
                }
            }
            var out: [Int: [XMLIssue]] = [:]
            for await (i, issues) in group { out[i] = issues }
            return out
        }
        for i in 0..<32 {
            let issues = results[i] ?? []
            #expect(!issues.isEmpty)
            let mentioned = Set(issues.flatMap { issue in
                issue.message.matches(of: /open[0-9]+/).map { String($0.output) }
            })
            #expect(mentioned == ["open\(i)"], "\(issues)")
            #expect(issues.contains { $0.message.contains("open\(i)") && $0.line == 3 })
        }
    }

    @Test func treeAccessors() throws {
        let doc = try XMLDocument.parse("""
            <r xmlns="urn:a" xmlns:b="urn:b"><!--c--><x k="1" b:k="2">t<y>u</y></x><b:z/></r>
            """)
        let root = try #require(doc.root)
        #expect(root.name == "r" && root.namespaceURI == "urn:a" && root.prefix == nil)
        #expect(root.children.count == 3)
        #expect(root.elements.map(\.name) == ["x", "z"])
        let x = try #require(root.firstElement(named: "x"))
        #expect(x.attribute("k") == "1")
        #expect(x.attribute("k", namespaceURI: "urn:b") == "2")
        #expect(x.attributes.count == 2)
        #expect(x.text == "tu")
        #expect(x.parent == root)
        #expect(root.parent == nil)
        #expect(root.elements[1].namespaceURI == "urn:b" && root.elements[1].prefix == "b")
        #expect(root.children[0].kind == .comment)
    }

    @Test func nodesKeepTheirDocumentAlive() throws {
        func makeNode() throws -> XMLNode {
            let doc = try XMLDocument.parse("<r><child>kept</child></r>")
            return try #require(doc.root?.elements.first)
        }
        let node = try makeNode()
        #expect(node.text == "kept")
        #expect(node.parent?.name == "r")
    }

    @Test func hugeTextNodeParses() throws {
        // Over libxml2's 10 MB default text-node limit: needs XML_PARSE_HUGE, which the
        // caller asks for (a CDA's base64 PDF body); HostileXMLTests checks the default refuses it.
        let body = String(repeating: "QUJD", count: 3_000_000)
        let doc = try XMLDocument.parse("<r>\(body)</r>", options: .init(maxBytes: 16 << 20, allowLargeTextNodes: true))
        #expect(doc.root?.text.utf8.count == body.utf8.count)
    }

    @Test func lineNumbersPast65535() throws {
        let text = "<r>\n" + String(repeating: "<a/>\n", count: 70_000) + "<last/></r>"
        let doc = try XMLDocument.parse(text)
        let last = try #require(doc.root?.elements.last)
        #expect(last.line == 70_002)
    }
}
