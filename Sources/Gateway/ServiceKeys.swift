import Admission
import CurlKit
import DMP
import Delivery
import Foundation
import Handoff
import MSSante
import OpenSSLKit
import PasserelleCore
import Signing

/// The configuration mapped to what each part of `passerelle run` takes: the key material
/// (loaded once here, for every part) and each transport's own settings. This is the only
/// place the transports' settings are read from ``PasserelleConfiguration``.
extension GatewayService {
    /// What the service loads: the passphrase once, then each PKCS#12 it needs once —
    /// authentication when the DMP or MSSanté is enabled (TLS client of the DMP, SMTP and
    /// IMAP), signing when the DMP is (XAdES, VIHF), the MLLP listener's TLS identity when set.
    /// Nil when no part needs a key (then no passphrase is read either).
    public static func keyMaterialSource(_ c: PasserelleConfiguration) -> KeyMaterialSource? {
        var source = KeyMaterialSource(c.certificates)
        if !(c.dmp.enabled || c.mssante.enabled) { source.authentication = nil }
        if !c.dmp.enabled { source.signing = nil }
        if c.mllp.enabled, let identity = c.mllp.tlsIdentity { source.serverIdentity = URL(fileURLWithPath: identity) }
        guard source.authentication != nil || source.signing != nil || source.serverIdentity != nil else { return nil }
        return source
    }

    /// Loads ``keyMaterialSource(_:)``: the one passphrase read and PKCS#12 load of the run.
    static func loadKeyMaterial(_ c: PasserelleConfiguration) throws(GatewayError) -> KeyMaterial? {
        guard let source = keyMaterialSource(c) else { return nil }
        do { return try KeyMaterial.load(source) } catch { throw .configuration(error.description) }
    }
}

extension MSSanteSenderSettings {
    /// From `[structure]`, `[certificates] trust_anchors` and `[mssante]`.
    public init(_ c: PasserelleConfiguration) throws(GatewayError) {
        let m = c.mssante
        guard m.enabled, !m.smtpHost.isEmpty, (1...65535).contains(m.smtpPort) else {
            throw .configuration("[mssante] is not enabled or smtp_host/smtp_port is missing")
        }
        self.init(smtpHost: m.smtpHost, smtpPort: UInt16(m.smtpPort), security: m.smtpTLS == .implicit ? .implicitTLS : .startTLS,
                  trustedCAFile: URL(fileURLWithPath: c.certificates.trustAnchors), crlFiles: m.crl.map { [URL(fileURLWithPath: $0)] } ?? [],
                  mailbox: m.mailbox, productReference: m.productReference,
                  structureOID: c.structure.oid, structureName: c.structure.name, structureID: c.structure.finess.value)
    }
}

extension IMAPConfiguration {
    /// From `[mssante] imap_url` (`imaps://user@host:993/INBOX`) and `[certificates]
    /// trust_anchors`. With a `password`, LOGIN/PLAIN as the URL's user (default: the mailbox
    /// address). Without, SASL EXTERNAL: the client certificate (`identity`) is the
    /// credential, and the URL's user, if any, is sent as the authorization identity.
    public init(_ c: PasserelleConfiguration, identity: TLSClientIdentity, password: TLSPassphrase? = nil) throws(GatewayError) {
        let m = c.mssante
        guard let url = m.imapURL, let host = url.host, !host.isEmpty else { throw .configuration("[mssante] imap_url is not set") }
        let inbox = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        self.init(host: host, port: UInt16(url.port ?? 993), username: url.user ?? (password == nil ? "" : m.mailbox), password: password,
                  tls: TLSClientOptions(caBundle: URL(fileURLWithPath: c.certificates.trustAnchors), clientIdentity: identity,
                                        crlFile: m.crl.map { URL(fileURLWithPath: $0) }),
                  inbox: inbox.isEmpty ? "INBOX" : inbox.removingPercentEncoding ?? inbox)
    }
}
