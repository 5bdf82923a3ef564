import Foundation
import OpenSSLKit
import Testing
import TestSupport

/// The gateway's one passphrase reader: one newline rule for files and environment
/// variables, warnings that never hold the secret, descriptions always redacted.
@Suite struct PassphraseTests {
    /// Reads `content` through a 0600 file and through an environment variable.
    func read(_ content: String) throws -> (file: Passphrase, environment: Passphrase) {
        let directory = try TestPaths.temporaryDirectory("passphrase")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("pass")
        try Data(content.utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        return (try Passphrase.read(from: .file(file)),
                try Passphrase.read(from: .environment("PASSERELLE_TEST_PASS"), environment: ["PASSERELLE_TEST_PASS": content]))
    }

    @Test("exactly one trailing \\n or \\r\\n is dropped, nothing else", arguments: [
        ("s3cret", "s3cret", false),
        ("s3cret\n", "s3cret", false),
        ("s3cret\r\n", "s3cret", false),
        (" s3cret \t\n", " s3cret \t", false),   // spaces and tabs are part of the passphrase
        ("s3cret\n\n", "s3cret\n", true),         // a second line break stays, with a warning
        ("s3cret\r", "s3cret\r", true),           // a lone CR is not a line break to drop
        ("s3cret\n\r\n", "s3cret\n", true),
        ("pass\nword\n", "pass\nword", true),
    ])
    func newlineRule(_ content: String, _ expected: String, _ warns: Bool) throws {
        let (file, environment) = try read(content)
        for passphrase in [file, environment] {
            #expect(passphrase.reveal() == expected)
            #expect(passphrase.withCString { String(cString: $0) } == expected)
            #expect(passphrase.warnings.isEmpty == !warns, "\(passphrase.warnings)")
            #expect(passphrase.warnings.allSatisfy { !$0.contains("s3cret") && !$0.contains("word") })
        }
    }

    @Test("empty, or only the line break: refused, for files and variables alike", arguments: ["", "\n", "\r\n"])
    func emptyIsRefused(_ content: String) throws {
        #expect(throws: OpenSSLError.self) { try read(content) }
        #expect(throws: OpenSSLError.passphraseUnavailable("environment variable P is empty")) {
            try Passphrase.read(from: .environment("P"), environment: ["P": content])
        }
    }

    @Test func groupOrOtherReadableFileWarns() throws {
        let directory = try TestPaths.temporaryDirectory("passphrase")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("pass")
        try Data("Zq9-secret\n".utf8).write(to: file)
        for (mode, warns) in [(0o600, false), (0o400, false), (0o640, true), (0o604, true)] {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
            let passphrase = try Passphrase.read(file: file)
            #expect(passphrase.warnings.count == (warns ? 1 : 0), "mode \(String(mode, radix: 8))")
            #expect(passphrase.warnings.allSatisfy { $0.contains("chmod 600") && !$0.contains("Zq9") })
        }
        #expect(throws: OpenSSLError.self) { try Passphrase.read(file: directory.appendingPathComponent("absent")) }
    }

    @Test func neverPrinted() throws {
        let (passphrase, _) = try read("Zq9-very-secret\n")
        var dumped = ""
        dump(passphrase, to: &dumped)
        for text in ["\(passphrase)", String(reflecting: passphrase), String(describing: [passphrase]), dumped,
                     "\(Mirror(reflecting: passphrase).children.map { "\($0.value)" })"] {
            #expect(!text.contains("Zq9"), "\(text)")
        }
        #expect("\(passphrase)" == "<redacted>")
        let bytes = SecretBytes(Array("Zq9-key".utf8))
        var dumpedBytes = ""
        dump(bytes, to: &dumpedBytes)
        #expect(!"\(bytes)".contains("Zq9") && !String(reflecting: bytes).contains("Zq9") && !dumpedBytes.contains("Zq9"))
        #expect(bytes.withUnsafeBytes { Array($0) } == Array("Zq9-key".utf8) && bytes.count == 7)
    }

    /// The private key exported for libcurl is the bundle's own key, as PEM, and is redacted.
    @Test func keyAndChainExportForInMemoryTLS() throws {
        let bundle = try PKCS12Bundle.load(path: PKI.url("org-auth.p12"), passphrase: try PKI.passphrase)
        let key = try bundle.privateKeyPEM()
        let reloaded = try key.withUnsafeBytes { try PrivateKey(pem: Data($0)) }
        #expect(reloaded.matches(bundle.certificate))
        #expect("\(key)" == "<redacted>")
        let chain = try Certificate.all(from: bundle.certificateChainPEM)
        #expect(chain.first == bundle.certificate && chain.count == 1 + bundle.chain.count)
    }
}
