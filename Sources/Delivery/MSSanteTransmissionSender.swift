import Foundation
import Handoff
import Journal
import Logging
import MSSante
import OpenSSLKit
import PasserelleCore
import Signing
import TestHooks

/// The MSSanté transport for one target (`mssante_ps` or `mssante_patient`): routing matrix,
/// XDM archive, MIME mail, SMTP with DSN (``MSSante/MSSanteSender``). The Message-ID is
/// recorded in the journal before the first byte goes out, so acknowledgements find the
/// transmission and a resend after a crash reuses it.
public struct MSSanteTransmissionSender: TransmissionSender {
    public let target: Destination
    public let sender: MSSanteSender
    let journal: any DeliveryQueue
    let logger = Logger(label: "passerelle.mssante")

    /// Starts the response of an attempt that resent an interrupted mail with no acknowledgement
    /// of the first: the recipient may hold it twice (same Message-ID).
    public static let possibleDuplicate = "possible duplicate: resent after an interrupted send that no acknowledgement confirmed; "

    public init(target: Destination, sender: MSSanteSender, journal: any DeliveryQueue) {
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
            CrashPoint.reached(.messageIDRecorded)
            let outcome = try await StageClock.measure(.send, events) { () async throws(MSSanteError) in
                try await sender.send(mail, only: claim.transmission.pendingRecipients)
            }.journalOutcome
            // The earlier send was interrupted and no acknowledgement settled it within
            // [mssante] uncertain_grace_seconds: if that mail had reached the relay, this is a
            // second copy (same Message-ID, so a receiving system can drop it). Said in the attempt.
            if claim.transmission.needsRecheck, claim.transmission.messageID != nil, case .success(let state, let response) = outcome {
                logger.warning("interrupted send not confirmed by an acknowledgement in time: resent with the same Message-ID (possible duplicate)",
                               metadata: ["transmission": "\(claim.transmission.id)", "document": "\(claim.transmission.documentID)",
                                          "target": "\(target.rawValue)"])
                return .success(state: state, response: Self.possibleDuplicate + (response ?? ""))
            }
            return outcome
        } catch {
            return .failure(error.failureCause, response: error.description)
        }
    }
}

// The transport's results in the journal's terms: MSSante knows nothing of the journal.
extension MSSanteError {
    /// How the journal should file this error: SMTP 4xx and network are retried, the rest is final.
    public var failureCause: FailureCause {
        switch self {
        case let .smtp(.transient(_, reply)): .smtpTemporary(code: reply.code, reply.text)
        case let .smtp(.permanent(_, reply)): .smtpPermanent(code: reply.code, reply.text)
        case let .smtp(error) where error.isTransient: .network(error.description)
        case .routing(.patientRequiresQualifiedINS): .identity(description)
        default: .permanent(description)
        }
    }
}

extension MSSanteSendResult {
    /// The journal outcome, per recipient: all accepted → `sent`; some accepted, or some 4xx
    /// beside 5xx → `partial` (the 4xx ones are retried later, alone; the 5xx ones are
    /// reported as the transmission's error); every recipient 4xx → retry them all; every
    /// recipient 5xx → a permanent failure with the server's text. A patient mail has one recipient, so the
    /// pending list (kept in the journal) only ever holds professionals' addresses.
    public var journalOutcome: TransmissionOutcome {
        let refusals = recipients.compactMap { result -> String? in
            switch result.outcome {
            case .accepted: nil
            case let .retryLater(reply), let .rejected(reply): "\(result.address): \(reply)"
            }
        }
        let replies = recipients.compactMap { result -> SMTPReply? in
            switch result.outcome {
            case .accepted: nil
            case let .retryLater(reply), let .rejected(reply): reply
            }
        }
        let text = refusals.joined(separator: "; ")
        let transient = replies.first(where: \.isTransient)
        if refusals.isEmpty { return .success(state: .sent, response: "accepted by the server (\(tlsVersion) \(cipher))") }
        let pending = recipients.filter { if case .retryLater = $0.outcome { true } else { false } }.map(\.address)
        // Some recipients are done (accepted, or refused for good): retry only the 4xx ones.
        // Every recipient 4xx is left a plain temporary failure (more likely the relay's trouble).
        if !accepted.isEmpty || (!pending.isEmpty && pending.count < refusals.count) {
            let cause: FailureCause = if let transient { .smtpTemporary(code: transient.code, text) }
                else { .smtpPermanent(code: replies.first?.code ?? 550, text) }
            return .partial(pending: pending, cause: cause,
                            response: "accepted for \(accepted.count) recipient(s); refused: " + text)
        }
        if let transient { return .failure(.smtpTemporary(code: transient.code, text)) }
        return .failure(.smtpPermanent(code: replies.first?.code ?? 550, text))
    }
}
