import Foundation
import Journal
import Observability
import OpenSSLKit
import PasserelleCore
import Signing
import Testing
import TestSupport
import WebServer

/// The readiness probes of `passerelle run` against real things: an SQLite journal whose
/// folder disappears, the test PKI's valid and expired certificates, a listening socket.
@Suite("Readiness probes: journal, certificates, endpoint")
struct ProbeTests {
    func keys(authentication: String = "org-auth", signing: String = "org-sign") -> CertificateProbe.Keys {
        let pki = TestPaths.testPKI
        return CertificateProbe.Keys(source: KeyMaterialSource(
            authentication: pki.appendingPathComponent("\(authentication).p12"), signing: pki.appendingPathComponent("\(signing).p12"),
            passphrase: .file(TestPaths.testPKIPassphraseFile), trustAnchors: pki.appendingPathComponent("ca.pem"),
            crls: [pki.appendingPathComponent("ca.crl.pem")]))
    }

    func probes(_ keys: CertificateProbe.Keys) -> [any ReadinessProbe] {
        CertificateRole.allCases.map { CertificateProbe(role: $0, keys: keys, warningDays: 30) }
    }

    @Test func readyTurns503WhenTheJournalFolderIsRemovedAndBackWhenItReturns() async throws {
        let root = try TestPaths.temporaryDirectory("probe-journal")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("journal")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("journal.sqlite").path
        let journal = try Journals.open(.sqlite(path: path))
        let server = try await StatusServer.start(metrics: MetricsRegistry(), probes: [JournalProbe(journal: journal, configuration: .sqlite(path: path))])
        defer { server.stop() }

        var (code, body) = try await get(server, "/ready")
        #expect(code == 200, "\(body)")
        #expect(body.contains("ok   journal"))

        // The open connection keeps working on the moved file: only the probe's path check sees it.
        let moved = root.appendingPathComponent("journal.moved")
        try FileManager.default.moveItem(at: folder, to: moved)
        (code, body) = try await get(server, "/ready")
        #expect(code == 503)
        #expect(body.contains("FAIL journal: \(path) is missing"), "\(body)")

        try FileManager.default.moveItem(at: moved, to: folder)
        #expect(try await get(server, "/ready").0 == 200)
    }

    @Test func validCertificatesAreReady() async throws {
        let checks = await StatusServer.readiness(probes(keys()), timeout: .seconds(10))
        #expect(checks.map(\.name) == ["certificate authentication", "certificate signing"])
        #expect(checks.allSatisfy { $0.ready }, "\(checks)")
        #expect(checks.allSatisfy { $0.detail.contains("days left") })
    }

    @Test(arguments: [("expired-auth", "org-sign", "authentication"), ("org-auth", "expired-sign", "signing")])
    func anExpiredCertificateMakesReady503(authentication: String, signing: String, role: String) async throws {
        let server = try await StatusServer.start(metrics: MetricsRegistry(), probes: probes(keys(authentication: authentication, signing: signing)))
        defer { server.stop() }
        let (code, body) = try await get(server, "/ready")
        #expect(code == 503)
        #expect(body.contains("FAIL certificate \(role): certificate has expired"), "\(body)")
        let other = role == "signing" ? "authentication" : "signing"
        #expect(body.contains("ok   certificate \(other)"), "\(body)")
    }

    @Test func anExpiringCertificateIsStillReadyButSaysSo() async {
        let checks = await StatusServer.readiness(probes(keys(signing: "expiring-sign")), timeout: .seconds(10))
        let signing = checks.first { $0.name == "certificate signing" }
        #expect(signing?.ready == true)
        #expect(signing?.detail.contains("renew it") == true, "\(String(describing: signing))")
    }

    @Test func unreadableKeyMaterialIsNotReady() async {
        let missing = CertificateProbe.Keys(source: KeyMaterialSource(
            authentication: URL(fileURLWithPath: "/nonexistent/auth.p12"), signing: nil,
            passphrase: .file(TestPaths.testPKIPassphraseFile), trustAnchors: TestPaths.testPKI.appendingPathComponent("ca.pem")))
        let check = await CertificateProbe(role: .authentication, keys: missing, warningDays: 30).check()
        #expect(!check.ready)
        #expect(check.detail.contains("authentication certificate"), "\(check.detail)")
    }

    @Test func endpointProbeConnectsOrSaysWhy() async throws {
        let listener = try ListeningSocket(host: "127.0.0.1", port: 0)
        let open = await EndpointProbe(name: "dmp endpoint", url: URL(string: "https://localhost:\(listener.port)/dmp/repository")!).check()
        #expect(open.ready, "\(open)")
        let port = listener.port
        listener.close()
        let closed = await EndpointProbe(name: "dmp endpoint", url: URL(string: "https://127.0.0.1:\(port)/x")!, timeout: 1).check()
        #expect(!closed.ready)
        #expect(closed.detail.hasPrefix("127.0.0.1:\(port):"), "\(closed.detail)")
    }
}
