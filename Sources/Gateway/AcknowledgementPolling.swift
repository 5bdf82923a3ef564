import Foundation
import Journal
import Logging
import MSSante

/// Reads MSSanté acknowledgements (DSN, MDN) from the application mailbox on a timer and
/// records them in the journal. An unreachable mailbox is logged once per outage and tried
/// again at the next tick: acknowledgements wait on the server, nothing is lost.
public struct AcknowledgementPolling: Sendable {
    public let poller: AcknowledgementPoller
    public let journal: any JournalStore
    public let interval: Duration
    let events: any GatewayEvents
    let logger: Logger

    public init(poller: AcknowledgementPoller, journal: any JournalStore, interval: Duration = .seconds(60),
                events: any GatewayEvents = NoGatewayEvents(), logger: Logger = Logger(label: "passerelle.acknowledgements")) {
        self.poller = poller
        self.journal = journal
        self.interval = interval
        self.events = events
        self.logger = logger
    }

    /// The alert target of the mailbox.
    public static let target = "mssante_imap"

    /// The alert episodes of this mailbox (one per outage, shared by every poll).
    func makeAlerts() -> FaultAlerts { FaultAlerts(events: events, logger: logger) }

    /// Polls until the task is cancelled.
    func run(alerts: FaultAlerts? = nil) async {
        let alerts = alerts ?? makeAlerts()
        while !Task.isCancelled {
            await pollOnce(alerts: alerts)
            try? await Task.sleep(for: interval)
        }
    }

    /// One pass over the mailbox. An unreachable mailbox opens (or continues) an episode of
    /// `alerts`: sent transmissions stay sent, their acknowledgements wait on the server.
    public func pollOnce(alerts: FaultAlerts) async {
        do {
            let summary = try await poller.poll(journal: journal)
            alerts.recovered(Self.target)
            events.acknowledgementsRead(delivered: summary.delivered, read: summary.read, failed: summary.failed)
            if summary.messages > 0 {
                logger.info("acknowledgements read", metadata: [
                    "delivered": "\(summary.delivered)", "read": "\(summary.read)", "failed": "\(summary.failed)",
                    "ignored": "\(summary.ignored)", "unmatched": "\(summary.unmatched)"])
            }
            if summary.oversized > 0 {
                logger.warning("messages too large to be acknowledgements moved unread to the unmatched folder",
                               metadata: ["count": "\(summary.oversized)", "max_bytes": "\(poller.configuration.maxReportBytes)"])
            }
            if summary.interruptedConfirmed > 0 {
                logger.notice("interrupted sends confirmed by their acknowledgements: not sent again",
                              metadata: ["count": "\(summary.interruptedConfirmed)"])
            }
        } catch {
            alerts.failed(Self.target, cause: "cannot read the acknowledgement mailbox: \(String(describing: error).prefix(300))")
        }
    }
}
