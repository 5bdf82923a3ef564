import CDA
import DMP
import Foundation
import Journal
import OpenSSLKit
import PasserelleCore
import Testing
import TestSupport

/// HL7 v2 messages that carry a PDF: Passerelle builds the CDA, completing what HL7 v2 has no
/// field for from `[cda] default_*`, and sends it to the DMP.
@Suite(.serialized) struct HL7PDFTests {
    static let defaults = """
        [cda]
        schema = "\(TestPaths.shared.appendingPathComponent("conformance/cda/xsd/cda/CDA_extended.xsd").path)"
        default_author_specialty = "G15_10/SM26^1.2.250.1.213.1.1.4.5^Médecin - Qualifié en médecine générale (SM)"
        default_facility_type = "SA01^1.2.250.1.71.4.2.4^Etablissement public de santé"
        default_practice_setting = "ETABLISSEMENT^1.2.250.1.213.1.1.4.9"
        """

    /// An ANS example with the guide's placeholder replaced by `pdf` (subtype PDF), a qualified
    /// identity and a valid RPPS for the sender.
    static func withPDF(_ fixture: String, _ pdf: Data, senderSpecialty: String? = nil,
                        documentID: String? = "1.2.250.1.999.1.4.58132") throws -> Data {
        let text = String(decoding: try Data(contentsOf: Harness.fixtures.appendingPathComponent(fixture)), as: UTF8.self)
        var segments = text.split(separator: "\r", omittingEmptySubsequences: true).map(String.init)
        var replaced = false
        for i in segments.indices {
            var fields = segments[i].split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            if fields[0] == "PID" {
                while fields.count <= 32 { fields.append("") }
                fields[32] = "QUAL"
            }
            if fields[0] == "OBX" && fields[1] == "1" {
                fields[5] = "^AP^PDF^Base64^" + pdf.base64EncodedString()
                replaced = true
            }
            if fields[0] == "PRT" && fields[4].hasPrefix("SB^"), let senderSpecialty { fields[6] = senderSpecialty }
            // The DMP signs references to urn:oid:<id>: the document id must be an OID alone.
            if fields[0] == "TXA", let id = documentID { fields[12] = id }
            segments[i] = fields.joined(separator: "|").replacingOccurrences(of: "801234567866", with: "801234567897")
        }
        #expect(replaced)
        return Data(segments.joined(separator: "\r").utf8)
    }

    @Test func oruAndMDMWithAPDFGoToTheDMPWithAValidCDA() async throws {
        let h = try Harness(extra: Self.defaults)
        defer { h.cleanUp() }
        let service = try h.service()
        let running = Task { try await service.run() }
        try h.drop("oru-pdf.hl7", try Self.withPDF("oru-ex0-biology-new.hl7", Documents.pdf("Biologie PDF")))
        try h.drop("mdm-pdf.hl7", try Self.withPDF("mdm-ex1-imaging-masked.hl7", Documents.pdf("Imagerie PDF")))
        // The sender names its own specialty in PRT-6: it wins over the configured default.
        try h.drop("oru-specialty.hl7", try Self.withPDF("oru-ex0-biology-new.hl7", Documents.pdf("Biologie spécialiste"),
                                                          senderSpecialty: "G15_10/SM27^Médecin - Médecine interne (SM)^1.2.250.1.213.1.1.4.5"))
        let journal = try h.journal()
        let settled = try await Harness.waitUntil(timeout: 60) {
            let states = try await journal.transmissions(matching: TransmissionFilter()).map(\.state)
            return states.count == 3 && states.allSatisfy { $0 == .acknowledged || $0 == .failed } || !h.files(in: h.error).isEmpty
        }
        service.stop()
        try await running.value
        let reasons = h.files(in: h.error).filter { $0.hasSuffix(".error.txt") }
            .map { (try? String(contentsOf: h.error.appendingPathComponent($0), encoding: .utf8)) ?? $0 }
        #expect(settled && reasons.isEmpty, "\(reasons)")

        let transmissions = try await journal.transmissions(matching: TransmissionFilter())
        #expect(transmissions.count == 3)
        #expect(transmissions.allSatisfy { $0.target == .dmp && $0.state == .acknowledged }, "\(transmissions.map { "\($0.state) \($0.lastError ?? "")" })")
        #expect(h.endpoint.storedDocuments.count == 6, "3 documents + 3 signatures")

        // Each CDA built is the one the DMP stored, passes the official CI-SIS chain, and carries
        // the configured codes (or the sender's own specialty).
        let blobs = try BlobStore(root: Journals.blobFolder(forDatabase: h.journalPath))
        let stored = Dictionary(h.endpoint.storedDocuments.map { ($0.uniqueId, $0.sha1) }, uniquingKeysWith: { a, _ in a })
        var files: [String] = []
        var specialties: [String] = []
        for t in transmissions {
            let document = try #require(try await journal.document(id: t.documentID, version: t.version))
            let cda = try blobs.get(try #require(document.builtSHA256))
            #expect(stored[t.documentID] == Digest.sha1(cda).map { String(format: "%02x", $0) }.joined(), "the DMP holds the CDA built")
            let text = String(decoding: cda, as: UTF8.self)
            #expect(text.contains("code=\"SA01\""))
            #expect(text.contains("code=\"ETABLISSEMENT\""))
            #expect(text.contains("displayName=\"Etablissement de santé\""), "display name filled from JDV_J04")
            specialties.append(text.contains("G15_10/SM27") ? "SM27" : text.contains("G15_10/SM26") ? "SM26" : "none")
            let file = h.root.appendingPathComponent("\(files.count).xml")
            try cda.write(to: file)
            files.append(file.path)
        }
        #expect(specialties.sorted() == ["SM26", "SM26", "SM27"])
        let validation = try await Harness.runOffPool(TestPaths.shared.appendingPathComponent("tools/cda-validate").path, files)
        #expect(validation.succeeded, "cda-validate: \(validation.stdout)\(validation.stderr)")

        // MDM^T04 with the same TXA-12 and, as in the guide, a sentence in OBX-5 (unused for a
        // deletion): the DMP entry is set to Deleted.
        let mdm = String(decoding: try Self.withPDF("mdm-ex1-imaging-masked.hl7", Documents.pdf("Imagerie PDF")), as: UTF8.self)
            .replacingOccurrences(of: "MDM^T02", with: "MDM^T04").replacingOccurrences(of: "EVN|T02", with: "EVN|T04")
        var segments = mdm.split(separator: "\r").map(String.init)
        let obx = try #require(segments.firstIndex { $0.hasPrefix("OBX|1|") })
        var fields = segments[obx].split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        fields[11] = "D"
        fields[5] = "^text^XML^Base64^RG9jdW1lbnQgbcOpZGljYWwgYXUgZm9ybWF0IENEQQ"
        segments[obx] = fields.joined(separator: "|")
        let again = try h.service()
        let rerun = Task { try await again.run() }
        try h.drop("mdm-delete.hl7", Data(segments.joined(separator: "\r").utf8))
        let deleted = await Harness.waitUntil(timeout: 30) {
            h.endpoint.storedDocuments.contains { $0.uniqueId == "1.2.250.1.999.1.4.58132" && $0.status == .deleted }
                || !h.files(in: h.error).isEmpty
        }
        again.stop()
        try await rerun.value
        let refusals = h.files(in: h.error).map { (try? String(contentsOf: h.error.appendingPathComponent($0), encoding: .utf8)) ?? $0 }
        let after = try await journal.transmissions(matching: TransmissionFilter())
        #expect(deleted && refusals.isEmpty, "\(refusals) \(after.map { "\($0.state) \($0.lastError ?? "")" })")
        #expect(after.count == 4 && after.allSatisfy { $0.state == .acknowledged })
    }

    @Test func withoutDefaultsAPDFMessageIsRefusedNamingTheSettings() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let service = try h.service()
        let running = Task { try await service.run() }
        try h.drop("oru-pdf.hl7", try Self.withPDF("oru-ex0-biology-new.hl7", Documents.pdf()))
        // The guide's own example carries a sentence where the CDA goes: refused, saying so.
        try h.drop("oru-example.hl7", try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex0-biology-new.hl7")))
        try h.drop("bad-specialty.hl7", try Self.withPDF("oru-ex0-biology-new.hl7", Documents.pdf(), senderSpecialty: "MG^Généraliste^LOCAL"))
        // TXA-12 as root^extension, as in the guide: the DMP cannot sign a reference to it.
        try h.drop("mdm-extension.hl7", try Self.withPDF("mdm-ex1-imaging-masked.hl7", Documents.pdf(), documentID: nil))
        let refused = ["oru-pdf.hl7", "oru-example.hl7", "bad-specialty.hl7", "mdm-extension.hl7"]
        let settled = await Harness.waitUntil(timeout: 30) { refused.allSatisfy { h.files(in: h.error).contains($0 + ".error.txt") } }
        service.stop()
        try await running.value
        #expect(settled, "\(h.files(in: h.error)) \(h.files(in: h.inbox))")
        func reason(_ name: String) throws -> String { try String(contentsOf: h.error.appendingPathComponent(name + ".error.txt"), encoding: .utf8) }
        let missing = try reason("oru-pdf.hl7")
        for key in ["author.specialty", "stay.facility_type", "stay.practice_setting",
                    "[cda] default_author_specialty", "[cda] default_facility_type", "default_practice_setting"] {
            #expect(missing.contains(key), "\(key) in: \(missing)")
        }
        let example = try reason("oru-example.hl7")
        #expect(example.contains("not an XML document"), "\(example)")
        #expect(example.contains("base64 of the CDA R2"))
        let specialty = try reason("bad-specialty.hl7")
        #expect(specialty.contains("PRT-6"), "\(specialty)")
        #expect(specialty.contains("1.2.250.1.213.1.1.4.5"))
        #expect(try reason("mdm-extension.hl7").contains("plain OID"))
        #expect(try await h.journal().transmissions(matching: TransmissionFilter()).isEmpty)
    }
}
