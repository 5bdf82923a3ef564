import CDA
import Foundation
import IHE
import PasserelleCore

/// Errors while composing a mail.
public enum MailError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// A header value would carry a line break or is not a usable address.
    case invalidHeader(name: String)
    case noRecipient
    case template(TemplateError)
    /// A file attached to the mail cannot be read.
    case attachmentUnreadable(String)

    public var description: String {
        switch self {
        case let .invalidHeader(name): "mail header \(name) has an invalid value (line break or malformed address)"
        case .noRecipient: "a mail needs at least one recipient"
        case let .template(error): "mail template: \(error)"
        case let .attachmentUnreadable(reason): "mail attachment: \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// An attachment, sent base64-encoded.
public struct MailAttachment: Sendable, Hashable {
    public var fileName: String
    public var contentType: String
    /// The content (empty when it is streamed from files, see ``isStreamed``).
    public var data: Data
    /// Content read from files while the mail is sent (a large document), instead of `data`.
    var pieces: [ContentBytes]?

    public init(fileName: String, contentType: String, data: Data) {
        self.fileName = fileName
        self.contentType = contentType
        self.data = data
    }

    /// An attachment read from `file` while the mail is sent.
    public init(fileName: String, contentType: String, file: FileSlice) {
        self.init(fileName: fileName, contentType: contentType, pieces: [.file(file)])
    }

    init(fileName: String, contentType: String, pieces: [ContentBytes]) {
        self.fileName = fileName
        self.contentType = contentType
        self.data = Data()
        self.pieces = pieces
    }

    /// True when the content is read from files while sending.
    public var isStreamed: Bool { pieces != nil }
}

/// A rendered message whose large attachments stay in their files: produced in chunks for
/// the SMTP DATA phase (base64 encoded on the fly), so a mail carrying a 50 MB document
/// needs a few hundred KB of memory, not three copies of 70 MB.
public struct MailBody: Sendable {
    enum Part: Sendable {
        case text(Data)
        case base64([ContentBytes])
    }

    let parts: [Part]

    /// Bytes on the wire (before dot-stuffing).
    public var count: Int {
        parts.reduce(0) { total, part in
            switch part {
            case .text(let d): total + d.count
            case .base64(let pieces): total + Base64Lines.length(of: pieces.reduce(0) { $0 + $1.count })
            }
        }
    }

    /// A one-shot chunk producer over the whole message.
    public func chunks() -> () throws -> Data? {
        var index = 0
        var current: Base64Lines?
        return {
            while index < parts.count {
                if let encoder = current {
                    if let chunk = try encoder.next() { return chunk }
                    current = nil
                    index += 1
                    continue
                }
                switch parts[index] {
                case .text(let d):
                    index += 1
                    if !d.isEmpty { return d }
                case .base64(let pieces):
                    current = Base64Lines(ContentReader(pieces))
                }
            }
            return nil
        }
    }

    /// The whole message in memory.
    public func joined() throws -> Data {
        let next = chunks()
        var out = Data()
        while let chunk = try next() { out.append(chunk) }
        return out
    }
}

/// An RFC 5322 message: headers, a text body and attachments, written as multipart/mixed.
public struct MailMessage: Sendable, Hashable {
    public var from: String
    public var to: [String]
    public var replyTo: String?
    public var subject: String
    public var body: String
    public var attachments: [MailAttachment]
    /// Extra headers, in order (X-MSS-*, Disposition-Notification-To).
    public var extraHeaders: [(String, String)] { extra.map { ($0.name, $0.value) } }
    /// `<id@domain>` — the journal keeps it to match DSN/MDN (Original-Message-ID).
    public let messageID: String
    public var date: Date

    private var extra: [Header]
    private struct Header: Sendable, Hashable { var name: String; var value: String }

    public init(from: String, to: [String], replyTo: String? = nil, subject: String, body: String,
                attachments: [MailAttachment] = [], messageID: String? = nil, date: Date = Date()) {
        self.from = from
        self.to = to
        self.replyTo = replyTo
        self.subject = subject
        self.body = body
        self.attachments = attachments
        let domain = from.split(separator: "@").last.map(String.init) ?? "localhost"
        self.messageID = messageID ?? "<\(UUID.random().uuidString.lowercased())@\(domain)>"
        self.date = date
        extra = []
    }

    /// Adds a header (written after the standard ones, in call order).
    public mutating func addHeader(_ name: String, _ value: String) {
        extra.append(Header(name: name, value: value))
    }

    public static func == (a: MailMessage, b: MailMessage) -> Bool {
        a.messageID == b.messageID && a.from == b.from && a.to == b.to && a.subject == b.subject && a.body == b.body
            && a.attachments == b.attachments && a.extra == b.extra && a.date == b.date && a.replyTo == b.replyTo
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(messageID) }

    /// The message as sent: CRLF line endings, 7-bit (non-ASCII only inside RFC 2047
    /// encoded-words and base64 parts), lines ≤ 78 characters.
    public func rendered() throws(MailError) -> Data {
        let body = try renderedBody()
        guard body.parts.count > 1 else { if case .text(let d) = body.parts.first { return d } else { return Data() } }
        do { return try body.joined() } catch { throw .attachmentUnreadable("\(error)") }
    }

    /// The message with streamed attachments kept as file pieces (``MailBody``): the same
    /// bytes as ``rendered()``.
    public func renderedBody() throws(MailError) -> MailBody {
        guard !to.isEmpty else { throw .noRecipient }
        for (name, address) in [("From", from)] + to.map({ ("To", $0) }) + (replyTo.map { [("Reply-To", $0)] } ?? []) {
            guard MSSanteRouting.isMailAddress(address) else { throw .invalidHeader(name: name) }
        }
        for header in extra {
            guard header.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }),
                  !header.value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) else { throw .invalidHeader(name: header.name) }
        }
        let boundary = "=_passerelle_" + UUID.random().uuidString.replacingOccurrences(of: "-", with: "")
        var parts: [MailBody.Part] = []
        var lines: [String] = []
        lines.append("Date: " + Self.rfc5322Date(date))
        lines.append("From: <\(from)>")
        lines.append(Self.fold("To: " + to.map { "<\($0)>" }.joined(separator: ", ")))
        if let replyTo { lines.append("Reply-To: <\(replyTo)>") }
        // A long domain pushes the id past 78 characters: folded before it (msg-id allows CFWS).
        lines.append(Self.fold("Message-ID: \(messageID)"))
        lines.append(Self.fold("Subject: " + Self.encodedWords(subject.replacingOccurrences(of: "\r", with: " ")
            .replacingOccurrences(of: "\n", with: " "), headerLength: "Subject: ".count)))
        lines.append("MIME-Version: 1.0")
        for header in extra { lines.append(Self.fold("\(header.name): \(Self.encodedWords(header.value, headerLength: header.name.count + 2))")) }
        lines.append("Content-Type: multipart/mixed;\r\n boundary=\"\(boundary)\"")
        lines.append("")
        lines.append("This is a multi-part message in MIME format.")
        lines.append("--\(boundary)")
        lines.append("Content-Type: text/plain; charset=UTF-8")
        lines.append("Content-Transfer-Encoding: base64")
        lines.append("")
        lines.append(contentsOf: Self.base64Lines(Data(body.replacingOccurrences(of: "\r\n", with: "\n")
            .replacingOccurrences(of: "\n", with: "\r\n").utf8)))
        for attachment in attachments {
            let name = attachment.fileName.filter { $0.isASCII && $0 != "\"" && $0 != "\\" && !$0.isNewline }
            lines.append("--\(boundary)")
            lines.append("Content-Type: \(attachment.contentType); name=\"\(name)\"")
            lines.append("Content-Transfer-Encoding: base64")
            lines.append("Content-Disposition: attachment; filename=\"\(name)\"")
            lines.append("")
            if let pieces = attachment.pieces {
                // The lines so far (each ended by CRLF), then the base64 lines of the files.
                parts.append(.text(Data((lines.joined(separator: "\r\n") + "\r\n").utf8)))
                parts.append(.base64(pieces))
                lines = []
            } else {
                lines.append(contentsOf: Self.base64Lines(attachment.data))
            }
        }
        lines.append("--\(boundary)--")
        lines.append("")
        parts.append(.text(Data(lines.joined(separator: "\r\n").utf8)))
        return MailBody(parts: parts)
    }

    /// Base64 in lines of 76 characters (RFC 2045 §6.8).
    static func base64Lines(_ data: Data) -> [String] {
        let text = data.base64EncodedString()
        var lines: [String] = []
        var index = text.startIndex
        while index < text.endIndex {
            let end = text.index(index, offsetBy: 76, limitedBy: text.endIndex) ?? text.endIndex
            lines.append(String(text[index..<end]))
            index = end
        }
        return lines
    }

    /// ASCII text as it is; otherwise RFC 2047 `=?UTF-8?B?…?=` words of at most 75
    /// characters, never splitting a UTF-8 sequence, separated by folding whitespace.
    static func encodedWords(_ text: String, headerLength: Int) -> String {
        if text.allSatisfy({ $0.isASCII }) { return text }
        // A word is at most 75 characters: 63 base64 characters after "=?UTF-8?B?" and before
        // "?=", i.e. 45 bytes; the first word also shares its line with the header name.
        func capacity(_ lineRoom: Int) -> Int { max(3, (min(75, lineRoom) - 12) / 4 * 3) }
        var limit = capacity(78 - headerLength)
        var words: [String] = []
        var chunk = Data()
        for character in text {
            let bytes = Data(String(character).utf8)
            if chunk.count + bytes.count > limit, !chunk.isEmpty {
                limit = capacity(77)
                words.append("=?UTF-8?B?\(chunk.base64EncodedString())?=")
                chunk = Data()
            }
            chunk.append(bytes)
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?\(chunk.base64EncodedString())?=") }
        return words.joined(separator: "\r\n ")
    }

    /// Folds a long ASCII header at spaces so lines stay within 78 characters where possible.
    static func fold(_ line: String) -> String {
        guard line.count > 78, !line.contains("\r\n") else { return line }
        var result = "", current = ""
        for word in line.split(separator: " ", omittingEmptySubsequences: false) {
            if !current.isEmpty && current.count + 1 + word.count > 78 {
                result += current + "\r\n"
                current = " " + word
            } else {
                current += current.isEmpty ? String(word) : " " + word
            }
        }
        return result + current
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}

/// Who a mail is for: the subject, body and headers differ for professionals and patients.
public enum MailAudience: String, Sendable, Hashable {
    case professionals, patient
}

/// A composed mail ready for SMTP, with what the journal needs.
public struct MSSanteMail: Sendable, Hashable {
    public var audience: MailAudience
    public var message: MailMessage
    /// Envelope id for DSN (`ENVID`): the XDM SubmissionSet uniqueId plus the audience.
    public var envelopeID: String
}

/// Builds the MSSanté mails of a document: one for the professionals, one for the patient,
/// each with the XDM archive and the human-readable PDF attached and the MSSanté headers.
public struct MSSanteMailComposer: Sendable {
    public struct Options: Sendable {
        /// The application mailbox (BAL applicative): From, and where acknowledgements go.
        public var mailbox: String
        /// X-MSS-NIL: the product reference from the configuration.
        public var productReference: String
        public var structureName: String
        /// When false, mails to the patient carry `X-MSS-MES: FIN` (no reply possible).
        public var patientMayReply: Bool

        public init(mailbox: String, productReference: String, structureName: String, patientMayReply: Bool = false) {
            self.mailbox = mailbox
            self.productReference = productReference
            self.structureName = structureName
            self.patientMayReply = patientMayReply
        }
    }

    public var options: Options
    let professionalBody: Template
    let patientBody: Template

    /// Loads `mssante/body-ps.txt` and `mssante/body-patient.txt` (default bodies).
    public init(templatesDirectory: URL, options: Options) throws(MailError) {
        do {
            professionalBody = try Template(contentsOf: templatesDirectory.appendingPathComponent("mssante/body-ps.txt"), escaping: .none)
            patientBody = try Template(contentsOf: templatesDirectory.appendingPathComponent("mssante/body-patient.txt"), escaping: .none)
        } catch { throw .template(error) }
        self.options = options
    }

    /// The mails for `recipients` (already checked by ``MSSanteRouting``), with the PDF
    /// attached when there is one (a structured CDA may come without). The Message-ID is
    /// `<ENVID@mailbox domain>`, so a DSN's ENVID and an MDN's Original-Message-ID both lead
    /// back to the one id the journal keeps; `messageIDs` reuses ids chosen by an earlier
    /// attempt (resend after a crash).
    public func compose(document: CDADocument, metadata: DocumentMetadata, recipients: MSSanteRecipients,
                        xdm: XDMPackage, pdf: Data?, pdfFile: FileSlice? = nil, date: Date = Date(),
                        messageIDs: [MailAudience: String] = [:]) throws(MailError) -> [MSSanteMail] {
        let title = metadata.effectiveTitle ?? document.kind.defaultTitle
        var values = ["title": title, "structureName": options.structureName, "mailbox": options.mailbox]
        if metadata.action == .replace { values["replacement"] = "" }
        if metadata.action == .delete { values["deletion"] = "" }
        let producer = metadata.mssante
        var mails: [MSSanteMail] = []
        func mail(_ audience: MailAudience, to: [String], subject: String, body: String) -> MSSanteMail {
            let domain = options.mailbox.split(separator: "@").last.map(String.init) ?? "localhost"
            let messageID = messageIDs[audience] ?? "<\(xdm.submissionSetUniqueID).\(audience == .patient ? 2 : 1)@\(domain)>"
            var message = MailMessage(
                from: options.mailbox, to: to, replyTo: producer?.replyTo, subject: subject, body: body,
                attachments: [xdm.isFileBacked ? MailAttachment(fileName: "IHE_XDM.zip", contentType: "application/zip", pieces: xdm.archive)
                              : MailAttachment(fileName: "IHE_XDM.zip", contentType: "application/zip", data: xdm.zip)]
                    + (pdf.map { [MailAttachment(fileName: "\(document.kind.shortName.uppercased()).pdf", contentType: "application/pdf", data: $0)] }
                        ?? pdfFile.map { [MailAttachment(fileName: "\(document.kind.shortName.uppercased()).pdf", contentType: "application/pdf", file: $0)] } ?? []),
                messageID: messageID, date: date)
            message.addHeader("X-MSS-CODECDA", document.kind.loincCode)
            message.addHeader("X-MSS-INS", metadata.patient.shareableINS != nil ? "O" : "N")
            message.addHeader("X-MSS-NIL", options.productReference)
            if audience == .patient && !options.patientMayReply { message.addHeader("X-MSS-MES", "FIN") }
            if metadata.flags.contains(.ackLecture) { message.addHeader("Disposition-Notification-To", options.mailbox) }
            return MSSanteMail(audience: audience, message: message, envelopeID: Self.envelopeID(messageID: messageID))
        }
        // A deletion's notice says so whoever wrote the subject and body (ANS guide: the mail tells
        // the recipients that the document is withdrawn); the template's body says it already.
        let withdrawn = metadata.action == .delete
        func subject(_ given: String?, _ standard: String) -> String {
            guard withdrawn else { return given ?? standard }
            if let given { return Self.withdrawnPrefix + given }
            return standard.hasPrefix(Self.ddmPrefix) ? Self.ddmPrefix + Self.withdrawnPrefix + standard.dropFirst(Self.ddmPrefix.count)
                : Self.withdrawnPrefix + standard
        }
        func body(_ given: String?, _ template: Template) throws -> String {
            guard let given else { return try template.render(values) }
            return withdrawn ? Self.withdrawnNotice + "\n\n" + given : given
        }
        do {
            if !recipients.professionals.isEmpty {
                let subject = subject(producer?.professionalSubject.flatMap { $0.isEmpty ? nil : $0 }, Self.professionalSubject(title, metadata.patient.traits))
                let body = try body(producer?.professionalBody.flatMap { $0.isEmpty ? nil : $0 }, professionalBody)
                mails.append(mail(.professionals, to: recipients.professionals, subject: subject, body: body))
            }
            if let patient = recipients.patient {
                let subject = subject(producer?.patientSubject.flatMap { $0.isEmpty ? nil : $0 }, title)
                let body = try body(producer?.patientBody.flatMap { $0.isEmpty ? nil : $0 }, patientBody)
                mails.append(mail(.patient, to: [patient], subject: subject, body: body))
            }
        } catch let error as TemplateError {
            throw .template(error)
        } catch {
            preconditionFailure("unexpected \(error)")
        }
        return mails
    }

    /// The ENVID of a message: the local part of its Message-ID (xtext-encoded on the wire).
    public static func envelopeID(messageID: String) -> String {
        let bare = messageID.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
        return bare.split(separator: "@", maxSplits: 1).first.map(String.init) ?? bare
    }

    /// The start of the subject of a deletion's notice.
    public static let withdrawnPrefix = "Document retiré : "
    /// The first paragraph of a deletion's notice when the producer wrote the body (CORPSMAIL_*).
    public static let withdrawnNotice = "Document retiré : ce document a été retiré (supprimé du DMP le cas échéant) par son auteur ; "
        + "merci de ne plus en tenir compte. La dernière version est jointe pour identification."
    static let ddmPrefix = "XDM/1.0/DDM+"

    /// The IG convention `XDM/1.0/DDM+<title> <NOM> <prénom> <date de naissance>`, which lets
    /// receiving sites route the mail to an application mailbox.
    static func professionalSubject(_ title: String, _ traits: IdentityTraits) -> String {
        var parts = [title]
        if let name = traits.usedName ?? traits.birthName { parts.append(name) }
        if let given = traits.usedGivenName ?? traits.firstBirthGivenName { parts.append(given) }
        if let birth = traits.birthDate { parts.append(String(format: "%02d/%02d/%04d", birth.day, birth.month, birth.year)) }
        return ddmPrefix + parts.joined(separator: " ")
    }
}
