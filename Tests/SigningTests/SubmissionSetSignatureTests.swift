import Foundation
import OpenSSLKit
import Signing
import Testing
import TestSupport

@Suite struct SubmissionSetSignatureTests {
    static let cda = Data("<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>Lettre de liaison</title></ClinicalDocument>".utf8)
    static let registryPackage = Data("<rim:RegistryPackage xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\" id=\"SubmissionSet01\"/>".utf8)
    static let setId = "1.2.250.1.999.1.1.2.20261123"
    static let docId = "1.2.250.1.999.1.1.3.42"

    func sign(_ name: String = "org-sign", algorithm: SignatureDigestAlgorithm = .sha256, time: Date = Date()) throws -> Data {
        try SubmissionSetSigner(credentials: TestPKI.credentials(name), digestAlgorithm: algorithm).sign(
            submissionSet: ManifestItem(uniqueId: Self.setId, content: .bytes(Self.registryPackage)),
            documents: [ManifestItem(uniqueId: Self.docId, content: .bytes(Self.cda))],
            signatureId: "IHESignature-1", signingTime: time)
    }

    @Test(arguments: [SignatureDigestAlgorithm.sha256, .sha1])
    func bothVerifiersAccept(algorithm: SignatureDigestAlgorithm) throws {
        let signed = try sign(algorithm: algorithm)
        let text = String(decoding: signed, as: UTF8.self)
        #expect(text.contains("URI=\"urn:oid:\(Self.setId)\""))
        #expect(text.contains("URI=\"urn:oid:\(Self.docId)\""))
        #expect(text.contains("urn:oid:1.2.840.10065.1.12.1.14"))

        let cli = try ExternalVerifier.xmlsec1(signed)
        #expect(cli.succeeded, "xmlsec1: \(cli.stderr)")
        let python = try ExternalVerifier.signxml(signed, references: 2, sha1: algorithm == .sha1, xades: true)
        #expect(python.succeeded, "signxml: \(python.stderr)")
        #expect(python.stdout.contains("Manifest") && python.stdout.contains("SignedProperties"))
    }

    @Test func bothVerifiersRejectATamperedSignedElement() throws {
        let signed = try sign()
        // One byte of the signed SigningTime (inside SignedProperties).
        let tampered = tamper(signed, inside: "<xades:SigningTime>")
        #expect(tampered != signed)
        #expect(try ExternalVerifier.xmlsec1(tampered).xmlsec1Rejected)
        #expect(try ExternalVerifier.signxml(tampered, references: 2).signxmlRejected)
        // One byte of a Manifest digest.
        let manifestTampered = tamper(signed, inside: "<ds:Reference URI=\"urn:oid:\(Self.docId)\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>")
        #expect(manifestTampered != signed)
        #expect(try ExternalVerifier.xmlsec1(manifestTampered).xmlsec1Rejected)
        #expect(try ExternalVerifier.signxml(manifestTampered, references: 2).signxmlRejected)
    }

    @Test func bothVerifiersRejectTheWrongCertificate() throws {
        // Signed by a certificate of another CA…
        let unknown = try SubmissionSetSigner(credentials: TestPKI.credentials("unknown-sign", trusted: false)).sign(
            submissionSet: ManifestItem(uniqueId: Self.setId, content: .bytes(Self.registryPackage)),
            documents: [ManifestItem(uniqueId: Self.docId, content: .bytes(Self.cda))])
        #expect(try ExternalVerifier.xmlsec1(unknown).xmlsec1Rejected)
        #expect(try ExternalVerifier.signxml(unknown, references: 2).signxmlRejected)
        // …and a good signature checked against the wrong anchor.
        let good = try sign()
        #expect(try ExternalVerifier.xmlsec1(good, trusted: "unknown-ca.pem").xmlsec1Rejected)
        #expect(try ExternalVerifier.signxml(good, trusted: "unknown-ca.pem", references: 2).signxmlRejected)
    }

    @Test func expiredCertificate() throws {
        // The gateway refuses…
        #expect {
            _ = try sign("expired-sign")
        } throws: { error in
            guard case SigningError.certificateNotValidAt = error else { return false }
            return "\(error)".contains("refusing to sign")
        }
        // …and a signature made anyway (signing time inside the old validity) is rejected by both.
        let credentials = try TestPKI.credentials("expired-sign", trusted: false)
        let inValidity = credentials.certificateValidity.lowerBound.addingTimeInterval(60)
        let signed = try SubmissionSetSigner(credentials: credentials).sign(
            submissionSet: ManifestItem(uniqueId: Self.setId, content: .bytes(Self.registryPackage)),
            documents: [ManifestItem(uniqueId: Self.docId, content: .bytes(Self.cda))], signingTime: inValidity)
        #expect(try ExternalVerifier.xmlsec1(signed).xmlsec1Rejected)
        #expect(try ExternalVerifier.signxml(signed, references: 2).signxmlRejected)
    }

    @Test func refusesRevokedAndNotYetValidCertificates() throws {
        #expect {
            _ = try sign("revoked-sign")
        } throws: { error in
            guard case SigningError.certificateRejected(_, let reason) = error else { return false }
            return reason.contains("revoked")
        }
        #expect(throws: SigningError.self) { _ = try sign("notyet-sign") }
        // A TLS client certificate is not for signatures.
        #expect {
            _ = try sign("org-auth")
        } throws: { error in
            guard case SigningError.certificateRejected = error else { return false }
            return "\(error)".contains("key usage")
        }
        #expect(throws: Never.self) { _ = try sign("expiring-sign") }
    }

    @Test func rejectsBadInput() throws {
        let signer = try SubmissionSetSigner(credentials: TestPKI.credentials("org-sign"))
        #expect(throws: SigningError.self) {
            _ = try signer.sign(submissionSet: ManifestItem(uniqueId: "not-an-oid", content: .bytes(Data())),
                                documents: [ManifestItem(uniqueId: Self.docId, content: .bytes(Self.cda))])
        }
        #expect(throws: SigningError.self) {
            _ = try signer.sign(submissionSet: ManifestItem(uniqueId: Self.setId, content: .bytes(Data())),
                                documents: [ManifestItem(uniqueId: Self.docId, content: .digest(Data([1, 2])))])
        }
    }
}

@Suite struct SubmissionSetSignatureVerifierTests {
    typealias T = SubmissionSetSignatureTests
    let verifier: SubmissionSetSignatureVerifier
    init() throws { verifier = try SubmissionSetSignatureVerifier(trustAnchorFiles: [TestPKI.url("ca-with-crl.pem")]) }

    @Test(arguments: [SignatureDigestAlgorithm.sha256, .sha1])
    func acceptsMatchingDocuments(algorithm: SignatureDigestAlgorithm) throws {
        let signed = try T().sign(algorithm: algorithm)
        let report = try verifier.verify(signed, documents: [T.setId: T.registryPackage, T.docId: T.cda])
        #expect(report.isValid, "\(report.problems)")
        #expect(report.references.map(\.status) == [.matched, .matched])
        #expect(report.signerSubject?.contains("ORG_SIGN") == true)
        #expect(report.signingTime?.hasSuffix("Z") == true)
    }

    @Test func precomputedDigestsGiveTheSameSignature() throws {
        let signer = try SubmissionSetSigner(credentials: TestPKI.credentials("org-sign"))
        let digest = try #require(try ExternalDigest.sha256(T.cda))
        let signed = try signer.sign(
            submissionSet: ManifestItem(uniqueId: T.setId, content: .bytes(T.registryPackage)),
            documents: [ManifestItem(uniqueId: T.docId, content: .digest(digest))])
        #expect(try verifier.verify(signed, documents: [T.setId: T.registryPackage, T.docId: T.cda]).isValid)
    }

    @Test func reportsChangedMissingAndExtraDocuments() throws {
        let signed = try T().sign()
        var changed = T.cda
        changed[changed.count - 3] ^= 0x01
        let report = try verifier.verify(signed, documents: [T.setId: T.registryPackage, T.docId: changed])
        #expect(!report.isValid)
        #expect(report.signatureValid)
        #expect(report.references.last?.status == .digestMismatch)

        let missing = try verifier.verify(signed, documents: [T.docId: T.cda])
        #expect(!missing.isValid)
        #expect(missing.references.first?.status == .notSupplied)

        let extra = try verifier.verify(signed, documents: [T.setId: T.registryPackage, T.docId: T.cda, "1.2.3": Data()])
        #expect(extra.problems.contains { $0.contains("1.2.3") })
    }

    @Test func rejectsTamperedSignatureAndUntrustedSigner() throws {
        let signed = try T().sign()
        let tampered = tamper(signed, inside: "<xades:SigningTime>")
        let report = try verifier.verify(tampered, documents: [T.setId: T.registryPackage, T.docId: T.cda])
        #expect(!report.signatureValid)
        #expect(!report.isValid)

        let other = try SubmissionSetSignatureVerifier(trustAnchorFiles: [TestPKI.url("unknown-ca.pem")])
        #expect(try !other.verify(signed, documents: [T.setId: T.registryPackage, T.docId: T.cda]).isValid)
    }
}

/// SHA-256 by the openssl CLI, independent of the code under test.
enum ExternalDigest {
    static func sha256(_ data: Data) throws -> Data? {
        let result = try ProcessRunner.run("openssl", ["dgst", "-sha256", "-r"], stdin: data)
        guard result.succeeded, let hex = result.stdout.split(separator: " ").first, hex.count == 64 else { return nil }
        return Data(hexString: String(hex))
    }
}

@Suite struct SigningCredentialsTests {
    func source(signing: String?, passphrase: URL = TestPaths.testPKIPassphraseFile) -> KeyMaterialSource {
        KeyMaterialSource(authentication: nil, signing: signing.map(TestPKI.url), passphrase: .file(passphrase),
                          trustAnchors: TestPKI.url("ca.pem"), crls: [TestPKI.url("ca.crl.pem")])
    }

    @Test func fromConfigurationSource() throws {
        let credentials = try SigningCredentials(source(signing: "org-sign.p12"))
        #expect(credentials.certificateSubject.contains("ORG_SIGN"))
        #expect(throws: Never.self) { try credentials.checkUsable(at: Date()) }
        #expect(throws: SigningError.self) { try SigningCredentials(source(signing: "revoked-sign.p12")).checkUsable(at: Date()) }
    }

    @Test func explainsMissingAndWrongInputs() throws {
        #expect { try SigningCredentials(source(signing: nil)) } throws: { "\($0)".contains("no signing PKCS#12") }
        #expect { try SigningCredentials(source(signing: "absent.p12")) } throws: { "\($0)".contains("absent.p12") }
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let wrong = dir.appendingPathComponent("pass")
        try Data("Zq9-not-it-Zq9\n".utf8).write(to: wrong)
        #expect { try SigningCredentials(source(signing: "org-sign.p12", passphrase: wrong)) } throws: { error in
            let text = "\(error)"
            return text.contains("passphrase") && !text.contains("Zq9")
        }
    }
}
