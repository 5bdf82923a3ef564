import Foundation
import Testing
import TestSupport
@testable import XMLKit

/// Exclusive C14N compared with Python lxml's output on the same input bytes.
@Suite struct CanonicalizationTests {
    static let sample = """
        <?xml version="1.0" encoding="UTF-8"?>
        <!-- leading comment -->
        <root xmlns="urn:default" xmlns:a="urn:a" xmlns:unused="urn:unused" xmlns:keep="urn:keep"
              z="last" a:attr="x" b='single "quoted"'>
          <a:child  c="3"   b="2" a="1">text &amp; &lt;more&gt; &#x20AC;<!-- inner comment --></a:child>
          <Signed Id="target" xmlns:s="urn:s">
            <s:inner keep:attr="q" xml:lang="fr">déjà<empty/></s:inner>
            <![CDATA[ cdata <stuff> ]]>
            <?pi data?>
          </Signed>
        </root>
        """

    static func lxml(_ input: URL, exclusive: Bool, comments: Bool, prefixes: [String], subtreeId: String?) throws -> Data {
        let python = TestPaths.testVenv.appendingPathComponent("bin/python").path
        let script = """
            import sys
            from lxml import etree
            path, excl, comments, prefixes, sub = sys.argv[1:6]
            tree = etree.parse(path)
            node = tree if sub == "-" else tree.xpath("//*[@Id=$i]", i=sub)[0]
            kw = dict(method="c14n", exclusive=excl == "1", with_comments=comments == "1")
            if prefixes:
                kw["inclusive_ns_prefixes"] = prefixes.split(",")
            sys.stdout.buffer.write(etree.tostring(node, **kw))
            """
        let result = try ProcessRunner.run(python, ["-c", script, input.path, exclusive ? "1" : "0", comments ? "1" : "0",
                                                   prefixes.joined(separator: ","), subtreeId ?? "-"])
        #expect(result.succeeded, "lxml failed: \(result.stderr)")
        return Data(result.stdout.utf8)
    }

    @Test(arguments: [
        (true, false, [String]()), (true, true, []), (true, false, ["keep"]), (true, false, ["#default", "unused"]),
        (false, false, []), (false, true, []),
    ])
    func wholeDocumentMatchesLxml(exclusive: Bool, comments: Bool, prefixes: [String]) throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("sample.xml")
        try Data(Self.sample.utf8).write(to: file)
        let doc = try XMLDocument.parse(contentsOf: file)
        let ours = try doc.canonicalized(CanonicalizationOptions(exclusive: exclusive, withComments: comments,
                                                                 inclusiveNamespacePrefixes: prefixes))
        let theirs = try Self.lxml(file, exclusive: exclusive, comments: comments, prefixes: prefixes, subtreeId: nil)
        #expect(!ours.isEmpty)
        #expect(String(decoding: ours, as: UTF8.self) == String(decoding: theirs, as: UTF8.self))
    }

    @Test(arguments: [(false, [String]()), (true, []), (false, ["keep"]), (false, ["#default"])])
    func subtreeMatchesLxml(comments: Bool, prefixes: [String]) throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("sample.xml")
        try Data(Self.sample.utf8).write(to: file)
        let doc = try XMLDocument.parse(contentsOf: file)
        let signed = try #require(try doc.nodes("//*[@Id='target']").first)
        let ours = try signed.canonicalized(CanonicalizationOptions(withComments: comments, inclusiveNamespacePrefixes: prefixes))
        let theirs = try Self.lxml(file, exclusive: true, comments: comments, prefixes: prefixes, subtreeId: "target")
        #expect(String(decoding: ours, as: UTF8.self) == String(decoding: theirs, as: UTF8.self))
    }

    /// A known answer written by hand from the Exclusive C14N rules, independent of libxml2:
    /// unused namespaces dropped, the used ones declared where first used, attributes sorted
    /// (no-namespace first, then by namespace URI), empty elements expanded, no declaration.
    @Test func knownAnswer() throws {
        let doc = try XMLDocument.parse("""
            <?xml version="1.0"?>
            <r xmlns="urn:d" xmlns:u="urn:u" xmlns:p="urn:p"><p:e b="2" a="1" p:z="3"/><f  x = 'y' /></r>
            """)
        let whole = String(decoding: try doc.canonicalized(), as: UTF8.self)
        #expect(whole == #"<r xmlns="urn:d"><p:e xmlns:p="urn:p" a="1" b="2" p:z="3"></p:e><f x="y"></f></r>"#)
        let sub = try #require(doc.root?.elements.first)
        #expect(String(decoding: try sub.canonicalized(), as: UTF8.self) == #"<p:e xmlns:p="urn:p" a="1" b="2" p:z="3"></p:e>"#)
        let inclusive = String(decoding: try sub.canonicalized(CanonicalizationOptions(inclusiveNamespacePrefixes: ["u"])), as: UTF8.self)
        #expect(inclusive == #"<p:e xmlns:p="urn:p" xmlns:u="urn:u" a="1" b="2" p:z="3"></p:e>"#)
    }
}
