import CurlKit
import Foundation
import OpenSSLKit
import PasserelleCore

/// What the MSSanté sender needs: the SMTP relay, the structure, the application mailbox.
/// Mapped from `[structure]`, `[certificates] trust_anchors` and `[mssante]` in the wiring
/// (Gateway), so the transport does not take the whole configuration.
public struct MSSanteSenderSettings: Sendable, Hashable {
    public var smtpHost: String
    public var smtpPort: UInt16
    public var security: SMTPConfiguration.Security
    /// PEM trust anchors for the relay's certificate.
    public var trustedCAFile: URL
    /// PEM CRLs of the relay certificate's issuer (a revoked certificate is refused).
    public var crlFiles: [URL]
    /// The application mailbox (BAL applicative) address.
    public var mailbox: String
    /// Software name and version for X-MSS-NIL.
    public var productReference: String
    public var structureOID: String
    public var structureName: String
    /// FINESS of the structure.
    public var structureID: String

    public init(smtpHost: String, smtpPort: UInt16, security: SMTPConfiguration.Security, trustedCAFile: URL, crlFiles: [URL] = [],
                mailbox: String, productReference: String, structureOID: String, structureName: String, structureID: String) {
        self.smtpHost = smtpHost
        self.smtpPort = smtpPort
        self.security = security
        self.trustedCAFile = trustedCAFile
        self.crlFiles = crlFiles
        self.mailbox = mailbox
        self.productReference = productReference
        self.structureOID = structureOID
        self.structureName = structureName
        self.structureID = structureID
    }
}

extension MSSanteSender {
    /// The sender for `settings`, authenticating to the relay with `identity` (the
    /// authentication bundle the service loaded once, see Signing's `KeyMaterial`).
    public init(settings s: MSSanteSenderSettings, identity: PKCS12Bundle, templatesDirectory: URL,
                contentTypeCode: CodedValue = CodedValue(code: "03", codeSystem: "1.2.250.1.213.2.2", displayName: "Hospitalisation complète"),
                cipherList: String = SMTPConfiguration.mssanteCipherList, patientMayReply: Bool = false,
                timeout: TimeInterval = 60) throws(MSSanteError) {
        guard !s.smtpHost.isEmpty, s.smtpPort > 0 else { throw .configuration("[mssante] smtp_host/smtp_port is missing") }
        var smtp = SMTPConfiguration(host: s.smtpHost, port: s.smtpPort, security: s.security, trustedCAFile: s.trustedCAFile,
                                     clientCertificate: identity, cipherList: cipherList, timeout: timeout)
        smtp.tls.crlFiles = s.crlFiles
        do {
            self.init(
                client: try SMTPClient(configuration: smtp),
                xdm: try XDMBuilder(templatesDirectory: templatesDirectory, sender: XDMSender(
                    structureOID: s.structureOID, structureName: s.structureName, structureID: s.structureID,
                    mailbox: s.mailbox, contentTypeCode: contentTypeCode)),
                composer: try MSSanteMailComposer(templatesDirectory: templatesDirectory, options: .init(
                    mailbox: s.mailbox, productReference: s.productReference, structureName: s.structureName,
                    patientMayReply: patientMayReply)))
        } catch let error as SMTPError {
            throw .smtp(error)
        } catch let error as XDMError {
            throw .packaging(error)
        } catch let error as MailError {
            throw .composing(error)
        } catch {
            throw .configuration(String(describing: error))
        }
    }
}
