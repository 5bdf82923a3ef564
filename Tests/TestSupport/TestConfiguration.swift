import Foundation

/// Configuration files for tests that need a complete `passerelle.toml`.
public enum TestConfiguration {
    /// A valid configuration whose `[certificates]` point at the test PKI bundles
    /// `authentication`/`signing` (names without `.p12`), with the CA and its CRL. The
    /// passphrase comes from `passphraseEnv` when given, else from the test PKI's passphrase file.
    /// DMP and MSSanté are disabled; folders and journal point into /tmp.
    public static func withTestPKI(authentication: String = "org-auth", signing: String = "org-sign",
                                   passphraseEnv: String? = nil, crl: Bool = true, expiryWarningDays: Int = 30) -> String {
        let pki = TestPaths.testPKI.path
        let passphrase = passphraseEnv.map { "passphrase_env = \"\($0)\"" }
            ?? "passphrase_file = \"\(TestPaths.testPKIPassphraseFile.path)\""
        return """
        [structure]
        finess = "750803447"
        name = "Test"
        oid = "1.2.250.1.999.1"

        [certificates]
        authentication = "\(pki)/\(authentication).p12"
        signing = "\(pki)/\(signing).p12"
        \(passphrase)
        trust_anchors = "\(pki)/ca.pem"
        \(crl ? "crl = \"\(pki)/ca.crl.pem\"" : "")
        expiry_warning_days = \(expiryWarningDays)

        [dmp]
        enabled = false

        [mssante]
        enabled = false

        [folders]
        inbox = "/tmp/passerelle-test/inbox"
        work = "/tmp/passerelle-test/work"
        error = "/tmp/passerelle-test/error"
        done = "/tmp/passerelle-test/done"

        [journal]
        backend = "sqlite"
        path = "/tmp/passerelle-test/journal.sqlite"

        """
    }

    /// `[mssante]` enabled for the test relay (STARTTLS on loopback `smtpPort`) and the test
    /// Dovecot (`imapPort`), acknowledgements read every 5 s; `extra` lines are appended.
    public static func mssanteSection(smtpPort: UInt16, imapPort: UInt16, mailbox: String, extra: String = "") -> String {
        """
        [mssante]
        enabled = true
        smtp_host = "127.0.0.1"
        smtp_port = \(smtpPort)
        smtp_tls = "starttls"
        imap_url = "imaps://127.0.0.1:\(imapPort)/INBOX"
        mailbox = "\(mailbox)"
        product_reference = "Passerelle/test"
        poll_interval_seconds = 5
        \(extra)
        """
    }
}
