import Foundation
import Testing
import TestSupport

/// `passerelle verify-signature` on signatures made by the xmlsec1 command-line tool from a
/// DSG-shaped template, so the CLI is checked against a signer other than our own.
@Suite struct VerifySignatureCLITests {
    static var pki: URL { TestPaths.testPKI }
    var pki: URL { Self.pki }

    /// Builds an enveloping signature with a Manifest over two files, signed by `xmlsec1 --sign`.
    static func signWithXMLSec1(in dir: URL, signer: String = "org-sign", certificateFor named: String? = nil,
                                documents: [(String, Data)]) throws -> URL {
        var manifest = ""
        for (uniqueId, bytes) in documents {
            let b64 = try ProcessRunner.run("sh", ["-c", "openssl dgst -sha256 -binary | base64 -w0"], stdin: bytes).stdout
            manifest += "<ds:Reference URI=\"urn:oid:\(uniqueId)\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>\(b64)</ds:DigestValue></ds:Reference>"
        }
        // XAdES SigningCertificate: digest of the signer's certificate (DER), by the openssl CLI.
        let certDigest = try ProcessRunner.run("sh", ["-c", "openssl x509 -outform DER | openssl dgst -sha256 -binary | base64 -w0"],
                                               stdin: Data(contentsOf: pki.appendingPathComponent("\(named ?? signer).pem"))).stdout
        let template = """
        <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="S1"><ds:SignedInfo>\
        <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>\
        <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>\
        <ds:Reference URI="#IHEManifest" Type="http://www.w3.org/2000/09/xmldsig#Manifest"><ds:Transforms>\
        <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>\
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>\
        <ds:Reference URI="#SP" Type="http://uri.etsi.org/01903#SignedProperties"><ds:Transforms>\
        <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>\
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>\
        </ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo>\
        <ds:Object><xades:QualifyingProperties xmlns:xades="http://uri.etsi.org/01903/v1.3.2#" Target="#S1">\
        <xades:SignedProperties Id="SP"><xades:SignedSignatureProperties><xades:SigningTime>2026-01-01T00:00:00Z</xades:SigningTime>\
        <xades:SigningCertificate><xades:Cert><xades:CertDigest>\
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>\(certDigest)</ds:DigestValue>\
        </xades:CertDigest></xades:Cert></xades:SigningCertificate>\
        </xades:SignedSignatureProperties></xades:SignedProperties></xades:QualifyingProperties></ds:Object>\
        <ds:Object><ds:Manifest Id="IHEManifest">\(manifest)</ds:Manifest></ds:Object></ds:Signature>
        """
        let templateFile = dir.appendingPathComponent("template.xml")
        try Data(template.utf8).write(to: templateFile)
        let out = dir.appendingPathComponent("signature.xml")
        let passphrase = try String(contentsOf: TestPaths.testPKIPassphraseFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let result = try ProcessRunner.run("xmlsec1", [
            "--sign", "--pkcs12", pki.appendingPathComponent("\(signer).p12").path, "--pwd", passphrase,
            "--ignore-manifests", "--id-attr:Id", "http://www.w3.org/2000/09/xmldsig#:Manifest",
            "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
            "--output", out.path, templateFile.path])
        #expect(result.succeeded, "xmlsec1 --sign: \(result.stderr)")
        return out
    }

    @Test func validInvalidAndTampered() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cda = Data("<ClinicalDocument>contenu</ClinicalDocument>".utf8)
        let set = Data("<RegistryPackage/>".utf8)
        let cdaFile = dir.appendingPathComponent("cda.xml"), setFile = dir.appendingPathComponent("set.xml")
        try cda.write(to: cdaFile)
        try set.write(to: setFile)
        let signature = try Self.signWithXMLSec1(in: dir, documents: [("1.2.3.1", set), ("1.2.3.2", cda)])
        let anchors = ["--trust-anchors", pki.appendingPathComponent("ca-with-crl.pem").path]

        let ok = try CLI.run(["verify-signature", signature.path, "--documents", "1.2.3.1=\(setFile.path)", "1.2.3.2=\(cdaFile.path)"] + anchors)
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("result: VALID"))

        // The signature alone (no --documents) verifies too, and says the Manifest was not checked.
        let alone = try CLI.run(["verify-signature", signature.path] + anchors)
        #expect(alone.status == 0)
        #expect(alone.stdout.contains("not checked"))

        // A changed document: exit 1, naming the reference.
        let changed = dir.appendingPathComponent("changed.xml")
        try Data("<ClinicalDocument>contenU</ClinicalDocument>".utf8).write(to: changed)
        let bad = try CLI.run(["verify-signature", signature.path, "--documents", "1.2.3.1=\(setFile.path)", "1.2.3.2=\(changed.path)"] + anchors)
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("1.2.3.2") && bad.stdout.contains("DIGEST MISMATCH"))

        // A missing document: not checked, exit 1.
        let missing = try CLI.run(["verify-signature", signature.path, "--documents", "1.2.3.2=\(cdaFile.path)"] + anchors)
        #expect(missing.status == 1)
        #expect(missing.stdout.contains("NOT CHECKED"))

        // A tampered signed element and the wrong trust anchor: XML signature invalid.
        var text = try String(contentsOf: signature, encoding: .utf8)
        text = text.replacingOccurrences(of: "2026-01-01T00:00:00Z", with: "2026-01-02T00:00:00Z")
        let tampered = dir.appendingPathComponent("tampered.xml")
        try Data(text.utf8).write(to: tampered)
        let t = try CLI.run(["verify-signature", tampered.path, "--documents", "1.2.3.1=\(setFile.path)", "1.2.3.2=\(cdaFile.path)"] + anchors)
        #expect(t.status == 1)
        #expect(t.stdout.contains("XML signature: INVALID"))
        #expect(!t.stderr.contains("func="), "xmlsec must not print to stderr: \(t.stderr)")
        let wrong = try CLI.run(["verify-signature", signature.path, "--trust-anchors", pki.appendingPathComponent("unknown-ca.pem").path])
        #expect(wrong.status == 1)

        // Signed by org-sign but naming another certificate in SigningCertificate: rejected.
        let swapDir = dir.appendingPathComponent("swap")
        try FileManager.default.createDirectory(at: swapDir, withIntermediateDirectories: true)
        let swapped = try Self.signWithXMLSec1(in: swapDir, certificateFor: "expiring-sign", documents: [("1.2.3.2", cda)])
        let s = try CLI.run(["verify-signature", swapped.path, "--documents", "1.2.3.2=\(cdaFile.path)"] + anchors)
        #expect(s.status == 1)
        #expect(s.stdout.contains("SigningCertificate"))

        // Signed with a revoked certificate: rejected with the CRL.
        let revokedDir = dir.appendingPathComponent("revoked")
        try FileManager.default.createDirectory(at: revokedDir, withIntermediateDirectories: true)
        let revoked = try Self.signWithXMLSec1(in: revokedDir, signer: "revoked-sign", documents: [("1.2.3.2", cda)])
        #expect(try CLI.run(["verify-signature", revoked.path] + anchors).status == 1)
    }

    @Test func vihfAssertion() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let subject = try ProcessRunner.run("openssl", ["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in",
                                                        pki.appendingPathComponent("org-sign.pem").path])
            .stdout.replacingOccurrences(of: "subject=", with: "").trimmingCharacters(in: .whitespacesAndNewlines)
        let now = Date()
        let format = ISO8601DateFormatter()
        let template = """
        <saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="VIHF-1" IssueInstant="\(format.string(from: now))" Version="2.0">\
        <saml2:Issuer>\(subject)</saml2:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>\
        <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>\
        <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#VIHF-1"><ds:Transforms>\
        <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>\
        <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>\
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>\
        <ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>\
        <saml2:Conditions NotBefore="\(format.string(from: now.addingTimeInterval(-10)))" NotOnOrAfter="\(format.string(from: now.addingTimeInterval(300)))"/>\
        <saml2:AttributeStatement><saml2:Attribute Name="VIHF_Version"><saml2:AttributeValue>3.0</saml2:AttributeValue></saml2:Attribute>\
        </saml2:AttributeStatement></saml2:Assertion>
        """
        let templateFile = dir.appendingPathComponent("t.xml"), out = dir.appendingPathComponent("vihf.xml")
        try Data(template.utf8).write(to: templateFile)
        let passphrase = try String(contentsOf: TestPaths.testPKIPassphraseFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let signed = try ProcessRunner.run("xmlsec1", ["--sign", "--pkcs12", pki.appendingPathComponent("org-sign.p12").path,
                                                       "--pwd", passphrase, "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                                                       "--output", out.path, templateFile.path])
        #expect(signed.succeeded, "\(signed.stderr)")
        let anchors = ["--trust-anchors", pki.appendingPathComponent("ca-with-crl.pem").path]
        let ok = try CLI.run(["verify-signature", out.path] + anchors)
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("issuer: \(subject)"))

        let tampered = dir.appendingPathComponent("tampered.xml")
        try Data(String(decoding: try Data(contentsOf: out), as: UTF8.self)
            .replacingOccurrences(of: "<saml2:AttributeValue>3.0<", with: "<saml2:AttributeValue>3.1<").utf8).write(to: tampered)
        let bad = try CLI.run(["verify-signature", tampered.path] + anchors)
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("XML signature invalid"))
    }
}
