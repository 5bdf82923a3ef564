import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TestSupport
@testable import PasserelleCore

@Suite("Professional and structure identifiers")
struct IdentifierTests {
    @Test("RPPS: 11 digits with Luhn key; national id 8+RPPS")
    func rpps() throws {
        let r = try RPPS("01234567897")   // ANS examples: national id 801234567897
        #expect(r.nationalID == "801234567897")
        #expect(try RPPS("10000000009").value == "10000000009")
        #expect(throws: IdentifierError.wrongCheckDigit(kind: "RPPS", value: "01234567898")) { try RPPS("01234567898") }
        #expect(throws: IdentifierError.wrongLength(kind: "RPPS", expected: 11, actual: 10)) { try RPPS("0123456789") }
        #expect(throws: IdentifierError.invalidCharacter(kind: "RPPS", position: 3)) { try RPPS("01X34567897") }
        let id = try ProfessionalIdentifier(nationalID: "801234567897")
        #expect(id == .rpps(r))
        #expect(id.instanceIdentifier == InstanceIdentifier(root: "1.2.250.1.71.4.2.1", extension: "801234567897"))
    }

    @Test("ADELI: 9 characters, 2A/2B allowed; national id 0+ADELI")
    func adeli() throws {
        #expect(try ADELI("751234567").nationalID == "0751234567")
        #expect(try ADELI("2A1234567").value == "2A1234567")
        #expect(throws: IdentifierError.wrongLength(kind: "ADELI", expected: 9, actual: 8)) { try ADELI("75123456") }
        #expect(throws: IdentifierError.invalidCharacter(kind: "ADELI", position: 2)) { try ADELI("3A1234567") }
        #expect(try ProfessionalIdentifier(nationalID: "0751234567") == .adeli(try ADELI("751234567")))
    }

    @Test("FINESS: 9 characters with Luhn key; structure id 1+FINESS")
    func finess() throws {
        let f = try FINESS("750803447")   // the ANS example structure 1750803447
        #expect(f.nationalID == "1750803447")
        #expect(throws: IdentifierError.wrongCheckDigit(kind: "FINESS", value: "750803448")) { try FINESS("750803448") }
        #expect(throws: IdentifierError.wrongLength(kind: "FINESS", expected: 9, actual: 10)) { try FINESS("7508034470") }
        #expect(try FINESS("2A0000016").value == "2A0000016")   // keyed as 200000016
        #expect(throws: IdentifierError.self) { try FINESS("2A0000014") }
        let s = try StructureIdentifier(nationalID: "1750803447")
        #expect(s.instanceIdentifier == InstanceIdentifier(root: "1.2.250.1.71.4.2.2", extension: "1750803447"))
    }

    @Test("SIRET: 14 digits with Luhn key; structure id 3+SIRET")
    func siret() throws {
        #expect(try SIRET("732 829 320 00074").nationalID == "373282932000074")
        #expect(throws: IdentifierError.wrongCheckDigit(kind: "SIRET", value: "73282932000075")) { try SIRET("73282932000075") }
        #expect(throws: IdentifierError.wrongLength(kind: "SIRET", expected: 14, actual: 9)) { try SIRET("732829320") }
        #expect(try StructureIdentifier(nationalID: "373282932000074") == .siret(try SIRET("73282932000074")))
        #expect(throws: IdentifierError.unsupportedNationalID("9123")) { try StructureIdentifier(nationalID: "9123") }
    }

    @Test("OID syntax")
    func oids() {
        #expect(OID.isValid("1.2.250.1.213.1.4.8"))
        #expect(!OID.isValid("1.2.250.01"))
        #expect(!OID.isValid("1..2"))
        #expect(!OID.isValid("urn:oid:1.2"))
        #expect(!OID.isValid("3.1"))
        #expect(OID.isValid("0.0"))
        #expect(OID.isValid("2.25.329800735698586629295641978511506172918"))
        for invalid in ["12.3", "1", "1.", ".1", "1.2.", "1.02", "1.2.x", "1.٢", "1.2 ", "", "1.2.250.1.213.1.4.8.1.2.250.1.213.1.4.8.1.2.250.1.213.1.4.8.1.2.250.1.2"] {
            #expect(!OID.isValid(invalid), "\(invalid)")
        }
    }
}

@Suite("Document kinds")
struct DocumentKindTests {
    /// code → (codeSystem, displayName) of a JDV file shipped in /work/shared.
    static func jdv(_ name: String) throws -> [String: (system: String, display: String)] {
        let url = TestPaths.shared.appendingPathComponent("conformance/cda/value-sets/\(name).xml")
        let parser = try #require(XMLParser(contentsOf: url))
        let collector = ConceptCollector()
        parser.delegate = collector
        parser.shouldProcessNamespaces = true
        try #require(parser.parse(), "cannot parse \(url.path)")
        var out: [String: (String, String)] = [:]
        for attributes in collector.concepts {
            guard let code = attributes["code"], let system = attributes["codeSystem"],
                  let display = attributes["displayName"] else { continue }
            out[code] = (system, display)
        }
        return out
    }

    @Test("codes and displayNames match JDV_J07_XdsTypeCode_CISIS", arguments: DocumentKind.allCases)
    func matchesJDV(_ kind: DocumentKind) throws {
        let jdv = try Self.jdv("JDV_J07_XdsTypeCode_CISIS")
        #expect(jdv.count > 100)
        let entry = try #require(jdv[kind.loincCode], "\(kind.loincCode) missing from JDV_J07")
        #expect(entry.system == kind.codeSystem)
        #expect(entry.system == "2.16.840.1.113883.6.1")
        #expect(entry.display == kind.displayName)
    }

    @Test("class codes and SUN-ES domains")
    func classesAndDomains() {
        #expect(DocumentKind.dischargeLetter.sunesDomain == .d1)
        #expect(DocumentKind.prescription.sunesDomain == .d1)
        #expect(DocumentKind.operativeReport.sunesDomain == .d1)
        #expect(DocumentKind.biologyReport.sunesDomain == .d2)
        #expect(DocumentKind.imagingReport.sunesDomain == .d3)
        for kind in DocumentKind.allCases {
            #expect(kind.classCode.codeSystem == "1.2.250.1.213.1.1.4.1")
            #expect(!kind.classCode.displayName.isEmpty)
            #expect(!kind.defaultTitle.isEmpty)
        }
        #expect(DocumentKind.prescription.classCode.code == "42")
    }

    @Test("parsing short names and codes")
    func parsing() {
        #expect(DocumentKind(parsing: "ldl") == .dischargeLetter)
        #expect(DocumentKind(parsing: "Ordonnance") == .prescription)
        #expect(DocumentKind(parsing: "prescription") == .prescription)
        #expect(DocumentKind(parsing: "cro") == .operativeReport)
        #expect(DocumentKind(parsing: "cr-bio") == .biologyReport)
        #expect(DocumentKind(parsing: "cr-imagerie") == .imagingReport)
        #expect(DocumentKind(parsing: "18748-4") == .imagingReport)
        #expect(DocumentKind(parsing: "34874-3") == nil)
        for kind in DocumentKind.allCases { #expect(DocumentKind(parsing: kind.shortName) == kind) }
    }

    @Test("visibility flags map to JDV_J08 confidentiality codes")
    func confidentialityCodes() throws {
        let j08 = try Self.jdv("JDV_J08_XdsConfidentialityCode_CISIS")
        let mapped = MetaDMPMSSFlag.allCases.compactMap(\.confidentialityCode)
        #expect(mapped.count == 3)
        for code in mapped {
            let entry = try #require(j08[code.code], "\(code.code) missing from JDV_J08")
            #expect(entry.system == code.codeSystem)
            #expect(entry.display == code.displayName)
        }
        for c in Confidentiality.allCases {
            #expect(j08[c.rawValue]?.display == c.displayName)
            #expect(j08[c.rawValue]?.system == c.code.codeSystem)
        }
    }

    @Test("flags and destinations")
    func flags() {
        #expect(MetaDMPMSSFlag.allCases.count == 10)
        #expect(MetaDMPMSSFlag(code: "ACK_LECTURE") == .ackLecture)
        #expect(MetaDMPMSSFlag(code: "masque_ps") == .masquePS)
        #expect(Destination(parsing: "DESTMSSANTEPAT") == .mssantePatient)
        #expect(Destination.allCases.map(\.flag) == [.destDMP, .destMSSantePS, .destMSSantePatient])
        #expect(MetaDMPMSSFlag.allCases.filter(\.isRestriction).count == 5)
    }
}

/// Collects the attributes of every SVS `Concept` element.
private final class ConceptCollector: NSObject, XMLParserDelegate {
    var concepts: [[String: String]] = []
    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]) {
        if elementName == "Concept" { concepts.append(attributes) }
    }
}
