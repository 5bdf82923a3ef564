import Foundation
import PasserelleCore

/// The `passerelle.toml` of a gateway wired to the local endpoints (the DMP-style endpoint,
/// the MSSanté-style relay) with the test PKI: what `passerelle demo` and `passerelle-bench
/// e2e` run. The folders and the SQLite journal live under `root`.
public struct LocalGatewayConfiguration: Sendable {
    public var writtenBy: String
    public var pki: URL
    public var root: URL
    public var dmpURL: URL
    public var registryURL: URL
    public var smtpPort: UInt16
    /// `[cda] schema`, when every CDA must pass the XSD.
    public var cdaSchema: URL?
    public var dmpConnections = 2
    public var quietPeriodSeconds = 1

    public init(writtenBy: String, pki: URL, root: URL, dmpURL: URL, registryURL: URL, smtpPort: UInt16, cdaSchema: URL?) {
        self.writtenBy = writtenBy
        self.pki = pki
        self.root = root
        self.dmpURL = dmpURL
        self.registryURL = registryURL
        self.smtpPort = smtpPort
        self.cdaSchema = cdaSchema
    }

    public var text: String {
        let pki = pki.path, root = root.path
        return """
        # Written by `\(writtenBy)`: the local DMP-style endpoint, the local MSSanté-style
        # relay (no acknowledgement mailbox: transmissions end as sent) and the test PKI.
        [structure]
        finess = "750803447"
        name = "Hôpital de démonstration"
        oid = "1.2.250.1.999.1"

        [certificates]
        authentication = "\(pki)/org-auth.p12"
        signing = "\(pki)/org-sign.p12"
        passphrase_file = "\(pki)/passphrase.txt"
        trust_anchors = "\(pki)/ca.pem"
        crl = "\(pki)/ca.crl.pem"

        [dmp]
        enabled = true
        endpoint = "\(dmpURL.absoluteString)"
        registry_endpoint = "\(registryURL.absoluteString)"
        timeout_seconds = 20
        max_connections = \(dmpConnections)

        [mssante]
        enabled = true
        smtp_host = "127.0.0.1"
        smtp_port = \(smtpPort)
        smtp_tls = "starttls"
        mailbox = "passerelle@hopital-demo.mssante.fr"
        product_reference = "Passerelle/\(Passerelle.version)"
        \(cdaSchema.map { "\n[cda]\nschema = \"\($0.path)\"\n" } ?? "")
        [vihf]
        identifiant_structure = "1750803447"
        secteur_activite = "SA01"
        lps_nom = "Passerelle"
        lps_version = "\(Passerelle.version)"
        lps_homologation_dmp = "HOMOLOGATION-TEST-1"
        role = "10^1.2.250.1.71.1.2.7^Médecin"

        [folders]
        inbox = "\(root)/inbox"
        work = "\(root)/work"
        error = "\(root)/error"
        done = "\(root)/done"
        quiet_period_seconds = \(quietPeriodSeconds)

        [journal]
        backend = "sqlite"
        path = "\(root)/journal/journal.sqlite"

        [service]
        lease_seconds = 60
        shutdown_timeout_seconds = 10
        retry_initial_seconds = 1
        retry_max_seconds = 2
        retry_max_attempts = 3

        """
    }
}
