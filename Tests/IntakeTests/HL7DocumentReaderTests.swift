// Fixtures: the OBX/PRT groups of Tests/IntakeTests/Fixtures/*.hl7 are the example messages of
// the ANS guide "Transmission de documents CDA-R2 en HL7v2" (exemples.md), Copyright (c) 2022
// Agence du Numérique en Santé (ANS), MIT License (see Fixtures/LICENSE-ANS). Lines the guide
// wraps were joined; the MSH/PID/PV1/ORC/OBR (or EVN/TXA) headers were added for the tests,
// with the ANS test INS 279035121518989 (INS-NIR de test).
import Foundation
import Testing
import PasserelleCore
import TestSupport
@testable import Intake

enum Fixture {
    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("Tests/IntakeTests/Fixtures/\(name)"))
    }
    static func text(_ name: String) throws -> String { String(decoding: try data(name), as: UTF8.self) }
}

@Suite struct HL7DocumentReaderTests {
    let reader = HL7DocumentReader()
    let paris = TimeZone(identifier: "Europe/Paris")!

    func zoned(_ iso: String) -> ZonedDateTime { ZonedDateTime(iso: iso)! }

    @Test func oruBiologyNew() throws {
        let doc = try reader.read(try Fixture.data("oru-ex0-biology-new.hl7"))
        let m = doc.metadata
        #expect(doc.action == .new)
        #expect(m.action == .new)
        #expect(doc.controlID == "12345")
        #expect(m.kind == .biologyReport)
        #expect(doc.content == .cda(Data("Document médical au format CDA".utf8)))
        // Patient
        #expect(m.patient.ins == INSReference(value: "279035121518989", oid: "1.2.250.1.213.1.4.10"))
        #expect(m.patient.ipp == LocalIdentifier(value: "123456", authority: "1.2.250.1.999.1.1"))
        #expect(m.patient.identityStatus == .qualified)
        let t = m.patient.traits
        #expect(t.birthName == "TESTINS")
        #expect(t.firstBirthGivenName == "MARIE")
        #expect(t.birthGivenNames == "MARIE ISABELLE")
        #expect(t.usedName == "DURAND")
        #expect(t.birthDate == CalendarDate(year: 1979, month: 3, day: 15))
        #expect(t.sex == .female)
        #expect(t.birthPlace == "51215")
        #expect(m.patient.address?.city == "REIMS")
        #expect(m.patient.address?.postalCode == "51100")
        // Stay and dates (no offset in the message: Europe/Paris, summer time)
        #expect(m.stay?.id == LocalIdentifier(value: "V2023001", authority: "1.2.250.1.999.1.2"))
        #expect(m.stay?.admission == zoned("2023-09-25T10:15:00+02:00"))
        #expect(m.stay?.admission?.utcOffsetSeconds == 7200)
        #expect(m.stay?.discharge == zoned("2023-10-02T16:00:00+02:00"))
        #expect(m.effectiveTime == zoned("2023-10-03T08:00:00+02:00"))
        // Routing
        #expect(m.destinations == [.dmp, .mssantePS, .mssantePatient])
        #expect(m.flags == [.ackReception, .ackLecture])
        #expect(m.mssante?.recipients == ["adam.hoda@test-ci-sis.mssante.fr", "appliExemple@hopitalB.mssante.fr"])
        #expect(m.mssante?.replyTo == "adam.hoda@test-ci-sis.mssante.fr")
        #expect(m.mssante?.professionalBody?.hasPrefix("Cher confrère, vous trouverez ci-joint le CR") == true)
        #expect(m.author?.rpps == "01234567866")
        #expect(m.author?.familyName == "Dupont")
        #expect(m.structure == HealthStructure(finess: "300017985", name: "Organisation-X"))
        // The identity maps cleanly: traits consistent with the INS, QUAL with its traits.
        let patientProblems = m.validate().filter { $0.path.hasPrefix("patient") }
        #expect(patientProblems.isEmpty, "\(patientProblems)")
        #expect(m.patient.shareableINS?.kind == .nirTest)
    }

    @Test func oruImagingMaskedForProfessionals() throws {
        let doc = try reader.read(try Fixture.data("oru-ex1-imaging-masked.hl7"))
        #expect(doc.metadata.kind == .imagingReport)
        #expect(doc.metadata.flags == [.masquePS, .ackReception, .ackLecture])
        #expect(doc.metadata.restrictionFlags == [.masquePS])
        #expect(doc.metadata.destinations == [.dmp, .mssantePatient])
        #expect(doc.metadata.mssante?.recipients == [])
        #expect(doc.metadata.mssante?.patientBody == "Bonjour M.Dupont, ci-joint votre CR d’imagerie.")
        #expect(doc.content == .cda(Data("Document medcial au format CDA niveau 1".utf8)))  // sic, as in the guide
    }

    @Test func oruDeleteAndReplace() throws {
        let deletion = try reader.read(try Fixture.data("oru-ex2-imaging-delete.hl7"))
        #expect(deletion.action == .delete)
        #expect(deletion.metadata.mssante?.recipients == ["radiologie@hopitalA.mssante.fr", "adam.hoda@test-ci-sis.mssante.fr"])
        let replacement = try reader.read(try Fixture.data("oru-ex3-imaging-replace.hl7"))
        #expect(replacement.action == .replace)
        // In an ORU the replaced document's id is in the CDA (relatedDocument), not the message.
        #expect(replacement.metadata.parentID == nil)
        #expect(replacement.metadata.versionNumber == 2)
    }

    @Test func mdmNewAndReplace() throws {
        let new = try reader.read(try Fixture.data("mdm-ex1-imaging-masked.hl7"))
        #expect(new.action == .new)
        #expect(new.metadata.id == InstanceIdentifier(root: "1.2.250.2345.3245.13", extension: "58132"))
        #expect(new.metadata.parentID == nil)
        #expect(new.metadata.effectiveTime == zoned("2023-10-03T08:00:00+02:00"))
        #expect(new.metadata.author?.rpps == "01234567866")
        #expect(new.metadata.author?.givenName == "Jean")
        #expect(new.metadata.flags.first == .masquePS)
        let replace = try reader.read(try Fixture.data("mdm-ex3-imaging-replace.hl7"))
        #expect(replace.action == .replace)
        #expect(replace.metadata.id == InstanceIdentifier(root: "1.2.250.2345.3245.13", extension: "58133"))
        #expect(replace.metadata.parentID == InstanceIdentifier(root: "1.2.250.2345.3245.13", extension: "58132"))
        // OBX 7 of this example omits the coding system: the flag is still recognised by its code.
        #expect(replace.metadata.destinations == [.dmp, .mssantePS, .mssantePatient])
    }

    @Test func mdmDeletion() throws {
        let text = try Fixture.text("mdm-ex1-imaging-masked.hl7")
            .replacingOccurrences(of: "MDM^T02", with: "MDM^T04")
            .replacingOccurrences(of: "bWF0IENEQQ||||||F|", with: "bWF0IENEQQ||||||D|")
        let doc = try reader.read(Data(text.utf8))
        #expect(doc.action == .delete)
        #expect(doc.metadata.parentID == InstanceIdentifier(root: "1.2.250.2345.3245.13", extension: "58132"))
        #expect(!doc.metadata.validate().contains { $0.path == "parent_id" })
    }

    @Test(arguments: ["\n", "\r\n"]) func lineEndings(_ separator: String) throws {
        let text = try Fixture.text("oru-ex0-biology-new.hl7").replacingOccurrences(of: "\r", with: separator)
        let cr = try reader.read(try Fixture.data("oru-ex0-biology-new.hl7"))
        #expect(try reader.read(Data(text.utf8)) == cr)
    }

    @Test func mllpFramedFile() throws {
        let framed = Data([0x0B]) + (try Fixture.data("mdm-ex3-imaging-replace.hl7")) + Data([0x1C, 0x0D])
        #expect(try reader.read(framed).metadata.parentID?.extension == "58132")
    }

    @Test func latin9Message() throws {
        let text = try Fixture.text("oru-ex0-biology-new.hl7")
            .replacingOccurrences(of: "UNICODE UTF-8", with: "8859/15")
            .replacingOccurrences(of: "1 rue de la Paix", with: "1 rue de l'Église")
        let bytes = try #require(text.data(using: .isoLatin1))
        let doc = try reader.read(bytes)
        #expect(doc.metadata.patient.address?.lines == ["1 rue de l'Église"])
        #expect(doc.metadata.destinations == [.dmp, .mssantePS, .mssantePatient])
    }

    @Test func escapedDelimitersInValues() throws {
        let text = try Fixture.text("oru-ex0-biology-new.hl7").replacingOccurrences(of: "1 rue de la Paix", with: "1 rue A\\S\\B\\F\\C")
        #expect(try reader.read(Data(text.utf8)).metadata.patient.address?.lines == ["1 rue A^B|C"])
    }

    @Test func wrongINSKeyIsAnIdentityError() throws {
        let text = try Fixture.text("oru-ex0-biology-new.hl7").replacingOccurrences(of: "279035121518989", with: "279035121518988")
        do {
            _ = try reader.read(Data(text.utf8))
            Issue.record("expected an INS error")
        } catch {
            guard case .invalidINS(.wrongKey) = error else { Issue.record("got \(error)"); return }
            #expect(!error.description.contains("279035121518988"))
            #expect(error.description.contains("PID-3"))
        }
    }

    @Test func unknownKind() throws {
        let text = try Fixture.text("oru-ex0-biology-new.hl7").replacingOccurrences(of: "11502-2^", with: "99999-9^")
        #expect(throws: IntakeError.unknownDocumentKind("99999-9")) { try reader.read(Data(text.utf8)) }
    }

    @Test func inconsistentActions() throws {
        let oru = try Fixture.text("oru-ex0-biology-new.hl7").replacingOccurrences(of: "\rORC|NW", with: "\rORC|CA")
        #expect(throws: IntakeError.self) { try reader.read(Data(oru.utf8)) }
        let mdm = try Fixture.text("mdm-ex3-imaging-replace.hl7").replacingOccurrences(of: "MDM^T10", with: "MDM^T02")
        do {
            _ = try reader.read(Data(mdm.utf8))
            Issue.record("expected an error")
        } catch {
            guard case .inconsistentAction = error else { Issue.record("got \(error)"); return }
            #expect(error.description.contains("T02"))
        }
        let noParent = try Fixture.text("mdm-ex3-imaging-replace.hl7").replacingOccurrences(of: "|58132^^1.2.250.2345.3245.13^ISO|", with: "||")
        #expect(throws: IntakeError.missingField("TXA-13", .replacedDocument)) {
            try reader.read(Data(noParent.utf8))
        }
    }

    @Test func pdfDocument() throws {
        let pdf = TestPDF.make()
        let text = try Fixture.text("oru-ex0-biology-new.hl7")
            .replacingOccurrences(of: "^TEXT^XML^Base64^RG9jdW1lbnQgbcOpZGljYWwgYXUgZm 9ybWF0IENEQQ", with: "^AP^PDF^Base64^" + pdf.base64EncodedString())
        let doc = try reader.read(Data(text.utf8))
        #expect(doc.content == .pdf(pdf))
        let notPDF = text.replacingOccurrences(of: pdf.base64EncodedString(), with: Data("hello".utf8).base64EncodedString())
        #expect(throws: IntakeError.invalidField("OBX[1]-5.5", .notPDF)) { try reader.read(Data(notPDF.utf8)) }
    }

    /// A large document (8 MiB PDF, 11 MB message): byte-level splitting keeps this fast (≈0.1 s in debug).
    @Test func largeDocument() throws {
        let pdf = Data("%PDF-".utf8) + Data((0..<(8 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let text = try Fixture.text("oru-ex0-biology-new.hl7")
            .replacingOccurrences(of: "^TEXT^XML^Base64^RG9jdW1lbnQgbcOpZGljYWwgYXUgZm 9ybWF0IENEQQ", with: "^AP^PDF^Base64^" + pdf.base64EncodedString())
        let doc = try reader.read(Data(text.utf8))
        #expect(doc.content == .pdf(pdf))
    }

    @Test func otherMessagesAndMissingParts() throws {
        #expect(throws: IntakeError.unsupportedMessageType("ADT^A01")) {
            try reader.read(Data("MSH|^~\\&|A|B|C|D|2023||ADT^A01|1|P|2.5\rPID|1".utf8))
        }
        #expect(throws: IntakeError.missingSegment("PID")) {
            try reader.read(Data("MSH|^~\\&|A|B|C|D|2023||ORU^R01|1|P|2.5\rOBR|1".utf8))
        }
        #expect(throws: IntakeError.parse(.missingMSH)) { try reader.read(Data("hello".utf8)) }
        let noStatus = try Fixture.text("oru-ex0-biology-new.hl7").replacingOccurrences(of: "9ybWF0IENEQQ||||||F|", with: "9ybWF0IENEQQ||||||X|")
        #expect(throws: IntakeError.invalidField("OBX[1]-11", .actionCode("X"))) {
            try reader.read(Data(noStatus.utf8))
        }
    }

    /// PRT-6 (or ROL-9) of the participation that names the author gives its specialty.
    @Test func authorSpecialtyFromPRTOrROL() throws {
        let text = try Fixture.text("oru-ex0-biology-new.hl7")
        let sender = "PRT||UC||SB^Send by^participation|801234567866^Dupont^Jean^^^^^^ASIP-SANTE- PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS|"
        #expect(text.contains(sender))
        #expect(try reader.read(Data(text.utf8)).metadata.author?.specialty == nil, "the guide's PRT SB has no PRT-6")

        func read(_ prt6: String) throws -> CodedValue? {
            try reader.read(Data(text.replacingOccurrences(of: sender, with: sender + prt6).utf8)).metadata.author?.specialty
        }
        let sm26 = CodedValue(code: "G15_10/SM26", codeSystem: "1.2.250.1.213.1.1.4.5", displayName: "Médecin - Qualifié en médecine générale (SM)")
        #expect(try read("G15_10/SM26^Médecin - Qualifié en médecine générale (SM)^1.2.250.1.213.1.1.4.5") == sm26)
        #expect(try read("G15_10/SM26^Médecin - Qualifié en médecine générale (SM)^TRE_G15-ProfessionSante") == sm26)
        #expect(try read("G15_10/SM26^Médecin - Qualifié en médecine générale (SM)^G15^^^^^^^^^^^1.2.250.1.213.1.1.4.5") == sm26)
        #expect(throws: IntakeError.self) { try read("MG^Généraliste^L") }
        #expect(throws: IntakeError.self) { try read("G15_10/SM26^^1.2.250.1.213.1.1.4.5") }

        // MDM: the author is TXA-9; a ROL naming the same person gives ROL-9.
        let mdm = try Fixture.text("mdm-ex1-imaging-masked.hl7")
        let rol = "\rROL|1|AD|AUT^Author|801234567866^Dupont^Jean^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS|||||G15_10/SM26^Médecin - Qualifié en médecine générale (SM)^1.2.250.1.213.1.1.4.5"
        let withROL = mdm.replacingOccurrences(of: "\rOBX|1|", with: rol + "\rOBX|1|")
        #expect(try reader.read(Data(withROL.utf8)).metadata.author?.specialty == sm26)
        // Someone else's ROL says nothing about the author.
        let other = withROL.replacingOccurrences(of: "AUT^Author|801234567866", with: "AUT^Author|801234567897")
        #expect(try reader.read(Data(other.utf8)).metadata.author?.specialty == nil)
    }
}
