import CLibXML2
import CXMLSec
import Foundation
import OpenSSLKit
import XMLKit

/// Digest algorithm of an XML signature (references and RSA signature).
public enum XMLDigestAlgorithm: String, Sendable, CaseIterable, Codable {
    /// SHA-256, the default.
    case sha256
    /// SHA-1, only for receivers that still demand it.
    case sha1

    /// `ds:DigestMethod/@Algorithm`.
    public var digestURI: String {
        switch self {
        case .sha1: "http://www.w3.org/2000/09/xmldsig#sha1"
        case .sha256: "http://www.w3.org/2001/04/xmlenc#sha256"
        }
    }

    /// `ds:SignatureMethod/@Algorithm` for RSA PKCS#1 v1.5.
    public var rsaSignatureURI: String {
        switch self {
        case .sha1: "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        case .sha256: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        }
    }

    public init?(digestURI: String) {
        guard let match = Self.allCases.first(where: { $0.digestURI == digestURI }) else { return nil }
        self = match
    }

    /// Digest of raw bytes (for `ds:Manifest` references to documents outside the XML).
    public func digest(_ data: Data) -> Data {
        Digest.hash(data, algorithm: self == .sha1 ? .sha1 : .sha256)
    }
}

/// XML-DSig namespace.
public let xmlDSigNamespace = "http://www.w3.org/2000/09/xmldsig#"

/// The parse budget of a signed XML document (VIHF assertion, XAdES submission-set signature,
/// their templates): a few KB with the certificate chain, so 1 MB is ample; DOCTYPE refused.
public let xmlSignatureParseBudget = XMLKit.XMLDocument.ParseOptions(maxBytes: 1024 * 1024)

/// A document parsed by XMLKit (safe options: no network, no DOCTYPE, no entities), seen as a
/// raw libxml2 tree for xmlsec.
final class ParsedXML {
    let document: XMLKit.XMLDocument
    var doc: xmlDocPtr { document.rawDocument }

    init(_ data: Data) throws(XMLSecError) {
        try XMLSecLibrary.ensureInitialized()
        do {
            document = try XMLKit.XMLDocument.parse(data, options: xmlSignatureParseBudget)
        } catch {
            throw .malformedXML("\(error)")
        }
    }

    var root: xmlNodePtr? { xmlDocGetRootElement(doc) }

    /// Registers the given attribute names as XML IDs everywhere, so that `URI="#id"`
    /// same-document references resolve (libxml2 knows only xml:id without a DTD).
    func registerIDs(_ names: [String]) {
        guard let root, !names.isEmpty else { return }
        let cStrings = names.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var list: [UnsafePointer<xmlChar>?] = cStrings.map { UnsafeRawPointer($0!).assumingMemoryBound(to: xmlChar.self) }
        list.append(nil)
        list.withUnsafeMutableBufferPointer { buffer in
            xmlSecAddIDs(doc, root, buffer.baseAddress)
        }
    }

    func firstSignatureNode() -> xmlNodePtr? {
        guard let root else { return nil }
        return xmlSecFindNode(root, "Signature", xmlDSigNamespace)
    }

    /// The `ds:Reference` children of the `ds:Manifest` whose registered ID is `id`.
    func manifestReferences(id: String) -> [XMLManifestReference] {
        guard let attribute = xmlGetID(doc, id), let manifest = attribute.pointee.parent,
              isDSig(manifest, "Manifest") else { return [] }
        var out: [XMLManifestReference] = []
        for reference in children(of: manifest) where isDSig(reference, "Reference") {
            var algorithm = "", value: Data?
            for child in children(of: reference) {
                if isDSig(child, "DigestMethod") { algorithm = attributeValue(child, "Algorithm") ?? "" }
                if isDSig(child, "DigestValue") {
                    value = Data(base64Encoded: textContent(child).filter { !$0.isWhitespace })
                }
            }
            out.append(XMLManifestReference(uri: attributeValue(reference, "URI") ?? "", digestAlgorithmURI: algorithm, digestValue: value))
        }
        return out
    }

    func serialized(declaration: Bool = true) throws(XMLSecError) -> Data {
        do { return try document.serialized(declaration: declaration) } catch { throw .signing("cannot serialise the signed document: \(error)") }
    }
}

/// The attribute names registered as IDs by default: XAdES/XML-DSig `Id`, SAML `ID`.
public let defaultIDAttributes = ["Id", "ID"]

/// Signs XML documents that already contain a complete `ds:Signature` template
/// (SignedInfo with References and empty DigestValue, empty SignatureValue, KeyInfo with
/// an empty `ds:X509Data` to be filled with the certificate chain).
public enum XMLSigner {
    /// Fills the first `ds:Signature` template of `template` and returns the signed document.
    /// Manifest references are *not* computed: their DigestValues must already be set.
    /// `xmlDeclaration: false` leaves out `<?xml …?>`, for XML meant to be embedded
    /// (a VIHF in a SOAP header).
    public static func sign(
        template: Data, key: XMLSecSigningKey, idAttributes: [String] = defaultIDAttributes, xmlDeclaration: Bool = true
    ) throws(XMLSecError) -> Data {
        let document = try ParsedXML(template)
        document.registerIDs(idAttributes)
        guard let signatureNode = document.firstSignatureNode() else {
            throw .malformedXML("no ds:Signature template in the document")
        }
        let failure: String? = withXMLSecErrors { collector in
            guard let context = xmlSecDSigCtxCreate(nil) else { return "xmlSecDSigCtxCreate failed" }
            defer { xmlSecDSigCtxDestroy(context) }
            // The shared key is lent, not duplicated: xmlSecKeyDuplicate re-encodes every
            // certificate (X509_dup), which costs more than the RSA signature under OpenSSL 3.
            // Signing only reads the key (the transform takes its own EVP_PKEY reference), and
            // the context must not free it, hence the reset below.
            context.pointee.signKey = key.key
            defer { context.pointee.signKey = nil }
            context.pointee.flags |= UInt32(XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS)
            context.pointee.enabledReferenceUris = xmlSecTransformUriType(xmlSecTransformUriTypeEmpty | xmlSecTransformUriTypeSameDocument)
            if xmlSecDSigCtxSign(context, signatureNode) < 0 {
                let openssl = ErrorQueue.drain(fallback: "")
                return collector.text + (openssl.isEmpty ? "" : "; \(openssl)")
            }
            return nil
        }
        if let failure { throw .signing(failure) }
        return try document.serialized(declaration: xmlDeclaration)
    }
}

// MARK: - Small libxml2 tree helpers (read-only)

func children(of node: xmlNodePtr) -> [xmlNodePtr] {
    var out: [xmlNodePtr] = []
    var child = node.pointee.children
    while let current = child {
        if current.pointee.type == XML_ELEMENT_NODE { out.append(current) }
        child = current.pointee.next
    }
    return out
}

func isDSig(_ node: xmlNodePtr, _ name: String) -> Bool {
    guard let ns = node.pointee.ns, let href = ns.pointee.href, let local = node.pointee.name else { return false }
    return String(cString: local) == name && String(cString: href) == xmlDSigNamespace
}

func attributeValue(_ node: xmlNodePtr, _ name: String) -> String? {
    guard let value = xmlGetNoNsProp(node, name) else { return nil }
    defer { free(value) }
    return String(cString: value)
}

func textContent(_ node: xmlNodePtr) -> String {
    guard let value = xmlNodeGetContent(node) else { return "" }
    defer { free(value) }
    return String(cString: value)
}
