import Foundation
import Handoff
import Journal
import Logging
import PasserelleCore
import Synchronization
import TestHooks

/// How the workers use the queue.
public struct WorkerSettings: Sendable {
    /// Lease on a claimed transmission (must exceed the longest send).
    public var lease: TimeInterval
    /// Idle wait between two empty polls of the queue.
    public var pollInterval: TimeInterval
    /// Unique per process: `host:pid:start`, so leases name who holds them.
    public var owner: String

    public init(lease: TimeInterval = 300, pollInterval: TimeInterval = 0.5,
                owner: String = "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UInt64(Date().timeIntervalSince1970))") {
        self.lease = lease
        self.pollInterval = pollInterval
        self.owner = owner
    }
}

/// Sends queued transmissions: for each sender, `concurrency` loops that claim the next due
/// transmission (lease), send it and record the outcome; the journal's ``RetryPolicy`` decides
/// retry-wait or failed. A stop request lets each loop finish the send it is in, then return.
public final class TransmissionWorkers: Sendable {
    public let journal: any DeliveryQueue
    public let blobs: BlobStore
    public let senders: [(any TransmissionSender, Int)]
    public let settings: WorkerSettings
    /// Told about each finished send (metrics).
    public let events: any GatewayEvents
    /// One alert per outage of a target, not one per transmission.
    public let alerts: FaultAlerts
    /// Where a claim's document comes from (by default: what admission left in memory for its
    /// first send, `admitted`, else the journal's `blobs`).
    public let documents: any ClaimedDocumentSource
    let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private let wake = WakeSignal()
    /// The recovery loop's own: it wakes on its period or at stop, not on every admission (it
    /// ran its journal write for each document queued).
    private let recoveryWake = WakeSignal()

    /// - Parameter senders: each sender with its number of concurrent loops (≥ 1).
    public init(journal: any DeliveryQueue, blobs: BlobStore, senders: [(any TransmissionSender, Int)],
                settings: WorkerSettings, events: any GatewayEvents = NoGatewayEvents(),
                admitted: AdmittedDocuments = AdmittedDocuments(), documents: (any ClaimedDocumentSource)? = nil,
                logger: Logger = Logger(label: "passerelle.workers")) {
        self.documents = documents ?? JournaledDocuments(admitted: admitted, blobs: blobs)
        self.journal = journal
        self.blobs = blobs
        self.senders = senders
        self.settings = settings
        self.events = events
        self.logger = logger
        alerts = FaultAlerts(events: events, logger: logger)
    }

    /// Runs every loop until ``stop()``; returns when all have finished their current send.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for (sender, concurrency) in senders {
                for index in 0..<max(1, concurrency) {
                    group.addTask { await self.loop(sender, owner: "\(self.settings.owner):\(sender.target.rawValue):\(index)") }
                }
            }
            group.addTask { await self.recoveryLoop() }
        }
    }

    /// Asks the loops to stop after their current send.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
        recoveryWake.signal()
    }

    /// Wakes every idle loop at once (work was queued, for any target).
    public func poke() { wake.signal() }

    /// Wakes one idle loop of each target just queued: one document's transmission is claimed
    /// by one worker; waking all of them made the others claim in vain (a journal transaction
    /// each, per document).
    public func poke(_ targets: [Destination]) {
        for target in Set(targets) { wake.signalOne(key: target.rawValue) }
    }

    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// How often a held target (see ``TransmissionSender/holdReason(at:)``) is looked at again.
    static let holdRecheckInterval: TimeInterval = 5

    /// Takes back transmissions whose sender died (lease expired), periodically.
    func recoveryLoop() async {
        while !isStopping {
            do {
                let recovered = try await journal.recoverInterrupted(now: Date())
                for t in recovered {
                    logger.warning("interrupted send taken back (lease expired)", metadata: ["transmission": "\(t.id)", "document": "\(t.documentID)", "target": "\(t.target.rawValue)"])
                }
                if !recovered.isEmpty { wake.signal() }
            } catch {
                logger.error("lease recovery failed", metadata: ["error": "\(error)"])
            }
            await recoveryWake.wait(timeout: max(1, min(settings.lease / 4, 5)), until: { self.isStopping })
        }
    }

    func loop(_ sender: any TransmissionSender, owner: String) async {
        var held = false
        // Claimed by the previous completion's transaction: sent even when a stop came in
        // between (its lease would otherwise keep it from the next run until it expired).
        var carried: ClaimedTransmission?
        while !isStopping || carried != nil {
            if let next = carried {
                carried = await process(next, sender: sender, owner: owner)
                continue
            }
            if let reason = sender.holdReason(at: Date()) {
                // Held, not failed: the alert names the cause; nothing is claimed until it is fixed.
                alerts.failed(sender.target.rawValue, cause: "transmissions held: \(reason)")
                held = true
                await wake.wait(timeout: Self.holdRecheckInterval, until: { self.isStopping })
                continue
            }
            if held {
                held = false
                alerts.recovered(sender.target.rawValue)
            }
            let claim: ClaimedTransmission?
            do {
                claim = try await StageClock.measure(.journal, events) { () async throws(JournalError) in
                    try await journal.claimNext(target: sender.target, now: Date(), lease: settings.lease, owner: owner)
                }
            } catch {
                logger.error("cannot claim from the journal", metadata: ["target": "\(sender.target.rawValue)", "error": "\(error)"])
                await wake.wait(timeout: max(settings.pollInterval, 1), until: { self.isStopping })
                continue
            }
            guard let claim else {
                await wake.wait(timeout: settings.pollInterval, key: sender.target.rawValue, until: { self.isStopping })
                continue
            }
            carried = await process(claim, sender: sender, owner: owner)
        }
    }

    /// Sends `claim` and records the outcome; returns the next transmission of the same target
    /// when the completion could claim it in the same transaction (not when stopping or held).
    func process(_ claim: ClaimedTransmission, sender: any TransmissionSender, owner: String) async -> ClaimedTransmission? {
        let t = claim.transmission
        let meta: Logger.Metadata = ["transmission": "\(t.id)", "document": "\(t.documentID)", "version": "\(t.version)",
                                     "target": "\(t.target.rawValue)", "attempt": "\(t.attempts)",
                                     "ins": "\(claim.document.maskedINS ?? "-")"]
        let outcome: TransmissionOutcome
        let started = ContinuousClock.now
        do {
            let document = try await StageClock.measure(.journal, events) { () async throws(GatewayError) in
                try await documents.document(for: claim)
            }
            CrashPoint.reached(.beforeSend)
            outcome = await StageClock.$events.withValue(events) { await sender.send(claim, document: document) }
        } catch {
            outcome = .failure(.permanent("cannot read the journaled document: \(error.description)"))
        }
        CrashPoint.reached(.afterSend)
        let duration = ContinuousClock.now - started
        // What the peer's answer says of the target is known now, before the journal records it:
        // whoever sees the new state in the journal also sees the alert or the recovery.
        alerts.record(outcome, target: t.target.rawValue)
        let takeNext = !isStopping && sender.holdReason(at: Date()) == nil
        do {
            let (result, next) = try await record(outcome, of: claim, owner: owner, sentFor: duration, meta: meta,
                                                  thenClaim: takeNext ? t.target : nil)
            events.sendFinished(target: t.target, kind: claim.document.kind, result: SendResult(result.state), duration: duration)
            switch outcome {
            case .success:
                logger.info("sent", metadata: meta.merging(["state": "\(result.state.rawValue)"]) { $1 })
            case .partial(let pending, _, _) where pending.isEmpty:
                // Recipients refused for good: the transmission's last error names them (not logged: addresses).
                logger.warning("sent to some recipients; the others refused it for good (see the transmission's last error)",
                               metadata: meta.merging(["state": "\(result.state.rawValue)"]) { $1 })
            case .failure(let cause, _), .partial(_, let cause, _):
                var m = meta
                m["state"] = "\(result.state.rawValue)"
                m["error"] = "\(LogRedaction.redact("\(cause)"))"
                if let next = result.nextAttemptAt { m["next_attempt"] = "\(ISO8601DateFormatter().string(from: next))" }
                // A dead letter needs the operator: error. A retry is routine; an outage of the
                // target is alerted once by `alerts`, not once per transmission.
                if result.state == .failed {
                    logger.error("send failed for good", metadata: m)
                } else {
                    logger.notice(result.shouldAlert ? "send failed; will retry" : "send failed again; will retry", metadata: m)
                }
            }
            return next
        } catch {
            logger.error("cannot record the outcome; taken back when its lease ends and sent again (the peer recognises it)",
                         metadata: meta.merging(["error": "\(error)"]) { $1 })
            return nil
        }
    }

    /// Records the outcome (with the next claim of `next`'s target in the same transaction),
    /// trying again each second while the journal cannot be written (a full disk) and the lease
    /// still runs: a document already delivered is then not sent a second time once space is
    /// back. A retry records the outcome alone: the loop claims the usual way afterwards.
    func record(_ outcome: TransmissionOutcome, of claim: ClaimedTransmission, owner: String, sentFor: Duration,
                meta: Logger.Metadata, thenClaim next: Destination?) async throws(JournalError) -> (CompletionResult, ClaimedTransmission?) {
        let budget = Duration.seconds(settings.lease * 0.8) - sentFor
        let started = ContinuousClock.now
        var reported = false
        var next = next
        while true {
            do {
                return try await StageClock.measure(.journal, events) { () async throws(JournalError) in
                    if let target = next {
                        return try await journal.complete(claim, owner: owner, outcome: outcome, now: Date(),
                                                          thenClaim: target, lease: settings.lease)
                    }
                    return (try await journal.complete(claim, owner: owner, outcome: outcome, now: Date()), nil)
                }
            } catch {
                if case .leaseLost = error { throw error }
                if isStopping || ContinuousClock.now - started + .seconds(1) > budget { throw error }
                if !reported {
                    reported = true
                    logger.error("cannot record the outcome; trying again while the lease runs",
                                 metadata: meta.merging(["error": "\(error)"]) { $1 })
                }
                next = nil
                try? await Task.sleep(nanoseconds: 1_000_000_000)
            }
        }
    }
}

/// Where a worker gets the document of its claim. The workers know the queue and this, not
/// where either keeps its bytes.
public protocol ClaimedDocumentSource: Sendable {
    func document(for claim: ClaimedTransmission) async throws(GatewayError) -> OutgoingDocument
}

/// The gateway's source: what admission left in memory for a first send, else the journal's
/// blobs, read back and verified on the blob threads (file reads never hold the cooperative pool).
public struct JournaledDocuments: ClaimedDocumentSource {
    public let admitted: AdmittedDocuments
    public let blobs: BlobStore

    public init(admitted: AdmittedDocuments, blobs: BlobStore) {
        self.admitted = admitted
        self.blobs = blobs
    }

    public func document(for claim: ClaimedTransmission) async throws(GatewayError) -> OutgoingDocument {
        if let held = admitted.take(claim) { return held }
        let (stored, blobs) = (claim.document, blobs)
        do { return try await blobs.onBlobThreads { try OutgoingDocument.load(stored, blobs: blobs) } } catch let error as GatewayError {
            throw error
        } catch { throw .record("\(error)") }
    }
}
