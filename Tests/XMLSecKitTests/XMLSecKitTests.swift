import Foundation
import Testing
import TestSupport
import OpenSSLKit
import XMLSecKit

private func pki(_ name: String) -> URL { TestPaths.testPKI.appendingPathComponent(name) }

private func loadKey(_ name: String) throws -> XMLSecSigningKey {
    let passphrase = try Passphrase.read(file: TestPaths.testPKIPassphraseFile)
    return try XMLSecSigningKey(pkcs12: Data(contentsOf: pki("\(name).p12")), passphrase: passphrase)
}

/// An enveloped-signature template over the root element (Id registered by the wrapper).
private func template(_ algorithm: XMLDigestAlgorithm) -> Data {
    Data("""
    <root xmlns="urn:test" Id="r1"><item>caf\u{e9} &amp; th\u{e9}</item>\
    <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>\
    <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>\
    <ds:SignatureMethod Algorithm="\(algorithm.rsaSignatureURI)"/>\
    <ds:Reference URI="#r1"><ds:Transforms>\
    <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>\
    <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>\
    <ds:DigestMethod Algorithm="\(algorithm.digestURI)"/><ds:DigestValue/></ds:Reference>\
    </ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature></root>
    """.utf8)
}

private func trust(_ files: [String] = ["ca.pem"]) throws -> XMLSecTrustStore {
    try XMLSecTrustStore(pemFiles: files.map(pki))
}

/// The xmlsec1 command-line tool, an independent verifier (same library, separate code path).
private func xmlsec1Verify(_ xml: Data, trusted: String = "ca.pem", extra: [String] = []) throws -> ProcessResult {
    let dir = try TestPaths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = dir.appendingPathComponent("signed.xml")
    try xml.write(to: file)
    return try ProcessRunner.run("xmlsec1", ["--verify", "--trusted-pem", pki(trusted).path,
                                             "--id-attr:Id", "root", "--enabled-key-data", "x509"] + extra + [file.path])
}

/// xmlsec1 ran and refused: "FAIL" (digest / signature value), or no acceptable key
/// because the certificate does not verify (untrusted, expired, revoked).
private func rejected(_ result: ProcessResult) -> Bool {
    let output = result.stdout + result.stderr
    return !result.succeeded && (output.contains("FAIL")
        || (output.contains("key is not found") && (output.contains("certificate verification failed") || output.contains("revoked"))))
}

@Suite struct XMLSecKitTests {
    @Test(arguments: [XMLDigestAlgorithm.sha256, .sha1])
    func signsAndVerifiesEnveloped(algorithm: XMLDigestAlgorithm) throws {
        let key = try loadKey("org-sign")
        let signed = try XMLSigner.sign(template: template(algorithm), key: key)
        let text = String(decoding: signed, as: UTF8.self)
        #expect(text.contains("<ds:X509Certificate>"))
        #expect(!text.contains("<ds:SignatureValue/>"))

        let result = try XMLSignatureVerifier.verify(signed, trustStore: trust())
        #expect(result.isValid, "\(result.failure ?? "")")
        #expect(result.references.map(\.uri) == ["#r1"])
        #expect(result.signer == key.certificate)

        let cli = try xmlsec1Verify(signed)
        #expect(cli.succeeded, "xmlsec1: \(cli.stderr)")
    }

    @Test func rejectsTamperedContent() throws {
        let signed = try XMLSigner.sign(template: template(.sha256), key: loadKey("org-sign"))
        let tampered = Data(String(decoding: signed, as: UTF8.self).replacingOccurrences(of: "th\u{e9}", with: "thf").utf8)
        #expect(tampered != signed)
        let result = try XMLSignatureVerifier.verify(tampered, trustStore: trust())
        #expect(!result.isValid)
        #expect(result.failure?.contains("#r1") == true)
        #expect(try rejected(xmlsec1Verify(tampered)))
    }

    @Test func rejectsUntrustedExpiredAndRevokedSigners() throws {
        let unknown = try XMLSigner.sign(template: template(.sha256), key: loadKey("unknown-sign"))
        #expect(try !XMLSignatureVerifier.verify(unknown, trustStore: trust()).isValid)
        #expect(try rejected(xmlsec1Verify(unknown)))

        let expired = try XMLSigner.sign(template: template(.sha256), key: loadKey("expired-sign"))
        let expiredResult = try XMLSignatureVerifier.verify(expired, trustStore: trust())
        #expect(!expiredResult.isValid)
        #expect(try rejected(xmlsec1Verify(expired)))

        let revoked = try XMLSigner.sign(template: template(.sha256), key: loadKey("revoked-sign"))
        #expect(try XMLSignatureVerifier.verify(revoked, trustStore: trust()).isValid, "no CRL given: chain alone is fine")
        let withCRL = try XMLSignatureVerifier.verify(revoked, trustStore: trust(["ca-with-crl.pem"]))
        #expect(!withCRL.isValid)
        // (The Debian xmlsec1 1.2.37 command-line tool has no CRL option, so revocation is
        // checked by the library path above only.)
    }

    /// A signature whose KeyInfo carries a bare public key (no certificate) must not verify,
    /// even though the key does match the signature value: keys come only from certificates
    /// that chain to the anchors.
    @Test func rejectsBareKeyValue() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = String(decoding: template(.sha256), as: UTF8.self)
            .replacingOccurrences(of: "<ds:X509Data/>", with: "<ds:KeyValue/>")
        let file = dir.appendingPathComponent("t.xml"), out = dir.appendingPathComponent("s.xml")
        try Data(text.utf8).write(to: file)
        let signed = try ProcessRunner.run("xmlsec1", ["--sign", "--privkey-pem", pki("org-sign.key.pem").path,
                                                       "--id-attr:Id", "root", "--output", out.path, file.path])
        #expect(signed.succeeded, "\(signed.stderr)")
        let data = try Data(contentsOf: out)
        #expect(String(decoding: data, as: UTF8.self).contains("RSAKeyValue"))
        let result = try XMLSignatureVerifier.verify(data, trustStore: trust())
        #expect(!result.isValid)
        #expect(result.failure?.isEmpty == false)
    }

    @Test func reportsWrongPassphraseAndMalformedXML() throws {
        #expect {
            try XMLSecSigningKey(pkcs12: Data(contentsOf: pki("org-sign.p12")), passphrase: Passphrase("wrong"))
        } throws: { error in
            guard case XMLSecError.keyLoad(let message) = error else { return false }
            return !message.isEmpty && "\(error)".contains("passphrase")
        }
        do {
            _ = try XMLSigner.sign(template: Data("<a><b></a>".utf8), key: loadKey("org-sign"))
            Issue.record("malformed XML accepted")
        } catch let error as XMLSecError {
            guard case .malformedXML(let message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("line 1"))
        }
    }

    @Test func concurrentSigningWithOneSharedKey() async throws {
        let key = try loadKey("org-sign")
        let store = try trust()
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    let signed = try XMLSigner.sign(template: template(.sha256), key: key)
                    return try XMLSignatureVerifier.verify(signed, trustStore: store).isValid
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.count == 16 && results.allSatisfy { $0 })
    }

    @Test func keyExposesCertificateDetails() throws {
        let key = try loadKey("org-sign")
        #expect(key.certificate.subject.rfc2253.contains("CN="))
        // The test CA draws 64-bit serials, so UInt64 gives an independent decimal rendering.
        #expect(key.certificate.serialNumberDecimal == String(try #require(UInt64(key.certificate.serialNumber, radix: 16))))
        #expect(key.certificate.notAfter > Date())
        #expect(key.chain.count == 2)
        #expect(XMLDigestAlgorithm.sha256.digest(Data("abc".utf8)).base64EncodedString()
                == "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=")
    }
}
