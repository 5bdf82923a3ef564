import Foundation
import OpenSSLKit
import Signing
import TestSupport

/// Test helpers: the test PKI and the two independent verifiers.
enum TestPKI {
    static func url(_ name: String) -> URL { TestPaths.testPKI.appendingPathComponent(name) }

    /// The credentials of `name`; `trusted: false` leaves out the trust store (validity dates only).
    static func credentials(_ name: String, trusted: Bool = true) throws -> SigningCredentials {
        let store = trusted ? try TrustStore(anchorsFile: url("ca.pem"), crlFiles: [url("ca.crl.pem")]) : nil
        return try SigningCredentials(pkcs12: Data(contentsOf: url("\(name).p12")),
                                      passphrase: Passphrase.read(file: TestPaths.testPKIPassphraseFile), trustStore: store)
    }
}

enum ExternalVerifier {
    /// One external verifier process at a time: Python start-up is heavy, and a burst of them
    /// from parallel tests would starve the timing-sensitive tests of other suites.
    private static let gate = NSLock()

    private static func run(_ executable: String, _ arguments: [String]) throws -> ProcessResult {
        gate.lock()
        defer { gate.unlock() }
        return try ProcessRunner.run(executable, arguments)
    }

    /// `xmlsec1 --verify`. xmlsec1 cannot dereference `urn:oid:` URIs, so for the submission
    /// set signature it runs with `--ignore-manifests`: it checks the SignedInfo references
    /// (Manifest element, SignedProperties, SignatureProperties) and the RSA value, which is
    /// what an independent verifier without the documents can check. The Manifest digests
    /// themselves are checked by the project's own verifier against the documents.
    static func xmlsec1(_ xml: Data, trusted: String = "ca.pem", extra: [String] = []) throws -> ProcessResult {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("signature.xml")
        try xml.write(to: file)
        return try run("xmlsec1", [
            "--verify", "--trusted-pem", TestPKI.url(trusted).path, "--enabled-key-data", "x509",
            "--ignore-manifests",
            "--id-attr:Id", "http://www.w3.org/2000/09/xmldsig#:Manifest",
            "--id-attr:Id", "http://www.w3.org/2000/09/xmldsig#:SignatureProperties",
            "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
            "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        ] + extra + [file.path])
    }

    /// Python signxml's XMLVerifier with the test CA; `references` is how many SignedInfo
    /// references it must find. Prints the signed element names on success.
    static func signxml(_ xml: Data, trusted: String = "ca.pem", references: Int, sha1: Bool = false, xades: Bool = false) throws -> ProcessResult {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("signature.xml")
        try xml.write(to: file)
        let script = """
        import sys
        from signxml import XMLVerifier, SignatureConfiguration, SignatureMethod, DigestAlgorithm
        data = open(sys.argv[1], 'rb').read()
        sha1 = sys.argv[4] == 'sha1'
        config = SignatureConfiguration(
            expect_references=int(sys.argv[3]),
            signature_methods=frozenset([SignatureMethod.RSA_SHA1 if sha1 else SignatureMethod.RSA_SHA256]),
            digest_algorithms=frozenset([DigestAlgorithm.SHA1 if sha1 else DigestAlgorithm.SHA256]))
        if sys.argv[5] == 'xades':
            # XAdES checks on top: SignedProperties present and signed, SigningCertificate digest = signer.
            from signxml.xades import XAdESVerifier
            results = XAdESVerifier().verify(data, ca_pem_file=sys.argv[2], expect_config=config)
        else:
            results = XMLVerifier().verify(data, ca_pem_file=sys.argv[2], expect_config=config)
        for r in (results if isinstance(results, list) else [results]):
            print(r.signed_xml.tag)
        """
        let python = TestPaths.testVenv.appendingPathComponent("bin/python").path
        return try run(python, ["-c", script, file.path, TestPKI.url(trusted).path, String(references), sha1 ? "sha1" : "sha256", xades ? "xades" : "plain"])
    }
}

extension ProcessResult {
    /// xmlsec1 ran and reported a failed verification (not a usage or file error): "FAIL"
    /// for a bad digest or signature value; for an untrusted or expired certificate it finds
    /// no acceptable key and reports the certificate error.
    var xmlsec1Rejected: Bool {
        let output = stdout + stderr
        return !succeeded && (output.contains("FAIL")
            || (output.contains("certificate verification failed") && output.contains("key is not found")))
    }
    /// signxml ran and raised one of its verification exceptions (not a script error).
    var signxmlRejected: Bool { !succeeded && stderr.contains("signxml.exceptions.") }
}

/// Flips one character inside the first occurrence of `marker`'s text content.
func tamper(_ xml: Data, inside marker: String) -> Data {
    var text = String(decoding: xml, as: UTF8.self)
    guard let range = text.range(of: marker) else { return xml }
    let index = range.upperBound  // first character of the element's text
    let original = text[index]
    text.replaceSubrange(index...index, with: original == "A" ? "B" : "A")
    return Data(text.utf8)
}
