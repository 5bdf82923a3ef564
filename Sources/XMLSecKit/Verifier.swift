import CLibXML2
import COpenSSL
import CXMLSec
import Foundation
import OpenSSLKit

/// One `ds:Reference` of `ds:SignedInfo` as xmlsec processed it.
public struct XMLSignedReference: Sendable, Hashable {
    public var uri: String
    public var type: String?
    /// True when the recomputed digest matched.
    public var digestMatched: Bool
}

/// The outcome of checking one XML signature.
public struct XMLSignatureVerification: Sendable {
    /// True when every SignedInfo reference matched, the signature value verified with the
    /// key of a certificate that chains to a trust anchor at the verification time.
    public var isValid: Bool
    /// xmlsec's reason when not valid.
    public var failure: String?
    /// The SignedInfo references (same-document `#id` ones).
    public var references: [XMLSignedReference]
    /// The certificate whose key verified the signature (when one was found).
    public var signer: Certificate?
    /// The references of every `ds:Manifest` that a *matching* SignedInfo reference covers
    /// (read from the very element xmlsec digested, so a wrapped copy cannot be substituted).
    /// Their digests are not checked here.
    public var manifestReferences: [XMLManifestReference] = []
}

/// One `ds:Reference` inside a signed `ds:Manifest`.
public struct XMLManifestReference: Sendable, Hashable {
    public var uri: String
    public var digestAlgorithmURI: String
    /// The decoded DigestValue (nil if it is not valid base64).
    public var digestValue: Data?
}

/// `ds:Reference/@Type` of a reference to a `ds:Manifest`.
public let xmlDSigManifestType = "http://www.w3.org/2000/09/xmldsig#Manifest"


/// Verifies the first `ds:Signature` of a document with xmlsec against a trust store.
/// `ds:Manifest` references are not followed (they point outside the document, e.g.
/// `urn:oid:`); callers check them against the documents they hold.
public enum XMLSignatureVerifier {
    public static func verify(
        _ xml: Data, trustStore: XMLSecTrustStore, at time: Date = Date(),
        idAttributes: [String] = defaultIDAttributes
    ) throws(XMLSecError) -> XMLSignatureVerification {
        let document = try ParsedXML(xml)
        document.registerIDs(idAttributes)
        guard let signatureNode = document.firstSignatureNode() else {
            throw .malformedXML("no ds:Signature element in the document")
        }
        return trustStore.locked {
            withXMLSecErrors { collector in
                guard let context = xmlSecDSigCtxCreate(trustStore.manager) else {
                    return XMLSignatureVerification(isValid: false, failure: "xmlSecDSigCtxCreate failed", references: [], signer: nil)
                }
                defer { xmlSecDSigCtxDestroy(context) }
                context.pointee.flags |= UInt32(XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS | XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES)
                // Only same-document references: nothing is fetched from the network or disk.
                context.pointee.enabledReferenceUris = xmlSecTransformUriType(xmlSecTransformUriTypeEmpty | xmlSecTransformUriTypeSameDocument)
                // Keys only from X.509 certificates that chain to the anchors — never a bare KeyValue.
                _ = xmlSecPtrListAdd(&context.pointee.keyInfoReadCtx.enabledKeyData,
                                     UnsafeMutableRawPointer(mutating: UnsafeRawPointer(xmlSecOpenSSLKeyDataX509GetKlass())))
                context.pointee.keyInfoReadCtx.certsVerificationTime = time_t(time.timeIntervalSince1970)

                let processed = xmlSecDSigCtxVerify(context, signatureNode)
                var references: [XMLSignedReference] = []
                let list = withUnsafeMutablePointer(to: &context.pointee.signedInfoReferences) { $0 }
                for index in 0..<xmlSecPtrListGetSize(list) {
                    guard let raw = xmlSecPtrListGetItem(list, index) else { continue }
                    let reference = raw.assumingMemoryBound(to: xmlSecDSigReferenceCtx.self).pointee
                    references.append(XMLSignedReference(
                        uri: reference.uri.map { String(cString: $0) } ?? "",
                        type: reference.type.map { String(cString: $0) },
                        digestMatched: reference.status == xmlSecDSigStatusSucceeded))
                }
                var signer: Certificate?
                if let key = context.pointee.signKey,
                   let data = xmlSecKeyGetData(key, xmlSecOpenSSLKeyDataX509GetKlass()),
                   let cert = xmlSecOpenSSLKeyDataX509GetKeyCert(data), let der = derEncoding(cert) {
                    signer = try? Certificate(der: der)
                }
                ErrorQueue.clear()
                if processed < 0 {
                    return XMLSignatureVerification(isValid: false, failure: collector.text, references: references, signer: signer)
                }
                if context.pointee.status != xmlSecDSigStatusSucceeded {
                    let badReferences = references.filter { !$0.digestMatched }.map(\.uri)
                    let reason = badReferences.isEmpty
                        ? "the signature value does not verify"
                        : "digest mismatch for reference(s) \(badReferences.joined(separator: ", "))"
                    let detail = collector.messages.isEmpty ? "" : " (\(collector.text))"
                    return XMLSignatureVerification(isValid: false, failure: reason + detail, references: references, signer: signer)
                }
                var result = XMLSignatureVerification(isValid: true, failure: nil, references: references, signer: signer)
                for reference in references where reference.digestMatched && reference.type == xmlDSigManifestType && reference.uri.hasPrefix("#") {
                    result.manifestReferences += document.manifestReferences(id: String(reference.uri.dropFirst()))
                }
                return result
            }
        }
    }
}
