import CDA
import Foundation
import PasserelleCore
import Testing
import TestSupport
import XMLKit

@Suite struct BuilderTests {
    let builder = Fixtures.templatesBuilder
    let pdf = TestPDF.make()

    /// A built CDA, read back as the gateway reads one (its budget: a 20 MB PDF, large text nodes).
    func parse(_ document: CDADocument) throws -> XMLDocument { try XMLDocument.parse(document.data, options: CDAParseBudget.default) }

    /// A sidecar's `prefix`/`suffix` as people write them ("Dr.", " mme "): dots and spaces around
    /// the word go, case is folded; a civilité (J245) becomes the name's prefix, a title (J246)
    /// its suffix, anything else is left out.
    @Test(arguments: [
        ("Dr.", nil, nil, "DR"), (" mme ", nil, "MME", nil), ("..Pr..", "M.", "M", "PR"),
        ("Docteur", nil, nil, nil), ("D r", nil, nil, nil), ("", ". .", nil, nil),
    ] as [(String, String?, String?, String?)])
    func authorCivilityAndTitle(_ prefix: String, _ suffix: String?, _ expectedPrefix: String?, _ expectedSuffix: String?) throws {
        var metadata = Fixtures.metadata(kind: .dischargeLetter)
        metadata.author?.prefix = prefix
        metadata.author?.suffix = suffix
        let xml = try parse(try builder.build(metadata: metadata, pdf: pdf))
        let name = "//hl7:assignedAuthor/hl7:assignedPerson/hl7:name"
        #expect(try xml.count("\(name)/hl7:prefix", namespaces: Fixtures.hl7) == (expectedPrefix == nil ? 0 : 1))
        #expect(try xml.count("\(name)/hl7:suffix", namespaces: Fixtures.hl7) == (expectedSuffix == nil ? 0 : 1))
        if let expectedPrefix { #expect(try xml.string("\(name)/hl7:prefix", namespaces: Fixtures.hl7) == expectedPrefix) }
        if let expectedSuffix { #expect(try xml.string("\(name)/hl7:suffix", namespaces: Fixtures.hl7) == expectedSuffix) }
    }

    @Test(arguments: DocumentKind.allCases)
    func headerContentForEachKind(_ kind: DocumentKind) throws {
        let doc = try builder.build(metadata: Fixtures.metadata(kind: kind), pdf: pdf)
        let xml = try parse(doc)
        let ns = Fixtures.hl7
        #expect(try xml.string("/hl7:ClinicalDocument/hl7:code/@code", namespaces: ns) == kind.loincCode)
        #expect(try xml.string("/hl7:ClinicalDocument/hl7:code/@displayName", namespaces: ns) == kind.displayName)
        #expect(try xml.string("/hl7:ClinicalDocument/hl7:title", namespaces: ns) == kind.defaultTitle)
        #expect(try xml.count("/hl7:ClinicalDocument/hl7:templateId", namespaces: ns) == 3)
        #expect(try xml.string("/hl7:ClinicalDocument/hl7:effectiveTime/@value", namespaces: ns) == "20261120143000+0100")
        #expect(try xml.string("/hl7:ClinicalDocument/hl7:languageCode/@code", namespaces: ns) == "fr-FR")
        #expect(try xml.string("/hl7:ClinicalDocument/hl7:realmCode/@code", namespaces: ns) == "FR")
        #expect(try xml.string("//hl7:patientRole/hl7:id[@root='1.2.250.1.213.1.4.10']/@extension", namespaces: ns) == "279035121518989")
        #expect(try xml.string("//hl7:patient/hl7:name/hl7:family[@qualifier='BR']", namespaces: ns) == "PAT-TROIS")
        #expect(try xml.string("//hl7:patient/hl7:name/hl7:given[not(@qualifier)]", namespaces: ns) == "DOMINIQUE MARIE-LOUISE")
        #expect(try xml.string("//hl7:patient/hl7:birthplace/hl7:place/hl7:addr/hl7:county", namespaces: ns) == "51215")
        #expect(try xml.string("//hl7:assignedAuthor/hl7:id/@extension", namespaces: ns) == "801234567897")
        #expect(try xml.string("//hl7:assignedAuthor/hl7:assignedPerson/hl7:name/hl7:suffix", namespaces: ns) == "DR")
        #expect(try xml.string("//hl7:representedCustodianOrganization/hl7:id/@extension", namespaces: ns) == "1750803447")
        #expect(try xml.string("//hl7:legalAuthenticator/hl7:signatureCode/@code", namespaces: ns) == "S")
        #expect(try xml.count("//hl7:serviceEvent/hl7:performer[@typeCode='PRF']", namespaces: ns) == 1)
        #expect(try xml.string("//hl7:encompassingEncounter/hl7:id/@extension", namespaces: ns) == "S2026-0042")
        #expect(try xml.string("//hl7:healthCareFacility/hl7:code/@code", namespaces: ns) == "SA01")
        #expect(try xml.string("//hl7:nonXMLBody/hl7:text/@mediaType", namespaces: ns) == "application/pdf")
        let body = try xml.string("//hl7:nonXMLBody/hl7:text", namespaces: ns)
        #expect(Data(base64Encoded: body) == pdf)
        #expect(try xml.count("//hl7:relatedDocument", namespaces: ns) == 0)
        #expect(doc.versionNumber == 1 && doc.origin == .built && doc.ins?.value == "279035121518989")
        // Generated ids live under the structure OID, and the set id differs from the id.
        #expect(doc.id.root == Fixtures.structureOID && doc.setID.root == Fixtures.structureOID)
        #expect(doc.id != doc.setID)
        // No blank lines left by the template's blocks.
        #expect(!String(decoding: doc.data, as: UTF8.self).contains("\n\n"))
    }

    @Test func replacementKeepsSetIdIncrementsVersionAndPointsToParent() throws {
        let first = try builder.build(metadata: Fixtures.metadata(kind: .operativeReport), pdf: pdf)
        let second = try builder.build(metadata: Fixtures.metadata(kind: .operativeReport, replacing: first), pdf: pdf)
        let xml = try parse(second)
        let ns = Fixtures.hl7
        #expect(second.setID == first.setID)
        #expect(second.id != first.id)
        #expect(second.versionNumber == 2 && second.replaces == first.id)
        #expect(try xml.string("/hl7:ClinicalDocument/hl7:versionNumber/@value", namespaces: ns) == "2")
        #expect(try xml.string("//hl7:relatedDocument[@typeCode='RPLC']/hl7:parentDocument/hl7:id/@extension", namespaces: ns) == first.id.extension)
        #expect(try xml.string("/hl7:ClinicalDocument/hl7:setId/@extension", namespaces: ns) == first.setID.extension)
    }

    @Test(arguments: [IdentityStatus.provisional, .recovered, .validated])
    func unqualifiedIdentityCarriesNoINSOID(_ status: IdentityStatus) throws {
        for kind in DocumentKind.allCases {
            var metadata = Fixtures.metadata(kind: kind)
            metadata.patient.identityStatus = status
            let doc = try builder.build(metadata: metadata, pdf: pdf)
            let text = String(decoding: doc.data, as: UTF8.self)
            #expect(!text.contains("1.2.250.1.213.1.4."), "INS OID in a \(status.rawValue) document")
            #expect(!text.contains("279035121518989"), "NIR in a \(status.rawValue) document")
            #expect(doc.ins == nil)
            let xml = try parse(doc)
            #expect(try xml.string("//hl7:patientRole/hl7:id/@extension", namespaces: Fixtures.hl7) == "IPP-000123")
            #expect(try xml.count("//hl7:patientRole/hl7:id", namespaces: Fixtures.hl7) == 1)
        }
        // Also without any INS at all in the metadata.
        var metadata = Fixtures.metadata(kind: .biologyReport)
        metadata.patient.identityStatus = .provisional
        metadata.patient.ins = nil
        let text = String(decoding: try builder.build(metadata: metadata, pdf: pdf).data, as: UTF8.self)
        #expect(!text.contains("1.2.250.1.213.1.4."))
    }

    // MARK: Hostile values

    static func structure(of xml: XMLDocument) throws -> [String] {
        try xml.nodes("//*").map { node in
            "\(node.name)|" + node.attributes.map(\.name).joined(separator: ",")
        }
    }

    @Test func hostileValuesCannotChangeTheStructure() throws {
        let reference = try Self.structure(of: parse(builder.build(metadata: Fixtures.metadata(kind: .dischargeLetter), pdf: pdf)))
        let hostile = [
            "</family><x>", "\"/><injected a=\"", "<![CDATA[x]]>", "&amp;&lt;", "]]>", "<!--", "' onload='x",
            "é\u{1F600}漢字", "line\nbreak\ttab\rcr",
        ]
        for value in hostile {
            var metadata = Fixtures.metadata(kind: .dischargeLetter)
            metadata.patient.traits.usedName = value
            metadata.title = value
            metadata.author?.givenName = value
            metadata.structure?.name = value
            metadata.patient.address?.city = value
            let doc = try builder.build(metadata: metadata, pdf: pdf)
            let xml = try parse(doc)
            #expect(try Self.structure(of: xml) == reference, "structure changed by \(value.debugDescription)")
            #expect(try xml.string("//hl7:patient/hl7:name/hl7:family[@qualifier='CL']", namespaces: Fixtures.hl7) == value)
            #expect(try xml.string("/hl7:ClinicalDocument/hl7:title", namespaces: Fixtures.hl7) == value)
            #expect(try xml.string("//hl7:patientRole/hl7:addr/hl7:city", namespaces: Fixtures.hl7) == value)
        }
    }

    @Test func controlCharactersAreRefusedNamingTheField() throws {
        for scalar in [0x00, 0x01, 0x08, 0x0B, 0x1B, 0x1F, 0xFFFE] {
            var metadata = Fixtures.metadata(kind: .imagingReport)
            metadata.patient.traits.usedName = "A" + String(Character(Unicode.Scalar(UInt32(scalar))!)) + "B"
            let result = Result { () throws(CDAError) -> CDADocument in try builder.build(metadata: metadata, pdf: pdf) }
            guard case .failure(let error) = result else {
                Issue.record("U+\(String(scalar, radix: 16)) accepted")
                continue
            }
            if case .template(.invalidCharacter(_, let name, let found)) = error {
                #expect(name == "patient.usedName" && found == UInt32(scalar))
            } else {
                Issue.record("wrong error: \(error)")
            }
        }
    }

    /// Markup in a value stays text. (The value is as long as a name may be: 256 characters, the
    /// XDS LongName; a longer one is refused before any build, see `anOverlongValueIsRefused`.)
    @Test func markupInAValueStaysText() throws {
        let big = String(repeating: "</given><x>", count: 23)   // 253 characters
        var metadata = Fixtures.metadata(kind: .prescription)
        metadata.patient.traits.birthGivenNames = big
        let reference = try Self.structure(of: parse(builder.build(metadata: Fixtures.metadata(kind: .prescription), pdf: pdf)))
        let doc = try builder.build(metadata: metadata, pdf: pdf)
        let xml = try parse(doc)
        #expect(try Self.structure(of: xml) == reference)
        #expect(try xml.string("//hl7:patient/hl7:name/hl7:given[not(@qualifier)]", namespaces: Fixtures.hl7) == big)
    }

    @Test func anOverlongValueIsRefused() throws {
        var metadata = Fixtures.metadata(kind: .prescription)
        metadata.patient.traits.birthGivenNames = String(repeating: "</given><x>", count: 1_000_000)   // 11 MB
        do {
            _ = try builder.build(metadata: metadata, pdf: pdf)
            Issue.record("an 11 MB name was accepted")
        } catch {
            #expect("\(error)".contains("birth_given_names") && "\(error)".contains("at most 256"), "\(error)")
        }
    }

    // MARK: Refusals

    func expectError(_ metadata: DocumentMetadata, pdf: Data? = nil, _ check: (CDAError) -> Bool,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try builder.build(metadata: metadata, pdf: pdf ?? self.pdf)
            Issue.record("accepted", sourceLocation: sourceLocation)
        } catch {
            #expect(check(error), "unexpected: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func refusesWhatIsNotAPDF() {
        let m = Fixtures.metadata(kind: .dischargeLetter)
        expectError(m, pdf: Data("<html>not a pdf</html>".utf8)) { if case .notAPDF = $0 { true } else { false } }
        var truncated = TestPDF.make()
        truncated.removeLast(40)
        expectError(m, pdf: truncated) { if case .notAPDF(let r) = $0 { r.contains("%%EOF") } else { false } }
        expectError(m, pdf: Data()) { if case .emptyPDF = $0 { true } else { false } }
        let small = CDABuilder(template: builder.template, options: .init(maximumPDFBytes: 1000, documentIDRoot: "1.2.3"))
        do {
            _ = try small.build(metadata: m, pdf: TestPDF.make(minimumBytes: 5000))
            Issue.record("oversized PDF accepted")
        } catch {
            guard case .pdfTooLarge(let bytes, let limit) = error else { Issue.record("\(error)"); return }
            #expect(bytes >= 5000 && limit == 1000)
        }
    }

    @Test func refusesUnknownKindFromSidecar() throws {
        var json = try JSONSerialization.jsonObject(with: Fixtures.metadata(kind: .dischargeLetter).sidecarJSON()) as! [String: Any]
        json["kind"] = "radiographie"
        let metadata = try DocumentMetadata.decode(sidecar: JSONSerialization.data(withJSONObject: json))
        expectError(metadata) { if case .unknownKind(let d) = $0 { d.contains("radiographie") || $0.description.contains("ldl") } else { false } }
        var noKind = Fixtures.metadata(kind: .dischargeLetter)
        noKind.kind = nil
        expectError(noKind) { if case .unknownKind = $0 { true } else { false } }
    }

    @Test func refusesMissingMandatoryMetadataListingEveryField() {
        var m = Fixtures.metadata(kind: .dischargeLetter)
        m.effectiveTime = nil
        m.author?.specialty = nil
        m.patient.traits.birthDate = nil
        m.patient.identityStatus = .validated
        m.stay?.facilityType = nil
        m.structure = nil
        expectError(m) { error in
            guard case .invalidMetadata(let problems) = error else { return false }
            let paths = Set(problems.map(\.path))
            return ["effective_time", "author.specialty", "patient.traits.birth_date", "stay.facility_type", "structure.finess"]
                .allSatisfy(paths.contains)
        }
        var deletion = Fixtures.metadata(kind: .dischargeLetter)
        deletion.action = .delete
        deletion.parentID = InstanceIdentifier(root: "1.2.3", extension: "x")
        expectError(deletion) { if case .invalidMetadata(let p) = $0 { p.contains { $0.path == "action" } } else { false } }
    }

    @Test func refusesWrongINSKey() {
        var m = Fixtures.metadata(kind: .dischargeLetter)
        m.patient.ins = INSReference(value: "279035121518988", oid: "1.2.250.1.213.1.4.10")
        expectError(m) { error in
            guard case .invalidINS(.wrongKey) = error else { return false }
            return !error.description.contains("279035121518988")
        }
        // Even for a non-qualified identity, whose INS would not be written.
        m.patient.identityStatus = .provisional
        expectError(m) { if case .invalidINS = $0 { true } else { false } }
    }

    @Test func refusesQualifiedIdentityWithoutTraits() {
        var m = Fixtures.metadata(kind: .dischargeLetter)
        m.patient.traits.birthPlace = nil
        m.patient.traits.birthGivenNames = nil
        expectError(m) { error in
            guard case .identity(.missingTraitsForQualifiedIdentity(let traits)) = error else { return false }
            return Set(traits) == [.birthPlace, .birthGivenNames]
        }
    }

    @Test func refusesTraitsContradictingTheNIR() {
        let cases: [(inout IdentityTraits) -> Void] = [
            { $0.sex = .male },
            { $0.birthDate = CalendarDate(year: 1980, month: 3, day: 28) },
            { $0.birthDate = CalendarDate(year: 1979, month: 4, day: 28) },
            { $0.birthPlace = "75056" },
        ]
        for (index, change) in cases.enumerated() {
            for status in [IdentityStatus.qualified, .validated] {
                var m = Fixtures.metadata(kind: .dischargeLetter)
                m.patient.identityStatus = status
                change(&m.patient.traits)
                expectError(m) { error in
                    guard case .identity(.traitMismatch) = error else { return false }
                    return !error.description.contains("279035121518989")
                }
                _ = index
            }
        }
    }
}
