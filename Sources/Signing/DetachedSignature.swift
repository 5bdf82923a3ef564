import Foundation
import OpenSSLKit

/// Detached CMS signatures of files by the structure's signing certificate (the usage
/// report's evidence manifest): signed with the bundle ``KeyMaterial`` loaded, checked against
/// the configured trust anchors for the signing purpose.
public enum DetachedSignature {
    /// Why a detached signature does not hold. Messages say what to check.
    public enum Failure: Error, Sendable, CustomStringConvertible, LocalizedError {
        case invalid(String)
        case untrustedSigner(subject: String, VerificationResult)

        public var description: String {
            switch self {
            case let .invalid(detail): "the signature does not match the signed file (\(detail)): the file or its signature was changed"
            case let .untrustedSigner(subject, result): "the signer \(subject) is not trusted for signatures: \(result)"
            }
        }

        public var errorDescription: String? { description }
    }

    /// DER CMS, detached, binary, over `content`, with the signing bundle's chain.
    public static func sign(_ content: Data, keys: KeyMaterial) throws -> Data {
        let bundle = try keys.required(.signing)
        return try CMS.signDetached(content, certificate: bundle.certificate, key: bundle.privateKey, chain: bundle.chain)
    }

    /// Checks `signature` over `content`, then the signer's certificate at `time` (CRLs
    /// included when the store has some). Returns the signer's subject.
    public static func verify(_ signature: Data, content: Data, trustStore: TrustStore, at time: Date) throws(Failure) -> String {
        let signed: (signer: Certificate, chain: [Certificate])
        do { signed = try CMS.verifyDetached(signature, content: content) } catch { throw .invalid("\(error)") }
        let result = trustStore.verify(signed.signer, intermediates: signed.chain, at: time, purpose: .signing)
        guard result.isValid else { throw .untrustedSigner(subject: signed.signer.subject.rfc2253, result) }
        return signed.signer.subject.rfc2253
    }
}
