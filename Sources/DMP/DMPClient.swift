import CurlKit
import Foundation
import IHE
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
    /// The patient's DMP status when the TD0.2 check ran (``DMPSender``).
    public var patientStatus: DMPPatientStatus? = nil

    /// How long the server asked to wait before the next attempt (HTTP 429/503 `Retry-After`,
    /// capped at ``RetryAfter/maximum``), nil when it said nothing.
    public var retryAfter: Duration? {
        if case .retry(let after?, _) = outcome { after } else { nil }
    }

    /// The raw response as text for the journal (empty when nothing came back).
    public var responseText: String { String(decoding: rawResponse, as: UTF8.self) }
}

/// What the DMP client needs, mapped from `[dmp]` in the wiring (``init(_:)``).
public struct DMPClientSettings: Sendable, Hashable {
    /// The XDS.b repository (ITI-41).
    public var endpoint: URL
    /// The XDS.b registry (ITI-57); nil = `endpoint`.
    public var registryEndpoint: URL?
    /// The TD0.2 service; nil = no status check.
    public var statusEndpoint: URL?
    /// PEM CAs for the server certificate.
    public var serverCA: URL
    /// PEM CRL of the server certificate's issuer.
    public var crl: URL?
    public var timeoutSeconds: Int
    public var maxConnections: Int

    public init(endpoint: URL, registryEndpoint: URL? = nil, statusEndpoint: URL? = nil, serverCA: URL, crl: URL? = nil,
                timeoutSeconds: Int = 60, maxConnections: Int = 4) {
        self.endpoint = endpoint
        self.registryEndpoint = registryEndpoint
        self.statusEndpoint = statusEndpoint
        self.serverCA = serverCA
        self.crl = crl
        self.timeoutSeconds = timeoutSeconds
        self.maxConnections = maxConnections
    }

    /// From the `[dmp]` section.
    public init(_ dmp: PasserelleConfiguration.DMP) throws(DMPError) {
        guard let endpoint = dmp.endpoint else { throw .metadata("[dmp] endpoint is not configured") }
        self.init(endpoint: endpoint, registryEndpoint: dmp.registryEndpoint, statusEndpoint: dmp.statusEndpoint,
                  serverCA: URL(fileURLWithPath: dmp.ca), crl: dmp.crl.map { URL(fileURLWithPath: $0) },
                  timeoutSeconds: dmp.timeoutSeconds, maxConnections: dmp.maxConnections)
    }
}

extension TLSClientIdentity {
    /// A loaded PKCS#12 as libcurl's in-memory client identity (certificate chain and key as
    /// PEM blobs): libcurl never opens the .p12, and no passphrase is handed to it.
    public static func inMemory(_ bundle: PKCS12Bundle) throws(OpenSSLError) -> TLSClientIdentity {
        let key = try bundle.privateKeyPEM()
        return .memory(certificateChainPEM: bundle.certificateChainPEM, privateKeyPEM: key.withUnsafeBytes { TLSKeyBlob(pem: $0) })
    }
}

/// Sends ITI-41 requests to the DMP repository over libcurl: TLS 1.2+, the structure's
/// authentication certificate, the server checked against the configured CA, connections
/// reused, at most `maxConnections` requests in flight to the endpoint.
public final class DMPClient: Sendable {
    /// The XDS.b repository (ITI-41).
    public let endpoint: URL
    /// The XDS.b registry (ITI-57 status updates); the repository endpoint when not set apart.
    public let registryEndpoint: URL
    /// The TD0.2 service (DMP existence and access); nil when not configured.
    public let statusEndpoint: URL?
    let http: HTTPClient

    public init(endpoint: URL, tls: TLSClientOptions, timeouts: CurlTimeouts = CurlTimeouts(), maxConnections: Int = 4,
                registryEndpoint: URL? = nil, statusEndpoint: URL? = nil) throws(CurlError) {
        self.endpoint = endpoint
        self.registryEndpoint = registryEndpoint ?? endpoint
        self.statusEndpoint = statusEndpoint
        http = try HTTPClient(tls: tls, timeouts: timeouts, maxConnectionsPerHost: maxConnections, userAgent: "Passerelle-DMP")
    }

    /// From its settings, authenticating with `identity` (in the service: the authentication
    /// bundle loaded once, in memory, see ``TLSClientIdentity/inMemory(_:)``).
    public convenience init(settings s: DMPClientSettings, identity: TLSClientIdentity) throws(DMPError) {
        let tls = TLSClientOptions(caBundle: s.serverCA, clientIdentity: identity, crlFile: s.crl)
        let timeouts = CurlTimeouts(connect: .seconds(min(15, s.timeoutSeconds)), total: .seconds(s.timeoutSeconds))
        do {
            try self.init(endpoint: s.endpoint, tls: tls, timeouts: timeouts, maxConnections: s.maxConnections,
                          registryEndpoint: s.registryEndpoint, statusEndpoint: s.statusEndpoint)
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
        await post(endpoint, contentType: request.body.contentType, body: request.body.uploadSource)
    }

    /// Sends an ITI-57 status update (TD3.3c deletion) to the registry and decides.
    public func send(_ request: ITI57Request) async -> SubmissionResult {
        await post(registryEndpoint, contentType: request.contentType, body: .data(request.envelope))
    }

    func post(_ url: URL, contentType: String, body: UploadSource) async -> SubmissionResult {
        var headers = HTTPHeaders()
        headers.set("Content-Type", contentType)
        headers.set("MIME-Version", "1.0")
        headers.set("Expect", "")  // no 100-continue round trip
        do {
            let response = try await http.send(HTTPRequest(method: "POST", url: url, headers: headers, body: body))
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

    /// TD0.2: does the patient have an active DMP that accepts documents? Asked as
    /// `GET <status endpoint>/Patient?identifier=urn:oid:<INS OID>|<INS>` (the form the ANS
    /// PDSm-for-DMP guide gives; the XDS-era DMPi wire format is not public), answered by a
    /// FHIR searchset Bundle: no entry = no DMP, a Patient with `active` false = closed; a 403
    /// OperationOutcome = access refused (patient opposition). Nil `status` with a `result`
    /// when the question itself failed (retry or permanent, as for a submission).
    public func patientStatus(_ ins: INS) async -> (status: DMPPatientStatus?, result: SubmissionResult) {
        guard let statusEndpoint else {
            return (nil, SubmissionResult(outcome: .failed(reason: "[dmp] status_endpoint is not configured", codes: ["configuration"]),
                                          httpStatus: nil, rawResponse: Data(), contentType: nil))
        }
        var components = URLComponents(url: statusEndpoint.appendingPathComponent("Patient"), resolvingAgainstBaseURL: false)
        components?.queryItems = [URLQueryItem(name: "identifier", value: "urn:oid:\(ins.oid)|\(ins.value)")]
        let query = components?.percentEncodedQuery?.replacingOccurrences(of: "|", with: "%7C")
        components?.percentEncodedQuery = query
        guard let url = components?.url else {
            return (nil, SubmissionResult(outcome: .failed(reason: "status endpoint \(statusEndpoint) cannot take a query", codes: ["configuration"]),
                                          httpStatus: nil, rawResponse: Data(), contentType: nil))
        }
        var headers = HTTPHeaders()
        headers.set("Accept", "application/fhir+json")
        do {
            let response = try await http.send(HTTPRequest(method: "GET", url: url, headers: headers))
            let contentType = response.headers["Content-Type"]
            let decided = DMPPatientStatus.decide(status: response.status, retryAfter: response.headers["Retry-After"], body: response.body)
            var result = SubmissionResult(outcome: decided.outcome, httpStatus: response.status, rawResponse: response.body, contentType: contentType)
            result.patientStatus = decided.status
            return (decided.status, result)
        } catch let error as CurlError {
            return (nil, SubmissionResult(outcome: SubmissionDecision.decide(error), httpStatus: nil, rawResponse: Data(), contentType: nil))
        } catch {
            return (nil, SubmissionResult(outcome: .retry(after: nil, reason: "\(error)"), httpStatus: nil, rawResponse: Data(), contentType: nil))
        }
    }
}
