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

/// A per-set 0/1 figure of the usage report. The raw value is the SQL column name: the report
/// sums it (``UsageCounts``), the evidence lists it per set (``UsageEvidence``), from the one
/// predicate table in `UsageSQL`.
public enum SetMeasure: String, Sendable, Hashable, CaseIterable, Codable {
    case produced, deleted
    case dmpAccepted = "dmp_ok"
    case refused, replaced, unqualified
    case patientSent = "patient_sent", patientDelivered = "patient_delivered", patientRead = "patient_read"
    case professionalSent = "ps_sent", professionalDelivered = "ps_delivered", professionalRead = "ps_read"
    case failedAfterRetries = "exhausted", failedPermanently = "permanent", waiting, discarded
}

/// A per-stay 0/1 figure (same two uses as ``SetMeasure``).
public enum StayMeasure: String, Sendable, Hashable, CaseIterable, Codable {
    case discharged
    case withDischargeLetter = "with_letter"
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

    /// The sum of a measure over the cell; `kinds` restricts it to those kinds (only
    /// ``SetMeasure/produced`` and ``SetMeasure/dmpAccepted`` are kept per kind), `refusal` to
    /// one DMP error code (only ``SetMeasure/refused``).
    public func value(_ measure: SetMeasure, kinds: [DocumentKind]? = nil, refusal: String? = nil) -> Int {
        if let kinds {
            precondition(measure == .produced || measure == .dmpAccepted, "usage counts keep only produced and dmp_ok per kind")
            return kinds.reduce(0) { $0 + (measure == .produced ? self.kinds[$1]?.produced ?? 0 : self.kinds[$1]?.dmpAccepted ?? 0) }
        }
        switch measure {
        case .produced: return self.kinds.values.reduce(0) { $0 + $1.produced }
        case .dmpAccepted: return self.kinds.values.reduce(0) { $0 + $1.dmpAccepted }
        case .deleted: return deleted
        case .refused: return refusal.map { dmpRefusals[$0] ?? 0 } ?? dmpRefusals.values.reduce(0, +)
        case .replaced: return replaced
        case .unqualified: return unqualified
        case .patientSent: return patient.sent
        case .patientDelivered: return patient.delivered
        case .patientRead: return patient.read
        case .professionalSent: return professional.sent
        case .professionalDelivered: return professional.delivered
        case .professionalRead: return professional.read
        case .failedAfterRetries: return failedAfterRetries
        case .failedPermanently: return failedPermanently
        case .waiting: return waiting
        case .discarded: return discarded
        }
    }

    public func value(_ measure: StayMeasure) -> Int {
        measure == .discharged ? staysDischarged : staysWithDischargeLetter
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

/// The rows behind the usage counts of one query: every document set and every stay the
/// report counted, with the 0/1 value of each measure and what proves it.
public struct UsageEvidence: Sendable, Hashable {
    public struct SetRow: Sendable, Hashable {
        public var period: Int
        public var setID: String
        public var kind: DocumentKind
        public var finess: String
        public var stayID: String?
        /// Discharge of the set's stay, when the journal knows it.
        public var dischargedAt: Date?
        /// First version's reception.
        public var firstReceivedAt: Date
        public var maskedINS: String?
        /// Identity status of the latest version of the set.
        public var identityStatus: String?
        /// DMP registration proving ``SetMeasure/dmpAccepted``: when and the registry's answer as journaled.
        public var dmpAcknowledgedAt: Date?
        public var dmpResponse: String?
        /// Registry error code of a DMP refusal.
        public var refusalCode: String?
        /// MSSanté proof: the message id and the latest notification (DSN/MDN) with its time and detail.
        public var patientProof: String?
        public var professionalProof: String?
        public var measures: Set<SetMeasure>
        public init(period: Int, setID: String, kind: DocumentKind, finess: String, stayID: String?, dischargedAt: Date?,
                    firstReceivedAt: Date, maskedINS: String?, identityStatus: String?, dmpAcknowledgedAt: Date?,
                    dmpResponse: String?, refusalCode: String?, patientProof: String?, professionalProof: String?,
                    measures: Set<SetMeasure>) {
            self.period = period; self.setID = setID; self.kind = kind; self.finess = finess; self.stayID = stayID
            self.dischargedAt = dischargedAt; self.firstReceivedAt = firstReceivedAt; self.maskedINS = maskedINS
            self.identityStatus = identityStatus; self.dmpAcknowledgedAt = dmpAcknowledgedAt; self.dmpResponse = dmpResponse
            self.refusalCode = refusalCode; self.patientProof = patientProof; self.professionalProof = professionalProof
            self.measures = measures
        }
    }

    public struct StayRow: Sendable, Hashable {
        public var period: Int
        public var finess: String
        public var stayID: String
        public var dischargedAt: Date
        /// The set whose accepted discharge letter puts the stay in ``StayMeasure/withDischargeLetter``.
        public var letterSetID: String?
        public var measures: Set<StayMeasure>
        public init(period: Int, finess: String, stayID: String, dischargedAt: Date, letterSetID: String?, measures: Set<StayMeasure>) {
            self.period = period; self.finess = finess; self.stayID = stayID; self.dischargedAt = dischargedAt
            self.letterSetID = letterSetID; self.measures = measures
        }
    }

    public var sets: [SetRow]
    public var stays: [StayRow]
    public init(sets: [SetRow], stays: [StayRow]) {
        self.sets = sets
        self.stays = stays
    }
}

/// One successful transmission of a set counted by the usage report (first version received
/// in the query's range, set not deleted): the raw material of the delay figures.
public struct DelaySample: Sendable, Hashable {
    public var setID: String
    public var kind: DocumentKind
    public var finess: String
    public var target: Destination
    /// Reception of the version sent.
    public var receivedAt: Date
    /// Success of the transmission: the DMP's registration answer, the SMTP relay's acceptance.
    public var acknowledgedAt: Date
    /// Discharge of the document's stay, when known.
    public var dischargedAt: Date?
    /// The version carried an identity status counted as qualified.
    public var qualified: Bool
    public init(setID: String, kind: DocumentKind, finess: String, target: Destination, receivedAt: Date, acknowledgedAt: Date,
                dischargedAt: Date?, qualified: Bool) {
        self.setID = setID; self.kind = kind; self.finess = finess; self.target = target; self.receivedAt = receivedAt
        self.acknowledgedAt = acknowledgedAt; self.dischargedAt = dischargedAt; self.qualified = qualified
    }
}

/// One `passerelle run` process as the journal saw it.
public struct ServiceRun: Sendable, Hashable {
    public var id: String
    public var startedAt: Date
    /// Its stop, else its last heartbeat (a crash ends a run at its last beat).
    public var endedAt: Date
    public var stopped: Bool
    public init(id: String, startedAt: Date, endedAt: Date, stopped: Bool) {
        self.id = id; self.startedAt = startedAt; self.endedAt = endedAt; self.stopped = stopped
    }
}

/// One ended attempt of a transmission (availability: outages are runs of transient failures).
public struct AttemptSample: Sendable, Hashable {
    public var target: Destination
    public var startedAt: Date
    public var endedAt: Date
    /// `sent`, `transient`, `permanent` or `interrupted`.
    public var outcome: String
    public init(target: Destination, startedAt: Date, endedAt: Date, outcome: String) {
        self.target = target; self.startedAt = startedAt; self.endedAt = endedAt; self.outcome = outcome
    }
}
