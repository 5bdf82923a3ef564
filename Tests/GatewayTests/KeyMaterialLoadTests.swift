import Foundation
import Intake
import Journal
import OpenSSLKit
import PasserelleCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Counts, with inotify, every open(2) of the files of one folder by any code of the process
/// (Swift, OpenSSL, xmlsec, libcurl alike): the proof that a file is read once does not rely
/// on the code under test reporting its own reads.
final class FileOpenCounter {
    private let fd: Int32

    init(watching folder: URL) throws {
        fd = inotify_init1(Int32(O_NONBLOCK | O_CLOEXEC))
        guard fd >= 0, inotify_add_watch(fd, folder.path, UInt32(IN_OPEN)) >= 0 else {
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
    }

    deinit { close(fd) }

    /// Opens of each file name since the last call.
    func opens() -> [String: Int] {
        var counts: [String: Int] = [:]
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let length = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard length > 0 else { break }
            var offset = 0
            buffer.withUnsafeBytes { raw in
                let header = MemoryLayout<inotify_event>.size
                while offset + header <= length {
                    let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    let name = raw[(offset + header)..<(offset + header + Int(event.len))].prefix { $0 != 0 }
                    if !name.isEmpty { counts[String(decoding: name, as: UTF8.self), default: 0] += 1 }
                    offset += header + Int(event.len)
                }
            }
        }
        return counts
    }
}

/// `passerelle run`'s one load of key material: with the DMP, MSSanté (SMTP and IMAP) and a
/// TLS MLLP listener all enabled, making the service reads the passphrase once and opens each
/// PKCS#12 once; running it (a document sent to the DMP over mutual TLS, an IMAP poll with
/// the certificate as credential, an MLLP TLS handshake) opens none of them again.
@Suite(.serialized) struct KeyMaterialLoadTests {
    @Test func eachPKCS12IsOpenedOncePerRun() async throws {
        let smtp = try TestSMTPServer(mode: "starttls")
        defer { smtp.stop() }
        let imap = try TestIMAPServer(certificateUser: "passerelle.ch-test.fr (org_auth_cli)")
        defer { imap.stop() }
        let h = try Harness(extra: """
            [mllp]
            enabled = true
            port = 0
            tls_identity = "KEYS/server-localhost.p12"
            """)
        defer { h.cleanUp() }
        // The key files in a folder of their own, watched.
        let keys = h.root.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        let pki = TestPaths.testPKI
        for name in ["org-auth.p12", "org-sign.p12", "server-localhost.p12", "passphrase.txt"] {
            try FileManager.default.copyItem(at: pki.appendingPathComponent(name), to: keys.appendingPathComponent(name))
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keys.appendingPathComponent("passphrase.txt").path)
        let text = try String(contentsOfFile: h.configPath, encoding: .utf8)
            .replacingOccurrences(of: "\(pki.path)/org-auth.p12", with: keys.appendingPathComponent("org-auth.p12").path)
            .replacingOccurrences(of: "\(pki.path)/org-sign.p12", with: keys.appendingPathComponent("org-sign.p12").path)
            .replacingOccurrences(of: TestPaths.testPKIPassphraseFile.path, with: keys.appendingPathComponent("passphrase.txt").path)
            .replacingOccurrences(of: "KEYS/", with: keys.path + "/")
            .replacingOccurrences(of: "[mssante]\nenabled = false", with: TestConfiguration.mssanteSection(
                smtpPort: smtp.port, imapPort: imap.port, mailbox: "passerelle@hopital.mssante.fr"))
        try text.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        let configuration = try h.configuration()
        #expect(configuration.dmp.enabled && configuration.mssante.enabled && configuration.mssante.imapURL != nil
                && configuration.mllp.tlsIdentity != nil)

        let counter = try FileOpenCounter(watching: keys)
        let service = try h.service()
        let once = ["org-auth.p12": 1, "org-sign.p12": 1, "server-localhost.p12": 1, "passphrase.txt": 1]
        #expect(counter.opens() == once, "making the service")
        #expect(service.keyMaterial?.authentication != nil && service.keyMaterial?.signing != nil
                && service.keyMaterial?.serverIdentity != nil)

        let running = Task { try await service.run() }
        // A document to the DMP: mutual TLS with the authentication key, VIHF and XAdES signatures.
        let metadata = Documents.metadata()
        try h.drop("ldl.json", sidecar: metadata)
        try h.drop("ldl.pdf", Documents.pdf())
        let journal = try h.journal()
        let sent = try await Harness.waitUntil(timeout: 60) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 1
        }
        #expect(sent, "the document reached the DMP")
        // An MLLP client over TLS: the listener's identity comes from the loaded bundle.
        #expect(await Harness.waitUntil(timeout: 10) { service.mllpPort != nil })
        let client = TLSConfiguration(trustedCAFile: pki.appendingPathComponent("ca.pem"), timeout: 10)
        let stream = try await TLSStream.connect(host: "localhost", port: try #require(service.mllpPort), configuration: client)
        try await stream.write(MLLPFrame.wrap(Data(Harness.adtA01.utf8)))
        _ = try await stream.read(maxLength: 4096)
        stream.close()
        // The acknowledgement mailbox is read at start (SASL EXTERNAL with the in-memory key).
        let processed = imap.maildir.appendingPathComponent(".Passerelle-traites").path
        let polled = await Harness.waitUntil(timeout: 20) { FileManager.default.fileExists(atPath: processed) }
        service.stop()
        try await running.value
        #expect(polled, "the IMAP poll ran")
        #expect(counter.opens().isEmpty, "running the service opened a key file again")
    }
}
