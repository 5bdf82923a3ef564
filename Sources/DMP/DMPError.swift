import Foundation
import IHE

/// Why a DMP submission could not be prepared or sent. Messages name document ids and masked
/// INS only, never patient traits.
public enum DMPError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The document or its metadata lacks something XDS requires (which field, what to fix).
    case metadata(String)
    /// The submission set signature or the VIHF could not be produced.
    case signing(String)
    /// The signing certificate cannot sign now (expired, not yet valid, untrusted, revoked):
    /// a problem of our installation, not of the document (documents wait, see DMPSender).
    case signingCertificate(String)
    /// A response could not be read as a RegistryResponse or a SOAP fault.
    case malformedResponse(String)
    /// The authentication certificate cannot work (untrusted issuer, expired, revoked, wrong usage).
    case certificate(String)
    /// The request could not be sent (transport layer; the CurlKit message is kept).
    case transport(String)

    public var description: String {
        switch self {
        case .metadata(let m): "DMP metadata: \(m)"
        case .signing(let m): "DMP signature: \(m)"
        case .signingCertificate(let m): "DMP signing certificate: \(m)"
        case .malformedResponse(let m): "DMP response unreadable: \(m)"
        case .transport(let m): "DMP transport: \(m)"
        case .certificate(let m): "DMP authentication certificate: \(m)"
        }
    }

    public var errorDescription: String? { description }
}

extension DMPError {
    /// IHE content that could not be written is a metadata problem of the document.
    init(_ error: IHEError) { self = .metadata(error.description) }

    /// XML-escaped (``IHE/ProvideAndRegisterWriter/e(_:)``), refusals as a DMP error.
    static func escaped(_ text: String) throws(DMPError) -> String {
        do { return try ProvideAndRegisterWriter.e(text) } catch { throw DMPError(error) }
    }
}
