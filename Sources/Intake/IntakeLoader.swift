import Foundation
import PasserelleCore

/// What a claimed inbox file turns out to be.
public enum IntakeItem: Sendable, Hashable {
    /// A document to share (from a PDF/CDA + sidecar pair or an ORU/MDM message).
    case document(IncomingDocument)
    /// An admission or discharge (ADT^A01 / ADT^A03) for the indicators.
    case stay(StayEvent)
}

/// Reads claimed files into ``IntakeItem`` values; every failure is a ``RefusalReason``
/// ready for ``InboxScanner/refuse(_:reason:at:)``.
public struct IntakeLoader: Sendable {
    public var reader: HL7DocumentReader

    public init(reader: HL7DocumentReader = HL7DocumentReader()) { self.reader = reader }

    /// Loads one claim. A sidecar must pass `DocumentMetadata.validate()`; an HL7 document's
    /// metadata is not validated here because a CDA carries most of it in its own header.
    public func load(_ claim: ClaimedFile) throws(RefusalReason) -> IntakeItem {
        switch claim {
        case .pdf(let document, let sidecar), .cda(let document, let sidecar):
            let metadata: DocumentMetadata
            let json = try read(sidecar)
            do { metadata = try DocumentMetadata.decode(sidecar: json) } catch { throw .invalidSidecar(error) }
            let problems = metadata.validate()
            guard problems.isEmpty else { throw .invalidSidecar(.invalid(problems)) }
            let data = try read(document)
            let content: DocumentContent
            if case .pdf = claim {
                guard data.starts(with: Array("%PDF-".utf8)) else { throw .invalidContent("\(document.lastPathComponent) is not a PDF (it does not start with %PDF-)") }
                content = .pdf(data)
            } else {
                let head = String(decoding: data.prefix(512), as: UTF8.self).drop { $0.isWhitespace || $0 == "\u{FEFF}" }
                guard head.hasPrefix("<") else { throw .invalidContent("\(document.lastPathComponent) is not XML") }
                content = .cda(data)
            }
            return .document(IncomingDocument(metadata: metadata, content: content, action: metadata.action, controlID: ""))
        case .hl7(let url):
            return try loadMessage(try read(url))
        }
    }

    /// Reads one HL7 v2 message (from a file or an MLLP frame): ADT^A01/A03 is a stay, anything
    /// else must be a document message.
    public func loadMessage(_ data: Data) throws(RefusalReason) -> IntakeItem {
        let message: HL7Message
        do { message = try HL7Message(data: data) } catch { throw .invalidMessage(.parse(error)) }
        return try load(message)
    }

    /// Maps an already parsed message (see ``loadMessage(_:)``).
    public func load(_ message: HL7Message) throws(RefusalReason) -> IntakeItem {
        do {
            if message.messageType.code == "ADT" { return .stay(try StayEvent(message: message, timeZone: reader.timeZone)) }
            return .document(try reader.read(message))
        } catch { throw .invalidMessage(error) }
    }

    private func read(_ url: URL) throws(RefusalReason) -> Data {
        do { return try Data(contentsOf: url) } catch {
            throw .invalidContent("cannot read \(url.lastPathComponent): \((error as NSError).localizedDescription)")
        }
    }
}
