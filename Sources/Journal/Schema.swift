import Foundation
import SQLiteKit

/// The journal schema as numbered migrations, applied in order and recorded in
/// `schema_migrations` so an upgrade only runs what is missing.
///
/// Times are INTEGER milliseconds since 1970-01-01 UTC everywhere; `*_month` columns hold the
/// UTC month (`YYYY-MM`) so the usage report groups by month without time-zone arithmetic.
enum JournalSchema {
    static let migrations: [(version: Int, sql: String)] = [
        (1, """
        CREATE TABLE inputs (
            sha256       TEXT PRIMARY KEY,
            file_name    TEXT NOT NULL,
            received_at  INTEGER NOT NULL,
            document_id  TEXT,
            version      INTEGER
        );
        CREATE TABLE stays (
            finess         TEXT NOT NULL,
            stay_id        TEXT NOT NULL,
            admitted_at    INTEGER,
            discharged_at  INTEGER,
            discharged_month TEXT,
            PRIMARY KEY (finess, stay_id)
        );
        CREATE TABLE documents (
            id               TEXT NOT NULL,
            version          INTEGER NOT NULL CHECK (version >= 1),
            set_id           TEXT NOT NULL,
            kind             TEXT NOT NULL,
            ins_masked       TEXT,
            patient_key      TEXT,
            identity_status  TEXT,
            finess           TEXT NOT NULL,
            stay_id          TEXT,
            blob_sha256      TEXT NOT NULL,
            built_sha256     TEXT,
            state            TEXT NOT NULL CHECK (state IN ('received', 'built', 'queued')),
            received_at      INTEGER NOT NULL,
            received_month   TEXT NOT NULL,
            updated_at       INTEGER NOT NULL,
            PRIMARY KEY (id, version),
            UNIQUE (set_id, version)
        );
        CREATE INDEX documents_patient ON documents (patient_key);
        CREATE INDEX documents_month_kind ON documents (received_month, kind);
        CREATE INDEX documents_state ON documents (state);
        CREATE TABLE transmissions (
            id                INTEGER PRIMARY KEY,
            document_id       TEXT NOT NULL,
            version           INTEGER NOT NULL,
            target            TEXT NOT NULL CHECK (target IN ('dmp', 'mssante_ps', 'mssante_patient')),
            state             TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'acknowledged', 'delivered', 'read', 'retry-wait', 'failed')),
            attempts          INTEGER NOT NULL DEFAULT 0,
            created_at        INTEGER NOT NULL,
            created_month     TEXT NOT NULL,
            updated_at        INTEGER NOT NULL,
            deadline_at       INTEGER,
            next_attempt_at   INTEGER,
            lease_owner       TEXT,
            lease_expires_at  INTEGER,
            needs_recheck     INTEGER NOT NULL DEFAULT 0,
            alerted           INTEGER NOT NULL DEFAULT 0,
            last_error        TEXT,
            last_error_at     INTEGER,
            message_id        TEXT,
            FOREIGN KEY (document_id, version) REFERENCES documents (id, version),
            UNIQUE (document_id, version, target)
        );
        CREATE INDEX transmissions_due ON transmissions (target, state, next_attempt_at);
        CREATE INDEX transmissions_lease ON transmissions (state, lease_expires_at);
        CREATE INDEX transmissions_report ON transmissions (created_month, target, state);
        CREATE TABLE attempts (
            id               INTEGER PRIMARY KEY,
            transmission_id  INTEGER NOT NULL REFERENCES transmissions (id),
            started_at       INTEGER NOT NULL,
            ended_at         INTEGER,
            outcome          TEXT CHECK (outcome IN ('sent', 'transient', 'permanent', 'interrupted')),
            response         TEXT
        );
        CREATE INDEX attempts_transmission ON attempts (transmission_id);
        CREATE TABLE acknowledgements (
            id               INTEGER PRIMARY KEY,
            transmission_id  INTEGER NOT NULL REFERENCES transmissions (id),
            kind             TEXT NOT NULL CHECK (kind IN ('acknowledged', 'delivered', 'read')),
            received_at      INTEGER NOT NULL,
            detail           TEXT
        );
        CREATE INDEX acknowledgements_transmission ON acknowledgements (transmission_id);
        """),
        // The usage report (Indicators): what a document row does to its set (a replacement or
        // a deletion must not count as a second document), why a transmission failed (DMP
        // refusals by error code), and the indexes its range aggregates need. Month boundaries
        // are local (Europe/Paris), so the report filters on the millisecond columns, not on
        // the UTC `*_month` ones.
        (2, """
        ALTER TABLE documents ADD COLUMN action TEXT NOT NULL DEFAULT 'new' CHECK (action IN ('new', 'replace', 'delete'));
        ALTER TABLE transmissions ADD COLUMN failure TEXT CHECK (failure IN ('refused', 'permanent', 'exhausted'));
        ALTER TABLE transmissions ADD COLUMN error_code TEXT;
        CREATE INDEX documents_received ON documents (received_at);
        CREATE INDEX documents_stay ON documents (finess, stay_id);
        CREATE INDEX stays_discharged ON stays (discharged_at, finess);
        """),
        // Per-recipient retry of MSSanté mails: after a partial delivery, the recipients that
        // answered 4xx (one address per line) are the only ones the next attempt goes to.
        (3, """
        ALTER TABLE transmissions ADD COLUMN pending_recipients TEXT;
        """),
    ]

    static var latestVersion: Int { migrations.last!.version }

    /// Applies the missing migrations, each in its own IMMEDIATE transaction (two processes
    /// starting at once: the second waits, then finds the work done).
    static func migrate(_ db: SQLiteConnection, now: Date) throws {
        try db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        for migration in migrations {
            try db.transaction(.immediate) {
                let current = try db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")?.int ?? 0
                if current > latestVersion { throw JournalError.schemaTooNew(found: current, supported: latestVersion) }
                guard current < migration.version else { return }
                try db.execute(migration.sql)
                try db.run("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                           [migration.version, JournalTime.millis(now)])
            }
        }
    }
}

/// The one place dates become database values and back.
enum JournalTime {
    static func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func millis(_ date: Date?) -> Int64? { date.map(millis) }
    static func date(_ value: SQLiteValue) -> Date? {
        value.int64.map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }

    /// `YYYY-MM` of `date` in UTC, whatever the process time zone.
    static func month(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month], from: date)
        return String(format: "%04d-%02d", c.year!, c.month!)
    }
}
