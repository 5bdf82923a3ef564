import Foundation
import PasserelleCore
import PostgresKit
import SQLiteKit

/// The journal's schema version as found, without creating or migrating anything: what
/// `passerelle config check` reports before the service starts.
public struct JournalSchemaStatus: Sendable, Hashable {
    /// The version in the journal; nil when there is no journal yet (the service creates it).
    public var found: Int?
    /// The newest version this binary knows.
    public var supported: Int

    /// The journal was written by a newer passerelle: this one refuses to start on it.
    public var isTooNew: Bool { (found ?? 0) > supported }
    /// The service migrates it at start (a note, not a problem).
    public var needsMigration: Bool { found.map { $0 < supported } ?? false }
}

extension Journals {
    /// Opens the journal read-only (SQLite) or connects (PostgreSQL, `connectTimeout` seconds)
    /// and reads its schema version. Nothing is created or changed.
    public static func schemaStatus(_ journal: PasserelleConfiguration.Journal,
                                    connectTimeout: Int = 5) throws(JournalError) -> JournalSchemaStatus {
        switch journal {
        case .sqlite(let path):
            let supported = JournalSchema.latestVersion
            guard FileManager.default.fileExists(atPath: path) else { return JournalSchemaStatus(found: nil, supported: supported) }
            do {
                let db = try SQLiteConnection(path: path, mode: .readOnly, busyTimeout: .seconds(2))
                defer { db.close() }
                let table = try db.scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")?.int ?? 0
                let found = table == 0 ? 0 : try db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")?.int ?? 0
                return JournalSchemaStatus(found: found, supported: supported)
            } catch {
                throw .database(error.description)
            }
        case .postgresql(let url, let passwordFile, _, _, _):
            let supported = PostgresJournalSchema.latestVersion
            do {
                let configuration = try passwordFile.map { file throws(PostgresError) in
                    try PostgresConfiguration(url: url, passwordFile: file, connectTimeout: connectTimeout, applicationName: "passerelle-config-check")
                } ?? PostgresConfiguration(url: url, connectTimeout: connectTimeout, applicationName: "passerelle-config-check")
                let db = try PostgresConnection(configuration)
                defer { db.close() }
                let table = try db.scalar("""
                    SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'
                    """)?.int ?? 0
                let found = table == 0 ? 0 : try db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")?.int ?? 0
                return JournalSchemaStatus(found: found, supported: supported)
            } catch {
                throw .database(error.description)
            }
        }
    }
}
