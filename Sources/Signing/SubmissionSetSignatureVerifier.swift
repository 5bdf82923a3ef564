import Foundation
import OpenSSLKit
import XMLKit
import XMLSecKit

/// The verdict on a submission set signature: the XML signature itself, then each
/// Manifest reference against the documents supplied.
public struct SubmissionSetSignatureReport: Sendable {
    public enum ReferenceStatus: Sendable, Hashable {
        /// The supplied object's digest equals the signed one.
        case matched
        /// The supplied object differs from what was signed.
        case digestMismatch
        /// No object was supplied for this reference, so it was not checked.
        case notSupplied
        /// The reference uses a digest algorithm this verifier does not accept.
        case unsupportedAlgorithm(String)
    }

    public struct Reference: Sendable, Hashable {
        /// The uniqueId from `urn:oid:<uniqueId>` (or the raw URI if it is not one).
        public var uniqueId: String
        public var status: ReferenceStatus
    }

    /// xmlsec's verdict on SignedInfo (Manifest element, SignedProperties, signature value, certificate chain).
    public var signatureValid: Bool
    /// Subject of the certificate that verified the signature.
    public var signerSubject: String?
    /// XAdES SigningTime as written in the signed properties.
    public var signingTime: String?
    /// One entry per Manifest reference, in document order.
    public var references: [Reference]
    /// Human-readable reasons the whole is not valid (empty when valid).
    public var problems: [String]

    /// True when the XML signature verifies and every Manifest reference matched a supplied object.
    public var isValid: Bool { problems.isEmpty }
}

/// Checks a submission set signature produced by ``SubmissionSetSigner`` (or any IHE DSG
/// style one): xmlsec verifies the signature over SignedInfo against the trust anchors,
/// then the Manifest digests are recomputed from the supplied documents.
public struct SubmissionSetSignatureVerifier: Sendable {
    let trustStore: XMLSecTrustStore

    /// `trustAnchorsPEM`: CA certificates, and CRLs when revocation must be checked.
    public init(trustAnchorsPEM: [Data]) throws(SigningError) {
        do { trustStore = try XMLSecTrustStore(pem: trustAnchorsPEM) } catch { throw .xmlsec(error) }
    }

    public init(trustAnchorFiles: [URL]) throws(SigningError) {
        do { trustStore = try XMLSecTrustStore(pemFiles: trustAnchorFiles) } catch { throw .xmlsec(error) }
    }

    /// - Parameters:
    ///   - signature: the signature document.
    ///   - documents: bytes of the signed objects by uniqueId (documents and the submission set).
    ///   - time: the time at which the certificate must be valid (default now).
    ///   - checkManifest: false to check only the XML signature (no Manifest required,
    ///     `documents` ignored), e.g. for a VIHF assertion.
    public func verify(_ signature: Data, documents: [String: Data], at time: Date = Date(),
                       checkManifest: Bool = true) throws(SigningError) -> SubmissionSetSignatureReport {
        let result: XMLSignatureVerification
        do { result = try XMLSignatureVerifier.verify(signature, trustStore: trustStore, at: time) } catch { throw .xmlsec(error) }

        var problems: [String] = []
        if !result.isValid { problems.append("XML signature invalid: \(result.failure ?? "unknown reason")") }
        guard checkManifest else {
            return SubmissionSetSignatureReport(signatureValid: result.isValid, signerSubject: result.signer?.subject.rfc2253,
                                                references: [], problems: problems)
        }
        let coversManifest = result.references.contains {
            $0.uri == "#\(SubmissionSetSigner.manifestId)" && $0.type == xmlDSigManifestType && $0.digestMatched
        }
        if result.isValid && !coversManifest {
            problems.append("SignedInfo does not cover a ds:Manifest with Id \(SubmissionSetSigner.manifestId)")
        }
        var signingTime: String?
        if result.isValid {
            if let reference = result.references.first(where: { $0.type == Self.signedPropertiesType && $0.digestMatched }) {
                signingTime = Self.checkSignedProperties(signature, reference: reference.uri, signer: result.signer, problems: &problems)
            } else {
                problems.append("SignedInfo does not cover XAdES SignedProperties")
            }
        }

        var references: [SubmissionSetSignatureReport.Reference] = []
        var referenced = Set<String>()
        for reference in result.manifestReferences {
            let uniqueId = reference.uri.hasPrefix("urn:oid:") ? String(reference.uri.dropFirst(8)) : reference.uri
            referenced.insert(uniqueId)
            let status: SubmissionSetSignatureReport.ReferenceStatus
            if let algorithm = XMLDigestAlgorithm(digestURI: reference.digestAlgorithmURI) {
                if let bytes = documents[uniqueId] {
                    status = algorithm.digest(bytes) == reference.digestValue ? .matched : .digestMismatch
                } else {
                    status = .notSupplied
                }
            } else {
                status = .unsupportedAlgorithm(reference.digestAlgorithmURI)
            }
            switch status {
            case .matched: break
            case .digestMismatch: problems.append("\(uniqueId): the document does not match the signed digest")
            case .notSupplied: problems.append("\(uniqueId): signed but no document supplied, not checked")
            case .unsupportedAlgorithm(let uri): problems.append("\(uniqueId): unsupported digest algorithm \(uri)")
            }
            references.append(.init(uniqueId: uniqueId, status: status))
        }
        for uniqueId in documents.keys.sorted() where !referenced.contains(uniqueId) {
            problems.append("\(uniqueId): supplied but not covered by the signature's Manifest")
        }
        return SubmissionSetSignatureReport(
            signatureValid: result.isValid, signerSubject: result.signer?.subject.rfc2253, signingTime: signingTime,
            references: references, problems: problems)
    }

    static let signedPropertiesType = "http://uri.etsi.org/01903#SignedProperties"

    /// XAdES: the signed SigningCertificate must name the certificate that verified the
    /// signature (its digest), so a certificate swap in KeyInfo cannot pass. Returns SigningTime.
    static func checkSignedProperties(_ signature: Data, reference uri: String, signer: Certificate?,
                                      problems: inout [String]) -> String? {
        let id = String(uri.dropFirst())
        guard uri.hasPrefix("#"), Identifiers.isNCName(id) else {
            problems.append("SignedProperties reference \(uri) is not a same-document Id")
            return nil
        }
        let ns = ["xades": "http://uri.etsi.org/01903/v1.3.2#", "ds": xmlDSigNamespace]
        do {
            let document = try XMLKit.XMLDocument.parse(signature, options: xmlSignatureParseBudget)
            // The element xmlsec digested is the only one carrying this Id (no wrapped copy).
            guard try document.count("//*[@Id='\(id)' or @ID='\(id)']", namespaces: ns) == 1 else {
                problems.append("Id \(id) appears more than once")
                return nil
            }
            let properties = "//xades:SignedProperties[@Id='\(id)']/xades:SignedSignatureProperties"
            let cert = "\(properties)/xades:SigningCertificate/xades:Cert[1]/xades:CertDigest"
            let algorithmURI = try document.string("string(\(cert)/ds:DigestMethod/@Algorithm)", namespaces: ns)
            let value = try document.string("string(\(cert)/ds:DigestValue)", namespaces: ns)
            if let signer, let algorithm = XMLDigestAlgorithm(digestURI: algorithmURI),
               let digest = Data(base64Encoded: value.filter { !$0.isWhitespace }), algorithm.digest(signer.der) == digest {
                // matches
            } else {
                problems.append("XAdES SigningCertificate does not designate the certificate that verified the signature")
            }
            let time = try document.string("string(\(properties)/xades:SigningTime)", namespaces: ns)
            return time.isEmpty ? nil : time
        } catch {
            problems.append("cannot read the XAdES properties: \(error)")
            return nil
        }
    }
}
