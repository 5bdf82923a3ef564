import Foundation
import Handoff
import Journal
import Logging
import PasserelleCore
import Synchronization

/// Alerts for faults of a peer (the DMP endpoint, the SMTP relay, the IMAP mailbox) rather
/// than of one document. While the DMP is down every transmission fails the same way; the
/// operator needs one alert naming the target and the cause, not one per document and attempt,
/// and one line when it clears.
///
/// An episode opens at the first target-level failure (network, TLS, certificate, HTTP 5xx,
/// DMP "service unavailable", SMTP 4xx) and closes at the next answer that shows the peer
/// working (a success, or a refusal about one document). Opening logs one error line and
/// sets the `targetFault` event; closing logs one notice line and clears it. The lines carry
/// the target and a summary of the cause (codes, library texts): never a document's data.
public final class FaultAlerts: Sendable {
    /// One open episode.
    public struct Episode: Sendable, Hashable {
        public var cause: String
        public var since: Date
        /// Failures seen in this episode (the first one included).
        public var failures: Int
    }

    private let episodes = Mutex<[String: Episode]>([:])
    let events: any GatewayEvents
    let logger: Logger

    public init(events: any GatewayEvents = NoGatewayEvents(), logger: Logger = Logger(label: "passerelle.alerts")) {
        self.events = events
        self.logger = logger
    }

    /// The episodes open now, by target.
    public var open: [String: Episode] { episodes.withLock { $0 } }

    /// A target-level failure of `target`. Returns true when it opened an episode (and alerted).
    @discardableResult
    public func failed(_ target: String, cause: String, now: Date = Date()) -> Bool {
        let opened = episodes.withLock { e -> Bool in
            if e[target] != nil {
                e[target]!.failures += 1
                return false
            }
            e[target] = Episode(cause: cause, since: now, failures: 1)
            return true
        }
        guard opened else { return false }
        logger.error("ALERT target unavailable: transmissions wait and are retried with backoff; fix the cause, nothing is lost",
                     metadata: ["target": "\(target)", "cause": "\(LogRedaction.redact(cause))"])
        events.targetFault(target: target, active: true)
        return true
    }

    /// The peer answered properly. Returns true when it closed an episode (and logged the recovery).
    @discardableResult
    public func recovered(_ target: String, now: Date = Date()) -> Bool {
        // Cheap when nothing is open: the common path of every successful send.
        guard let closed = episodes.withLock({ $0.removeValue(forKey: target) }) else { return false }
        logger.notice("target available again", metadata: [
            "target": "\(target)", "failures": "\(closed.failures)",
            "outage_s": "\(Int(now.timeIntervalSince(closed.since).rounded()))", "cause": "\(closed.cause)"])
        events.targetFault(target: target, active: false)
        return true
    }

    /// Feeds one recorded outcome: a target-level failure or a sign that the target works.
    public func record(_ outcome: TransmissionOutcome, target: String, now: Date = Date()) {
        if let cause = Self.targetFault(outcome) { failed(target, cause: cause, now: now) } else { recovered(target, now: now) }
    }

    /// The summary of a failure that concerns the peer rather than the document, or nil.
    /// Server texts are left out (a reply may quote a recipient address); codes stay.
    static func targetFault(_ outcome: TransmissionOutcome) -> String? {
        guard case .failure(let cause, _) = outcome else { return nil }
        switch cause.underlying {
        case .network(let message): return "network: \(message.prefix(300))"
        case .httpServerError(let status, _): return "HTTP \(status)"
        case .dmpServiceUnavailable: return "DMP service unavailable (temporary registry error)"
        case .smtpTemporary(let code, _): return "SMTP \(code) (temporary)"
        case .schema, .identity, .smtpPermanent, .dmpBusinessRefusal, .permanent, .retryAfter: return nil
        }
    }
}
