import COpenSSL
import Foundation

/// The content of a PKCS#12 (.p12/.pfx) file: a private key, its certificate and the CA chain.
public struct PKCS12Bundle: Sendable {
    public let privateKey: PrivateKey
    /// The certificate matching `privateKey`.
    public let certificate: Certificate
    /// The other certificates of the bundle (normally the issuing CAs), in file order.
    public let chain: [Certificate]
    /// Where the bundle came from (a path, for messages).
    public let source: String

    /// Loads a PKCS#12 file.
    public static func load(path: URL, passphrase: Passphrase) throws(OpenSSLError) -> PKCS12Bundle {
        try PKCS12Bundle(data: try readFile(path), passphrase: passphrase, source: path.path)
    }

    /// Loads a PKCS#12 file (path as a string).
    public static func load(path: String, passphrase: Passphrase) throws(OpenSSLError) -> PKCS12Bundle {
        try load(path: URL(fileURLWithPath: path), passphrase: passphrase)
    }

    /// Parses PKCS#12 bytes. A failing MAC check is reported as `.wrongPassphrase`, a
    /// structure that does not parse as `.invalidPKCS12`.
    public init(data: Data, passphrase: Passphrase, source: String = "PKCS#12 data") throws(OpenSSLError) {
        ErrorQueue.clear()
        let bytes = [UInt8](data)
        let parsed: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_PKCS12(nil, &cursor, buffer.count)
        }
        guard let p12 = parsed else {
            throw .invalidPKCS12(file: source, detail: "not a PKCS#12 structure (\(ErrorQueue.drain()))")
        }
        defer { PKCS12_free(p12) }
        let secret = passphrase

        // The MAC is keyed by the passphrase: checking it first separates "wrong passphrase"
        // from "corrupt content".
        if PKCS12_mac_present(p12) == 1 {
            let ok = secret.withCString { PKCS12_verify_mac(p12, $0, Int32(strlen($0))) }
            guard ok == 1 else {
                ErrorQueue.clear()
                throw .wrongPassphrase(file: source)
            }
        }

        var key: OpaquePointer?, cert: OpaquePointer?, cas: OpaquePointer?
        var ok = secret.withCString { PKCS12_parse(p12, $0, &key, &cert, &cas) }
        if ok != 1, Self.enableLegacyAlgorithms() {
            // Bundles exported by older tools use RC2/3DES, which OpenSSL 3 keeps in the
            // "legacy" provider; retry once it is loaded.
            ErrorQueue.clear()
            ok = secret.withCString { PKCS12_parse(p12, $0, &key, &cert, &cas) }
        }
        guard ok == 1 else {
            throw .invalidPKCS12(file: source, detail: ErrorQueue.drain())
        }
        var others: [Certificate] = []
        if let cas {
            for index in 0..<copenssl_sk_x509_num(cas) {
                if let x509 = copenssl_sk_x509_value(cas, index) {
                    others.append(Certificate(handle: X509Handle(retaining: x509)))
                }
            }
            copenssl_sk_x509_pop_free(cas)
        }
        guard let key else {
            if let cert { X509_free(cert) }
            throw .invalidPKCS12(file: source, detail: "the bundle holds no private key")
        }
        guard let cert else {
            EVP_PKEY_free(key)
            throw .invalidPKCS12(file: source, detail: "the bundle holds no certificate matching its private key")
        }
        privateKey = PrivateKey(owning: key)
        certificate = Certificate(handle: X509Handle(owning: cert))
        chain = others
        self.source = source
    }

    /// The certificate then the rest of the chain, PEM, for a library that takes its client
    /// identity as bytes (libcurl's `CURLOPT_SSLCERT_BLOB`).
    public var certificateChainPEM: Data {
        Data(([certificate] + chain).map { PEM.encode($0.der, label: "CERTIFICATE") }.joined().utf8)
    }

    /// The private key as unencrypted PKCS#8 PEM, for libcurl's `CURLOPT_SSLKEY_BLOB`: the
    /// bundle is parsed once and every TLS client takes its key from memory rather than
    /// opening the .p12 again. Secret: redacted and wiped like a passphrase.
    public func privateKeyPEM() throws(OpenSSLError) -> SecretBytes {
        ErrorQueue.clear()
        guard let bio = BIO_new(BIO_s_mem()) else { throw .operationFailed(operation: "key export", detail: ErrorQueue.drain()) }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, privateKey.handle.pointer, nil, nil, 0, nil, nil) == 1 else {
            throw .operationFailed(operation: "key export", detail: ErrorQueue.drain())
        }
        var pointer: UnsafeMutablePointer<CChar>?
        let length = copenssl_bio_get_mem_data(bio, &pointer)
        guard length > 0, let pointer else { throw .operationFailed(operation: "key export", detail: "empty PEM") }
        let secret = SecretBytes(UnsafeRawBufferPointer(start: pointer, count: length))
        OPENSSL_cleanse(pointer, length)
        return secret
    }

    /// Loads OpenSSL's legacy and default providers once; true if the legacy one is available.
    private static func enableLegacyAlgorithms() -> Bool { legacyProviderLoaded }

    private static let legacyProviderLoaded: Bool = {
        // Loading "legacy" explicitly disables the implicit default provider, so load both.
        let legacy = OSSL_PROVIDER_load(nil, "legacy")
        _ = OSSL_PROVIDER_load(nil, "default")
        return legacy != nil
    }()
}
