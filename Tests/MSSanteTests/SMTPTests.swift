import CDA
import Foundation
import MSSante
import OpenSSLKit
import PasserelleCore
import TestSupport
import Testing

/// A real aiosmtpd server on loopback (Resources/smtp_server.py): client certificate from
/// the test CA required, TLS 1.2 with the MSSanté suites, DSN parameters checked.
final class TestSMTPServer: @unchecked Sendable {
    let process = Process()
    let port: UInt16
    let outbox: URL
    /// Our end of the server's stdin: the server exits when it closes (even if this process crashes).
    let stdin = Pipe()

    init(mode: String, serverCertificate: String = "server-localhost", extra: [String] = []) throws {
        outbox = try TestPaths.temporaryDirectory("smtp-out")
        let pki = TestPaths.testPKI
        process.executableURL = TestPaths.testVenv.appendingPathComponent("bin/python")
        process.arguments = [
            TestPaths.repositoryRoot.appendingPathComponent("Tests/MSSanteTests/Resources/smtp_server.py").path,
            "--mode", mode, "--out", outbox.path, "--ca", pki.appendingPathComponent("ca.pem").path,
            "--cert", pki.appendingPathComponent("\(serverCertificate)-chain.pem").path,
            "--key", pki.appendingPathComponent("\(serverCertificate).key.pem").path,
        ] + extra
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardInput = stdin
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("PORT "), let port = UInt16(text.dropFirst(5)) else {
            process.terminate()
            throw SMTPError.protocolViolation("test SMTP server did not start (aiosmtpd missing? run scripts/setup.sh)")
        }
        self.port = port
    }

    struct Received: Decodable {
        var mail_from: String
        var rcpt_tos: [String]
        var dsn_mail: [String: String]
        var dsn_rcpt: [[String: String]]
        var tls_version: String?
        var cipher: String?
        var client_subject: [String: String]?
        var data: String
    }

    func received() throws -> [Received] {
        let files = try FileManager.default.contentsOfDirectory(atPath: outbox.path).filter { $0.hasSuffix(".json") }.sorted()
        return try files.map { try JSONDecoder().decode(Received.self, from: Data(contentsOf: outbox.appendingPathComponent($0))) }
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: outbox)
    }
}

@Suite struct SMTPTests {
    static let passphrase = try! Passphrase.read(file: TestPaths.testPKIPassphraseFile)

    static func client(_ server: TestSMTPServer, security: SMTPConfiguration.Security, certificate: String? = "org-auth",
                       ca: String = "ca.pem", timeout: TimeInterval = 10) throws -> SMTPClient {
        let identity = try certificate.map {
            try PKCS12Bundle.load(path: TestPaths.testPKI.appendingPathComponent("\($0).p12"), passphrase: passphrase)
        }
        return try SMTPClient(configuration: SMTPConfiguration(
            host: "127.0.0.1", port: server.port, security: security,
            trustedCAFile: TestPaths.testPKI.appendingPathComponent(ca), clientCertificate: identity, timeout: timeout))
    }

    static let suites = SMTPConfiguration.mssanteCipherList.split(separator: ":").map(String.init)

    /// The whole chain: routing, CDA, XDM, MIME, SMTP to a professional and to the patient.
    @Test(arguments: [("starttls", SMTPConfiguration.Security.startTLS), ("implicit", .implicitTLS)])
    func documentReachesProfessionalAndPatient(mode: String, security: SMTPConfiguration.Security) async throws {
        let server = try TestSMTPServer(mode: mode)
        defer { server.stop() }
        let (mails, xdm, _) = try MailTests.build(flags: [.destMSSantePS, .destMSSantePatient, .ackReception])
        let client = try Self.client(server, security: security)
        for mail in mails {
            let envelope = SMTPEnvelope(from: mail.message.from, recipients: mail.message.to, envelopeID: mail.envelopeID)
            let delivery = try await client.send(try mail.message.rendered(), envelope: envelope)
            #expect(delivery.tlsVersion == "TLSv1.2")
            for (recipient, outcome) in delivery.outcomes {
                guard case let .accepted(reply) = outcome else { Issue.record("\(recipient): \(outcome)"); continue }
                #expect(reply.code == 250 && reply.text.contains("queued"))
            }
        }
        let received = try server.received()
        try #require(received.count == 2)
        #expect(received.map(\.rcpt_tos) == [["dr.martin@hopital.mssante.fr"], [RoutingTests.patientAddress]])
        for (mail, got) in zip(mails, received) {
            #expect(got.mail_from == "passerelle@hopital.mssante.fr")
            #expect(got.dsn_mail == ["RET": "HDRS", "ENVID": mail.envelopeID])
            #expect(got.dsn_rcpt == got.rcpt_tos.map { ["address": $0, "NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;\($0)"] })
            #expect(got.tls_version == "TLSv1.2")
            #expect(Self.suites.contains(got.cipher ?? ""), "\(got.cipher ?? "")")
            #expect(got.client_subject?["commonName"] != nil)
            // The message as received: parses, and its XDM attachment unpacks with the right hash and size.
            let parsed = try MailTests.parse(try #require(Data(base64Encoded: got.data)), withAttachments: true)
            #expect(parsed.headers["Message-ID"] == [mail.message.messageID])
            let zipData = try #require(parsed.attachments.first?.base64.flatMap { Data(base64Encoded: $0) })
            #expect(zipData == xdm.zip)
            let dir = try TestPaths.temporaryDirectory("smtp-xdm")
            defer { try? FileManager.default.removeItem(at: dir) }
            let seen = try XDMTests.unpack(zipData, into: dir)
            #expect(seen.badCRC == nil && seen.slots["hash"] == [seen.documentSHA1] && seen.slots["size"] == [String(seen.documentSize)])
        }
    }

    /// TLS refusals: each must fail before anything is sent, with OpenSSL's reason.
    @Test(arguments: [
        ("no client certificate", nil, "ca.pem", "server-localhost", [String]()),
        ("client certificate from an unknown CA", "unknown-auth", "ca.pem", "server-localhost", []),
        ("expired client certificate", "expired-auth", "ca.pem", "server-localhost", []),
        ("server certificate from an unknown CA", "org-auth", "ca.pem", "unknown-server", []),
        ("expired server certificate", "org-auth", "ca.pem", "expired-server", []),
        ("server offering only TLS 1.3", "org-auth", "ca.pem", "server-localhost", ["--tls13-only"]),
        ("server offering a non-listed suite", "org-auth", "ca.pem", "server-localhost", ["--ciphers", "ECDHE-RSA-CHACHA20-POLY1305"]),
    ] as [(String, String?, String, String, [String])])
    func tlsRefusals(label: String, certificate: String?, ca: String, serverCertificate: String, extra: [String]) async throws {
        for (mode, security) in [("starttls", SMTPConfiguration.Security.startTLS), ("implicit", .implicitTLS)] {
            let server = try TestSMTPServer(mode: mode, serverCertificate: serverCertificate, extra: extra)
            defer { server.stop() }
            let client = try Self.client(server, security: security, certificate: certificate, ca: ca)
            let envelope = SMTPEnvelope(from: "passerelle@hopital.mssante.fr", recipients: ["a@b.fr"], envelopeID: "E1")
            do {
                let delivery = try await client.send(Data("Subject: x\r\n\r\nx\r\n".utf8), envelope: envelope)
                Issue.record("\(label) (\(mode)): sent anyway: \(delivery.outcomes)")
            } catch {
                guard case let .transport(reason) = error else { Issue.record("\(label): \(error)"); continue }
                #expect(!reason.isEmpty)
            }
            #expect(try server.received().isEmpty, "\(label) (\(mode))")
        }
    }

    @Test func transientRefusalThenSuccessOnRetry() async throws {
        let server = try TestSMTPServer(mode: "starttls", extra: ["--tempfail", "1"])
        defer { server.stop() }
        let client = try Self.client(server, security: .startTLS)
        let envelope = SMTPEnvelope(from: "passerelle@hopital.mssante.fr", recipients: ["dr.martin@hopital.mssante.fr"], envelopeID: "E2")
        let message = Data("Subject: retry\r\n\r\nbody\r\n".utf8)
        let first = try await client.send(message, envelope: envelope)
        guard case let .retryLater(reply) = first.results["dr.martin@hopital.mssante.fr"] else {
            Issue.record("expected retryLater, got \(first.outcomes)")
            return
        }
        #expect(reply.code == 451 && reply.isTransient)
        #expect(try server.received().isEmpty)
        let second = try await client.send(message, envelope: envelope)
        guard case .accepted = second.results["dr.martin@hopital.mssante.fr"] else {
            Issue.record("expected accepted, got \(second.outcomes)")
            return
        }
        #expect(try server.received().count == 1)
    }

    @Test func permanentRefusalOfOneRecipientKeepsTheOther() async throws {
        let server = try TestSMTPServer(mode: "starttls", extra: ["--reject", "inconnu@hopital.mssante.fr"])
        defer { server.stop() }
        let client = try Self.client(server, security: .startTLS)
        let envelope = SMTPEnvelope(from: "passerelle@hopital.mssante.fr",
                                    recipients: ["inconnu@hopital.mssante.fr", "dr.martin@hopital.mssante.fr"], envelopeID: "E3")
        let delivery = try await client.send(Data("Subject: two\r\n\r\n.leading dot\r\n".utf8), envelope: envelope)
        guard case let .rejected(reply) = delivery.results["inconnu@hopital.mssante.fr"] else {
            Issue.record("\(delivery.outcomes)")
            return
        }
        #expect(reply.code == 550 && reply.text.contains("mailbox unknown"))
        guard case .accepted = delivery.results["dr.martin@hopital.mssante.fr"] else {
            Issue.record("\(delivery.outcomes)")
            return
        }
        let received = try server.received()
        #expect(received.map(\.rcpt_tos) == [["dr.martin@hopital.mssante.fr"]])
        // Dot-stuffing undone by the server: the line starting with "." arrives intact.
        #expect(String(decoding: Data(base64Encoded: received[0].data) ?? Data(), as: UTF8.self).contains("\r\n.leading dot\r\n"))
    }

    @Test func silentServerTimesOut() async throws {
        let listener = try ListeningSocket(host: "127.0.0.1", port: 0)  // accepts in the kernel, never greets
        defer { listener.close() }
        let client = try SMTPClient(configuration: SMTPConfiguration(
            host: "127.0.0.1", port: listener.port, security: .startTLS,
            trustedCAFile: TestPaths.testPKI.appendingPathComponent("ca.pem"), clientCertificate: nil, timeout: 1))
        let start = Date()
        await #expect(throws: SMTPError.self) {
            try await client.send(Data("x\r\n".utf8), envelope: SMTPEnvelope(from: "a@b.fr", recipients: ["c@d.fr"], envelopeID: "E"))
        }
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test func envelopeIDIsXtextEncoded() async throws {
        let server = try TestSMTPServer(mode: "implicit")
        defer { server.stop() }
        let client = try Self.client(server, security: .implicitTLS)
        let id = "2.25.123+4=5 é"
        _ = try await client.send(Data("Subject: x\r\n\r\nx\r\n".utf8),
                                  envelope: SMTPEnvelope(from: "a@b.fr", recipients: ["c@d.fr"], envelopeID: id))
        #expect(try server.received().first?.dsn_mail["ENVID"] == "2.25.123+2B4+3D5+20+C3+A9")
    }
}
