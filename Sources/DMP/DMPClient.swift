import CurlKit
import Foundation
import OpenSSLKit
import PasserelleCore
import Signing

/// The result of one ITI-41 attempt: the decision plus what to journal.
public struct SubmissionResult: Sendable {
    public var outcome: SubmissionOutcome
    /// HTTP status, nil when no response came back (transport error).
    public var httpStatus: Int?
    /// The raw response body (kept in the journal).
    public var rawResponse: Data
    public var contentType: String?
}

/// Sends ITI-41 requests to the DMP repository over libcurl: TLS 1.2+, the structure's
/// authentication certificate, the server checked against the configured CA, connections
/// reused, at most `maxConnections` requests in flight to the endpoint.
public final class DMPClient: Sendable {
    public let endpoint: URL
    let http: HTTPClient

    public init(endpoint: URL, tls: TLSClientOptions, timeouts: CurlTimeouts = CurlTimeouts(), maxConnections: Int = 4) throws(CurlError) {
        self.endpoint = endpoint
        http = try HTTPClient(tls: tls, timeouts: timeouts, maxConnectionsPerHost: maxConnections, userAgent: "Passerelle-DMP")
    }

    /// From the `[dmp]` and `[certificates]` sections.
    public convenience init(configuration: PasserelleConfiguration, passphrase: TLSPassphrase) throws(DMPError) {
        let dmp = configuration.dmp
        guard let endpoint = dmp.endpoint else { throw .metadata("[dmp] endpoint is not configured") }
        let certificates = configuration.certificates
        let tls = TLSClientOptions(caBundle: URL(fileURLWithPath: dmp.ca),
                                   clientIdentity: .pkcs12(URL(fileURLWithPath: certificates.authentication), passphrase: passphrase))
        let timeouts = CurlTimeouts(connect: .seconds(min(15, dmp.timeoutSeconds)), total: .seconds(dmp.timeoutSeconds))
        do {
            try self.init(endpoint: endpoint, tls: tls, timeouts: timeouts, maxConnections: dmp.maxConnections)
        } catch {
            throw .transport(error.description)
        }
    }

    /// Checks the authentication certificate before anything is sent. Under TLS 1.3 a server
    /// refuses a client certificate only after the handshake, which libcurl reports as a
    /// broken connection (indistinguishable from a network fault, hence a retry): a
    /// certificate that cannot chain to the configured anchors, expired or revoked, is
    /// caught here instead, as a permanent problem.
    public static func checkAuthenticationCertificate(_ bundle: PKCS12Bundle, trustStore: TrustStore, at date: Date = Date()) throws(DMPError) {
        let report = CertificateCheck(trustStore: trustStore, warningDays: 0).check(bundle, role: .authentication, at: date)
        switch report.status {
        case .ok, .warning: return
        case .error, .unknown: throw .certificate("\(bundle.source): \(report.status)")
        }
    }

    /// Sends `request` and decides. Never throws: every failure is an outcome.
    public func send(_ request: ITI41Request) async -> SubmissionResult {
        var headers = HTTPHeaders()
        headers.set("Content-Type", request.body.contentType)
        headers.set("MIME-Version", "1.0")
        headers.set("Expect", "")  // no 100-continue round trip
        let http = HTTPRequest(method: "POST", url: endpoint, headers: headers, body: request.body.uploadSource)
        do {
            let response = try await self.http.send(http)
            let contentType = response.headers["Content-Type"]
            let outcome = SubmissionDecision.decide(status: response.status, contentType: contentType,
                                                    retryAfter: response.headers["Retry-After"], body: response.body)
            return SubmissionResult(outcome: outcome, httpStatus: response.status, rawResponse: response.body, contentType: contentType)
        } catch let error as CurlError {
            return SubmissionResult(outcome: SubmissionDecision.decide(error), httpStatus: nil, rawResponse: Data(), contentType: nil)
        } catch {
            return SubmissionResult(outcome: .retry(after: nil, reason: "\(error)"), httpStatus: nil, rawResponse: Data(), contentType: nil)
        }
    }
}
