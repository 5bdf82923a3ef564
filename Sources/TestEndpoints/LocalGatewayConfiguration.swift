import Foundation
import PasserelleCore

/// The `passerelle.toml` of a gateway wired to the local endpoints (the DMP-style endpoint,
/// the MSSanté-style relay) with the test PKI: what `passerelle-testbed demo` (`passerelle demo`)
/// and `passerelle-bench e2e` run. The folders and the SQLite journal live under `root`.
public struct LocalGatewayConfiguration: Sendable {
    public var writtenBy: String
    public var pki: URL
    public var root: URL
    public var dmpURL: URL
    /// `[dmp] registry_endpoint` (TD0.2 / TD3.3), when the endpoint serves one.
    public var registryURL: URL?
    /// The relay's port; nil: `[mssante]` off.
    public var smtpPort: UInt16?
    /// `[cda] schema`, when every CDA must pass the XSD.
    public var cdaSchema: URL?
    public var dmpConnections = 2
    public var quietPeriodSeconds = 1
    public var dmpTimeoutSeconds = 20
    public var leaseSeconds = 60
    /// `[cda] max_pdf_bytes` (default 20 MB when nil).
    public var maxPDFBytes: Int?
    /// The SQLite journal; under `root/journal/` when nil.
    public var journalPath: String?
    /// `[http] metrics_port` (the status endpoint of `passerelle run`); none when nil.
    public var metricsPort: UInt16?
    /// `[console] enabled` (needs `metricsPort`: the console is served on the status port).
    public var console = false

    public init(writtenBy: String, pki: URL, root: URL, dmpURL: URL, registryURL: URL?, smtpPort: UInt16?, cdaSchema: URL?) {
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
        let mssante = smtpPort.map { """
            enabled = true
            smtp_host = "127.0.0.1"
            smtp_port = \($0)
            smtp_tls = "starttls"
            mailbox = "passerelle@hopital-demo.mssante.fr"
            product_reference = "Passerelle/\(Passerelle.version)"
            """ } ?? "enabled = false"
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
        \(registryURL.map { "registry_endpoint = \"\($0.absoluteString)\"" } ?? "")
        timeout_seconds = \(dmpTimeoutSeconds)
        max_connections = \(dmpConnections)

        [mssante]
        \(mssante)

        [cda]
        \(cdaSchema.map { "schema = \"\($0.path)\"" } ?? "")
        \(maxPDFBytes.map { "max_pdf_bytes = \($0)" } ?? "")

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
        path = "\(journalPath ?? "\(root)/journal/journal.sqlite")"

        [service]
        lease_seconds = \(leaseSeconds)
        shutdown_timeout_seconds = 10
        retry_initial_seconds = 1
        retry_max_seconds = 2
        retry_max_attempts = 3
        \(metricsPort.map { "\n[http]\nmetrics_port = \($0)\n" } ?? "")
        \(console && metricsPort != nil ? "\n[console]\nenabled = true\n" : "")
        """
    }
}
