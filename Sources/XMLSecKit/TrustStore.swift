import CLibXML2
import COpenSSL
import CXMLSec
import Foundation
import OpenSSLKit

/// Trusted CA certificates (and CRLs) for verifying XML signatures, as an xmlsec keys
/// manager (certificate checks outside signatures are OpenSSLKit's `TrustStore`). Immutable after creation; verification calls are serialised on it because
/// xmlsec's X.509 store is not documented as safe for concurrent use.
public final class XMLSecTrustStore: @unchecked Sendable {
    let manager: xmlSecKeysMngrPtr
    private let lock = NSLock()

    /// `pem` may hold several certificates and X509 CRL blocks (e.g. `ca-with-crl.pem`).
    public init(pem: [Data]) throws(XMLSecError) {
        try XMLSecLibrary.ensureInitialized()
        guard let manager = xmlSecKeysMngrCreate() else { throw .trustAnchor("xmlSecKeysMngrCreate failed") }
        self.manager = manager
        guard xmlSecOpenSSLAppDefaultKeysMngrInit(manager) >= 0,
              let store = xmlSecKeysMngrGetDataStore(manager, xmlSecOpenSSLX509StoreGetKlass())
        else { throw .trustAnchor("cannot create the X.509 store") }
        var certificates = 0
        for blob in pem {
            guard let bio = blob.withUnsafeBytes({ BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }) else { continue }
            defer { BIO_free(bio) }
            while true {
                var name: UnsafeMutablePointer<CChar>?, header: UnsafeMutablePointer<CChar>?
                var data: UnsafeMutablePointer<UInt8>?
                var length = 0
                guard PEM_read_bio(bio, &name, &header, &data, &length) == 1 else { break }
                defer { CRYPTO_free(name, #fileID, #line); CRYPTO_free(header, #fileID, #line); CRYPTO_free(data, #fileID, #line) }
                let kind = String(cString: name!)
                var cursor = UnsafePointer(data)
                if kind == "CERTIFICATE" || kind == "TRUSTED CERTIFICATE" {
                    guard let cert = d2i_X509(nil, &cursor, length) else { continue }
                    if xmlSecOpenSSLX509StoreAdoptCert(store, cert, xmlSecKeyDataType(xmlSecKeyDataTypeTrusted)) < 0 {
                        X509_free(cert)
                        throw .trustAnchor("xmlsec refused a trusted certificate")
                    }
                    certificates += 1
                } else if kind == "X509 CRL" {
                    guard let crl = d2i_X509_CRL(nil, &cursor, length) else { continue }
                    if xmlSecOpenSSLX509StoreAdoptCrl(store, crl) < 0 {
                        X509_CRL_free(crl)
                        throw .trustAnchor("xmlsec refused a CRL")
                    }
                }
            }
            ErrorQueue.clear()  // PEM_read_bio reports end-of-data as an error
        }
        if certificates == 0 { throw .trustAnchor("no CERTIFICATE block in the trust anchors") }
    }

    /// Loads PEM files (CA certificates and CRLs).
    public convenience init(pemFiles: [URL]) throws(XMLSecError) {
        var blobs: [Data] = []
        for file in pemFiles {
            do { blobs.append(try Data(contentsOf: file)) } catch {
                throw .trustAnchor("cannot read \(file.path): \(error.localizedDescription)")
            }
        }
        try self.init(pem: blobs)
    }

    deinit { xmlSecKeysMngrDestroy(manager) }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
