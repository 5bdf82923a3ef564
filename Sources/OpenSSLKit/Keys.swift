import COpenSSL
import Foundation

/// Owns one reference to an EVP_PKEY. OpenSSL keys are safe to use from several threads
/// for signing/verifying as long as each operation has its own EVP_MD_CTX, which is the case here.
final class KeyHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(owning pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }
}

/// A private key (RSA in practice), as found in the structure's PKCS#12 bundles.
/// Its description never shows key material.
public struct PrivateKey: Sendable, CustomStringConvertible {
    let handle: KeyHandle

    init(owning pointer: OpaquePointer) { handle = KeyHandle(owning: pointer) }

    /// Loads a PEM private key (PKCS#8 or traditional), optionally encrypted.
    public init(pem: Data, passphrase: Passphrase? = nil, source: String = "PEM data") throws(OpenSSLError) {
        ErrorQueue.clear()
        let key: OpaquePointer? = try withReadBIO(pem) { bio in
            // A passphrase given as the callback argument is used by the default callback.
            guard let passphrase else { return PEM_read_bio_PrivateKey(bio, nil, nil, nil) }
            return passphrase.withCString { PEM_read_bio_PrivateKey(bio, nil, nil, UnsafeMutableRawPointer(mutating: $0)) }
        }
        guard let key else { throw .invalidKey(source: source, detail: ErrorQueue.drain()) }
        self.init(owning: key)
    }

    /// Loads a PEM private key file.
    public init(pemFile url: URL, passphrase: Passphrase? = nil) throws(OpenSSLError) {
        try self.init(pem: try readFile(url), passphrase: passphrase, source: url.path)
    }

    /// Key size in bits.
    public var bits: Int { Int(EVP_PKEY_get_bits(handle.pointer)) }

    /// A new reference to the EVP_PKEY, for another wrapper of this package (XMLSecKit hands
    /// it to xmlsec, which frees it). Not for use outside the package.
    package func retainedEVPKey() -> OpaquePointer {
        EVP_PKEY_up_ref(handle.pointer)
        return handle.pointer
    }

    /// The matching public key.
    public var publicKey: PublicKey {
        // Re-encoding the public half gives an independent key object without the private part.
        let der = PublicKey.derEncode(handle.pointer)
        return (try? PublicKey(der: der))!  // encoding our own key cannot fail to decode
    }

    /// True when `certificate` carries the public half of this key.
    public func matches(_ certificate: Certificate) -> Bool {
        ErrorQueue.clear()
        defer { ErrorQueue.clear() }
        return X509_check_private_key(certificate.handle.pointer, handle.pointer) == 1
    }

    /// RSA PKCS#1 v1.5 signature over `data` with the given digest.
    public func sign(_ data: some DataProtocol, digest: DigestAlgorithm = .sha256) throws(OpenSSLError) -> Data {
        ErrorQueue.clear()
        guard let context = EVP_MD_CTX_new() else {
            throw .operationFailed(operation: "signature", detail: ErrorQueue.drain())
        }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, digest.md, nil, handle.pointer) == 1 else {
            throw .operationFailed(operation: "signature", detail: ErrorQueue.drain())
        }
        let message = [UInt8](data)
        var length = 0
        guard EVP_DigestSign(context, nil, &length, message, message.count) == 1 else {
            throw .operationFailed(operation: "signature", detail: ErrorQueue.drain())
        }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(context, &signature, &length, message, message.count) == 1 else {
            throw .operationFailed(operation: "signature", detail: ErrorQueue.drain())
        }
        return Data(signature.prefix(length))
    }

    public var description: String { "PrivateKey(\(bits) bits)" }
}

/// A public key, usually taken from a certificate.
public struct PublicKey: Sendable, CustomStringConvertible {
    let handle: KeyHandle

    init(owning pointer: OpaquePointer) { handle = KeyHandle(owning: pointer) }

    /// Parses a DER SubjectPublicKeyInfo.
    public init(der: Data) throws(OpenSSLError) {
        ErrorQueue.clear()
        let bytes = [UInt8](der)
        let key: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_PUBKEY(nil, &cursor, buffer.count)
        }
        guard let key else { throw .invalidKey(source: "DER public key", detail: ErrorQueue.drain()) }
        self.init(owning: key)
    }

    /// Parses a PEM "PUBLIC KEY".
    public init(pem: Data) throws(OpenSSLError) {
        ErrorQueue.clear()
        let key = try withReadBIO(pem) { bio in PEM_read_bio_PUBKEY(bio, nil, nil, nil) }
        guard let key else { throw .invalidKey(source: "PEM public key", detail: ErrorQueue.drain()) }
        self.init(owning: key)
    }

    static func derEncode(_ key: OpaquePointer) -> Data {
        var buffer: UnsafeMutablePointer<UInt8>?
        let length = i2d_PUBKEY(key, &buffer)
        guard length > 0, let buffer else { return Data() }
        defer { copenssl_free(buffer) }
        return Data(bytes: buffer, count: Int(length))
    }

    /// DER SubjectPublicKeyInfo.
    public var der: Data { Self.derEncode(handle.pointer) }

    /// PEM "PUBLIC KEY" (what `openssl dgst -verify` takes).
    public var pem: String { PEM.encode(der, label: "PUBLIC KEY") }

    public var bits: Int { Int(EVP_PKEY_get_bits(handle.pointer)) }

    /// Checks an RSA PKCS#1 v1.5 signature. Returns false for a signature that does not
    /// match; throws only when the verification cannot be carried out.
    public func verify(signature: Data, for data: some DataProtocol,
                       digest: DigestAlgorithm = .sha256) throws(OpenSSLError) -> Bool {
        ErrorQueue.clear()
        guard let context = EVP_MD_CTX_new() else {
            throw .operationFailed(operation: "signature verification", detail: ErrorQueue.drain())
        }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, digest.md, nil, handle.pointer) == 1 else {
            throw .operationFailed(operation: "signature verification", detail: ErrorQueue.drain())
        }
        let message = [UInt8](data), signatureBytes = [UInt8](signature)
        let result = EVP_DigestVerify(context, signatureBytes, signatureBytes.count, message, message.count)
        // 0 and most negative results mean "does not verify" (bad padding, wrong length).
        ErrorQueue.clear()
        return result == 1
    }

    public var description: String { "PublicKey(\(bits) bits)" }
}

/// Cryptographically secure random bytes.
public enum RandomBytes {
    public static func generate(count: Int) -> Data {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count == 0 || RAND_bytes(&bytes, Int32(count)) == 1 else {
            // Without a working CSPRNG nothing secure can proceed.
            fatalError("OpenSSL RAND_bytes failed: \(ErrorQueue.drain())")
        }
        return Data(bytes)
    }
}

/// PEM armour.
public enum PEM {
    /// Encodes DER as PEM with 64-character lines.
    public static func encode(_ der: Data, label: String) -> String {
        let base64 = der.base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(base64)\n-----END \(label)-----\n"
    }

    /// True if `data` looks like PEM rather than DER.
    static func looksLikePEM(_ data: Data) -> Bool {
        data.range(of: Data("-----BEGIN ".utf8)) != nil
    }
}
