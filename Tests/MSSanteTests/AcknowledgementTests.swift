import CurlKit
import Delivery
import DMP
import Foundation
import Gateway
import Journal
import MSSante
import OpenSSLKit
import PasserelleCore
import Signing
import Testing
import TestSupport

@Suite(.serialized) struct MSSanteAcknowledgementTests {
    static let domain = "hopital.mssante.fr"
    static let mailbox = "passerelle@\(domain)"

    static func configuration(_ server: TestIMAPServer, certificate: String? = "org-auth") throws -> IMAPConfiguration {
        let pki = TestPaths.testPKI
        let passphrase = TLSPassphrase(try TestPaths.testPKIPassphrase())
        return IMAPConfiguration(
            host: "127.0.0.1", port: server.port, username: TestIMAPServer.user, password: TLSPassphrase(TestIMAPServer.password),
            tls: TLSClientOptions(caBundle: pki.appendingPathComponent("ca.pem"),
                                  clientIdentity: certificate.map { .pkcs12(pki.appendingPathComponent("\($0).p12"), passphrase: passphrase) },
                                  maximumVersion: .v1_2),
            timeouts: CurlTimeouts(connect: .seconds(5), total: .seconds(20)))
    }

    /// A journal holding `count` MSSanté transmissions in state `sent`, each with a Message-ID.
    static func journal(sent count: Int) async throws -> (store: SQLiteJournalStore, folder: URL, sent: [(Transmission, String)]) {
        let folder = try TestPaths.temporaryDirectory("ack-journal")
        let now = Date()
        let store = try SQLiteJournalStore(path: folder.appendingPathComponent("journal.db").path,
                                           blobs: try BlobStore(root: folder.appendingPathComponent("blobs")), now: now)
        var sent: [(Transmission, String)] = []
        for n in 1...count {
            let document = JournalDocument(id: "1.2.250.1.999.1^DOC-\(n)", kind: .dischargeLetter, maskedINS: "2**********89",
                                           identityStatus: "VALI", finess: "750803447", receivedAt: now)
            _ = try await store.accept(document, content: Data("in \(n)".utf8), input: nil, stay: nil, now: now)
            _ = try await store.markBuilt(documentID: document.id, version: 1, built: Data("<ClinicalDocument/>".utf8), now: now)
            _ = try await store.enqueue(documentID: document.id, version: 1, targets: [.mssantePS], now: now)
            let claim = try #require(try await store.claimNext(target: .mssantePS, now: now, lease: 60, owner: "test"))
            let envelopeID = "2.25.1000\(n).1"
            try await store.recordMessageID("<\(envelopeID)@\(domain)>", transmissionID: claim.transmission.id, owner: "test")
            _ = try await store.complete(claim, owner: "test", outcome: .success(state: .sent, response: nil), now: now)
            sent.append((try #require(try await store.transmission(id: claim.transmission.id)), envelopeID))
        }
        return (store, folder, sent)
    }

    // MARK: report fixtures, written as an MTA and a receiving system would

    static func dsn(envelopeID: String, recipient: String, action: String, status: String, diagnostic: String? = nil) -> Data {
        let text = """
        From: MAILER-DAEMON@mx.autre-hopital.mssante.fr\r
        To: \(mailbox)\r
        Subject: Delivery Status Notification\r
        Message-ID: <dsn-\(UUID().uuidString)@mx.autre-hopital.mssante.fr>\r
        MIME-Version: 1.0\r
        Content-Type: multipart/report; report-type=delivery-status;\r
        \tboundary="DSN-BOUNDARY"\r
        \r
        This is a MIME-encapsulated message.\r
        \r
        --DSN-BOUNDARY\r
        Content-Type: text/plain; charset=us-ascii\r
        \r
        Your message was \(action).\r
        \r
        --DSN-BOUNDARY\r
        Content-Type: message/delivery-status\r
        \r
        Reporting-MTA: dns; mx.autre-hopital.mssante.fr\r
        Original-Envelope-Id: \(envelopeID)\r
        Arrival-Date: Mon, 23 Nov 2026 10:00:00 +0100\r
        \r
        Original-Recipient: rfc822;\(recipient)\r
        Final-Recipient: rfc822; \(recipient)\r
        Action: \(action)\r
        Status: \(status)\r
        \(diagnostic.map { "Diagnostic-Code: smtp; \($0)\r\n" } ?? "")\r
        --DSN-BOUNDARY\r
        Content-Type: text/rfc822-headers\r
        \r
        From: \(mailbox)\r
        To: \(recipient)\r
        Subject: XDM/1.0/DDM+Lettre de liaison\r
        \r
        --DSN-BOUNDARY--\r

        """
        return Data(text.utf8)
    }

    static func mdn(messageID: String, recipient: String, disposition: String) -> Data {
        let text = """
        From: \(recipient)\r
        To: \(mailbox)\r
        Subject: Accuse de lecture\r
        MIME-Version: 1.0\r
        Content-Type: multipart/report; report-type=disposition-notification; boundary=MDN-B\r
        \r
        --MDN-B\r
        Content-Type: text/plain; charset=utf-8\r
        Content-Transfer-Encoding: 8bit\r
        \r
        Le message a été traité.\r
        --MDN-B\r
        Content-Type: message/disposition-notification\r
        \r
        Reporting-UA: pfi.autre-hopital.fr; PFI 2.0\r
        Original-Recipient: rfc822;\(recipient)\r
        Final-Recipient: rfc822;\(recipient)\r
        Original-Message-ID: \(messageID)\r
        Disposition: automatic-action/MDN-sent-automatically; \(disposition)\r
        \r
        --MDN-B\r
        Content-Type: message/rfc822\r
        \r
        From: \(mailbox)\r
        Message-ID: \(messageID)\r
        Subject: original\r
        \r
        body\r
        --MDN-B--\r

        """
        return Data(text.utf8)
    }

    /// DSN delivered then MDN displayed → read; DSN failed → failed with the server's reason;
    /// delivered then MDN integration error 902 → failed; an ordinary mail → unmatched folder.
    /// A second poll finds nothing: every message was moved out of the inbox.
    /// Crash cases: a DSN that overtakes the sender's own record of the send waits in the inbox
    /// until the worker has written `sent`; a DSN for a send that a crash interrupted (lease
    /// expired) proves the mail went out: the transmission is settled, not mailed again.
    @Test func aDSNWaitsForTheSendInProgressAndSettlesAnInterruptedOne() async throws {
        let server = try TestIMAPServer()
        defer { server.stop() }
        let folder = try TestPaths.temporaryDirectory("ack-crash")
        defer { try? FileManager.default.removeItem(at: folder) }
        let now = Date()
        let journal = try SQLiteJournalStore(path: folder.appendingPathComponent("journal.db").path,
                                             blobs: try BlobStore(root: folder.appendingPathComponent("blobs")), now: now)
        var claims: [(ClaimedTransmission, String)] = []
        for n in 1...2 {
            let document = JournalDocument(id: "1.2.250.1.999.1^CRASH-\(n)", kind: .dischargeLetter, finess: "750803447", receivedAt: now)
            _ = try await journal.accept(document, content: Data("in \(n)".utf8), input: nil, stay: nil, now: now)
            _ = try await journal.markBuilt(documentID: document.id, version: 1, built: Data("<ClinicalDocument/>".utf8), now: now)
            _ = try await journal.enqueue(documentID: document.id, version: 1, targets: [.mssantePS], now: now)
            // The first lease runs for minutes (a live sender); the second has expired (its sender died).
            let claim = try #require(try await journal.claimNext(target: .mssantePS, now: now, lease: n == 1 ? 600 : -1, owner: "w\(n)"))
            let envelopeID = "2.25.2000\(n).1"
            try await journal.recordMessageID("<\(envelopeID)@\(Self.domain)>", transmissionID: claim.transmission.id, owner: "w\(n)")
            claims.append((claim, envelopeID))
            try server.deliver(Self.dsn(envelopeID: envelopeID, recipient: "dr.martin@hopital.mssante.fr", action: "delivered",
                                        status: "2.0.0"), name: "dsn-\(n)")
        }
        let poller = try AcknowledgementPoller(configuration: try Self.configuration(server), mailbox: Self.mailbox)
        let first = try await poller.poll(journal: journal)
        #expect(first.messages == 1 && first.delivered == 1 && first.interruptedConfirmed == 1, "\(first)")
        #expect(server.count("INBOX") == 1, "the DSN of the send in progress is kept for the next poll")
        let interrupted = try #require(try await journal.transmission(id: claims[1].0.transmission.id))
        #expect(interrupted.state == .delivered && !interrupted.needsRecheck)
        #expect(try await journal.attempts(transmissionID: interrupted.id).map(\.outcome) == ["interrupted"])
        #expect(try await journal.transmission(id: claims[0].0.transmission.id)?.state == .sending)

        // The live sender records its success; the DSN kept in the inbox now moves it on.
        _ = try await journal.complete(claims[0].0, owner: "w1", outcome: .success(state: .sent), now: Date())
        let second = try await poller.poll(journal: journal)
        #expect(second.messages == 1 && second.delivered == 1 && second.interruptedConfirmed == 0, "\(second)")
        #expect(try await journal.transmission(id: claims[0].0.transmission.id)?.state == .delivered)
        #expect(server.count("INBOX") == 0)
        #expect(try await journal.claimNext(target: .mssantePS, now: Date().addingTimeInterval(86_400), lease: 60, owner: "w3") == nil,
                "nothing is mailed again")
    }

    @Test func reportsMoveTransmissionsAndAreReadOnce() async throws {
        let server = try TestIMAPServer()
        defer { server.stop() }
        let (journal, folder, sent) = try await Self.journal(sent: 3)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (a, envA) = sent[0], (b, envB) = sent[1], (c, envC) = sent[2]
        let patient = "279035121518989@patient.mssante.fr"

        try server.deliver(Self.dsn(envelopeID: envA, recipient: "dr.martin@hopital.mssante.fr", action: "delivered", status: "2.0.0"), name: "1")
        try server.deliver(Self.mdn(messageID: "<\(envA)@\(Self.domain)>", recipient: "dr.martin@hopital.mssante.fr",
                                    disposition: "displayed"), name: "2")
        try server.deliver(Self.dsn(envelopeID: envB, recipient: patient, action: "failed", status: "5.1.1",
                                    diagnostic: "550 5.1.1 <\(patient)>: Recipient address rejected: mailbox unknown"), name: "3")
        try server.deliver(Self.dsn(envelopeID: envC, recipient: "pfi@autre-hopital.mssante.fr", action: "delivered", status: "2.0.0"),
                           name: "4")
        try server.deliver(Self.mdn(messageID: "<\(envC)@\(Self.domain)>", recipient: "pfi@autre-hopital.mssante.fr",
                                    disposition: "processed/Error: 902^Patient inconnu"), name: "5")
        try server.deliver(Data("From: x@y.fr\r\nTo: \(Self.mailbox)\r\nSubject: hello\r\n\r\nnot a report\r\n".utf8), name: "6")
        #expect(server.count("INBOX") == 6)

        let poller = try AcknowledgementPoller(configuration: try Self.configuration(server), mailbox: Self.mailbox)
        let summary = try await poller.poll(journal: journal)
        #expect(summary.messages == 6 && summary.delivered == 2 && summary.read == 1 && summary.failed == 2 && summary.unmatched == 1,
                "\(summary)")

        let afterA = try #require(try await journal.transmission(id: a.id))
        #expect(afterA.state == .read)
        #expect(try await journal.acknowledgements(transmissionID: a.id).map(\.kind) == [.delivered, .read])

        let afterB = try #require(try await journal.transmission(id: b.id))
        #expect(afterB.state == .failed)
        let reason = try #require(afterB.lastError)
        #expect(reason.contains("5.1.1") && reason.contains("mailbox unknown"), "\(reason)")
        #expect(!reason.contains("279035121518989"), "the patient's address (INS) must not reach the journal: \(reason)")

        let afterC = try #require(try await journal.transmission(id: c.id))
        #expect(afterC.state == .failed)
        #expect(afterC.lastError?.contains("902^Patient inconnu") == true, "\(afterC.lastError ?? "")")

        #expect(server.count("INBOX") == 0)
        #expect(server.count("Passerelle-traites") == 5)
        #expect(server.count("Passerelle-non-reconnus") == 1)
        let again = try await poller.poll(journal: journal)
        #expect(again == PollSummary())
    }

    /// Anyone can mail the application mailbox: a message far larger than any report must be
    /// neither downloaded whole nor parsed, and must not stop the reports behind it (it would
    /// fail every poll and block all acknowledgements).
    @Test func anOversizedMessageIsSetAsideAndTheReportsBehindItAreRead() async throws {
        let server = try TestIMAPServer()
        defer { server.stop() }
        let (journal, folder, sent) = try await Self.journal(sent: 1)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (a, envA) = sent[0]
        var huge = Data("From: x@y.fr\r\nTo: \(Self.mailbox)\r\nSubject: big\r\n\r\n".utf8)
        let line = Data((String(repeating: "A", count: 998) + "\r\n").utf8)
        for _ in 0..<(2 << 20) / line.count { huge.append(line) }  // ≈ 2 MB
        try server.deliver(huge, name: "1")
        try server.deliver(Self.dsn(envelopeID: envA, recipient: "dr.martin@hopital.mssante.fr", action: "delivered", status: "2.0.0"), name: "2")

        var configuration = try Self.configuration(server)
        configuration.maxReportBytes = 1 << 20
        let poller = try AcknowledgementPoller(configuration: configuration, mailbox: Self.mailbox)
        let summary = try await poller.poll(journal: journal)
        #expect(summary.oversized == 1 && summary.unmatched == 1 && summary.delivered == 1 && summary.messages == 2, "\(summary)")
        #expect(try #require(try await journal.transmission(id: a.id)).state == .delivered)
        #expect(server.count("INBOX") == 0)
        #expect(server.count("Passerelle-non-reconnus") == 1)
        #expect(server.count("Passerelle-traites") == 1)
    }

    /// The whole loop through the public API: a claimed transmission is mailed (aiosmtpd),
    /// its Message-ID recorded; the DSN and MDN a remote system would build from what the
    /// server received come back through Dovecot and move it to delivered, then read.
    @Test func sentMailIsDeliveredThenRead() async throws {
        let smtp = try TestSMTPServer(mode: "starttls")
        defer { smtp.stop() }
        let imap = try TestIMAPServer()
        defer { imap.stop() }
        let folder = try TestPaths.temporaryDirectory("ack-loop")
        defer { try? FileManager.default.removeItem(at: folder) }
        let journal = try SQLiteJournalStore(path: folder.appendingPathComponent("journal.db").path,
                                             blobs: try BlobStore(root: folder.appendingPathComponent("blobs")))
        let metadata = Fixtures.metadata(flags: [.destMSSantePS, .ackLecture])
        let pdf = TestPDF.make()
        let document = try XDMTests.cdaBuilder.build(metadata: metadata, pdf: pdf)
        let now = Date()
        _ = try await journal.accept(JournalDocument(id: document.id.description, kind: .dischargeLetter, finess: "750803447", receivedAt: now),
                                     content: pdf, input: nil, stay: nil, now: now)
        _ = try await journal.markBuilt(documentID: document.id.description, version: 1, built: document.data, now: now)
        _ = try await journal.enqueue(documentID: document.id.description, version: 1, targets: [.mssantePS], now: now)
        let claim = try #require(try await journal.claimNext(target: .mssantePS, now: now, lease: 60, owner: "w1"))

        // What the service does: choose the mail (and its Message-ID) first, record the id, then send.
        let sender = try SMTPTests.sender(smtp, security: .startTLS)
        let mail = try sender.prepare(document: document, metadata: metadata, pdf: pdf, target: claim.transmission.target,
                                      messageID: claim.transmission.messageID)
        try await journal.recordMessageID(mail.message.messageID, transmissionID: claim.transmission.id, owner: "w1")
        let result = try await sender.send(mail)
        let completion = try await journal.complete(claim, owner: "w1", outcome: result.journalOutcome, now: now)
        #expect(completion.state == .sent)

        let received = try #require(try smtp.received().first)
        let envelopeID = try #require(received.dsn_mail["ENVID"])
        let sentHeaders = try MailTests.parse(try #require(Data(base64Encoded: received.data)))
        let messageID = try #require(sentHeaders.headers["Message-ID"]?.first).trimmingCharacters(in: .whitespaces)
        #expect(sentHeaders.headers["Disposition-Notification-To"] == [Self.mailbox])
        try imap.deliver(Self.dsn(envelopeID: envelopeID, recipient: received.rcpt_tos[0], action: "delivered", status: "2.0.0"), name: "1")
        let poller = try AcknowledgementPoller(configuration: try Self.configuration(imap), mailbox: Self.mailbox)
        #expect(try await poller.poll(journal: journal).delivered == 1)
        #expect(try await journal.transmission(id: claim.transmission.id)?.state == .delivered)
        try imap.deliver(Self.mdn(messageID: messageID, recipient: received.rcpt_tos[0], disposition: "displayed"), name: "2")
        let second = try await poller.poll(journal: journal)
        #expect(second.read == 1, "\(second) \(messageID)")
        #expect(try await journal.transmission(id: claim.transmission.id)?.state == .read)
    }

    /// No password configured: SASL EXTERNAL, the client certificate is the login.
    @Test func certificateAloneLogsInWithSASLExternal() async throws {
        // Dovecot names the user after the certificate's commonName, in lower case.
        let server = try TestIMAPServer(certificateUser: "passerelle.ch-test.fr (org_auth_cli)")
        defer { server.stop() }
        let (journal, folder, sent) = try await Self.journal(sent: 1)
        defer { try? FileManager.default.removeItem(at: folder) }
        try server.deliver(Self.dsn(envelopeID: sent[0].1, recipient: "dr.martin@hopital.mssante.fr", action: "delivered", status: "2.0.0"),
                           name: "1")
        var configuration = try Self.configuration(server)
        configuration.username = ""  // no authorization identity: the certificate's
        configuration.password = nil
        let summary = try await AcknowledgementPoller(configuration: configuration, mailbox: Self.mailbox).poll(journal: journal)
        #expect(summary.delivered == 1, "\(summary)")
        #expect(try await journal.transmission(id: sent[0].0.id)?.state == .delivered)
        // Without a certificate, EXTERNAL has nothing to go on.
        var anonymous = try Self.configuration(server, certificate: nil)
        anonymous.username = ""
        anonymous.password = nil
        await #expect(throws: AcknowledgementError.self) {
            _ = try await AcknowledgementPoller(configuration: anonymous, mailbox: Self.mailbox).poll(journal: journal)
        }
    }

    @Test func imapRequiresTheClientCertificate() async throws {
        let server = try TestIMAPServer()
        defer { server.stop() }
        let (journal, folder, _) = try await Self.journal(sent: 1)
        defer { try? FileManager.default.removeItem(at: folder) }
        try server.deliver(Self.dsn(envelopeID: "x", recipient: "a@b.fr", action: "delivered", status: "2.0.0"), name: "1")
        for certificate in [nil, "unknown-auth", "expired-auth"] as [String?] {
            let poller = try AcknowledgementPoller(configuration: try Self.configuration(server, certificate: certificate),
                                                   mailbox: Self.mailbox)
            do {
                _ = try await poller.poll(journal: journal)
                Issue.record("\(certificate ?? "no certificate"): the server let us in")
            } catch {
                // Dovecot finishes the handshake, then refuses the login without a valid certificate.
                guard case let .imap(_, curl) = error else { Issue.record("\(error)"); continue }
                #expect([.loginDenied, .clientCertificate, .tlsHandshake].contains(curl.kind), "\(curl)")
                #expect(!error.isTransient)
            }
        }
        #expect(server.count("INBOX") == 1)
    }

    /// Parsing alone: ANS error codes, dispositions, DSN actions, non-reports.
    @Test func reportsParse() throws {
        let failed = try #require(MailReport.parse(Self.dsn(envelopeID: "E+1", recipient: "a@b.fr", action: "failed", status: "5.2.2",
                                                            diagnostic: "552 mailbox full")))
        #expect(failed.kind == .deliveryStatus && failed.envelopeID == "E+1")
        #expect(failed.entries == [MailReport.Entry(recipient: "a@b.fr", outcome: .failed(status: "5.2.2", diagnostic: "552 mailbox full"))])
        let delayed = try #require(MailReport.parse(Self.dsn(envelopeID: "E", recipient: "a@b.fr", action: "delayed", status: "4.4.1")))
        #expect(delayed.entries.first?.outcome == .delayed)
        for code in 900...906 {
            let report = try #require(MailReport.parse(Self.mdn(messageID: "<m@d>", recipient: "a@b.fr",
                                                                disposition: "processed/Error: \(code)^Libellé \(code)")))
            #expect(report.originalMessageID == "<m@d>")
            #expect(report.entries.first?.outcome == .integrationError(code: "\(code)", label: "Libellé \(code)"))
        }
        #expect(MailReport.parse(Self.mdn(messageID: "<m@d>", recipient: "a@b.fr", disposition: "processed"))?.entries.first?.outcome
                == .read(disposition: "processed"))
        #expect(MailReport.parse(Self.mdn(messageID: "<m@d>", recipient: "a@b.fr", disposition: "deleted"))?.entries.first?.outcome
                == .other(disposition: "deleted"))
        #expect(MailReport.parse(Data("Subject: x\r\n\r\nbody\r\n".utf8)) == nil)
    }

    /// The transport's side alone: a report becomes acknowledgements in MSSanté terms (kind,
    /// the Message-IDs to match, a detail with the patient's address masked), no journal involved.
    @Test func reportsBecomeParsedAcknowledgements() throws {
        let pki = TestPaths.testPKI
        let poller = try AcknowledgementPoller(configuration: IMAPConfiguration(
            host: "127.0.0.1", port: 1, username: "nobody", password: nil,
            tls: TLSClientOptions(caBundle: pki.appendingPathComponent("ca.pem"))), mailbox: Self.mailbox)
        let patient = "279035121518989@\(MSSanteRouting.patientDomain)"
        let failed = try #require(poller.parse(Self.dsn(envelopeID: "E+1", recipient: patient, action: "failed", status: "5.2.2",
                                                        diagnostic: "552 mailbox of 279035121518989 full")))
        #expect(failed.kind == .deliveryStatus)
        #expect(failed.messageIDs == ["<E+1@\(Self.domain)>"])
        #expect(failed.acknowledgements.map(\.kind) == [.failed])
        let detail = try #require(failed.acknowledgements.first?.detail)
        #expect(detail.hasPrefix("DSN failed for the patient mailbox: 5.2.2"), "\(detail)")
        #expect(!detail.contains("279035121518989"), "the INS must not reach the journal: \(detail)")

        let read = try #require(poller.parse(Self.mdn(messageID: "m@d", recipient: "dr@hopital.mssante.fr", disposition: "displayed")))
        #expect(read.kind == .disposition)
        #expect(read.messageIDs == ["<m@d>"])
        #expect(read.acknowledgements == [ParsedAcknowledgement(kind: .read, detail: "MDN displayed by dr@hopital.mssante.fr")])

        let delivered = try #require(poller.parse(Self.dsn(envelopeID: "E2", recipient: "a@b.fr", action: "delivered", status: "2.0.0")))
        #expect(delivered.acknowledgements == [ParsedAcknowledgement(kind: .delivered, detail: "DSN delivered to a@b.fr (2.0.0)")])
        let delayed = try #require(poller.parse(Self.dsn(envelopeID: "E3", recipient: "a@b.fr", action: "delayed", status: "4.4.1")))
        #expect(delayed.acknowledgements.map(\.kind) == [.ignored])
        let error = try #require(poller.parse(Self.mdn(messageID: "<m@d>", recipient: "a@b.fr", disposition: "processed/Error: 901^Libellé")))
        #expect(error.acknowledgements == [ParsedAcknowledgement(kind: .failed, detail: "MDN error 901^Libellé from a@b.fr")])
        #expect(poller.parse(Data("Subject: x\r\n\r\nbody\r\n".utf8)) == nil)
    }
}

/// The factories the service calls, fed from a real `passerelle.toml`.
@Suite(.serialized) struct MSSanteConfigurationTests {
    @Test func senderAndPollerFromTheConfigurationFile() async throws {
        let smtp = try TestSMTPServer(mode: "implicit")
        defer { smtp.stop() }
        let imap = try TestIMAPServer()
        defer { imap.stop() }
        let toml = TestConfiguration.withTestPKI().replacingOccurrences(of: "[mssante]\nenabled = false", with: """
            [mssante]
            enabled = true
            smtp_host = "127.0.0.1"
            smtp_port = \(smtp.port)
            smtp_tls = "implicit"
            imap_url = "imaps://\(TestIMAPServer.user)@127.0.0.1:\(imap.port)/INBOX"
            mailbox = "passerelle@hopital.mssante.fr"
            product_reference = "Passerelle/test"
            """)
        let configuration = try PasserelleConfiguration.parse(toml, file: "/tmp/passerelle-test.toml")
        // As `passerelle run` wires it: the key material loaded once, each part given its share.
        let keys = try KeyMaterial.load(try #require(GatewayService.keyMaterialSource(configuration)))
        let identity = try #require(keys.authentication)
        let sender = try MSSanteSender(settings: try MSSanteSenderSettings(configuration), identity: identity,
                                       templatesDirectory: TestPaths.templates)
        let metadata = Fixtures.metadata()
        let pdf = TestPDF.make()
        let document = try XDMTests.cdaBuilder.build(metadata: metadata, pdf: pdf)
        // No PDF given: the one inside the N1 CDA is attached (what the service does).
        let result = try await sender.send(document: document, metadata: metadata, target: .mssantePS)
        #expect(result.accepted == ["dr.martin@hopital.mssante.fr"] && result.tlsVersion == "TLSv1.2")
        let received = try #require(try smtp.received().first)
        #expect(received.client_subject?["commonName"]?.contains("ORG_AUTH_CLI") == true)
        let parsed = try MailTests.parse(try #require(Data(base64Encoded: received.data)))
        #expect(parsed.headers["X-MSS-NIL"] == ["Passerelle/test"])
        #expect(parsed.attachments.map(\.filename) == ["IHE_XDM.zip", "LDL.pdf"])
        #expect(parsed.attachments.last?.sha1 == Digest.sha1(pdf).hexString)

        let poller = try AcknowledgementPoller(configuration: try IMAPConfiguration(configuration, identity: try .inMemory(identity),
                                                                                   password: TLSPassphrase(TestIMAPServer.password)),
                                               mailbox: configuration.mssante.mailbox)
        let folder = try TestPaths.temporaryDirectory("ack-config")
        defer { try? FileManager.default.removeItem(at: folder) }
        let journal = try SQLiteJournalStore(path: folder.appendingPathComponent("journal.db").path,
                                             blobs: try BlobStore(root: folder.appendingPathComponent("blobs")))
        #expect(try await poller.poll(journal: journal) == PollSummary())
        // [mssante] disabled: refused with a message naming the section.
        let disabled = try PasserelleConfiguration.parse(TestConfiguration.withTestPKI(), file: "/tmp/passerelle-test.toml")
        #expect { try MSSanteSenderSettings(disabled) } throws: { "\($0)".contains("[mssante]") }
    }
}

/// The service's transport (Delivery's MSSanteTransmissionSender) over the real SMTP server.
@Suite(.serialized) struct MSSanteTransmissionSenderTests {
    @Test func recordsTheMessageIDThenSendsAndReusesItAfterACrash() async throws {
        let smtp = try TestSMTPServer(mode: "starttls")
        defer { smtp.stop() }
        let f = try await GatewayMailFixture(smtp, folder: "mss-gateway")
        defer { f.remove() }
        let (journal, transport, outgoing) = (f.journal, f.transport, f.outgoing)

        let claim = try #require(try await journal.claimNext(target: .mssantePatient, now: Date(), lease: 1, owner: "w1"))
        let outcome = await transport.send(claim, document: outgoing)
        guard case .success(.sent, _) = outcome else { Issue.record("\(outcome)"); return }
        let recorded = try #require(try await journal.transmission(id: claim.transmission.id)?.messageID)
        let firstReceived = try #require(try smtp.received().first)
        let first = try MailTests.parse(try #require(Data(base64Encoded: firstReceived.data)))
        #expect(first.headers["Message-ID"]?.map { $0.trimmingCharacters(in: .whitespaces) } == [recorded])
        #expect(first.headers["To"] == [RoutingTests.patientAddress])

        // The worker died before completing: the lease expires, the transmission is claimed
        // again with needsRecheck, and the resend carries the same Message-ID.
        let recovered = try await journal.recoverInterrupted(now: Date().addingTimeInterval(5))
        #expect(recovered.map(\.id) == [claim.transmission.id])
        let again = try #require(try await journal.claimNext(target: .mssantePatient, now: Date().addingTimeInterval(6), lease: 60, owner: "w2"))
        #expect(again.transmission.needsRecheck && again.transmission.messageID == recorded)
        guard case .success = await transport.send(again, document: outgoing) else { Issue.record("resend failed"); return }
        let second = try MailTests.parse(try #require(Data(base64Encoded: try smtp.received()[1].data)))
        #expect(second.headers["Message-ID"]?.map { $0.trimmingCharacters(in: .whitespaces) } == [recorded])

        // Refused before sending (unqualified identity): a permanent identity failure, nothing sent.
        var unqualified = outgoing
        unqualified.metadata = Fixtures.metadata(status: .provisional, flags: [.destMSSantePatient])
        let refused = await transport.send(again, document: unqualified)
        guard case .failure(.identity, _) = refused else { Issue.record("\(refused)"); return }
        #expect(try smtp.received().count == 2)
    }
}
