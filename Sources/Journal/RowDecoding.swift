import Foundation
import PasserelleCore

/// A result row as the journal reads it, whatever the backend: text, 64-bit integers
/// (milliseconds, counts) and flags (SQLite 0/1, PostgreSQL booleans).
protocol JournalColumns {
    func text(_ name: String) -> String?
    func integer(_ name: String) -> Int64?
    func flag(_ name: String) -> Bool
}

/// Rows of `documents` and `transmissions` into model values, shared by both backends so the
/// two can never disagree on what a column means.
enum JournalRowDecoder {
    static func document(_ row: some JournalColumns) throws -> JournalDocument {
        guard let id = row.text("id"), let kind = row.text("kind").flatMap(DocumentKind.init(rawValue:)),
              let state = row.text("state").flatMap(DocumentState.init(rawValue:)) else {
            throw JournalError.database("unreadable documents row (id \(row.text("id") ?? "?"))")
        }
        var document = JournalDocument(id: id, setID: row.text("set_id"), version: row.integer("version").map { Int($0) } ?? 1, kind: kind,
                               maskedINS: row.text("ins_masked"), patientKey: row.text("patient_key"),
                               identityStatus: row.text("identity_status"), finess: row.text("finess") ?? "",
                               stayID: row.text("stay_id"), blobSHA256: row.text("blob_sha256") ?? "",
                               builtSHA256: row.text("built_sha256"),
                               receivedAt: JournalTime.date(millis: row.integer("received_at")) ?? .distantPast, state: state,
                               action: row.text("action").flatMap(DocumentAction.init(rawValue:)) ?? .new)
        document.purgedAt = JournalTime.date(millis: row.integer("purged_at"))
        return document
    }

    static func transmission(_ row: some JournalColumns) throws -> Transmission {
        guard let id = row.integer("id"), let target = row.text("target").flatMap(Destination.init(rawValue:)),
              let state = row.text("state").flatMap(TransmissionState.init(rawValue:)) else {
            throw JournalError.database("unreadable transmissions row (id \(row.integer("id").map(String.init) ?? "?"))")
        }
        return Transmission(
            id: id, documentID: row.text("document_id") ?? "", version: row.integer("version").map { Int($0) } ?? 1,
            target: target, state: state, attempts: row.integer("attempts").map { Int($0) } ?? 0,
            createdAt: JournalTime.date(millis: row.integer("created_at")) ?? .distantPast,
            updatedAt: JournalTime.date(millis: row.integer("updated_at")) ?? .distantPast,
            deadline: JournalTime.date(millis: row.integer("deadline_at")),
            nextAttemptAt: JournalTime.date(millis: row.integer("next_attempt_at")), leaseOwner: row.text("lease_owner"),
            leaseExpiresAt: JournalTime.date(millis: row.integer("lease_expires_at")), needsRecheck: row.flag("needs_recheck"),
            alerted: row.flag("alerted"), lastError: row.text("last_error"),
            lastErrorAt: JournalTime.date(millis: row.integer("last_error_at")), messageID: row.text("message_id"),
            pendingRecipients: PendingRecipients.decode(row.text("pending_recipients")))
    }
}

/// What closing a claim writes, decided once for both backends: the new state, the retry time
/// (per the ``RetryPolicy``), the error kept on the row, and the attempt's outcome.
struct CompletionPlan {
    var result: CompletionResult
    /// Nil on success; on failure the message kept as `last_error`.
    var lastError: String?
    var failure: (failure: String, code: String?)?
    var attemptOutcome: String
    var response: String?
    /// `pending_recipients` to write: nil keeps the column as is on a failure and clears it on a success.
    var pendingRecipients: String?
    /// On a success: an error to show on the row anyway (recipients refused for good).
    var note: String?

    var succeeded: Bool { lastError == nil }

    init(_ t: Transmission, outcome: TransmissionOutcome, policy: RetryPolicy, jitter: Double, now: Date) throws(JournalError) {
        switch outcome {
        case .success(let state, let text):
            guard TransmissionState.succeeded.contains(state), t.state.canMove(to: state) else {
                throw .illegalTransition(transmissionID: t.id, from: t.state, to: state)
            }
            result = CompletionResult(state: state, nextAttemptAt: nil, shouldAlert: false)
            attemptOutcome = "sent"
            response = text.map(JournalText.bounded)
        case .partial(let pending, let cause, let text) where pending.isEmpty:
            guard t.state.canMove(to: .sent) else { throw .illegalTransition(transmissionID: t.id, from: t.state, to: .sent) }
            result = CompletionResult(state: .sent, nextAttemptAt: nil, shouldAlert: false)
            attemptOutcome = "sent"
            response = JournalText.bounded(text ?? cause.description)
            note = JournalText.bounded(cause.description)
        case .partial(let pending, let cause, let text):
            // The accepted recipients have it: only the pending ones are retried, with the policy's backoff.
            self = try CompletionPlan(t, outcome: .failure(cause, response: text), policy: policy, jitter: jitter, now: now)
            pendingRecipients = PendingRecipients.encode(pending)
        case .failure(let cause, let text):
            let deadline = t.deadline ?? t.createdAt.addingTimeInterval(policy.deadline)
            let next = cause.isTransient
                ? policy.nextAttempt(afterAttempts: t.attempts, deadline: deadline, now: now, random: jitter,
                                     notBefore: cause.requestedDelay ?? 0) : nil
            var message = cause.description
            if cause.isTransient && next == nil {
                message = "gave up after \(t.attempts) attempt\(t.attempts == 1 ? "" : "s") (retry limit or deadline): " + message
            }
            let state: TransmissionState = next == nil ? .failed : .retryWait
            result = CompletionResult(state: state, nextAttemptAt: next, shouldAlert: !t.alerted)
            lastError = JournalText.bounded(message)
            failure = state == .failed ? FailureClass.of(cause) : nil
            attemptOutcome = cause.isTransient ? "transient" : "permanent"
            response = JournalText.bounded(text ?? cause.description)
        }
    }
}

/// How a final failure is counted by the usage report: a DMP business refusal (with its
/// registry error code), a permanent error, or transient errors until the retries ran out.
enum FailureClass {
    static func of(_ cause: FailureCause) -> (failure: String, code: String?) {
        switch cause.underlying {
        case .dmpBusinessRefusal(let code, _): ("refused", code)
        case .smtpPermanent(let code, _): ("permanent", String(code))
        case _ where cause.isTransient: ("exhausted", nil)
        default: ("permanent", nil)
        }
    }
}

enum JournalText {
    /// Server responses can be huge (a SOAP fault with a stack trace): keep the start.
    static func bounded(_ text: String) -> String {
        text.count <= 4000 ? text : String(text.prefix(4000)) + "…"
    }
}

extension JournalTime {
    static func date(millis: Int64?) -> Date? {
        millis.map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }
}

/// `pending_recipients`: one address per line (addresses hold no line breaks).
enum PendingRecipients {
    static func encode(_ addresses: [String]) -> String { addresses.joined(separator: "\n") }
    static func decode(_ text: String?) -> [String]? {
        guard let text, !text.isEmpty else { return nil }
        return text.split(separator: "\n").map(String.init)
    }
}
