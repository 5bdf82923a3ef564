import BenchSupport
import CDA
import Foundation
import Handoff
@testable import Journal
import OpenSSLKit
import PasserelleCore
import Testing

/// The in-memory hand-off from admission to the workers: what it keeps when full.
@Suite("Admitted documents held for their first send")
struct AdmittedDocumentsTests {
    /// Document `n` with a CDA of `bytes` bytes, and its claim for the DMP.
    /// `journaledFill`: the byte of the CDA the journal recorded (its digest is the claim's
    /// built CDA), when it is not the held one.
    static func admitted(_ n: Int, bytes: Int = 1000, journaledFill: UInt8? = nil) async throws -> (OutgoingDocument, ClaimedTransmission) {
        let queue = InMemoryDeliveryQueue(policy: RetryPolicy(initialDelay: 1, multiplier: 1, maxDelay: 1, jitter: 0, maxAttempts: 3))
        let id = InstanceIdentifier(root: "1.2.250.1.999.1.4.\(n)")
        func cda(_ fill: UInt8) -> CDADocument {
            CDADocument(data: Data(repeating: fill, count: bytes), origin: .built, kind: .dischargeLetter, id: id,
                        setID: id, versionNumber: 1, replaces: nil, effectiveTime: "20261120143000+0100", ins: nil)
        }
        let held = cda(UInt8(ascii: "x"))
        let journaled = JournalDocument(id: id.root, kind: .dischargeLetter, finess: "750803447",
                                        builtSHA256: cda(journaledFill ?? UInt8(ascii: "x")).sha256.hexString, receivedAt: Date())
        queue.enqueue(journaled, target: .dmp)
        let claim = try #require(try await queue.claimNext(target: .dmp, now: Date(), lease: 60, owner: "test"))
        let document = OutgoingDocument(metadata: SampleMetadata.document(kind: .dischargeLetter, id: id), cda: held, journal: journaled)
        return (document, claim)
    }

    @Test("held before the journal commits: handed out only if its CDA is the one journaled; never replaced; removed when not admitted")
    func candidates() async throws {
        let held = AdmittedDocuments(maxBytes: 10_000)
        // The journal recorded another CDA under this id and version (another node's, or this
        // candidate was refused as a duplicate after a worker claimed the other).
        let (other, otherClaim) = try await Self.admitted(1, journaledFill: UInt8(ascii: "y"))
        #expect(held.insert(other, targets: [.dmp]))
        #expect(held.take(otherClaim) == nil, "not the journaled CDA: read back from the journal")
        #expect(held.take(otherClaim) == nil)

        let (first, firstClaim) = try await Self.admitted(2)
        let (second, _) = try await Self.admitted(2, journaledFill: UInt8(ascii: "z"))
        #expect(held.insert(first, targets: [.dmp]))
        #expect(!held.insert(second, targets: [.dmp]), "a held document of the same id and version stays")
        #expect(held.take(firstClaim)?.cda == first.cda)

        let (third, thirdClaim) = try await Self.admitted(3)
        #expect(held.insert(third, targets: [.dmp]))
        held.remove(documentID: third.journal.id, version: third.journal.version)
        #expect(held.take(thirdClaim) == nil, "removed: the journal did not admit it")
        #expect(held.insert(third, targets: [.dmp]), "its room is free again")
    }

    @Test("full: the held (oldest, next to be sent) stay and the new one is read back later; each is taken once")
    func fullKeepsTheOldest() async throws {
        let held = AdmittedDocuments(maxBytes: 3000)
        var claims: [ClaimedTransmission] = []
        let start = ContinuousClock.now
        for n in 1...5 {
            let (document, claim) = try await Self.admitted(n)
            #expect(held.insert(document, targets: [.dmp], now: start + .seconds(n)) == (n <= 3), "document \(n)")
            claims.append(claim)
        }
        #expect(held.take(claims[0])?.journal.id == claims[0].document.id)
        #expect(held.take(claims[0]) == nil, "taken once for its one target")
        #expect(held.take(claims[3]) == nil && held.take(claims[4]) == nil, "not kept")
        // The first one's place is free again.
        let (sixth, sixthClaim) = try await Self.admitted(6)
        #expect(held.insert(sixth, targets: [.dmp], now: start + .seconds(6)))
        #expect(held.take(claims[1]) != nil && held.take(claims[2]) != nil && held.take(sixthClaim) != nil)
    }

    @Test("full of documents nobody took for longer than staleAfter: they make room")
    func staleMakeRoom() async throws {
        let held = AdmittedDocuments(maxBytes: 2000, staleAfter: .seconds(60))
        let start = ContinuousClock.now
        let (first, firstClaim) = try await Self.admitted(1)
        let (second, secondClaim) = try await Self.admitted(2)
        let (third, thirdClaim) = try await Self.admitted(3)
        #expect(held.insert(first, targets: [.dmp], now: start))
        #expect(held.insert(second, targets: [.dmp], now: start + .seconds(30)))
        #expect(!held.insert(third, targets: [.dmp], now: start + .seconds(59)), "nothing stale yet")
        #expect(held.insert(third, targets: [.dmp], now: start + .seconds(61)), "the first is stale")
        #expect(held.take(firstClaim) == nil)
        #expect(held.take(secondClaim) != nil && held.take(thirdClaim) != nil)
    }

    @Test("admission waits for room while workers free it, never on workers that stopped taking", .timeLimit(.minutes(1)))
    func waitForRoom() async throws {
        let held = AdmittedDocuments(maxBytes: 2000, patience: .seconds(30))
        let (first, firstClaim) = try await Self.admitted(1)
        let (second, secondClaim) = try await Self.admitted(2)
        let (third, _) = try await Self.admitted(3)
        await held.waitForRoom(1000, for: [.dmp])  // room: at once
        #expect(held.insert(first, targets: [.dmp]) && held.insert(second, targets: [.dmp]))
        // Full, and nothing ever left: no worker is taking, so no wait (else a stopped target
        // would hold intake back for the whole patience at every document).
        let clock = ContinuousClock()
        let unwaited = await clock.measure { await held.waitForRoom(1000, for: [.dmp]) }
        #expect(unwaited < .seconds(10), "waited \(unwaited) with no worker taking")
        #expect(held.take(firstClaim) != nil)
        #expect(held.insert(third, targets: [.dmp]), "full again, just after a document left")
        let (fourth, _) = try await Self.admitted(4)
        // A worker takes the next one a little later: the waiting admission gets that room.
        let taker = Task {
            try await Task.sleep(for: .milliseconds(200))
            return held.take(secondClaim) != nil
        }
        let waited = await clock.measure { await held.waitForRoom(1000, for: [.dmp]) }
        #expect(held.insert(fourth, targets: [.dmp]), "the room the take made (a wait that returned early finds it full)")
        #expect(try await taker.value)
        #expect(waited < .seconds(10), "woken by the take, not by the 30 s patience (waited \(waited))")
        // More than the whole hand-off: never kept, never waited for.
        let toolarge = await clock.measure { await held.waitForRoom(5000, for: [.dmp]) }
        #expect(toolarge < .seconds(10))
    }

    @Test("no wait when the held documents or the new one have other or several targets", .timeLimit(.minutes(1)))
    func noWaitAcrossTargets() async throws {
        let held = AdmittedDocuments(maxBytes: 2000, patience: .seconds(30))
        let (first, firstClaim) = try await Self.admitted(1)
        let (second, secondClaim) = try await Self.admitted(2)
        var mailClaim = secondClaim
        mailClaim.transmission.target = .mssantePS
        #expect(held.insert(first, targets: [.dmp]))
        #expect(held.take(firstClaim) != nil)  // a document just left: workers are taking
        #expect(held.insert(second, targets: [.dmp, .mssantePS]))
        #expect(held.take(secondClaim) != nil)  // the DMP took it; it waits for the relay alone now
        let (third, _) = try await Self.admitted(3)
        #expect(held.insert(third, targets: [.dmp]))
        let clock = ContinuousClock()
        // Full, held documents waiting for the relay: a DMP document does not wait on its pace,
        // nor does a document for two targets.
        for targets: [Destination] in [[.dmp], [.mssantePS], [.dmp, .mssantePS]] {
            let waited = await clock.measure { await held.waitForRoom(1000, for: targets) }
            #expect(waited < .seconds(10), "\(targets): waited \(waited)")
        }
        #expect(held.take(mailClaim) != nil)
    }

    @Test("a wait for room ends after the patience when workers stop taking", .timeLimit(.minutes(1)))
    func waitForRoomGivesUp() async throws {
        let held = AdmittedDocuments(maxBytes: 1000, patience: .milliseconds(300))
        let (first, firstClaim) = try await Self.admitted(1)
        let (second, _) = try await Self.admitted(2)
        let (third, _) = try await Self.admitted(3)
        #expect(held.insert(first, targets: [.dmp]))
        #expect(held.take(firstClaim) != nil)
        #expect(held.insert(second, targets: [.dmp]))
        // A document just left, then nothing: the wait ends (the document is admitted and read back later).
        await held.waitForRoom(1000, for: [.dmp])
        #expect(!held.insert(third, targets: [.dmp]), "still full: the wait gave up, it did not make room")
    }

    @Test("a document for two targets stays until both took it")
    func heldForEachTarget() async throws {
        let held = AdmittedDocuments(maxBytes: 2000)
        let (document, dmpClaim) = try await Self.admitted(1)
        var mailClaim = dmpClaim
        mailClaim.transmission.target = .mssantePS
        #expect(held.insert(document, targets: [.dmp, .mssantePS]))
        #expect(held.take(dmpClaim) != nil)
        #expect(held.take(dmpClaim) == nil)
        #expect(held.take(mailClaim) != nil)
        #expect(held.take(mailClaim) == nil)
    }
}
