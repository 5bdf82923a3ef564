import CoreMetrics
import Prometheus

/// The Prometheus registry behind `/metrics`, and the swift-metrics factory that feeds it.
public struct MetricsRegistry: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: any MetricsFactory

    /// A fresh registry; the send-duration histogram gets buckets from 10 ms to 2 min, the
    /// range of a DMP or SMTP exchange.
    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["passerelle_send_duration_seconds"] = [
            .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120),
        ]
        self.registry = registry
        self.factory = factory
    }

    /// The text exposition format (version 0.0.4).
    public func exposition() -> String { registry.emitToString() }

    /// Makes this registry the process-wide swift-metrics backend (once per process).
    public func bootstrap() { MetricsSystem.bootstrap(factory) }
}
