import Foundation
import Journal
import MSSante
import OpenSSLKit
import PasserelleCore

/// The MSSanté transport for one target (`mssante_ps` or `mssante_patient`): routing matrix,
/// XDM archive, MIME mail, SMTP with DSN (``MSSante/MSSanteSender``). The Message-ID is
/// recorded in the journal before the first byte goes out, so acknowledgements find the
/// transmission and a resend after a crash reuses it.
public struct MSSanteTransmissionSender: TransmissionSender {
    public let target: Destination
    public let sender: MSSanteSender
    let journal: any JournalStore

    public init(target: Destination, sender: MSSanteSender, journal: any JournalStore) {
        self.target = target
        self.sender = sender
        self.journal = journal
    }

    public func send(_ claim: ClaimedTransmission, document: OutgoingDocument) async -> TransmissionOutcome {
        let events = StageClock.events
        do {
            // A large document's PDF is attached straight from the journaled record.
            let mail = try StageClock.measure(.sign, events) { () throws(MSSanteError) in
                try sender.prepare(document: document.cda, metadata: document.metadata, pdfFile: document.recordPDF, target: target,
                                   messageID: claim.transmission.messageID)
            }
            if claim.transmission.messageID != mail.message.messageID {
                do {
                    try await StageClock.measure(.journal, events) { () async throws(JournalError) in
                        try await journal.recordMessageID(mail.message.messageID, transmissionID: claim.transmission.id,
                                                          owner: claim.transmission.leaseOwner ?? "")
                    }
                } catch {
                    // Unrecorded, its acknowledgements could not be matched: try again later.
                    return .failure(.network("cannot record the Message-ID in the journal: \(error.description)"))
                }
            }
            return try await StageClock.measure(.send, events, threadCPU: false) { () async throws(MSSanteError) in
                try await sender.send(mail, only: claim.transmission.pendingRecipients)
            }.journalOutcome
        } catch {
            return .failure(error.failureCause, response: error.description)
        }
    }
}

extension GatewayService {
    /// The two MSSanté senders for `[mssante]` (empty when disabled), `concurrency` each.
    public static func mssanteSenders(_ c: PasserelleConfiguration, templates: URL, journal: any JournalStore,
                                      concurrency: Int = 2) throws(GatewayError) -> [(any TransmissionSender, Int)] {
        guard c.mssante.enabled else { return [] }
        let sender: MSSanteSender
        do {
            sender = try MSSanteSender(configuration: c, passphrase: try c.certificates.passphrase.openSSLPassphrase(),
                                       templatesDirectory: templates)
        } catch {
            throw .configuration("MSSanté sender: \(error)")
        }
        return [Destination.mssantePS, .mssantePatient].map {
            (MSSanteTransmissionSender(target: $0, sender: sender, journal: journal), concurrency)
        }
    }
}
