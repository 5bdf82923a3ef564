import Foundation
import Journal
import PasserelleCore
import SQLiteKit
import Testing

@Suite struct StateMachineTests {
    /// The full transition table: every pair not listed here must be refused.
    static let legal: [TransmissionState: Set<TransmissionState>] = [
        .queued: [.sending, .held],
        .retryWait: [.sending, .held],
        .sending: [.sent, .acknowledged, .delivered, .retryWait, .failed, .queued],
        .sent: [.acknowledged, .delivered, .read, .failed, .queued],
        .acknowledged: [.delivered, .read, .failed, .queued],
        .delivered: [.read, .failed, .queued],
        .read: [.queued],
        .failed: [.queued, .discarded],
        .held: [.queued, .discarded],
        .discarded: [],
    ]

    @Test(arguments: TransmissionState.allCases)
    func transitionTable(from: TransmissionState) {
        for to in TransmissionState.allCases {
            #expect(from.canMove(to: to) == Self.legal[from]!.contains(to), "\(from.rawValue) → \(to.rawValue)")
        }
    }

    @Test(arguments: JournalBackend.allCases) func happyPathQueuedSendingSentAcknowledgedDeliveredRead(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let queued = try await f.queued(1, targets: [.mssantePS])
        #expect(queued.map(\.state) == [.queued])
        #expect(try await f.store.document(id: queued[0].documentID, version: 1)?.state == .queued)
        let claim = try #require(try await f.store.claimNext(target: .mssantePS, now: JournalFixture.t0, lease: 60, owner: "w1"))
        #expect(claim.transmission.state == .sending)
        #expect(claim.transmission.attempts == 1)
        #expect(claim.transmission.leaseOwner == "w1")
        #expect(claim.transmission.leaseExpiresAt == JournalFixture.t0.plus(60))
        #expect(claim.document.kind == .dischargeLetter)
        try await f.store.recordMessageID("<abc@passerelle.test>", transmissionID: claim.transmission.id, owner: "w1")
        let done = try await f.store.complete(claim, owner: "w1", outcome: .success(response: "250 2.0.0 queued as X"),
                                              now: JournalFixture.t0.plus(2))
        #expect(done == CompletionResult(state: .sent, nextAttemptAt: nil, shouldAlert: false))
        let id = claim.transmission.id
        #expect(try await f.store.acknowledge(transmissionID: id, kind: .acknowledged, detail: nil, now: JournalFixture.t0.plus(3)).state == .acknowledged)
        #expect(try await f.store.acknowledge(transmissionID: id, kind: .delivered, detail: "DSN 2.0.0", now: JournalFixture.t0.plus(4)).state == .delivered)
        #expect(try await f.store.acknowledge(transmissionID: id, kind: .read, detail: "MDN displayed", now: JournalFixture.t0.plus(5)).state == .read)
        let t = try #require(try await f.store.transmission(id: id))
        #expect(t.messageID == "<abc@passerelle.test>")
        #expect(t.leaseOwner == nil)
        #expect(try await f.store.acknowledgements(transmissionID: id).map(\.kind) == [.acknowledged, .delivered, .read])
        let attempts = try await f.store.attempts(transmissionID: id)
        #expect(attempts.count == 1)
        #expect(attempts[0].outcome == "sent")
        #expect(attempts[0].response == "250 2.0.0 queued as X")
        #expect(attempts[0].startedAt == JournalFixture.t0)
        #expect(attempts[0].endedAt == JournalFixture.t0.plus(2))
    }

    @Test(arguments: JournalBackend.allCases) func acknowledgementsOutOfOrderNeverMoveBackwards(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1, targets: [.mssantePatient])
        let claim = try #require(try await f.store.claimNext(target: .mssantePatient, now: JournalFixture.t0, lease: 60, owner: "w"))
        _ = try await f.store.complete(claim, owner: "w", outcome: .success(), now: JournalFixture.t0)
        let id = claim.transmission.id
        #expect(try await f.store.acknowledge(transmissionID: id, kind: .read, detail: nil, now: JournalFixture.t0).state == .read)
        #expect(try await f.store.acknowledge(transmissionID: id, kind: .delivered, detail: nil, now: JournalFixture.t0).state == .read)
        #expect(try await f.store.acknowledgements(transmissionID: id).count == 2)
    }

    /// DSN "failed" or an MDN integration error after a successful send: failed with the
    /// reason; found again by its Message-ID; a read transmission cannot fail any more.
    @Test(arguments: JournalBackend.allCases) func negativeAcknowledgementFailsASentTransmission(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        try await f.queued(1, targets: [.mssantePS])
        try await f.queued(2, targets: [.mssantePS])
        var ids: [Int64] = []
        for n in 1...2 {
            let claim = try #require(try await f.store.claimNext(target: .mssantePS, now: JournalFixture.t0, lease: 60, owner: "w"))
            try await f.store.recordMessageID("<m\(n)@passerelle.test>", transmissionID: claim.transmission.id, owner: "w")
            _ = try await f.store.complete(claim, owner: "w", outcome: .success(), now: JournalFixture.t0)
            ids.append(claim.transmission.id)
        }
        #expect(try await f.store.transmission(messageID: "<m2@passerelle.test>")?.id == ids[1])
        #expect(try await f.store.transmission(messageID: "<none@passerelle.test>") == nil)

        _ = try await f.store.acknowledge(transmissionID: ids[0], kind: .delivered, detail: nil, now: JournalFixture.t0.plus(1))
        let failed = try await f.store.acknowledgeFailure(transmissionID: ids[0], reason: "MDN error 902^Patient inconnu",
                                                          now: JournalFixture.t0.plus(2))
        #expect(failed.state == .failed && failed.lastError == "MDN error 902^Patient inconnu" && failed.alerted)
        // A second report changes nothing; a late positive one is refused.
        #expect(try await f.store.acknowledgeFailure(transmissionID: ids[0], reason: "again", now: JournalFixture.t0.plus(3)).lastError
                == "MDN error 902^Patient inconnu")
        await #expect(throws: JournalError.self) {
            _ = try await f.store.acknowledge(transmissionID: ids[0], kind: .read, detail: nil, now: JournalFixture.t0.plus(4))
        }
        _ = try await f.store.acknowledge(transmissionID: ids[1], kind: .read, detail: nil, now: JournalFixture.t0.plus(1))
        do {
            _ = try await f.store.acknowledgeFailure(transmissionID: ids[1], reason: "late", now: JournalFixture.t0.plus(2))
            Issue.record("a read transmission failed")
        } catch {
            guard case .illegalTransition(ids[1], .read, .failed) = error else { Issue.record("\(error)"); return }
        }
    }

    @Test(arguments: JournalBackend.allCases) func illegalTransitionsAreRefused(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let t = try await f.queued(1)[0]
        // An acknowledgement for something never sent.
        await #expect(throws: JournalError.self) {
            _ = try await f.store.acknowledge(transmissionID: t.id, kind: .delivered, detail: nil, now: JournalFixture.t0)
        }
        let claim = try #require(try await f.store.claimNext(target: .dmp, now: JournalFixture.t0, lease: 60, owner: "w"))
        // "Success" into a non-success state.
        for bad in [TransmissionState.failed, .queued, .retryWait, .sending, .read] {
            let error = await #expect(throws: JournalError.self) {
                _ = try await f.store.complete(claim, owner: "w", outcome: .success(state: bad), now: JournalFixture.t0)
            }
            if case .illegalTransition(let id, let from, let to) = error {
                #expect(id == t.id && from == .sending && to == bad)
            } else {
                Issue.record("expected illegalTransition for \(bad), got \(String(describing: error))")
            }
        }
        // Completing twice: the second finds no lease.
        _ = try await f.store.complete(claim, owner: "w", outcome: .failure(.schema("cvc-complex-type.2.4.a")), now: JournalFixture.t0)
        let twice = await #expect(throws: JournalError.self) {
            _ = try await f.store.complete(claim, owner: "w", outcome: .success(), now: JournalFixture.t0)
        }
        #expect(twice?.description.contains("no longer leased") == true)
        // failed → sent via acknowledgement is illegal too.
        await #expect(throws: JournalError.self) {
            _ = try await f.store.acknowledge(transmissionID: t.id, kind: .acknowledged, detail: nil, now: JournalFixture.t0)
        }
        #expect(try await f.store.transmission(id: t.id)?.state == .failed)
    }

    @Test(arguments: JournalBackend.allCases) func documentStatesReceivedBuiltQueuedInOrder(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let doc = JournalFixture.document(7)
        _ = try await f.store.accept(doc, content: Data("x".utf8), input: nil, stay: nil, now: JournalFixture.t0)
        #expect(try await f.store.documents(in: .received).map(\.id) == [doc.id])
        let early = await #expect(throws: JournalError.self) {
            _ = try await f.store.enqueue(documentID: doc.id, version: 1, targets: [.dmp], now: JournalFixture.t0)
        }
        #expect(early?.description.contains("is received") == true)
        let built = try await f.store.markBuilt(documentID: doc.id, version: 1, built: Data("<cda/>".utf8), now: JournalFixture.t0)
        #expect(built.state == .built)
        #expect(built.builtSHA256 == BlobStore.sha256Hex(Data("<cda/>".utf8)))
        #expect(try await f.store.document(id: doc.id, version: 1)?.builtSHA256 == built.builtSHA256)
        await #expect(throws: JournalError.self) {
            _ = try await f.store.markBuilt(documentID: doc.id, version: 1, built: Data("<cda/>".utf8), now: JournalFixture.t0)
        }
        await #expect(throws: JournalError.self) {
            _ = try await f.store.markBuilt(documentID: "nope", version: 1, built: Data(), now: JournalFixture.t0)
        }
        _ = try await f.store.enqueue(documentID: doc.id, version: 1, targets: [.dmp], now: JournalFixture.t0)
        #expect(try await f.store.documents(in: .queued).map(\.id) == [doc.id])
        #expect(try await f.store.documents(in: .received).isEmpty)
    }
}

@Suite struct UniquenessTests {
    @Test(arguments: JournalBackend.allCases) func enqueueTwiceNeverCreatesASecondTransmission(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let first = try await f.queued(1, targets: [.dmp, .mssantePS])
        let again = try await f.store.enqueue(documentID: first[0].documentID, version: 1, targets: [.dmp, .mssantePS, .mssantePatient],
                                              now: JournalFixture.t0.plus(10))
        #expect(again.count == 3)
        #expect(again[0].id == first[0].id && again[1].id == first[1].id)
        #expect(again[0].createdAt == JournalFixture.t0)
        #expect(try await f.store.transmissions(matching: TransmissionFilter()).count == 3)
    }

    @Test(arguments: JournalBackend.allCases) func theDatabaseItselfRefusesASecondRowForTheSameKey(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let t = try await f.queued(1)[0]
        // Even a writer that bypasses the store cannot create the duplicate.
        let raw = try f.raw()
        let error = try #require(throws: RawDatabase.Failure.self) {
            try raw.run("""
                INSERT INTO transmissions (document_id, version, target, state, created_at, created_month, updated_at)
                VALUES (?, 1, 'dmp', 'queued', 0, '1970-01', 0)
                """, [t.documentID])
        }
        #expect(error.isUniqueViolation)
        // The refusal names the (document, version, target) key: SQLite by its columns, PostgreSQL by its constraint.
        let key = switch backend {
        case .sqlite: "transmissions.document_id, transmissions.version, transmissions.target"
        case .postgresql: "transmissions_document_id_version_target_key"
        }
        #expect(error.message.contains(key))
        // And an unknown target is refused by the CHECK constraint.
        #expect(throws: RawDatabase.Failure.self) {
            try raw.run("""
                INSERT INTO transmissions (document_id, version, target, state, created_at, created_month, updated_at)
                VALUES (?, 1, 'fax', 'queued', 0, '1970-01', 0)
                """, [t.documentID])
        }
    }

    @Test(arguments: JournalBackend.allCases) func theSameFileDroppedTwiceIsRecognised(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let content = Data("%PDF-1.7 same bytes".utf8)
        let input = InputFile(sha256: BlobStore.sha256Hex(content), fileName: "ldl.pdf")
        let doc = JournalFixture.document(1)
        let first = try await f.store.accept(doc, content: content, input: input, stay: nil, now: JournalFixture.t0)
        guard case .accepted(let stored) = first else { Issue.record("first drop not accepted: \(first)"); return }
        #expect(stored.blobSHA256 == input.sha256)
        // Same file again (the producer retried, or the operator copied it twice).
        var other = JournalFixture.document(2)
        other.id = "1.2.250.1.999.1.2"
        let second = try await f.store.accept(other, content: content,
                                              input: InputFile(sha256: input.sha256, fileName: "ldl-copy.pdf"),
                                              stay: nil, now: JournalFixture.t0.plus(5))
        #expect(second == .duplicateInput(documentID: doc.id, version: 1))
        #expect(try await f.store.document(id: other.id, version: 1) == nil)
        // A different file carrying the same document id and version.
        let third = try await f.store.accept(doc, content: Data("different bytes".utf8),
                                             input: InputFile(sha256: BlobStore.sha256Hex(Data("different bytes".utf8)), fileName: "x.pdf"),
                                             stay: nil, now: JournalFixture.t0)
        guard case .duplicateDocument(let existing) = third else { Issue.record("expected duplicateDocument, got \(third)"); return }
        #expect(existing.id == doc.id)
        // A second store (another process) sees the same.
        let other2 = try f.secondStore()
        #expect(try await other2.accept(doc, content: content, input: input, stay: nil, now: JournalFixture.t0)
            == .duplicateInput(documentID: doc.id, version: 1))
    }

    @Test(arguments: JournalBackend.allCases) func aNewVersionOfADocumentIsANewDocument(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let v1 = JournalDocument(id: "1.2.3.1", setID: "1.2.3", version: 1, kind: .biologyReport, finess: JournalFixture.finess,
                                 receivedAt: JournalFixture.t0)
        var v2 = v1
        v2.id = "1.2.3.2"
        v2.version = 2
        #expect(try await f.store.accept(v1, content: Data("v1".utf8), input: nil, stay: nil, now: JournalFixture.t0) != .duplicateInput(documentID: nil, version: nil))
        guard case .accepted = try await f.store.accept(v2, content: Data("v2".utf8), input: nil, stay: nil, now: JournalFixture.t0) else {
            Issue.record("version 2 refused"); return
        }
        // Another id claiming version 2 of the same set is a conflict.
        var clash = v2
        clash.id = "1.2.3.99"
        guard case .duplicateDocument(let existing) = try await f.store.accept(clash, content: Data("v2b".utf8), input: nil, stay: nil,
                                                                                now: JournalFixture.t0) else {
            Issue.record("same set and version accepted twice"); return
        }
        #expect(existing.id == "1.2.3.2")
    }
}
