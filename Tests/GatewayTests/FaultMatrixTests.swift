import CDA
import Delivery
import DMP
import Foundation
import Gateway
import Handoff
import Intake
import Journal
import OpenSSLKit
import PasserelleCore
import Synchronization
import TestEndpoints
import Testing
import TestSupport

/// The DMP side of the fault matrix (docs/faults.md): the real gateway (pipeline, workers,
/// journal, DMP sender) against the DMP-style endpoint on loopback made to misbehave, and what
/// an operator sees — the transmission's state and last error, its attempts and their spacing
/// (backoff), the alert lines and the `targetFault` events.
///
/// The retry policy of these runs: retry_initial_seconds = 1, doubling, jitter 0.5, so the
/// waits are 0.5–1 s, then 1–2 s, then 2–4 s.
@Suite("fault matrix: DMP") struct FaultMatrixTests {
    /// A running gateway (workers only; documents go in through the pipeline).
    final class Run: Sendable {
        let harness: Harness
        let service: GatewayService
        let workers: TransmissionWorkers
        let observer: FaultObserver
        let task: Task<Void, Never>
        private let stopped = Mutex(false)
        var journal: any JournalStore { service.journal }

        init(harness: Harness, service: GatewayService, workers: TransmissionWorkers, observer: FaultObserver, task: Task<Void, Never>) {
            self.harness = harness
            self.service = service
            self.workers = workers
            self.observer = observer
            self.task = task
        }

        /// Queues `count` documents for the DMP; returns their transmission ids.
        func send(_ count: Int) async throws -> [Int64] {
            var ids: [Int64] = []
            for _ in 0..<count {
                let metadata = Documents.metadata()
                let item = IntakeItem.document(IncomingDocument(metadata: metadata, content: .pdf(Documents.pdf()), action: .new, controlID: ""))
                guard case .accepted(let id, let version, _) = try await service.pipeline.ingest(item, input: nil) else {
                    throw GatewayError.record("not accepted")
                }
                ids += try await journal.transmissions(matching: TransmissionFilter(documentID: id)).filter { $0.version == version }.map(\.id)
            }
            workers.poke()
            return ids
        }

        /// Waits until every transmission of `ids` is in one of `states`.
        func wait(_ ids: [Int64], in states: Set<TransmissionState>, seconds: TimeInterval = 120) async throws -> [Observed] {
            let reached = try await Harness.waitUntil(timeout: seconds) {
                for id in ids { guard let t = try await journal.transmission(id: id), states.contains(t.state) else { return false } }
                return true
            }
            var observed: [Observed] = []
            for id in ids { observed.append(try await journal.observed(id)) }
            #expect(reached, "not all in \(states): \(observed.map { "\($0.transmission.state.rawValue) \($0.transmission.lastError ?? "")" })")
            return observed
        }

        func stop() async {
            guard stopped.withLock({ was in defer { was = true }; return !was }) else { return }
            workers.stop()
            await task.value
            harness.cleanUp()
        }
    }

    /// A gateway on `harness` with `maxAttempts` and the configuration text edited by `edit`.
    static func start(_ harness: Harness, maxAttempts: Int = 20, edit: (String) -> String = { $0 }) throws -> Run {
        var text = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "retry_max_seconds = 2", with: "retry_max_seconds = 8\nretry_max_attempts = \(maxAttempts)")
        try edit(text).write(toFile: harness.configPath, atomically: true, encoding: .utf8)
        let service = try harness.service()
        let observer = FaultObserver()
        let workers = TransmissionWorkers(journal: service.workers.journal, blobs: service.workers.blobs, senders: service.workers.senders,
                                          settings: WorkerSettings(lease: 30, pollInterval: 0.05), events: observer, logger: observer.logger)
        return Run(harness: harness, service: service, workers: workers, observer: observer, task: Task { await workers.run() })
    }

    static func endpoint(server: String = "server-localhost", clientCA: String = "ca.pem",
                         tweak: (inout DMPTestEndpoint.Configuration) -> Void = { _ in }) throws -> DMPTestEndpoint {
        var configuration = DMPTestEndpoint.Configuration(
            serverIdentity: TestPaths.testPKI.appendingPathComponent("\(server).p12"),
            passphrase: try Passphrase.read(file: TestPaths.testPKIPassphraseFile),
            clientCA: TestPaths.testPKI.appendingPathComponent(clientCA),
            schema: TestPaths.shared.appendingPathComponent("conformance/xds/XDS.b_DocumentRepository.xsd"))
        tweak(&configuration)
        return try DMPTestEndpoint(configuration)
    }

    // MARK: Answers of a reachable DMP

    /// An answer the endpoint gives instead of storing the document.
    struct Answer: Sendable, CustomTestStringConvertible {
        var name: String
        var failure: DMPTestEndpoint.Failure
        /// Expected in the attempt's response or the transmission's last error.
        var reason: String
        var testDescription: String { name }
    }

    /// Answered twice; the third attempt goes through.
    static let transient: [Answer] = [
        Answer(name: "HTTP 500", failure: .httpStatus(500, retryAfter: nil), reason: "HTTP 500"),
        Answer(name: "HTTP 503 with Retry-After", failure: .httpStatus(503, retryAfter: 1), reason: "HTTP 503"),
        Answer(name: "SOAP fault Receiver", failure: .soapFault(code: "Receiver", reason: "registry database down"), reason: "registry database down"),
        Answer(name: "RegistryResponse Failure XDSRegistryBusy", failure: .registryError(code: "XDSRegistryBusy"),
                  reason: "DMP service unavailable"),
        Answer(name: "connection closed mid-response", failure: .closeMidResponse, reason: "network"),
    ]

    @Test("transient answer: retry-wait with a growing backoff, stored at the third attempt, one alert, one recovery line",
          arguments: transient)
    func transientAnswerIsRetriedWithBackoff(_ fault: Answer) async throws {
        let run = try Self.start(try Harness())
        defer { Task { await run.stop() } }
        run.harness.endpoint.fail(fault.failure, fault.failure)
        let ids = try await run.send(1)
        let o = try #require(try await run.wait(ids, in: [.acknowledged]).first)
        #expect(o.attempts.map(\.outcome) == ["transient", "transient", "sent"])
        #expect(o.attempts.first?.response?.contains(fault.reason) == true || o.transmission.lastError?.contains(fault.reason) == true,
                "\(o.attempts.first?.response ?? "") / \(o.transmission.lastError ?? "")")
        o.expectBackoff(initial: 1)
        #expect(run.observer.alerts("dmp").count == 1)
        #expect(run.observer.recoveries("dmp").count == 1)
        #expect(run.observer.faultEvents("dmp") == [true, false])
        await run.stop()
    }

    /// A refusal about the document: failed at once, with the DMP's reason, no retry, no target alert.
    static let permanent: [Answer] = [
        Answer(name: "SOAP fault Sender", failure: .soapFault(code: "Sender", reason: "malformed request"), reason: "malformed request"),
        Answer(name: "RegistryResponse Failure XDSRegistryMetadataError", failure: .registryError(code: "XDSRegistryMetadataError"),
                  reason: "DMP refusal XDSRegistryMetadataError"),
        Answer(name: "RegistryResponse PartialSuccess", failure: .partialSuccess(code: "XDSRegistryMetadataError"),
                  reason: "DMP refusal XDSRegistryMetadataError"),
        Answer(name: "HTTP 400", failure: .httpStatus(400, retryAfter: nil), reason: "HTTP 400"),
    ]

    @Test("refusal of the document: failed at once with the DMP's reason, one error line, no target alert", arguments: permanent)
    func refusalFailsWithReason(_ fault: Answer) async throws {
        let run = try Self.start(try Harness())
        defer { Task { await run.stop() } }
        run.harness.endpoint.fail(fault.failure)
        let ids = try await run.send(1)
        let o = try #require(try await run.wait(ids, in: [.failed]).first)
        #expect(o.attempts.map(\.outcome) == ["permanent"])
        #expect(o.transmission.lastError?.contains(fault.reason) == true, "\(o.transmission.lastError ?? "")")
        #expect(run.observer.alerts("dmp").isEmpty)
        let deadLetters = run.observer.errors.filter { $0.message == "send failed for good" }
        #expect(deadLetters.count == 1 && deadLetters.first?.metadata["transmission"] == "\(ids[0])")
        await run.stop()
    }

    @Test("slower than [dmp] timeout_seconds: timed out, retried; the DMP recognises or stores the document")
    func slowerThanTheTimeoutIsRetried() async throws {
        let run = try Self.start(try Harness()) { $0.replacingOccurrences(of: "timeout_seconds = 8", with: "timeout_seconds = 1") }
        defer { Task { await run.stop() } }
        run.harness.endpoint.fail(.slow(seconds: 3))
        let ids = try await run.send(1)
        let o = try #require(try await run.wait(ids, in: [.acknowledged]).first)
        #expect(o.attempts.map(\.outcome) == ["transient", "sent"])
        #expect(o.attempts[0].response?.lowercased().contains("timed out") == true, "\(o.attempts[0].response ?? "")")
        #expect(run.observer.alerts("dmp").count == 1 && run.observer.recoveries("dmp").count == 1)
        await run.stop()
    }

    // MARK: DMP unreachable

    @Test("endpoint down for 12 documents: all wait (retry-wait), ONE alert; back up: all stored, ONE recovery line")
    func endpointDownAlertsOnceThenRecovers() async throws {
        let harness = try Harness()
        let port = harness.endpoint.port
        harness.endpoint.stop()
        let run = try Self.start(harness)
        defer { Task { await run.stop() } }
        let ids = try await run.send(12)
        _ = try await Harness.waitUntil(timeout: 120) {
            try await run.journal.transmissions(matching: TransmissionFilter(states: [.retryWait])).count == 12
        }
        let waiting = try await run.journal.transmissions(matching: TransmissionFilter(states: [.retryWait]))
        #expect(waiting.count == 12)
        #expect(waiting.allSatisfy { $0.lastError?.hasPrefix("network:") == true }, "\(waiting.map(\.lastError))")
        #expect(run.observer.alerts("dmp").count == 1)
        #expect(run.observer.alerts("dmp").first?.metadata["cause"]?.contains("network") == true)
        #expect(run.observer.errors.count == 1, "only the alert at error level: \(run.observer.errors.map(\.message))")

        let back = try Harness.endpoint(port: port)
        defer { back.stop() }
        let done = try await run.wait(ids, in: [.acknowledged])
        #expect(done.allSatisfy { $0.attempts.first?.outcome == "transient" && $0.attempts.last?.outcome == "sent" })
        #expect(back.storedDocuments.count == 2 * 12, "each document + its submission-set signature, nothing twice")
        #expect(back.rejections.isEmpty, "\(back.rejections.prefix(3))")
        #expect(run.observer.alerts("dmp").count == 1)
        #expect(run.observer.recoveries("dmp").count == 1)
        #expect(run.observer.faultEvents("dmp") == [true, false])
        await run.stop()
    }

    @Test("host name that does not resolve: retried with backoff, then failed 'gave up after 3 attempts'")
    func dnsFailureIsRetriedThenGivesUp() async throws {
        let harness = try Harness()
        let run = try Self.start(harness, maxAttempts: 3) {
            $0.replacingOccurrences(of: harness.endpoint.url.absoluteString, with: "https://dmp.passerelle.invalid/dmp/repository")
        }
        defer { Task { await run.stop() } }
        let ids = try await run.send(1)
        let o = try #require(try await run.wait(ids, in: [.failed]).first)
        #expect(o.attempts.map(\.outcome) == ["transient", "transient", "transient"])
        o.expectBackoff(initial: 1)
        let reason = o.transmission.lastError ?? ""
        #expect(reason.hasPrefix("gave up after 3 attempts"), "\(reason)")
        #expect(reason.lowercased().contains("resolve"), "\(reason)")
        #expect(run.observer.alerts("dmp").count == 1)
        #expect(run.observer.errors.filter { $0.message == "send failed for good" }.count == 1)
        await run.stop()
    }

    // MARK: TLS and certificates

    /// A DMP endpoint the client cannot (or must not) talk to.
    struct Refused: Sendable, CustomTestStringConvertible {
        var name: String
        var server = "server-localhost"
        var clientCA = "ca.pem"
        var versions: ClosedRange<TLSConfiguration.ProtocolVersion> = .tls1_2 ... .tls1_3
        var cipherList: String?
        var ciphersuites: String?
        /// `[dmp] crl`: the CA's CRL, checked against the server certificate.
        var crl = false
        /// Expected in the last error (lowercased).
        var reason: [String]
        var testDescription: String { name }
    }

    static let refused: [Refused] = [
        Refused(name: "server TLS 1.2 with a suite we do not offer (RSA key exchange)", versions: .tls1_2 ... .tls1_2,
                cipherList: "AES128-SHA", reason: ["tls", "handshake"]),
        Refused(name: "server TLS 1.3 with a suite we do not offer (ChaCha20)", versions: .tls1_3 ... .tls1_3,
                ciphersuites: "TLS_CHACHA20_POLY1305_SHA256", reason: ["tls", "handshake"]),
        Refused(name: "expired server certificate", server: "expired-server", reason: ["certificate", "expired"]),
        Refused(name: "server certificate from an unknown CA", server: "unknown-server", reason: ["certificate"]),
        Refused(name: "revoked server certificate ([dmp] crl)", server: "revoked-server", crl: true, reason: ["certificate", "revoked"]),
        Refused(name: "our client certificate refused by the server, TLS 1.2 (unknown CA for it)", clientCA: "unknown-ca.pem",
                versions: .tls1_2 ... .tls1_2, reason: ["client certificate"]),
        // TLS 1.3: the refusal comes after the handshake, often as a broken write; the hint names the likely cause.
        Refused(name: "our client certificate refused by the server, TLS 1.3 (unknown CA for it)", clientCA: "unknown-ca.pem",
                versions: .tls1_3 ... .tls1_3, reason: ["client certificate"]),
    ]

    @Test("TLS or certificate refused: retried with backoff (the documents are kept), one alert naming the cause, then failed",
          arguments: refused)
    func tlsRefusalIsRetriedAndAlertedOnce(_ fault: Refused) async throws {
        let endpoint = try Self.endpoint(server: fault.server, clientCA: fault.clientCA) {
            $0.tlsVersions = fault.versions
            $0.cipherList = fault.cipherList
            $0.ciphersuites = fault.ciphersuites
        }
        let crl = TestPaths.testPKI.appendingPathComponent("ca.crl.pem").path
        let run = try Self.start(try Harness(endpoint: endpoint), maxAttempts: 2) {
            fault.crl ? $0.replacingOccurrences(of: "[dmp]\n", with: "[dmp]\ncrl = \"\(crl)\"\n") : $0
        }
        defer { Task { await run.stop() } }
        let ids = try await run.send(2)
        let observed = try await run.wait(ids, in: [.failed])
        for o in observed {
            #expect(o.attempts.map(\.outcome) == ["transient", "transient"])
            let reason = (o.transmission.lastError ?? "").lowercased()
            #expect(reason.hasPrefix("gave up after 2 attempts"), "\(reason)")
            #expect(fault.reason.allSatisfy(reason.contains), "\(reason)")
        }
        #expect(endpoint.storedDocuments.isEmpty)
        #expect(run.observer.alerts("dmp").count == 1, "two documents, one alert")
        #expect(run.observer.recoveries("dmp").isEmpty)
        await run.stop()
    }

    /// Our own certificate unusable: the service refuses to start, saying which and why
    /// (TLS 1.3 servers reject a client certificate only after the handshake, where it would
    /// look like a network fault: see DMPClient.checkAuthenticationCertificate).
    @Test("our authentication certificate expired, revoked or from an unknown CA: the service does not start, with the reason",
          arguments: [("expired-auth", "expired"), ("revoked-auth", "revoked"), ("unknown-auth", "issuer")])
    func ourCertificateUnusableStopsAtStartup(_ name: String, _ reason: String) async throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let pki = TestPaths.testPKI.path
        var text = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "\(pki)/org-auth.p12", with: "\(pki)/\(name).p12")
            .replacingOccurrences(of: "trust_anchors = \"\(pki)/ca.pem\"", with: "trust_anchors = \"\(pki)/ca.pem\"\ncrl = \"\(pki)/ca.crl.pem\"")
        try text.write(toFile: harness.configPath, atomically: true, encoding: .utf8)
        do {
            _ = try harness.service()
            Issue.record("the service started with \(name)")
        } catch {
            let text = "\(error)"
            #expect(text.contains("DMP sender") && text.lowercased().contains(reason), "\(text)")
        }
    }
    /// Our signing certificate unusable at start (with the DMP enabled): the service refuses
    /// to start, naming the file, the dates and what to do, instead of failing every document.
    @Test("our signing certificate expired or not yet valid: the service does not start, naming the file and dates",
          arguments: [("expired-sign", "valid from"), ("notyet-sign", "valid from")])
    func ourSigningCertificateUnusableStopsAtStartup(_ name: String, _ reason: String) async throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let pki = TestPaths.testPKI.path
        var text = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "\(pki)/org-sign.p12", with: "\(pki)/\(name).p12")
        try text.write(toFile: harness.configPath, atomically: true, encoding: .utf8)
        do {
            _ = try harness.service()
            Issue.record("the service started with \(name)")
        } catch {
            let text = "\(error)"
            #expect(text.contains("DMP signing certificate") && text.contains("\(name).p12") && text.contains(reason)
                    && text.contains("Install a valid signing certificate"), "\(text)")
        }
    }

    /// A signing certificate that stops being usable while the service runs (here: the send
    /// time is past its notAfter, or before its notBefore) does not fail the document: retry
    /// (transient cause naming the certificate), one alert for the DMP, nothing sent.
    @Test("signing certificate no longer valid at send time: retried with one alert naming it, never failed, nothing sent")
    func signingCertificateExpiredAtSendTimeIsRetried() async throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let sender = try DMPSender(configuration: try harness.configuration())
        let builder = try CDABuilder(templatesDirectory: TestPaths.templates, options: CDABuilder.Options(documentIDRoot: "1.2.250.1.999.1"))
        let validity = sender.vihf.credentials.certificateValidity
        let observer = AlertRecorder()
        let alerts = FaultAlerts(events: observer)
        for time in [validity.upperBound.addingTimeInterval(86_400), validity.lowerBound.addingTimeInterval(-86_400)] {
            let metadata = SampleMetadata.document(kind: .dischargeLetter, id: SampleMetadata.oidDocumentID(root: "1.2.250.1.999.1"))
            let document = try builder.build(metadata: metadata, pdf: TestPDF.make(text: "Compte rendu"))
            let result = await sender.submit(sender.prepare(document, metadata: metadata, at: time))
            guard case .retry(_, let reason) = result.outcome else { Issue.record("\(result.outcome)"); continue }
            #expect(reason.contains("DMP signing certificate") && reason.contains("refusing to sign"), "\(reason)")
            let outcome = DMPTransmissionSender.outcome(result)
            guard case .failure(let cause, _) = outcome else { Issue.record("\(outcome)"); continue }
            #expect(cause.isTransient, "\(cause)")
            alerts.record(outcome, target: "dmp")
        }
        #expect(observer.count == 1, "two documents, one alert")
        #expect(alerts.open["dmp"]?.cause.contains("signing certificate") == true, "\(alerts.open)")
        #expect(harness.endpoint.storedDocuments.isEmpty)
    }
}

extension FaultMatrixTests {
    /// The DMP sender seen from a clock that can be moved past the signing certificate's
    /// validity: the real sender, the real hold check, only "now" shifted.
    final class ShiftedClockSender: TransmissionSender {
        let inner: DMPTransmissionSender
        let shift: Mutex<TimeInterval>
        init(inner: DMPTransmissionSender, shift: TimeInterval) {
            self.inner = inner
            self.shift = Mutex(shift)
        }
        var target: Destination { inner.target }
        func send(_ claim: ClaimedTransmission, document: OutgoingDocument) async -> TransmissionOutcome {
            await inner.send(claim, document: document)
        }
        func holdReason(at time: Date) -> String? { inner.holdReason(at: time.addingTimeInterval(shift.withLock { $0 })) }
    }

    /// A signing certificate that stops being usable while the service runs must never fail
    /// documents (they would run out of attempts over a weekend): the DMP target is held —
    /// nothing claimed, no attempt counted, one alert naming the certificate — and sends resume
    /// once the certificate is usable again.
    @Test("signing certificate unusable while running: the DMP target is held (no attempt, one alert), then resumes")
    func unusableSigningCertificateHoldsTheTarget() async throws {
        let harness = try Harness()
        let service = try harness.service()
        let dmp = try #require(service.workers.senders.first { $0.0.target == .dmp })
        let inner = try #require(dmp.0 as? DMPTransmissionSender)
        let validity = inner.sender.vihf.credentials.certificateValidity
        let sender = ShiftedClockSender(inner: inner, shift: validity.upperBound.timeIntervalSinceNow + 86_400)
        let observer = FaultObserver()
        let workers = TransmissionWorkers(journal: service.workers.journal, blobs: service.workers.blobs, senders: [(sender, 2)],
                                          settings: WorkerSettings(lease: 30, pollInterval: 0.05), events: observer, logger: observer.logger)
        let run = Run(harness: harness, service: service, workers: workers, observer: observer, task: Task { await workers.run() })
        defer { Task { await run.stop() } }
        let ids = try await run.send(2)
        try await Task.sleep(nanoseconds: 1_500_000_000)
        for id in ids {
            let t = try #require(try await run.journal.transmission(id: id))
            #expect(t.state == .queued && t.attempts == 0, "\(t.state) after \(t.attempts) attempts")
        }
        #expect(harness.endpoint.storedDocuments.isEmpty)
        let alerts = observer.alerts("dmp")
        #expect(alerts.count == 1 && alerts.first?.metadata["cause"]?.contains("signing certificate") == true, "\(alerts.map(\.metadata))")

        sender.shift.withLock { $0 = 0 }
        workers.poke()
        _ = try await run.wait(ids, in: [.acknowledged], seconds: 30)
        #expect(harness.endpoint.storedDocuments.count == 2 * 2, "each document + its submission-set signature, once")
        #expect(observer.recoveries("dmp").count == 1)
    }
}

/// Counts the target alerts raised.
final class AlertRecorder: GatewayEvents, @unchecked Sendable {
    private let lock = NSLock()
    private var raised = 0
    var count: Int { lock.withLock { raised } }
    func documentReceived(kind: DocumentKind?, source: IntakeOrigin) {}
    func documentRefused(reason: String, source: IntakeOrigin) {}
    func documentBuilt(kind: DocumentKind) {}
    func sendFinished(target: Destination, kind: DocumentKind, result: SendResult, duration: Duration) {}
    func targetFault(target: String, active: Bool) { if active { lock.withLock { raised += 1 } } }
}
