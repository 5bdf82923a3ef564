import CDA
import Foundation
import IHE
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

}

/// One recipient's fate in an SMTP transaction.
public struct MSSanteRecipientResult: Sendable, Hashable {
    public var address: String
    public var outcome: SMTPRecipientOutcome
}

/// What happened to one mail: the transport's own result, mapped to a journal outcome by the gateway.
public struct MSSanteSendResult: Sendable, Hashable {
    public var audience: MailAudience
    /// `<ENVID@domain>`, the same as the prepared mail's (``MSSanteMail``): the caller keeps it
    /// before sending (``MSSanteSender/prepare(document:metadata:pdf:pdfFile:target:messageID:now:)``
    /// gives it back first) so acknowledgements, and a resend after a crash, find the mail.
    public var messageID: String
    public var envelopeID: String
    /// In envelope order.
    public var recipients: [MSSanteRecipientResult]
    public var tlsVersion: String
    public var cipher: String

    /// Recipients the server took responsibility for.
    public var accepted: [String] { recipients.filter { if case .accepted = $0.outcome { true } else { false } }.map(\.address) }

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
    public static func embeddedPDF(_ cda: Data) -> Data? {
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
