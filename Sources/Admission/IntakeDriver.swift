import Foundation
import Handoff
import Intake
import Journal
import Logging
import PasserelleCore

/// The one adapter between an ``IntakeSource`` (the watched folder, the MLLP listener) and the
/// pipeline: for every claim, the poison guard (``IntakeSource/begin(_:)``), load, ingest, then
/// the source's acknowledgement, with the same refusal events, log lines and wake-up of
/// delivery whatever the source.
///
/// Up to ``concurrency`` claims are in flight at once (``Pipeline/ingest(_:input:now:)`` may be
/// called concurrently): while one waits on the journal's fsync, the next ones are parsed and
/// built. Each claim is acknowledged only after the pipeline answered, so "the journal holds it,
/// then the input is removed" holds for each of them, in whatever order they finish.
public struct IntakeDriver<Source: IntakeSource>: Sendable {
    public let source: Source
    public let pipeline: Pipeline
    /// Called after each accepted document with the targets it was queued for: the gateway
    /// wakes an idle worker of each (``Delivery/TransmissionWorkers/poke(_:)``); admission knows
    /// nothing of delivery.
    public let wake: @Sendable ([Destination]) -> Void
    /// Claims processed at once (at least 1).
    public let concurrency: Int
    let logger: Logger

    public init(source: Source, pipeline: Pipeline, wake: @escaping @Sendable ([Destination]) -> Void, concurrency: Int,
                logger: Logger = Logger(label: "passerelle.intake")) {
        self.source = source
        self.pipeline = pipeline
        self.wake = wake
        self.concurrency = max(1, concurrency)
        self.logger = logger
    }

    /// Handles the source's claims until cancelled; the claims in flight then finish (each one
    /// acknowledged) before this returns.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            var inFlight = 0
            for await claim in source.claims() {
                if inFlight >= concurrency {
                    _ = await group.next()
                    inFlight -= 1
                }
                group.addTask { await handle(claim) }
                inFlight += 1
            }
            await group.waitForAll()
        }
    }

    /// One claim, start to acknowledgement.
    public func handle(_ claim: Source.Claim) async {
        if let reason = await source.begin(claim) {
            await refuse(claim, reason)
            return
        }
        let loaded: LoadedClaim
        do {
            loaded = try StageClock.measure(.parse, pipeline.events) { () throws(ClaimLoadFailure) in try source.load(claim) }
        } catch {
            switch error {
            case .refused(let reason): await refuse(claim, reason)
            case .unreadable(let failure):
                logger.error("cannot read a claimed input; \(Self.keptText(source.origin))",
                             metadata: ["source": "\(source.origin.rawValue)", "input": "\(source.label(claim))", "error": "\(failure)"])
                await source.acknowledge(claim, .unavailable)
            }
            return
        }
        let outcome: IngestOutcome
        do {
            outcome = try await pipeline.ingest(loaded.item, input: InputFile(sha256: loaded.sha256, fileName: loaded.name))
        } catch {
            switch error {
            case .refused(let reason): await refuse(claim, reason)
            case .unavailable(let failure):
                logger.error("journal unavailable; \(Self.keptText(source.origin))",
                             metadata: ["source": "\(source.origin.rawValue)", "input": "\(source.label(claim))", "error": "\(failure)"])
                await source.acknowledge(claim, .unavailable)
            }
            return
        }
        switch outcome {
        case .accepted(_, _, let targets):
            if case .document(let d) = loaded.item { pipeline.events.documentReceived(kind: d.metadata.kind, source: source.origin) }
            await source.acknowledge(claim, .accepted)
            wake(targets)
        case .acceptedInPart(_, _, let targets, let refused):
            if case .document(let d) = loaded.item { pipeline.events.documentReceived(kind: d.metadata.kind, source: source.origin) }
            let reason = RefusalReason.routing(refused)
            pipeline.events.documentRefused(reason: reason.code, source: source.origin)
            logger.warning("\(Self.partText(source.origin))", metadata: ["source": "\(source.origin.rawValue)", "input": "\(source.label(claim))",
                                                                        "reason": "\(reason.description.prefix(300))"])
            await source.acknowledge(claim, .acceptedInPart(accepted: targets, refused: reason))
            wake(targets)
        case .stay:
            await source.acknowledge(claim, .accepted)
        case .duplicateInput:
            await source.acknowledge(claim, .duplicate)
        }
    }

    /// The refusal, the same for every source: one event, one log line, the source's answer
    /// (error/ with the reason file, or an AE carrying the reason).
    func refuse(_ claim: Source.Claim, _ reason: RefusalReason) async {
        pipeline.events.documentRefused(reason: reason.code, source: source.origin)
        logger.warning("\(Self.refusedText(source.origin))", metadata: ["source": "\(source.origin.rawValue)", "input": "\(source.label(claim))",
                                                                      "reason": "\(reason.description.prefix(300))"])
        await source.acknowledge(claim, .refused(reason))
    }

    static func refusedText(_ origin: IntakeOrigin) -> String {
        switch origin {
        case .inbox: "file refused, moved to error/"
        case .mllp: "MLLP message refused; answered AE"
        }
    }

    static func partText(_ origin: IntakeOrigin) -> String {
        switch origin {
        case .inbox: "file accepted in part, moved to done/; the reason for the refused destinations is in error/"
        case .mllp: "MLLP message accepted in part; answered AE for the refused destinations"
        }
    }

    static func keptText(_ origin: IntakeOrigin) -> String {
        switch origin {
        case .inbox: "the file stays in work/ and is taken again later"
        case .mllp: "answered AR (the sender resends it later)"
        }
    }
}
