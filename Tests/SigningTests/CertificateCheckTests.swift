import Foundation
import OpenSSLKit
import PasserelleCore
import Signing
import Testing
import TestSupport

/// The test PKI seen through the configuration's key material.
private enum TestKeys {
    static func url(_ name: String) -> URL { TestPaths.testPKI.appendingPathComponent(name) }

    static func source(authentication: String? = "org-auth", signing: String? = "org-sign",
                       passphrase: Passphrase.Source = .file(TestPaths.testPKIPassphraseFile),
                       crl: Bool = true) -> KeyMaterialSource {
        KeyMaterialSource(authentication: authentication.map { url("\($0).p12") },
                          signing: signing.map { url("\($0).p12") },
                          passphrase: passphrase, trustAnchors: url("ca.pem"),
                          crls: crl ? [url("ca.crl.pem")] : [])
    }
}

@Suite struct KeyMaterialTests {
    @Test func loadsBothBundlesFromTheConfigurationSection() throws {
        let passphrase = try String(contentsOf: TestPaths.testPKIPassphraseFile, encoding: .utf8)
            .trimmingCharacters(in: .newlines)
        let configuration = try PasserelleConfiguration.parse(
            TestConfiguration.withTestPKI(passphraseEnv: "TEST_P12"),
            file: "/tmp/passerelle.toml")
        let keys = try KeyMaterial.load(configuration, environment: ["TEST_P12": passphrase])
        #expect(keys.authentication?.certificate.subject.commonName == "passerelle.ch-test.fr (ORG_AUTH_CLI)")
        #expect(keys.signing?.certificate.subject.commonName == "passerelle.ch-test.fr (ORG_SIGN)")
        #expect(keys.trustStore.checksRevocation)
        #expect(keys.warnings.isEmpty)
        let summary = keys.check(warningDays: 30)
        #expect(summary.state == .ok)
        #expect(summary.reports.map(\.label) == ["authentication", "signing"])
    }

    @Test func wrongPassphraseNamesTheBundle() {
        let source = TestKeys.source(passphrase: .environment("TEST_P12"))
        #expect(throws: KeyMaterialError.bundle(role: .authentication, .wrongPassphrase(file: TestKeys.url("org-auth.p12").path))) {
            try KeyMaterial.load(source, environment: ["TEST_P12": "wrong"])
        }
        #expect(throws: KeyMaterialError.passphrase(.passphraseUnavailable("environment variable TEST_P12 is not set"))) {
            try KeyMaterial.load(source, environment: [:])
        }
    }
}

@Suite struct CertificateCheckTests {
    @Test func validCertificatesAreOK() {
        let summary = CertificateCheck.run(TestKeys.source(), warningDays: 30)
        #expect(summary.state == .ok)
        for report in summary.reports {
            #expect(report.status == .ok)
            #expect((report.daysLeft ?? 0) > 700)
        }
    }

    @Test(arguments: [
        ("expired-sign", MonitoringState.critical), ("revoked-sign", .critical), ("unknown-sign", .critical),
        ("notyet-sign", .critical), ("expiring-sign", .warning), ("org-auth", .critical), ("org-sign", .ok),
    ])
    func signingCertificate(name: String, state: MonitoringState) {
        let summary = CertificateCheck.run(TestKeys.source(authentication: nil, signing: name), warningDays: 30)
        #expect(summary.reports.count == 1)
        #expect(summary.state == state)
    }

    @Test func statusesSayWhy() throws {
        let check = CertificateCheck(trustStore: try TrustStore(anchorsFile: TestKeys.url("ca.pem"),
                                                                crlFiles: [TestKeys.url("ca.crl.pem")]),
                                     warningDays: 30)
        func status(_ name: String, _ purpose: CertificatePurpose) throws -> CertificateStatus {
            let certificate = try Certificate(contentsOf: TestKeys.url("\(name).pem"))
            return check.check(certificate, purpose: purpose, label: name, file: name).status
        }
        let expiring = try Certificate(contentsOf: TestKeys.url("expiring-sign.pem"))
        #expect(try status("expiring-sign", .signing) == .warning(daysLeft: CertificateCheck.daysLeft(expiring)))
        // Issued for 10 days by Certificates/make-test-pki.sh, which makes the PKI again once 5 or
        // fewer are left: 9 on the day it was made, 5 on a developer's machine days later.
        #expect((5...10).contains(CertificateCheck.daysLeft(expiring)))
        #expect(try status("org-sign", .tlsClient) == .error(.wrongUsage(expected: .tlsClient)))
        let expired = try Certificate(contentsOf: TestKeys.url("expired-auth.pem"))
        #expect(try status("expired-auth", .tlsClient) == .error(.expired(notAfter: expired.notAfter)))
        #expect(CertificateCheck.daysLeft(expired) < -30)
        // With a 5-day window the expiring certificate is fine.
        let narrow = CertificateCheck(trustStore: check.trustStore, warningDays: 5)
        #expect(narrow.check(expiring, purpose: .signing, label: "s", file: "s").status == .ok)
    }

    @Test func unreadableBundlesAreUnknownWithoutHidingTheOther() {
        let wrong = CertificateCheck.run(TestKeys.source(passphrase: .environment("P")), warningDays: 30,
                                         environment: ["P": "wrong"])
        #expect(wrong.state == .unknown)
        #expect(wrong.reports.allSatisfy { if case .unknown = $0.status { true } else { false } })
        // A missing signing bundle is UNKNOWN, but an expired authentication certificate wins (CRITICAL).
        var source = TestKeys.source(authentication: "expired-auth")
        source.signing = TestKeys.url("missing.p12")
        let mixed = CertificateCheck.run(source, warningDays: 30)
        #expect(mixed.reports.map(\.state) == [.critical, .unknown])
        #expect(mixed.state == .critical)
    }

    @Test func worstStateOrder() {
        #expect(MonitoringState.worst([.ok, .warning]) == .warning)
        #expect(MonitoringState.worst([.warning, .unknown]) == .unknown)
        #expect(MonitoringState.worst([.unknown, .critical, .ok]) == .critical)
        #expect(MonitoringState.worst([]) == .ok)
    }

    @Test func dailySchedule() {
        var schedule = DailySchedule()
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let due = [0, 3600, 86_399, 86_400, 90_000].map { schedule.isDue(at: start.addingTimeInterval(TimeInterval($0))) }
        #expect(due == [true, false, false, true, false])
    }
}
