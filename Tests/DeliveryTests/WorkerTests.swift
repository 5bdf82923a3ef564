import BenchSupport
import CDA
import Delivery
import Foundation
import Handoff
@testable import Journal
import PasserelleCore
import Synchronization
import Testing

/// The workers' logic against the in-memory queue: no files, no peers, so these run in
/// parallel and in milliseconds. The journal backends' own behaviour is tested in JournalTests,
/// and workers against the real journal and peers in GatewayTests.
@Suite("Transmission workers over an in-memory queue")
struct WorkerTests {
    /// A sender whose answers are scripted per attempt; records when each send happened.
    final class ScriptedSender: TransmissionSender {
        let target: Destination
        let script: @Sendable (_ transmissionID: Int64, _ attempt: Int) -> TransmissionOutcome
        let during: (@Sendable (ClaimedTransmission) async -> Void)?
        let sends = Mutex<[(id: Int64, at: ContinuousClock.Instant, recheck: Bool)]>([])
        let hold = Mutex<String?>(nil)

        init(target: Destination = .dmp, during: (@Sendable (ClaimedTransmission) async -> Void)? = nil,
             script: @escaping @Sendable (Int64, Int) -> TransmissionOutcome) {
            self.target = target
            self.script = script
            self.during = during
        }

        func send(_ claim: ClaimedTransmission, document: OutgoingDocument) async -> TransmissionOutcome {
            sends.withLock { $0.append((claim.transmission.id, ContinuousClock.now, claim.transmission.needsRecheck)) }
            await during?(claim)
            return script(claim.transmission.id, claim.transmission.attempts)
        }

        func holdReason(at time: Date) -> String? { hold.withLock { $0 } }

        func sendCount(_ id: Int64) -> Int { sends.withLock { $0.filter { $0.id == id }.count } }
        var total: Int { sends.withLock { $0.count } }
    }

    /// Every claim gets the same small document, from memory.
    struct MemoryDocuments: ClaimedDocumentSource {
        func document(for claim: ClaimedTransmission) async throws(GatewayError) -> OutgoingDocument {
            let id = InstanceIdentifier(root: "1.2.250.1.999.1.4.\(claim.transmission.id)")
            let cda = CDADocument(data: Data("<ClinicalDocument/>".utf8), origin: .built, kind: .dischargeLetter, id: id,
                                  setID: id, versionNumber: 1, replaces: nil, effectiveTime: "20261120143000+0100", ins: nil)
            return OutgoingDocument(metadata: SampleMetadata.document(kind: .dischargeLetter, id: id), cda: cda, journal: claim.document)
        }
    }

    static func document(_ n: Int) -> JournalDocument {
        JournalDocument(id: "1.2.250.1.999.1.4.\(n)", kind: .dischargeLetter, finess: "750803447", receivedAt: Date())
    }

    /// Runs workers over `queue` until `done()` or `timeout`, then stops them.
    static func run(_ queue: InMemoryDeliveryQueue, _ sender: ScriptedSender, concurrency: Int = 4, lease: TimeInterval = 60,
                    timeout: Duration = .seconds(20), done: @escaping @Sendable () -> Bool) async throws {
        let blobs = try BlobStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("worker-tests-unused-\(UUID().uuidString)"))
        let workers = TransmissionWorkers(journal: queue, blobs: blobs, senders: [(sender, concurrency)],
                                          settings: WorkerSettings(lease: lease, pollInterval: 0.01, owner: "test"),
                                          documents: MemoryDocuments())
        let task = Task { await workers.run() }
        let deadline = ContinuousClock.now + timeout
        while !done() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        workers.stop()
        await task.value
    }

    static let fast = RetryPolicy(initialDelay: 0.01, multiplier: 1, maxDelay: 0.01, jitter: 0, maxAttempts: 3)

    @Test("200 transmissions, 4 loops: each is claimed and sent exactly once")
    func eachSentOnce() async throws {
        let queue = InMemoryDeliveryQueue(policy: Self.fast)
        let ids = (1...200).map { queue.enqueue(Self.document($0), target: .dmp) }
        let sender = ScriptedSender { _, _ in .success(state: .acknowledged) }
        try await Self.run(queue, sender) { ids.allSatisfy { queue.transmission($0)?.state == .acknowledged } }
        #expect(ids.allSatisfy { sender.sendCount($0) == 1 })
        #expect(queue.claims == 200)
        // A loop claims on its own once, at its start; after that each completion claims the
        // loop's next transmission in the same journal transaction.
        #expect(queue.claims - queue.claimsAfterCompletion <= 4, "\(queue.claimsAfterCompletion) of 200 claims made by a completion")
        #expect(ids.allSatisfy { queue.transmission($0)?.attempts == 1 })
    }

    @Test("a stop that lands while a completion claims the next transmission: that one is still sent, none stays leased")
    func stopWhileACompletionClaims() async throws {
        let queue = InMemoryDeliveryQueue(policy: Self.fast)
        let ids = (1...3).map { queue.enqueue(Self.document($0), target: .dmp) }
        let sender = ScriptedSender { _, _ in .success(state: .acknowledged) }
        let blobs = try BlobStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("worker-tests-unused-\(UUID().uuidString)"))
        let workers = TransmissionWorkers(journal: queue, blobs: blobs, senders: [(sender, 1)],
                                          settings: WorkerSettings(lease: 60, pollInterval: 0.01, owner: "test"),
                                          documents: MemoryDocuments())
        queue.duringCompletionClaim.withLock { $0 = { workers.stop() } }
        let finished = Atomic<Bool>(false)
        let task = Task {
            await workers.run()
            finished.store(true, ordering: .releasing)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !finished.load(ordering: .acquiring) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let stoppedByTheCompletion = finished.load(ordering: .acquiring)
        #expect(stoppedByTheCompletion, "the workers did not stop: no completion claimed the next transmission")
        workers.stop()
        await task.value
        // The first send's completion claimed the second, and the stop came then: the second
        // was sent (not left leased until its lease ran out), the third not claimed.
        #expect(sender.sendCount(ids[0]) == 1)
        #expect(sender.sendCount(ids[1]) == 1)
        #expect(queue.transmission(ids[1])?.state == .acknowledged)
        #expect(queue.transmission(ids[2])?.state == .queued)
        #expect(ids.allSatisfy { queue.transmission($0)?.state != .sending })
    }

    @Test("a queued document wakes one idle worker of its target: no claim in vain by the others, no lease recovery per document")
    func pokeWakesOneWorkerOfTheTarget() async throws {
        let queue = InMemoryDeliveryQueue(policy: Self.fast)
        let dmp = ScriptedSender { _, _ in .success(state: .acknowledged) }
        let mail = ScriptedSender(target: .mssantePS) { _, _ in .success(state: .sent) }
        let blobs = try BlobStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("worker-tests-unused-\(UUID().uuidString)"))
        // Idle polls every 60 s and a lease recovery every 5 s: within this test only a poke wakes a loop.
        let workers = TransmissionWorkers(journal: queue, blobs: blobs, senders: [(dmp, 4), (mail, 2)],
                                          settings: WorkerSettings(lease: 60, pollInterval: 60, owner: "test"),
                                          documents: MemoryDocuments())
        let task = Task { await workers.run() }
        // Every loop's first claim finds nothing; then all are asleep.
        while queue.emptyClaims(.dmp) < 4 || queue.emptyClaims(.mssantePS) < 2 { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(50))
        let documents = 30
        for n in 1...documents {
            let before = queue.emptyClaims(.dmp)
            let id = queue.enqueue(Self.document(n), target: .dmp)
            workers.poke([.dmp])
            let deadline = ContinuousClock.now + .seconds(5)
            while queue.transmission(id)?.state != .acknowledged && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
            #expect(queue.transmission(id)?.state == .acknowledged, "document \(n) waited for a poll: the poke woke no DMP worker")
            // The worker looks once more after its send before it sleeps again: wait for that look,
            // so the next document is not taken by it on the way back to sleep.
            while queue.emptyClaims(.dmp) == before && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        }
        workers.stop()
        await task.value
        #expect(dmp.total == documents)
        // The woken worker looks once more after its send (one empty claim per document; a
        // worker caught on its way back to sleep by a poke may add one); waking all four made
        // three others claim in vain as well (≈ 4 per document).
        #expect(queue.emptyClaims(.dmp) <= 4 + 2 * documents, "\(queue.emptyClaims(.dmp)) empty DMP claims for \(documents) documents")
        // The MSSanté loops were not woken for DMP work (their first claim, and the one of stop()).
        #expect(queue.emptyClaims(.mssantePS) <= 4)
        // Lease recovery ran on its own period (start, and at most once more), not per document.
        #expect(queue.recoveries <= 3, "\(queue.recoveries) lease recoveries")
    }

    @Test("a 503 with Retry-After: the next attempt waits what the server asked, not the shorter backoff")
    func retryAfterHonoured() async throws {
        let queue = InMemoryDeliveryQueue(policy: Self.fast)
        let id = queue.enqueue(Self.document(1), target: .dmp)
        let sender = ScriptedSender { _, attempt in
            attempt == 1 ? .failure(.retryAfter(seconds: 1.5, .httpServerError(status: 503, "busy")), response: nil)
                : .success(state: .acknowledged)
        }
        try await Self.run(queue, sender) { queue.transmission(id)?.state == .acknowledged }
        let times = sender.sends.withLock { $0.map { $0.at } }
        try #require(times.count == 2)
        #expect(times[1] - times[0] >= .milliseconds(1450), "the backoff alone is 10 ms")
        #expect(queue.transmission(id)?.attempts == 2)
    }

    @Test("transient failures are retried up to the policy's attempts, then failed with the reason; a permanent one fails at once")
    func deadLetters() async throws {
        let queue = InMemoryDeliveryQueue(policy: Self.fast)
        let transient = queue.enqueue(Self.document(1), target: .dmp)
        let permanent = queue.enqueue(Self.document(2), target: .dmp)
        let sender = ScriptedSender { id, _ in
            id == transient ? .failure(.network("connection reset"), response: nil)
                : .failure(.permanent("registry refused: XDSPatientIdDoesNotMatch"), response: nil)
        }
        try await Self.run(queue, sender) { queue.transmission(transient)?.state == .failed && queue.transmission(permanent)?.state == .failed }
        #expect(sender.sendCount(transient) == 3)
        #expect(sender.sendCount(permanent) == 1)
        #expect(queue.transmission(transient)?.lastError?.contains("gave up after 3 attempts") == true)
        #expect(queue.transmission(permanent)?.lastError?.contains("XDSPatientIdDoesNotMatch") == true)
    }

    @Test("a held target claims nothing (no attempt used up); once the cause is gone it sends")
    func heldTargetClaimsNothing() async throws {
        let queue = InMemoryDeliveryQueue(policy: Self.fast)
        let id = queue.enqueue(Self.document(1), target: .dmp)
        let sender = ScriptedSender { _, _ in .success(state: .acknowledged) }
        sender.hold.withLock { $0 = "signing certificate expired" }
        let blobs = try BlobStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("worker-tests-unused-\(UUID().uuidString)"))
        let workers = TransmissionWorkers(journal: queue, blobs: blobs, senders: [(sender, 2)],
                                          settings: WorkerSettings(lease: 60, pollInterval: 0.01, owner: "test"), documents: MemoryDocuments())
        let task = Task { await workers.run() }
        try await Task.sleep(for: .milliseconds(300))
        #expect(queue.claims == 0)
        #expect(queue.transmission(id)?.state == .queued)
        sender.hold.withLock { $0 = nil }
        workers.poke()
        let deadline = ContinuousClock.now + .seconds(10)
        while queue.transmission(id)?.state != .acknowledged && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        workers.stop()
        await task.value
        #expect(queue.transmission(id)?.state == .acknowledged)
        #expect(queue.transmission(id)?.attempts == 1)
    }

    @Test("a send whose lease was taken back is not recorded over it: the row is sent again, marked for a recheck")
    func lostLease() async throws {
        let queue = InMemoryDeliveryQueue(policy: Self.fast)
        let id = queue.enqueue(Self.document(1), target: .dmp)
        // The first send outlives its 50 ms lease: recovery takes the row back while it runs.
        let sender = ScriptedSender(during: { claim in
            guard claim.transmission.attempts == 1 else { return }
            try? await Task.sleep(for: .milliseconds(150))
            let recovered = try? await queue.recoverInterrupted(now: Date())
            precondition(recovered?.map(\.id) == [claim.transmission.id])
        }, script: { _, _ in .success(state: .acknowledged) })
        try await Self.run(queue, sender, concurrency: 1, lease: 0.05) { queue.transmission(id)?.state == .acknowledged }
        let sends = sender.sends.withLock { $0 }
        #expect(sends.count == 2)
        #expect(sends.map { $0.recheck } == [false, true], "the second send knows the first may have reached the peer")
        #expect(queue.transmission(id)?.attempts == 2)
    }
}
