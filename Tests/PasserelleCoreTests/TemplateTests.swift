import Foundation
import PasserelleCore
import Testing

@Suite struct TemplateTests {
    @Test func placeholdersAreEscaped() throws {
        let t = try Template("<a x=\"{{v}}\">{{v}}</a>")
        #expect(try t.render(["v": "<&>\"'"]) == "<a x=\"&lt;&amp;&gt;&quot;&apos;\">&lt;&amp;&gt;&quot;&apos;</a>")
        #expect(try t.render(["v": "a\tb\nc\rd"]) == "<a x=\"a&#9;b&#10;c&#13;d\">a&#9;b&#10;c&#13;d</a>")
    }

    @Test func blocksAndStandaloneLines() throws {
        let t = try Template("""
            <r>
              {{#opt}}
              <o>{{opt}}</o>
              {{/opt}}
              {{^opt}}
              <none/>
              {{/opt}}
            {{! a comment line }}
            </r>
            """)
        #expect(try t.render(["opt": "1"]) == "<r>\n  <o>1</o>\n</r>")
        #expect(try t.render([:]) == "<r>\n  <none/>\n</r>")
        // An empty value still counts as present (a flag).
        #expect(try t.render(["opt": ""]) == "<r>\n  <o></o>\n</r>")
        #expect(t.names == ["opt"])
    }

    @Test func inlineBlocksKeepTheirLine() throws {
        let t = try Template("<id root=\"{{r}}\"{{#e}} extension=\"{{e}}\"{{/e}}/>\n")
        #expect(try t.render(["r": "1.2"]) == "<id root=\"1.2\"/>\n")
        #expect(try t.render(["r": "1.2", "e": "X"]) == "<id root=\"1.2\" extension=\"X\"/>\n")
    }

    @Test func errors() throws {
        #expect(throws: TemplateError.self) { try Template("{{#a}}x") }
        #expect(throws: TemplateError.self) { try Template("{{#a}}x{{/b}}") }
        #expect(throws: TemplateError.self) { try Template("x\n{{a") }
        #expect(throws: TemplateError.self) { try Template("{{a b}}") }
        do {
            _ = try Template("line1\nline2 {{/x}}", name: "t.xml")
            Issue.record("accepted")
        } catch {
            guard case .syntax(let name, let line, _) = error else { Issue.record("\(error)"); return }
            #expect(name == "t.xml" && line == 2)
        }
        let t = try Template("{{a}}{{#b}}{{c}}{{/b}}")
        #expect(throws: TemplateError.missingValue(template: "template", name: "a")) { try t.render([:]) }
        #expect(try t.render(["a": "1"]) == "1")   // c is only needed when b is rendered
        #expect(throws: TemplateError.self) { try t.render(["a": "1", "b": ""]) }
        #expect(throws: TemplateError.invalidCharacter(template: "template", name: "a", scalar: 1)) { try t.render(["a": "\u{1}"]) }
    }

    @Test func plainTextEscapingLeavesValuesAlone() throws {
        let t = try Template("Bonjour {{name}},", escaping: .none)
        #expect(try t.render(["name": "<Dr> & Co"]) == "Bonjour <Dr> & Co,")
    }
}
