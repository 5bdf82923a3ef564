import Foundation
import PasserelleCore

/// A minimal MIME reader: enough to take apart `multipart/report` messages (RFC 6522), not a
/// general mail parser. Header values are unfolded; bodies are kept as raw bytes.
struct MIMEEntity {
    var headers: [(name: String, value: String)]
    var body: Data

    init(_ data: Data) {
        let bytes = [UInt8](data)
        // The header block ends at the first empty line (CRLF CRLF, or LF LF).
        var end = bytes.count, bodyStart = bytes.count
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0A {
                if i + 1 < bytes.count && bytes[i + 1] == 0x0A { end = i; bodyStart = i + 2; break }
                if i + 2 < bytes.count && bytes[i + 1] == 0x0D && bytes[i + 2] == 0x0A { end = i; bodyStart = i + 3; break }
            }
            i += 1
        }
        if bytes.first == 0x0D || bytes.first == 0x0A { end = 0; bodyStart = bytes.first == 0x0D ? 2 : 1 }  // no headers
        headers = Self.fields(String(decoding: bytes[0..<min(end, bytes.count)], as: UTF8.self))
        body = bodyStart < bytes.count ? Data(bytes[bodyStart...]) : Data()
    }

    /// Header fields of a block (RFC 5322 §2.2.3 unfolding); also used for the field groups
    /// of delivery-status and disposition-notification bodies.
    static func fields(_ text: String) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = rawLine.hasSuffix("\r") ? String(rawLine.dropLast()) : String(rawLine)
            if let first = line.first, first == " " || first == "\t", !result.isEmpty {
                result[result.count - 1].value += " " + line.trimmingWhitespace()
            } else if let colon = line.firstIndex(of: ":") {
                result.append((String(line[..<colon]).trimmingWhitespace(),
                               String(line[line.index(after: colon)...]).trimmingWhitespace()))
            }
        }
        return result
    }

    func header(_ name: String) -> String? { headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value }

    /// `type/subtype`, lower case (text/plain when absent).
    var contentType: String {
        (header("Content-Type")?.split(separator: ";").first.map { $0.trimmingWhitespace().lowercased() }) ?? "text/plain"
    }

    /// A parameter of Content-Type (`boundary`, `report-type`), unquoted.
    func contentTypeParameter(_ name: String) -> String? {
        guard let value = header("Content-Type") else { return nil }
        for piece in value.split(separator: ";").dropFirst() {
            let pair = piece.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingWhitespace().lowercased() == name else { continue }
            return pair[1].trimmingWhitespace().trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return nil
    }

    /// The body with its Content-Transfer-Encoding undone (base64, quoted-printable).
    var decodedBody: Data {
        switch header("Content-Transfer-Encoding")?.lowercased() {
        case "base64": Data(base64Encoded: body, options: .ignoreUnknownCharacters) ?? body
        case "quoted-printable": Self.quotedPrintable(body)
        default: body
        }
    }

    /// The parts of a multipart entity (empty for anything else).
    var parts: [MIMEEntity] {
        guard contentType.hasPrefix("multipart/"), let boundary = contentTypeParameter("boundary") else { return [] }
        let text = String(decoding: body, as: UTF8.self)
        var parts: [MIMEEntity] = []
        let pieces = text.components(separatedBy: "--" + boundary)
        for piece in pieces.dropFirst() {  // before the first delimiter: preamble
            if piece.hasPrefix("--") { break }  // close delimiter
            var content = Substring(piece)
            // The line break around a delimiter belongs to it ("\r\n" is one Character).
            if content.first == "\r\n" || content.first == "\n" { content = content.dropFirst() }
            if content.last == "\r\n" || content.last == "\n" { content = content.dropLast() }
            parts.append(MIMEEntity(Data(content.utf8)))
        }
        return parts
    }

    static func quotedPrintable(_ data: Data) -> Data {
        var out = Data()
        let bytes = [UInt8](data)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "="), i + 1 < bytes.count {
                if bytes[i + 1] == 0x0D || bytes[i + 1] == 0x0A {  // soft line break
                    i += bytes[i + 1] == 0x0D && i + 2 < bytes.count && bytes[i + 2] == 0x0A ? 3 : 2
                    continue
                }
                if i + 2 < bytes.count, let value = UInt8(String(decoding: bytes[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                    out.append(value)
                    i += 3
                    continue
                }
            }
            out.append(bytes[i])
            i += 1
        }
        return out
    }
}

/// A delivery status notification (RFC 3464) or a message disposition notification
/// (RFC 8098) read from the application mailbox.
public struct MailReport: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// `multipart/report; report-type=delivery-status`.
        case deliveryStatus = "DSN"
        /// `multipart/report; report-type=disposition-notification`.
        case disposition = "MDN"
    }

    /// What the report says about one recipient.
    public enum Outcome: Sendable, Hashable {
        /// DSN `Action: delivered` (or relayed/expanded: handed on, no failure to expect from us).
        case delivered(status: String?)
        /// DSN `Action: failed`, with the status code and the remote server's diagnostic.
        case failed(status: String?, diagnostic: String?)
        /// DSN `Action: delayed`: still trying; nothing to record yet.
        case delayed
        /// MDN `displayed`, or `processed` without error: the recipient (person or system) has it.
        case read(disposition: String)
        /// MDN `processed/Error: <code>^<label>` (ANS integration errors 900–906).
        case integrationError(code: String, label: String)
        /// MDN `deleted`, `dispatched` or anything else: no change to the transmission.
        case other(disposition: String)
    }

    public struct Entry: Sendable, Hashable {
        /// Original-Recipient (as sent in ORCPT), else Final-Recipient, without the `rfc822;` type.
        public var recipient: String?
        public var outcome: Outcome

        public init(recipient: String?, outcome: Outcome) {
            self.recipient = recipient
            self.outcome = outcome
        }
    }

    public var kind: Kind
    /// DSN `Original-Envelope-Id` (our ENVID).
    public var envelopeID: String?
    /// MDN `Original-Message-ID`, or for a DSN the Message-ID of the returned headers.
    public var originalMessageID: String?
    public var entries: [Entry]

    /// The ANS integration error codes of MDNs (transmission guide, "codes d'erreur").
    public static let integrationErrorLabels: [String: String] = [
        "900": "wrong version on a replacement or deletion",
        "901": "author not allowed to replace or delete",
        "902": "unknown patient",
        "903": "INS absent",
        "904": "INS does not match",
        "905": "INS incomplete",
        "906": "other error",
    ]

    /// Parses a message; nil when it is not a DSN or MDN (an ordinary mail, a reply).
    public static func parse(_ message: Data) -> MailReport? {
        let top = MIMEEntity(message)
        guard top.contentType == "multipart/report",
              let reportType = top.contentTypeParameter("report-type")?.lowercased() else { return nil }
        let parts = top.parts
        switch reportType {
        case "delivery-status":
            guard let status = parts.first(where: { $0.contentType == "message/delivery-status" || $0.contentType == "message/global-delivery-status" })
            else { return nil }
            let groups = fieldGroups(status.decodedBody)
            guard let perMessage = groups.first else { return nil }
            var report = MailReport(kind: .deliveryStatus, envelopeID: value("Original-Envelope-Id", in: perMessage),
                                    originalMessageID: nil, entries: [])
            // RET=HDRS returns the original headers (text/rfc822-headers); RET=FULL the message.
            if let original = parts.first(where: { $0.contentType == "text/rfc822-headers" || $0.contentType == "message/rfc822" }) {
                report.originalMessageID = MIMEEntity(original.decodedBody).header("Message-ID")
            }
            for group in groups.dropFirst() {
                guard let action = value("Action", in: group)?.lowercased() else { continue }
                let statusCode = value("Status", in: group)
                let outcome: Outcome = switch action {
                case "delivered", "relayed", "expanded": .delivered(status: statusCode)
                case "failed": .failed(status: statusCode, diagnostic: value("Diagnostic-Code", in: group).map(stripType))
                default: .delayed
                }
                report.entries.append(Entry(recipient: recipient(in: group), outcome: outcome))
            }
            return report
        case "disposition-notification":
            guard let notification = parts.first(where: {
                $0.contentType == "message/disposition-notification" || $0.contentType == "message/global-disposition-notification"
            }) else { return nil }
            let fields = fieldGroups(notification.decodedBody).flatMap { $0 }
            guard let disposition = value("Disposition", in: fields) else { return nil }
            return MailReport(kind: .disposition, envelopeID: nil, originalMessageID: value("Original-Message-ID", in: fields),
                              entries: [Entry(recipient: recipient(in: fields), outcome: dispositionOutcome(disposition))])
        default:
            return nil
        }
    }

    /// `automatic-action/MDN-sent-automatically; processed/Error: 902^Patient inconnu`.
    static func dispositionOutcome(_ field: String) -> Outcome {
        guard let semicolon = field.firstIndex(of: ";") else { return .other(disposition: field) }
        let type = field[field.index(after: semicolon)...].trimmingWhitespace()
        let base = type.split(separator: "/", maxSplits: 1).first.map { $0.lowercased() } ?? ""
        if let error = type.range(of: "error:", options: .caseInsensitive) {
            let detail = type[error.upperBound...].trimmingWhitespace()
            let pieces = detail.split(separator: "^", maxSplits: 1).map { $0.trimmingWhitespace() }
            let code = pieces.first ?? ""
            let label = pieces.count > 1 ? pieces[1] : integrationErrorLabels[code] ?? ""
            return .integrationError(code: code, label: label)
        }
        switch base {
        case "displayed", "processed": return .read(disposition: base)
        default: return .other(disposition: base)
        }
    }

    /// The blank-line separated field groups of a report body.
    static func fieldGroups(_ body: Data) -> [[(name: String, value: String)]] {
        let text = String(decoding: body, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        return text.components(separatedBy: "\n\n").map { MIMEEntity.fields($0) }.filter { !$0.isEmpty }
    }

    static func value(_ name: String, in fields: [(name: String, value: String)]) -> String? {
        fields.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    static func recipient(in fields: [(name: String, value: String)]) -> String? {
        (value("Original-Recipient", in: fields) ?? value("Final-Recipient", in: fields)).map(stripType)
    }

    /// `rfc822;a@b.fr` → `a@b.fr`; `smtp; 550 5.1.1 …` → `550 5.1.1 …`.
    static func stripType(_ text: String) -> String {
        guard let semicolon = text.firstIndex(of: ";") else { return text }
        return text[text.index(after: semicolon)...].trimmingWhitespace()
    }
}
