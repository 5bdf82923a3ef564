import Foundation
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
        let python = try ExternalVerifier.signxml(signed, references: 2, sha1: algorithm == .sha1)
        #expect(python.succeeded, "signxml: \(python.stderr)")
        #expect(python.stdout.contains("Manifest") && python.stdout.contains("SignedProperties"))
    }

    @Test func bothVerifiersRejectATamperedSignedElement() throws {
        let signed = try sign()
        // One byte of the signed SigningTime (inside SignedProperties).
        let tampered = tamper(signed, inside: "<xades:SigningTime>")
        #expect(tampered != signed)
        #expect(try !ExternalVerifier.xmlsec1(tampered).succeeded)
        #expect(try !ExternalVerifier.signxml(tampered, references: 2).succeeded)
        // One byte of a Manifest digest.
        let manifestTampered = tamper(signed, inside: "<ds:Reference URI=\"urn:oid:\(Self.docId)\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>")
        #expect(manifestTampered != signed)
        #expect(try !ExternalVerifier.xmlsec1(manifestTampered).succeeded)
        #expect(try !ExternalVerifier.signxml(manifestTampered, references: 2).succeeded)
    }

    @Test func bothVerifiersRejectTheWrongCertificate() throws {
        // Signed by a certificate of another CA…
        let unknown = try SubmissionSetSigner(credentials: TestPKI.credentials("unknown-sign", anchors: [])).sign(
            submissionSet: ManifestItem(uniqueId: Self.setId, content: .bytes(Self.registryPackage)),
            documents: [ManifestItem(uniqueId: Self.docId, content: .bytes(Self.cda))])
        #expect(try !ExternalVerifier.xmlsec1(unknown).succeeded)
        #expect(try !ExternalVerifier.signxml(unknown, references: 2).succeeded)
        // …and a good signature checked against the wrong anchor.
        let good = try sign()
        #expect(try !ExternalVerifier.xmlsec1(good, trusted: "unknown-ca.pem").succeeded)
        #expect(try !ExternalVerifier.signxml(good, trusted: "unknown-ca.pem", references: 2).succeeded)
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
        let credentials = try TestPKI.credentials("expired-sign", anchors: [])
        let inValidity = credentials.certificateValidity.lowerBound.addingTimeInterval(60)
        let signed = try SubmissionSetSigner(credentials: credentials).sign(
            submissionSet: ManifestItem(uniqueId: Self.setId, content: .bytes(Self.registryPackage)),
            documents: [ManifestItem(uniqueId: Self.docId, content: .bytes(Self.cda))], signingTime: inValidity)
        #expect(try !ExternalVerifier.xmlsec1(signed).succeeded)
        #expect(try !ExternalVerifier.signxml(signed, references: 2).succeeded)
    }

    @Test func refusesRevokedAndNotYetValidCertificates() throws {
        #expect {
            _ = try sign("revoked-sign")
        } throws: { error in
            guard case SigningError.certificateRejected(_, let reason) = error else { return false }
            return reason.contains("revoked")
        }
        #expect(throws: SigningError.self) { _ = try sign("notyet-sign") }
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
