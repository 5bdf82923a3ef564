import DMP
import Foundation
import HTTPWire
import IHE
import OpenSSLKit
import PasserelleCore
import Signing
import Synchronization
import XMLKit

/// A local DMP-style XDS.b repository for tests and `passerelle demo`: HTTPS with mutual TLS,
/// accepts ITI-41 (MTOM), checks each request strictly (MIME structure, IHE XSD through
/// libxml2, required metadata, size/hash, one patientId that matches the CDA's INS, the VIHF
/// and the submission set signature), stores accepted documents and answers a real
/// RegistryResponse. It can be told to misbehave so retry decisions can be tested.
public final class DMPTestEndpoint: Sendable {
    /// How to answer the next request(s) instead of processing them normally.
    public enum Failure: Sendable, Hashable {
        /// HTTP 500 with a SOAP 1.2 fault (`Receiver` or `Sender`).
        case soapFault(code: String, reason: String)
        /// A bare HTTP status (e.g. 503), with an optional Retry-After.
        case httpStatus(Int, retryAfter: Int?)
        /// A bare HTTP status with this Retry-After header as given (an HTTP-date, a wrong value).
        case httpStatusRetryAfter(Int, header: String)
        /// Process normally but wait this long before answering.
        case slow(seconds: Double)
        /// A Failure RegistryResponse with this error code.
        case registryError(code: String)
        /// Send the headers and half the body, then close the connection.
        case closeMidResponse
        /// A PartialSuccess RegistryResponse with this error code.
        case partialSuccess(code: String)
    }

    public struct Configuration: Sendable {
        /// Server identity (PKCS#12) and its passphrase.
        public var serverIdentity: URL
        public var passphrase: Passphrase
        /// CA that client certificates must chain to (and the VIHF / signature trust anchor).
        public var clientCA: URL
        /// `XDS.b_DocumentRepository.xsd`.
        public var schema: URL
        /// Each raw request is written here (`NNNN.mime` + `NNNN.content-type`), 0600.
        public var dumpDirectory: URL?
        /// TLS versions and suites the server accepts (fault tests: a server that cannot agree with the client).
        public var tlsVersions: ClosedRange<TLSConfiguration.ProtocolVersion> = .tls1_2 ... .tls1_3
        /// OpenSSL cipher list for TLS 1.2 and TLS 1.3 suites (nil: OpenSSL's defaults).
        public var cipherList: String?
        public var ciphersuites: String?

        public init(serverIdentity: URL, passphrase: Passphrase, clientCA: URL, schema: URL, dumpDirectory: URL? = nil) {
            self.serverIdentity = serverIdentity
            self.passphrase = passphrase
            self.clientCA = clientCA
            self.schema = schema
            self.dumpDirectory = dumpDirectory
        }
    }

    /// A document the endpoint accepted.
    public struct StoredDocument: Sendable, Hashable {
        public var uniqueId: String
        /// The registry id of its DocumentEntry (as the source assigned it).
        public var entryUUID: String
        public var patientId: String
        /// The submitting structure (SubmissionSet sourceId): only it may change the status.
        public var sourceId: String
        public var sha1: String
        public var size: Int
        public var mimeType: String
        /// Approved; Deprecated once replaced (RPLC); Deleted by a TD3.3c update.
        public var status: AvailabilityStatus
        /// When the endpoint stored it (before it answered): the end of a benchmark's latency.
        public var storedAt = Date()
    }

    struct State {
        var failures: [Failure] = []
        var stored: [String: StoredDocument] = [:]
        var requests = 0
        var rejections: [String] = []
        var connections = 0
        /// CPU time of the connection threads (TLS records, HTTP, checks): the endpoint's share
        /// of a process it shares with the gateway (benchmarks).
        var cpu: Duration = .zero
        /// TD0.2 answers by patientId (`INS^^^&OID&ISO^NH`); others have an active DMP.
        var patients: [String: DMPPatientStatus] = [:]
    }

    private let server: TLSServer
    private let state = Mutex(State())
    private let submissionObserver = Mutex<(@Sendable (_ uniqueIds: [String]) -> Void)?>(nil)
    let configuration: Configuration
    let schema: XMLSchema
    let vihfVerifier: VIHFVerifier
    let signatureVerifier: SubmissionSetSignatureVerifier

    public var port: UInt16 { server.port }
    /// `https://localhost:<port>/dmp/repository` (ITI-41).
    public var url: URL { URL(string: "https://localhost:\(port)/dmp/repository")! }
    /// `https://localhost:<port>/dmp/registry` (ITI-57; the endpoint dispatches on wsa:Action).
    public var registryURL: URL { URL(string: "https://localhost:\(port)/dmp/registry")! }
    /// `https://localhost:<port>/dmp/status` (TD0.2: `GET …/Patient?identifier=urn:oid:<oid>|<INS>`).
    public var statusURL: URL { URL(string: "https://localhost:\(port)/dmp/status")! }

    public init(_ configuration: Configuration, port: UInt16 = 0) throws {
        self.configuration = configuration
        schema = try XMLSchema(contentsOf: configuration.schema)
        vihfVerifier = try VIHFVerifier(trustAnchorFiles: [configuration.clientCA])
        signatureVerifier = try SubmissionSetSignatureVerifier(trustAnchorFiles: [configuration.clientCA])
        let identity = try PKCS12Bundle.load(path: configuration.serverIdentity, passphrase: configuration.passphrase)
        let tls = TLSConfiguration(trustedCAFile: configuration.clientCA, identity: identity, requireClientCertificate: true,
                                   minimumVersion: configuration.tlsVersions.lowerBound, maximumVersion: configuration.tlsVersions.upperBound,
                                   cipherList: configuration.cipherList, ciphersuites: configuration.ciphersuites, timeout: 30)
        let box = WeakBox()
        server = try TLSServer(host: "127.0.0.1", port: port, configuration: tls) { stream in
            box.endpoint?.serve(stream)
        }
        box.endpoint = self
    }

    public func stop() { server.stop() }

    /// Called with the uniqueIds of each checked submission before it is stored, on the
    /// connection's thread (tests look at what the sender had journaled by the time it sent).
    public func observeSubmissions(_ observer: @escaping @Sendable (_ uniqueIds: [String]) -> Void) {
        submissionObserver.withLock { $0 = observer }
    }

    /// Queues failures: each request consumes one; then normal processing resumes.
    public func fail(_ failures: Failure...) { state.withLock { $0.failures += failures } }

    public var storedDocuments: [StoredDocument] { state.withLock { Array($0.stored.values) } }
    /// The stored document of `uniqueId`.
    public func stored(_ uniqueId: String) -> StoredDocument? { state.withLock { $0.stored[uniqueId] } }

    /// What TD0.2 answers for `ins` (and whether ITI-41 accepts its documents).
    public func setPatientStatus(_ status: DMPPatientStatus, ins: INS) {
        state.withLock { $0.patients[DocumentEntryMapper.patientId(ins)] = status }
    }
    func patientStatus(_ patientId: String) -> DMPPatientStatus { state.withLock { $0.patients[patientId] ?? .active } }
    public var requestCount: Int { state.withLock { $0.requests } }
    /// Accepted TLS connections (to observe connection reuse).
    public var connectionCount: Int { state.withLock { $0.connections } }
    /// CPU time spent serving requests so far (TLS reads and writes included, handshakes not).
    public var cpuTime: Duration { state.withLock { $0.cpu } }
    /// Why requests were refused, most recent last.
    public var rejections: [String] { state.withLock { $0.rejections } }

    // MARK: HTTP/1.1

    func serve(_ stream: TLSStream) {
        state.withLock { $0.connections += 1 }
        var cpu = Self.threadCPU()
        defer { let now = Self.threadCPU(); state.withLock { $0.cpu += now - cpu } }
        let reader = HTTPRequestReader(stream, limits: endpointLimits)
        while true {
            let request: HTTPRequest
            do throws(HTTPReadError) {
                guard let next = try reader.next() else { return }
                request = next
            } catch {
                if let response = error.response {  // a bad request; a client gone quiet or away is no rejection
                    reject("HTTP: \(error)")
                    try? response.write(to: stream)
                }
                return
            }
            let response = handle(request)
            guard (try? response.write(to: stream)) != nil, !response.close, !request.wantsClose else { return }
            let now = Self.threadCPU()
            state.withLock { $0.cpu += now - cpu }
            cpu = now
        }
    }

    func handle(_ request: HTTPRequest) -> HTTPResponseMessage {
        let number = state.withLock { s -> Int in
            s.requests += 1
            return s.requests
        }
        if let dir = configuration.dumpDirectory {
            let base = dir.appendingPathComponent(String(format: "%04d", number))
            FileManager.default.createFile(atPath: base.appendingPathExtension("mime").path, contents: request.body, attributes: [.posixPermissions: 0o600])
            FileManager.default.createFile(atPath: base.appendingPathExtension("content-type").path,
                                           contents: Data((request.header("content-type") ?? "").utf8), attributes: [.posixPermissions: 0o600])
        }
        let failure = state.withLock { s -> Failure? in s.failures.isEmpty ? nil : s.failures.removeFirst() }
        switch failure {
        case .soapFault(let code, let reason)?:
            return .soap(status: 500, Self.fault(code: code, reason: reason))
        case .httpStatus(let status, let retryAfter)?:
            var r = HTTPResponseMessage(status: status, contentType: "text/html", body: Data("<html><body>\(status)</body></html>".utf8))
            if let retryAfter { r.extraHeaders["Retry-After"] = String(retryAfter) }
            return r
        case .httpStatusRetryAfter(let status, let header)?:
            var r = HTTPResponseMessage(status: status, contentType: "text/html", body: Data("<html><body>\(status)</body></html>".utf8))
            r.extraHeaders["Retry-After"] = header
            return r
        case .slow(let seconds)?:
            Thread.sleep(forTimeInterval: seconds)
        case .registryError(let code)?:
            return .soap(status: 200, Self.envelope(RegistryResponse(status: .failure, errors: [RegistryError(code: code, context: "failure requested by the test")]).xml(), relatesTo: nil))
        case .partialSuccess(let code)?:
            return .soap(status: 200, Self.envelope(RegistryResponse(status: .partialSuccess, errors: [RegistryError(code: code, context: "partial success requested by the test")]).xml(), relatesTo: nil))
        case .closeMidResponse?:
            var r = HTTPResponseMessage.soap(status: 200, Self.envelope(RegistryResponse(status: .success).xml(), relatesTo: nil))
            r.truncate = true
            return r
        case nil: break
        }
        if request.method == "GET", request.path.hasPrefix("/dmp/status/Patient") { return patientStatusAnswer(request.target) }
        guard request.method == "POST" else { return HTTPResponseMessage(status: 405, contentType: "text/plain", body: Data("POST only\n".utf8)) }
        let check = ITI41Check(endpoint: self)
        let (response, messageID, action) = check.process(body: request.body, contentType: request.header("content-type") ?? "")
        if case .fault(let fault) = response {
            reject(fault.description)
            return .soap(status: 500, Self.fault(code: fault.code, subcode: fault.subcodes.first, reason: fault.reason))
        }
        guard case .registry(let registry) = response else { fatalError("unreachable") }
        if registry.status != .success { reject(registry.errors.map(\.description).joined(separator: "; ")) }
        let responseAction = action == ITI57Request.action ? ITI57Request.responseAction : ITI41Request.responseAction
        return .soap(status: 200, Self.envelope(registry.xml(), relatesTo: messageID, action: responseAction))
    }

    static func threadCPU() -> Duration {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return .seconds(t.tv_sec) + .nanoseconds(t.tv_nsec)
    }

    func reject(_ reason: String) { state.withLock { $0.rejections.append(reason) } }

    /// TD0.2 as a FHIR search: a searchset Bundle (no entry = no DMP, `active` false = closed),
    /// or a 403 OperationOutcome for a refusal.
    func patientStatusAnswer(_ path: String) -> HTTPResponseMessage {
        let identifier = URLComponents(string: path)?.queryItems?.first { $0.name == "identifier" }?.value ?? ""
        let pieces = identifier.split(separator: "|", maxSplits: 1).map(String.init)
        guard pieces.count == 2, pieces[0].hasPrefix("urn:oid:") else {
            return HTTPResponseMessage(status: 400, contentType: "application/fhir+json",
                                       body: Data(#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"identifier=urn:oid:<oid>|<INS> expected"}]}"#.utf8))
        }
        let status = patientStatus("\(pieces[1])^^^&\(pieces[0].dropFirst(8))&ISO^NH")
        func json(_ object: [String: Any]) -> Data { (try? JSONSerialization.data(withJSONObject: object)) ?? Data() }
        let patient: [String: Any] = ["resourceType": "Patient", "identifier": [["system": pieces[0], "value": pieces[1]]]]
        switch status {
        case .refused(let reason):
            return HTTPResponseMessage(status: 403, contentType: "application/fhir+json", body: json([
                "resourceType": "OperationOutcome", "issue": [["severity": "error", "code": "forbidden", "diagnostics": reason]]]))
        case .noDMP:
            return HTTPResponseMessage(status: 200, contentType: "application/fhir+json", body: json(["resourceType": "Bundle", "type": "searchset", "total": 0]))
        case .active, .closed:
            var p = patient
            p["active"] = status == .active
            return HTTPResponseMessage(status: 200, contentType: "application/fhir+json", body: json([
                "resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [["resource": p]]]))
        }
    }

    /// Applies ITI-57 status changes, all or none; returns the registry errors. A change to
    /// the status the entry already has succeeds (a resend after a lost answer).
    func updateStatus(_ updates: [(entryUUID: String, from: AvailabilityStatus, to: AvailabilityStatus)], patientId: String, sourceId: String) -> [RegistryError] {
        state.withLock { s in
            var errors: [RegistryError] = []
            var changes: [(String, AvailabilityStatus)] = []
            for u in updates {
                guard let d = s.stored.values.first(where: { $0.entryUUID == u.entryUUID }) else {
                    errors.append(RegistryError(code: "XDSUnresolvedReferenceException", context: "no entry \(u.entryUUID)", location: u.entryUUID))
                    continue
                }
                if d.patientId != patientId {
                    errors.append(RegistryError(code: "XDSPatientIdDoesNotMatch", context: "entry \(u.entryUUID) belongs to another patient", location: u.entryUUID))
                } else if d.sourceId != sourceId {
                    errors.append(RegistryError(code: "XDSMetadataUpdateError", context: "only the structure that sent \(d.uniqueId) may change it", location: u.entryUUID))
                } else if d.status != u.to {
                    if d.status == u.from { changes.append((d.uniqueId, u.to)) } else {
                        errors.append(RegistryError(code: "XDSMetadataUpdateError", context: "entry \(d.uniqueId) is \(d.status.rawValue), not \(u.from.rawValue)", location: u.entryUUID))
                    }
                }
            }
            if errors.isEmpty { for (uniqueId, status) in changes { s.stored[uniqueId]?.status = status } }
            return errors
        }
    }

    /// Stores the documents unless one clashes or a replaced entry is not an Approved entry
    /// of the same patient; the replaced entries become Deprecated. Returns the registry errors.
    func store(_ documents: [StoredDocument], replacing: [String] = []) -> [RegistryError] {
        if let observer = submissionObserver.withLock({ $0 }) { observer(documents.map(\.uniqueId)) }
        return state.withLock { s in
            var errors: [RegistryError] = []
            for d in documents {
                if let existing = s.stored[d.uniqueId] {
                    errors.append(existing.sha1 == d.sha1
                        ? RegistryError(code: "XDSDuplicateUniqueIdInRegistry", context: "uniqueId \(d.uniqueId) already registered", location: d.uniqueId)
                        : RegistryError(code: "XDSNonIdenticalHash", context: "uniqueId \(d.uniqueId) already registered with other content", location: d.uniqueId))
                }
            }
            // A clash is answered alone: a resend of a replacement is a duplicate, not a bad RPLC.
            if !errors.isEmpty { return errors }
            var deprecated: [String] = []
            for target in replacing {
                guard let d = s.stored.values.first(where: { $0.entryUUID == target }) else {
                    errors.append(RegistryError(code: "XDSUnresolvedReferenceException", context: "RPLC target \(target) is not in the registry", location: target))
                    continue
                }
                if d.patientId != documents.first?.patientId {
                    errors.append(RegistryError(code: "XDSPatientIdDoesNotMatch", context: "RPLC target \(d.uniqueId) belongs to another patient", location: target))
                } else if d.status != .approved {
                    errors.append(RegistryError(code: "XDSRegistryMetadataError", context: "RPLC target \(d.uniqueId) is \(d.status.rawValue), not Approved", location: target))
                } else {
                    deprecated.append(d.uniqueId)
                }
            }
            if errors.isEmpty {
                let now = Date()
                for var d in documents {
                    d.storedAt = now
                    s.stored[d.uniqueId] = d
                }
                for uniqueId in deprecated { s.stored[uniqueId]?.status = .deprecated }
            }
            return errors
        }
    }

    static func envelope(_ body: String, relatesTo: String?, action: String = ITI41Request.responseAction) -> Data {
        let relates = relatesTo.map { "<wsa:RelatesTo>\((try? Template("{{v}}").render(["v": $0])) ?? "")</wsa:RelatesTo>" } ?? ""
        return Data("""
        <?xml version="1.0" encoding="UTF-8"?>
        <soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing">\
        <soap:Header><wsa:Action>\(action)</wsa:Action>\(relates)</soap:Header>\
        <soap:Body>\(body)</soap:Body></soap:Envelope>
        """.utf8)
    }

    static func fault(code: String, subcode: String? = nil, reason: String) -> Data {
        let escape = { (s: String) in (try? Template("{{v}}").render(["v": s])) ?? "" }
        let sub = subcode.map {
            "<soap:Subcode><soap:Value xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">\(escape($0))</soap:Value></soap:Subcode>"
        } ?? ""
        return envelope("<soap:Fault><soap:Code><soap:Value>soap:\(escape(code))</soap:Value>\(sub)</soap:Code>"
            + "<soap:Reason><soap:Text xml:lang=\"en\">\(escape(reason))</soap:Text></soap:Reason></soap:Fault>", relatesTo: nil)
    }
}

/// Lets the server's connection handler reach the endpoint without a retain cycle.
private final class WeakBox: @unchecked Sendable {
    weak var endpoint: DMPTestEndpoint?
}
