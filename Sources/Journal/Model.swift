import Foundation
import PasserelleCore

/// Where a document is in its own life, before any transmission exists.
public enum DocumentState: String, Sendable, Hashable, CaseIterable, Codable {
    /// Accepted from the drop folder; the blob is the producer's input.
    case received
    /// The CI-SIS CDA has been built (and signed); ready to be queued.
    case built
    /// Its transmissions have been created.
    case queued
}

/// The state of one transmission (document id, version, target).
///
/// ```
/// queued → sending → sent → acknowledged → delivered → read
///            │  ↑ └→ retry-wait ─┘ (claim again when the time has come)
///            └→ failed (dead letter; an operator may requeue it)
/// queued / retry-wait → held (operator: kept out of sending) → queued (released)
/// failed / held → discarded (operator: set aside for good, kept in the journal)
/// ```
///
/// Operator resend (`passerelle resend`): failed → queued, and, only when asked explicitly
/// (`--include-sent`), sent / acknowledged / delivered / read → queued: a new attempt of a
/// transmission that had succeeded. Nothing is erased: earlier attempts and acknowledgements
/// stay in the journal and the new attempt is appended after them.
public enum TransmissionState: String, Sendable, Hashable, CaseIterable, Codable {
    case queued
    case sending
    case sent
    case acknowledged
    case delivered
    case read
    case retryWait = "retry-wait"
    case failed
    /// Kept out of sending by an operator (`passerelle hold`) until released: never claimed.
    case held
    /// Set aside for good by an operator (`passerelle discard --reason`): final, kept in the
    /// journal, out of the report's failure lines and of `status`'s failed count.
    case discarded

    /// States in which the transmission waits to be claimed by a sender.
    public static let waiting: Set<TransmissionState> = [.queued, .retryWait]
    /// States reached once the peer accepted the document.
    public static let succeeded: Set<TransmissionState> = [.sent, .acknowledged, .delivered, .read]
    /// States an operator may hold (`passerelle hold`): waiting, not yet in a sender's hands.
    public static let holdable: Set<TransmissionState> = [.queued, .retryWait]
    /// States an operator may discard (`passerelle discard`).
    public static let discardable: Set<TransmissionState> = [.failed, .held]

    /// How far a successful transmission has got (for acknowledgements arriving out of order).
    var successRank: Int? {
        switch self {
        case .sent: 0
        case .acknowledged: 1
        case .delivered: 2
        case .read: 3
        default: nil
        }
    }

    /// The states this one may move to.
    public var allowedNext: Set<TransmissionState> {
        switch self {
        case .queued: [.sending, .held]
        case .retryWait: [.sending, .held]
        // .queued: a crashed sender's lease expired (recovery). Synchronous success may
        // skip straight to acknowledged/delivered (a DMP registration is final at once).
        case .sending: [.sent, .acknowledged, .delivered, .retryWait, .failed, .queued]
        // A later negative acknowledgement or a bounce (DSN) can still fail a sent message.
        // .queued from a success: deliberate operator resend (`passerelle resend --include-sent`).
        case .sent: [.acknowledged, .delivered, .read, .failed, .queued]
        case .acknowledged: [.delivered, .read, .failed, .queued]
        // An MDN reporting an integration error (ANS codes 900–906) arrives after the DSN.
        case .delivered: [.read, .failed, .queued]
        case .read: [.queued]
        // Operator resend (`passerelle resend`) of a dead letter, or set aside.
        case .failed: [.queued, .discarded]
        case .held: [.queued, .discarded]
        case .discarded: []
        }
    }

    /// True if `self → next` is a legal transition.
    public func canMove(to next: TransmissionState) -> Bool { allowedNext.contains(next) }
}

/// Kinds of acknowledgement a peer sends back after a successful send.
public enum AcknowledgementKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// Receipt acknowledgement (MSSanté `Disposition-Notification` processed / DMP receipt).
    case acknowledged
    /// Delivered to the mailbox (DSN success).
    case delivered
    /// Read by the recipient (MDN displayed).
    case read

    var state: TransmissionState {
        switch self {
        case .acknowledged: .acknowledged
        case .delivered: .delivered
        case .read: .read
        }
    }
}

/// A document as the journal keeps it: identifiers and metadata only; the bytes are in the
/// blob store under ``blobSHA256``. No patient data beyond the masked INS and its keyed hash.
public struct JournalDocument: Sendable, Hashable {
    /// Document id (CDA `ClinicalDocument/id`, XDS uniqueId), as `root^extension` or a bare OID.
    public var id: String
    public var setID: String
    public var version: Int
    public var kind: DocumentKind
    /// ``INS/masked``, for logs and operators.
    public var maskedINS: String?
    /// Keyed hash of the INS (``PatientKey``), to find a patient's documents without storing the INS.
    public var patientKey: String?
    /// Identity status (e.g. `VALI`, `PROV`): the INS may only be used when qualified.
    public var identityStatus: String?
    public var finess: String
    public var stayID: String?
    /// SHA-256 (hex) of the blob in the store.
    public var blobSHA256: String
    /// SHA-256 (hex) of the built CDA blob, once built.
    public var builtSHA256: String?
    public var receivedAt: Date
    public var state: DocumentState
    /// What this row does to its set: a new document, a replacement (same ``setID``, higher
    /// version) or a deletion request (``setID`` of the deleted document). The usage report
    /// counts each set once and leaves deleted sets out of the rates.
    public var action: DocumentAction
    /// When retention purged its content (``JournalRetention``): the intake record and built
    /// CDA are gone, as are the masked INS and patient hash; nil while the content is kept.
    public var purgedAt: Date? = nil

    public init(id: String, setID: String? = nil, version: Int = 1, kind: DocumentKind, maskedINS: String? = nil,
                patientKey: String? = nil, identityStatus: String? = nil, finess: String, stayID: String? = nil,
                blobSHA256: String = "", builtSHA256: String? = nil, receivedAt: Date, state: DocumentState = .received,
                action: DocumentAction = .new) {
        self.id = id
        self.setID = setID ?? id
        self.version = version
        self.kind = kind
        self.maskedINS = maskedINS
        self.patientKey = patientKey
        self.identityStatus = identityStatus
        self.finess = finess
        self.stayID = stayID
        self.blobSHA256 = blobSHA256
        self.builtSHA256 = builtSHA256
        self.receivedAt = receivedAt
        self.state = state
        self.action = action
    }
}

/// A hospital stay the documents belong to (for the SUN-ES indicators: documents per discharge).
/// Recorded from the document's own data (``JournalStore/accept(_:content:input:stay:now:)``) or
/// from ADT events (``JournalStore/recordStay(_:now:)``); dates known later fill in, never erase.
public struct JournalStay: Sendable, Hashable {
    public var stayID: String
    public var finess: String
    public var admittedAt: Date?
    public var dischargedAt: Date?

    public init(stayID: String, finess: String, admittedAt: Date? = nil, dischargedAt: Date? = nil) {
        self.stayID = stayID
        self.finess = finess
        self.admittedAt = admittedAt
        self.dischargedAt = dischargedAt
    }
}

/// The file dropped by the producer, recognised by its SHA-256 when dropped twice.
public struct InputFile: Sendable, Hashable {
    public var sha256: String
    /// Base name only (no folder), for operators.
    public var fileName: String

    public init(sha256: String, fileName: String) {
        self.sha256 = sha256
        self.fileName = fileName
    }
}

/// One transmission row.
public struct Transmission: Sendable, Hashable {
    public var id: Int64
    public var documentID: String
    public var version: Int
    public var target: Destination
    public var state: TransmissionState
    /// Attempts started so far (a claim counts as one).
    public var attempts: Int
    public var createdAt: Date
    public var updatedAt: Date
    /// When the transmission must succeed by; past it a transient failure becomes final.
    public var deadline: Date?
    public var nextAttemptAt: Date?
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?
    /// Set by crash recovery: the sender must check with the peer before sending again
    /// (DMP: is the uniqueId registered? SMTP: resend with the same ``messageID``).
    public var needsRecheck: Bool
    /// True from the first failure of an incident until the next success: one alert per incident.
    public var alerted: Bool
    public var lastError: String?
    public var lastErrorAt: Date?
    /// SMTP Message-ID, kept from the first attempt so a resend after a crash reuses it.
    public var messageID: String?
    /// Set after a partial delivery (``TransmissionOutcome/partial(pending:cause:response:)``):
    /// the recipients still to be sent to. Nil: every recipient of the target.
    public var pendingRecipients: [String]? = nil

    /// True when a send of this transmission was interrupted (crash) after its Message-ID was
    /// recorded and nothing newer is under way: it waits to be sent again (queued or retry-wait
    /// with ``needsRecheck``), or is still `sending` under a lease that has expired (its sender
    /// died). An acknowledgement for it proves the interrupted mail went out. Not after a partial
    /// delivery: one report cannot tell which of the pending recipients the relay took.
    public func awaitsInterruptedOutcome(now: Date) -> Bool {
        guard messageID != nil, pendingRecipients == nil else { return false }
        switch state {
        case .queued, .retryWait: return needsRecheck
        case .sending: return leaseExpiresAt.map { $0 <= now } ?? false
        default: return false
        }
    }

    /// How far this transmission has gone, for an incoming acknowledgement: its state's success
    /// rank; a partial delivery (some recipients still waiting for a retry) takes a report for a
    /// recipient that has the mail but never moves its state (rank above every other). Nil: an
    /// acknowledgement is not expected in this state.
    public var acknowledgementRank: Int? {
        state.successRank ?? (pendingRecipients != nil ? Int.max : nil)
    }

    /// True while a live sender holds this transmission (`sending`, lease not expired).
    public func isBeingSent(now: Date) -> Bool {
        state == .sending && (leaseExpiresAt.map { $0 > now } ?? false)
    }
}

/// What ``JournalStore/claimNext(target:now:lease:owner:)`` hands to a sender.
public struct ClaimedTransmission: Sendable, Hashable {
    public var transmission: Transmission
    public var document: JournalDocument
    /// The attempt row opened by the claim; ``JournalStore/complete(_:owner:outcome:now:)`` closes it.
    public var attemptID: Int64
}

/// One send attempt.
public struct Attempt: Sendable, Hashable {
    public var id: Int64
    public var transmissionID: Int64
    public var startedAt: Date
    public var endedAt: Date?
    /// `sent`, `transient`, `permanent`, `interrupted`, or nil while running.
    public var outcome: String?
    /// The server's response text (SOAP fault, SMTP reply), without patient data.
    public var response: String?
}

/// One acknowledgement received for a transmission.
public struct Acknowledgement: Sendable, Hashable {
    public var transmissionID: Int64
    public var kind: AcknowledgementKind
    public var receivedAt: Date
    public var detail: String?
}

/// What ``JournalStore/accept(_:content:input:stay:now:)`` did.
public enum AcceptResult: Sendable, Hashable {
    /// New document stored.
    case accepted(JournalDocument)
    /// The same file (same SHA-256) was dropped before; nothing stored. Carries the document it produced.
    case duplicateInput(documentID: String?, version: Int?)
    /// This document id and version is already in the journal (from a different file).
    case duplicateDocument(JournalDocument)
}

/// An accepted document with everything the journal stores for it at once: the intake record,
/// the built (or received) CDA and one queued transmission per target. ``JournalStore/admit(_:now:)``
/// writes the two blobs, then one transaction: a document is never half-admitted.
public struct Admission: Sendable {
    /// The CDA to store: bytes in memory, or a file already written (0600) in the blob folder
    /// whose SHA-256 was computed while writing it (moved in by a rename, never read again).
    /// The digest of bytes in memory may be given when the caller has it (a built CDA's is
    /// computed once, when it is made): the store does not hash them again.
    public enum Built: Sendable {
        case data(Data, sha256: String? = nil)
        case file(URL, sha256: String)
    }

    /// The journal's view of the document (ids, kind, masked INS…); blob digests and state are set by the store.
    public var document: JournalDocument
    /// The intake record (``Handoff/IntakeRecord``), as parts so a large PDF is not copied to store it.
    public var record: [Data]
    public var built: Built
    public var targets: [Destination]
    /// The file or MLLP message it came from, so the same bytes arriving again are recognised.
    public var input: InputFile?
    public var stay: JournalStay?
    /// The built CDA's first sends will take it from memory (the gateway's hand-off holds it):
    /// a store whose blob folder is only a cache (PostgreSQL) need not write it there.
    public var firstSendFromMemory: Bool

    public init(document: JournalDocument, record: [Data], built: Built, targets: [Destination], input: InputFile?, stay: JournalStay?,
                firstSendFromMemory: Bool = false) {
        self.document = document
        self.record = record
        self.built = built
        self.targets = targets
        self.input = input
        self.stay = stay
        self.firstSendFromMemory = firstSendFromMemory
    }
}

/// What ``JournalStore/admit(_:now:)`` did.
public enum AdmitResult: Sendable, Hashable {
    /// Stored and queued: the document as journaled and its transmissions.
    case admitted(JournalDocument, [Transmission])
    /// The same input (same SHA-256) was journaled before; nothing stored.
    case duplicateInput(documentID: String?, version: Int?)
    /// This document id and version is already in the journal (from a different input).
    case duplicateDocument(JournalDocument)

    init(_ duplicate: AcceptResult) {
        switch duplicate {
        case .accepted(let d): self = .admitted(d, [])
        case .duplicateInput(let id, let version): self = .duplicateInput(documentID: id, version: version)
        case .duplicateDocument(let d): self = .duplicateDocument(d)
        }
    }
}

/// Counts for `passerelle status`.
public struct StateCount: Sendable, Hashable {
    public var target: Destination
    public var state: TransmissionState
    public var count: Int

    public init(target: Destination, state: TransmissionState, count: Int) {
        self.target = target
        self.state = state
        self.count = count
    }
}

/// Documents received in one UTC month, per kind (usage report).
public struct MonthlyCount: Sendable, Hashable {
    /// `YYYY-MM`, UTC.
    public var month: String
    public var kind: DocumentKind
    public var count: Int

    public init(month: String, kind: DocumentKind, count: Int) {
        self.month = month
        self.kind = kind
        self.count = count
    }
}

/// The last error seen for a target.
public struct TargetError: Sendable, Hashable {
    public var target: Destination
    public var transmissionID: Int64
    public var documentID: String
    public var message: String
    public var at: Date
}

/// Which transmissions `passerelle resend` (or a report, or the console's queue) selects. Empty
/// fields select everything.
public struct TransmissionFilter: Sendable, Hashable {
    /// Oldest first (`created_at`), or by id for keyset paging (``afterID``).
    public enum Order: Sendable, Hashable { case created, id }

    public var transmissionIDs: [Int64] = []
    public var documentID: String?
    public var patientKey: String?
    public var target: Destination?
    public var states: Set<TransmissionState> = []
    /// The document's kind.
    public var kind: DocumentKind?
    /// Created at or after.
    public var from: Date?
    /// Created before.
    public var until: Date?
    /// Only ids above this one: the next page after a page that ended with it.
    public var afterID: Int64?
    public var order: Order = .created
    public var limit: Int?

    public init(transmissionIDs: [Int64] = [], documentID: String? = nil, patientKey: String? = nil,
                target: Destination? = nil, states: Set<TransmissionState> = [], kind: DocumentKind? = nil, from: Date? = nil,
                until: Date? = nil, afterID: Int64? = nil, order: Order = .created, limit: Int? = nil) {
        self.transmissionIDs = transmissionIDs
        self.documentID = documentID
        self.patientKey = patientKey
        self.target = target
        self.states = states
        self.kind = kind
        self.from = from
        self.until = until
        self.afterID = afterID
        self.order = order
        self.limit = limit
    }
}

/// Documents received and transmissions acknowledged in one hour (the console's chart).
public struct HourlyActivity: Sendable, Hashable, Codable {
    /// The hour's start (hours are counted back from the end of the range asked).
    public var hour: Date
    /// Document versions received.
    public var received: Int
    /// Accepted by the peer: DMP answers that closed a send, MSSanté delivery notifications.
    public var acknowledged: Int

    public init(hour: Date, received: Int, acknowledged: Int) {
        self.hour = hour
        self.received = received
        self.acknowledged = acknowledged
    }
}
