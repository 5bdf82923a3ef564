import CoreMetrics
import Foundation

/// The gateway's metrics, one method per event, so every stage names and labels them the
/// same way (Prometheus refuses one name with two label sets). Labels carry document kinds
/// and targets only — never a patient value.
///
/// Metric names (Prometheus, as exported on `/metrics`):
/// - `passerelle_documents_received_total{kind,source}` — accepted into the journal
/// - `passerelle_documents_refused_total{reason}` — moved to `error/`
/// - `passerelle_documents_built_total{kind}` — CDA built (or producer CDA checked)
/// - `passerelle_transmissions_sent_total{target,kind}` — accepted by the DMP / SMTP server
/// - `passerelle_transmissions_failed_total{target,kind}` — failed for good (dead letter)
/// - `passerelle_transmission_retries_total{target}` — temporary failures put back in wait
/// - `passerelle_acknowledgements_total{target,kind}` — DSN/MDN matched (delivered, read, failed)
/// - `passerelle_send_duration_seconds{target}` — histogram of one send
/// - `passerelle_queue_depth{target}` — transmissions waiting
/// - `passerelle_oldest_waiting_seconds{target}` — age of the oldest waiting transmission
/// - `passerelle_certificate_days_left{role}` — days before the certificate expires
/// - `passerelle_target_unavailable{target}` — 1 while a peer is in a fault episode (alerted once), else 0
/// - `passerelle_alerts_total{target}` — fault episodes opened (one alert each)
public struct GatewayMetrics: Sendable {
    private let factory: any MetricsFactory

    /// Metrics through `factory` (the process-wide `MetricsSystem.factory` by default).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    public func documentReceived(kind: String, source: String) {
        Counter(label: "passerelle_documents_received_total", dimensions: [("kind", kind), ("source", source)], factory: factory).increment()
    }

    public func documentRefused(reason: String) {
        Counter(label: "passerelle_documents_refused_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    public func documentBuilt(kind: String) {
        Counter(label: "passerelle_documents_built_total", dimensions: [("kind", kind)], factory: factory).increment()
    }

    public func transmissionSent(target: String, kind: String, duration: Duration) {
        Counter(label: "passerelle_transmissions_sent_total", dimensions: [("target", target), ("kind", kind)], factory: factory).increment()
        recordSend(target: target, duration: duration)
    }

    public func transmissionFailed(target: String, kind: String, duration: Duration?) {
        Counter(label: "passerelle_transmissions_failed_total", dimensions: [("target", target), ("kind", kind)], factory: factory).increment()
        if let duration { recordSend(target: target, duration: duration) }
    }

    public func retryScheduled(target: String, duration: Duration?) {
        Counter(label: "passerelle_transmission_retries_total", dimensions: [("target", target)], factory: factory).increment()
        if let duration { recordSend(target: target, duration: duration) }
    }

    /// `kind`: delivered, read or failed.
    public func acknowledgement(target: String, kind: String) {
        acknowledgements(target: target, kind: kind, count: 1)
    }

    /// `count` acknowledgements of one kind (a poll of the mailbox reads several).
    public func acknowledgements(target: String, kind: String, count: Int) {
        guard count > 0 else { return }
        Counter(label: "passerelle_acknowledgements_total", dimensions: [("target", target), ("kind", kind)], factory: factory)
            .increment(by: count)
    }

    public func queue(target: String, depth: Int, oldestWaiting: TimeInterval?) {
        Gauge(label: "passerelle_queue_depth", dimensions: [("target", target)], factory: factory).record(depth)
        Gauge(label: "passerelle_oldest_waiting_seconds", dimensions: [("target", target)], factory: factory)
            .record(max(0, oldestWaiting ?? 0))
    }

    /// `role`: authentication or signing.
    public func certificate(role: String, daysLeft: Int) {
        Gauge(label: "passerelle_certificate_days_left", dimensions: [("role", role)], factory: factory).record(daysLeft)
    }

    /// A peer's fault episode opened (`active`) or closed.
    public func targetFault(target: String, active: Bool) {
        Gauge(label: "passerelle_target_unavailable", dimensions: [("target", target)], factory: factory).record(active ? 1 : 0)
        if active { Counter(label: "passerelle_alerts_total", dimensions: [("target", target)], factory: factory).increment() }
    }

    private func recordSend(target: String, duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        Timer(label: "passerelle_send_duration_seconds", dimensions: [("target", target)], factory: factory)
            .recordNanoseconds(nanoseconds)
    }
}
