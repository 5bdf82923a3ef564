import Foundation
import OpenSSLKit

/// A test server that could not start: the message says what to install or run.
public struct TestServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A real aiosmtpd server on loopback (scripts/endpoints/smtp_server.py): client certificate from
/// the test CA required, TLS 1.2 with the MSSanté suites, DSN parameters checked.
public final class TestSMTPServer: @unchecked Sendable {
    public let process = Process()
    public let port: UInt16
    public let outbox: URL
    /// Our end of the server's stdin: the server exits when it closes (even if this process crashes).
    public let stdin = Pipe()

    public init(mode: String, serverCertificate: String = "server-localhost", extra: [String] = []) throws {
        outbox = try TestPaths.temporaryDirectory("smtp-out")
        let pki = TestPaths.testPKI
        process.executableURL = TestPaths.testVenv.appendingPathComponent("bin/python")
        process.arguments = [
            TestPaths.repositoryRoot.appendingPathComponent("scripts/endpoints/smtp_server.py").path,
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
            throw TestServerError("test SMTP server did not start (aiosmtpd missing? run scripts/setup.sh)")
        }
        self.port = port
    }

    public struct Received: Decodable {
        public var mail_from: String
        public var rcpt_tos: [String]
        public var dsn_mail: [String: String]
        public var dsn_rcpt: [[String: String]]
        public var tls_version: String?
        public var cipher: String?
        public var client_subject: [String: String]?
        public var data: String
    }

    public func received() throws -> [Received] {
        let files = try FileManager.default.contentsOfDirectory(atPath: outbox.path).filter { $0.hasSuffix(".json") }
            .sorted { Int($0.dropLast(5)) ?? 0 < Int($1.dropLast(5)) ?? 0 }
        return try files.map { try JSONDecoder().decode(Received.self, from: Data(contentsOf: outbox.appendingPathComponent($0))) }
    }

    /// TCP connections the server accepted so far.
    public func connections() -> Int {
        (try? String(contentsOf: outbox.appendingPathComponent("connections"), encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
    }

    public func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: outbox)
    }
}

/// A real Dovecot on loopback (scripts/endpoints/imap_server.sh): IMAPS only, client certificate from
/// the test CA required, TLS 1.2+ with the MSSanté suites; its Maildir is in a temp folder.
public final class TestIMAPServer: @unchecked Sendable {
    public let directory: URL
    public let port: UInt16
    public static let user = "passerelle"
    public static let password = "imap-test-secret"
    public static let script = TestPaths.repositoryRoot.appendingPathComponent("scripts/endpoints/imap_server.sh").path

    public let process = Process()
    /// With SASL EXTERNAL: the user the client certificate logs in as.
    public let certificateUser: String?

    public init(certificateUser: String? = nil) throws {
        self.certificateUser = certificateUser
        directory = try TestPaths.temporaryDirectory("imap")
        let probe = try ListeningSocket(host: "127.0.0.1", port: 0)  // a free port for dovecot
        port = probe.port
        probe.close()
        process.executableURL = URL(fileURLWithPath: Self.script)
        process.arguments = [directory.path, String(port), TestPaths.testPKI.path, Self.user, Self.password]
            + (certificateUser.map { [$0] } ?? [])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Ready when the listener accepts connections.
        let deadline = Date().addingTimeInterval(15)
        while true {
            if let socket = try? Socket.connect(host: "127.0.0.1", port: port, timeout: 1) {
                socket.close()
                break
            }
            guard process.isRunning, Date() < deadline else {
                stop()
                throw TestServerError("dovecot did not start (dovecot-imapd missing? run scripts/setup.sh)")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    public var maildir: URL { directory.appendingPathComponent("mail/\(certificateUser ?? Self.user)/Maildir") }

    /// Delivers `message` into the inbox the way an MTA does: written and given to the mail user
    /// in Maildir/tmp, then renamed into Maildir/new. Dovecot may move a file from new/ to cur/
    /// as soon as it appears (an IMAP session is open): changing its owner there raced with that.
    public func deliver(_ message: Data, name: String) throws {
        let staged = maildir.appendingPathComponent("tmp/\(name).passerelle-test")
        try FileManager.default.createDirectory(at: staged.deletingLastPathComponent(), withIntermediateDirectories: true)
        try message.write(to: staged)
        try FileManager.default.setAttributes([.ownerAccountName: "nobody", .groupOwnerAccountName: "nogroup"], ofItemAtPath: staged.path)
        try FileManager.default.moveItem(at: staged, to: maildir.appendingPathComponent("new/\(name).passerelle-test"))
    }

    /// Messages in a folder (Maildir++ layout: `.Folder/{cur,new}`; the inbox is the root).
    public func count(_ folder: String) -> Int {
        let base = folder == "INBOX" ? maildir : maildir.appendingPathComponent(".\(folder)")
        return ["cur", "new"].reduce(0) { total, sub in
            total + ((try? FileManager.default.contentsOfDirectory(atPath: base.appendingPathComponent(sub).path))?.count ?? 0)
        }
    }

    public func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

