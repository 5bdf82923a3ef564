import CLibXML2
import COpenSSL
import CXMLSec
import Foundation

/// A private key and its X.509 certificate chain loaded from a PKCS#12, ready for
/// xmlsec. Immutable after loading; each signature works on its own duplicate.
public final class XMLSecSigningKey: @unchecked Sendable {
    // Only read (duplicated) after init, so sharing across threads is safe.
    let key: xmlSecKeyPtr
    /// The signing certificate (DER), the one that matches the private key.
    public let certificate: X509CertificateInfo
    /// Every certificate the PKCS#12 holds (DER), signing certificate first.
    public let chainDER: [Data]

    /// Loads a PKCS#12 (key + certificate + chain) protected by `passphrase`.
    public init(pkcs12: Data, passphrase: String) throws(XMLSecError) {
        try XMLSecLibrary.ensureInitialized()
        let loaded: xmlSecKeyPtr? = withXMLSecErrors { collector in
            pkcs12.withUnsafeBytes { buffer in
                xmlSecOpenSSLAppPkcs12LoadMemory(
                    buffer.bindMemory(to: UInt8.self).baseAddress, UInt32(buffer.count),
                    passphrase, nil, nil)
            }
        }
        guard let loaded else {
            throw .keyLoad(openSSLErrors() ?? "xmlSecOpenSSLAppPkcs12LoadMemory failed")
        }
        guard let data = xmlSecKeyGetData(loaded, xmlSecOpenSSLKeyDataX509GetKlass()),
              let leaf = xmlSecOpenSSLKeyDataX509GetKeyCert(data),
              let info = X509CertificateInfo(leaf)
        else {
            xmlSecKeyDestroy(loaded)
            throw .keyLoad("the PKCS#12 holds no certificate matching its private key")
        }
        var chain = [info.der]
        for index in 0..<xmlSecOpenSSLKeyDataX509GetCertsSize(data) {
            if let cert = xmlSecOpenSSLKeyDataX509GetCert(data, index), let der = derEncoding(cert), der != info.der {
                chain.append(der)
            }
        }
        self.key = loaded
        self.certificate = info
        self.chainDER = chain
    }

    deinit { xmlSecKeyDestroy(key) }
}

/// What the signature builders need to know about a certificate.
public struct X509CertificateInfo: Sendable, Hashable {
    public var der: Data
    /// Subject DN in RFC 2253 form (e.g. `CN=…,O=…,C=FR`).
    public var subjectRFC2253: String
    /// Issuer DN in RFC 2253 form.
    public var issuerRFC2253: String
    /// Serial number in decimal (as XML-DSig's X509SerialNumber wants it).
    public var serialDecimal: String
    public var notBefore: Date
    public var notAfter: Date

    /// Parses a DER-encoded certificate.
    public init?(der: Data) {
        let parsed: OpaquePointer? = der.withUnsafeBytes { buffer in
            var pointer = buffer.bindMemory(to: UInt8.self).baseAddress
            return d2i_X509(nil, &pointer, buffer.count)
        }
        guard let parsed else { return nil }
        defer { X509_free(parsed) }
        self.init(parsed)
    }

    init?(_ cert: OpaquePointer) {
        guard let der = derEncoding(cert),
              let subject = rfc2253(X509_get_subject_name(cert)),
              let issuer = rfc2253(X509_get_issuer_name(cert)),
              let serial = decimalSerial(X509_get0_serialNumber(cert)),
              let notBefore = asn1Date(X509_get0_notBefore(cert)),
              let notAfter = asn1Date(X509_get0_notAfter(cert))
        else { return nil }
        self.der = der
        self.subjectRFC2253 = subject
        self.issuerRFC2253 = issuer
        self.serialDecimal = serial
        self.notBefore = notBefore
        self.notAfter = notAfter
    }
}

func derEncoding(_ cert: OpaquePointer) -> Data? {
    var out: UnsafeMutablePointer<UInt8>?
    let length = i2d_X509(cert, &out)
    guard length > 0, let out else { return nil }
    defer { CRYPTO_free(out, #fileID, #line) }
    return Data(bytes: out, count: Int(length))
}

private func rfc2253(_ name: OpaquePointer?) -> String? {
    guard let name, let bio = BIO_new(BIO_s_mem()) else { return nil }
    defer { BIO_free(bio) }
    // XN_FLAG_RFC2253 is a composite macro Swift cannot import: ASN1_STRFLGS_RFC2253 (0x317)
    // | XN_FLAG_SEP_COMMA_PLUS (1<<16) | XN_FLAG_DN_REV (1<<20) | XN_FLAG_DUMP_UNKNOWN_FIELDS (1<<24).
    // ASN1_STRFLGS_ESC_MSB (4) is left out so UTF-8 accents stay readable.
    let flags: UInt = (0x317 | (1 << 16) | (1 << 20) | (1 << 24)) & ~UInt(4)
    guard X509_NAME_print_ex(bio, name, 0, flags) >= 0 else { return nil }
    return readBIO(bio)
}

private func decimalSerial(_ serial: UnsafePointer<ASN1_INTEGER>?) -> String? {
    guard let serial, let bn = ASN1_INTEGER_to_BN(serial, nil) else { return nil }
    defer { BN_free(bn) }
    guard let text = BN_bn2dec(bn) else { return nil }
    defer { CRYPTO_free(text, #fileID, #line) }
    return String(cString: text)
}

private func asn1Date(_ time: UnsafePointer<ASN1_TIME>?) -> Date? {
    guard let time else { return nil }
    var tm = tm()
    guard ASN1_TIME_to_tm(time, &tm) == 1 else { return nil }
    return Date(timeIntervalSince1970: TimeInterval(timegm(&tm)))
}

func readBIO(_ bio: OpaquePointer) -> String? {
    var pointer: UnsafeMutablePointer<CChar>?
    let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
    guard length >= 0, let pointer else { return length == 0 ? "" : nil }
    return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
}

/// Drains OpenSSL's error queue of this thread into one line (nil if empty).
func openSSLErrors() -> String? {
    var lines: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        lines.append(String(decoding: bytes, as: UTF8.self))
    }
    return lines.isEmpty ? nil : lines.joined(separator: "; ")
}
