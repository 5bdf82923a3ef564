import Admission
import Delivery
import Foundation
import Handoff
import Intake
import Journal
import Logging
import PasserelleCore
import Signing
import Synchronization

/// The running gateway (`passerelle run`): the intake sources (watched folder, MLLP listener),
/// each driven by an ``IntakeDriver``, the pipeline and the workers. Wiring only: what the
/// intake does is in Intake (the sources) and ``IntakeDriver``.
///
/// ``run()`` first finishes what a previous process left (documents accepted but not queued;
/// the folder source then takes again the claims left in work/), then serves until ``stop()``:
/// intake stops at once (the claims in flight are acknowledged), each worker finishes the send
/// it is in (bounded by `shutdownTimeout`), and ``run()`` returns.
public final class GatewayService: Sendable {
    /// The whole journal, for the wiring around the service (status endpoint, bench); the
    /// stages each hold only their part of it.
    public let journal: any JournalStore
    public let pipeline: Pipeline
    public let folder: FolderSource
    public let workers: TransmissionWorkers
    /// The MLLP source (nil: `[mllp]` not enabled); it listens once ``run()`` started it.
    public let mllp: MLLPSource?
    /// Inbox claims processed at once (`[folders] intake_concurrency`).
    public let intakeConcurrency: Int
    public let shutdownTimeout: TimeInterval
    /// MSSanté acknowledgements read on a timer (nil: no `[mssante] imap_url`).
    public let acknowledgements: AcknowledgementPolling?
    /// The key material ``make(configuration:templates:extraSenders:pollInterval:events:)``
    /// loaded once for every part (nil when no part needs a key): the status endpoint's
    /// certificate checks reuse it instead of opening the .p12 files again.
    public let keyMaterial: KeyMaterial?
    /// The daily purge (nil: no `[journal] retention_days`, content kept for ever).
    public let retention: RetentionSchedule?
    /// The run's start, beats and stop in the journal (nil: not recorded, e.g. some tests).
    public let heartbeat: ServiceHeartbeat?
    let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let stopSignal = WakeSignal()

    public init(journal: any JournalStore, pipeline: Pipeline, folder: FolderSource, workers: TransmissionWorkers, mllp: MLLPSource?, intakeConcurrency: Int = 4,
                shutdownTimeout: TimeInterval = 30, acknowledgements: AcknowledgementPolling? = nil, keyMaterial: KeyMaterial? = nil,
                retention: RetentionSchedule? = nil, heartbeat: ServiceHeartbeat? = nil,
                logger: Logger = Logger(label: "passerelle.service")) {
        self.journal = journal
        self.retention = retention
        self.heartbeat = heartbeat
        self.acknowledgements = acknowledgements
        self.keyMaterial = keyMaterial
        self.pipeline = pipeline
        self.folder = folder
        self.workers = workers
        self.mllp = mllp
        self.intakeConcurrency = intakeConcurrency
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
    }

    /// The MLLP port actually bound (useful with port 0), once ``run()`` has started it.
    public var mllpPort: UInt16? { mllp?.port }

    /// Serves until ``stop()``. Throws only when the service cannot start.
    public func run() async throws(GatewayError) {
        let resumed = try await pipeline.resume()
        if resumed > 0 { logger.notice("finished documents left by the previous run", metadata: ["count": "\(resumed)"]) }
        let acknowledgementAlerts = acknowledgements?.makeAlerts()
        if let acknowledgements, let acknowledgementAlerts {
            // Before any send: what came back while we were down may settle a send that a crash
            // interrupted (its DSN), which must then not be mailed again.
            await acknowledgements.pollOnce(alerts: acknowledgementAlerts)
        }
        if let mllp {
            let port: UInt16
            do { port = try mllp.start() } catch { throw .listener(error.message) }
            logger.info("MLLP listener started", metadata: ["host": "\(mllp.settings.host)", "port": "\(port)", "tls": "\(mllp.settings.tls != nil)"])
        }
        let folderDriver = IntakeDriver(source: folder, pipeline: pipeline, wake: workers.poke(_:), concurrency: intakeConcurrency)
        // One message at a time per connection (its ACK order): at most one claim per connection.
        let mllpDriver = mllp.map { IntakeDriver(source: $0, pipeline: pipeline, wake: workers.poke(_:), concurrency: $0.settings.maxConnections) }
        let intake = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await folderDriver.run() }
                if let mllpDriver { group.addTask { await mllpDriver.run() } }
            }
        }
        let sending = Task { await workers.run() }
        let polling = acknowledgements.map { polling in
            Task {
                try? await Task.sleep(for: polling.interval)  // the first poll was made above
                await polling.run(alerts: acknowledgementAlerts)
            }
        }
        let purging = retention.map { schedule in Task { [logger] in await schedule.run(logger: logger) } }
        await heartbeat?.beat(logger: logger)
        let beating = heartbeat.map { heartbeat in Task { [logger] in await heartbeat.run(logger: logger) } }
        let inbox = await folder.scanner.inbox.path
        logger.info("passerelle running", metadata: ["inbox": "\(inbox)"])

        while !stopRequested.load(ordering: .acquiring) {
            await stopSignal.wait(timeout: 3600, until: { self.stopRequested.load(ordering: .acquiring) })
        }

        logger.notice("stopping: intake closed, finishing in-flight sends", metadata: ["timeout_s": "\(Int(shutdownTimeout))"])
        mllp?.stop()
        intake.cancel()
        _ = await intake.value
        polling?.cancel()
        purging?.cancel()
        workers.stop()
        let finished = await Self.wait(for: sending, timeout: shutdownTimeout)
        beating?.cancel()
        await heartbeat?.beat(stopped: true, logger: logger)
        if finished {
            logger.notice("stopped cleanly")
        } else {
            logger.warning("shutdown timeout: sends still in flight are taken back after their lease and re-sent (recognised by the peer)")
        }
    }

    /// Asks ``run()`` to stop gracefully (SIGTERM).
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        stopSignal.signal()
    }

    /// True when `task` ended within `timeout` seconds.
    static func wait(for task: Task<Void, Never>, timeout: TimeInterval) async -> Bool {
        let done = Atomic<Bool>(false)
        let signal = WakeSignal()
        let watcher = Task {
            await task.value
            done.store(true, ordering: .releasing)
            signal.signal()
        }
        let deadline = Date().addingTimeInterval(timeout)
        while !done.load(ordering: .acquiring) && Date() < deadline {
            await signal.wait(timeout: max(0.01, deadline.timeIntervalSinceNow), until: { done.load(ordering: .acquiring) })
        }
        _ = watcher
        return done.load(ordering: .acquiring)
    }
}
