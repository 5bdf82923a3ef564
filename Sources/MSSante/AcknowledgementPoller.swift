import CurlKit
import Foundation
import PasserelleCore
import TestHooks

/// Errors of an acknowledgement poll. Messages not yet handled stay in the mailbox and are
/// read again by the next poll.
public enum AcknowledgementError: Error, Sendable, CustomStringConvertible, LocalizedError {
    /// The IMAP server could not be reached, refused the TLS session or the login, or a
    /// command failed; carries libcurl's diagnosis.
    case imap(operation: String, CurlError)
    /// The server's answer could not be understood.
    case unexpectedResponse(operation: String, detail: String)
    /// The gateway could not record a report (journal unavailable): the poll stops there.
    case notRecorded(String)

    public var description: String {
        switch self {
        case let .imap(operation, error): "IMAP \(operation) failed: \(error.description)"
        case let .unexpectedResponse(operation, detail): "IMAP \(operation): unexpected answer (\(detail))"
        case let .notRecorded(reason): "acknowledgement not recorded: \(reason)"
        }
    }

    public var errorDescription: String? { description }

    /// Network trouble and timeouts: the next poll may succeed as is.
    public var isTransient: Bool {
        if case let .imap(_, error) = self { return error.isTransient }
        return false
    }
}

/// How to read the application mailbox (BAL applicative) over IMAPS.
public struct IMAPConfiguration: Sendable {
    public var host: String
    /// 993 normally (implicit TLS).
    public var port: UInt16
    public var username: String
    /// Nil: SASL EXTERNAL, the client certificate is the credential.
    public var password: TLSPassphrase?
    /// CA, client certificate (PKCS#12), TLS versions and suites.
    public var tls: TLSClientOptions
    /// Where DSNs and MDNs arrive.
    public var inbox: String
    /// Where handled reports are moved (created when missing), so each is read once.
    public var processedFolder: String
    /// Where messages that are not reports, or match no transmission, are moved for an operator.
    public var unmatchedFolder: String
    public var timeouts: CurlTimeouts
    /// Largest message read from the inbox. A DSN (RET=HDRS) or an MDN is a few KB; anyone can
    /// mail the application mailbox, so a larger message is not downloaded past this size nor
    /// parsed: it is moved to the unmatched folder for an operator. Without the cap one huge
    /// message would fail every poll and stop all acknowledgements.
    public var maxReportBytes: Int

    public static let defaultMaxReportBytes = 4 << 20

    public init(host: String, port: UInt16 = 993, username: String, password: TLSPassphrase?, tls: TLSClientOptions,
                inbox: String = "INBOX", processedFolder: String = "Passerelle-traites",
                unmatchedFolder: String = "Passerelle-non-reconnus",
                timeouts: CurlTimeouts = CurlTimeouts(connect: .seconds(10), total: .seconds(60)),
                maxReportBytes: Int = IMAPConfiguration.defaultMaxReportBytes) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.tls = tls
        self.inbox = inbox
        self.processedFolder = processedFolder
        self.unmatchedFolder = unmatchedFolder
        self.timeouts = timeouts
        self.maxReportBytes = maxReportBytes
    }
}

/// What one poll did.
public struct PollSummary: Sendable, Hashable {
    /// Reports read from the inbox.
    public var messages = 0
    public var delivered = 0
    public var read = 0
    public var failed = 0
    /// Reports that change nothing (DSN delayed, MDN deleted, late acknowledgements).
    public var ignored = 0
    /// Not a report, or no transmission with that Message-ID/ENVID: moved to the unmatched folder.
    public var unmatched = 0
    /// Interrupted sends (crash) that a report showed to have reached the peer: not sent again.
    public var interruptedConfirmed = 0
    /// Messages larger than ``IMAPConfiguration/maxReportBytes``, moved unread to the unmatched
    /// folder (also counted in ``unmatched``).
    public var oversized = 0
    public init() {}
}

/// One acknowledgement a report carries, in MSSanté terms: what it says of one recipient.
public struct ParsedAcknowledgement: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// DSN `delivered` (or relayed, expanded).
        case delivered
        /// MDN displayed or processed.
        case read
        /// DSN `failed`, or an MDN integration error.
        case failed
        /// Changes nothing (DSN delayed, MDN deleted or another disposition).
        case ignored
    }
    public var kind: Kind
    /// For the journal: status codes and the recipient, the patient's address (it holds the
    /// INS) masked, diagnostics redacted.
    public var detail: String

    public init(kind: Kind, detail: String) {
        self.kind = kind
        self.detail = detail
    }
}

/// A report read from the application mailbox: which mail it concerns and what it says.
public struct ParsedReport: Sendable, Hashable {
    /// DSN or MDN.
    public var kind: MailReport.Kind
    /// The Message-IDs that may name the reported mail, most reliable first: the
    /// Original-Message-ID (or returned Message-ID), then the DSN's ENVID as `<ENVID@domain>`.
    public var messageIDs: [String]
    /// One a recipient, in the report's order.
    public var acknowledgements: [ParsedAcknowledgement]

    public init(kind: MailReport.Kind, messageIDs: [String], acknowledgements: [ParsedAcknowledgement]) {
        self.kind = kind
        self.messageIDs = messageIDs
        self.acknowledgements = acknowledgements
    }
}

/// What the recorder made of one report; the poller moves the message accordingly.
public enum ReportDisposition: Sendable, Hashable {
    /// Recorded: moved to the processed folder.
    case handled
    /// No mail of ours has that Message-ID: moved to the unmatched folder for an operator.
    case unmatched
    /// Its mail is being sent right now: left in the inbox, read again next poll.
    case later
}

/// Where the poller hands each report: the gateway records it in the journal. A transport
/// never touches the journal itself.
public protocol AcknowledgementRecorder: Sendable {
    /// Records `report` and counts what it did in `summary` (delivered, read, failed, ignored,
    /// unmatched, interruptedConfirmed). Throwing stops the poll: the message stays in the inbox.
    func record(_ report: ParsedReport, now: Date, summary: inout PollSummary) async throws(AcknowledgementError) -> ReportDisposition
}

/// Reads DSNs and MDNs from the application mailbox, hands each to an ``AcknowledgementRecorder``
/// (the gateway: delivered / read / failed in the journal) and moves each handled message out of the inbox.
public final class AcknowledgementPoller: Sendable {
    public let configuration: IMAPConfiguration
    /// Domain of our Message-IDs (the application mailbox's), to turn a DSN's ENVID back into one.
    public let messageIDDomain: String

    public init(configuration: IMAPConfiguration, mailbox: String) throws(AcknowledgementError) {
        self.configuration = configuration
        messageIDDomain = mailbox.split(separator: "@").last.map(String.init) ?? mailbox
        do { try configuration.tls.validate() } catch { throw .imap(operation: "configuration", error) }
    }

    /// One pass over the inbox. A message is moved only after `recorder` has recorded it; if
    /// it fails, the poll stops and the message is read again next time.
    public func poll(recorder: some AcknowledgementRecorder, now: Date = Date()) async throws(AcknowledgementError) -> PollSummary {
        // A connection per poll: on a kept connection libcurl does not SELECT the inbox again,
        // and the server need not report mail that arrived in between.
        let session: CurlSession
        do {
            session = try CurlSession(configuration: CurlSessionConfiguration(
                tls: configuration.tls, timeouts: configuration.timeouts, maxConnections: 1))
        } catch { throw .imap(operation: "configuration", error) }
        let imap = IMAPCommands(configuration: configuration, session: session)
        var summary = PollSummary()
        try await imap.ensureFolder(configuration.processedFolder)
        try await imap.ensureFolder(configuration.unmatchedFolder)
        for uid in try await imap.searchInbox() {
            let message: Data
            do { message = try await imap.fetch(uid: uid) } catch {
                guard case .imap(_, let curl) = error, curl.kind == .responseTooLarge else { throw error }
                try await imap.move(uid: uid, to: configuration.unmatchedFolder)
                summary.oversized += 1
                summary.unmatched += 1
                summary.messages += 1
                continue
            }
            CrashPoint.reached(.ackFetched)
            let disposition: ReportDisposition
            if let report = parse(message) {
                disposition = try await recorder.record(report, now: now, summary: &summary)
            } else {
                summary.unmatched += 1
                disposition = .unmatched
            }
            CrashPoint.reached(.ackRecorded)
            switch disposition {
            case .handled: try await imap.move(uid: uid, to: configuration.processedFolder)
            case .unmatched: try await imap.move(uid: uid, to: configuration.unmatchedFolder)
            case .later: continue
            }
            summary.messages += 1
        }
        return summary
    }

    /// A DSN or MDN in MSSanté terms, or nil when the message is not a report.
    public func parse(_ message: Data) -> ParsedReport? {
        MailReport.parse(message).map(parsed)
    }

    func parsed(_ report: MailReport) -> ParsedReport {
        var candidates: [String] = []
        if let id = report.originalMessageID { candidates.append(id.hasPrefix("<") ? id : "<\(id)>") }
        if let envelopeID = report.envelopeID { candidates.append("<\(envelopeID)@\(messageIDDomain)>") }
        let acknowledgements = report.entries.map { entry -> ParsedAcknowledgement in
            let who = Self.masked(entry.recipient)
            switch entry.outcome {
            case let .delivered(status):
                return ParsedAcknowledgement(kind: .delivered, detail: "DSN delivered to \(who) (\(status ?? "no status"))")
            case let .failed(status, diagnostic):
                return ParsedAcknowledgement(kind: .failed, detail: "DSN failed for \(who): \(status ?? "no status") \(Self.masked(text: diagnostic ?? ""))"
                    .trimmingWhitespace())
            case let .read(disposition):
                return ParsedAcknowledgement(kind: .read, detail: "MDN \(disposition) by \(who)")
            case let .integrationError(code, label):
                return ParsedAcknowledgement(kind: .failed, detail: "MDN error \(code)^\(label) from \(who)")
            case .delayed:
                return ParsedAcknowledgement(kind: .ignored, detail: "DSN delayed for \(who)")
            case let .other(disposition):
                return ParsedAcknowledgement(kind: .ignored, detail: "MDN \(disposition) by \(who)")
            }
        }
        return ParsedReport(kind: report.kind, messageIDs: candidates, acknowledgements: acknowledgements)
    }

    /// Addresses in the patient domain carry the INS: never written to the journal or logs.
    static func masked(_ address: String?) -> String {
        guard let address else { return "unknown recipient" }
        return address.lowercased().hasSuffix("@" + MSSanteRouting.patientDomain) ? "the patient mailbox" : address
    }

    static func masked(text: String) -> String { LogRedaction.redact(text) }

}

/// IMAP over libcurl: one command per transfer, on the session's kept connection.
struct IMAPCommands {
    let configuration: IMAPConfiguration
    let session: CurlSession

    func url(_ mailbox: String?, uid: Int? = nil) -> URL {
        var text = "imaps://\(configuration.host):\(configuration.port)/"
        if let mailbox {
            text += mailbox.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: ";/?"))) ?? mailbox
        }
        if let uid { text += ";UID=\(uid)" }
        return URL(string: text)!
    }

    func perform(_ operation: String, _ transfer: CurlTransfer) async throws(AcknowledgementError) -> TransferResult {
        var transfer = transfer
        transfer.username = configuration.username
        transfer.password = configuration.password
        if configuration.password == nil { transfer.loginOptions = "AUTH=EXTERNAL" }
        do { return try await session.perform(transfer) } catch let error as CurlError {
            throw .imap(operation: operation, error)
        } catch {
            throw .unexpectedResponse(operation: operation, detail: String(describing: error))
        }
    }

    static func quoted(_ mailbox: String) -> String {
        "\"" + mailbox.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// UIDs of the messages in the inbox (not deleted).
    func searchInbox() async throws(AcknowledgementError) -> [Int] {
        let result = try await perform("SEARCH", CurlTransfer(url: url(configuration.inbox), customRequest: "UID SEARCH UNDELETED"))
        let text = String(decoding: result.body, as: UTF8.self)
        guard let line = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("* SEARCH") }) else {
            throw .unexpectedResponse(operation: "SEARCH", detail: "no SEARCH response")
        }
        return line.dropFirst("* SEARCH".count).split(separator: " ").compactMap { Int($0) }
    }

    func fetch(uid: Int) async throws(AcknowledgementError) -> Data {
        try await perform("FETCH", CurlTransfer(url: url(configuration.inbox, uid: uid), download: .collect(limit: configuration.maxReportBytes))).body
    }

    func move(uid: Int, to folder: String) async throws(AcknowledgementError) {
        _ = try await perform("MOVE", CurlTransfer(url: url(configuration.inbox), customRequest: "UID MOVE \(uid) \(Self.quoted(folder))"))
    }

    /// Creates `folder` unless LIST finds it.
    func ensureFolder(_ folder: String) async throws(AcknowledgementError) {
        let listed = try await perform("LIST", CurlTransfer(url: url(nil), customRequest: "LIST \"\" \(Self.quoted(folder))"))
        if String(decoding: listed.body, as: UTF8.self).contains("* LIST") { return }
        _ = try await perform("CREATE", CurlTransfer(url: url(nil), customRequest: "CREATE \(Self.quoted(folder))"))
    }
}
