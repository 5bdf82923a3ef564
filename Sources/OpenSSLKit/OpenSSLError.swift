import COpenSSL
import Foundation

/// Errors of the OpenSSL wrapper. Each carries what an operator needs to act on (the file,
/// the operation) and, where OpenSSL said something, OpenSSL's own error-queue text.
/// Passphrases never appear in these messages.
public enum OpenSSLError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// A file could not be read (missing, permissions, ...).
    case fileUnreadable(file: String, reason: String)
    /// The PKCS#12 integrity check failed with the given passphrase.
    case wrongPassphrase(file: String)
    /// The PKCS#12 is corrupt, truncated, not a PKCS#12, or lacks a key or certificate.
    case invalidPKCS12(file: String, detail: String)
    /// A certificate (PEM or DER) could not be parsed.
    case invalidCertificate(source: String, detail: String)
    /// A CRL could not be parsed.
    case invalidCRL(source: String, detail: String)
    /// A private or public key could not be parsed or used.
    case invalidKey(source: String, detail: String)
    /// The passphrase source (file or environment variable) is missing or empty.
    case passphraseUnavailable(String)
    /// A cryptographic operation failed inside OpenSSL.
    case operationFailed(operation: String, detail: String)

    public var description: String {
        switch self {
        case let .fileUnreadable(file, reason):
            "cannot read \(file): \(reason)"
        case let .wrongPassphrase(file):
            "wrong passphrase for \(file): the PKCS#12 integrity check failed (check the passphrase file or environment variable named in the configuration)"
        case let .invalidPKCS12(file, detail):
            "\(file) is not a usable PKCS#12 bundle: \(detail)"
        case let .invalidCertificate(source, detail):
            "invalid certificate in \(source): \(detail)"
        case let .invalidCRL(source, detail):
            "invalid CRL in \(source): \(detail)"
        case let .invalidKey(source, detail):
            "invalid key in \(source): \(detail)"
        case let .passphraseUnavailable(message):
            "passphrase unavailable: \(message)"
        case let .operationFailed(operation, detail):
            "\(operation) failed: \(detail)"
        }
    }

    public var errorDescription: String? { description }
}

/// OpenSSL's thread-local error queue. Every wrapper call clears it first, so the text
/// attached to an error belongs to that call only. `package`: XMLSecKit drains it too.
package enum ErrorQueue {
    package static func clear() { ERR_clear_error() }

    /// Drains the queue into one line ("a; b"), or `fallback` when it is empty.
    package static func drain(fallback: String = "unknown OpenSSL error") -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(cString(buffer))
        }
        return messages.isEmpty ? fallback : messages.joined(separator: "; ")
    }

    /// The reason text of the most recent error without the "error:XXXX:lib:func:" prefix.
    static func lastReason() -> String? {
        let code = ERR_peek_last_error()
        guard code != 0, let reason = ERR_reason_error_string(code) else { return nil }
        return String(cString: reason)
    }
}

/// Reads a whole file, mapping failures to `.fileUnreadable`.
func readFile(_ url: URL) throws(OpenSSLError) -> Data {
    do {
        return try Data(contentsOf: url)
    } catch {
        let reason = FileManager.default.fileExists(atPath: url.path)
            ? (FileManager.default.isReadableFile(atPath: url.path) ? error.localizedDescription : "permission denied")
            : "no such file"
        throw .fileUnreadable(file: url.path, reason: reason)
    }
}

/// A memory BIO holding `data` for the duration of `body`.
func withReadBIO<T>(_ data: Data, _ body: (OpaquePointer) throws(OpenSSLError) -> T) throws(OpenSSLError) -> T {
    // A copying memory BIO, so no pointer into `data` has to outlive a closure.
    guard let bio = BIO_new(BIO_s_mem()) else {
        throw .operationFailed(operation: "BIO_new", detail: ErrorQueue.drain())
    }
    defer { BIO_free(bio) }
    let bytes = [UInt8](data)
    guard bytes.isEmpty || BIO_write(bio, bytes, Int32(bytes.count)) == Int32(bytes.count) else {
        throw .operationFailed(operation: "BIO_write", detail: ErrorQueue.drain())
    }
    return try body(bio)
}

/// A NUL-terminated C buffer as a String.
func cString(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// Runs `body` with a fresh memory BIO and returns what it wrote.
func collectBIO(_ body: (OpaquePointer) -> Bool) -> Data? {
    guard let bio = BIO_new(BIO_s_mem()) else { return nil }
    defer { BIO_free(bio) }
    guard body(bio) else { return nil }
    var pointer: UnsafeMutablePointer<CChar>?
    let length = copenssl_bio_get_mem_data(bio, &pointer)
    guard let pointer, length > 0 else { return Data() }
    return Data(bytes: pointer, count: length)
}
