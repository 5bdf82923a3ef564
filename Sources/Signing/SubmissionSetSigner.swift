import Foundation
import PasserelleCore
import XMLSecKit

/// What a `ds:Manifest` reference stands for: the object's bytes, or their digest when the
/// caller already has it (computed with the signer's digest algorithm).
public enum ManifestContent: Sendable, Hashable {
    case bytes(Data)
    case digest(Data)
}

/// One object of the submission set covered by the signature's Manifest
/// (`URI="urn:oid:<uniqueId>"`).
public struct ManifestItem: Sendable, Hashable {
    public var uniqueId: String
    public var content: ManifestContent
    public init(uniqueId: String, content: ManifestContent) {
        self.uniqueId = uniqueId
        self.content = content
    }
}

/// Produces the XAdES signature of a DMP submission set (*lot de soumission*), IHE DSG
/// style: an enveloping `ds:Signature` whose `ds:Object` holds `ds:Manifest Id="IHEManifest"`
/// referencing the submission set and each document by `urn:oid:`, XAdES SignedProperties
/// (signing time, signing certificate digests, implied policy, and the purpose of signature
/// 1.2.840.10065.1.12.1.14 as XAdES CommitmentTypeIndication — a bare-text
/// `ds:SignatureProperty` would not be schema-valid); exclusive C14N everywhere, RSA with the chosen digest. xmlsec1 computes the SignedInfo
/// digests and the signature value.
public struct SubmissionSetSigner: Sendable {
    /// `Id` of the Manifest (fixed by the DSG profile as used by the DMP).
    public static let manifestId = "IHEManifest"
    /// Purpose of signature / XAdES commitment type: "Source" (author's origin).
    public static let purposeOfSignature = "1.2.840.10065.1.12.1.14"

    public var credentials: SigningCredentials
    public var digestAlgorithm: SignatureDigestAlgorithm

    public init(credentials: SigningCredentials, digestAlgorithm: SignatureDigestAlgorithm = .sha256) {
        self.credentials = credentials
        self.digestAlgorithm = digestAlgorithm
    }

    /// Signs the submission set `submissionSet` and its `documents`.
    /// - Parameters:
    ///   - submissionSet: the submission set uniqueId and the bytes that stand for it
    ///     (the DMP code passes its serialised `rim:RegistryPackage`).
    ///   - signatureId: `Signature/@Id` (an XML NCName); a fresh one by default.
    ///   - signingTime: XAdES SigningTime; the certificate must be valid then.
    /// - Returns: the signature document (UTF-8 XML), to be sent as its own XDS document.
    public func sign(
        submissionSet: ManifestItem, documents: [ManifestItem],
        signatureId: String = "IHESignature-\(UUID.random().uuidString.lowercased())", signingTime: Date = Date()
    ) throws(SigningError) -> Data {
        guard Identifiers.isNCName(signatureId) else {
            throw .invalidInput("signature Id '\(signatureId)' is not an XML NCName")
        }
        guard !documents.isEmpty else { throw .invalidInput("a submission set signature covers at least one document") }
        let items = [submissionSet] + documents
        var seen = Set<String>()
        for item in items {
            guard Identifiers.isOID(item.uniqueId) else {
                throw .invalidInput("uniqueId '\(item.uniqueId)' is not an OID (urn:oid: references need one)")
            }
            guard seen.insert(item.uniqueId).inserted else { throw .invalidInput("uniqueId \(item.uniqueId) appears twice") }
        }
        try credentials.checkUsable(at: signingTime)

        let algorithm = digestAlgorithm.xmlsec
        var manifest = ""
        for item in items {
            let digest: Data
            switch item.content {
            case .bytes(let bytes): digest = algorithm.digest(bytes)
            case .digest(let given):
                guard given.count == algorithm.digest(Data()).count else {
                    throw .invalidInput("the digest given for \(item.uniqueId) has \(given.count) bytes, not a \(digestAlgorithm.rawValue) digest")
                }
                digest = given
            }
            manifest += "<ds:Reference URI=\"urn:oid:\(item.uniqueId)\"><ds:DigestMethod Algorithm=\"\(algorithm.digestURI)\"/>"
                + "<ds:DigestValue>\(digest.base64EncodedString())</ds:DigestValue></ds:Reference>"
        }

        var signingCertificates = ""
        for certificate in credentials.chain {
            let der = certificate.der
            signingCertificates += "<xades:Cert><xades:CertDigest><ds:DigestMethod Algorithm=\"\(algorithm.digestURI)\"/>"
                + "<ds:DigestValue>\(algorithm.digest(der).base64EncodedString())</ds:DigestValue></xades:CertDigest>"
                + "<xades:IssuerSerial><ds:X509IssuerName>\(certificate.issuer.rfc2253.xmlEscaped)</ds:X509IssuerName>"
                + "<ds:X509SerialNumber>\(certificate.serialNumberDecimal)</ds:X509SerialNumber></xades:IssuerSerial></xades:Cert>"
        }

        let c14n = "http://www.w3.org/2001/10/xml-exc-c14n#"
        let signedPropertiesId = "\(signatureId)-SignedProperties"
        func reference(_ id: String, type: String) -> String {
            "<ds:Reference URI=\"#\(id)\" Type=\"\(type)\"><ds:Transforms><ds:Transform Algorithm=\"\(c14n)\"/></ds:Transforms>"
                + "<ds:DigestMethod Algorithm=\"\(algorithm.digestURI)\"/><ds:DigestValue></ds:DigestValue></ds:Reference>"
        }
        let template = """
        <?xml version="1.0" encoding="UTF-8"?>
        <ds:Signature xmlns:ds="\(xmlDSigNamespace)" Id="\(signatureId)">\
        <ds:SignedInfo><ds:CanonicalizationMethod Algorithm="\(c14n)"/>\
        <ds:SignatureMethod Algorithm="\(algorithm.rsaSignatureURI)"/>\
        \(reference(Self.manifestId, type: xmlDSigManifestType))\
        \(reference(signedPropertiesId, type: "http://uri.etsi.org/01903#SignedProperties"))\
        </ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>\
        <ds:KeyInfo><ds:X509Data></ds:X509Data></ds:KeyInfo>\
        <ds:Object><xades:QualifyingProperties xmlns:xades="http://uri.etsi.org/01903/v1.3.2#" Target="#\(signatureId)">\
        <xades:SignedProperties Id="\(signedPropertiesId)"><xades:SignedSignatureProperties>\
        <xades:SigningTime>\(Identifiers.xmlDateTime(signingTime))</xades:SigningTime>\
        <xades:SigningCertificate>\(signingCertificates)</xades:SigningCertificate>\
        <xades:SignaturePolicyIdentifier><xades:SignaturePolicyImplied/></xades:SignaturePolicyIdentifier>\
        </xades:SignedSignatureProperties><xades:SignedDataObjectProperties><xades:CommitmentTypeIndication>\
        <xades:CommitmentTypeId><xades:Identifier Qualifier="OIDAsURN">urn:oid:\(Self.purposeOfSignature)</xades:Identifier>\
        <xades:Description>Source</xades:Description></xades:CommitmentTypeId><xades:AllSignedDataObjects/>\
        </xades:CommitmentTypeIndication></xades:SignedDataObjectProperties></xades:SignedProperties>\
        </xades:QualifyingProperties></ds:Object>\
        <ds:Object><ds:Manifest Id="\(Self.manifestId)">\(manifest)</ds:Manifest></ds:Object>\
        </ds:Signature>
        """
        return try credentials.sign(template: template)
    }
}
