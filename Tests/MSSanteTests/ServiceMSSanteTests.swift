import Foundation
import Gateway
import Journal
import PasserelleCore
import Testing
import TestSupport

/// The whole service with MSSanté as configured in `passerelle.toml`: a PDF + sidecar dropped
/// in the inbox goes out by SMTP to the real test relay, and the DSN then the MDN that the
/// test puts in the real Dovecot mailbox move the transmission to delivered, then read.
@Suite(.serialized) struct ServiceMSSanteTests {
    @Test func inboxToSMTPThenDeliveredAndReadFromIMAP() async throws {
        let smtp = try TestSMTPServer(mode: "starttls")
        defer { smtp.stop() }
        // The service logs in with its certificate alone (SASL EXTERNAL).
        let imap = try TestIMAPServer(certificateUser: "passerelle.ch-test.fr (org_auth_cli)")
        defer { imap.stop() }
        let root = try TestPaths.temporaryDirectory("service-mssante")
        defer { try? FileManager.default.removeItem(at: root) }

        let toml = TestConfiguration.withTestPKI()
            .replacingOccurrences(of: "/tmp/passerelle-test", with: root.path)
            .replacingOccurrences(of: "[mssante]\nenabled = false", with: TestConfiguration.mssanteSection(
                smtpPort: smtp.port, imapPort: imap.port, mailbox: MSSanteAcknowledgementTests.mailbox))
        let configuration = try PasserelleConfiguration.parse(toml, file: root.appendingPathComponent("passerelle.toml").path)
        let service = try GatewayService.make(configuration: configuration, templates: TestPaths.templates, pollInterval: 0.1)
        let running = Task { try await service.run() }
        defer { service.stop() }

        // A discharge letter for one professional mailbox, dropped as a producer does.
        let inbox = URL(fileURLWithPath: configuration.folders.inbox)
        var sidecar = try JSONSerialization.jsonObject(
            with: Data(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/examples/sidecar-ldl.json"))) as! [String: Any]
        sidecar["destinations"] = ["mssante_ps"]
        sidecar["flags"] = ["ACK_RECEPTION", "ACK_LECTURE"]
        try JSONSerialization.data(withJSONObject: sidecar).write(to: inbox.appendingPathComponent("ldl-1.json"))
        try TestPDF.make().write(to: inbox.appendingPathComponent("ldl-1.pdf"))
        try Data().write(to: inbox.appendingPathComponent("ldl-1.done"))

        let journal = try SQLiteJournalStore(path: configuration.journalPathForTests,
                                             blobs: try BlobStore(root: Journals.blobFolder(forDatabase: configuration.journalPathForTests)))
        func transmission() async throws -> Transmission? {
            try await journal.transmissions(matching: TransmissionFilter()).first { $0.target == .mssantePS }
        }
        func wait(for state: TransmissionState, seconds: Double) async throws -> Transmission {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let t = try await transmission(), t.state == state { return t }
                try await Task.sleep(for: .milliseconds(200))
            }
            let last = try await transmission()
            Issue.record("transmission did not reach \(state): \(String(describing: last?.state)) \(String(describing: last?.lastError))")
            throw CancellationError()
        }

        let sent = try await wait(for: .sent, seconds: 60)
        let received = try smtp.received()
        #expect(received.count == 1)
        let first = try #require(received.first)
        let mail = try MailTests.parse(try #require(Data(base64Encoded: first.data)))
        #expect(mail.headers["To"] == ["dr.traitant@medecin.mssante.fr"])
        #expect(mail.attachments.map(\.filename).contains("IHE_XDM.zip"))
        let messageID = try #require(sent.messageID)
        // The envelope id is the Message-ID's local part (see MSSanteSender).
        let envelopeID = String(messageID.dropFirst().prefix { $0 != "@" })

        try imap.deliver(MSSanteAcknowledgementTests.dsn(envelopeID: envelopeID, recipient: "dr.traitant@medecin.mssante.fr",
                                                         action: "delivered", status: "2.0.0"), name: "dsn")
        _ = try await wait(for: .delivered, seconds: 30)
        try imap.deliver(MSSanteAcknowledgementTests.mdn(messageID: messageID, recipient: "dr.traitant@medecin.mssante.fr",
                                                         disposition: "displayed"), name: "mdn")
        _ = try await wait(for: .read, seconds: 30)

        service.stop()
        try await running.value
    }
}

extension PasserelleConfiguration {
    var journalPathForTests: String {
        guard case .sqlite(let path) = journal else { preconditionFailure("tests use SQLite") }
        return path
    }
}
