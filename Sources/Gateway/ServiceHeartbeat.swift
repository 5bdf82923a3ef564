import Foundation
import Journal
import Logging

/// The service's availability record (the usage report's "disponibilité"): `passerelle run`
/// records its start, beats every `interval` and records its stop, in the journal's
/// `service_runs`. A crash ends the run at its last beat, so the report undercounts by at most
/// one interval. A failed beat is logged and tried again at the next one.
public struct ServiceHeartbeat: Sendable {
    public let journal: any ServiceRunJournal
    public let interval: Duration
    let id: String
    let host: String
    let pid: Int
    let startedAt: Date

    public init(journal: any ServiceRunJournal, interval: Duration = .seconds(60), now: Date = Date()) {
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
