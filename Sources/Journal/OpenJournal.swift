import Foundation
import PasserelleCore
import PostgresKit

/// Opens the journal described by `[journal]`.
public enum Journals {
    /// The blob folder that goes with an SQLite journal: `journal.sqlite` → `journal.blobs/`,
    /// next to the database so a backup of the folder holds both.
    public static func blobFolder(forDatabase path: String) -> URL {
        URL(fileURLWithPath: path).deletingPathExtension().appendingPathExtension("blobs")
    }

    /// The blob store of the SQLite journal at `path`: its folder, and its `blobs` table for the
    /// small intake records kept in the database.
    public static func sqliteBlobs(forDatabase path: String) throws(JournalError) -> BlobStore {
        try BlobStore(root: blobFolder(forDatabase: path), source: SQLiteBlobs(path: path))
    }

    /// The store for `configuration.journal`, created and migrated if needed.
    public static func open(_ journal: PasserelleConfiguration.Journal, policy: RetryPolicy = RetryPolicy()) throws(JournalError) -> any JournalStore {
        try openWithBlobs(journal, policy: policy).store
    }

    /// The store and the blob store its documents are read from: for SQLite the folder beside the
    /// database; for PostgreSQL this node's cache of the database's `blobs` table.
    public static func openWithBlobs(_ journal: PasserelleConfiguration.Journal,
                                     policy: RetryPolicy = RetryPolicy()) throws(JournalError) -> (store: any JournalStore, blobs: BlobStore) {
        switch journal {
        case .sqlite(let path):
            let blobs = try sqliteBlobs(forDatabase: path)
            return (try SQLiteJournalStore(path: path, blobs: blobs, policy: policy), blobs)
        case .postgresql(let url, let passwordFile, let blobCache, let preparedStatements, let connections):
            var configuration: PostgresConfiguration
            do {
                configuration = try passwordFile.map { file throws(PostgresError) in try PostgresConfiguration(url: url, passwordFile: file) }
                    ?? PostgresConfiguration(url: url)
            } catch {
                throw .database(error.description)
            }
            configuration.preparedStatements = preparedStatements
            configuration.connections = connections
            let cache = URL(fileURLWithPath: blobCache ?? FileManager.default.currentDirectoryPath + "/journal-blob-cache")
            let store = try PostgresJournalStore(configuration: configuration, cache: cache, policy: policy)
            return (store, store.blobs)
        }
    }
}
