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

    /// Polls until the task is cancelled.
    func run() async {
        var failing = false
        while !Task.isCancelled {
            await pollOnce(failing: &failing)
            try? await Task.sleep(for: interval)
        }
    }

    /// One read of the mailbox; `failing` tracks an outage so it is logged once.
    func pollOnce(failing: inout Bool) async {
        do {
            let summary = try await poller.poll(journal: journal)
            if failing { logger.notice("acknowledgement mailbox reachable again") }
            failing = false
            events.acknowledgementsRead(delivered: summary.delivered, read: summary.read, failed: summary.failed)
            if summary.messages > 0 {
                logger.info("acknowledgements read", metadata: [
                    "delivered": "\(summary.delivered)", "read": "\(summary.read)", "failed": "\(summary.failed)",
                    "ignored": "\(summary.ignored)", "unmatched": "\(summary.unmatched)"])
            }
            if summary.interruptedConfirmed > 0 {
                logger.notice("interrupted sends confirmed by their acknowledgements: not sent again",
                              metadata: ["count": "\(summary.interruptedConfirmed)"])
            }
        } catch {
            if !failing { logger.error("cannot read the acknowledgement mailbox; retrying", metadata: ["error": "\(error)"]) }
            failing = true
        }
    }
}
