import CurlKit
import Foundation
import OpenSSLKit
import PasserelleCore

extension MSSanteSender {
    /// From `[structure]`, `[certificates]` (authentication PKCS#12, trust anchors) and
    /// `[mssante]` (smtp_host, smtp_port, smtp_tls, mailbox, product_reference).
    public init(configuration: PasserelleConfiguration, passphrase: Passphrase, templatesDirectory: URL,
                contentTypeCode: CodedValue = CodedValue(code: "03", codeSystem: "1.2.250.1.213.2.2", displayName: "Hospitalisation complète"),
                cipherList: String = SMTPConfiguration.mssanteCipherList, patientMayReply: Bool = false,
                timeout: TimeInterval = 60) throws(MSSanteError) {
        let m = configuration.mssante
        guard m.enabled, !m.smtpHost.isEmpty, (1...65535).contains(m.smtpPort) else {
            throw .configuration("[mssante] is not enabled or smtp_host/smtp_port is missing")
        }
        let identity: PKCS12Bundle
        do { identity = try PKCS12Bundle.load(path: configuration.certificates.authentication, passphrase: passphrase) } catch {
            throw .configuration("[certificates] authentication: \(error.description)")
        }
        var smtp = SMTPConfiguration(
            host: m.smtpHost, port: UInt16(m.smtpPort), security: m.smtpTLS == .implicit ? .implicitTLS : .startTLS,
            trustedCAFile: URL(fileURLWithPath: configuration.certificates.trustAnchors), clientCertificate: identity,
            cipherList: cipherList, timeout: timeout)
        smtp.tls.crlFiles = m.crl.map { [URL(fileURLWithPath: $0)] } ?? []
        let structure = configuration.structure
        do {
            self.init(
                client: try SMTPClient(configuration: smtp),
                xdm: try XDMBuilder(templatesDirectory: templatesDirectory, sender: XDMSender(
                    structureOID: structure.oid, structureName: structure.name, structureID: structure.finess.value,
                    mailbox: m.mailbox, contentTypeCode: contentTypeCode)),
                composer: try MSSanteMailComposer(templatesDirectory: templatesDirectory, options: .init(
                    mailbox: m.mailbox, productReference: m.productReference, structureName: structure.name,
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

extension AcknowledgementPoller {
    /// From `[mssante] imap_url` (`imaps://user@host:993/INBOX`) and `[certificates]`. With a
    /// `password`, LOGIN/PLAIN as the URL's user (default: the mailbox address). Without, SASL
    /// EXTERNAL: the client certificate is the credential, and the URL's user, if any, is
    /// sent as the authorization identity.
    public convenience init(configuration: PasserelleConfiguration, passphrase: TLSPassphrase,
                            password: TLSPassphrase? = nil) throws(AcknowledgementError) {
        let m = configuration.mssante
        guard let url = m.imapURL, let host = url.host, !host.isEmpty else {
            throw .unexpectedResponse(operation: "configuration", detail: "[mssante] imap_url is not set")
        }
        let certificates = configuration.certificates
        let inbox = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let imap = IMAPConfiguration(
            host: host, port: UInt16(url.port ?? 993), username: url.user ?? (password == nil ? "" : m.mailbox), password: password,
            tls: TLSClientOptions(caBundle: URL(fileURLWithPath: certificates.trustAnchors),
                                  clientIdentity: .pkcs12(URL(fileURLWithPath: certificates.authentication), passphrase: passphrase),
                                  crlFile: m.crl.map { URL(fileURLWithPath: $0) }),
            inbox: inbox.isEmpty ? "INBOX" : inbox.removingPercentEncoding ?? inbox)
        try self.init(configuration: imap, mailbox: m.mailbox)
    }
}
