import Foundation
import PasserelleCore
import SQLiteKit
#if canImport(Glibc)
import Glibc
#endif

/// Online backup and restore of an SQLite journal (`passerelle backup`, `passerelle restore`).
///
/// A backup has the journal's own layout: `NAME.sqlite` (SQLite's online backup API: one
/// consistent snapshot while the gateway writes on), `NAME.blobs/` and `NAME.patient-key`. The
/// blob folder is copied *after* the snapshot: blobs are written (fsynced) before the rows that
/// point at them and never changed, so every blob the snapshot's rows need is already there;
/// the copy is then checked against the snapshot (a blob a purge deleted in between is named).
public enum JournalBackup {
    public struct Copy: Sendable {
        public var database: String
        public var blobFolder: URL
        public var blobs: Int
        public var patientKey: Bool
        /// The schema version of the journal once restored (0 for a backup).
        public var schemaVersion: Int
    }

    /// The patient key file that goes with a backup database: `NAME.patient-key`.
    public static func patientKeyFile(forBackup file: String) -> String {
        URL(fileURLWithPath: file).deletingPathExtension().appendingPathExtension("patient-key").path
    }

    /// Backs up the journal at `databasePath` (and its blob folder and patient key) to `file`.
    public static func backup(databasePath: String, patientKeyFile: String, to file: String) throws(JournalError) -> Copy {
        let blobFolder = Journals.blobFolder(forDatabase: file)
        let keyCopy = Self.patientKeyFile(forBackup: file)
        for existing in [file, blobFolder.path, keyCopy] where FileManager.default.fileExists(atPath: existing) {
            throw .database("\(existing) exists: a backup never overwrites; choose a new file name")
        }
        guard FileManager.default.fileExists(atPath: databasePath) else { throw .database("no journal at \(databasePath)") }
        let parent = URL(fileURLWithPath: file).deletingLastPathComponent()
        if let failure = DurableFiles.createDirectory(parent) { throw .blobStore(path: parent.path, reason: failure) }
        do {
            let source = try SQLiteConnection(path: databasePath, mode: .readWrite, busyTimeout: .seconds(30))
            defer { source.close() }
            try source.backup(to: file)
        } catch {
            throw .database("backup of \(databasePath): \(error)")
        }
        let blobs = try copyBlobs(from: Journals.blobFolder(forDatabase: databasePath), to: blobFolder)
        // Every blob the snapshot's rows point at must be in the copy.
        let missing = try missingBlobs(database: file, blobFolder: blobFolder)
        if !missing.isEmpty {
            throw .blobStore(path: blobFolder.path, reason: "\(missing.count) blob(s) the backup's journal needs are missing (first \(missing[0].prefix(16))…; purged during the backup, or missing from the journal itself): run the backup again to a new file")
        }
        let key = FileManager.default.fileExists(atPath: patientKeyFile)
        if key { try copyFile(patientKeyFile, to: keyCopy) }
        return Copy(database: file, blobFolder: blobFolder, blobs: blobs, patientKey: key, schemaVersion: 0)
    }

    /// Puts the backup `file` in place as the journal at `databasePath`. Refuses to overwrite.
    public static func restore(from file: String, databasePath: String, patientKeyFile: String) throws(JournalError) -> Copy {
        guard FileManager.default.fileExists(atPath: file) else { throw .database("no backup at \(file)") }
        let blobFolder = Journals.blobFolder(forDatabase: databasePath)
        for existing in [databasePath, databasePath + "-wal", blobFolder.path] where FileManager.default.fileExists(atPath: existing) {
            throw .database("\(existing) exists: restore never overwrites a journal; stop the gateway and move the journal (database, -wal, -shm, blobs) aside first")
        }
        do {
            let backup = try SQLiteConnection(path: file, mode: .readOnly)
            defer { backup.close() }
            if let problems = try backup.integrityProblems() { throw JournalError.database("the backup \(file) is damaged: \(problems)") }
            let parent = URL(fileURLWithPath: databasePath).deletingLastPathComponent()
            if let failure = DurableFiles.createDirectory(parent) { throw JournalError.blobStore(path: parent.path, reason: failure) }
            try backup.backup(to: databasePath)
        } catch {
            throw JournalError.wrapping(error)
        }
        let blobs = try copyBlobs(from: Journals.blobFolder(forDatabase: file), to: blobFolder)
        let keyCopy = Self.patientKeyFile(forBackup: file)
        var key = false
        if FileManager.default.fileExists(atPath: keyCopy) {
            if let current = FileManager.default.contents(atPath: patientKeyFile) {
                guard current == FileManager.default.contents(atPath: keyCopy) else {
                    throw .database("\(patientKeyFile) differs from the backup's patient key \(keyCopy): the journaled patient hashes need the backup's; move the current one aside")
                }
            } else {
                try copyFile(keyCopy, to: patientKeyFile)
                key = true
            }
        }
        let missing = try missingBlobs(database: databasePath, blobFolder: blobFolder)
        if !missing.isEmpty {
            throw .blobStore(path: blobFolder.path, reason: "\(missing.count) blob(s) of the restored journal are missing from the backup's folder")
        }
        // Opening migrates a backup made by an older Passerelle.
        let store = try SQLiteJournalStore(path: databasePath, blobs: BlobStore(root: blobFolder, source: SQLiteBlobs(path: databasePath)))
        return Copy(database: databasePath, blobFolder: blobFolder, blobs: blobs, patientKey: key, schemaVersion: try store.schemaVersion())
    }

    /// Copies the blob files (`xx/<sha256>`), 0600 in 0700 folders whatever the umask; returns how many.
    static func copyBlobs(from source: URL, to destination: URL) throws(JournalError) -> Int {
        if let failure = DurableFiles.createDirectory(destination) { throw .blobStore(path: destination.path, reason: failure) }
        chmod(destination.path, 0o700)
        let fm = FileManager.default
        var count = 0
        let folders = (try? fm.contentsOfDirectory(atPath: source.path)) ?? []
        for folder in folders.sorted() where folder.count == 2 && folder.allSatisfy(\.isHexDigit) {
            let names = (try? fm.contentsOfDirectory(atPath: source.appendingPathComponent(folder).path)) ?? []
            let target = destination.appendingPathComponent(folder)
            for name in names.sorted() where name.count == 64 && name.allSatisfy(\.isHexDigit) {
                if count == 0 || !fm.fileExists(atPath: target.path) {
                    if let failure = DurableFiles.createDirectory(target) { throw .blobStore(path: target.path, reason: failure) }
                    chmod(target.path, 0o700)
                }
                try copyFile(source.appendingPathComponent(folder).appendingPathComponent(name).path,
                             to: target.appendingPathComponent(name).path)
                count += 1
            }
        }
        return count
    }

    /// Copies one file: written to a temporary name created 0600, fsynced, renamed.
    static func copyFile(_ source: String, to destination: String) throws(JournalError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .blobStore(path: source, reason: String(cString: strerror(errno))) }
        defer { close(input) }
        let temporary = destination + ".partial"
        let output = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw .blobStore(path: temporary, reason: String(cString: strerror(errno))) }
        fchmod(output, 0o600)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var failure: String?
        while failure == nil {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 { if errno == EINTR { continue }; failure = "read: \(String(cString: strerror(errno)))"; break }
            var written = 0
            while written < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, n - written) }
                if w < 0 { if errno == EINTR { continue }; failure = "write: \(String(cString: strerror(errno)))"; break }
                written += w
            }
        }
        if failure == nil, fsync(output) != 0 { failure = "fsync: \(String(cString: strerror(errno)))" }
        close(output)
        if failure == nil, rename(temporary, destination) != 0 { failure = "rename: \(String(cString: strerror(errno)))" }
        if let failure {
            unlink(temporary)
            throw .blobStore(path: destination, reason: failure)
        }
    }

    /// The digests the unpurged documents of `database` point at that `blobFolder` lacks.
    static func missingBlobs(database: String, blobFolder: URL) throws(JournalError) -> [String] {
        let store: BlobStore
        do {
            let db = try SQLiteConnection(path: database, mode: .readOnly)
            defer { db.close() }
            let hasPurge = try db.query("SELECT 1 FROM pragma_table_info('documents') WHERE name = 'purged_at'").isEmpty == false
            let rows = try db.query("SELECT blob_sha256, built_sha256 FROM documents" + (hasPurge ? " WHERE purged_at IS NULL" : ""))
            store = try BlobStore(root: blobFolder)
            // Small intake records are in the database itself (migration 9), not in the folder.
            let inDatabase = Set(try SQLiteBlobs.hasTable(db) ? try db.query("SELECT sha256 FROM blobs").compactMap { $0["sha256"].string } : [])
            return Set(rows.flatMap { [$0["blob_sha256"].string, $0["built_sha256"].string] }.compactMap { $0 }.filter { !$0.isEmpty })
                .filter { !inDatabase.contains($0) && store.size($0) == nil }.sorted()
        } catch {
            throw JournalError.wrapping(error)
        }
    }
}
