import Foundation
import Handoff
import Intake
import Journal
import Logging
import PasserelleCore
import Synchronization
import Testing

/// Log lines and target-fault events of one gateway run, to assert what an operator sees.
final class FaultObserver: GatewayEvents, Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    let lines = Mutex<[Line]>([])
    let faults = Mutex<[(target: String, active: Bool)]>([])

    var logger: Logger {
        var logger = Logger(label: "passerelle.test") { _ in Handler(observer: self) }
        logger.logLevel = .trace
        return logger
    }

    /// The alert lines (error level, "ALERT …") for `target`.
    func alerts(_ target: String) -> [Line] {
        lines.withLock { $0.filter { $0.level == .error && $0.message.hasPrefix("ALERT") && $0.metadata["target"] == target } }
    }

    func recoveries(_ target: String) -> [Line] {
        lines.withLock { $0.filter { $0.message == "target available again" && $0.metadata["target"] == target } }
    }

    /// Every error-level line (alerts and dead letters).
    var errors: [Line] { lines.withLock { $0.filter { $0.level >= .error } } }

    func faultEvents(_ target: String) -> [Bool] { faults.withLock { $0.filter { $0.target == target }.map(\.active) } }

    struct Handler: LogHandler {
        let observer: FaultObserver
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var merged = metadata
            if let own = event.metadata { merged.merge(own) { $1 } }
            let line = Line(level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" })
            observer.lines.withLock { $0.append(line) }
        }
    }

    func documentReceived(kind: DocumentKind?, source: IntakeOrigin) {}
    func documentRefused(reason: String, source: IntakeOrigin) {}
    func documentBuilt(kind: DocumentKind) {}
    func sendFinished(target: Destination, kind: DocumentKind, result: SendResult, duration: Duration) {}
    func targetFault(target: String, active: Bool) { faults.withLock { $0.append((target, active)) } }
}

/// What a fault run left in the journal for one transmission.
struct Observed {
    var transmission: Transmission
    var attempts: [Attempt]

    /// Seconds between the end of each failed attempt and the start of the next.
    var gaps: [TimeInterval] {
        zip(attempts, attempts.dropFirst()).compactMap { a, b in a.endedAt.map { b.startedAt.timeIntervalSince($0) } }
    }

    /// The backoff of `policy` (retry_initial_seconds 1, doubling, jitter 0.5): each wait is at
    /// least half its base delay (the decision) and not far beyond the base (slack: a loaded machine polls late).
    func expectBackoff(initial: TimeInterval, multiplier: Double = 2, slack: TimeInterval = 6,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        for (i, gap) in gaps.enumerated() {
            let base = initial * pow(multiplier, Double(i))
            #expect(gap >= base * 0.5 - 0.05 && gap <= base + slack, "wait \(i + 1): \(gap) s, base \(base) s", sourceLocation: sourceLocation)
        }
    }
}

extension JournalStore {
    func observed(_ id: Int64) async throws -> Observed {
        Observed(transmission: try #require(try await transmission(id: id)), attempts: try await attempts(transmissionID: id))
    }
}
