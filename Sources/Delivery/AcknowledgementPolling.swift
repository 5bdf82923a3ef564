import Foundation
import Handoff
import Journal
import Logging
import MSSante

/// Reads MSSanté acknowledgements (DSN, MDN) from the application mailbox on a timer and
/// records them in the journal. An unreachable mailbox is logged once per outage and tried
/// again at the next tick: acknowledgements wait on the server, nothing is lost.
public struct AcknowledgementPolling: Sendable {
    public let poller: AcknowledgementPoller
    public let journal: any AcknowledgementJournal
    public let interval: Duration
    let events: any GatewayEvents
    let logger: Logger

    public init(poller: AcknowledgementPoller, journal: any AcknowledgementJournal, interval: Duration = .seconds(60),
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
    package func makeAlerts() -> FaultAlerts { FaultAlerts(events: events, logger: logger) }

    /// Polls until the task is cancelled.
    package func run(alerts: FaultAlerts? = nil) async {
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

/// Records the reports the MSSanté poller reads in the journal: the transmission found by
/// Message-ID, then delivered / read / failed. The journal side of ``MSSante/AcknowledgementPoller``.
public struct JournalAcknowledgementRecorder: AcknowledgementRecorder {
    public let journal: any AcknowledgementJournal

    public init(journal: any AcknowledgementJournal) { self.journal = journal }

    public func record(_ report: ParsedReport, now: Date, summary: inout PollSummary) async throws(AcknowledgementError) -> ReportDisposition {
        guard var transmission = try await match(report) else {
            summary.unmatched += 1
            return .unmatched
        }
        // A report can overtake the sender's own record of the send (the relay answered, the
        // worker has not written `sent` yet): applied now it would be dropped as out of order.
        if transmission.isBeingSent(now: now) { return .later }
        if transmission.awaitsInterruptedOutcome(now: now) {
            // The send was interrupted by a crash, yet the peer reports on the mail: it went out.
            // Recorded as sent, it is not mailed a second time.
            do {
                if let confirmed = try await journal.confirmInterruptedSend(transmissionID: transmission.id, now: now) {
                    transmission = confirmed
                    summary.interruptedConfirmed += 1
                }
            } catch { throw .notRecorded(error.description) }
        }
        for acknowledgement in report.acknowledgements {
            do {
                switch acknowledgement.kind {
                case .delivered:
                    _ = try await journal.acknowledge(transmissionID: transmission.id, kind: .delivered, detail: acknowledgement.detail, now: now)
                    summary.delivered += 1
                case .read:
                    _ = try await journal.acknowledge(transmissionID: transmission.id, kind: .read, detail: acknowledgement.detail, now: now)
                    summary.read += 1
                case .failed:
                    _ = try await journal.acknowledgeFailure(transmissionID: transmission.id, reason: acknowledgement.detail, now: now)
                    summary.failed += 1
                case .ignored:
                    summary.ignored += 1
                }
            } catch {
                // A late report that would move the transmission backwards (delivered after a
                // failure, a second failure) is kept out of the journal but still handled.
                guard case .illegalTransition = error else { throw .notRecorded(error.description) }
                summary.ignored += 1
            }
        }
        return .handled
    }

    /// The transmission of the first of the report's Message-IDs the journal knows.
    func match(_ report: ParsedReport) async throws(AcknowledgementError) -> Transmission? {
        for id in report.messageIDs {
            do {
                if let found = try await journal.transmission(messageID: id) { return found }
            } catch { throw .notRecorded(error.description) }
        }
        return nil
    }
}

extension AcknowledgementPoller {
    /// One pass over the inbox, each report recorded in `journal`.
    public func poll(journal: any AcknowledgementJournal, now: Date = Date()) async throws(AcknowledgementError) -> PollSummary {
        try await poll(recorder: JournalAcknowledgementRecorder(journal: journal), now: now)
    }
}
