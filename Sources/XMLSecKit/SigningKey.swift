import COpenSSL
import CXMLSec
import Foundation
import OpenSSLKit

/// A private key and its X.509 certificate chain loaded from a PKCS#12, ready for
/// xmlsec. Immutable after loading; xmlsec only reads it while signing.
public final class XMLSecSigningKey: @unchecked Sendable {
    // Only read after init (lent to each signature context), so sharing across threads is safe.
    let key: xmlSecKeyPtr
    /// The signing certificate, the one that matches the private key.
    public let certificate: Certificate
    /// Every certificate the PKCS#12 holds, signing certificate first.
    public let chain: [Certificate]

    /// Loads a PKCS#12 (key + certificate + chain) protected by `passphrase`.
    public init(pkcs12: Data, passphrase: Passphrase) throws(XMLSecError) {
        try XMLSecLibrary.ensureInitialized()
        let loaded: xmlSecKeyPtr? = withXMLSecErrors { collector in
            pkcs12.withUnsafeBytes { buffer in
                xmlSecOpenSSLAppPkcs12LoadMemory(
                    buffer.bindMemory(to: UInt8.self).baseAddress, UInt32(buffer.count),
                    passphrase.reveal(), nil, nil)  // only in tests and tools: the service uses init(bundle:)
            }
        }
        guard let loaded else {
            throw .keyLoad(ErrorQueue.drain(fallback: "xmlSecOpenSSLAppPkcs12LoadMemory failed"))
        }
        guard let data = xmlSecKeyGetData(loaded, xmlSecOpenSSLKeyDataX509GetKlass()),
              let leaf = xmlSecOpenSSLKeyDataX509GetKeyCert(data),
              let leafDER = derEncoding(leaf), let certificate = try? Certificate(der: leafDER)
        else {
            xmlSecKeyDestroy(loaded)
            throw .keyLoad("the PKCS#12 holds no certificate matching its private key")
        }
        var chain = [certificate]
        for index in 0..<xmlSecOpenSSLKeyDataX509GetCertsSize(data) {
            if let cert = xmlSecOpenSSLKeyDataX509GetCert(data, index), let der = derEncoding(cert), der != leafDER,
               let parsed = try? Certificate(der: der) {
                chain.append(parsed)
            }
        }
        self.key = loaded
        self.certificate = certificate
        self.chain = chain
    }

    /// The key and certificates of a PKCS#12 already loaded (``KeyMaterial``): the bundle is
    /// not parsed again, and the passphrase is not needed. Builds the same xmlsec key as
    /// `xmlSecOpenSSLAppPkcs12Load` does: the private key, plus X509 data holding the key's
    /// certificate and every certificate of the bundle.
    public init(bundle: PKCS12Bundle) throws(XMLSecError) {
        try XMLSecLibrary.ensureInitialized()
        guard let key = xmlSecKeyCreate() else { throw .keyLoad("xmlSecKeyCreate failed") }
        var owned = true
        defer { if owned { xmlSecKeyDestroy(key) } }
        let evp = bundle.privateKey.retainedEVPKey()
        guard let value = xmlSecOpenSSLEvpKeyAdopt(evp) else {
            EVP_PKEY_free(evp)
            throw .keyLoad(ErrorQueue.drain(fallback: "xmlSecOpenSSLEvpKeyAdopt failed"))
        }
        guard xmlSecKeySetValue(key, value) == 0 else {
            xmlSecKeyDataDestroy(value)
            throw .keyLoad(ErrorQueue.drain(fallback: "xmlSecKeySetValue failed"))
        }
        guard let x509 = xmlSecKeyDataCreate(xmlSecOpenSSLKeyDataX509GetKlass()) else {
            throw .keyLoad(ErrorQueue.drain(fallback: "xmlSecKeyDataCreate failed"))
        }
        func adopt(_ certificate: Certificate, asKeyCertificate: Bool) -> Bool {
            guard let copy = certificate.duplicatedX509() else { return false }
            let status = asKeyCertificate ? xmlSecOpenSSLKeyDataX509AdoptKeyCert(x509, copy) : xmlSecOpenSSLKeyDataX509AdoptCert(x509, copy)
            if status != 0 { X509_free(copy) }
            return status == 0
        }
        let chain = [bundle.certificate] + bundle.chain.filter { $0.der != bundle.certificate.der }
        guard adopt(bundle.certificate, asKeyCertificate: true), chain.allSatisfy({ adopt($0, asKeyCertificate: false) }) else {
            xmlSecKeyDataDestroy(x509)
            throw .keyLoad(ErrorQueue.drain(fallback: "cannot hand the certificates of \(bundle.source) to xmlsec"))
        }
        guard xmlSecKeyAdoptData(key, x509) == 0 else {
            xmlSecKeyDataDestroy(x509)
            throw .keyLoad(ErrorQueue.drain(fallback: "xmlSecKeyAdoptData failed"))
        }
        owned = false
        self.key = key
        certificate = bundle.certificate
        self.chain = chain
    }

    deinit { xmlSecKeyDestroy(key) }
}

extension Certificate {
    /// The serial number in decimal, as XML-DSig's `X509SerialNumber` wants it.
    public var serialNumberDecimal: String {
        var digits: [UInt8] = [0]  // little-endian base-10 digits
        for hex in serialNumber {
            guard let nibble = hex.hexDigitValue else { continue }
            var carry = nibble
            for index in digits.indices {
                let value = Int(digits[index]) * 16 + carry
                digits[index] = UInt8(value % 10)
                carry = value / 10
            }
            while carry > 0 {
                digits.append(UInt8(carry % 10))
                carry /= 10
            }
        }
        while digits.count > 1, digits.last == 0 { digits.removeLast() }
        return String(digits.reversed().map { Character(String($0)) })
    }
}

func derEncoding(_ cert: OpaquePointer) -> Data? {
    var out: UnsafeMutablePointer<UInt8>?
    let length = i2d_X509(cert, &out)
    guard length > 0, let out else { return nil }
    defer { CRYPTO_free(out, #fileID, #line) }
    return Data(bytes: out, count: Int(length))
}
