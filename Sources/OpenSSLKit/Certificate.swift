import COpenSSL
import Foundation

/// Owns one reference to a parsed X509. Parsed certificates are immutable here and OpenSSL's
/// reference counting is atomic, so the handle may be shared between threads.
final class X509Handle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(owning pointer: OpaquePointer) { self.pointer = pointer }
    /// Takes an extra reference on a pointer owned elsewhere (e.g. a stack or an SSL).
    convenience init(retaining pointer: OpaquePointer) {
        X509_up_ref(pointer)
        self.init(owning: pointer)
    }
    deinit { X509_free(pointer) }
}

/// One attribute of a distinguished name, e.g. `CN=passerelle.example`.
public struct DNAttribute: Sendable, Hashable, CustomStringConvertible {
    /// Short name when OpenSSL knows one (CN, O, OU, C, serialNumber...), else the dotted OID.
    public var type: String
    public var value: String
    public var description: String { "\(type)=\(value)" }
}

/// A distinguished name: its RFC 2253 string and its attributes in certificate order.
public struct DistinguishedName: Sendable, Hashable, CustomStringConvertible {
    /// RFC 2253 form (most specific attribute first, e.g. "CN=x,O=y,C=FR").
    public var rfc2253: String
    /// Attributes in the order they appear in the certificate (least specific first, usually C).
    public var components: [DNAttribute]

    /// The first value of the attribute `type` ("CN", "O", "OU", "C", ...).
    public subscript(type: String) -> String? { components.first { $0.type == type }?.value }
    public var commonName: String? { self["CN"] }
    public var description: String { rfc2253 }

    init(_ name: OpaquePointer) {
        let printed = collectBIO { bio in copenssl_x509_name_print_rfc2253(bio, name) >= 0 } ?? Data()
        rfc2253 = String(decoding: printed, as: UTF8.self)
        var attributes: [DNAttribute] = []
        for index in 0..<X509_NAME_entry_count(name) {
            guard let entry = X509_NAME_get_entry(name, index) else { continue }
            let object = X509_NAME_ENTRY_get_object(entry)
            let nid = OBJ_obj2nid(object)
            var type: String
            if nid != NID_undef, let short = OBJ_nid2sn(nid) {
                type = String(cString: short)
            } else {
                var buffer = [CChar](repeating: 0, count: 128)
                OBJ_obj2txt(&buffer, Int32(buffer.count), object, 1)
                type = cString(buffer)
            }
            var utf8: UnsafeMutablePointer<UInt8>?
            let length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry))
            var value = ""
            if length >= 0, let utf8 {
                value = String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
                copenssl_free(utf8)
            }
            attributes.append(DNAttribute(type: type, value: value))
        }
        components = attributes
    }
}

/// The keyUsage extension bits.
public struct KeyUsage: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let digitalSignature = KeyUsage(rawValue: UInt32(KU_DIGITAL_SIGNATURE))
    public static let nonRepudiation = KeyUsage(rawValue: UInt32(KU_NON_REPUDIATION))
    public static let keyEncipherment = KeyUsage(rawValue: UInt32(KU_KEY_ENCIPHERMENT))
    public static let dataEncipherment = KeyUsage(rawValue: UInt32(KU_DATA_ENCIPHERMENT))
    public static let keyAgreement = KeyUsage(rawValue: UInt32(KU_KEY_AGREEMENT))
    public static let keyCertSign = KeyUsage(rawValue: UInt32(KU_KEY_CERT_SIGN))
    public static let cRLSign = KeyUsage(rawValue: UInt32(KU_CRL_SIGN))
    public static let encipherOnly = KeyUsage(rawValue: UInt32(KU_ENCIPHER_ONLY))
    public static let decipherOnly = KeyUsage(rawValue: UInt32(KU_DECIPHER_ONLY))

    static let named: [(KeyUsage, String)] = [
        (.digitalSignature, "digitalSignature"), (.nonRepudiation, "nonRepudiation"),
        (.keyEncipherment, "keyEncipherment"), (.dataEncipherment, "dataEncipherment"),
        (.keyAgreement, "keyAgreement"), (.keyCertSign, "keyCertSign"), (.cRLSign, "cRLSign"),
        (.encipherOnly, "encipherOnly"), (.decipherOnly, "decipherOnly"),
    ]

    /// RFC 5280 names of the bits set, e.g. ["digitalSignature", "nonRepudiation"].
    public var names: [String] { Self.named.filter { contains($0.0) }.map(\.1) }
    public var description: String { names.joined(separator: ", ") }
}

/// One extendedKeyUsage purpose, identified by its OID.
public struct ExtendedKeyUsage: Sendable, Hashable, CustomStringConvertible {
    public var oid: String
    public init(oid: String) { self.oid = oid }

    public static let serverAuth = ExtendedKeyUsage(oid: "1.3.6.1.5.5.7.3.1")
    public static let clientAuth = ExtendedKeyUsage(oid: "1.3.6.1.5.5.7.3.2")
    public static let codeSigning = ExtendedKeyUsage(oid: "1.3.6.1.5.5.7.3.3")
    public static let emailProtection = ExtendedKeyUsage(oid: "1.3.6.1.5.5.7.3.4")
    public static let timeStamping = ExtendedKeyUsage(oid: "1.3.6.1.5.5.7.3.8")
    public static let ocspSigning = ExtendedKeyUsage(oid: "1.3.6.1.5.5.7.3.9")

    /// The usual name ("clientAuth"), or the OID for purposes without one here.
    public var name: String {
        switch self {
        case .serverAuth: "serverAuth"
        case .clientAuth: "clientAuth"
        case .codeSigning: "codeSigning"
        case .emailProtection: "emailProtection"
        case .timeStamping: "timeStamping"
        case .ocspSigning: "OCSPSigning"
        default: oid
        }
    }
    public var description: String { name }
}

/// A subjectAltName entry.
public enum SubjectAltName: Sendable, Hashable, CustomStringConvertible {
    case dns(String)
    case email(String)
    case uri(String)
    case ip(String)
    /// Other kinds (directory names, otherName...) identified by their GEN_* type number.
    case other(type: Int)

    public var description: String {
        switch self {
        case let .dns(name): "DNS:\(name)"
        case let .email(address): "email:\(address)"
        case let .uri(uri): "URI:\(uri)"
        case let .ip(address): "IP:\(address)"
        case let .other(type): "other(\(type))"
        }
    }
}

/// An X.509 certificate: a value over its DER encoding, with the fields an operator checks.
public struct Certificate: Sendable, Hashable, CustomStringConvertible {
    /// The DER encoding.
    public let der: Data
    let handle: X509Handle

    init(handle: X509Handle) {
        self.handle = handle
        var buffer: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509(handle.pointer, &buffer)
        if length > 0, let buffer {
            der = Data(bytes: buffer, count: Int(length))
            copenssl_free(buffer)
        } else {
            der = Data()
        }
    }

    /// A copy of the X509 for another wrapper of this package (XMLSecKit hands it to xmlsec,
    /// which frees it). Not for use outside the package.
    package func duplicatedX509() -> OpaquePointer? { X509_dup(handle.pointer) }

    /// Parses a DER certificate.
    public init(der: Data, source: String = "DER data") throws(OpenSSLError) {
        ErrorQueue.clear()
        let bytes = [UInt8](der)
        let parsed: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &cursor, buffer.count)
        }
        guard let parsed else { throw .invalidCertificate(source: source, detail: ErrorQueue.drain()) }
        self.init(handle: X509Handle(owning: parsed))
    }

    /// Parses the first certificate of a PEM text.
    public init(pem: Data, source: String = "PEM data") throws(OpenSSLError) {
        let all = try Certificate.all(from: pem, source: source)
        self = all[0]
    }

    /// Every certificate in PEM (any number of blocks; other blocks such as CRLs are skipped)
    /// or DER (exactly one) data. Throws if there is none.
    public static func all(from data: Data, source: String = "data") throws(OpenSSLError) -> [Certificate] {
        guard PEM.looksLikePEM(data) else { return [try Certificate(der: data, source: source)] }
        ErrorQueue.clear()
        let certificates: [Certificate] = try withReadBIO(data) { bio in
            var found: [Certificate] = []
            while let x509 = PEM_read_bio_X509(bio, nil, nil, nil) {
                found.append(Certificate(handle: X509Handle(owning: x509)))
            }
            return found
        }
        // Reaching the end of the data leaves a "no start line" error: expected, not a failure.
        let detail = ErrorQueue.drain(fallback: "no certificate found")
        guard !certificates.isEmpty else { throw .invalidCertificate(source: source, detail: detail) }
        return certificates
    }

    /// Loads every certificate of a PEM or DER file.
    public static func load(contentsOf url: URL) throws(OpenSSLError) -> [Certificate] {
        try all(from: try readFile(url), source: url.path)
    }

    /// Loads the first certificate of a PEM or DER file.
    public init(contentsOf url: URL) throws(OpenSSLError) {
        self = try Certificate.load(contentsOf: url)[0]
    }

    // MARK: Fields

    public var subject: DistinguishedName { DistinguishedName(X509_get_subject_name(handle.pointer)) }
    public var issuer: DistinguishedName { DistinguishedName(X509_get_issuer_name(handle.pointer)) }
    public var isSelfIssued: Bool {
        X509_NAME_cmp(X509_get_subject_name(handle.pointer), X509_get_issuer_name(handle.pointer)) == 0
    }

    /// The serial number in uppercase hexadecimal (as `openssl x509 -serial` prints it).
    public var serialNumber: String {
        guard let serial = X509_get0_serialNumber(handle.pointer),
              let bytes = ASN1_STRING_get0_data(serial) else { return "" }
        let data = Data(bytes: bytes, count: Int(ASN1_STRING_length(serial)))
        let hex = data.hexString.uppercased()
        return hex.isEmpty ? "00" : hex
    }

    public var notBefore: Date { Self.date(X509_get0_notBefore(handle.pointer)) }
    public var notAfter: Date { Self.date(X509_get0_notAfter(handle.pointer)) }

    static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date {
        var components = tm()
        guard let time, ASN1_TIME_to_tm(time, &components) == 1 else { return .distantPast }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&components)))
    }

    /// The keyUsage bits, or nil when the certificate has no keyUsage extension.
    public var keyUsage: KeyUsage? {
        let bits = X509_get_key_usage(handle.pointer)  // also caches the extensions
        guard X509_get_extension_flags(handle.pointer) & UInt32(EXFLAG_KUSAGE) != 0 else { return nil }
        return KeyUsage(rawValue: bits)
    }

    /// The extendedKeyUsage purposes, or nil when the extension is absent.
    public var extendedKeyUsage: [ExtendedKeyUsage]? {
        guard let raw = copenssl_x509_get_ext_d2i(handle.pointer, NID_ext_key_usage) else { return nil }
        let eku = OpaquePointer(raw)
        defer { copenssl_eku_free(eku) }
        var purposes: [ExtendedKeyUsage] = []
        for index in 0..<copenssl_sk_asn1_object_num(eku) {
            var buffer = [CChar](repeating: 0, count: 128)
            guard copenssl_eku_oid_at(eku, index, &buffer, Int32(buffer.count)) > 0 else { continue }
            purposes.append(ExtendedKeyUsage(oid: cString(buffer)))
        }
        return purposes
    }

    /// The subjectAltName entries (empty when absent).
    public var subjectAltNames: [SubjectAltName] {
        guard let raw = copenssl_x509_get_ext_d2i(handle.pointer, NID_subject_alt_name) else { return [] }
        let names = OpaquePointer(raw)
        defer { copenssl_general_names_free(names) }
        var entries: [SubjectAltName] = []
        for index in 0..<copenssl_sk_general_name_num(names) {
            var data: UnsafePointer<UInt8>?
            var length: Int32 = 0
            let type = copenssl_general_name_at(names, index, &data, &length)
            let bytes = data.map { Data(bytes: $0, count: Int(length)) } ?? Data()
            let text = String(decoding: bytes, as: UTF8.self)
            switch type {
            case GEN_DNS: entries.append(.dns(text))
            case GEN_EMAIL: entries.append(.email(text))
            case GEN_URI: entries.append(.uri(text))
            case GEN_IPADD: entries.append(.ip(Self.ipString(bytes)))
            default: entries.append(.other(type: Int(type)))
            }
        }
        return entries
    }

    static func ipString(_ bytes: Data) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        guard bytes.count == 16 else { return bytes.hexString }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = [UInt8](bytes).withUnsafeBytes { raw in
            inet_ntop(AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        return ok ? cString(buffer) : bytes.hexString
    }

    /// True for CA certificates (basicConstraints CA:TRUE).
    public var isCA: Bool { X509_check_ca(handle.pointer) >= 1 }

    /// The subject public key.
    public var publicKey: PublicKey {
        // X509_get_pubkey returns a new reference; it only fails for an unparsable key,
        // which d2i_X509 would already have rejected.
        PublicKey(owning: X509_get_pubkey(handle.pointer)!)
    }

    public var sha1Fingerprint: Data { Digest.sha1(der) }
    public var sha256Fingerprint: Data { Digest.sha256(der) }

    /// "AB:CD:..." form of a fingerprint, as `openssl x509 -fingerprint` prints it.
    public static func colonHex(_ data: Data) -> String {
        data.map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    /// PEM "CERTIFICATE".
    public var pem: String { PEM.encode(der, label: "CERTIFICATE") }

    public var description: String { "Certificate(\(subject.rfc2253), serial \(serialNumber))" }

    public static func == (lhs: Certificate, rhs: Certificate) -> Bool { lhs.der == rhs.der }
    public func hash(into hasher: inout Hasher) { hasher.combine(der) }
}
