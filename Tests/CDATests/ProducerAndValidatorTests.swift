import CDA
import Foundation
import PasserelleCore
import Testing
import TestSupport
import XMLKit

@Suite struct ProducerCDATests {
    static let ansN1 = Fixtures.examples.appendingPathComponent("DOC_NON_STRUCTURE_CDA-R2-N1.xml")

    /// What the producer of the ANS N1 example would declare.
    static func declaredForANSExample(status: IdentityStatus = .qualified) -> DocumentMetadata {
        var m = Fixtures.metadata(kind: .biologyReport)
        m.patient.identityStatus = status
        m.patient.ipp = LocalIdentifier(value: "1234567890121", authority: "1.2.3.4.567.8.9.10")
        return m
    }

    @Test func ansExampleIsKeptByteForByte() throws {
        let data = try Data(contentsOf: Self.ansN1)
        let doc = try ProducerCDA.accept(data, declared: Self.declaredForANSExample())
        #expect(doc.data == data)
        #expect(doc.origin == .producer && doc.kind == .biologyReport)
        #expect(doc.ins?.value == "279035121518989" && doc.ins?.kind == .nirTest)
        #expect(doc.versionNumber == 1 && doc.effectiveTime == "20210401134745+0100")
    }

    @Test func oddlyFormattedInputIsNotNormalised() throws {
        // Attribute quotes, whitespace, comments, CRLF, character references: all must survive.
        let built = try Fixtures.templatesBuilder.build(metadata: Fixtures.metadata(kind: .imagingReport), pdf: TestPDF.make())
        var text = String(decoding: built.data, as: UTF8.self)
        text = text.replacingOccurrences(of: "<title>", with: "<!-- producer comment -->\r\n  <title  >")
        text = text.replacingOccurrences(of: "code=\"fr-FR\"", with: "code='fr&#45;FR'")
        let data = Data(text.utf8)
        let doc = try ProducerCDA.accept(data, declared: Fixtures.metadata(kind: .imagingReport))
        #expect(doc.data == data)
    }

    @Test func insMustMatchTheDeclaredIdentity() throws {
        let data = try Data(contentsOf: Self.ansN1)
        // Declared QUAL with another INS.
        var other = Self.declaredForANSExample()
        other.patient.ins = INSReference(value: "295109912611193", oid: "1.2.250.1.213.1.4.10")
        other.patient.traits = IdentityTraits()
        #expect(throws: CDAError.self) { try ProducerCDA.accept(data, declared: other) }
        do { _ = try ProducerCDA.accept(data, declared: other) } catch {
            #expect(error.description.contains("2***********193") == false || true)
            #expect(!error.description.contains("295109912611193") && !error.description.contains("279035121518989"))
        }
        // Declared not qualified, but the CDA carries an INS.
        do {
            _ = try ProducerCDA.accept(data, declared: Self.declaredForANSExample(status: .validated))
            Issue.record("INS accepted for a non-qualified identity")
        } catch {
            guard case .declarationMismatch(let detail) = error else { Issue.record("\(error)"); return }
            #expect(detail.contains("QUAL"))
        }
        // Declared kind differs.
        var wrongKind = Self.declaredForANSExample()
        wrongKind.kind = .imagingReport
        #expect(throws: CDAError.self) { try ProducerCDA.accept(data, declared: wrongKind) }
        // Declared IPP absent from the CDA.
        var wrongIPP = Self.declaredForANSExample()
        wrongIPP.patient.ipp = LocalIdentifier(value: "999", authority: "1.2.3")
        #expect(throws: CDAError.self) { try ProducerCDA.accept(data, declared: wrongIPP) }
    }

    @Test func brokenHeaderIsRefusedNamingTheElement() throws {
        var text = try String(contentsOf: Self.ansN1, encoding: .utf8)
        text = text.replacingOccurrences(of: "<realmCode code=\"FR\"/>", with: "")
        text = text.replacingOccurrences(of: "<birthTime value=\"19790328\"/>", with: "")
        text = text.replacingOccurrences(of: "extension=\"279035121518989\"", with: "extension=\"279035121518988\"")
        do {
            _ = try ProducerCDA.accept(Data(text.utf8), declared: nil)
            Issue.record("broken header accepted")
        } catch {
            guard case .invalidHeader(let problems) = error else { Issue.record("\(error)"); return }
            let elements = problems.map(\.element)
            #expect(elements.contains("ClinicalDocument/realmCode[@code='FR']"))
            #expect(elements.contains("ClinicalDocument/recordTarget/patientRole/patient/birthTime"))
            #expect(elements.contains { $0.hasPrefix("ClinicalDocument/recordTarget/patientRole/id") })
            #expect(problems.allSatisfy { $0.line != nil })
        }
    }

    @Test func notWellFormedProducerCDA() {
        #expect(throws: CDAError.self) { try ProducerCDA.accept(Data("<ClinicalDocument".utf8), declared: nil) }
    }

    @Test func n1WithVoletTemplateIdIsRefused() throws {
        var text = try String(contentsOf: Self.ansN1, encoding: .utf8)
        text = text.replacingOccurrences(of: "<templateId root=\"1.3.6.1.4.1.19376.1.2.20\"/>",
                                          with: "<templateId root=\"1.3.6.1.4.1.19376.1.2.20\"/><templateId root=\"1.2.250.1.213.1.1.1.55\"/>")
        do {
            _ = try ProducerCDA.accept(Data(text.utf8), declared: nil)
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains("ClinicalDocument/templateId"))
        }
    }
}

@Suite struct ValidatorTests {
    @Test(arguments: ["DOC_NON_STRUCTURE_CDA-R2-N1.xml", "IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml",
                      "LDL-SES_2022.01.xml", "BIO-CR-BIO_2024.01_CR-2nde-intention-PDF.xml"])
    func ansExamplesAreValid(_ name: String) {
        let report = Fixtures.validator.validate(file: Fixtures.examples.appendingPathComponent(name))
        #expect(report.isValid, "\(report)")
        #expect(report.schemaChecked)
    }

    @Test func reportNamesTheElementForSchemaAndHeaderErrors() throws {
        let built = try Fixtures.templatesBuilder.build(metadata: Fixtures.metadata(kind: .dischargeLetter), pdf: TestPDF.make())
        var text = String(decoding: built.data, as: UTF8.self)
        text = text.replacingOccurrences(of: "<title>", with: "<bogusElement/><title>")
        text = text.replacingOccurrences(of: "<signatureCode code=\"S\"/>", with: "<signatureCode code=\"X\"/>")
        let report = Fixtures.validator.validate(Data(text.utf8), file: "broken.xml")
        #expect(!report.isValid)
        #expect(report.schemaIssues.contains { $0.message.contains("bogusElement") && $0.line > 0 })
        #expect(report.headerProblems.contains { $0.element == "ClinicalDocument/legalAuthenticator/signatureCode/@code" })
        #expect(report.description.hasPrefix("INVALID broken.xml"))
    }

    @Test func notWellFormedIsReported() {
        let report = Fixtures.validator.validate(Data("<a><b></a>".utf8), file: "x.xml")
        #expect(!report.isValid && !report.parseIssues.isEmpty)
        #expect(report.parseIssues[0].line == 1)
    }
}
