import Foundation
import PasserelleCore

/// What ``JournalStore/usageCounts(_:)`` counts: consecutive periods, optionally some FINESS.
///
/// A document *set* (all versions sharing a set id) belongs to the period in which its first
/// version reached the gateway; replacements and deletions never make a second document.
/// Stays belong to the period of their discharge.
public struct UsageQuery: Sendable, Hashable {
    /// Period boundaries: period `i` is `boundaries[i] ..< boundaries[i + 1]` (at least two dates, increasing).
    public var boundaries: [Date]
    /// FINESS to keep; empty keeps every FINESS.
    public var finess: [String]
    /// Identity statuses under which a document counts as carrying a qualified INS.
    public var qualifiedStatuses: [String]
    /// Kinds that make a stay "with a discharge letter" (HOP'EN-style line).
    public var dischargeLetterKinds: [DocumentKind]

    public init(boundaries: [Date], finess: [String] = [], qualifiedStatuses: [String] = [IdentityStatus.qualified.rawValue],
                dischargeLetterKinds: [DocumentKind] = [.dischargeLetter]) {
        self.boundaries = boundaries
        self.finess = finess
        self.qualifiedStatuses = qualifiedStatuses
        self.dischargeLetterKinds = dischargeLetterKinds
    }
}

/// Raw counts for one period and one FINESS; the `Indicators` module turns them into rates.
/// Deleted sets are counted in ``deleted`` only; every other figure leaves them out.
public struct UsageCounts: Sendable, Hashable, Codable {
    /// Per document kind.
    public struct Kind: Sendable, Hashable, Codable {
        /// Sets first received in the period (documents produced).
        public var produced = 0
        /// …of which some version was accepted by the DMP while carrying a qualified INS.
        public var dmpAccepted = 0
        public init(produced: Int = 0, dmpAccepted: Int = 0) {
            self.produced = produced
            self.dmpAccepted = dmpAccepted
        }
    }

    /// MSSanté sets for one kind of recipient (patient or professional).
    public struct Messaging: Sendable, Hashable, Codable {
        /// Accepted by the SMTP relay.
        public var sent = 0
        /// …with a delivery notification (DSN) or a later read notification.
        public var delivered = 0
        /// …with a read notification (MDN).
        public var read = 0
        public init(sent: Int = 0, delivered: Int = 0, read: Int = 0) {
            self.sent = sent
            self.delivered = delivered
            self.read = read
        }
    }

    /// Index of the period in ``UsageQuery/boundaries``.
    public var period: Int
    public var finess: String
    /// Stays discharged in the period.
    public var staysDischarged = 0
    /// …with a discharge letter accepted by the DMP under a qualified INS.
    public var staysWithDischargeLetter = 0
    public var kinds: [DocumentKind: Kind] = [:]
    public var patient = Messaging()
    public var professional = Messaging()
    /// Sets refused by the DMP, by registry error code ("?" when none was given).
    public var dmpRefusals: [String: Int] = [:]
    /// Sets of which no version carried a qualified INS (not sendable to the DMP).
    public var unqualified = 0
    /// Sets with at least one replacement (a set replaced twice counts once).
    public var replaced = 0
    /// Sets deleted.
    public var deleted = 0
    /// Sets with a transmission that failed after its retries ran out.
    public var failedAfterRetries = 0
    /// Sets with a transmission that failed for good at once (other than a DMP refusal).
    public var failedPermanently = 0
    /// Sets with a transmission still waiting (queued, retry-wait, sending, or held by an operator).
    public var waiting = 0
    /// Sets with a transmission an operator discarded (`passerelle discard`) and none failed:
    /// set aside on purpose, so out of the failure lines.
    public var discarded = 0

    public init(period: Int, finess: String) {
        self.period = period
        self.finess = finess
    }

    /// Adds `other`'s figures (same period, another FINESS) into this one.
    public mutating func add(_ other: UsageCounts) {
        staysDischarged += other.staysDischarged
        staysWithDischargeLetter += other.staysWithDischargeLetter
        for (kind, k) in other.kinds {
            kinds[kind, default: Kind()].produced += k.produced
            kinds[kind, default: Kind()].dmpAccepted += k.dmpAccepted
        }
        for path in [\Messaging.sent, \Messaging.delivered, \Messaging.read] {
            patient[keyPath: path] += other.patient[keyPath: path]
            professional[keyPath: path] += other.professional[keyPath: path]
        }
        for (code, n) in other.dmpRefusals { dmpRefusals[code, default: 0] += n }
        unqualified += other.unqualified
        replaced += other.replaced
        deleted += other.deleted
        failedAfterRetries += other.failedAfterRetries
        failedPermanently += other.failedPermanently
        waiting += other.waiting
        discarded += other.discarded
    }
}
