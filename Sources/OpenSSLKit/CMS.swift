import COpenSSL
import Foundation

/// Detached CMS (PKCS#7) signatures over a byte string, DER-encoded: what `openssl cms -sign
/// -binary -outform DER` writes without `-nodetach`, so an auditor can check one with the
/// OpenSSL command line as well as with ``verifyDetached(_:content:trustStore:at:)``.
public enum CMS {
    /// Signs `content` with `key` and `certificate`; `chain` certificates go into the
    /// signature so a verifier needs only the trust anchors.
    public static func signDetached(_ content: Data, certificate: Certificate, key: PrivateKey,
                                    chain: [Certificate] = []) throws(OpenSSLError) -> Data {
        ErrorQueue.clear()
        guard let extra = copenssl_sk_x509_new_null() else {
            throw .operationFailed(operation: "sk_X509_new_null", detail: ErrorQueue.drain())
        }
        defer { copenssl_sk_x509_pop_free(extra) }
        for certificate in chain {
            X509_up_ref(certificate.handle.pointer)
            _ = copenssl_sk_x509_push(extra, certificate.handle.pointer)
        }
        let flags = UInt32(CMS_DETACHED | CMS_BINARY)
        let cms: OpaquePointer? = try withReadBIO(content) { bio in
            CMS_sign(certificate.handle.pointer, key.handle.pointer, extra, bio, flags)
        }
        guard let cms else { throw .operationFailed(operation: "CMS_sign", detail: ErrorQueue.drain()) }
        defer { CMS_ContentInfo_free(cms) }
        guard let der = collectBIO({ i2d_CMS_bio($0, cms) == 1 }) else {
            throw .operationFailed(operation: "i2d_CMS_bio", detail: ErrorQueue.drain())
        }
        return der
    }

    /// Checks that `signature` (DER) signs exactly `content`, and returns the signer's
    /// certificate. The certificate chain is not judged here: the caller checks it with
    /// ``TrustStore/verify(_:intermediates:at:purpose:)`` for the purpose it expects (CMS's own
    /// check wants an S/MIME purpose a structure's signing certificate does not carry).
    public static func verifyDetached(_ signature: Data, content: Data) throws(OpenSSLError) -> (signer: Certificate, chain: [Certificate]) {
        ErrorQueue.clear()
        defer { ErrorQueue.clear() }
        let cms: OpaquePointer? = try withReadBIO(signature) { bio in d2i_CMS_bio(bio, nil) }
        guard let cms else { throw .operationFailed(operation: "reading the CMS signature", detail: ErrorQueue.drain()) }
        defer { CMS_ContentInfo_free(cms) }
        let verified: Bool = try withReadBIO(content) { bio in
            CMS_verify(cms, nil, nil, bio, nil, UInt32(CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY)) == 1
        }
        guard verified else { throw .operationFailed(operation: "CMS signature check (content changed or signature invalid)", detail: ErrorQueue.drain()) }
        guard let signers = CMS_get0_signers(cms) else {
            throw .operationFailed(operation: "CMS signer", detail: "the signature names no signer certificate")
        }
        defer { copenssl_sk_x509_free(signers) }
        guard copenssl_sk_x509_num(signers) == 1, let first = copenssl_sk_x509_value(signers, 0) else {
            throw .operationFailed(operation: "CMS signer", detail: "expected exactly one signer")
        }
        let signer = Certificate(handle: X509Handle(retaining: first))
        var chain: [Certificate] = []
        if let all = CMS_get1_certs(cms) {
            defer { copenssl_sk_x509_pop_free(all) }
            for i in 0..<copenssl_sk_x509_num(all) {
                if let c = copenssl_sk_x509_value(all, i) { chain.append(Certificate(handle: X509Handle(retaining: c))) }
            }
        }
        return (signer, chain.filter { $0.der != signer.der })
    }
}
