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
                    passphrase.reveal(), nil, nil)
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
