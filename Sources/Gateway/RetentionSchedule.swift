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

/// The service's availability record (the usage report's "disponibilité"): `passerelle run`
/// records its start, beats every `interval` and records its stop, in the journal's
/// `service_runs`. A crash ends the run at its last beat, so the report undercounts by at most
/// one interval. A failed beat is logged and tried again at the next one.
public struct ServiceHeartbeat: Sendable {
    public let journal: any JournalStore
    public let interval: Duration
    let id: String
    let host: String
    let pid: Int
    let startedAt: Date

    public init(journal: any JournalStore, interval: Duration = .seconds(60), now: Date = Date()) {
        self.journal = journal
        self.interval = interval
        startedAt = now
        host = ProcessInfo.processInfo.hostName
        pid = Int(ProcessInfo.processInfo.processIdentifier)
        id = "\(host):\(pid):\(Int64((now.timeIntervalSince1970 * 1000).rounded()))"
    }

    public func beat(stopped: Bool = false, logger: Logger) async {
        do {
            try await journal.recordServiceRun(id: id, host: host, pid: pid, startedAt: startedAt, now: Date(), stopped: stopped)
        } catch {
            logger.warning("availability: the run could not be recorded in the journal; tried again at the next beat",
                           metadata: ["error": "\(error.description)"])
        }
    }

    /// Until cancelled.
    public func run(logger: Logger) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            await beat(logger: logger)
        }
    }
}
