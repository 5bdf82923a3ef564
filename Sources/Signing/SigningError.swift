import Foundation
import XMLSecKit

/// Why a signature could not be produced or checked. Messages name what to fix.
public enum SigningError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// The signing certificate is outside its validity period at the signing time.
    case certificateNotValidAt(subject: String, notBefore: Date, notAfter: Date, time: Date)
    /// The signing certificate does not chain to the trust anchors, or is revoked.
    case certificateRejected(subject: String, reason: String)
    /// A value given to a signer is unusable (e.g. a uniqueId that is not an OID).
    case invalidInput(String)
    /// A VIHF configuration key is missing or holds a value that is not accepted.
    case configuration(key: String, message: String)
    /// The PKCS#12 / passphrase / trust anchors could not be read.
    case credentials(String)
    /// xmlsec1 failed (its own message included).
    case xmlsec(XMLSecError)

    public var description: String {
        let format = ISO8601DateFormatter()
        switch self {
        case let .certificateNotValidAt(subject, notBefore, notAfter, time):
            return "refusing to sign: the signing certificate \(subject) is valid from \(format.string(from: notBefore)) to \(format.string(from: notAfter)), not at \(format.string(from: time)); install a current signing certificate"
        case let .certificateRejected(subject, reason):
            return "refusing to sign: the signing certificate \(subject) is not trusted or is revoked (\(reason)); check the certificate, the trust anchors and the CRL"
        case .invalidInput(let message):
            return "invalid signature input: \(message)"
        case let .configuration(key, message):
            return "VIHF configuration: \(key): \(message)"
        case .credentials(let message):
            return "signing credentials: \(message)"
        case .xmlsec(let error):
            return error.description
        }
    }

    public var errorDescription: String? { description }
}
