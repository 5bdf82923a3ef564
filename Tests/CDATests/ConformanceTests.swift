import CDA
import Foundation
import PasserelleCore
import Testing
import TestSupport
import XMLKit

/// Every kind, with and without a qualified INS, initial version and replacement, checked by
/// the official ANS chain (`../shared/tools/cda-validate`: XSD + structuration minimale
/// Schematron) in one batch, together with broken documents that the chain must reject.
@Suite struct ConformanceTests {
    struct Built {
        var name: String
        var document: CDADocument
        var qualified: Bool
    }

    static func buildAll() throws -> [Built] {
        var out: [Built] = []
        for kind in DocumentKind.allCases {
            for qualified in [true, false] {
                let pdf = TestPDF.make(text: "\(kind.shortName) \(qualified)")
                let initial = try Fixtures.templatesBuilder.build(metadata: Fixtures.metadata(kind: kind, qualified: qualified), pdf: pdf)
                let replacement = try Fixtures.templatesBuilder.build(
                    metadata: Fixtures.metadata(kind: kind, qualified: qualified, replacing: initial), pdf: pdf)
                let tag = "\(kind.shortName)-\(qualified ? "qual" : "unqual")"
                out.append(Built(name: "\(tag)-v1.xml", document: initial, qualified: qualified))
                out.append(Built(name: "\(tag)-v2.xml", document: replacement, qualified: qualified))
            }
        }
        return out
    }

    struct ChainResult: Decodable {
        var file: String
        var valid: Bool
        var errors: [String]
    }

    @Test func officialChainAcceptsEveryBuiltDocumentAndRejectsBrokenOnes() throws {
        let built = try Self.buildAll()
        #expect(built.count == 20)
        let dir = try TestPaths.temporaryDirectory("cda-conformance")
        defer { try? FileManager.default.removeItem(at: dir) }
        var good: [String] = []
        for item in built {
            let url = dir.appendingPathComponent(item.name)
            try item.document.data.write(to: url)
            good.append(url.path)
        }
        // Broken on purpose, each in a way the chain must notice: a schema error, and a
        // Schematron-only error (no legalAuthenticator, which the XSD allows).
        let sample = String(decoding: built[0].document.data, as: UTF8.self)
        let xsdBroken = sample.replacingOccurrences(of: "<languageCode code=\"fr-FR\"/>",
                                                    with: "<languageCode code=\"fr-FR\"/><bogusElement/>")
        let schBroken = try #require(sample.range(of: "<legalAuthenticator>").flatMap { start in
            sample.range(of: "</legalAuthenticator>\n").map { sample.replacingCharacters(in: start.lowerBound..<$0.upperBound, with: "") }
        })
        #expect(xsdBroken != sample && schBroken != sample)
        let broken = [("broken-xsd.xml", xsdBroken), ("broken-schematron.xml", schBroken)].map { name, text in
            let url = dir.appendingPathComponent(name)
            try? Data(text.utf8).write(to: url)
            return url.path
        }

        let tool = TestPaths.shared.appendingPathComponent("tools/cda-validate").path
        let run = try ProcessRunner.run(tool, ["--json"] + good + broken)
        let results = try JSONDecoder().decode([ChainResult].self, from: Data(run.stdout.utf8))
        #expect(results.count == good.count + broken.count, "stderr: \(run.stderr)")
        let byFile = Dictionary(uniqueKeysWithValues: results.map { ($0.file, $0) })
        for path in good {
            let result = try #require(byFile[path])
            #expect(result.valid, "\(URL(fileURLWithPath: path).lastPathComponent) INVALID: \(result.errors.joined(separator: " | "))")
        }
        for path in broken {
            let result = try #require(byFile[path])
            #expect(!result.valid, "\(path) should be INVALID")
        }
        #expect(byFile[broken[0]]?.errors.contains { $0.hasPrefix("xsd:") && $0.contains("bogusElement") } == true)
        #expect(byFile[broken[1]]?.errors.contains { $0.contains("legalAuthenticator") } == true,
                "\(byFile[broken[1]]?.errors ?? [])")
        #expect(run.status == 1)   // some files (the broken ones) are invalid

        // Our own validator agrees on every file.
        for path in good {
            let report = Fixtures.validator.validate(file: URL(fileURLWithPath: path))
            #expect(report.isValid, "\(report)")
        }
        for path in broken {
            #expect(!Fixtures.validator.validate(file: URL(fileURLWithPath: path)).isValid)
        }
    }
}
