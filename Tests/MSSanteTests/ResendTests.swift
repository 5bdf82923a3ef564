import Delivery
import Foundation
import Handoff
import Journal
import MSSante
import PasserelleCore
import Testing
import TestSupport

/// `passerelle resend --include-sent` for MSSanté: the mail goes out again, as a new message.
@Suite(.serialized) struct MSSanteResendTests {
    @Test func aDeliveredMailResentOnRequestIsANewMessage() async throws {
        let smtp = try TestSMTPServer(mode: "starttls")
        defer { smtp.stop() }
        let f = try await GatewayMailFixture(smtp, folder: "mss-resend")
        defer { f.remove() }
        let (journal, transport, outgoing) = (f.journal, f.transport, f.outgoing)
        func sendOnce(_ owner: String) async throws -> String {
            let claim = try #require(try await journal.claimNext(target: .mssantePatient, now: Date(), lease: 60, owner: owner))
            let outcome = await transport.send(claim, document: outgoing)
            _ = try await journal.complete(claim, owner: owner, outcome: outcome, now: Date())
            return try #require(try await journal.transmission(id: claim.transmission.id)?.messageID)
        }

        let first = try await sendOnce("w1")
        let id = try #require(try await journal.transmissions(matching: TransmissionFilter()).first?.id)
        _ = try await journal.acknowledge(transmissionID: id, kind: .delivered, detail: "DSN 2.0.0", now: Date())
        let requeued = try await journal.requeue(TransmissionFilter(transmissionIDs: [id]), includingSucceeded: true, now: Date())
        #expect(requeued.map(\.state) == [.queued])
        let second = try await sendOnce("w2")

        #expect(first != second, "a mail sent again is a new message")
        let mails = try smtp.received().map { try MailTests.parse(try #require(Data(base64Encoded: $0.data))) }
        #expect(mails.count == 2)
        #expect(mails.compactMap { $0.headers["Message-ID"]?.first?.trimmingCharacters(in: .whitespaces) } == [first, second])
        #expect(try await journal.attempts(transmissionID: id).count == 2)
        #expect(try await journal.acknowledgements(transmissionID: id).map(\.kind) == [.delivered], "history kept")
        #expect(try await journal.transmission(id: id)?.state == .sent)
    }
}

/// One journaled document queued for `mssante_patient`, and the Gateway transport over `smtp`.
struct GatewayMailFixture {
    let folder: URL
    let journal: SQLiteJournalStore
    let metadata: DocumentMetadata
    let journaled: JournalDocument
    let transport: MSSanteTransmissionSender
    let outgoing: OutgoingDocument

    init(_ smtp: TestSMTPServer, folder name: String) async throws {
        folder = try TestPaths.temporaryDirectory(name)
        journal = try SQLiteJournalStore(path: folder.appendingPathComponent("journal.db").path,
                                         blobs: try BlobStore(root: folder.appendingPathComponent("blobs")))
        metadata = Fixtures.metadata(flags: [.destMSSantePatient])
        let document = try XDMTests.cdaBuilder.build(metadata: metadata, pdf: TestPDF.make())
        journaled = JournalDocument(id: document.id.description, kind: .dischargeLetter, finess: "750803447", receivedAt: Date())
        _ = try await journal.accept(journaled, content: Data("in".utf8), input: nil, stay: nil, now: Date())
        _ = try await journal.markBuilt(documentID: journaled.id, version: 1, built: document.data, now: Date())
        _ = try await journal.enqueue(documentID: journaled.id, version: 1, targets: [.mssantePatient], now: Date())
        transport = MSSanteTransmissionSender(target: .mssantePatient, sender: try SMTPTests.sender(smtp, security: .startTLS),
                                              journal: journal)
        outgoing = OutgoingDocument(metadata: metadata, cda: document, journal: journaled)
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}
