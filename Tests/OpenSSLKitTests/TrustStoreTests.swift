import Foundation
import OpenSSLKit
import Testing
import TestSupport

@Suite struct TrustStoreTests {
    @Test func validCertificatesForTheirUse() throws {
        let store = try PKI.trustStore
        #expect(store.verify(try PKI.certificate("org-auth"), purpose: .tlsClient) == .valid)
        #expect(store.verify(try PKI.certificate("org-sign"), purpose: .signing) == .valid)
        #expect(store.verify(try PKI.certificate("server-localhost"), purpose: .tlsServer) == .valid)
        #expect(store.verify(try PKI.certificate("expiring-sign"), purpose: .signing) == .valid)
    }

    @Test func wrongUsage() throws {
        let store = try PKI.trustStore
        #expect(store.verify(try PKI.certificate("org-sign"), purpose: .tlsClient) == .wrongUsage(expected: .tlsClient))
        #expect(store.verify(try PKI.certificate("org-auth"), purpose: .signing) == .wrongUsage(expected: .signing))
        #expect(store.verify(try PKI.certificate("org-auth"), purpose: .tlsServer) == .wrongUsage(expected: .tlsServer))
        #expect(store.verify(try PKI.certificate("server-localhost"), purpose: .tlsClient) == .wrongUsage(expected: .tlsClient))
    }

    @Test(arguments: [("expired-auth", CertificatePurpose.tlsClient), ("expired-sign", .signing), ("expired-server", .tlsServer)])
    func expired(name: String, purpose: CertificatePurpose) throws {
        let certificate = try PKI.certificate(name)
        #expect(try PKI.trustStore.verify(certificate, purpose: purpose) == .expired(notAfter: certificate.notAfter))
    }

    @Test(arguments: [("revoked-auth", CertificatePurpose.tlsClient), ("revoked-sign", .signing)])
    func revokedWithTheCRL(name: String, purpose: CertificatePurpose) throws {
        let certificate = try PKI.certificate(name)
        let result = try PKI.trustStore.verify(certificate, purpose: purpose)
        guard case let .revoked(date, reason) = result else {
            Issue.record("expected revoked, got \(result)")
            return
        }
        #expect(reason == .keyCompromise)
        #expect(abs(date.timeIntervalSinceNow) < 400 * 86400)
        // Without a CRL nothing says it is revoked.
        #expect(try TrustStore(anchorsFile: PKI.url("ca.pem")).verify(certificate, purpose: purpose) == .valid)
        // A combined anchors+CRL file works as both.
        let combined = try TrustStore(anchorsFile: PKI.url("ca-with-crl.pem"), crlFiles: [PKI.url("ca-with-crl.pem")])
        #expect(combined.verify(certificate, purpose: purpose) == result)
    }

    @Test(arguments: [("unknown-auth", CertificatePurpose.tlsClient), ("unknown-sign", .signing), ("unknown-server", .tlsServer)])
    func unknownCA(name: String, purpose: CertificatePurpose) throws {
        let certificate = try PKI.certificate(name)
        #expect(try PKI.trustStore.verify(certificate, purpose: purpose)
            == .untrusted(issuer: "CN=AC INCONNUE,O=AUTORITE INCONNUE,C=FR"))
    }

    @Test func notYetValid() throws {
        let certificate = try PKI.certificate("notyet-sign")
        #expect(try PKI.trustStore.verify(certificate, purpose: .signing) == .notYetValid(notBefore: certificate.notBefore))
        let later = certificate.notBefore.addingTimeInterval(86400)
        #expect(try TrustStore(anchorsFile: PKI.url("ca.pem")).verify(certificate, at: later, purpose: .signing) == .valid)
    }

    @Test func aCRLThatHasExpiredAtTheCheckTimeIsReported() throws {
        // The CRL is valid for 30 days; checking 60 days ahead must not silently pass.
        let result = try PKI.trustStore.verify(try PKI.certificate("org-sign"), at: Date().addingTimeInterval(60 * 86400),
                                               purpose: .signing)
        #expect(result == .other("certificate verify failed: CRL has expired"))
    }

    @Test func intermediatesAreUsed() throws {
        // With the unknown CA as an *untrusted* intermediate the chain still fails: only anchors are trusted.
        let unknownCA = try Certificate(contentsOf: PKI.url("unknown-ca.pem"))
        let result = try PKI.trustStore.verify(try PKI.certificate("unknown-sign"), intermediates: [unknownCA], purpose: .signing)
        #expect(result == .untrusted(issuer: "CN=AC INCONNUE,O=AUTORITE INCONNUE,C=FR"))
    }

    @Test func missingCRLFileIsAFileError() {
        #expect(throws: OpenSSLError.fileUnreadable(file: "/nonexistent/ca.crl", reason: "no such file")) {
            try TrustStore(anchorsFile: PKI.url("ca.pem"), crlFiles: [URL(fileURLWithPath: "/nonexistent/ca.crl")])
        }
    }
}
