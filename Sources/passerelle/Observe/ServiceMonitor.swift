import Foundation
import Handoff
import Intake
import Journal
import Logging
import Observability
import OpenSSLKit
import PasserelleCore
import Signing
import Synchronization
import WebServer

/// The gateway's events as Prometheus metrics (``GatewayMetrics``). Labels: kind short
/// names, targets, reason codes and sources — nothing about a patient.
struct MetricsEvents: GatewayEvents {
    let metrics: GatewayMetrics

    func documentReceived(kind: DocumentKind?, source: IntakeOrigin) {
        metrics.documentReceived(kind: kind?.shortName ?? "cda", source: source.rawValue)
    }

    func documentRefused(reason: String, source: IntakeOrigin) {
        metrics.documentRefused(reason: reason)
    }

    func documentBuilt(kind: DocumentKind) {
        metrics.documentBuilt(kind: kind.shortName)
    }

    func sendFinished(target: Destination, kind: DocumentKind, result: SendResult, duration: Duration) {
        switch result {
        case .sent: metrics.transmissionSent(target: target.rawValue, kind: kind.shortName, duration: duration)
        case .retry: metrics.retryScheduled(target: target.rawValue, duration: duration)
        case .failed: metrics.transmissionFailed(target: target.rawValue, kind: kind.shortName, duration: duration)
        }
    }

    func acknowledgementsRead(delivered: Int, read: Int, failed: Int) {
        metrics.acknowledgements(target: "mssante", kind: "delivered", count: delivered)
        metrics.acknowledgements(target: "mssante", kind: "read", count: read)
        metrics.acknowledgements(target: "mssante", kind: "failed", count: failed)
    }

    func targetFault(target: String, active: Bool) {
        metrics.targetFault(target: target, active: active)
    }
}

/// `[http] metrics_port` for `passerelle run` (the demo's gateway too): the Prometheus registry
/// fed by the gateway's events, the loopback status endpoint (`/health`, `/ready`, `/metrics`),
/// a sampler for the queue gauges and the certificate days left, and the daily certificate
/// expiry log line.
///
/// Use: make the monitor, pass ``events`` to `GatewayService.make`, then ``start(…)`` with the
/// service's journal; ``stop()`` at shutdown.
final class ServiceMonitor: Sendable {
    let registry: MetricsRegistry
    let metrics: GatewayMetrics
    let events: any GatewayEvents
    private let running = Mutex<(server: StatusServer, sampler: Task<Void, Never>)?>(nil)
    private static let bootstrapped = Mutex(false)
    let logger = Logger(label: "passerelle.monitor")

    /// A fresh registry, also made the process-wide swift-metrics backend (first monitor only).
    init() {
        registry = MetricsRegistry()
        metrics = GatewayMetrics(factory: registry.factory)
        events = MetricsEvents(metrics: metrics)
        let first = Self.bootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        if first { registry.bootstrap() }
    }

    /// The port the status endpoint listens on, once started.
    var port: UInt16? { running.withLock { $0?.server.port } }

    /// Opens the status endpoint on 127.0.0.1:`port` (0: any free port; `[console] address`
    /// when the console is on) and starts sampling. `loaded`: the service's key material; reused
    /// when it holds both certificates, so the .p12 files are opened once per run (else the
    /// probe loads them itself, once).
    func start(configuration c: PasserelleConfiguration, journal: any JournalStore, port: UInt16, loaded: KeyMaterial? = nil,
               sampleInterval: Duration = .seconds(5)) async throws(StatusServer.StartError) {
        let source = KeyMaterialSource(c.certificates)
        let keys = if let loaded, loaded.authentication != nil, loaded.signing != nil {
            CertificateProbe.Keys(loaded: loaded, source: source)
        } else {
            CertificateProbe.Keys(source: source)
        }
        let probes: [any ReadinessProbe] = [JournalProbe(journal: journal, configuration: c.journal,
                                                                    minimumFreeBytes: 3 * Int64(c.cda.maxPDFBytes))]
            + CertificateRole.allCases.map { CertificateProbe(role: $0, keys: keys, warningDays: c.certificates.expiryWarningDays) }
            + (c.dmp.enabled ? c.dmp.endpoint.map { [EndpointProbe(name: "dmp endpoint", url: $0)] } ?? [] : [])
        // The console's overview: the same journal, the same probes as /ready, the same certificates.
        let console = c.console.enabled ? Console(
            journal: journal, targets: Self.targets(c), timeZone: TimeZone(identifier: c.report.timeZone) ?? .current,
            report: ConsoleReportSource(store: journal, settings: c.report, title: c.structure.name),
            security: Self.consoleSecurity(c.console), operations: journal as? any OperatorQueue,
            events: journal as? any ConsoleEventLog,
            certificates: { [warningDays = c.certificates.expiryWarningDays] in
                keys.summary(warningDays: warningDays)?.reports.map {
                    ConsoleCertificate(role: $0.label, notAfter: $0.certificate?.notAfter, daysLeft: $0.daysLeft, state: $0.state.description)
                } ?? []
            }) : nil
        let tls = c.console.enabled && c.console.tls ? try Self.consoleIdentity(c, loaded: loaded) : nil
        let server = try await StatusServer.start(host: c.console.enabled ? c.console.address : "127.0.0.1", port: port,
                                                  metrics: registry, probes: probes, console: console, tls: tls)
        let targets = Self.targets(c)
        let sampler = Task { [metrics, logger] in
            var daily = DailySchedule()
            while !Task.isCancelled {
                await Self.sampleQueues(journal, targets: targets, metrics: metrics, logger: logger)
                if let summary = keys.summary(warningDays: c.certificates.expiryWarningDays) {
                    for report in summary.reports { if let days = report.daysLeft { metrics.certificate(role: report.label, daysLeft: days) } }
                    if daily.isDue() { Self.logExpiry(summary, logger: logger) }
                }
                try? await Task.sleep(for: sampleInterval)
            }
        }
        running.withLock { $0 = (server, sampler) }
        let base = Self.url(host: server.host, port: server.port, tls: tls != nil)
        logger.info("status endpoint listening", metadata: ["url": "\(base)/", "paths": "/health /ready /metrics\(console == nil ? "" : " /console/")"])
        if console != nil {
            logger.info("console listening", metadata: ["url": "\(base)/console/", "login": "\(c.console.hasLogin ? "accounts" : "none (loopback)")"])
        }
    }

    static func url(host: String, port: UInt16, tls: Bool = false) -> String {
        let scheme = tls ? "https" : "http"
        return host.contains(":") ? "\(scheme)://[\(host)]:\(port)" : "\(scheme)://\(host):\(port)"
    }

    /// `[console]` as the web server takes it.
    static func consoleSecurity(_ c: PasserelleConfiguration.Console) -> ConsoleSecurity {
        ConsoleSecurity(accountsFile: c.accountsFile, sessionIdle: .seconds(c.sessionIdleMinutes * 60), sessionMax: .seconds(c.sessionMaxHours * 3600),
                        lockoutAttempts: c.lockoutAttempts, lockout: .seconds(c.lockoutMinutes * 60),
                        trustedProxy: c.trustedProxy, userHeader: c.userHeader, secureCookies: c.tls)
    }

    /// The console's TLS identity: `[console] tls_identity`, else the structure's authentication
    /// certificate — the bundle the service already loaded when there is one, else loaded here
    /// with the passphrase from [certificates] (the one secret source).
    static func consoleIdentity(_ c: PasserelleConfiguration, loaded: KeyMaterial?) throws(StatusServer.StartError) -> PKCS12Bundle {
        if c.console.tlsIdentity == nil, let bundle = loaded?.authentication { return bundle }
        let path = c.console.tlsIdentity ?? c.certificates.authentication
        do {
            let passphrase = try Passphrase.read(from: KeyMaterialSource(c.certificates).passphrase)
            return try PKCS12Bundle.load(path: path, passphrase: passphrase)
        } catch {
            throw .tls("\(path): \(error)")
        }
    }

    func stop() {
        running.withLock { state in
            state?.sampler.cancel()
            state?.server.stop()
            state = nil
        }
    }

    /// The targets switched on, for which the queue gauges are kept (0 when empty).
    static func targets(_ c: PasserelleConfiguration) -> [Destination] {
        (c.dmp.enabled ? [.dmp] : []) + (c.mssante.enabled ? [.mssantePS, .mssantePatient] : [])
    }

    /// Queue depth (queued, retry-wait and sending) and the oldest waiting age per target: index
    /// ranges over the waiting rows only (not a count of the whole journal every 5 s).
    static func sampleQueues(_ journal: any JournalStore, targets: [Destination], metrics: GatewayMetrics, logger: Logger) async {
        do {
            let counts = try await journal.waitingCounts()
            for target in Set(targets + counts.map(\.target)).sorted(by: { $0.rawValue < $1.rawValue }) {
                let depth = counts.filter { $0.target == target }.reduce(0) { $0 + $1.count }
                let oldest = depth > 0 ? try await journal.oldestWaiting(target: target) : nil
                metrics.queue(target: target.rawValue, depth: depth, oldestWaiting: oldest.map { Date().timeIntervalSince($0) })
            }
        } catch {
            logger.warning("cannot sample the queue", metadata: ["error": "\(error)"])
        }
    }

    /// One line per certificate: what an operator greps for before a renewal is late.
    static func logExpiry(_ summary: CertificateCheckSummary, logger: Logger) {
        for report in summary.reports {
            var meta: Logger.Metadata = ["role": "\(report.label)", "state": "\(report.state)", "status": "\(report.status)"]
            if let days = report.daysLeft { meta["days_left"] = "\(days)" }
            if let notAfter = report.certificate?.notAfter { meta["not_after"] = "\(ISO8601DateFormatter().string(from: notAfter))" }
            switch report.state {
            case .ok: logger.info("certificate expiry", metadata: meta)
            case .warning: logger.warning("certificate expiry", metadata: meta)
            case .critical, .unknown: logger.error("certificate expiry", metadata: meta)
            }
        }
    }
}
