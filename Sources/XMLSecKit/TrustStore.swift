import CLibXML2
import COpenSSL
import CXMLSec
import Foundation

/// Trusted CA certificates (and CRLs) for verifying XML signatures, as an xmlsec keys
/// manager. Immutable after creation; verification calls are serialised on it because
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
            ERR_clear_error()  // PEM_read_bio reports end-of-data as an error
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

    /// Checks a certificate chain (leaf first, DER) against the anchors and CRLs at `time`:
    /// returns nil when it verifies, else OpenSSL's / xmlsec's reason.
    public func verificationFailure(chainDER: [Data], at time: Date = Date()) -> String? {
        guard let certs = copenssl_sk_x509_new_null() else { return "out of memory" }
        defer { copenssl_sk_x509_pop_free(certs) }
        for der in chainDER {
            let cert: OpaquePointer? = der.withUnsafeBytes { buffer in
                var pointer = buffer.bindMemory(to: UInt8.self).baseAddress
                return d2i_X509(nil, &pointer, buffer.count)
            }
            guard let cert else { return "unparseable certificate" }
            // Self-signed roots must come from the anchors, not from the chain under test;
            // left in, they also make xmlsec skip the CRL verdict on the leaf.
            if X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0 {
                X509_free(cert)
                continue
            }
            _ = copenssl_sk_x509_push(certs, cert)
        }
        return locked {
            withXMLSecErrors { collector in
                guard let store = xmlSecKeysMngrGetDataStore(manager, xmlSecOpenSSLX509StoreGetKlass()) else {
                    return "no X.509 store"
                }
                var keyInfo = xmlSecKeyInfoCtx()
                guard xmlSecKeyInfoCtxInitialize(&keyInfo, manager) >= 0 else { return "xmlSecKeyInfoCtxInitialize failed" }
                defer { xmlSecKeyInfoCtxFinalize(&keyInfo) }
                keyInfo.certsVerificationTime = time_t(time.timeIntervalSince1970)
                let verified = xmlSecOpenSSLX509StoreVerify(store, certs, nil, &keyInfo)
                _ = openSSLErrors()
                return verified == nil ? collector.text : nil
            }
        }
    }
}
