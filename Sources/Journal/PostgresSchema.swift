import Foundation
import PostgresKit

/// The PostgreSQL journal schema: the same tables, columns and keys as ``JournalSchema``
/// (SQLite), plus the `blobs` table, with PostgreSQL types. Versions follow the SQLite ones
/// so `schema_migrations` means the same on both backends.
enum PostgresJournalSchema {
    /// ``JournalSchema``'s migrations in PostgreSQL types, plus the `blobs` table: several nodes
    /// read each other's documents, so the bytes live with the rows that point at them, in the
    /// same transaction, instead of in one node's folder.
    static let migrations: [(version: Int, sql: String)] = JournalSchema.ddl(.postgresql).map { migration in
        switch migration.version {
        case 1:
            return (1, migration.sql + "\n" + """
                CREATE TABLE blobs (
                    sha256     \(JournalSchema.Types.postgresql.text) PRIMARY KEY,
                    content    BYTEA NOT NULL,
                    stored_at  BIGINT NOT NULL
                );
                """)
        case 6:
            // Blobs are PDFs (already compressed) and base64 CDAs: TOAST's pglz compression cost
            // the server ~6 ms of CPU per document for little space (bench: 10.8 s → 4.8 s of
            // server CPU per 1,000 documents). Stored out of line, uncompressed, from now on.
            return (6, migration.sql + "\nALTER TABLE blobs ALTER COLUMN content SET STORAGE EXTERNAL;")
        default:
            return migration
        }
    }

    static var latestVersion: Int { migrations.last!.version }

    /// Any fixed number: the advisory lock that serialises migrations between nodes.
    private static let migrationLock: Int64 = 0x5061_7373_6572_656C  // "Passerel"

    /// Applies the missing migrations in one transaction (PostgreSQL DDL is transactional),
    /// under an advisory lock: two nodes starting at once, the second waits then finds the work done.
    static func migrate(_ db: PostgresConnection, now: Date) throws {
        try db.transaction {
            try db.query("SELECT pg_advisory_xact_lock($1)", [migrationLock])
            try db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")
            let current = try db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")?.int ?? 0
            if current > latestVersion { throw JournalError.schemaTooNew(found: current, supported: latestVersion) }
            for migration in migrations where migration.version > current {
                try db.execute(migration.sql)
                try db.run("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                           [migration.version, JournalTime.millis(now)])
            }
        }
    }
}
