import Foundation
import PasserelleCore

/// What happened at the console's door (migration 8, `console_events`).
public enum ConsoleEventKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// A password accepted: a session opened.
    case login
    /// A wrong name or password, or a login refused without checking it (locked, too many at once).
    case loginRefused = "login-refused"
    /// The failure that locked an account or an address.
    case lockout
    case logout
}

/// One row of the console's login trail: the account name as typed (or `(invalide)`) and the
/// peer's address. Never a password, never a patient.
public struct ConsoleEvent: Sendable, Hashable {
    /// 0 until recorded.
    public var id: Int64
    public var at: Date
    public var user: String
    public var address: String
    public var kind: ConsoleEventKind

    public init(id: Int64 = 0, at: Date, user: String, address: String, kind: ConsoleEventKind) {
        self.id = id
        self.at = at
        self.user = user
        self.address = address
        self.kind = kind
    }
}

/// The console's login trail, next to the operator actions' audit trail.
public protocol ConsoleEventLog: Sendable {
    /// Writes one event; returns it with its id.
    @discardableResult func record(_ event: ConsoleEvent) async throws(JournalError) -> ConsoleEvent
    /// Events in `[since, until)`, oldest first; with more than `limit`, the most recent ones.
    func consoleEvents(since: Date?, until: Date?, limit: Int) async throws(JournalError) -> [ConsoleEvent]
}

extension SQLiteJournalStore: ConsoleEventLog {}
extension PostgresJournalStore: ConsoleEventLog {}

extension SQLJournalBackend {
    @discardableResult
    public func record(_ event: ConsoleEvent) async throws(JournalError) -> ConsoleEvent {
        // Names and addresses come from the network: bounded like every text the journal keeps.
        var event = event
        event.user = JournalText.bounded(event.user)
        event.address = JournalText.bounded(event.address)
        // Read back as stored: whole milliseconds.
        let millis: Int64 = JournalTime.millis(event.at)
        event.at = Date(timeIntervalSince1970: Double(millis) / 1000)
        let row = event
        event.id = try await write { db -> Int64 in
            guard let id = try db.rows(.insertConsoleEvent, millis, row.user, row.address, row.kind.rawValue)
                .first?.integer("id") else {
                throw JournalError.database("no id returned for the console event")
            }
            return id
        }
        return event
    }

    public func consoleEvents(since: Date?, until: Date?, limit: Int) async throws(JournalError) -> [ConsoleEvent] {
        try await read { db in
            let statement = JournalStatement.consoleEvents(since: since, until: until, limit: limit, db.dialect)
            return try db.query(statement.sql, statement.values).map(ConsoleEventRow.decode)
        }
    }
}

extension JournalStatement {
    /// Console events, oldest first; the most recent `limit` ones.
    static func consoleEvents(since: Date?, until: Date?, limit: Int, _ dialect: SQLDialect) -> (sql: String, values: [SQLValue]) {
        recentRows(of: "console_events", time: "occurred_at", from: since, until: until, limit: max(1, limit), dialect)
    }
}

enum ConsoleEventRow {
    static func decode(_ row: some JournalColumns) throws -> ConsoleEvent {
        guard let id = row.integer("id"), let kind = row.text("event").flatMap(ConsoleEventKind.init(rawValue:)) else {
            throw JournalError.database("unreadable console_events row (id \(row.integer("id").map(String.init) ?? "?"))")
        }
        return ConsoleEvent(id: id, at: JournalTime.date(millis: row.integer("occurred_at")) ?? .distantPast,
                            user: row.text("user_name") ?? "", address: row.text("address") ?? "", kind: kind)
    }
}
