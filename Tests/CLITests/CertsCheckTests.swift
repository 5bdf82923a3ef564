import Foundation
import Testing
import TestSupport

/// `passerelle certs check` run as a monitoring system would: exit codes and output.
@Suite("passerelle certs check")
struct CertsCheckTests {
    static var pki: URL { TestPaths.testPKI }
    static var passphrase: String {
        get throws { try String(contentsOf: TestPaths.testPKIPassphraseFile, encoding: .utf8).trimmingCharacters(in: .newlines) }
    }

    /// `--p12 NAME.p12 --use USE` against the test CA and CRL.
    static func check(_ name: String, use: String, extra: [String] = [], environment: [String: String] = [:]) throws -> ProcessResult {
        try CLI.run(["certs", "check", "--p12", pki.appendingPathComponent("\(name).p12").path, "--use", use,
                     "--passphrase-file", TestPaths.testPKIPassphraseFile.path,
                     "--trust-anchors", pki.appendingPathComponent("ca.pem").path,
                     "--crl", pki.appendingPathComponent("ca.crl.pem").path] + extra,
                    environment: environment)
    }

    /// The output never holds the passphrase.
    static func expectNoSecret(_ result: ProcessResult) throws {
        let secret = try passphrase
        #expect(!result.stdout.contains(secret))
        #expect(!result.stderr.contains(secret))
    }

    @Test(arguments: [
        ("org-sign", "signing", 0, "CERTIFICATES OK"),
        ("org-auth", "tls-client", 0, "CERTIFICATES OK"),
        ("expiring-sign", "signing", 1, "CERTIFICATES WARNING - signing: expiring in"),
        ("expired-sign", "signing", 2, "certificate has expired"),
        ("expired-auth", "tls-client", 2, "certificate has expired"),
        ("revoked-sign", "signing", 2, "certificate revoked on"),
        ("revoked-auth", "tls-client", 2, "(keyCompromise)"),
        ("unknown-sign", "signing", 2, "does not chain to a trust anchor (issuer CN=AC INCONNUE"),
        ("unknown-auth", "tls-client", 2, "does not chain to a trust anchor"),
        ("notyet-sign", "signing", 2, "certificate is not yet valid"),
        ("org-sign", "tls-client", 2, "key usage does not allow TLS client authentication"),
        ("org-auth", "signing", 2, "key usage does not allow signing"),
    ])
    func exitCodes(name: String, use: String, status: Int32, message: String) throws {
        let result = try Self.check(name, use: use, extra: ["--warn-days", "30"])
        #expect(result.status == status, "\(result.stdout)\(result.stderr)")
        let firstLine = result.stdout.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.contains(message), "\(firstLine)")
        #expect(result.stdout.contains("subject:  CN="))
        try Self.expectNoSecret(result)
    }

    @Test func warningWindowComesFromTheOption() throws {
        // expiring-sign has more than 5 days left (make-test-pki.sh makes it again before): fine with a 5-day window.
        #expect(try Self.check("expiring-sign", use: "signing", extra: ["--warn-days", "5"]).status == 0)
        #expect(try Self.check("expiring-sign", use: "signing", extra: ["--warn-days", "30"]).status == 1)
    }

    @Test func jsonOutput() throws {
        let result = try Self.check("expiring-sign", use: "signing", extra: ["--warn-days", "30", "--format", "json"])
        #expect(result.status == 1)
        let object = try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["state"] as? String == "WARNING")
        #expect(object["exit_code"] as? Int == 1)
        let certificates = try #require(object["certificates"] as? [[String: Any]])
        #expect(certificates.count == 1)
        #expect(certificates[0]["use"] as? String == "signing")
        #expect((certificates[0]["key_usage"] as? [String]) == ["digitalSignature", "nonRepudiation"])
        // 10 days at most (make-test-pki.sh issues it so), more than 5 (it is made again then).
        #expect((5...10).contains(certificates[0]["days_left"] as? Int ?? 0))
        #expect((certificates[0]["subject"] as? String)?.hasPrefix("CN=expiring (ORG_SIGN)") == true)
        try Self.expectNoSecret(result)
    }

    @Test func unreadableIsUnknown() throws {
        // Wrong passphrase (from an environment variable), missing file, missing configuration: exit 3.
        let wrong = try CLI.run(["certs", "check", "--p12", Self.pki.appendingPathComponent("org-sign.p12").path,
                                 "--use", "signing", "--passphrase-env", "CERTS_TEST_PASS",
                                 "--trust-anchors", Self.pki.appendingPathComponent("ca.pem").path, "--log-level", "trace"],
                                environment: ["CERTS_TEST_PASS": "wrong-passphrase-value"])
        #expect(wrong.status == 3)
        #expect(wrong.stdout.contains("CERTIFICATES UNKNOWN - signing: cannot read: wrong passphrase"))
        #expect(!wrong.stdout.contains("wrong-passphrase-value") && !wrong.stderr.contains("wrong-passphrase-value"))

        let missing = try Self.check("no-such-bundle", use: "signing")
        #expect(missing.status == 3)
        #expect(missing.stdout.contains("no such file"))

        let noConfig = try CLI.run(["certs", "check", "--config", "/nonexistent/passerelle.toml"])
        #expect(noConfig.status == 3)
        #expect(noConfig.stdout.hasPrefix("CERTIFICATES UNKNOWN - /nonexistent/passerelle.toml"))
    }

    @Test func configuredCertificates() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func run(_ authentication: String, _ signing: String, warningDays: Int = 30, _ extra: [String] = []) throws -> ProcessResult {
            let file = directory.appendingPathComponent("\(authentication)-\(signing)-\(warningDays).toml")
            try Data(TestConfiguration.withTestPKI(authentication: authentication, signing: signing,
                                                   passphraseEnv: "CERTS_TEST_P12", expiryWarningDays: warningDays).utf8)
                .write(to: file)
            let result = try CLI.run(["certs", "check", "--config", file.path] + extra,
                                     environment: ["CERTS_TEST_P12": try Self.passphrase])
            try Self.expectNoSecret(result)
            return result
        }
        let good = try run("org-auth", "org-sign")
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("[OK] authentication (TLS client authentication)"))
        #expect(good.stdout.contains("[OK] signing (signing (nonRepudiation))"))
        #expect(good.stdout.contains("key usage: digitalSignature, keyEncipherment; extended: clientAuth"))
        // expiry_warning_days from the file, overridden by --warn-days.
        #expect(try run("org-auth", "expiring-sign", warningDays: 30).status == 1)
        #expect(try run("org-auth", "expiring-sign", warningDays: 5).status == 0)
        #expect(try run("org-auth", "expiring-sign", warningDays: 5, ["--warn-days", "30"]).status == 1)
        // Swapped roles: both have the wrong usage.
        let swapped = try run("org-sign", "org-auth")
        #expect(swapped.status == 2)
        #expect(swapped.stdout.hasPrefix("CERTIFICATES CRITICAL - authentication: key usage does not allow TLS client authentication; signing: key usage does not allow signing"))
        // --p12 with the configuration's passphrase and anchors.
        let file = directory.appendingPathComponent("org-auth-org-sign-30.toml")
        let single = try CLI.run(["certs", "check", "--config", file.path, "--p12", Self.pki.appendingPathComponent("revoked-auth.p12").path,
                                  "--use", "tls-client"], environment: ["CERTS_TEST_P12": try Self.passphrase])
        #expect(single.status == 2)
        #expect(single.stdout.contains("revoked"))
    }

    @Test func helpDocumentsTheExitCodes() throws {
        let help = try CLI.run(["certs", "check", "--help"])
        #expect(help.status == 0)
        for line in ["0  OK", "1  WARNING", "2  CRITICAL", "3  UNKNOWN"] { #expect(help.stdout.contains(line)) }
        #expect(try CLI.run(["certs", "check", "--p12", "x.p12"]).status == 64)
    }
}
