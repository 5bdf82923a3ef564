import CSQLite
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A value stored in or read from an SQLite column.
public enum SQLiteValue: Sendable, Hashable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
    case null

    public var int64: Int64? { if case .integer(let v) = self { v } else { nil } }
    public var int: Int? { int64.map { Int($0) } }
    public var double: Double? {
        switch self {
        case .real(let v): v
        case .integer(let v): Double(v)
        default: nil
        }
    }
    public var string: String? { if case .text(let v) = self { v } else { nil } }
    public var data: Data? {
        switch self {
        case .blob(let v): v
        case .text(let v): Data(v.utf8)
        default: nil
        }
    }
    public var isNull: Bool { self == .null }
}

extension SQLiteValue: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral, ExpressibleByNilLiteral,
    ExpressibleByFloatLiteral {
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .text(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(floatLiteral value: Double) { self = .real(value) }
}

/// Values that bind to a statement parameter.
public protocol SQLiteBindable { var sqliteValue: SQLiteValue { get } }
extension SQLiteValue: SQLiteBindable { public var sqliteValue: SQLiteValue { self } }
extension Int: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(Int64(self)) } }
extension Int64: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(self) } }
extension Int32: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(Int64(self)) } }
extension Bool: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(self ? 1 : 0) } }
extension Double: SQLiteBindable { public var sqliteValue: SQLiteValue { .real(self) } }
extension String: SQLiteBindable { public var sqliteValue: SQLiteValue { .text(self) } }
extension Data: SQLiteBindable { public var sqliteValue: SQLiteValue { .blob(self) } }
extension Optional: SQLiteBindable where Wrapped: SQLiteBindable {
    public var sqliteValue: SQLiteValue { self?.sqliteValue ?? .null }
}

/// One result row, readable by column name or index.
public struct SQLiteRow: Sendable, Hashable {
    public let columns: [String]
    public let values: [SQLiteValue]

    /// The value of column `name` (`.null` if there is no such column).
    public subscript(_ name: String) -> SQLiteValue {
        guard let i = columns.firstIndex(of: name) else { return .null }
        return values[i]
    }
    public subscript(_ index: Int) -> SQLiteValue { values[index] }
}

/// One SQLite database connection. Not thread-safe: use one per thread or guard it with a lock.
///
/// Opening sets `journal_mode=WAL`, `synchronous=FULL` (each commit is fsynced before it
/// returns), `foreign_keys=ON` and a busy timeout, so a writer waits for another one instead of
/// failing at once.
public final class SQLiteConnection {
    /// How the file is opened.
    public enum Mode: Sendable { case readWrite, readWriteCreate, readOnly }

    /// Transaction kinds: `immediate` takes the write lock at BEGIN, so two writers serialise
    /// there rather than failing with SQLITE_BUSY half-way through.
    public enum TransactionKind: String, Sendable { case deferred = "DEFERRED", immediate = "IMMEDIATE", exclusive = "EXCLUSIVE" }

    /// The file path (`:memory:` for an in-memory database).
    public let path: String
    private var handle: OpaquePointer?
    private var statementCache: [String: SQLiteStatement] = [:]

    /// Opens (and by default creates) the database at `path`.
    /// - Parameters:
    ///   - busyTimeout: how long a statement waits for another connection's lock.
    ///   - fileMode: the mode of the database and its `-wal`/`-shm` files whatever the umask
    ///     (0600: a journal holds health data). The file is created with it before SQLite opens
    ///     it (SQLite gives the -wal and -shm it creates the database's mode); existing files
    ///     with wider modes are narrowed.
    public init(path: String, mode: Mode = .readWriteCreate, busyTimeout: Duration = .seconds(5),
                fileMode: mode_t = 0o600) throws(SQLiteError) {
        self.path = path
        let onDisk = path != ":memory:" && !path.isEmpty && !path.hasPrefix("file:")
        if onDisk && mode != .readOnly { Self.restrictModes(path, to: fileMode, create: mode == .readWriteCreate) }
        var flags: Int32 = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        switch mode {
        case .readWrite: flags |= SQLITE_OPEN_READWRITE
        case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            let code = db.map { sqlite3_extended_errcode($0) } ?? rc
            let systemErrno = db.map { sqlite3_system_errno($0) } ?? 0
            sqlite3_close_v2(db)
            throw SQLiteError(extendedCode: code, message: message, context: "open \(path)", systemErrno: systemErrno)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        let ms = busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000
        sqlite3_busy_timeout(db, Int32(clamping: ms))
        if mode != .readOnly {
            let journalMode = try scalar("PRAGMA journal_mode=WAL")?.string?.lowercased()
            // An in-memory database reports "memory": WAL only exists for files.
            if journalMode != "wal" && path != ":memory:" && !path.isEmpty {
                throw SQLiteError(extendedCode: SQLITE_ERROR, message: "journal_mode is \(journalMode ?? "unknown"), WAL refused",
                                  context: "open \(path)")
            }
        }
        // temp_store=MEMORY: statement journals and sorts stay in memory. On file, SQLite made,
        // wrote (page images: patient data) and unlinked a /var/tmp file for one document in
        // two of a backlog (a statement journal spilled past 64 KiB inside a grouped commit).
        try execute("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;")
    }

    deinit { close() }

    /// Creates `path` with `fileMode` when missing (and allowed), and narrows the database, its
    /// -wal and -shm to `fileMode`. Best effort: a file owned by someone else keeps its mode.
    static func restrictModes(_ path: String, to fileMode: mode_t, create: Bool) {
        if create {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, fileMode)
            if fd >= 0 { _ = fchmod(fd, fileMode); _ = Glibc.close(fd) }  // fchmod: the umask narrowed the creation mode only
        }
        for file in [path, path + "-wal", path + "-shm"] {
            var info = stat()
            guard lstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o777 != fileMode else { continue }
            _ = chmod(file, fileMode)
        }
    }

    /// Closes the connection (finalising cached statements). Further use throws.
    public func close() {
        statementCache.values.forEach { $0.finalize() }
        statementCache.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    func requireHandle(_ context: String) throws(SQLiteError) -> OpaquePointer {
        guard let handle else { throw SQLiteError(extendedCode: SQLITE_MISUSE, message: "connection closed", context: context) }
        return handle
    }

    func error(_ context: String, code: Int32? = nil) -> SQLiteError {
        guard let handle else { return SQLiteError(extendedCode: code ?? SQLITE_MISUSE, message: "connection closed", context: context) }
        return SQLiteError(extendedCode: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)),
                           context: context, systemErrno: sqlite3_system_errno(handle))
    }

    /// Runs one or more statements separated by `;`, without parameters (schema, pragmas).
    public func execute(_ sql: String) throws(SQLiteError) {
        let db = try requireHandle("execute")
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(errorMessage)
            throw SQLiteError(extendedCode: sqlite3_extended_errcode(db), message: message, context: "execute",
                              systemErrno: sqlite3_system_errno(db))
        }
    }

    /// A prepared statement for `sql`, cached per connection (reset and cleared for reuse).
    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = statementCache[sql] {
            cached.reset()
            return cached
        }
        let db = try requireHandle("prepare")
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil) == SQLITE_OK, let stmt else {
            throw error("prepare")
        }
        let statement = SQLiteStatement(stmt, connection: self)
        statementCache[sql] = statement
        return statement
    }

    /// Runs one statement with `bindings` and returns every row.
    @discardableResult
    public func query(_ sql: String, _ bindings: [any SQLiteBindable] = []) throws(SQLiteError) -> [SQLiteRow] {
        let statement = try prepare(sql)
        defer { statement.reset() }
        try statement.bind(bindings)
        var rows: [SQLiteRow] = []
        while try statement.step() { rows.append(statement.row()) }
        return rows
    }

    /// Runs one statement that returns no rows; the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ bindings: [any SQLiteBindable] = []) throws(SQLiteError) -> Int {
        try query(sql, bindings)
        return changes
    }

    /// The first column of the first row, or nil when there is no row.
    public func scalar(_ sql: String, _ bindings: [any SQLiteBindable] = []) throws(SQLiteError) -> SQLiteValue? {
        try query(sql, bindings).first?.values.first
    }

    /// Rows changed by the last INSERT/UPDATE/DELETE.
    public var changes: Int { handle.map { Int(sqlite3_changes($0)) } ?? 0 }
    /// The rowid of the last successful INSERT.
    public var lastInsertRowID: Int64 { handle.map { sqlite3_last_insert_rowid($0) } ?? 0 }
    /// True while a transaction is open.
    public var isInTransaction: Bool { handle.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    /// Runs `body` in a transaction: COMMIT if it returns, ROLLBACK if it throws. Inside an
    /// open transaction (a ``SQLiteCommitQueue`` batch) it is a savepoint: a throw undoes only
    /// `body`'s writes, and the enclosing COMMIT makes them durable.
    @discardableResult
    public func transaction<T>(_ kind: TransactionKind = .immediate, _ body: () throws -> T) throws -> T {
        if isInTransaction {
            try execute("SAVEPOINT nested")
            do {
                let result = try body()
                try execute("RELEASE nested")
                return result
            } catch {
                try? execute("ROLLBACK TO nested")
                try? execute("RELEASE nested")
                throw error
            }
        }
        try execute("BEGIN \(kind.rawValue)")
        let result: T
        do {
            result = try body()
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
        do {
            try execute("COMMIT")
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
        return result
    }
}

/// A prepared statement. Parameters are 1-based in SQLite; `bind(_:)` takes them in order.
public final class SQLiteStatement {
    private var stmt: OpaquePointer?
    private unowned let connection: SQLiteConnection

    init(_ stmt: OpaquePointer, connection: SQLiteConnection) {
        self.stmt = stmt
        self.connection = connection
    }

    deinit { finalize() }

    func finalize() {
        if let stmt { sqlite3_finalize(stmt) }
        stmt = nil
    }

    /// Resets the statement and clears its bindings.
    public func reset() {
        guard let stmt else { return }
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    /// Binds `values` to parameters 1…n.
    public func bind(_ values: [any SQLiteBindable]) throws(SQLiteError) {
        guard let stmt else { throw connection.error("bind") }
        let expected = Int(sqlite3_bind_parameter_count(stmt))
        guard expected == values.count else {
            throw SQLiteError(extendedCode: SQLITE_RANGE, message: "statement has \(expected) parameters, \(values.count) given",
                              context: "bind")
        }
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value.sqliteValue {
            case .integer(let v): rc = sqlite3_bind_int64(stmt, index, v)
            case .real(let v): rc = sqlite3_bind_double(stmt, index, v)
            case .text(let v):
                rc = v.utf8CString.withUnsafeBufferPointer { buffer in
                    passerelle_sqlite3_bind_text_transient(stmt, index, buffer.baseAddress, Int32(buffer.count - 1))
                }
            case .blob(let v):
                rc = v.withUnsafeBytes { raw in
                    // A zero-length blob still needs a non-null pointer, or SQLite binds NULL.
                    var zero: UInt8 = 0
                    return raw.baseAddress.map { passerelle_sqlite3_bind_blob_transient(stmt, index, $0, Int32(raw.count)) }
                        ?? passerelle_sqlite3_bind_blob_transient(stmt, index, &zero, 0)
                }
            case .null: rc = sqlite3_bind_null(stmt, index)
            }
            guard rc == SQLITE_OK else { throw connection.error("bind parameter \(index)") }
        }
    }

    /// Advances to the next row: true if there is one, false when done.
    public func step() throws(SQLiteError) -> Bool {
        guard let stmt else { throw connection.error("step") }
        switch sqlite3_step(stmt) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let sql = sqlite3_sql(stmt).map { String(cString: $0) } ?? "?"
            let firstWords = sql.split(separator: " ").prefix(3).joined(separator: " ")
            throw connection.error("step (\(firstWords) …)")
        }
    }

    /// The number of columns in the result.
    public var columnCount: Int { stmt.map { Int(sqlite3_column_count($0)) } ?? 0 }

    /// The value in column `index` (0-based) of the current row.
    public func column(_ index: Int) -> SQLiteValue {
        guard let stmt else { return .null }
        let i = Int32(index)
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(stmt, i))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(stmt, i))
        case SQLITE_TEXT:
            let bytes = sqlite3_column_text(stmt, i)
            let count = Int(sqlite3_column_bytes(stmt, i))
            guard let bytes else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(stmt, i))
            guard let bytes = sqlite3_column_blob(stmt, i), count > 0 else { return .blob(Data()) }
            return .blob(Data(bytes: bytes, count: count))
        default: return .null
        }
    }

    /// The name of column `index`.
    public func columnName(_ index: Int) -> String {
        stmt.flatMap { sqlite3_column_name($0, Int32(index)) }.map { String(cString: $0) } ?? ""
    }

    /// The current row as a value.
    public func row() -> SQLiteRow {
        let n = columnCount
        return SQLiteRow(columns: (0..<n).map(columnName), values: (0..<n).map(column))
    }
}

extension SQLiteConnection {
    /// Copies the whole database to a new file at `destination` with SQLite's online backup
    /// API (sqlite.org/backup.html), in one step: one consistent snapshot of the committed
    /// database, taken under a read transaction, so writers (WAL) go on meanwhile.
    ///
    /// The copy is written to a temporary file beside `destination` (created `fileMode`
    /// whatever the umask), closed (its WAL checkpointed into the file), fsynced, then renamed:
    /// `destination` is either absent or complete. An existing `destination` is refused.
    public func backup(to destination: String, fileMode: mode_t = 0o600) throws(SQLiteError) {
        let source = try requireHandle("backup")
        if FileManager.default.fileExists(atPath: destination) {
            throw SQLiteError(extendedCode: SQLITE_CANTOPEN, message: "\(destination) exists; choose a new file name",
                              context: "backup")
        }
        let temporary = destination + ".partial"
        for leftover in [temporary, temporary + "-wal", temporary + "-shm"] { unlink(leftover) }
        do throws(SQLiteError) {
            let copy = try SQLiteConnection(path: temporary, mode: .readWriteCreate, fileMode: fileMode)
            let target = try copy.requireHandle("backup")
            guard let backup = sqlite3_backup_init(target, "main", source, "main") else { throw copy.error("backup init") }
            let rc = sqlite3_backup_step(backup, -1)
            sqlite3_backup_finish(backup)
            guard rc == SQLITE_DONE else {
                throw SQLiteError(extendedCode: rc, message: String(cString: sqlite3_errstr(rc)), context: "backup step")
            }
            // A single file: no -wal to carry along.
            _ = try copy.scalar("PRAGMA journal_mode=DELETE")
            copy.close()
        } catch {
            unlink(temporary)
            throw error
        }
        let fd = open(temporary, O_RDONLY | O_CLOEXEC)
        let synced = fd >= 0 && fsync(fd) == 0
        if fd >= 0 { _ = Glibc.close(fd) }
        guard synced, rename(temporary, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw SQLiteError(extendedCode: SQLITE_IOERR, message: "cannot write \(destination): \(reason)", context: "backup")
        }
        let folder = (destination as NSString).deletingLastPathComponent
        let dir = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { _ = fsync(dir); _ = Glibc.close(dir) }
    }

    /// `PRAGMA integrity_check`: nil when the database is sound, else SQLite's first findings.
    public func integrityProblems() throws(SQLiteError) -> String? {
        let rows = try query("PRAGMA integrity_check")
        let lines = rows.compactMap { $0[0].string }
        return lines == ["ok"] ? nil : lines.prefix(5).joined(separator: "; ")
    }
}
