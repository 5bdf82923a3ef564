import CDA
import DMP
import Foundation
import Gateway
import IHE
import Journal
import OpenSSLKit
import PasserelleCore
import Testing
import TestSupport

/// Issue 21, items 1–3, over MLLP and the inbox with the real parts: the running service, the
/// strict DMP-style endpoint, the real SMTP relay (aiosmtpd, mutual TLS), mllp_send as client.
/// What can be known at intake is answered at intake: a deletion for a VALI identity gets AE for
/// its DMP part and its MSSanté notice goes; a deletion for a qualified identity deletes the DMP
/// entry and notifies the recipients; a forbidden routing combination gets AE with the ANS code.
@Suite(.serialized) struct DeletionNoticeTests {
    static let recipient = "adam.hoda@test-ci-sis.mssante.fr"
    static let ipp = LocalIdentifier(value: "123456", authority: "1.2.250.1.999.1.1")

    /// The service with the DMP endpoint, MSSanté on the real relay, MLLP, and `[cda]` defaults.
    final class Setup: @unchecked Sendable {
        let h: Harness
        let smtp: TestSMTPServer
        let service: GatewayService
        let running: Task<Void, Error>

        init(language: String? = nil) async throws {
            smtp = try TestSMTPServer(mode: "starttls")
            h = try Harness(extra: HL7PDFTests.defaults + """

                [mllp]
                enabled = true
                port = 0
                max_message_bytes = 400000
                """, language: language)
            // No IMAP server: acknowledgements are not what these tests are about (the poller just retries).
            let config = try String(contentsOfFile: h.configPath, encoding: .utf8)
                .replacingOccurrences(of: "[mssante]\nenabled = false", with: TestConfiguration.mssanteSection(
                    smtpPort: smtp.port, imapPort: 9, mailbox: "passerelle@ch-test.mssante.fr"))
            try config.write(toFile: h.configPath, atomically: true, encoding: .utf8)
            service = try h.service()
            let service = service
            running = Task { try await service.run() }
            #expect(await Harness.waitUntil(timeout: 10) { service.mllpPort != nil })
        }

        /// Runs `body`, then stops everything, also when `body` throws.
        func run(_ body: (Setup) async throws -> Void) async throws {
            do { try await body(self) } catch {
                await stop()
                throw error
            }
            await stop()
        }

        func stop() async {
            service.stop()
            _ = try? await running.value
            smtp.stop()
            h.cleanUp()
        }

        /// Sends `message` with mllp_send; returns the ACK.
        func send(_ message: Data, name: String) async throws -> String {
            let port = try #require(service.mllpPort)
            let file = h.root.appendingPathComponent("\(name).mllp.hl7")
            try message.write(to: file)
            let r = try await Harness.runOffPool(MLLPServiceTests.mllpSend, ["--port", "\(port)", "--file", file.path, "--loose", "127.0.0.1"])
            #expect(r.succeeded, "\(r.stderr)")
            return r.stdout
        }

        /// The mails the relay received, parsed.
        func mails() throws -> [RelayMail] {
            try smtp.received().map { try RelayMail.parse(Data(base64Encoded: $0.data) ?? Data(), rcpt: $0.rcpt_tos) }
        }
    }

    /// A mail as the relay received it, read back by Python's email and zipfile packages.
    struct RelayMail: Decodable {
        var rcpt: [String] = []
        var subject: String
        var body: String
        var headers: [String: String]
        /// IHE_XDM/SUBSET01/METADATA.XML of the attached archive.
        var metadata: String
        /// SHA-1 (hex) of the document in the archive's subset.
        var documentSHA1: String

        enum CodingKeys: String, CodingKey { case subject, body, headers, metadata, documentSHA1 }

        static func parse(_ raw: Data, rcpt: [String]) throws -> RelayMail {
            let script = """
            import email, email.policy, hashlib, io, json, sys, zipfile
            msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
            body = msg.get_body(preferencelist=("plain",)).get_content()
            out = {"subject": str(msg["Subject"]), "body": body, "headers": {k: str(v) for k, v in msg.items()},
                   "metadata": "", "documentSHA1": ""}
            for part in msg.iter_attachments():
                if part.get_filename() == "IHE_XDM.zip":
                    z = zipfile.ZipFile(io.BytesIO(part.get_content()))
                    assert z.testzip() is None
                    out["metadata"] = z.read("IHE_XDM/SUBSET01/METADATA.XML").decode("utf-8")
                    out["documentSHA1"] = hashlib.sha1(z.read("IHE_XDM/SUBSET01/DOC00001.XML")).hexdigest()
            print(json.dumps(out))
            """
            let run = try ProcessRunner.run(TestPaths.testVenv.appendingPathComponent("bin/python").path, ["-c", script], stdin: raw)
            try #require(run.succeeded, "python: \(run.stderr)")
            var mail = try JSONDecoder().decode(RelayMail.self, from: Data(run.stdout.utf8))
            mail.rcpt = rcpt
            return mail
        }
    }

    /// An imaging report CDA of the test patient (IPP 123456), qualified or not, and its id.
    static func cda(qualified: Bool) throws -> CDADocument {
        var metadata = SampleMetadata.document(kind: .imagingReport, id: SampleMetadata.oidDocumentID(), qualified: qualified)
        metadata.patient.ipp = ipp
        return try Documents.builder.build(metadata: metadata, pdf: Documents.pdf("Imagerie \(qualified ? "QUAL" : "VALI")"))
    }

    /// The ANS MDM example (mdm-ex3) as an event `trigger` (T02 new, T04 deletion) for `cda`,
    /// with PID-32 `status` and the MetaDMPMSS flags `flags` (the others N), one professional
    /// recipient, and a valid RPPS for the author.
    static func mdm(_ trigger: String, cda: CDADocument, status: String, control: String,
                    flags: Set<String> = ["DESTDMP", "DESTMSSANTEPS", "ACK_RECEPTION"], corpsMail: Bool = false,
                    obx5: String? = nil, recipients: Bool = true) throws -> Data {
        let text = String(decoding: try Data(contentsOf: Harness.fixtures.appendingPathComponent("mdm-ex3-imaging-replace.hl7")), as: UTF8.self)
        var out: [String] = []
        for segment in text.split(separator: "\r", omittingEmptySubsequences: true).map(String.init) {
            var f = segment.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            switch f[0] {
            case "MSH":
                f[8] = "MDM^\(trigger)^MDM_T02"
                f[9] = control
            case "EVN": f[1] = trigger
            case "PID":
                while f.count <= 32 { f.append("") }
                f[32] = status
            case "TXA":
                f[12] = cda.id.root
                f[13] = ""
            case "OBX" where f[1] == "1":
                f[5] = obx5 ?? "^text^XML^Base64^" + cda.data.base64EncodedString()
                f[11] = trigger == "T04" ? "D" : "F"
            case "OBX" where f[3].hasPrefix("CORPSMAIL_PS"):
                if !corpsMail { continue }
            case "OBX":
                let code = String(f[3].prefix { $0 != "^" })
                f[5] = (flags.contains(code) ? "Y" : "N") + f[5].drop { $0 != "^" }
            case "PRT" where segment.contains("@patient.mssante.fr") || (!recipients && segment.contains("RCT^")):
                continue
            default: break
            }
            out.append(f.joined(separator: "|").replacingOccurrences(of: "801234567866", with: "801234567897"))
        }
        return Data(out.joined(separator: "\r").utf8)
    }

    static func fields(_ ack: String, _ segment: String) -> [[String]] {
        ack.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).map(String.init).filter { $0.hasPrefix(segment + "|") }
            .map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
    }

    /// What the metadata of a deletion's notice must say: the withdrawn document's uniqueId,
    /// the deletion action slot, the configured facility type, and the patient as `patientId`.
    static func expectNotice(_ mail: RelayMail, of cda: CDADocument, patientId: String) {
        #expect(mail.subject.hasPrefix("XDM/1.0/DDM+Document retiré : "), "\(mail.subject)")
        #expect(mail.body.contains("document a été retiré"), "\(mail.body)")
        #expect(mail.metadata.contains("value=\"\(cda.id.root)\""), "the XDM names the withdrawn document")
        #expect(mail.metadata.contains("urn:asip:ci-sis:2010:action") && mail.metadata.contains("<rim:Value>D</rim:Value>"),
                "the deletion action slot")
        #expect(mail.metadata.contains("SA01"), "the facility type from [cda] default_facility_type")
        #expect(mail.metadata.contains(patientId), "patientId \(patientId)")
        #expect(mail.documentSHA1 == cda.sha1.hexString, "the archive carries the withdrawn document as received")
        #expect(mail.rcpt == [recipient])
    }

    @Test func deletionForAValidatedIdentityIsAEForTheDMPAndItsNoticeIsMailed() async throws {
        let s = try await Setup()
        try await s.run { s in
        let journal = try s.h.journal()

        // Over MLLP: AE, one ERR for the DMP part (PID-32, ANS 903), one information ERR for what goes.
        let viaMLLP = try Self.cda(qualified: false)
        let ack = try await s.send(try Self.mdm("T04", cda: viaMLLP, status: "VALI", control: "DEL-VALI-1"), name: "del-vali")
        #expect(Self.fields(ack, "MSA").first?[1] == "AE", "\(ack)")
        let errors = Self.fields(ack, "ERR")
        #expect(errors.count == 2, "\(ack)")
        let dmpPart = try #require(errors.first)
        #expect(dmpPart[2] == "PID^1^32")
        #expect(dmpPart[3].hasPrefix("207^"))
        #expect(dmpPart[4] == "E")
        #expect(dmpPart[5] == "903^INS non présent dans le document^applicationErrorCondition")
        #expect(dmpPart[8].contains("VALI") && dmpPart[8].contains("identité qualifiée (QUAL)") && dmpPart[8].hasPrefix("DMP : "), "\(dmpPart[8])")
        #expect(errors.last?[4] == "I")
        #expect(errors.last?[8] == "accepté et transmis pour MSSanté professionnels (DESTMSSANTEPS) seulement")
        #expect(!ack.contains("279035121518989"), "no INS in the ACK")

        // Through the inbox: done/, and the reason in error/ (French by default).
        let viaInbox = try Self.cda(qualified: false)
        try s.h.drop("del-vali.hl7", try Self.mdm("T04", cda: viaInbox, status: "VALI", control: "DEL-VALI-2"))
        let noted = await Harness.waitUntil(timeout: 30) { s.h.files(in: s.h.error).contains("del-vali.hl7.error.txt") }
        #expect(noted, "\(s.h.files(in: s.h.error))")
        #expect(!s.h.files(in: s.h.error).contains("del-vali.hl7"), "the file is not refused: it is in done/")
        let reason = try String(contentsOf: s.h.error.appendingPathComponent("del-vali.hl7.error.txt"), encoding: .utf8)
        #expect(reason.hasPrefix("Passerelle a accepté del-vali.hl7 le "), "\(reason)")
        #expect(reason.contains("pour MSSanté professionnels (DESTMSSANTEPS) seulement (le fichier est dans done/)"))
        #expect(reason.contains("DMP : le statut de l'identité du patient est VALI (identité validée)"), "\(reason)")

        // Both notices reach the relay; nothing is queued for the DMP.
        let sent = try await Harness.waitUntil(timeout: 60) {
            let all = try await journal.transmissions(matching: TransmissionFilter())
            return all.count == 2 && all.allSatisfy { $0.state == .sent || $0.state == .failed }
        }
        let transmissions = try await journal.transmissions(matching: TransmissionFilter())
        #expect(sent, "\(transmissions.map { "\($0.target) \($0.state) \($0.lastError ?? "")" })")
        #expect(transmissions.allSatisfy { $0.target == .mssantePS && $0.state == .sent },
                "\(transmissions.map { "\($0.target) \($0.state) \($0.lastError ?? "")" })")
        #expect(s.h.endpoint.storedDocuments.isEmpty, "the DMP saw nothing")
        let mails = try s.mails()
        #expect(mails.count == 2)
        for document in [viaMLLP, viaInbox] {
            let mail = try #require(mails.first { $0.metadata.contains(document.id.root) }, "no notice for \(document.id.root)")
            // Not qualified: the archive names the patient by the IPP, never the INS.
            Self.expectNotice(mail, of: document, patientId: "123456^^^&amp;1.2.250.1.999.1.1&amp;ISO")
            #expect(!mail.metadata.contains("279035121518989"))
            #expect(mail.headers["X-MSS-INS"] == "N")
        }
        }
    }

    @Test func deletionForAQualifiedIdentityDeletesTheDMPEntryAndNotifiesTheRecipients() async throws {
        let s = try await Setup()
        try await s.run { s in
        let journal = try s.h.journal()
        let document = try Self.cda(qualified: true)

        // The document first (MLLP: AA), to the DMP and to the professional.
        let first = try await s.send(try Self.mdm("T02", cda: document, status: "QUAL", control: "NEW-QUAL-1"), name: "new-qual")
        #expect(Self.fields(first, "MSA").first?[1] == "AA", "\(first)")
        let stored = await Harness.waitUntil(timeout: 60) { s.h.endpoint.storedDocuments.contains { $0.uniqueId == document.id.root } }
        #expect(stored)

        // Then its deletion through the inbox, with the producer's own mail body (CORPSMAIL_PS).
        try s.h.drop("del-qual.hl7", try Self.mdm("T04", cda: document, status: "QUAL", control: "DEL-QUAL-1", corpsMail: true))
        let deleted = await Harness.waitUntil(timeout: 60) {
            s.h.endpoint.storedDocuments.contains { $0.uniqueId == document.id.root && $0.status == .deleted }
        }
        #expect(deleted, "\(s.h.endpoint.storedDocuments.map { "\($0.uniqueId) \($0.status)" })")
        let settled = try await Harness.waitUntil(timeout: 60) {
            let all = try await journal.transmissions(matching: TransmissionFilter())
            return all.count == 4 && all.allSatisfy { [.sent, .acknowledged, .failed].contains($0.state) }
        }
        let transmissions = try await journal.transmissions(matching: TransmissionFilter())
        #expect(settled && transmissions.allSatisfy { $0.state == .sent || $0.state == .acknowledged },
                "\(transmissions.map { "\($0.target) \($0.state) \($0.lastError ?? "")" })")
        #expect(s.h.files(in: s.h.error).isEmpty, "nothing refused: \(s.h.files(in: s.h.error))")

        let mails = try s.mails()
        #expect(mails.count == 2)
        let notice = try #require(mails.first { $0.subject.contains("Document retiré") }, "\(mails.map(\.subject))")
        Self.expectNotice(notice, of: document, patientId: "279035121518989^^^&amp;1.2.250.1.213.1.4.10&amp;ISO")
        // The producer's body follows the withdrawal notice.
        #expect(notice.body.hasPrefix("Document retiré : ce document a été retiré"), "\(notice.body)")
        #expect(notice.body.contains("Cher confrère"))
        let original = try #require(mails.first { !$0.subject.contains("Document retiré") })
        #expect(!original.metadata.contains("urn:asip:ci-sis:2010:action"), "only the deletion carries the action slot")
        }
    }

    /// The guide's own ORU deletion (example 2: ORC CA, OBX-11 D, no TXA): as published, with a
    /// sentence in OBX-5, the DMP entry is deleted and the MSSanté part is refused at intake (no
    /// document to notify); with the CDA in OBX-5, the CDA names the document deleted and the
    /// notice goes to both RCT recipients.
    @Test func theGuidesORUDeletionWithAndWithoutItsDocument() async throws {
        let s = try await Setup()
        try await s.run { s in
            let journal = try s.h.journal()
            func oru(_ obx5: String?, control: String) throws -> Data {
                let text = String(decoding: try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex2-imaging-delete.hl7")), as: UTF8.self)
                return Data(text.split(separator: "\r", omittingEmptySubsequences: true).map { segment -> String in
                    var f = segment.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                    if f[0] == "MSH" { f[9] = control }
                    if f[0] == "OBX", f[1] == "1", let obx5 { f[5] = obx5 }
                    return f.joined(separator: "|").replacingOccurrences(of: "801234567866", with: "801234567897")
                }.joined(separator: "\r").utf8)
            }

            // An MDM^T04 with the guide's sentence in OBX-5: TXA-12 names the document, so the DMP
            // part goes; the MSSanté part has nothing to notify and is refused at intake.
            let unknown = try Self.cda(qualified: true)
            let sentence = try await s.send(try Self.mdm("T04", cda: unknown, status: "QUAL", control: "MDM-DEL-1",
                                                         obx5: "^text^XML^Base64^RG9jdW1lbnQgbcOpZGljYWwgYXUgZm9ybWF0IENEQQ"),
                                            name: "mdm-del-sentence")
            #expect(Self.fields(sentence, "MSA").first?[1] == "AE", "\(sentence)")
            let err = try #require(Self.fields(sentence, "ERR").first)
            #expect(err[2] == "OBX^1^5")
            #expect(err[5] == "906^Erreur 'Autre'^applicationErrorCondition")
            #expect(err[8].hasPrefix("MSSanté professionnels (DESTMSSANTEPS) : la demande de suppression ne porte pas la dernière version"),
                    "\(err[8])")
            #expect(Self.fields(sentence, "ERR").last?[8] == "accepté et transmis pour DMP seulement")
            let queued = try await journal.transmissions(matching: TransmissionFilter())
            #expect(queued.map(\.target) == [.dmp], "\(queued.map(\.target))")

            // The guide's ORU as published: no TXA, a sentence in OBX-5: nothing names the document
            // to delete; refused whole, saying where the CDA goes.
            let bare = try await s.send(try oru(nil, control: "ORU-DEL-1"), name: "oru-del-sentence")
            #expect(Self.fields(bare, "MSA").first?[1] == "AE", "\(bare)")
            #expect(Self.fields(bare, "ERR").count == 1)
            #expect(Self.fields(bare, "ERR").first?[8].contains("pas un document XML") == true, "\(bare)")
            #expect(try await journal.transmissions(matching: TransmissionFilter()).count == 1, "nothing more journaled")

            // With the document: published first, then deleted by the ORU carrying it.
            let document = try Self.cda(qualified: true)
            let first = try await s.send(try Self.mdm("T02", cda: document, status: "QUAL", control: "ORU-NEW"), name: "oru-new")
            #expect(Self.fields(first, "MSA").first?[1] == "AA", "\(first)")
            #expect(await Harness.waitUntil(timeout: 60) { s.h.endpoint.storedDocuments.contains { $0.uniqueId == document.id.root } })
            let deletion = try await s.send(try oru("^TEXT^XML^Base64^" + document.data.base64EncodedString(), control: "ORU-DEL-2"),
                                            name: "oru-del-cda")
            #expect(Self.fields(deletion, "MSA").first?[1] == "AA", "\(deletion)")
            let deleted = await Harness.waitUntil(timeout: 60) {
                s.h.endpoint.storedDocuments.contains { $0.uniqueId == document.id.root && $0.status == .deleted }
            }
            #expect(deleted, "\(s.h.endpoint.storedDocuments.map { "\($0.uniqueId) \($0.status)" })")
            let mailed = try await Harness.waitUntil(timeout: 60) { try s.mails().contains { $0.subject.contains("Document retiré") } }
            #expect(mailed)
            let notice = try #require(try s.mails().first { $0.subject.contains("Document retiré") })
            #expect(Set(notice.rcpt) == ["radiologie@hopitalA.mssante.fr", Self.recipient])
            #expect(notice.metadata.contains("value=\"\(document.id.root)\""), "the XDM names the withdrawn document")
            #expect(notice.metadata.contains("urn:asip:ci-sis:2010:action"))
            #expect(notice.documentSHA1 == document.sha1.hexString)
        }
    }

    /// MASQUE_PS with DESTMSSANTEPS (the matrix: a document masked to professionals never goes to
    /// one) over MLLP and the inbox, refused whole when the DMP is not asked, in part when it is.
    @Test func aForbiddenRoutingCombinationIsAEAtIntakeWithTheANSCode() async throws {
        let s = try await Setup()
        try await s.run { s in
        let journal = try s.h.journal()
        let forbidden: Set<String> = ["MASQUE_PS", "DESTMSSANTEPS"]

        let alone = try Self.cda(qualified: true)
        let ack = try await s.send(try Self.mdm("T02", cda: alone, status: "QUAL", control: "MASK-1", flags: forbidden), name: "mask")
        #expect(Self.fields(ack, "MSA").first?[1] == "AE", "\(ack)")
        let errors = Self.fields(ack, "ERR")
        #expect(errors.count == 1, "\(ack)")
        let err = try #require(errors.first)
        #expect(err[2] == "OBX^2^5", "the MASQUE_PS OBX")
        #expect(err[3].hasPrefix("207^"))
        #expect(err[5] == "906^Erreur 'Autre'^applicationErrorCondition")
        #expect(err[8].hasPrefix("combinaison interdite par la matrice de gestion MSSanté : DESTMSSANTEPS avec [MASQUE_PS]"), "\(err[8])")
        #expect(err[8].contains("n'est jamais adressé à une boîte MSSanté de professionnel"))

        try s.h.drop("mask.hl7", try Self.mdm("T02", cda: try Self.cda(qualified: true), status: "QUAL", control: "MASK-2", flags: forbidden))
        // The reason is written before the file is moved next to it: wait for both.
        let refused = await Harness.waitUntil(timeout: 30) { Set(s.h.files(in: s.h.error)).isSuperset(of: ["mask.hl7.error.txt", "mask.hl7"]) }
        #expect(refused)
        #expect(s.h.files(in: s.h.error).contains("mask.hl7"), "refused whole: the file is in error/")
        let reason = try String(contentsOf: s.h.error.appendingPathComponent("mask.hl7.error.txt"), encoding: .utf8)
        #expect(reason.hasPrefix("Passerelle a refusé mask.hl7 le "))
        #expect(reason.contains("combinaison interdite par la matrice de gestion MSSanté"), "\(reason)")
        #expect(try await journal.transmissions(matching: TransmissionFilter()).isEmpty, "nothing journaled, nothing sent")

        // With DESTDMP as well: the DMP part goes, the MSSanté part is refused at intake.
        let both = try Self.cda(qualified: true)
        let partial = try await s.send(try Self.mdm("T02", cda: both, status: "QUAL", control: "MASK-3", flags: forbidden.union(["DESTDMP"])),
                                       name: "mask-dmp")
        #expect(Self.fields(partial, "MSA").first?[1] == "AE", "\(partial)")
        #expect(Self.fields(partial, "ERR").first?[5] == "906^Erreur 'Autre'^applicationErrorCondition")
        #expect(Self.fields(partial, "ERR").last?[8] == "accepté et transmis pour DMP seulement")
        let stored = await Harness.waitUntil(timeout: 60) { s.h.endpoint.storedDocuments.contains { $0.uniqueId == both.id.root } }
        #expect(stored)
        let transmissions = try await journal.transmissions(matching: TransmissionFilter())
        #expect(transmissions.map(\.target) == [.dmp], "no MSSanté transmission: \(transmissions.map(\.target))")

        // DESTMSSANTEPS without any professional address (no PRT RCT): known at intake too.
        let nobody = try await s.send(try Self.mdm("T02", cda: try Self.cda(qualified: true), status: "QUAL", control: "NOBODY-1",
                                                   recipients: false), name: "nobody")
        #expect(Self.fields(nobody, "MSA").first?[1] == "AE", "\(nobody)")
        let missing = try #require(Self.fields(nobody, "ERR").first)
        #expect(missing[2] == "OBX^8^5", "the DESTMSSANTEPS OBX")
        #expect(missing[8].hasPrefix("MSSanté professionnels (DESTMSSANTEPS) : aucune adresse MSSanté de professionnel"), "\(missing[8])")
        #expect(Self.fields(nobody, "ERR").last?[8] == "accepté et transmis pour DMP seulement")
        #expect(try await journal.transmissions(matching: TransmissionFilter()).map(\.target) == [.dmp, .dmp])
        #expect(try s.smtp.received().isEmpty, "no mail")
        }
    }

    /// The same refusals in English with `[intake] language = "en"` (ERR-8 and the reason file).
    @Test func theTextsAreEnglishWithLanguageEn() async throws {
        let s = try await Setup(language: "en")
        try await s.run { s in
        let ack = try await s.send(try Self.mdm("T02", cda: try Self.cda(qualified: true), status: "QUAL", control: "MASK-EN",
                                                flags: ["MASQUE_PS", "DESTMSSANTEPS"]), name: "mask-en")
        #expect(Self.fields(ack, "ERR").first?[8].hasPrefix("combination forbidden by the MSSanté routing matrix: DESTMSSANTEPS with [MASQUE_PS]") == true,
                "\(ack)")
        // DESTDMP alone for a validated identity: nothing left, refused whole, naming the status.
        let vali = try await s.send(try Self.mdm("T02", cda: try Self.cda(qualified: false), status: "VALI", control: "VALI-EN", flags: ["DESTDMP"]),
                                    name: "vali-en")
        let err = try #require(Self.fields(vali, "ERR").first, "\(vali)")
        #expect(Self.fields(vali, "MSA").first?[1] == "AE")
        #expect(err[2] == "PID^1^32")
        #expect(err[8].hasPrefix("DMP: the patient's identity status is VALI; the DMP only accepts a qualified identity (QUAL)"), "\(err[8])")
        try s.h.drop("vali-en.hl7", try Self.mdm("T02", cda: try Self.cda(qualified: false), status: "VALI", control: "VALI-EN-2", flags: ["DESTDMP"]))
        #expect(await Harness.waitUntil(timeout: 30) { s.h.files(in: s.h.error).contains("vali-en.hl7.error.txt") })
        let reason = try String(contentsOf: s.h.error.appendingPathComponent("vali-en.hl7.error.txt"), encoding: .utf8)
        #expect(reason.hasPrefix("Passerelle refused vali-en.hl7 on "), "\(reason)")
        #expect(reason.contains("DMP: the patient's identity status is VALI"))
        }
    }
}
