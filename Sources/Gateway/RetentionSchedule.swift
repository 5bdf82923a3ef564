import Foundation
import Journal
import Logging

/// The service's own purge (`[journal] retention_days`): a hospital engineer sets the retention
/// once and expects it kept without a cron job of their own, so `passerelle run` purges at
/// start (after a delay, not to compete with the resume) and every day after. Each purge is one
/// audited operator action (`passerelle audit --action purge`) by the service account.
/// PostgreSQL: every node runs it; they lock the same rows, so each set is purged once.
public struct RetentionSchedule: Sendable {
    public let journal: any JournalRetention
    public let days: Int
    public let firstDelay: Duration
    public let interval: Duration
    /// The time each purge counts from (injectable for tests).
    let clock: @Sendable () -> Date

    public init(journal: any JournalRetention, days: Int, firstDelay: Duration = .seconds(300), interval: Duration = .seconds(86_400),
                clock: @escaping @Sendable () -> Date = { Date() }) {
        self.journal = journal
        self.days = days
        self.firstDelay = firstDelay
        self.interval = interval
        self.clock = clock
    }

    /// Purges what ended more than ``days`` before `now`; failures are logged and retried next time.
    @discardableResult
    public func purgeOnce(now: Date? = nil, logger: Logger) async -> PurgeResult? {
        let now = now ?? clock()
        let cutoff = now.addingTimeInterval(-Double(days) * 86_400)
        do {
            let result = try await journal.purge(endedBefore: cutoff, dryRun: false,
                                                 OperatorRequest(selection: "automatic retention_days=\(days)"), now: now)
            if result.sets > 0 {
                logger.notice("retention: document content purged", metadata: [
                    "sets": "\(result.sets)", "documents": "\(result.documents)", "blobs": "\(result.blobs)",
                    "bytes": "\(result.bytes)", "ended_before": "\(Date.ISO8601FormatStyle().format(cutoff))",
                ])
            }
            return result
        } catch {
            logger.error("retention: purge failed; tried again in a day (or run `passerelle purge`)", metadata: ["error": "\(error.description)"])
            return nil
        }
    }

    /// Until cancelled.
    public func run(logger: Logger) async {
        do { try await Task.sleep(for: firstDelay) } catch { return }
        while !Task.isCancelled {
            await purgeOnce(logger: logger)
            do { try await Task.sleep(for: interval) } catch { return }
        }
    }
}
