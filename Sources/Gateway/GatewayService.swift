import CDA
import CurlKit
import DMP
import Foundation
import Intake
import Journal
import Logging
import OpenSSLKit
import PasserelleCore
import TestHooks
import Signing
import Synchronization

/// The running gateway (`passerelle run`): inbox watcher, MLLP listener, pipeline and workers.
///
/// ``run()`` first finishes what a previous process left (documents accepted but not queued,
/// claims left in work/), then serves until ``stop()``: intake stops at once, each worker
/// finishes the send it is in (bounded by `shutdownTimeout`), and ``run()`` returns.
public final class GatewayService: Sendable {
    public let pipeline: Pipeline
    public let folder: FolderIntake
    public let workers: TransmissionWorkers
    public let mllp: MLLPSettings?
    public let shutdownTimeout: TimeInterval
    public let rescanInterval: TimeInterval
    /// Seconds between two passes over work/ for the claims a journal failure left there.
    public let workRetryInterval: TimeInterval
    /// MSSanté acknowledgements read on a timer (nil: no `[mssante] imap_url`).
    public let acknowledgements: AcknowledgementPolling?
    /// The key material ``make(configuration:templates:extraSenders:pollInterval:events:)``
    /// loaded once for every part (nil when no part needs a key): the status endpoint's
    /// certificate checks reuse it instead of opening the .p12 files again.
    public let keyMaterial: KeyMaterial?
    let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let stopSignal = WakeSignal()
    private let listener = Mutex<MLLPListener?>(nil)

    public init(pipeline: Pipeline, folder: FolderIntake, workers: TransmissionWorkers, mllp: MLLPSettings?,
                shutdownTimeout: TimeInterval = 30, rescanInterval: TimeInterval = 1, workRetryInterval: TimeInterval = 60,
                acknowledgements: AcknowledgementPolling? = nil, keyMaterial: KeyMaterial? = nil,
                logger: Logger = Logger(label: "passerelle.service")) {
        self.acknowledgements = acknowledgements
        self.keyMaterial = keyMaterial
        self.pipeline = pipeline
        self.folder = folder
        self.workers = workers
        self.mllp = mllp
        self.shutdownTimeout = shutdownTimeout
        self.rescanInterval = rescanInterval
        self.workRetryInterval = workRetryInterval
        self.logger = logger
    }

    /// The MLLP port actually bound (useful with port 0), once ``run()`` has started it.
    public var mllpPort: UInt16? { listener.withLock { $0?.port } }

    /// Serves until ``stop()``. Throws only when the service cannot start.
    public func run() async throws(GatewayError) {
        let resumed = try await pipeline.resume()
        if resumed > 0 { logger.notice("finished documents left by the previous run", metadata: ["count": "\(resumed)"]) }
        await folder.recoverWorkFolder()
        let acknowledgementAlerts = acknowledgements?.makeAlerts()
        if let acknowledgements, let acknowledgementAlerts {
            // Before any send: what came back while we were down may settle a send that a crash
            // interrupted (its DSN), which must then not be mailed again.
            await acknowledgements.pollOnce(alerts: acknowledgementAlerts)
        }
        if let mllp {
            let handler = MLLPHandler(pipeline: pipeline, workers: workers, logger: logger, folder: folder)
            let started = try MLLPListener(settings: mllp, handler: { await handler.handle($0) }, oversize: { handler.oversize(limit: mllp.maxMessageBytes) },
                                           onError: { [logger] in logger.warning("MLLP", metadata: ["error": "\($0)"]) })
            listener.withLock { $0 = started }
            logger.info("MLLP listener started", metadata: ["host": "\(mllp.host)", "port": "\(started.port)", "tls": "\(mllp.tls != nil)"])
        }
        let intake = Task { await self.intake() }
        let sending = Task { await workers.run() }
        let polling = acknowledgements.map { polling in
            Task {
                try? await Task.sleep(for: polling.interval)  // the first poll was made above
                await polling.run(alerts: acknowledgementAlerts)
            }
        }
        let inbox = await folder.scanner.inbox.path
        logger.info("passerelle running", metadata: ["inbox": "\(inbox)"])

        while !stopRequested.load(ordering: .acquiring) {
            await stopSignal.wait(timeout: 3600, until: { self.stopRequested.load(ordering: .acquiring) })
        }

        logger.notice("stopping: intake closed, finishing in-flight sends", metadata: ["timeout_s": "\(Int(shutdownTimeout))"])
        listener.withLock { $0?.stop(); $0 = nil }
        intake.cancel()
        _ = await intake.value
        polling?.cancel()
        workers.stop()
        let finished = await Self.wait(for: sending, timeout: shutdownTimeout)
        if finished {
            logger.notice("stopped cleanly")
        } else {
            logger.warning("shutdown timeout: sends still in flight are taken back after their lease and re-sent (recognised by the peer)")
        }
    }

    private enum IntakeEvent: Sendable {
        case claim(ClaimedFile)
        case retryWork
    }

    /// Claims from the inbox and, every ``workRetryInterval``, the claims left in work/ by a
    /// journal outage (a full disk), one at a time, until cancelled. A folder failure (full
    /// disk, folder gone) is logged and the inbox watched again a little later: intake never
    /// stops for good while the service runs.
    private func intake() async {
        let (events, feed) = AsyncStream.makeStream(of: IntakeEvent.self)
        let watcher = InboxWatcher(scanner: folder.scanner, rescanInterval: rescanInterval)
        let producers = Task { [logger, rescanInterval, workRetryInterval] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            for try await claim in watcher.claims() { feed.yield(.claim(claim)) }
                        } catch {
                            logger.error("cannot scan the inbox; trying again", metadata: ["error": "\(error)"])
                        }
                        try? await Task.sleep(nanoseconds: UInt64(max(rescanInterval, 5) * 1e9))
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(nanoseconds: UInt64(workRetryInterval * 1e9))
                        if !Task.isCancelled { feed.yield(.retryWork) }
                    }
                }
            }
            feed.finish()
        }
        defer { producers.cancel() }
        await withTaskCancellationHandler {
            for await event in events {
                switch event {
                case .claim(let claim):
                    if let outcome = await folder.handle(claim), case .accepted = outcome { workers.poke() }
                case .retryWork:
                    // Only what this process left in work/ (journal outage, full disk): the other
                    // claims may still wait in `events`, and taking them too would handle them twice.
                    if await folder.recoverWorkFolder(leftBehindOnly: true) > 0 { workers.poke() }
                }
            }
        } onCancel: {
            producers.cancel()
            feed.finish()
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

/// Turns one MLLP message into its ACK: AA once journaled, AE (with ERR) when the message
/// cannot be used, AR when the journal is unavailable (resend later).
///
/// Poison guard: the gateway cannot take a message again after a crash (the sender resends it),
/// so each message in flight has a marker, `work/.mllp-in-flight/<SHA-256 of the bytes>`, holding
/// how many times it was started without an answer. A message arriving with
/// `[folders] max_processing_attempts` interrupted starts is not processed again: it is answered
/// AE with the reason and written to error/ (with its reason file) for a human.
struct MLLPHandler: Sendable {
    let pipeline: Pipeline
    let workers: TransmissionWorkers
    let logger: Logger
    let folder: FolderIntake
    let acks = HL7AcknowledgementBuilder()
    var loader: IntakeLoader { folder.loader }

    static let inFlightFolderName = ".mllp-in-flight"

    func handle(_ data: Data) async -> Data {
        let work = await folder.scanner.work
        let inFlight = work.appendingPathComponent(Self.inFlightFolderName)
        let digest = BlobStore.sha256Hex(data)
        let counter = AttemptCounter(file: inFlight.appendingPathComponent(digest))
        let interrupted = counter.read()
        if interrupted >= folder.maxProcessingAttempts {
            return await setAside(data, digest: digest, attempts: interrupted, counter: counter, folder: inFlight)
        }
        counter.write(interrupted + 1)
        CrashPoint.reached(.mllpReceived)
        let answer = await process(data)
        counter.remove()  // answered: a crash before the ACK is written leads to a resend, handled anew
        return answer
    }

    /// The message made the process die `attempts` times: not parsed again (only its MSH, for the
    /// ACK), kept in error/ with its reason, answered AE.
    func setAside(_ data: Data, digest: String, attempts: Int, counter: AttemptCounter, folder inFlight: URL) async -> Data {
        let reason = RefusalReason.interruptedTooOften(attempts: attempts, key: "[folders] max_processing_attempts")
        pipeline.events.documentRefused(reason: reason.code, source: .mllp)
        logger.error("an MLLP message stopped the gateway repeatedly while being processed; answered AE, kept in error/",
                     metadata: ["sha256": "\(digest.prefix(16))", "attempts": "\(attempts)"])
        let file = inFlight.appendingPathComponent("mllp-\(digest.prefix(16)).hl7")
        mkdir(inFlight.path, 0o700)
        unlink(file.path)
        if let failure = DurableFiles.writeNew(data, to: file.path) {
            logger.error("cannot keep the set-aside MLLP message", metadata: ["error": "\(failure)"])
        } else {
            do { try await folder.scanner.refuse([file], reason: reason) } catch {
                logger.error("cannot move the set-aside MLLP message to error/", metadata: ["error": "\(error)"])
                unlink(file.path)
            }
        }
        counter.remove()
        return ack(Self.header(of: data), .error, [HL7ErrorDetail(condition: .applicationInternalError, text: reason.description)])
    }

    /// The MSH segment alone, parsed to address the ACK (bounded: the rest is never parsed again).
    static func header(of data: Data) -> HL7Message? {
        let head = data.prefix(4096)
        let end = head.firstIndex(where: { $0 == 0x0D || $0 == 0x0A }) ?? head.endIndex
        return try? HL7Message(data: Data(head[head.startIndex..<end]))
    }

    func process(_ data: Data) async -> Data {
        let message: HL7Message
        do { message = try HL7Message(data: data) } catch {
            pipeline.events.documentRefused(reason: RefusalReason.invalidMessage(.parse(error)).code, source: .mllp)
            logger.warning("MLLP message unreadable", metadata: ["error": "\(error)"])
            return ack(nil, .error, [HL7ErrorDetail(IntakeError.parse(error))])
        }
        let item: IntakeItem
        do { item = try StageClock.measure(.parse, pipeline.events) { () throws(RefusalReason) in try loader.load(message) } } catch {
            pipeline.events.documentRefused(reason: error.code, source: .mllp)
            logger.warning("MLLP message refused", metadata: ["control_id": "\(message.controlID)", "reason": "\(error.description.prefix(300))"])
            return ack(message, .error, [Self.detail(error)])
        }
        let input = InputFile(sha256: BlobStore.sha256Hex(data), fileName: "mllp:\(message.controlID)")
        do {
            let outcome = try await pipeline.ingest(item, input: input)
            if case .accepted = outcome { workers.poke() }
            if case .accepted = outcome, case .document(let d) = item { pipeline.events.documentReceived(kind: d.metadata.kind, source: .mllp) }
            return ack(message, .accept, [])
        } catch {
            switch error {
            case .refused(let reason):
                pipeline.events.documentRefused(reason: reason.code, source: .mllp)
                logger.warning("MLLP message refused", metadata: ["control_id": "\(message.controlID)", "reason": "\(reason.description.prefix(300))"])
                return ack(message, .error, [Self.detail(reason)])
            case .unavailable(let failure):
                logger.error("MLLP message not journaled; answered AR", metadata: ["control_id": "\(message.controlID)", "error": "\(failure)"])
                return ack(message, .reject, [HL7ErrorDetail(condition: .applicationInternalError,
                                                              text: "the gateway journal is unavailable; resend the message later")])
            }
        }
    }

    func oversize(limit: Int) -> Data {
        ack(nil, .error, [HL7ErrorDetail(condition: .applicationInternalError,
                                         text: "message larger than \(limit) bytes ([mllp] max_message_bytes); split it or raise the limit")])
    }

    static func detail(_ reason: RefusalReason) -> HL7ErrorDetail {
        if case .invalidMessage(let e) = reason { return HL7ErrorDetail(e) }
        return HL7ErrorDetail(condition: .applicationInternalError, text: reason.description)
    }

    func ack(_ message: HL7Message?, _ code: HL7AckCode, _ errors: [HL7ErrorDetail]) -> Data {
        let id = "ACK" + String(UInt64(Date().timeIntervalSince1970 * 1000)) + String(UInt16.random(in: 0...UInt16.max))
        return Data(acks.acknowledgement(for: message, code: code, errors: errors, controlID: id).utf8)
    }
}
