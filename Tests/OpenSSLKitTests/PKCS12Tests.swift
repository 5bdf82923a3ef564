import Foundation
import OpenSSLKit
import Testing
import TestSupport

@Suite struct PKCS12Tests {
    static let names = ["org-auth", "org-sign", "server-localhost", "expired-auth", "expired-sign", "expired-server",
                        "revoked-auth", "revoked-sign", "expiring-sign", "notyet-sign",
                        "unknown-auth", "unknown-sign", "unknown-server"]

    @Test(arguments: names)
    func loadsWithTheRightPassphrase(name: String) throws {
        let bundle = try PKI.bundle(name)
        #expect(bundle.privateKey.matches(bundle.certificate))
        #expect(bundle.privateKey.bits == 2048)
        #expect(bundle.chain.count == 1)
        #expect(bundle.chain.first?.isCA == true)
        let pem = try PKI.certificate(name)
        #expect(bundle.certificate == pem)
    }

    @Test(arguments: names)
    func wrongPassphraseIsATypedError(name: String) throws {
        let file = PKI.url("\(name).p12")
        #expect(throws: OpenSSLError.wrongPassphrase(file: file.path)) {
            try PKCS12Bundle.load(path: file, passphrase: Passphrase("not-the-passphrase"))
        }
    }

    @Test func missingFileIsNotAPassphraseError() throws {
        let file = PKI.url("does-not-exist.p12")
        #expect(throws: OpenSSLError.fileUnreadable(file: file.path, reason: "no such file")) {
            try PKCS12Bundle.load(path: file, passphrase: PKI.passphrase)
        }
    }

    @Test func corruptFileIsInvalidPKCS12() throws {
        var data = try Data(contentsOf: PKI.url("org-sign.p12"))
        data = data.prefix(data.count / 2)
        do {
            _ = try PKCS12Bundle(data: data, passphrase: PKI.passphrase, source: "half.p12")
            Issue.record("a truncated bundle loaded")
        } catch let error as OpenSSLError {
            guard case let .invalidPKCS12(file, detail) = error else {
                Issue.record("expected invalidPKCS12, got \(error)")
                return
            }
            #expect(file == "half.p12")
            #expect(!detail.isEmpty)
        }
        // A PEM certificate is not a PKCS#12 either.
        #expect(throws: OpenSSLError.self) {
            try PKCS12Bundle(data: Data(contentsOf: PKI.url("org-sign.pem")), passphrase: PKI.passphrase)
        }
    }

    @Test func passphraseNeverPrints() throws {
        let passphrase = try PKI.passphrase
        let secret = passphrase.reveal()
        #expect(!"\(passphrase)".contains(secret))
        #expect(!String(reflecting: passphrase).contains(secret))
        var dumped = ""
        dump(passphrase, to: &dumped)
        #expect(!dumped.contains(secret))
        let error = OpenSSLError.wrongPassphrase(file: "x.p12")
        #expect(!error.description.contains(secret))
    }

    @Test func passphraseFromFileTrimsNewlineAndWarnsWhenExposed() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("pass")
        try Data("s3cret\r\n".utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        let tight = try Passphrase.read(file: file)
        #expect(tight.reveal() == "s3cret")
        #expect(tight.warnings.isEmpty)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        let loose = try Passphrase.read(from: .file(file))
        #expect(loose.warnings.count == 1)
        #expect(loose.warnings.allSatisfy { !$0.contains("s3cret") })
    }

    @Test func passphraseFromEnvironment() throws {
        let value = try Passphrase.read(from: .environment("P12_PASS"), environment: ["P12_PASS": "abc"])
        #expect(value.reveal() == "abc")
        #expect(throws: OpenSSLError.passphraseUnavailable("environment variable P12_PASS is not set")) {
            try Passphrase.read(from: .environment("P12_PASS"), environment: [:])
        }
        #expect(throws: OpenSSLError.passphraseUnavailable("environment variable P12_PASS is empty")) {
            try Passphrase.read(from: .environment("P12_PASS"), environment: ["P12_PASS": ""])
        }
    }
}
