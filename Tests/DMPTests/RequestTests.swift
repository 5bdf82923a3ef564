import CDA
@testable import DMP
import Foundation
@testable import IHE
import OpenSSLKit
import PasserelleCore
import Signing
import Testing
import TestSupport
import XMLKit

@Suite struct RequestTests {
    static let ns = [
        "soap": "http://www.w3.org/2003/05/soap-envelope", "wsa": "http://www.w3.org/2005/08/addressing",
        "rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0", "xdsb": "urn:ihe:iti:xds-b:2007",
        "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
        "saml2": "urn:oasis:names:tc:SAML:2.0:assertion",
    ]

    @Test(arguments: DocumentKind.allCases)
    func everyKindPassesTheStrictChecker(kind: DocumentKind) throws {
        let (_, request) = try Fixtures.request(kind: kind)
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try XDSValidate.run(request, in: dir, name: kind.shortName)
        #expect(result.succeeded, "xds-validate: \(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasPrefix("VALID"))
        #expect(result.stdout.contains("(2 documents)"))  // the CDA and the submission set signature
    }

    @Test func aBrokenRequestIsInvalid() throws {
        let m = Fixtures.metadata(kind: .biologyReport)
        let document = try Fixtures.cda(m)
        var submission = try Fixtures.mapper.submission(cda: document, metadata: m)
        submission.entries[0].hash = String(repeating: "0", count: 40)
        submission.entries[0].sourcePatientId = ""
        let request = try Fixtures.requestBuilder().build(submission, vihf: try Fixtures.vihf(for: document))
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try XDSValidate.run(request, in: dir, name: "broken")
        #expect(result.status == 1)
        #expect(result.stdout.hasPrefix("INVALID"))
        #expect(result.stdout.contains("hash slot is not the SHA-1"))
    }

    @Test func envelopeHasAddressingSecurityAndMetadata() throws {
        let (document, request) = try Fixtures.request(kind: .dischargeLetter, flags: [.invisiblePatient, .masquePS, .invisibleRepresentantsLegaux])
        let xml = try XMLDocument.parse(request.envelope)
        let ns = Self.ns
        #expect(try xml.string("string(/soap:Envelope/soap:Header/wsa:Action)", namespaces: ns) == ITI41Request.action)
        #expect(try xml.string("string(/soap:Envelope/soap:Header/wsa:MessageID)", namespaces: ns) == request.messageID)
        #expect(try xml.string("string(/soap:Envelope/soap:Header/wsa:To)", namespaces: ns) == Fixtures.endpoint.absoluteString)
        #expect(try xml.count("/soap:Envelope/soap:Header/wsse:Security/saml2:Assertion", namespaces: ns) == 1)

        let entry = "//rim:ExtrinsicObject[rim:ExternalIdentifier/@value='\(document.id.root)']"
        func slot(_ name: String) throws -> String {
            try xml.string("string(\(entry)/rim:Slot[@name='\(name)']/rim:ValueList/rim:Value[1])", namespaces: ns)
        }
        #expect(try slot("creationTime") == "20261120133000")
        #expect(try slot("serviceStartTime") == "20261115080000")
        #expect(try slot("sourcePatientId") == "IPP-000123^^^&1.2.250.1.999.1.2&ISO^PI")
        #expect(try slot("hash") == Digest.sha1(document.data).hexString)
        #expect(try slot("size") == String(document.data.count))
        #expect(try slot("legalAuthenticator") == "801234567897^MEDECIN^Jean^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS")
        #expect(try xml.string("string(\(entry)/rim:ExternalIdentifier[rim:Name/rim:LocalizedString/@value='XDSDocumentEntry.patientId']/@value)", namespaces: ns)
                == "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH")
        let confidentiality = try xml.nodes("\(entry)/rim:Classification[@classificationScheme='urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f']/@nodeRepresentation", namespaces: ns).map(\.text)
        #expect(Set(confidentiality) == ["N", "INVISIBLE_PATIENT", "MASQUE_PS", "INVISIBLE_REPRESENTANTS_LEGAUX"])
        #expect(try xml.string("string(\(entry)/rim:Classification[@classificationScheme='urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d']/@nodeRepresentation)", namespaces: ns)
                == "urn:ihe:iti:xds-sd:pdf:2008")
        #expect(try xml.string("string(\(entry)/rim:Classification[@classificationScheme='urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a']/@nodeRepresentation)", namespaces: ns) == "11")
        // Submission set: sourceId = structure OID; signature linked by HasMember + signs.
        #expect(try xml.string("string(//rim:RegistryPackage/rim:ExternalIdentifier[rim:Name/rim:LocalizedString/@value='XDSSubmissionSet.sourceId']/@value)", namespaces: ns)
                == Fixtures.structureOID)
        let ss = request.submission.entryID, sig = request.signature.entryID
        #expect(try xml.count("//rim:Association[@associationType='urn:ihe:iti:2007:AssociationType:signs'][@sourceObject='\(sig)'][@targetObject='\(ss)']", namespaces: ns) == 1)
        #expect(try xml.count("//rim:Association[@associationType='urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember'][@sourceObject='\(ss)']", namespaces: ns) == 2)
    }

    @Test func replacementCarriesRPLC() throws {
        let (original, _) = try Fixtures.request(kind: .imagingReport)
        let (replacement, request) = try Fixtures.request(kind: .imagingReport, replacing: original)
        #expect(replacement.replaces == original.id)
        let xml = try XMLDocument.parse(request.envelope)
        let entry = request.submission.entries[0].entryID
        let parentEntry = DocumentEntryMapper.entryUUID(uniqueId: DocumentEntryMapper.uniqueId(original.id))
        #expect(try xml.count("//rim:Association[@associationType='urn:ihe:iti:2007:AssociationType:RPLC'][@sourceObject='\(entry)'][@targetObject='\(parentEntry)']", namespaces: Self.ns) == 1)
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try XDSValidate.run(request, in: dir, name: "replacement")
        #expect(result.succeeded, "xds-validate: \(result.stdout)")
        // A new document has no RPLC.
        let (_, fresh) = try Fixtures.request(kind: .imagingReport)
        #expect(try XMLDocument.parse(fresh.envelope).count("//rim:Association[@associationType='urn:ihe:iti:2007:AssociationType:RPLC']", namespaces: Self.ns) == 0)
    }

    @Test func entryUUIDsAreNameBasedOnTheUniqueId() throws {
        // RFC 4122 version 5 in the OID namespace (Python: uuid.uuid5(uuid.NAMESPACE_OID, "1.2.3")).
        #expect(DocumentEntryMapper.entryUUID(uniqueId: "1.2.3") == "urn:uuid:42d5e23b-3a02-5135-85c6-52d1102f1f00")
        let (document, request) = try Fixtures.request(kind: .prescription)
        #expect(request.submission.entries[0].entryID == DocumentEntryMapper.entryUUID(uniqueId: DocumentEntryMapper.uniqueId(document.id)))
        #expect(request.signature.entryID != request.submission.entries[0].entryID)
    }

    @Test func deletionIsAnITI57StatusUpdate() throws {
        var m = Fixtures.metadata(kind: .dischargeLetter)
        let deleted = SampleMetadata.oidDocumentID(root: Fixtures.structureOID)
        m.action = .delete
        m.parentID = deleted
        let update = try Fixtures.mapper.deletion(metadata: m)
        #expect(update.entryUUID == DocumentEntryMapper.entryUUID(uniqueId: deleted.description))
        #expect(update.submission.patientId == "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH")
        let request = try Fixtures.requestBuilder().build(update, vihf: try Fixtures.vihf(for: try Fixtures.cda(Fixtures.metadata(kind: .dischargeLetter))))
        let xml = try XMLDocument.parse(request.envelope)
        #expect(try xml.string("normalize-space(//wsa:Action)", namespaces: Self.ns) == "urn:ihe:iti:2010:UpdateDocumentSet")
        #expect(try xml.count("/soap:Envelope/soap:Header/wsse:Security/saml2:Assertion", namespaces: Self.ns) == 1)
        let association = "//rim:Association[@associationType='urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus'][@sourceObject='\(update.submission.entryID)'][@targetObject='\(update.entryUUID)']"
        #expect(try xml.count(association, namespaces: Self.ns) == 1)
        #expect(try xml.string("string(\(association)/rim:Slot[@name='OriginalStatus']//rim:Value)", namespaces: Self.ns) == "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved")
        #expect(try xml.string("string(\(association)/rim:Slot[@name='NewStatus']//rim:Value)", namespaces: Self.ns) == "urn:asip:ci-sis:2010:StatusType:Deleted")
        #expect(try xml.count("//rim:ExtrinsicObject", namespaces: Self.ns) == 0)
        // The lcm:SubmitObjectsRequest is valid against the IHE / ebRS schemas.
        let schema = try XMLSchema(contentsOf: TestPaths.shared.appendingPathComponent("conformance/xds/XDS.b_DocumentRepository.xsd"))
        let body = try #require(try xml.nodes("/soap:Envelope/soap:Body/*", namespaces: Self.ns).first)
        let issues = schema.validate(try body.canonicalized()).filter { $0.severity != .warning }
        #expect(issues.isEmpty, "\(issues)")
        // An unqualified identity cannot be deleted from the DMP either.
        m.patient.identityStatus = .validated
        #expect(throws: IHEError.metadata("deletion of \(m.parentID!): the DMP only accepts a qualified (QUAL) identity with its INS")) { try Fixtures.mapper.deletion(metadata: m) }
    }

    @Test func signaturesVerify() throws {
        let (document, request) = try Fixtures.request(kind: .operativeReport)
        guard case .data(let signature) = request.signature.content else { Issue.record("signature not in memory"); return }
        // Our verifier, with the documents the Manifest covers (the RegistryPackage stands for the submission set).
        let package = Data(try ProvideAndRegisterWriter.registryPackage(request.submission).utf8)
        let report = try SubmissionSetSignatureVerifier(trustAnchorFiles: [Fixtures.pki("ca.pem")])
            .verify(signature, documents: [document.id.root: document.data, request.submission.uniqueId: package])
        #expect(report.isValid, "\(report.problems)")
        // xmlsec1 on the signature document and on the VIHF inside the envelope.
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sigFile = dir.appendingPathComponent("signature.xml"), envFile = dir.appendingPathComponent("envelope.xml")
        try signature.write(to: sigFile)
        try request.envelope.write(to: envFile)
        let sig = try XMLSec1.verifySubmissionSetSignature(sigFile)
        #expect(sig.succeeded, "xmlsec1 signature: \(sig.stderr)")
        let vihf = try XMLSec1.verifyVIHF(envelope: envFile)
        #expect(vihf.succeeded, "xmlsec1 VIHF: \(vihf.stderr)")
    }

    @Test func mapperRefusesAnUnqualifiedIdentity() throws {
        var m = Fixtures.metadata(kind: .prescription)
        m.patient.identityStatus = .validated
        let document = try Fixtures.cda(m)
        #expect(document.ins == nil)
        #expect { try Fixtures.mapper.documentEntry(cda: document, metadata: m) } throws: { "\($0)".contains("qualified (QUAL)") }
    }

    @Test func streamedBodyEqualsWrittenBody() throws {
        let (_, request) = try Fixtures.request(kind: .biologyReport)
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("body")
        try request.body.write(to: file)
        let written = try Data(contentsOf: file)
        #expect(Int64(written.count) == request.body.length)
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // Through the internal reader with a small chunk size (many chunks, same bytes).
        var streamed = Data()
        let reader = request.body.makeReader(chunkSize: 1000)
        var chunks = 0
        while let chunk = try reader.next() {
            #expect(chunk.count <= 1000)
            streamed.append(chunk)
            chunks += 1
        }
        #expect(streamed == written)
        #expect(chunks > 10)
        #expect(request.body.contentType.contains("type=\"application/xop+xml\""))
        #expect(request.body.contentType.contains("start-info=\"application/soap+xml\""))
    }

    @Test func hl7TimestampsConvertToUTC() throws {
        #expect(try DocumentEntryMapper.utc(hl7: "20261120143000+0100", field: "t") == "20261120133000")
        #expect(try DocumentEntryMapper.utc(hl7: "20260101003000+0200", field: "t") == "20251231223000")
        #expect(try DocumentEntryMapper.utc(hl7: "20261120", field: "t") == "20261120")
        #expect(throws: IHEError.metadata("t '2026-11-20' is not an HL7 timestamp")) { try DocumentEntryMapper.utc(hl7: "2026-11-20", field: "t") }
    }
}
