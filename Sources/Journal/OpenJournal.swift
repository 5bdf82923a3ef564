import Foundation
import PasserelleCore

extension JournalError {
    /// The configured backend is not built into this version.
    static func backendUnavailable(_ name: String) -> JournalError {
        .database("the \(name) journal backend is not available in this build yet; set [journal] backend = \"sqlite\"")
    }
}

/// Opens the journal described by `[journal]`.
public enum Journals {
    /// The blob folder that goes with an SQLite journal: `journal.sqlite` → `journal.blobs/`,
    /// next to the database so a backup of the folder holds both.
    public static func blobFolder(forDatabase path: String) -> URL {
        URL(fileURLWithPath: path).deletingPathExtension().appendingPathExtension("blobs")
    }

    /// The store for `configuration.journal`, created and migrated if needed.
    public static func open(_ journal: PasserelleConfiguration.Journal, policy: RetryPolicy = RetryPolicy()) throws(JournalError) -> any JournalStore {
        switch journal {
        case .sqlite(let path):
            return try SQLiteJournalStore(path: path, blobs: BlobStore(root: blobFolder(forDatabase: path)), policy: policy)
        case .postgresql:
            throw .backendUnavailable("PostgreSQL")
        }
    }
}
