import Foundation

/// The stages of a document's way through the gateway whose cost is reported to
/// ``GatewayEvents/stageFinished(_:timing:)``.
public enum GatewayStage: String, Sendable, CaseIterable, Hashable {
    /// Reading the dropped files (or the MLLP message) into an intake item: sidecar JSON, HL7 v2.
    case parse
    /// Building the CDA around the PDF, or reading the producer's CDA header.
    case cdaBuild = "cda_build"
    /// The CDA XSD (`[cda] schema`).
    case validate
    /// DMP: submission metadata, VIHF and submission-set signatures, MTOM packaging.
    /// MSSanté: XDM archive and MIME mail.
    case sign
    /// The exchange with the peer, up to its answer (work on the transport's own threads).
    case send
    /// Journal calls: accept (blob fsync + transaction), build/enqueue, claim, complete, and
    /// reading the journaled document back for a send.
    case journal
}

/// What one stage took: wall time, and the CPU time of the calling thread when the stage ran
/// on one thread from start to end (nil when it hopped threads or waited on another thread).
public struct StageTiming: Sendable, Hashable {
    public var wall: Duration
    public var cpu: Duration?

    public init(wall: Duration, cpu: Duration?) {
        self.wall = wall
        self.cpu = cpu
    }
}

/// Times stages for ``GatewayEvents``: wall clock plus `CLOCK_THREAD_CPUTIME_ID`.
package enum StageClock {
    /// The observer of the transmission being sent, for code that has no `events` at hand (the
    /// transport senders); set by the workers around each send.
    @TaskLocal package static var events: (any GatewayEvents)?

    package static func threadCPU() -> Duration {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return .seconds(t.tv_sec) + .nanoseconds(t.tv_nsec)
    }

    /// Runs `body` and reports its wall and thread CPU time as `stage`.
    package static func measure<T, E: Error>(_ stage: GatewayStage, _ events: (any GatewayEvents)?,
                                             _ body: () throws(E) -> T) throws(E) -> T {
        guard let events else { return try body() }
        let start = ContinuousClock.now, cpu = threadCPU()
        defer { events.stageFinished(stage, timing: StageTiming(wall: ContinuousClock.now - start, cpu: threadCPU() - cpu)) }
        return try body()
    }

    /// Async `body`: wall time only. Its work runs on other threads (the journal on its SQLite
    /// lane or PostgreSQL connection, transports on their executors), so the calling thread's
    /// CPU time says nothing about it; that CPU shows in the "other" line.
    package static func measure<T, E: Error>(_ stage: GatewayStage, _ events: (any GatewayEvents)?,
                                             _ body: () async throws(E) -> T) async throws(E) -> T {
        guard let events else { return try await body() }
        let start = ContinuousClock.now
        defer { events.stageFinished(stage, timing: StageTiming(wall: ContinuousClock.now - start, cpu: nil)) }
        return try await body()
    }
}
