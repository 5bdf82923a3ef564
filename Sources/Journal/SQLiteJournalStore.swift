import BlockingIO
import Foundation
import PasserelleCore
import SQLiteKit
import Synchronization

/// The journal in one SQLite file (WAL, fsync on commit) for a single gateway node.
///
/// One connection per store, guarded by a mutex; several stores (threads or processes) may
/// open the same file: writers serialise on `BEGIN IMMEDIATE` and wait up to the busy timeout.
public final class SQLiteJournalStore: SQLJournalBackend {
    public let path: String
    public let blobs: BlobStore
    public let policy: RetryPolicy
    private let random: @Sendable () -> Double
    /// The connection's own thread: statements and commit fsyncs never run on the cooperative
    /// pool, and concurrent writers share one commit (group commit).
    let queue: SQLiteCommitQueue
    /// The long reads (``readAside(_:)``): a read-only connection beside the writer.
    private let reader: SQLiteReader

    /// Opens (creating and migrating if needed) the journal at `path`.
    /// - Parameter random: jitter source in [0, 1); injectable for deterministic tests.
    public init(path: String, blobs: BlobStore, policy: RetryPolicy = RetryPolicy(),
                busyTimeout: Duration = .seconds(10),
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                now: Date = Date()) throws(JournalError) {
        self.path = path
        self.blobs = blobs
        self.policy = policy
        self.random = random
        let db: SQLiteConnection
        do {
            db = try SQLiteConnection(path: path, busyTimeout: busyTimeout)
            try JournalSchema.migrate(db, now: now)
        } catch {
            throw JournalError.wrapping(error)
        }
        // SQLite syncs the folder when it creates the -wal file, not the database file: a journal
        // created just before a power cut could otherwise vanish with everything committed to it.
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if let failure = DurableFiles.syncDirectory(folder) { throw .database("\(folder): \(failure)") }
        queue = SQLiteCommitQueue(connection: db, name: "passerelle-sqlite")
        do { reader = try SQLiteReader(path: path, busyTimeout: busyTimeout) } catch { throw JournalError.wrapping(error) }
    }

    deinit {
        queue.finish()
        reader.finish()
    }

    /// The schema version in the file.
    public func schemaVersion() throws(JournalError) -> Int {
        try locked { db in try db.scalar("SELECT MAX(version) FROM schema_migrations")?.int ?? 0 }
    }

    // MARK: - Backend

    typealias Row = SQLiteColumns
    func jitter() -> Double { random() }

    /// `db` as the shared operations use it.
    private static func connection(_ db: SQLiteConnection) -> Connection {
        Connection(dialect: .sqlite, query: { try db.query($0, $1.map(\.bound.sqlite)).map(SQLiteColumns.init) },
                   change: { try db.run($0, $1.map(\.bound.sqlite)) })
    }

    /// Synchronous access (schema checks): runs on the calling thread between two batches.
    private func locked<T>(_ body: (SQLiteConnection) throws -> T) throws(JournalError) -> T {
        do { return try queue.withConnection(body) } catch { throw JournalError.wrapping(error) }
    }

    /// Runs `body` on the journal's thread; it commits with whatever else is in flight.
    private func onThread<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws(JournalError) -> T {
        do { return try await queue.run(body) } catch { throw JournalError.wrapping(error) }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T {
        try await onThread { db in try body(Self.connection(db)) }
    }

    func readAside<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T {
        do { return try await reader.run { db in try body(Self.connection(db)) } } catch { throw JournalError.wrapping(error) }
    }

    /// `BEGIN IMMEDIATE` takes the write lock before the first read: no other connection writes
    /// between this transaction's checks and its writes. Inside a commit-queue batch it is a
    /// savepoint, and the batch's one COMMIT makes it durable (group commit).
    func write<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T {
        try await onThread { db in try db.transaction(.immediate) { try body(Self.connection(db)) } }
    }

    /// Under the write lock the duplicate check inside `body` is final: no insert can race it.
    func insert<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T,
                             raced: @escaping @Sendable (Connection) throws -> T?) async throws(JournalError) -> T {
        try await write(body)
    }

    /// One DEFERRED transaction: its reads see the same journal (WAL snapshot).
    func snapshot<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T {
        try await onThread { db in try db.transaction(.deferred) { try body(Self.connection(db)) } }
    }

    /// Blobs are files beside the database, written and fsynced before the row that points at them.
    func storeBlob(parts: [Data]) throws(JournalError) -> StoredBlob { StoredBlob(sha256: try blobs.put(parts: parts)) }
    func storeBlob(file: URL, sha256: String) throws(JournalError) -> StoredBlob {
        StoredBlob(sha256: try blobs.put(file: file, sha256: sha256))
    }
    func storedBlob(_ sha256: String) throws(JournalError) -> StoredBlob { StoredBlob(sha256: sha256) }
    /// The intake record goes into the admission's transaction when it is small (a metadata line:
    /// the content is in the built CDA) and the blob folder reads this journal's `blobs` table
    /// (``Journals/openWithBlobs(_:policy:)`` sets that up): one file per document instead of two.
    func storeBlobs(of admission: Admission) async throws(JournalError) -> (record: StoredBlob, built: StoredBlob) {
        let size = admission.record.reduce(0) { $0 + $1.count }
        let inJournal = blobs.source is SQLiteBlobs && size <= Self.recordInJournalBytes
        let (record, built) = try await blobs.store(admission, recordInJournal: inJournal)
        let recordContent = inJournal ? admission.record.reduce(into: Data(capacity: size)) { $0.append($1) } : nil
        return (StoredBlob(sha256: record, inDatabase: recordContent), StoredBlob(sha256: built))
    }

    /// The largest intake record kept in the database rather than in a file of its own: above,
    /// the record holds the producer's content (a large PDF) and stays a file.
    static let recordInJournalBytes = 64 << 10
}

/// The blobs an SQLite journal keeps in its `blobs` table (small intake records), for the
/// ``BlobStore`` beside it: read through a read-only connection of its own, opened on first use
/// (only a retry, a restart or a CLI command reads a record back; the first send has it in memory).
public final class SQLiteBlobs: BlobSource {
    public let path: String
    /// Opened on first use.
    private let connection = Mutex<SQLiteConnection?>(nil)

    public init(path: String) { self.path = path }

    public var cachesInFolder: Bool { false }

    public func blob(sha256: String) throws(JournalError) -> Data? {
        do {
            return try connection.withLock { connection throws -> Data? in
                if connection == nil { connection = try SQLiteConnection(path: path, mode: .readOnly) }
                let db = connection!
                // A journal not yet migrated to 9 has no such table: nothing is kept there.
                guard try Self.hasTable(db) else { return nil }
                return try db.scalar("SELECT content FROM blobs WHERE sha256 = ?", [sha256])?.data
            }
        } catch {
            throw JournalError.wrapping(error)
        }
    }

    /// True when the journal `db` has the `blobs` table (migration 9 on).
    static func hasTable(_ db: SQLiteConnection) throws -> Bool {
        try db.scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'blobs'") != nil
    }
}

/// A read-only connection on a thread of its own (started on demand, ended when idle): a scan of
/// every row there does not hold the commit queue's connection, and in WAL mode it never blocks
/// the writer.
final class SQLiteReader: @unchecked Sendable {
    /// Touched on `lane`'s one thread only.
    private let connection: SQLiteConnection
    private let lane = BlockingExecutor(name: "passerelle-sqlite-read", threads: 1, idleTimeout: .seconds(30))

    init(path: String, busyTimeout: Duration) throws(SQLiteError) {
        connection = try SQLiteConnection(path: path, mode: .readOnly, busyTimeout: busyTimeout)
    }

    func run<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await lane.run { try body(self.connection) }
    }

    func finish() { lane.shutdown() }
}

/// SQLite rows as the shared decoder reads them.
struct SQLiteColumns: JournalColumns {
    let row: SQLiteRow
    func text(_ name: String) -> String? { row[name].string }
    func integer(_ name: String) -> Int64? { row[name].int64 }
    func flag(_ name: String) -> Bool { row[name].int == 1 }
}
