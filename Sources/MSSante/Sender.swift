import CDA
import Foundation
import Journal
import PasserelleCore
import XMLKit

/// Why a document could not be mailed. Routing and packaging errors happen before anything
/// is sent; SMTP errors concern the whole session or transaction.
public enum MSSanteError: Error, Sendable, CustomStringConvertible, LocalizedError {
    case routing(MSSanteRoutingError)
    case packaging(XDMError)
    case composing(MailError)
    /// The target is not an MSSanté destination, or the routing matrix gives it no recipient.
    case noRecipientFor(Destination)
    case smtp(SMTPError)
    /// The configuration cannot be used (missing keys, unreadable certificate).
    case configuration(String)

    public var description: String {
        switch self {
        case let .configuration(reason): "MSSanté configuration: \(reason)"
        case let .routing(error): error.description
        case let .packaging(error): error.description
        case let .composing(error): error.description
        case let .noRecipientFor(target): "no MSSanté recipient for \(target.rawValue) after applying the routing matrix"
        case let .smtp(error): error.description
        }
    }

    public var errorDescription: String? { description }

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

/// One recipient's fate in an SMTP transaction.
public struct MSSanteRecipientResult: Sendable, Hashable {
    public var address: String
    public var outcome: SMTPRecipientOutcome
}

/// What happened to one mail (one journal transmission).
public struct MSSanteSendResult: Sendable, Hashable {
    public var audience: MailAudience
    /// `<ENVID@domain>`: record it in the journal (``JournalStore/recordMessageID(_:transmissionID:owner:)``)
    /// so acknowledgements find the transmission.
    public var messageID: String
    public var envelopeID: String
    /// In envelope order.
    public var recipients: [MSSanteRecipientResult]
    public var tlsVersion: String
    public var cipher: String

    /// Recipients the server took responsibility for.
    public var accepted: [String] { recipients.filter { if case .accepted = $0.outcome { true } else { false } }.map(\.address) }

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

/// Sends a built CDA over MSSanté: routing matrix, XDM archive, MIME mail, SMTP with DSN.
/// One call per journal transmission (`mssante_ps` or `mssante_patient`).
public struct MSSanteSender: Sendable {
    public let client: SMTPClient
    public let xdm: XDMBuilder
    public let composer: MSSanteMailComposer

    public init(client: SMTPClient, xdm: XDMBuilder, composer: MSSanteMailComposer) {
        self.client = client
        self.xdm = xdm
        self.composer = composer
    }

    /// Builds the mail for `target` without sending it: everything that can be refused
    /// before the network (routing matrix, unqualified identity, missing metadata) is.
    /// `pdf` is the human-readable copy attached to the mail; nil takes the PDF out of an N1
    /// CDA's nonXMLBody, and a structured CDA without one goes with the XDM archive alone.
    /// `pdfFile`: the PDF in a file (a large document: the journaled record), attached by streaming.
    public func prepare(document: CDADocument, metadata: DocumentMetadata, pdf: Data? = nil, pdfFile: FileSlice? = nil,
                        target: Destination, messageID: String? = nil, now: Date = Date()) throws(MSSanteError) -> MSSanteMail {
        let audience: MailAudience
        switch target {
        case .mssantePS: audience = .professionals
        case .mssantePatient: audience = .patient
        case .dmp: throw .noRecipientFor(target)
        }
        let recipients: MSSanteRecipients
        do { recipients = try MSSanteRouting.recipients(for: metadata) } catch { throw .routing(error) }
        let only = MSSanteRecipients(professionals: audience == .professionals ? recipients.professionals : [],
                                     patient: audience == .patient ? recipients.patient : nil)
        guard !only.all.isEmpty else { throw .noRecipientFor(target) }
        let package: XDMPackage
        do { package = try xdm.build(document: document, metadata: metadata, submissionTime: now) } catch { throw .packaging(error) }
        let mails: [MSSanteMail]
        do {
            mails = try composer.compose(document: document, metadata: metadata, recipients: only, xdm: package,
                                         pdf: pdf ?? (pdfFile == nil ? Self.embeddedPDF(document.data) : nil), pdfFile: pdfFile,
                                         date: now, messageIDs: messageID.map { [audience: $0] } ?? [:])
        } catch { throw .composing(error) }
        guard let mail = mails.first(where: { $0.audience == audience }) else { throw .noRecipientFor(target) }
        return mail
    }

    /// Prepares and sends the mail for `target`. Pass the journal's `messageID` when resending
    /// after a crash, so the recipients' systems can recognise the duplicate.
    public func send(document: CDADocument, metadata: DocumentMetadata, pdf: Data? = nil, target: Destination,
                     messageID: String? = nil, now: Date = Date()) async throws(MSSanteError) -> MSSanteSendResult {
        let mail = try prepare(document: document, metadata: metadata, pdf: pdf, target: target, messageID: messageID, now: now)
        return try await send(mail)
    }

    /// The PDF of an N1 CDA (`nonXMLBody/text`, base64, application/pdf), if any.
    static func embeddedPDF(_ cda: Data) -> Data? {
        // The CDA was accepted at intake and comes from the journal: its own budget, no byte cap.
        guard let xml = try? XMLDocument.parse(cda, options: CDAParseBudget.journaled),
              let text = try? xml.string("string(/h:ClinicalDocument/h:component/h:nonXMLBody/h:text[@mediaType='application/pdf'])",
                                         namespaces: ["h": "urn:hl7-org:v3"]),
              let pdf = Data(base64Encoded: text, options: .ignoreUnknownCharacters), pdf.starts(with: Array("%PDF-".utf8))
        else { return nil }
        return pdf
    }

    /// Sends a prepared mail. `only`: the envelope goes to these recipients of the mail alone
    /// (the ones a partial delivery left pending); the headers still name every recipient.
    public func send(_ mail: MSSanteMail, only: [String]? = nil) async throws(MSSanteError) -> MSSanteSendResult {
        let body: MailBody
        do { body = try mail.message.renderedBody() } catch { throw .composing(error) }
        // Never widened back to every recipient: those not pending have the mail already.
        let to = only.flatMap { $0.isEmpty ? nil : $0 } ?? mail.message.to
        let envelope = SMTPEnvelope(from: mail.message.from, recipients: to, envelopeID: mail.envelopeID)
        let delivery: SMTPDelivery
        do { delivery = try await client.send(body, envelope: envelope) } catch { throw .smtp(error) }
        return MSSanteSendResult(
            audience: mail.audience, messageID: mail.message.messageID, envelopeID: mail.envelopeID,
            recipients: delivery.outcomes.map { MSSanteRecipientResult(address: $0.recipient, outcome: $0.outcome) },
            tlsVersion: delivery.tlsVersion, cipher: delivery.cipher)
    }
}
