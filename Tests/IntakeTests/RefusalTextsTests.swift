import Foundation
import Testing
import PasserelleCore
import TestSupport
@testable import Intake

/// The catalogue of refusal texts (RefusalTexts.swift): every reason has a French text that
/// keeps the location of the English one; a truncated base64 field is named as truncated.
@Suite struct RefusalTextsTests {
    /// One sample of every case, nested ones included. The `Case` enums are exhaustive switches
    /// over the reasons: a new case does not compile until it is named there, then the coverage
    /// checks below fail until it has a sample here (and so its texts are checked).
    static let intakeErrors: [IntakeError] = [
        .parse(.empty), .parse(.missingMSH), .parse(.invalidEncodingCharacters), .parse(.unsupportedCharacterSet("EBCDIC")),
        .parse(.undecodable(characterSet: "8859/15")), .parse(.invalidSegmentID(segmentNumber: 4)),
        .unsupportedMessageType("ADT^A08"), .missingSegment("TXA"), .missingSegment("OBX"),
    ] + IntakeError.FieldNeed.allCases.map { .missingField(needPaths[$0]!, $0) } + fieldFaults.map { .invalidField($0.1, $0.0) } + [
        .mappedField(MetadataProblem("author.family_name", "120 characters, at most 100 (XCN)",
                                     french: "120 caractères, au plus 100 (XCN)")),
        .invalidINS(.wrongLength(actual: 14)), .invalidINS(.notADigit(position: 6)), .invalidINS(.notADigit(position: 3)),
        .invalidINS(.invalidSexDigit), .invalidINS(.wrongKey(masked: "2790351215*****", given: "88", expected: "89")),
        .invalidINS(.unknownOID("1.2.3")), .unknownDocumentKind("1-1"),
        .inconsistentAction(.trigger(event: "T02", documentPath: "OBX[1]", status: "C")),
        .inconsistentAction(.orderControl(code: "NW", documentPath: "OBX[1]", status: "D")),
    ]

    /// Where each missing field is, as the reader names it.
    static let needPaths: [IntakeError.FieldNeed: String] = [
        .documentType: "OBX[1]-3", .action: "OBX[1]-11", .replacedDocument: "TXA-13", .insOID: "PID-3[1].4.2",
        .ippAuthority: "PID-3[2].4.2", .visitNumber: "PV1-19", .stayAuthority: "PV1-19.4.2", .base64Document: "OBX[1]-5.5",
        .dataSubtype: "OBX[1]-5.3",
    ]

    /// Each fault with the field the reader finds it in.
    static let fieldFaults: [(IntakeError.FieldFault, String)] = [
        (.actionCode("X"), "OBX[1]-11"), (.kindDiffers(given: "11488-4", documentPath: "OBX[1]", documentKind: "11502-2"), "TXA-2"),
        (.birthDate, "PID-7"), (.sex, "PID-8"), (.flag("DESTDMP"), "OBX[8]-5"), (.mailBody(code: "CORPSMAIL_PS", .invalid), "OBX[13]-5.5"),
        (.mailBody(code: "CORPSMAIL_PS", .truncated(length: 93)), "OBX[13]-5.5"),
        (.mailBody(code: "CORPSMAIL_PATIENT", .cutCharacter), "OBX[14]-5.5"), (.specialtyMissing, "PRT-6"),
        (.specialty(detail: "DETAIL"), "PRT-6"), (.identifierForm, "TXA-12"), (.identifierRoot, "TXA-12.3"), (.encoding("HEX"), "OBX[1]-5.4"),
        (.documentBase64(.invalid), "OBX[1]-5.5"), (.documentBase64(.truncated(length: 4001)), "OBX[1]-5.5"), (.notPDF, "OBX[1]-5.5"),
        (.subtype("RTF"), "OBX[1]-5.3"), (.timestamp, "PV1-44"),
    ]

    static let contentProblems: [RefusalReason.ContentProblem] = [
        .notPDF(name: "cr.pdf"), .notXML(name: "cr.xml"), .unreadable(name: "cr.pdf", errno: EACCES),
        .duplicateDocument(id: "1.2.250.1.999.1.4.7", version: 1), .cdaNotXML(bytes: 31), .cdaUnusable(detail: "DETAIL", french: nil),
        .cdaUnusable(detail: "DETAIL", french: "l'en-tête du CDA enfreint 1 règle (élément, puis la règle en anglais) :\n  - ligne 12 : ClinicalDocument/id : …"),
        .cdaHeaderTooLong(MetadataProblem("id.extension", "80 characters, at most 64 (XDS)", french: "80 caractères, au plus 64 (XDS)")),
        .cdaNotBuilt(detail: "DETAIL", french: "les métadonnées ne permettent pas de construire le document CDA (1 problème) :\n"
                        + "  - stay.facility_type : obligatoire : le type d'établissement du jeu de valeurs JDV_J02 (par exemple SA01, "
                        + "système de codes 1.2.250.1.71.4.2.4)", defaultKeys: ["default_facility_type"]),
        .cdaNotBuilt(detail: "DETAIL", french: nil, defaultKeys: []),
        .schemaInvalid(messages: ["DETAIL"]), .idHasExtension,
    ]

    /// Every routing refusal admission decides (one per matrix rule).
    static let routingRefusals: [RoutingRefusal] = [
        .identityNotQualified(target: .dmp, status: .validated), .identityNotQualified(target: .mssantePatient, status: nil),
        .deletionNoticeWithoutDocument(targets: [.mssantePS]), .noProfessionalRecipient,
    ] + RoutingMatrix.Rule.allCases.map { rule in
        let destinations: [Destination] = switch rule {
        case .masquedToProfessionals, .professionalsWithLegalRepresentativesHidden: [.mssantePS]
        case .invisibleToPatient, .bothWithLegalRepresentativesHidden: [.mssantePS, .mssantePatient]
        case .patientOnlyWithSecretConnection, .patientOnlyWithDMP: [.mssantePatient]
        }
        return .forbiddenCombination(rule, destinations: destinations, flags: rule.flag.destination == nil ? [rule.flag, .ackReception] : [.ackReception])
    }

    static let reasons: [RefusalReason] = [
        .unsupportedFileType(name: "notes.docx"), .emptyFile(name: "cr.pdf"),
        .missingSidecar(document: "cr.pdf", expected: "cr.json"), .orphanSidecar(sidecar: "cr.json"),
        .ambiguousSidecar(sidecar: "cr.json"), .invalidSidecar(.malformedJSON("DETAIL")),
        .invalidSidecar(.invalid([MetadataProblem("destinations", "required: at least one of dmp, mssante_ps, mssante_patient"),
                                  MetadataProblem("patient.ins.value", INSError.wrongKey(masked: "2790351215*****", given: "88", expected: "89").description,
                                                  french: INSError.wrongKey(masked: "2790351215*****", given: "88", expected: "89").text(.fr))])),
        .symbolicLink(name: "cr.pdf"), .notRegularFile(name: "cr.pdf"),
        .tooLarge(name: "cr.pdf", size: 30_000_000, limit: 20_971_520, key: "[cda] max_pdf_bytes"),
        .interruptedTooOften(attempts: 3, key: "[folders] max_processing_attempts"),
    ] + routingRefusals.map { .routing([$0]) } + intakeErrors.map { .invalidMessage($0) } + contentProblems.map { .invalidContent($0) }

    @Test func everyCaseHasASample() {
        #expect(Set(Self.reasons.map(\.caseName)) == Set(RefusalReason.Case.allCases))
        #expect(Set(Self.intakeErrors.map(\.caseName)) == Set(IntakeError.Case.allCases))
        #expect(Set(Self.fieldFaults.map(\.0.caseName)) == Set(IntakeError.FieldFault.Case.allCases))
        #expect(Set(Self.contentProblems.map(\.caseName)) == Set(RefusalReason.ContentProblem.Case.allCases))
        let parseErrors = Self.intakeErrors.compactMap { if case .parse(let e) = $0 { e } else { nil } }
        #expect(parseErrors.count == 6, "one sample per HL7ParseError case")
    }

    /// Words of the English texts that have no place in a French one (outside the technical
    /// details quoted as "(en anglais)", which the samples fill with DETAIL).
    static let englishWords = [" the ", " is ", " must ", " not ", " cannot ", " send ", " drop ", " with ", " has ", " from ",
                               " and ", " or ", " resend it", " empty", " file "]

    /// Locations an English text names (file, segment-field, sidecar key, setting): the French text keeps them all.
    static func locations(_ english: String) -> Set<String> {
        let text = english.replacingOccurrences(of: "NAME", with: "NOM")  // NAME.pdf is NOM.pdf in French
        let patterns = [#"[A-Z][A-Z0-9]{2}(\[\d+\])?-\d+(\[\d+\])?(\.\d+)*"#, #"[\w-]+\.(pdf|json|xml|hl7|er7|docx)"#,
                        #"\[[a-z]+\] [a-z_]+"#, #"\b[a-z]{2,}(\.[a-z_]{2,})+\b"#]
        var found = Set<String>()
        for pattern in patterns {
            let regex = try! NSRegularExpression(pattern: pattern)
            for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                found.insert(String(text[Range(match.range, in: text)!]))
            }
        }
        return found
    }

    @Test func everyReasonIsInFrenchWithItsLocation() {
        for reason in Self.reasons {
            let fr = reason.text(.fr), en = reason.text(.en)
            #expect(en == reason.description, "the English text is the description (logs, CLI)")
            #expect(fr != en, "\(reason.caseName): no French text")
            let padded = " \(fr.lowercased()) "
            for word in Self.englishWords {
                #expect(!padded.replacingOccurrences(of: "\n", with: " ").contains(word), "\(reason): English word '\(word)' in «\(fr)»")
            }
            #expect(fr.contains(where: { "éèàçêùôâî«".contains($0) }) || fr.contains(" le ") || fr.contains(" la ") || fr.contains(" les ") || fr.contains(" est "),
                    "\(reason): does not read as French: «\(fr)»")
            let missing = Self.locations(en).subtracting(Self.locations(fr))
            #expect(missing.isEmpty, "\(reason): the French text lost \(missing): «\(fr)»")
        }
        for notice in IntakeNotice.samples {
            #expect(notice.text(.fr) != notice.text(.en))
            #expect(!notice.text(.fr).contains(" the "))
        }
    }

    @Test func texts() {
        // A few texts read whole: the wording, not only the absence of English.
        #expect(RefusalReason.invalidMessage(.invalidField("OBX[13]-5.5", .mailBody(code: "CORPSMAIL_PS", .truncated(length: 93)))).text(.fr)
                == "le message HL7 v2 est inutilisable : OBX[13]-5.5 : CORPSMAIL_PS est tronqué : son base64 compte 93 caractères, ce qui "
                + "ne peut pas être un encodage complet (un multiple de 4, au signe = près) ; le champ a été coupé par l'application "
                + "émettrice ou pendant l'envoi : renvoyez le message avec le texte complet. Corrigez-le et renvoyez-le.")
        #expect(RefusalReason.invalidMessage(.invalidINS(.wrongKey(masked: "2790351215*****", given: "88", expected: "89"))).text(.fr)
                .contains("INS en PID-3 : l'INS 2790351215***** a la clé 88 alors que ses 13 premiers caractères donnent la clé 89"))
        #expect(RefusalReason.missingSidecar(document: "cr.pdf", expected: "cr.json").text(.fr)
                == "cr.pdf n'a pas de fichier de métadonnées : déposez cr.json à côté (voir docs/sidecar.md), puis déposez à nouveau le document.")
        let report = RefusalReason.emptyFile(name: "cr.pdf").report(for: "cr.pdf", at: Date(timeIntervalSince1970: 0))
        #expect(report.hasPrefix("Passerelle a refusé cr.pdf le 19"))
        #expect(report.hasSuffix("\n\ncr.pdf est vide. Écrivez le fichier ailleurs (ou sous le nom NOM.part) et ne le renommez dans le dossier "
                                 + "de dépôt qu'une fois complet.\n"))
    }

    @Test func ackTextFollowsTheLanguage() {
        let error = IntakeError.invalidField("PID-8", .sex)
        #expect(HL7ErrorDetail(error).text == "PID-8 : le sexe doit être F, M ou U")
        #expect(HL7ErrorDetail(error, language: .en).text == "PID-8: sex must be F, M or U")
        #expect(HL7ErrorDetail(error).location == HL7ErrorLocation(segment: "PID", field: 8))
        #expect(MLLPSource.detail(.invalidMessage(error), language: .fr).text == RefusalReason.invalidMessage(error).text(.fr))
        #expect(MLLPSource.detail(.emptyFile(name: "x.hl7"), language: .en).text == "x.hl7 is empty. Write the file elsewhere (or as NAME.part) "
                + "and rename it into the inbox once complete.")
    }
}

/// Item 6 of issue 21: a cut base64 field is named as truncated, with its segment and field.
@Suite struct TruncatedBase64Tests {
    let reader = HL7DocumentReader()

    /// The ANS example with CORPSMAIL_PS (OBX 13) replaced by `payload`.
    static func withMailBody(_ payload: String) throws -> Data {
        let text = try Fixture.text("oru-ex0-biology-new.hl7")
        let original = "Q2hlciBjb25mcsOocmUsIHZvdXMgdHJvdXZlcmV6IGNpLWpvaW50IGxlIENSIGTigJlpbWFnZXJpZSBkZSBNLkR1cG9udA=="
        #expect(text.contains(original))
        return Data(text.replacingOccurrences(of: original, with: payload).utf8)
    }

    @Test func mailBodyCutToALengthNoEncodingHas() throws {
        let base64 = Data("Cher confrère, vous trouverez ci-joint le compte rendu d'imagerie.".utf8).base64EncodedString()
        let unpadded = base64.replacingOccurrences(of: "=", with: "")
        let cut = String(unpadded.prefix(unpadded.count - (unpadded.count % 4) - 3))  // length ≡ 1 (mod 4)
        #expect(cut.count % 4 == 1)
        #expect(throws: IntakeError.invalidField("OBX[13]-5.5", .mailBody(code: "CORPSMAIL_PS", .truncated(length: cut.count)))) {
            try reader.read(try Self.withMailBody(cut))
        }
        let text = RefusalReason.invalidMessage(.invalidField("OBX[13]-5.5", .mailBody(code: "CORPSMAIL_PS", .truncated(length: cut.count))))
        #expect(text.text(.fr).contains("OBX[13]-5.5 : CORPSMAIL_PS est tronqué"))
        #expect(text.text(.en).contains("OBX[13]-5.5: CORPSMAIL_PS is truncated"))
        #expect(!text.text(.en).contains("must be UTF-8 text in base64"))
    }

    @Test func mailBodyCutInsideACharacter() throws {
        // "è" is two bytes: the base64 of the text up to its first byte decodes, then stops mid-character.
        let bytes = Array("Cher confrère".utf8)
        let cut = Data(bytes.prefix(11)).base64EncodedString()  // "Cher confr" + the first byte of "è"
        #expect(throws: IntakeError.invalidField("OBX[13]-5.5", .mailBody(code: "CORPSMAIL_PS", .cutCharacter))) {
            try reader.read(try Self.withMailBody(cut))
        }
        // Whole text, padding left out (tolerated, as before).
        let whole = Data(bytes).base64EncodedString().replacingOccurrences(of: "=", with: "")
        #expect(try reader.read(try Self.withMailBody(whole)).metadata.mssante?.professionalBody == "Cher confrère")
        // Not base64 at all: still said so.
        #expect(throws: IntakeError.invalidField("OBX[13]-5.5", .mailBody(code: "CORPSMAIL_PS", .invalid))) {
            try reader.read(try Self.withMailBody("Q2hl*ciBj"))
        }
    }

    @Test func documentCutInTransit() throws {
        let text = try Fixture.text("oru-ex0-biology-new.hl7")
        let documentOBX = "^TEXT^XML^Base64^RG9jdW1lbnQgbcOpZGljYWwgYXUgZm 9ybWF0IENEQQ"
        #expect(text.contains(documentOBX))
        // 41 base64 characters (≡ 1 mod 4): no whole encoding.
        let cut = "^TEXT^XML^Base64^RG9jdW1lbnQgbcOpZGljYWwgYXUgZm 9ybWF0IENEQ"
        #expect(throws: IntakeError.invalidField("OBX[1]-5.5", .documentBase64(.truncated(length: 41)))) {
            try reader.read(Data(text.replacingOccurrences(of: documentOBX, with: cut).utf8))
        }
        // A PDF whose unpadded base64 stops before %%EOF.
        let pdf = Data("%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".utf8)
        let full = pdf.base64EncodedString()
        let pdfOBX = "^TEXT^PDF^Base64^" + full
        #expect(try reader.read(Data(text.replacingOccurrences(of: documentOBX, with: pdfOBX).utf8)).content == .pdf(pdf))
        let partial = String(full.prefix(30))  // 30 ≡ 2 (mod 4): decodes, but the PDF has no end
        #expect(throws: IntakeError.invalidField("OBX[1]-5.5", .documentBase64(.truncated(length: 30)))) {
            try reader.read(Data(text.replacingOccurrences(of: documentOBX, with: "^TEXT^PDF^Base64^" + partial).utf8))
        }
        #expect(IntakeError.invalidField("OBX[1]-5.5", .documentBase64(.truncated(length: 30))).text(.fr)
                    .hasPrefix("OBX[1]-5.5 : le document en base64 est tronqué : 30 caractères"))
    }
}

/// The sidecar checks' messages (DocumentMetadata.validate, the JSON decoding) have their French.
@Suite struct SidecarProblemTextsTests {
    static let brokenSidecars = [
        "{}",
        #"{"kind": "ldl", "effective_time": "2026-11-20", "patient": {"identity_status": "SURE", "traits": {"birth_date": "20/01/1980", "sex": "X"}}}"#,
        #"{"kind": 5, "unknwn": 1, "destinations": ["dmp", "dmp"], "flags": ["DESTDMP"], "action": "replace", "version_number": 0,"#
            + #" "id": {"root": "abc"}, "effective_time": null,"#
            + #" "patient": {"identity_status": "VALI", "ipp": {"value": " ", "authority": "x"}, "telecom": ["0601020304"],"#
            + #"   "ins": {"value": "279035121518988", "oid": "1.2.250.1.213.1.4.10"}, "traits": {"birth_place": "REIMS"}},"#
            + #" "author": {"rpps": "123", "adeli": "456"}, "legal_authenticator": {"rpps": "12345678901"},"#
            + #" "structure": {"name": ""},"#
            + #" "stay": {"id": {"value": "", "authority": "y"}, "admission": "2026-11-20T14:30:00+01:00", "discharge": "2026-11-19T14:30:00+01:00","#
            + #"   "facility_type": {"code": "", "code_system": "z", "display_name": ""}},"#
            + #" "mssante": {"recipients": ["nobody"], "reply_to": "x y"}}"#,
        #"{"kind": "ldl", "patient": {"identity_status": "QUAL", "ins": {"value": "279035121518989", "oid": "1.2.250.1.213.1.4.10"},"#
            + #" "traits": {"birth_name": "X", "first_birth_given_name": "Y", "birth_date": "1980-01-01", "sex": "M"}},"#
            + #" "author": {"adeli": "0A1234567", "family_name": "Z"}, "structure": {"finess": "75080344"},"#
            + #" "destinations": ["mssante_ps"], "effective_time": "2026-11-20T14:30:00+01:00", "service_event": {"end": "2026-11-20T14:30:00+01:00"}}"#,
    ]

    @Test func everySidecarProblemHasItsFrench() throws {
        var seen = 0
        for json in Self.brokenSidecars {
            let problems: [MetadataProblem]
            do { problems = try DocumentMetadata.decode(sidecar: Data(json.utf8)).validate() } catch {
                guard case .invalid(let list) = error else { Issue.record("\(error)"); continue }
                problems = list
            }
            #expect(!problems.isEmpty)
            for problem in problems {
                seen += 1
                #expect(problem.hasFrench, "no French for «\(problem)»")
                #expect(problem.text(.fr).hasPrefix(problem.path), "the sidecar key leads: \(problem.text(.fr))")
                #expect(!problem.text(.fr).contains("279035121518988"), "the INS is masked: \(problem.text(.fr))")
            }
        }
        #expect(seen >= 30, "the samples cover the checks (\(seen) problems)")
    }
}

/// docs/intake.md lists the French text of every sample reason (the section "Refusal texts"):
/// the page stays what the gateway writes. `PASSERELLE_WRITE_REFUSAL_DOCS=path` writes the
/// blocks to that file instead of checking, to paste them after a change of wording.
@Suite struct RefusalTextsDocsTests {
    static func blocks() -> String {
        func block(_ title: String, _ reasons: [RefusalReason]) -> String {
            "#### \(title)\n\n```text\n" + reasons.map { $0.text(.fr).replacingOccurrences(of: "DETAIL", with: "…") }
                .joined(separator: "\n\n") + "\n```\n"
        }
        let all = RefusalTextsTests.reasons
        let files = all.filter {
            switch $0 { case .invalidMessage, .invalidContent, .routing: false; default: true }
        }
        let routing = all.filter { if case .routing = $0 { true } else { false } }
        let messages = all.filter { if case .invalidMessage = $0 { true } else { false } }
        let contents = all.filter { if case .invalidContent = $0 { true } else { false } }
        return [block("Fichiers et fichiers de métadonnées", files), block("Messages HL7 v2", messages),
                block("Contenu du document", contents), block("Destinataires (décidés à la réception)", routing)].joined(separator: "\n")
    }

    @Test func docsShowTheFrenchTexts() throws {
        let blocks = Self.blocks()
        if let path = ProcessInfo.processInfo.environment["PASSERELLE_WRITE_REFUSAL_DOCS"] {
            try blocks.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        let page = try String(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/intake.md"), encoding: .utf8)
        #expect(page.contains(blocks), "docs/intake.md: paste the blocks written with PASSERELLE_WRITE_REFUSAL_DOCS")
    }
}
