import Delivery
import Foundation
import Gateway
import Handoff
import Intake
import Journal
import MSSante
import PasserelleCore
import Synchronization
import Testing
import TestSupport

/// The MSSanté side of the fault matrix (docs/faults.md): the real gateway (pipeline, workers,
/// journal, MSSanté sender) against the aiosmtpd relay and Dovecot on loopback, made to
/// misbehave. Retry policy of these runs: retry_initial_seconds = 1, doubling, jitter 0.5.
@Suite("fault matrix: MSSanté", .serialized) struct MSSanteFaultTests {
    /// The target-fault events of a run (the alert lines are asserted in GatewayTests).
    final class Faults: GatewayEvents, Sendable {
        let events = Mutex<[(target: String, active: Bool)]>([])
        func of(_ target: String) -> [Bool] { events.withLock { $0.filter { $0.target == target }.map(\.active) } }
        func documentReceived(kind: DocumentKind?, source: IntakeOrigin) {}
        func documentRefused(reason: String, source: IntakeOrigin) {}
        func documentBuilt(kind: DocumentKind) {}
        func sendFinished(target: Destination, kind: DocumentKind, result: SendResult, duration: Duration) {}
        func targetFault(target: String, active: Bool) { events.withLock { $0.append((target, active)) } }
    }

    final class Run: Sendable {
        let root: URL
        let service: GatewayService
        let workers: TransmissionWorkers
        let faults = Faults()
        let task: Task<Void, Never>
        private let stopped = Mutex(false)
        var journal: any JournalStore { service.journal }

        /// A gateway sending MSSanté to `host:port` (STARTTLS); `imap` when given.
        init(host: String = "127.0.0.1", port: UInt16, imap: String? = nil, maxAttempts: Int = 20, crl: Bool = false) throws {
            root = try TestPaths.temporaryDirectory("mssante-faults")
            let toml = TestConfiguration.withTestPKI()
                .replacingOccurrences(of: "/tmp/passerelle-test", with: root.path)
                .replacingOccurrences(of: "[mssante]\nenabled = false", with: """
                    [mssante]
                    enabled = true
                    smtp_host = "\(host)"
                    smtp_port = \(port)
                    smtp_tls = "starttls"
                    mailbox = "\(MSSanteAcknowledgementTests.mailbox)"
                    \(crl ? "crl = \"\(TestPaths.testPKI.appendingPathComponent("ca.crl.pem").path)\"" : "")
                    \(imap.map { "imap_url = \"\($0)\"" } ?? "")
                    product_reference = "Passerelle/test"
                    poll_interval_seconds = 5
                    """) + """

                [service]
                retry_initial_seconds = 1
                retry_max_seconds = 8
                retry_max_attempts = \(maxAttempts)
                """
            let configuration = try PasserelleConfiguration.parse(toml, file: root.appendingPathComponent("passerelle.toml").path)
            service = try GatewayService.make(configuration: configuration, templates: TestPaths.templates, pollInterval: 0.05)
            let workers = TransmissionWorkers(journal: service.workers.journal, blobs: service.workers.blobs,
                                              senders: service.workers.senders, settings: WorkerSettings(lease: 30, pollInterval: 0.05),
                                              events: faults)
            self.workers = workers
            task = Task { await workers.run() }
        }

        /// Queues one mail to `recipients` (professionals); returns its transmission id.
        func send(to recipients: [String]) async throws -> Int64 {
            var metadata = Fixtures.metadata(flags: [.destMSSantePS], recipients: recipients)
            metadata.id = SampleMetadata.oidDocumentID()
            metadata.destinations = [.mssantePS]
            let item = IntakeItem.document(IncomingDocument(metadata: metadata, content: .pdf(TestPDF.make()), action: .new, controlID: ""))
            guard case .accepted(let id, _, _) = try await service.pipeline.ingest(item, input: nil) else { throw CancellationError() }
            workers.poke()
            return try #require(try await journal.transmissions(matching: TransmissionFilter(documentID: id)).first?.id)
        }

        func wait(_ id: Int64, in states: Set<TransmissionState>, seconds: TimeInterval = 120) async throws -> (Transmission, [Attempt]) {
            let deadline = Date().addingTimeInterval(seconds)
            var t = try await journal.transmission(id: id)
            while Date() < deadline, !(t.map { states.contains($0.state) } ?? false) {
                try await Task.sleep(for: .milliseconds(100))
                t = try await journal.transmission(id: id)
            }
            let found = try #require(t)
            #expect(states.contains(found.state), "\(found.state) \(found.lastError ?? "")")
            return (found, try await journal.attempts(transmissionID: id))
        }

        func stop() async {
            guard stopped.withLock({ was in defer { was = true }; return !was }) else { return }
            workers.stop()
            await task.value
            try? FileManager.default.removeItem(at: root)
        }
    }

    static let a = "a@hopital.mssante.fr", b = "b@hopital.mssante.fr", c = "c@hopital.mssante.fr", d = "d@hopital.mssante.fr"

    /// Waits between attempts grow: ≥ half of 1 s, 2 s, … (jitter 0.5), ≤ base + slack.
    static func expectBackoff(_ attempts: [Attempt], sourceLocation: SourceLocation = #_sourceLocation) {
        for (i, (x, y)) in zip(attempts, attempts.dropFirst()).enumerated() {
            guard let ended = x.endedAt else { continue }
            let gap = y.startedAt.timeIntervalSince(ended), base = pow(2, Double(i))
            #expect(gap >= base * 0.5 - 0.05 && gap <= base + 6, "wait \(i + 1): \(gap) s", sourceLocation: sourceLocation)
        }
    }

    @Test("one mail: 450 for b (once), 550 for c, 552 for d, a accepts — b alone is retried, c and d are reported, a gets it once")
    func recipientRepliesAreHandledPerRecipient() async throws {
        let smtp = try TestSMTPServer(mode: "starttls", extra: ["--recipient-reply", "\(Self.b)=450:1", "--recipient-reply", "\(Self.c)=550",
                                                                "--recipient-reply", "\(Self.d)=552"])
        defer { smtp.stop() }
        let run = try Run(port: smtp.port)
        defer { Task { await run.stop() } }
        let id = try await run.send(to: [Self.a, Self.b, Self.c, Self.d])
        let (t, attempts) = try await run.wait(id, in: [.sent])
        #expect(attempts.map(\.outcome) == ["transient", "sent"])
        Self.expectBackoff(attempts)
        #expect(t.pendingRecipients == nil)
        let error = t.lastError ?? ""
        #expect(error.contains("\(Self.c): 550") && error.contains("\(Self.d): 552"), "\(error)")
        #expect(attempts[0].response?.contains("accepted for 1 recipient(s)") == true, "\(attempts[0].response ?? "")")
        let received = try smtp.received()
        #expect(received.map(\.rcpt_tos) == [[Self.a], [Self.b]], "a once, then b alone")
        // The same message both times (one Message-ID: the acknowledgements find the transmission).
        let ids = try received.map { try MailTests.parse(Data(base64Encoded: $0.data) ?? Data()).headers["Message-ID"]?.first?.trimmingCharacters(in: .whitespaces) ?? "" }
        #expect(Set(ids).count == 1 && ids[0].hasPrefix("<"), "\(ids)")
        #expect(run.faults.of("mssante_ps").isEmpty, "the relay answered: no target alert")
        await run.stop()
    }

    @Test("one mail with a 550 recipient: sent to the others (at once, or after retrying a 450 alone), the 550 shown as the error and never asked again",
          arguments: [
            ("a accepts", [a, c], [String](), ["sent"], [[a]]),
            ("nobody accepts at first: b 450 once", [b, c], ["--recipient-reply", "\(b)=450:1"], ["transient", "sent"], [[b]]),
          ])
    func permanentRecipientRefusalIsShownOnTheSentTransmission(_ name: String, _ recipients: [String], _ extra: [String],
                                                               _ outcomes: [String], _ envelopes: [[String]]) async throws {
        let smtp = try TestSMTPServer(mode: "starttls", extra: ["--recipient-reply", "\(Self.c)=550"] + extra)
        defer { smtp.stop() }
        let run = try Run(port: smtp.port)
        defer { Task { await run.stop() } }
        let id = try await run.send(to: recipients)
        let (t, attempts) = try await run.wait(id, in: [.sent])
        #expect(attempts.map(\.outcome) == outcomes)
        #expect(t.lastError?.contains("\(Self.c): 550") == true, "\(t.lastError ?? "")")
        #expect(try smtp.received().map(\.rcpt_tos) == envelopes)
        await run.stop()
    }

    @Test("every recipient refused (550, 552): failed at once with the server's replies")
    func allRecipientsRefusedFails() async throws {
        let smtp = try TestSMTPServer(mode: "starttls", extra: ["--recipient-reply", "\(Self.c)=550", "--recipient-reply", "\(Self.d)=552"])
        defer { smtp.stop() }
        let run = try Run(port: smtp.port)
        defer { Task { await run.stop() } }
        let id = try await run.send(to: [Self.c, Self.d])
        let (t, attempts) = try await run.wait(id, in: [.failed])
        #expect(attempts.map(\.outcome) == ["permanent"])
        #expect(t.lastError?.hasPrefix("SMTP 550 (permanent)") == true && t.lastError?.contains("552") == true, "\(t.lastError ?? "")")
        #expect(try smtp.received().isEmpty)
        await run.stop()
    }

    @Test("421 for the whole session, or 450 for the only recipient (twice): retried with backoff, sent at the third attempt; one alert, one recovery",
          arguments: [("421 session", ["--session-421", "2"], "SMTP 421 (temporary)"),
                      ("450 every recipient", ["--recipient-reply", "\(a)=450:2"], "SMTP 450 (temporary)")])
    func sessionRefused421IsRetried(_ name: String, _ extra: [String], _ reason: String) async throws {
        let smtp = try TestSMTPServer(mode: "starttls", extra: extra)
        defer { smtp.stop() }
        let run = try Run(port: smtp.port)
        defer { Task { await run.stop() } }
        let id = try await run.send(to: [Self.a])
        let (t, attempts) = try await run.wait(id, in: [.sent])
        #expect(attempts.map(\.outcome) == ["transient", "transient", "sent"])
        Self.expectBackoff(attempts)
        #expect(t.lastError?.hasPrefix(reason) == true, "\(t.lastError ?? "")")
        #expect(run.faults.of("mssante_ps") == [true, false])
        #expect(try smtp.received().count == 1)
        await run.stop()
    }

    /// A relay the gateway cannot (or must not) talk to: retried, one alert for all mails, then failed.
    @Test("relay refused: retried with backoff, one alert for two mails, failed after the attempts with the reason",
          arguments: [
            ("TLS 1.3 only (we pin TLS 1.2)", "server-localhost", ["--tls13-only"], "tls"),
            ("a TLS 1.2 suite we do not offer", "server-localhost", ["--ciphers", "AES128-SHA"], "tls"),
            ("expired server certificate", "expired-server", [], "certificate"),
            ("server certificate from an unknown CA", "unknown-server", [], "certificate"),
            ("revoked server certificate ([mssante] crl)", "revoked-server", [], "revoked"),
            ("our client certificate refused (server trusts another CA)", "server-localhost",
             ["--ca", TestPaths.testPKI.appendingPathComponent("unknown-ca.pem").path], "tls"),
            // Misconfigured relay or a downgrade attack in the path: never sent in clear, retried.
            ("no STARTTLS offered", "server-localhost", ["--no-starttls"], "does not offer starttls; refusing to send in clear"),
          ])
    func refusedRelayIsRetriedAndAlertedOnce(_ name: String, _ certificate: String, _ extra: [String], _ reason: String) async throws {
        let smtp = try TestSMTPServer(mode: "starttls", serverCertificate: certificate, extra: extra)
        defer { smtp.stop() }
        try await Self.expectUnreachable(port: smtp.port, reason: reason, crl: certificate == "revoked-server")
        #expect(try smtp.received().isEmpty)
    }

    @Test("relay down (closed port) or its name does not resolve: retried with backoff, one alert, failed after the attempts",
          arguments: ["down", "dns"])
    func unreachableRelayIsRetried(_ kind: String) async throws {
        let smtp = try TestSMTPServer(mode: "starttls")
        let port = smtp.port
        smtp.stop()
        if kind == "dns" {
            try await Self.expectUnreachable(host: "smtp.passerelle.invalid", port: port, reason: "resolve")
        } else {
            try await Self.expectUnreachable(port: port, reason: "connect")
        }
    }

    static func expectUnreachable(host: String = "127.0.0.1", port: UInt16, reason: String, crl: Bool = false,
                                  sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let run = try Run(host: host, port: port, maxAttempts: 3, crl: crl)
        defer { Task { await run.stop() } }
        let ids = [try await run.send(to: [a]), try await run.send(to: [b])]
        for id in ids {
            let (t, attempts) = try await run.wait(id, in: [.failed])
            #expect(attempts.map(\.outcome) == ["transient", "transient", "transient"], sourceLocation: sourceLocation)
            expectBackoff(attempts, sourceLocation: sourceLocation)
            let error = (t.lastError ?? "").lowercased()
            #expect(error.hasPrefix("gave up after 3 attempts") && error.contains(reason), "\(error)", sourceLocation: sourceLocation)
        }
        #expect(run.faults.of("mssante_ps") == [true], "two mails, one alert", sourceLocation: sourceLocation)
        await run.stop()
    }

    @Test("IMAP mailbox unavailable: sent transmissions stay sent, one alert for repeated polls; back: acknowledgements read, recovery")
    func imapUnavailableKeepsTransmissionsAndAlertsOnce() async throws {
        let smtp = try TestSMTPServer(mode: "starttls")
        defer { smtp.stop() }
        let imap = try TestIMAPServer(certificateUser: "passerelle.ch-test.fr (org_auth_cli)")
        defer { imap.stop() }
        let closed = try TestSMTPServer(mode: "starttls")
        let closedPort = closed.port
        closed.stop()
        // The same gateway, first polling a mailbox nobody answers on, then the real one.
        let down = try Run(port: smtp.port, imap: "imaps://127.0.0.1:\(closedPort)/INBOX")
        defer { Task { await down.stop() } }
        let id = try await down.send(to: [Self.a])
        let (sent, _) = try await down.wait(id, in: [.sent])
        let polling = try #require(down.service.acknowledgements)
        let alerts = FaultAlerts(events: down.faults)
        for _ in 0..<3 { await polling.pollOnce(alerts: alerts) }
        #expect(down.faults.of(AcknowledgementPolling.target) == [true], "three failed polls, one alert")
        #expect(try await down.journal.transmission(id: id)?.state == .sent, "nothing lost, nothing failed")

        let received = try #require(try smtp.received().first)
        let envelopeID = try #require(received.dsn_mail["ENVID"])
        try imap.deliver(MSSanteAcknowledgementTests.dsn(envelopeID: envelopeID, recipient: Self.a, action: "delivered", status: "2.0.0"),
                         name: "dsn")
        let up = AcknowledgementPolling(poller: try AcknowledgementPoller(configuration: try MSSanteAcknowledgementTests.configuration(imap), mailbox: MSSanteAcknowledgementTests.mailbox),
                                        journal: down.journal, events: down.faults)
        await up.pollOnce(alerts: alerts)
        #expect(down.faults.of(AcknowledgementPolling.target) == [true, false])
        #expect(try await down.journal.transmission(id: id)?.state == .delivered)
        #expect(sent.messageID != nil)
        await down.stop()
    }
}
