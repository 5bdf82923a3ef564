import BenchSupport
import CDA
import Foundation
import Handoff
@testable import Journal
import PasserelleCore
import Testing

/// The in-memory hand-off from admission to the workers: what it keeps when full.
@Suite("Admitted documents held for their first send")
struct AdmittedDocumentsTests {
    /// Document `n` with a CDA of `bytes` bytes, and its claim for the DMP.
    static func admitted(_ n: Int, bytes: Int = 1000) async throws -> (OutgoingDocument, ClaimedTransmission) {
        let queue = InMemoryDeliveryQueue(policy: RetryPolicy(initialDelay: 1, multiplier: 1, maxDelay: 1, jitter: 0, maxAttempts: 3))
        let journaled = JournalDocument(id: "1.2.250.1.999.1.4.\(n)", kind: .dischargeLetter, finess: "750803447", receivedAt: Date())
        queue.enqueue(journaled, target: .dmp)
        let claim = try #require(try await queue.claimNext(target: .dmp, now: Date(), lease: 60, owner: "test"))
        let id = InstanceIdentifier(root: journaled.id)
        let cda = CDADocument(data: Data(repeating: UInt8(ascii: "x"), count: bytes), origin: .built, kind: .dischargeLetter, id: id,
                              setID: id, versionNumber: 1, replaces: nil, effectiveTime: "20261120143000+0100", ins: nil)
        let document = OutgoingDocument(metadata: SampleMetadata.document(kind: .dischargeLetter, id: id), cda: cda, journal: journaled)
        return (document, claim)
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
