import Foundation
import PasserelleCore
import PostgresKit

/// The journal in a PostgreSQL database, for several gateway nodes sharing one queue.
///
/// Same semantics as ``SQLiteJournalStore``; where SQLite serialises writers with `BEGIN
/// IMMEDIATE`, this store locks rows: ``claimNext(target:now:lease:owner:)`` picks its row with
/// `FOR UPDATE SKIP LOCKED` (concurrent claimers take different rows without waiting on each
/// other), and every read-then-write locks the row it reads (`FOR UPDATE`).
///
/// Blobs are stored in the `blobs` table in the same transaction as the row that points at
/// them, so any node can send any document; ``blobs`` is a local cache of that table whose
/// ``BlobStore/get(_:)`` reads through to the database.
public final class PostgresJournalStore: SQLJournalBackend {
    public let blobs: BlobStore
    public let policy: RetryPolicy
    private let client: PostgresClient
    private let random: @Sendable () -> Double

    /// Connects, creates or migrates the schema.
    /// - Parameters:
    ///   - cache: the folder of this node's local copy of the blobs.
    ///   - random: jitter source in [0, 1); injectable for deterministic tests.
    public init(configuration: PostgresConfiguration, cache: URL, policy: RetryPolicy = RetryPolicy(),
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                now: Date = Date()) throws(JournalError) {
        do {
            client = try PostgresClient(configuration)
            try client.withConnectionBlocking { db in try PostgresJournalSchema.migrate(db, now: now) }
        } catch {
            throw JournalError.wrapping(error)
        }
        blobs = try BlobStore(root: cache, source: DatabaseBlobs(client: client))
        self.policy = policy
        self.random = random
    }

    /// The schema version in the database.
    public func schemaVersion() async throws(JournalError) -> Int {
        try await run { db in try db.scalar("SELECT MAX(version) FROM schema_migrations")?.int ?? 0 }
    }

    /// Closes the connection (its thread ends after the work already submitted).
    public func close() { client.close() }

    // MARK: - Backend

    typealias Row = PostgresColumns
    func jitter() -> Double { random() }

    /// `db` as the shared operations use it.
    private static func connection(_ db: PostgresConnection) -> Connection {
        Connection(dialect: .postgresql, query: { try db.query($0, $1.map(\.bound.postgres)).map(PostgresColumns.init) },
                   change: { try db.run($0, $1.map(\.bound.postgres)) })
    }

    /// Runs `body` on the connection's own thread, errors as ``JournalError``.
    private func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws(JournalError) -> T {
        do {
            return try await client.withConnection(body)
        } catch {
            throw JournalError.wrapping(error)
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T {
        try await run { db in try body(Self.connection(db)) }
    }

    /// READ COMMITTED; the rows a transaction reads before writing them are locked (``SQLDialect/forUpdate(of:)``).
    func write<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T {
        try await run { db in try db.transaction { try body(Self.connection(db)) } }
    }

    /// Another node may insert the same input or document between our check and our insert
    /// (both committed after our snapshot): the unique key refuses ours, and we report what it stored.
    func insert<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T,
                             raced: @escaping @Sendable (Connection) throws -> T?) async throws(JournalError) -> T {
        try await run { db in
            do {
                return try db.transaction { try body(Self.connection(db)) }
            } catch let error as PostgresError where error.isUniqueViolation {
                guard let earlier = try raced(Self.connection(db)) else { throw error }
                return earlier
            }
        }
    }

    /// One REPEATABLE READ transaction: its statements see the same snapshot of the journal.
    func snapshot<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws(JournalError) -> T {
        try await run { db in try db.transaction(isolation: "REPEATABLE READ READ ONLY") { try body(Self.connection(db)) } }
    }

    /// The database keeps a copy of every blob (shared by the nodes), stored with the row that
    /// points at it; ``blobs`` is this node's cache. A file-backed blob is read once to go there.
    func storeBlob(parts: [Data]) throws(JournalError) -> StoredBlob {
        let content = parts.count == 1 ? parts[0] : parts.reduce(into: Data()) { $0.append($1) }
        return StoredBlob(sha256: try blobs.put(content), inDatabase: content)
    }
    func storeBlob(file: URL, sha256: String) throws(JournalError) -> StoredBlob {
        let stored = try blobs.put(file: file, sha256: sha256)
        return StoredBlob(sha256: stored, inDatabase: try blobs.get(sha256))
    }
    func storedBlob(_ sha256: String) throws(JournalError) -> StoredBlob { try storeBlob(parts: [try blobs.get(sha256)]) }
    func storeBlobs(of admission: Admission) async throws(JournalError) -> (record: StoredBlob, built: StoredBlob) {
        let recordContent = admission.record.count == 1 ? admission.record[0] : admission.record.reduce(into: Data()) { $0.append($1) }
        // A CDA whose first sends take it from memory goes to the database only, no cache file;
        // a retry, a restart or another node reads it from the database once, into its cache.
        // One the hand-off could not hold (full: intake ahead of delivery) is cached now, as its
        // read-back is near: a local file costs less to read than the database.
        if admission.firstSendFromMemory, case .data(let data, let sha256) = admission.built {
            return (StoredBlob(sha256: BlobStore.sha256Hex(parts: admission.record), inDatabase: recordContent),
                    StoredBlob(sha256: sha256 ?? BlobStore.sha256Hex(data), inDatabase: data))
        }
        let (record, built) = try await blobs.store(admission)
        let builtContent: Data = switch admission.built {
        case .data(let data, _): data
        case .file: try blobs.get(built)  // a large CDA: read once, to go into the database
        }
        return (StoredBlob(sha256: record, inDatabase: recordContent), StoredBlob(sha256: built, inDatabase: builtContent))
    }
}

/// Reads blobs missing from a node's cache folder out of the `blobs` table.
struct DatabaseBlobs: BlobSource {
    let client: PostgresClient

    func blob(sha256: String) throws(JournalError) -> Data? {
        do {
            return try client.withConnectionBlocking { db in
                try db.scalar("SELECT content FROM blobs WHERE sha256 = $1", [sha256])?.data
            }
        } catch {
            throw JournalError.wrapping(error)
        }
    }
}

/// PostgreSQL rows as the shared decoder reads them.
struct PostgresColumns: JournalColumns {
    let row: PostgresRow
    func text(_ name: String) -> String? { row[name].string }
    func integer(_ name: String) -> Int64? { row[name].int64 }
    func flag(_ name: String) -> Bool { row[name].bool ?? false }
}
