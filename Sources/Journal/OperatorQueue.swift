import Foundation
import PasserelleCore

/// What an operator did to the queue (`passerelle resend`, `flush`, `hold`, `release`, `discard`;
/// `purge` is reserved for retention).
public enum OperatorActionKind: String, Sendable, Hashable, CaseIterable, Codable {
    case resend, flush, hold, release, discard, purge
}

/// Who acts and on what, written to the audit trail with the change itself.
public struct OperatorRequest: Sendable, Hashable {
    /// The OS account that ran the command (see ``currentUser()``).
    public var user: String
    /// The filters as the operator gave them (``TransmissionFilter/selectionText``); no patient
    /// data beyond what the journal holds already (the patient's keyed hash, never the INS).
    public var selection: String
    /// Why (required for `discard`).
    public var reason: String?

    public init(user: String = OperatorRequest.currentUser(), selection: String, reason: String? = nil) {
        self.user = user
        self.selection = selection
        self.reason = reason
    }

    /// The effective user's account name (`getpwuid(geteuid())`); under `sudo -u`, the account
    /// that ran sudo is named too (`passerelle (sudo: alice)`), since the effective user is then
    /// the service account. "uid N" when the account has no name.
    public static func currentUser(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let uid = geteuid()
        var name = "uid \(uid)"
        if let entry = getpwuid(uid), let pwName = entry.pointee.pw_name { name = String(cString: pwName) }
        if let sudo = environment["SUDO_USER"], !sudo.isEmpty, sudo != name { name += " (sudo: \(sudo))" }
        return name
    }
}

/// One row of the audit trail.
public struct OperatorAction: Sendable, Hashable {
    public var id: Int64
    public var at: Date
    public var user: String
    public var action: OperatorActionKind
    public var selection: String
    /// Transmissions changed.
    public var count: Int
    public var reason: String?
}

/// Which audit rows `passerelle audit` lists. Empty fields select everything.
public struct OperatorActionQuery: Sendable, Hashable {
    public var from: Date?
    public var until: Date?
    public var actions: Set<OperatorActionKind>
    /// The most recent ones only (still listed oldest first).
    public var limit: Int?

    public init(from: Date? = nil, until: Date? = nil, actions: Set<OperatorActionKind> = [], limit: Int? = nil) {
        self.from = from
        self.until = until
        self.actions = actions
        self.limit = limit
    }
}

/// What an operator action changed.
public struct OperatorResult: Sendable, Hashable {
    /// The audit row written (nil when nothing was selected: no change, no row).
    public var action: OperatorAction?
    /// The transmissions changed, as they are now.
    public var transmissions: [Transmission]
}

/// The operator's commands on the queue (Postfix's `postqueue -f`, `postsuper -h/-H/-d`).
///
/// Each is one transaction that changes the selected transmissions *and* writes one
/// `operator_actions` row (with the transmissions it changed), so the audit trail can never
/// miss a change nor record one that did not happen. A filter's `states` narrow the
/// operation's own states, never widen them; transmissions in other states are left alone.
/// The running service sees the changes at its next poll of the journal (every
/// ``WorkerSettings``-`pollInterval`, 0.5 s by default): nothing needs to be signalled.
public protocol OperatorQueue: JournalStore {
    /// retry-wait → due now (same state, `next_attempt_at` = now; attempts and deadline kept).
    func flush(_ filter: TransmissionFilter, _ request: OperatorRequest, now: Date) async throws(JournalError) -> OperatorResult
    /// queued / retry-wait → held: never claimed until released.
    func hold(_ filter: TransmissionFilter, _ request: OperatorRequest, now: Date) async throws(JournalError) -> OperatorResult
    /// held → queued, due now, with a fresh deadline.
    func release(_ filter: TransmissionFilter, _ request: OperatorRequest, now: Date) async throws(JournalError) -> OperatorResult
    /// failed / held → discarded (final). `request.reason` is required.
    func discard(_ filter: TransmissionFilter, _ request: OperatorRequest, now: Date) async throws(JournalError) -> OperatorResult
    /// ``JournalStore/requeue(_:includingSucceeded:now:)``, audited.
    func resend(_ filter: TransmissionFilter, includingSucceeded: Bool, _ request: OperatorRequest,
                now: Date) async throws(JournalError) -> OperatorResult
    /// The audit trail, oldest first.
    func operatorActions(_ query: OperatorActionQuery) async throws(JournalError) -> [OperatorAction]
}

extension SQLiteJournalStore: OperatorQueue {}
extension PostgresJournalStore: OperatorQueue {}

extension SQLJournalBackend {
    public func flush(_ filter: TransmissionFilter, _ request: OperatorRequest, now: Date) async throws(JournalError) -> OperatorResult {
        try await operate(.flush, filter, allowed: [.retryWait], request, now: now) { db, t in
            try db.run(.flush, JournalTime.millis(now), t.id)
        }
    }

    public func hold(_ filter: TransmissionFilter, _ request: OperatorRequest, now: Date) async throws(JournalError) -> OperatorResult {
        try await operate(.hold, filter, allowed: TransmissionState.holdable, request, now: now) { db, t in
            try db.run(.hold, JournalTime.millis(now), t.id)
        }
    }

    public func release(_ filter: TransmissionFilter, _ request: OperatorRequest, now: Date) async throws(JournalError) -> OperatorResult {
        let deadline = now.addingTimeInterval(policy.deadline)
        return try await operate(.release, filter, allowed: [.held], request, now: now) { db, t in
            try db.run(.release, JournalTime.millis(now), JournalTime.millis(deadline), t.id)
        }
    }

    public func discard(_ filter: TransmissionFilter, _ request: OperatorRequest, now: Date) async throws(JournalError) -> OperatorResult {
        guard let reason = request.reason, !reason.trimmingWhitespaceAndNewlines().isEmpty else {
            throw .operatorRequest("a discard needs a reason (--reason TEXT): it is kept in the audit trail")
        }
        return try await operate(.discard, filter, allowed: TransmissionState.discardable, request, now: now) { db, t in
            try db.run(.discard, JournalTime.millis(now), t.id)
        }
    }

    public func resend(_ filter: TransmissionFilter, includingSucceeded: Bool, _ request: OperatorRequest,
                       now: Date) async throws(JournalError) -> OperatorResult {
        let deadline = now.addingTimeInterval(policy.deadline)
        return try await write { db -> OperatorResult in
            let changed = try db.requeue(filter, includingSucceeded: includingSucceeded, deadline: deadline, now: now)
            return OperatorResult(action: try db.audit(.resend, request, changed.map(\.id), now: now), transmissions: changed)
        }
    }

    public func operatorActions(_ query: OperatorActionQuery) async throws(JournalError) -> [OperatorAction] {
        try await read { db in
            let statement = JournalStatement.operatorActions(query, db.dialect)
            return try db.query(statement.sql, statement.values).map(OperatorActionRow.decode)
        }
    }

    public func operatorActions(transmissionID: Int64) async throws(JournalError) -> [OperatorAction] {
        try await read { db in try db.rows(.operatorActionsOfTransmission, transmissionID).map(OperatorActionRow.decode) }
    }

    /// One audited operation: the selected transmissions in `allowed` states (locked), each
    /// changed by `change`, and the audit row, in one transaction.
    func operate(_ kind: OperatorActionKind, _ filter: TransmissionFilter, allowed: Set<TransmissionState>,
                 _ request: OperatorRequest, now: Date,
                 change: @escaping @Sendable (Connection, Transmission) throws -> Void) async throws(JournalError) -> OperatorResult {
        try await write { db -> OperatorResult in
            var eligible = filter
            eligible.states = filter.states.isEmpty ? allowed : filter.states.intersection(allowed)
            let selected = eligible.states.isEmpty ? [] : try db.transmissions(matching: eligible, lock: true)
            for t in selected { try change(db, t) }
            let changed = try selected.map { try db.requireTransmission(id: $0.id) }
            return OperatorResult(action: try db.audit(kind, request, changed.map(\.id), now: now), transmissions: changed)
        }
    }
}

extension JournalConnection {
    /// The audit row of an action that changed `ids` (none: nothing to record).
    func audit(_ kind: OperatorActionKind, _ request: OperatorRequest, _ ids: [Int64], now: Date) throws -> OperatorAction? {
        guard !ids.isEmpty else { return nil }
        let reason = request.reason.map(JournalText.bounded)
        let selection = JournalText.bounded(request.selection)
        guard let id = try rows(.insertOperatorAction, JournalTime.millis(now), request.user, kind.rawValue, selection, ids.count,
                                reason).first?.integer("id") else {
            throw JournalError.database("no id returned for the operator action")
        }
        for transmission in ids { try run(.insertOperatorActionTransmission, id, transmission) }
        return OperatorAction(id: id, at: JournalTime.date(millis: JournalTime.millis(now))!, user: request.user, action: kind,
                              selection: selection, count: ids.count, reason: reason)
    }
}

enum OperatorActionRow {
    static func decode(_ row: some JournalColumns) throws -> OperatorAction {
        guard let id = row.integer("id"), let action = row.text("action").flatMap(OperatorActionKind.init(rawValue:)) else {
            throw JournalError.database("unreadable operator_actions row (id \(row.integer("id").map(String.init) ?? "?"))")
        }
        return OperatorAction(id: id, at: JournalTime.date(millis: row.integer("acted_at")) ?? .distantPast,
                              user: row.text("os_user") ?? "", action: action, selection: row.text("selection") ?? "",
                              count: Int(row.integer("transmission_count") ?? 0), reason: row.text("reason"))
    }
}

extension TransmissionFilter {
    /// The filter as the audit trail keeps it: `key=value` pairs, `all` when empty. The patient
    /// appears as the keyed hash the journal already holds, never as an INS.
    public var selectionText: String {
        var parts: [String] = []
        if !transmissionIDs.isEmpty { parts.append("id=" + transmissionIDs.map(String.init).joined(separator: ",")) }
        if let documentID { parts.append("document=\(documentID)") }
        if let patientKey { parts.append("patient_key=\(patientKey)") }
        if let target { parts.append("target=\(target.rawValue)") }
        if let kind { parts.append("kind=\(kind.shortName)") }
        if !states.isEmpty { parts.append("state=" + states.map(\.rawValue).sorted().joined(separator: ",")) }
        if let from { parts.append("from=\(Date.ISO8601FormatStyle().format(from))") }
        if let until { parts.append("until=\(Date.ISO8601FormatStyle().format(until))") }
        if let afterID { parts.append("after=\(afterID)") }
        if let limit { parts.append("limit=\(limit)") }
        return parts.isEmpty ? "all" : parts.joined(separator: " ")
    }
}
