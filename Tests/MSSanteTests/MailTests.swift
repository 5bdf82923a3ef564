import CDA
import Foundation
import MSSante
import OpenSSLKit
import PasserelleCore
import TestSupport
import Testing

/// Mails parsed back by Python's `email` package (an independent RFC 5322/2045/2047 reader).
@Suite struct MailTests {
    static let composer = try! MSSanteMailComposer(
        templatesDirectory: TestPaths.templates,
        options: .init(mailbox: "passerelle@hopital.mssante.fr", productReference: "DEV935997",
                       structureName: "Hôpital de démonstration"))

    struct Parsed: Decodable {
        var headers: [String: [String]]
        var body: String
        var attachments: [Attachment]
        var defects: [String]
        var contentType: String
        struct Attachment: Decodable {
            var filename: String; var contentType: String; var sha1: String; var size: Int; var base64: String?
        }
    }

    static func parse(_ data: Data, withAttachments: Bool = false) throws -> Parsed {
        let script = """
        import base64, email, email.policy, hashlib, json, sys
        raw = sys.stdin.buffer.read()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        headers = {}
        for k, v in msg.items():
            headers.setdefault(k, []).append(str(v))
        body = msg.get_body(preferencelist=("plain",)).get_content()
        atts = [{"filename": p.get_filename(), "contentType": p.get_content_type(),
                 "sha1": hashlib.sha1(p.get_content()).hexdigest(), "size": len(p.get_content()),
                 "base64": base64.b64encode(p.get_content()).decode() if len(sys.argv) > 1 else None}
                for p in msg.iter_attachments()]
        defects = [repr(d) for p in msg.walk() for d in p.defects]
        print(json.dumps({"headers": headers, "body": body, "attachments": atts, "defects": defects,
                          "contentType": msg.get_content_type()}))
        """
        let python = TestPaths.testVenv.appendingPathComponent("bin/python").path
        let run = try ProcessRunner.run(python, ["-c", script] + (withAttachments ? ["attachments"] : []), stdin: data)
        try #require(run.succeeded, "python: \(run.stderr)")
        return try JSONDecoder().decode(Parsed.self, from: Data(run.stdout.utf8))
    }

    static func build(flags: [MetaDMPMSSFlag], message: MSSanteMessage? = nil) throws -> (mails: [MSSanteMail], xdm: XDMPackage, pdf: Data) {
        var metadata = Fixtures.metadata(flags: flags)
        if let message { metadata.mssante = message }
        let pdf = TestPDF.make(text: "Lettre de liaison")
        let document = try XDMTests.cdaBuilder.build(metadata: metadata, pdf: pdf)
        let xdm = try XDMTests.builder.build(document: document, metadata: metadata)
        let recipients = try MSSanteRouting.recipients(for: metadata)
        return (try composer.compose(document: document, metadata: metadata, recipients: recipients, xdm: xdm, pdf: pdf), xdm, pdf)
    }

    @Test func professionalAndPatientMailsParseWithAllHeaders() throws {
        let subject = "Compte rendu d'hospitalisation — Œdème aigu du poumon, séjour du 15 au 20 novembre 2026 (très long sujet)"
        let (mails, xdm, pdf) = try Self.build(
            flags: [.destMSSantePS, .destMSSantePatient, .ackLecture],
            message: MSSanteMessage(recipients: ["dr.martin@hopital.mssante.fr", "secretariat@clinique.mssante.fr"],
                                    replyTo: "service.cardio@hopital.mssante.fr", professionalSubject: subject,
                                    professionalBody: "Cher confrère,\nvoici le CR.\n"))
        #expect(mails.map(\.audience) == [.professionals, .patient])
        #expect(mails[0].envelopeID != mails[1].envelopeID)

        for mail in mails {
            let data = try mail.message.rendered()
            // 7-bit, CRLF only, lines within 78 characters (RFC 5322 §2.1.1).
            #expect(data.allSatisfy { $0 < 128 })
            let text = String(decoding: data, as: UTF8.self)
            #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
            for line in text.components(separatedBy: "\r\n") { #expect(line.count <= 78, "long line: \(line)") }

            let parsed = try Self.parse(data)
            #expect(parsed.defects.isEmpty, "\(parsed.defects)")
            #expect(parsed.contentType == "multipart/mixed")
            #expect(parsed.headers["From"] == ["passerelle@hopital.mssante.fr"])
            #expect(parsed.headers["Reply-To"] == ["service.cardio@hopital.mssante.fr"])
            // Folded before the id when long (CFWS): Python keeps the leading space.
            #expect(parsed.headers["Message-ID"]?.map { $0.trimmingCharacters(in: .whitespaces) } == [mail.message.messageID])
            #expect(parsed.headers["X-MSS-CODECDA"] == ["11490-0"])
            #expect(parsed.headers["X-MSS-INS"] == ["O"])
            #expect(parsed.headers["X-MSS-NIL"] == ["DEV935997"])
            #expect(parsed.headers["Disposition-Notification-To"] == ["passerelle@hopital.mssante.fr"])
            #expect(parsed.headers["Date"]?.count == 1)
            #expect(parsed.attachments.map(\.filename) == ["IHE_XDM.zip", "LDL.pdf"])
            #expect(parsed.attachments.map(\.contentType) == ["application/zip", "application/pdf"])
            #expect(parsed.attachments[0].sha1 == Digest.sha1(xdm.zip).hexString && parsed.attachments[0].size == xdm.zip.count)
            #expect(parsed.attachments[1].sha1 == Digest.sha1(pdf).hexString)
            switch mail.audience {
            case .professionals:
                #expect(parsed.headers["To"] == ["dr.martin@hopital.mssante.fr, secretariat@clinique.mssante.fr"])
                #expect(parsed.headers["Subject"] == [subject])
                #expect(parsed.body == "Cher confrère,\r\nvoici le CR.\r\n")  // canonical CRLF text (RFC 2045)
                #expect(parsed.headers["X-MSS-MES"] == nil)
            case .patient:
                #expect(parsed.headers["To"] == [RoutingTests.patientAddress])
                #expect(parsed.headers["X-MSS-MES"] == ["FIN"])
                #expect(parsed.headers["Subject"] == [DocumentKind.dischargeLetter.defaultTitle])
                #expect(parsed.body.contains("Hôpital de démonstration vous transmet"))
            }
        }
    }

    @Test func defaultsWithoutProducerTextAndWithoutReadReceipt() throws {
        let (mails, _, _) = try Self.build(flags: [.destMSSantePS])
        #expect(mails.count == 1)
        let parsed = try Self.parse(try mails[0].message.rendered())
        #expect(parsed.headers["Disposition-Notification-To"] == nil)
        #expect(parsed.headers["Reply-To"] == nil)
        #expect(parsed.headers["Subject"]?.first?.hasPrefix("XDM/1.0/DDM+") == true)
        #expect(parsed.body.contains("Veuillez trouver ci-joint"))
    }

    @Test func unqualifiedIdentityIsFlaggedN() throws {
        let metadata = Fixtures.metadata(status: .validated, flags: [.destMSSantePS])
        let pdf = TestPDF.make()
        let document = try XDMTests.cdaBuilder.build(metadata: metadata, pdf: pdf)
        let xdm = try XDMTests.builder.build(document: document, metadata: metadata)
        let mails = try Self.composer.compose(document: document, metadata: metadata,
                                              recipients: try MSSanteRouting.recipients(for: metadata), xdm: xdm, pdf: pdf)
        #expect(try Self.parse(try mails[0].message.rendered()).headers["X-MSS-INS"] == ["N"])
    }

    @Test func headerInjectionIsRefused() throws {
        var message = MailMessage(from: "a@b.fr", to: ["c@d.fr"], subject: "s", body: "b")
        message.addHeader("X-MSS-NIL", "x\r\nBcc: evil@z.fr")
        #expect(throws: MailError.invalidHeader(name: "X-MSS-NIL")) { try message.rendered() }
        let badTo = MailMessage(from: "a@b.fr", to: ["c@d.fr>\r\nBcc: <e@f.fr"], subject: "s", body: "b")
        #expect(throws: MailError.invalidHeader(name: "To")) { try badTo.rendered() }
        // A subject with line breaks is flattened, not injected.
        let flattened = MailMessage(from: "a@b.fr", to: ["c@d.fr"], subject: "x\r\nBcc: evil@z.fr", body: "b")
        let parsed = try Self.parse(try flattened.rendered())
        #expect(parsed.headers["Bcc"] == nil)
    }
}
