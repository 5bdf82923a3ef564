import CDA
import Foundation
import IHE
import MSSante
import OpenSSLKit
import PasserelleCore
import TestSupport
import Testing
import XMLKit

/// XDM archives checked by independent readers: Python's zipfile (with its CRC check),
/// lxml, the ebRS/lcm schemas, the strict XDS receiver (`xds-validate`) and the official
/// CDA chain (`cda-validate`).
@Suite struct XDMTests {
    static let sender = XDMSender(
        structureOID: Fixtures.structureOID, structureName: "Hôpital de démonstration", structureID: "750803447",
        mailbox: "passerelle@hopital.mssante.fr",
        contentTypeCode: CodedValue(code: "04", codeSystem: "1.2.250.1.213.1.1.4.12", displayName: "Hospitalisation"))

    static let builder = try! XDMBuilder(templatesDirectory: TestPaths.templates, sender: sender)
    static let cdaBuilder = try! CDABuilder(templatesDirectory: TestPaths.templates,
                                            options: CDABuilder.Options(documentIDRoot: Fixtures.structureOID))

    static func document(_ metadata: DocumentMetadata) throws -> CDADocument {
        try cdaBuilder.build(metadata: metadata, pdf: TestPDF.make(text: "Lettre de liaison de sortie"))
    }

    struct Unpacked: Decodable {
        var names: [String]
        var badCRC: String?
        var sizes: [String: Int]
        var slots: [String: [String]]
        var associations: [[String]]
        var entryUUID: String
        var documentSHA1: String
        var documentSize: Int
    }

    /// Python (independent of our code) unpacks the archive into `dir` and reports what it sees.
    static func unpack(_ zip: Data, into dir: URL) throws -> Unpacked {
        let zipURL = dir.appendingPathComponent("IHE_XDM.ZIP")
        try zip.write(to: zipURL)
        let script = """
        import hashlib, json, sys, zipfile
        from lxml import etree
        z = zipfile.ZipFile(sys.argv[1])
        bad = z.testzip()
        z.extractall(sys.argv[2])
        ns = {"rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"}
        meta = etree.fromstring(z.read("IHE_XDM/SUBSET01/METADATA.XML"))
        eo = meta.find(".//rim:ExtrinsicObject", ns)
        slots = {s.get("name"): [v.text for v in s.findall(".//rim:Value", ns)] for s in eo.findall("rim:Slot", ns)}
        doc = z.read("IHE_XDM/SUBSET01/" + slots["URI"][0])
        assoc = [[a.get("associationType"), a.get("sourceObject"), a.get("targetObject")] for a in meta.findall(".//rim:Association", ns)]
        print(json.dumps({"names": z.namelist(), "badCRC": bad, "sizes": {i.filename: i.file_size for i in z.infolist()},
                          "slots": slots, "associations": assoc, "entryUUID": eo.get("id"),
                          "documentSHA1": hashlib.sha1(doc).hexdigest(), "documentSize": len(doc)}))
        """
        let python = TestPaths.testVenv.appendingPathComponent("bin/python").path
        let run = try ProcessRunner.run(python, ["-c", script, zipURL.path, dir.appendingPathComponent("x").path])
        try #require(run.succeeded, "python: \(run.stderr)")
        return try JSONDecoder().decode(Unpacked.self, from: Data(run.stdout.utf8))
    }

    @Test func archiveUnpacksAndItsMetadataMatchesTheDocument() throws {
        let metadata = Fixtures.metadata()
        let document = try Self.document(metadata)
        let package = try Self.builder.build(document: document, metadata: metadata)
        let dir = try TestPaths.temporaryDirectory("xdm")
        defer { try? FileManager.default.removeItem(at: dir) }

        let seen = try Self.unpack(package.zip, into: dir)
        #expect(seen.badCRC == nil)
        #expect(seen.names == ["INDEX.HTM", "README.TXT", "IHE_XDM/SUBSET01/METADATA.XML", "IHE_XDM/SUBSET01/DOC00001.XML"])
        // ISO 9660 level 1: upper case, 8.3.
        for name in seen.names {
            for part in name.split(separator: "/") {
                let pieces = part.split(separator: ".")
                #expect(pieces[0].count <= 8 && pieces.count <= 2 && (pieces.count == 1 || pieces[1].count <= 3), "\(name)")
                #expect(part.allSatisfy { $0.isUppercase || $0.isNumber || $0 == "_" || $0 == "." }, "\(name)")
            }
        }
        #expect(seen.slots["URI"] == ["DOC00001.XML"])
        #expect(seen.slots["size"] == [String(seen.documentSize)])
        #expect(seen.slots["hash"] == [seen.documentSHA1])
        #expect(seen.documentSize == document.data.count && seen.documentSHA1 == package.documentSHA1)
        #expect(seen.entryUUID == package.documentEntryUUID)
        #expect(seen.associations.count == 1 && seen.associations[0][0] == "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember")
        #expect(seen.slots[XDMBuilder.deletionSlotName] == nil)

        // Rendered templates.
        let readme = try String(contentsOf: dir.appendingPathComponent("x/README.TXT"), encoding: .utf8)
        #expect(readme.contains("Hôpital de démonstration") && readme.contains("IHE_XDM/SUBSET01/DOC00001.XML"))
        #expect(readme.contains("\r\n"))
        let index = try String(contentsOf: dir.appendingPathComponent("x/INDEX.HTM"), encoding: .utf8)
        #expect(index.contains("href=\"README.TXT\""))
        // Well-formed XHTML: XMLKit refuses any DOCTYPE (hostile input), so the XHTML 1.0 one
        // is checked as text and the rest parsed.
        let doctype = "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">"
        #expect(index.hasPrefix(doctype))
        _ = try XMLDocument.parse(Data(index.dropFirst(doctype.count).utf8))

        // METADATA.XML against the ebRIM/ebRS lcm schema.
        let lcm = TestPaths.shared.appendingPathComponent("conformance/xds/lcm.xsd")
        let issues = try XMLSchema(contentsOf: lcm).validate(package.metadataXML)
        #expect(issues.isEmpty, "\(issues)")

        // The strict XDS receiver's checks (required slots and codes, size/hash, CDA agreement),
        // applied to the same SubmitObjectsRequest wrapped as a Provide and Register request.
        let xdsRequest = try Self.provideAndRegister(package, document: document)
        let requestURL = dir.appendingPathComponent("pnr.xml")
        try xdsRequest.write(to: requestURL)
        let xds = try ProcessRunner.run(TestPaths.shared.appendingPathComponent("tools/xds-validate").path, [requestURL.path])
        #expect(xds.succeeded, "xds-validate: \(xds.stdout) \(xds.stderr)")
        // ... and the same checker does notice a wrong hash.
        let tampered = String(decoding: xdsRequest, as: UTF8.self)
            .replacingOccurrences(of: package.documentSHA1, with: String(repeating: "0", count: 40))
        try Data(tampered.utf8).write(to: requestURL)
        let refused = try ProcessRunner.run(TestPaths.shared.appendingPathComponent("tools/xds-validate").path, [requestURL.path])
        #expect(!refused.succeeded && refused.stdout.contains("SHA-1"), "\(refused.stdout)")

        // The CDA taken out of the archive passes the official chain.
        let cda = dir.appendingPathComponent("x/IHE_XDM/SUBSET01/DOC00001.XML").path
        let chain = try ProcessRunner.run(TestPaths.shared.appendingPathComponent("tools/cda-validate").path, [cda])
        #expect(chain.succeeded, "cda-validate: \(chain.stdout) \(chain.stderr)")
    }

    @Test func replacementCarriesRPLCToThePreviousEntry() throws {
        let first = try Self.document(Fixtures.metadata())
        let firstPackage = try Self.builder.build(document: first, metadata: Fixtures.metadata())
        var metadata = Fixtures.metadata()
        metadata.action = .replace
        metadata.id = InstanceIdentifier(root: Fixtures.structureOID, extension: "DOC-2")
        metadata.parentID = first.id
        metadata.setID = first.setID
        metadata.versionNumber = 2
        let second = try Self.document(metadata)
        let package = try Self.builder.build(document: second, metadata: metadata)
        #expect(package.documentEntryUUID != firstPackage.documentEntryUUID)
        let dir = try TestPaths.temporaryDirectory("xdm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let seen = try Self.unpack(package.zip, into: dir)
        let rplc = seen.associations.filter { $0[0] == "urn:ihe:iti:2007:AssociationType:RPLC" }
        #expect(rplc == [["urn:ihe:iti:2007:AssociationType:RPLC", package.documentEntryUUID, firstPackage.documentEntryUUID]])
        let lcm = TestPaths.shared.appendingPathComponent("conformance/xds/lcm.xsd")
        #expect(try XMLSchema(contentsOf: lcm).validate(package.metadataXML).isEmpty)
    }

    @Test func deletionCarriesActionD() throws {
        var metadata = Fixtures.metadata()
        let document = try Self.document(metadata)
        metadata.action = .delete
        metadata.parentID = document.id
        let package = try Self.builder.build(document: document, metadata: metadata)
        let dir = try TestPaths.temporaryDirectory("xdm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let seen = try Self.unpack(package.zip, into: dir)
        #expect(seen.slots[XDMBuilder.deletionSlotName] == ["D"])
        let lcm = TestPaths.shared.appendingPathComponent("conformance/xds/lcm.xsd")
        #expect(try XMLSchema(contentsOf: lcm).validate(package.metadataXML).isEmpty)
    }

    @Test func restrictionFlagsBecomeConfidentialityCodes() throws {
        let metadata = Fixtures.metadata(flags: [.destMSSantePS, .invisiblePatient])
        let package = try Self.builder.build(document: try Self.document(metadata), metadata: metadata)
        let xml = String(decoding: package.metadataXML, as: UTF8.self)
        #expect(xml.contains("nodeRepresentation=\"INVISIBLE_PATIENT\""))
        #expect(xml.contains("nodeRepresentation=\"N\""))
    }

    @Test func missingRequiredMetadataIsATypedError() throws {
        var metadata = Fixtures.metadata()
        let document = try Self.document(metadata)
        metadata.stay?.practiceSetting = nil
        #expect(throws: XDMError.missingMetadata(documentID: document.id.description,
                                                 field: "stay.practice_setting (practiceSettingCode)")) {
            try Self.builder.build(document: document, metadata: metadata)
        }
    }

    /// One mapping for both channels (IHE's DocumentEntryMapper): the archive's entry and the
    /// DMP's describe the same document alike, and differ only where the channels' rules do.
    @Test func xdmAndDMPDescribeTheSameDocumentAlike() throws {
        let metadata = Fixtures.metadata()
        let document = try Self.document(metadata)
        let package = try Self.builder.build(document: document, metadata: metadata)
        let dmp = DocumentEntryMapper(settings: SubmissionSettings(
            sourceId: Fixtures.structureOID, structure: HealthStructure(finess: "750803447", name: "Hôpital de démonstration")))
        let entry = try dmp.documentEntry(cda: document, metadata: metadata)
        #expect(package.documentEntryUUID == entry.entryID, "a later RPLC names the same entry on both channels")
        #expect(package.documentSHA1 == entry.hash)
        let xml = String(decoding: package.metadataXML, as: UTF8.self)
        for value in [entry.uniqueId, entry.patientId, entry.creationTime, entry.typeCode.code, entry.classCode.code, entry.formatCode.code]
            + entry.sourcePatientInfo {
            let escaped = XMLText.escape(value)
            #expect(xml.contains(">\(escaped)<") || xml.contains("\"\(escaped)\""), "\(value) in METADATA.XML")
        }
        // PID-7 as HL7 v2 YYYYMMDD (the sample patient was born on 28 March 1979); PID-8 in HL7 v2
        // (table 0001), as the DMP's entry has it.
        #expect(entry.sourcePatientInfo.contains("PID-7|19790328"), "\(entry.sourcePatientInfo)")
        #expect(entry.sourcePatientInfo.contains { $0.hasPrefix("PID-8|") })

        // A non-qualified identity: XDM names the patient by the IPP, the DMP refuses the document.
        let unqualified = Fixtures.metadata(status: .validated)
        let plain = try Self.document(unqualified)
        let archive = try Self.builder.build(document: plain, metadata: unqualified)
        let ipp = try #require(unqualified.patient.ipp)
        #expect(String(decoding: archive.metadataXML, as: UTF8.self).contains("value=\"\(ipp.value)^^^&amp;\(ipp.authority)&amp;ISO^PI\""))
        #expect(throws: IHEError.self) { try dmp.documentEntry(cda: plain, metadata: unqualified) }
    }

    @Test func zipWriterMatchesKnownCRCAndRefusesBadNames() throws {
        #expect(CRC32.checksum(Data("123456789".utf8)) == 0xCBF4_3926)  // the CRC-32 check value
        var zip = ZipWriter()
        #expect(throws: ZipWriter.ZipError.invalidName("../X")) { try zip.add("../X", data: Data()) }
        #expect(throws: ZipWriter.ZipError.invalidName("/ETC")) { try zip.add("/ETC", data: Data()) }
        try zip.add("A.TXT", data: Data("a".utf8))
        #expect(throws: ZipWriter.ZipError.duplicateName("A.TXT")) { try zip.add("A.TXT", data: Data()) }
    }

    static func provideAndRegister(_ package: XDMPackage, document: CDADocument) throws -> Data {
        var submit = String(decoding: package.metadataXML, as: UTF8.self)
        if let declaration = submit.range(of: "?>") { submit.removeSubrange(submit.startIndex..<declaration.upperBound) }
        let request = "<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb=\"urn:ihe:iti:xds-b:2007\">" + submit
            + "<xdsb:Document id=\"\(package.documentEntryUUID)\">\(document.data.base64EncodedString())</xdsb:Document>"
            + "</xdsb:ProvideAndRegisterDocumentSetRequest>"
        return Data(request.utf8)
    }
}
