import Foundation
import SQLiteKit
import Testing
import TestSupport

@Suite struct SQLiteKitTests {
    func databasePath() throws -> String {
        try TestPaths.temporaryDirectory("sqlitekit").appendingPathComponent("test.db").path
    }

    @Test func opensInWALWithFullSynchronousAndForeignKeys() throws {
        let db = try SQLiteConnection(path: try databasePath())
        #expect(try db.scalar("PRAGMA journal_mode")?.string == "wal")
        // 2 = FULL: every commit is fsynced before it returns.
        #expect(try db.scalar("PRAGMA synchronous")?.int == 2)
        #expect(try db.scalar("PRAGMA foreign_keys")?.int == 1)
        #expect(try db.scalar("PRAGMA busy_timeout")?.int == 5000)
        // 2 = MEMORY: no statement journal or sort (page images of patient rows) in /var/tmp.
        #expect(try db.scalar("PRAGMA temp_store")?.int == 2)
    }

    @Test func databaseWALAndSHMAre0600WhateverTheUmask() throws {
        let dir = try TestPaths.temporaryDirectory("sqlitekit-modes")
        defer { try? FileManager.default.removeItem(at: dir) }
        func mode(_ path: String) -> mode_t? {
            var info = stat()
            return lstat(path, &info) == 0 ? info.st_mode & 0o777 : nil
        }
        let previous = umask(0o022)
        defer { umask(previous) }
        let path = dir.appendingPathComponent("new.sqlite").path
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        for file in [path, path + "-wal", path + "-shm"] { #expect(mode(file) == 0o600, "\(file): \(String(mode(file) ?? 0, radix: 8))") }
        db.close()
        // A journal made 0644 by an older version is narrowed when opened.
        let old = dir.appendingPathComponent("old.sqlite").path
        #expect(FileManager.default.createFile(atPath: old, contents: nil, attributes: [.posixPermissions: 0o644]))
        #expect(mode(old) == 0o644)
        let reopened = try SQLiteConnection(path: old)
        try reopened.execute("CREATE TABLE t (x);")
        for file in [old, old + "-wal", old + "-shm"] { #expect(mode(file) == 0o600, "\(file)") }
    }

    /// The online backup API: a consistent copy while another connection holds an open write
    /// transaction (WAL: the backup reads the last commit), 0600 under umask 022, never over a file.
    @Test func onlineBackupCopiesTheLastCommitWhileAWriterWorks() throws {
        let dir = try TestPaths.temporaryDirectory("sqlitekit-backup")
        defer { try? FileManager.default.removeItem(at: dir) }
        let previous = umask(0o022)
        defer { umask(previous) }
        let path = dir.appendingPathComponent("live.sqlite").path
        let live = try SQLiteConnection(path: path)
        try live.execute("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);")
        let writer = try SQLiteConnection(path: path)
        try writer.execute("BEGIN IMMEDIATE; INSERT INTO t VALUES (3);")  // not committed during the backup
        let copy = dir.appendingPathComponent("copy.sqlite").path
        try live.backup(to: copy)
        try writer.execute("COMMIT")
        var info = stat()
        #expect(lstat(copy, &info) == 0 && info.st_mode & 0o777 == 0o600, "\(String(info.st_mode & 0o777, radix: 8))")
        #expect(!FileManager.default.fileExists(atPath: copy + "-wal"), "one self-contained file")
        let restored = try SQLiteConnection(path: copy, mode: .readOnly)
        #expect(try restored.query("SELECT x FROM t ORDER BY x").map { $0["x"].int } == [1, 2])
        #expect(try restored.integrityProblems() == nil)
        #expect(throws: SQLiteError.self) { try live.backup(to: copy) }
        #expect(try restored.query("SELECT count(*) AS n FROM t").first?["n"].int == 2, "the existing file is untouched")
        // A damaged file is named by the integrity check.
        let damaged = dir.appendingPathComponent("damaged.sqlite").path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: copy))
        #expect(bytes.count >= 8192 && bytes[4096] == 0x0D, "page 2 is table t's leaf (4096-byte pages)")
        bytes[4096] = 0x07  // not a b-tree page type
        try bytes.write(to: URL(fileURLWithPath: damaged))
        var detected: String?
        do { detected = try SQLiteConnection(path: damaged, mode: .readOnly).integrityProblems() } catch { detected = "\(error)" }
        #expect(detected != nil, "the damage is reported")
    }

    @Test func typedBindingAndColumnReadingRoundTrip() throws {
        let db = try SQLiteConnection(path: try databasePath())
        try db.execute("CREATE TABLE t(i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)")
        var bytes = Data((0...255).map { UInt8($0) })
        bytes.append(contentsOf: [0, 0, 0])  // embedded and trailing NULs must survive
        let text = "Compte rendu — été 🏥 \u{0}fin"
        let big = Int64.max - 1
        try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [big, 3.25, text, bytes, String?.none])
        try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [-1, -0.5, "", Data(), "x"])
        let rows = try db.query("SELECT i, r, s, b, n FROM t ORDER BY rowid")
        #expect(rows.count == 2)
        #expect(rows[0]["i"].int64 == big)
        #expect(rows[0]["r"].double == 3.25)
        #expect(rows[0]["s"].string == text)
        #expect(rows[0]["b"].data == bytes)
        #expect(rows[0]["n"] == .null)
        #expect(rows[1]["i"].int64 == -1)
        #expect(rows[1]["s"].string == "")
        // An empty blob stays a blob, not NULL.
        #expect(rows[1]["b"] == .blob(Data()))
        #expect(try db.scalar("SELECT typeof(b) FROM t WHERE i = -1")?.string == "blob")
    }

    @Test func wrongParameterCountIsAnError() throws {
        let db = try SQLiteConnection(path: ":memory:")
        try db.execute("CREATE TABLE t(a, b)")
        #expect(throws: SQLiteError.self) { try db.run("INSERT INTO t VALUES (?, ?)", [1]) }
    }

    @Test func uniqueViolationCarriesSQLiteMessageAndExtendedCode() throws {
        let db = try SQLiteConnection(path: try databasePath())
        try db.execute("CREATE TABLE t(k TEXT PRIMARY KEY, u TEXT UNIQUE, nn TEXT NOT NULL)")
        try db.run("INSERT INTO t VALUES ('a', 'x', '1')")
        let error = try #require(throws: SQLiteError.self) { try db.run("INSERT INTO t VALUES ('b', 'x', '1')") }
        #expect(error.isConstraintViolation)
        #expect(error.isUniqueViolation)
        #expect(error.extendedCode == 2067)  // SQLITE_CONSTRAINT_UNIQUE
        #expect(error.message.contains("UNIQUE constraint failed: t.u"))
        #expect(error.description.contains("t.u"))
        let pk = try #require(throws: SQLiteError.self) { try db.run("INSERT INTO t VALUES ('a', 'y', '1')") }
        #expect(pk.isUniqueViolation)
        let notNull = try #require(throws: SQLiteError.self) { try db.run("INSERT INTO t VALUES ('c', 'z', NULL)") }
        #expect(notNull.isConstraintViolation)
        #expect(!notNull.isUniqueViolation)
        // The failed statements changed nothing.
        #expect(try db.scalar("SELECT count(*) FROM t")?.int == 1)
    }

    @Test func transactionRollsBackWhenTheBodyThrows() throws {
        let db = try SQLiteConnection(path: try databasePath())
        try db.execute("CREATE TABLE t(k INTEGER PRIMARY KEY)")
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try db.transaction {
                try db.run("INSERT INTO t VALUES (1)")
                throw Boom()
            }
        }
        #expect(!db.isInTransaction)
        #expect(try db.scalar("SELECT count(*) FROM t")?.int == 0)
        try db.transaction { try db.run("INSERT INTO t VALUES (2)") }
        #expect(try db.scalar("SELECT count(*) FROM t")?.int == 1)
    }

    @Test func committedDataIsVisibleFromAnotherConnection() throws {
        let path = try databasePath()
        let a = try SQLiteConnection(path: path)
        try a.execute("CREATE TABLE t(v TEXT)")
        try a.transaction { try a.run("INSERT INTO t VALUES ('kept')") }
        a.close()
        let b = try SQLiteConnection(path: path, mode: .readOnly)
        #expect(try b.scalar("SELECT v FROM t")?.string == "kept")
    }

    @Test func secondWriterTimesOutWithBusyWhileTheFirstHoldsTheLock() throws {
        let path = try databasePath()
        let a = try SQLiteConnection(path: path)
        try a.execute("CREATE TABLE t(v INTEGER)")
        let b = try SQLiteConnection(path: path, busyTimeout: .milliseconds(200))
        try a.execute("BEGIN IMMEDIATE")
        try a.run("INSERT INTO t VALUES (1)")
        let started = Date()
        let error = try #require(throws: SQLiteError.self) { try b.execute("BEGIN IMMEDIATE") }
        let waited = Date().timeIntervalSince(started)
        #expect(error.isBusy)
        #expect(error.description.contains("lock"))
        #expect(waited >= 0.15, "busy_timeout must make the writer wait before giving up (waited \(waited)s)")
        // WAL: a reader is not blocked by the open write transaction and sees the committed state.
        #expect(try b.scalar("SELECT count(*) FROM t")?.int == 0)
        try a.execute("COMMIT")
        try b.transaction { try b.run("INSERT INTO t VALUES (2)") }
        #expect(try a.scalar("SELECT count(*) FROM t")?.int == 2)
    }

    @Test func writersOnTwoThreadsWaitForEachOtherInsteadOfFailing() async throws {
        let path = try databasePath()
        let setup = try SQLiteConnection(path: path)
        try setup.execute("CREATE TABLE counter(n INTEGER NOT NULL); INSERT INTO counter VALUES (0);")
        let perWorker = 100
        // Each increment is a read-modify-write in an IMMEDIATE transaction: a lost update
        // would show as a final count below 2 × perWorker.
        let worker: @Sendable () throws -> Void = {
            let db = try SQLiteConnection(path: path, busyTimeout: .seconds(10))
            for _ in 0..<perWorker {
                try db.transaction(.immediate) {
                    let n = try db.scalar("SELECT n FROM counter")?.int64 ?? -1
                    try db.run("UPDATE counter SET n = ?", [n + 1])
                }
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await Task.detached(operation: worker).value }
            group.addTask { try await Task.detached(operation: worker).value }
            try await group.waitForAll()
        }
        #expect(try setup.scalar("SELECT n FROM counter")?.int == 2 * perWorker)
    }

    @Test func openingAMissingFolderExplainsWhatToCheck() throws {
        let error = try #require(throws: SQLiteError.self) {
            _ = try SQLiteConnection(path: "/nonexistent-passerelle-dir/journal.db")
        }
        #expect(error.description.contains("/nonexistent-passerelle-dir/journal.db"))
        #expect(error.description.contains("writable"))
    }

    @Test func notADatabaseIsReported() throws {
        let path = try databasePath()
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: SQLiteError.self) { _ = try SQLiteConnection(path: path) }
        #expect(error.description.contains("not a database") || error.description.contains("backup"))
    }
}
