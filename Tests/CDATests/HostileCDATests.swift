import CDA
import Foundation
import PasserelleCore
import Testing
import TestSupport
import XMLKit

/// A producer CDA carrying a DOCTYPE (entity expansion, external DTD, parameter entity) or
/// nested too deep is refused, in memory and streaming, and by the validator, with a reason
/// that names the problem; the byte budget comes from `[cda] max_pdf_bytes`.
@Suite struct HostileCDATests {
    typealias Attack = HostileXML.Attack

    func valid() throws -> (Data, DocumentMetadata) {
        let metadata = Fixtures.metadata(kind: .imagingReport)
        return (try Fixtures.templatesBuilder.build(metadata: metadata, pdf: TestPDF.make()).data, metadata)
    }

    @Test(arguments: Attack.allCases)
    func everyAttackIsRefusedWithItsReason(_ attack: Attack) throws {
        let (data, metadata) = try valid()
        #expect(throws: Never.self) { try ProducerCDA.accept(data, declared: metadata) }
        let hostile = attack.inserted(into: data)
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("hostile.xml")
        try hostile.write(to: url)

        var reasons: [String] = []
        do { _ = try ProducerCDA.accept(hostile, declared: metadata); Issue.record("accepted in memory") } catch { reasons.append(error.description) }
        do { _ = try ProducerCDA.accept(file: try CDAFile.measure(url), declared: metadata); Issue.record("accepted streaming") } catch {
            reasons.append(error.description)
        }
        let validator = try CDAValidator(schema: nil)
        for report in [validator.validate(hostile, file: "hostile.xml"), validator.validate(streaming: url, file: "hostile.xml")] {
            #expect(!report.isValid)
            reasons.append(report.messages.joined(separator: "\n"))
        }
        for reason in reasons {
            let expected = attack == .deepNesting ? ["more than the limit of 256 levels"] : ["DOCTYPE refused", "entity declarations refused"]
            for text in expected { #expect(reason.contains(text), "\(attack): \(reason)") }
            #expect(!reason.contains("lollol") && !reason.contains("root:"), "\(attack): expanded or loaded: \(reason)")
        }
        #expect(reasons[0].hasPrefix(attack == .deepNesting ? "the CDA document is refused" : "DOCTYPE not allowed in a CDA"))
    }

    @Test func byteBudgetFollowsMaxPDFBytes() throws {
        let (data, metadata) = try valid()
        // 1 KiB of PDF: 4/3 of it, line breaks and 4 MiB of markup.
        let budget = CDAParseBudget.options(maxPDFBytes: 1024)
        #expect(budget.maxBytes == 1368 + 42 + CDAParseBudget.markupAllowance)
        #expect(budget.allowLargeTextNodes)
        #expect(throws: Never.self) { try ProducerCDA.accept(data, declared: metadata, budget: budget) }
        let padded = Data(String(decoding: data, as: UTF8.self)
            .replacingOccurrences(of: "</title>", with: String(repeating: " ", count: budget.maxBytes) + "</title>").utf8)
        do {
            _ = try ProducerCDA.accept(padded, declared: metadata, budget: budget)
            Issue.record("a CDA over its byte budget was accepted")
        } catch {
            #expect(error.description.contains("more than the limit of \(budget.maxBytes) bytes (from [cda] max_pdf_bytes)"), "\(error)")
        }
        // The configured limit reaches the pipeline's parse through the builder's options.
        #expect(CDABuilder.Options(maximumPDFBytes: 1024).parseBudget == budget)
    }
}
