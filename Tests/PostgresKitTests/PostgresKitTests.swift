import BlockingIO
import Foundation
import PostgresKit
import Testing
import TestSupport

/// PostgresKit against a real server (the throwaway cluster of ``PostgresTestServer``).
@Suite struct PostgresKitTests {
    static func database() throws -> (server: PostgresTestServer, url: String) {
        (try PostgresTestServer.shared(), try PostgresTestServer.createDatabase(prefix: "kit"))
    }

    static func connect(_ url: String, _ server: PostgresTestServer) throws -> PostgresConnection {
        try PostgresConnection(PostgresConfiguration(url: url, passwordFile: server.passwordFile.path))
    }

    @Test func parametersAndColumnsRoundTrip() throws {
        let (server, url) = try Self.database()
        let db = try Self.connect(url, server)
        try db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT, flag BOOLEAN, content BYTEA)")
        let bytes = Data([0, 1, 2, 0xff, 0, 0x5c, 0x78])  // NULs and a literal "\x" inside
        #expect(try db.run("INSERT INTO t VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)",
                           [Int64.max, "l'été \"quoted\" ; DROP TABLE t", true, bytes, 2, nil as String?, false, Data()]) == 2)
        let rows = try db.query("SELECT * FROM t ORDER BY id")
        #expect(rows.count == 2)
        #expect(rows[0]["id"].int64 == 2)
        #expect(rows[0]["name"].isNull)
        #expect(rows[0]["flag"].bool == false)
        #expect(rows[0]["content"] == .bytes(Data()))
        #expect(rows[1]["id"].int64 == Int64.max)
        #expect(rows[1]["name"].string == "l'été \"quoted\" ; DROP TABLE t")
        #expect(rows[1]["flag"].bool == true)
        #expect(rows[1]["content"].data == bytes)
        #expect(try db.run("UPDATE t SET flag = NOT flag WHERE id > $1", [0]) == 2)
        #expect(try db.scalar("SELECT count(*) FROM t WHERE flag")?.int == 1)
        #expect(try db.scalar("SELECT name FROM t WHERE id = $1", [42]) == nil)
    }

    /// A blob the size of a built CDA comes back as it went in (the hex text format is decoded
    /// from libpq's buffer, not through a String): every byte value, and a seeded random body.
    @Test func largeByteaRoundTrips() throws {
        let (server, url) = try Self.database()
        let db = try Self.connect(url, server)
        try db.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, content BYTEA NOT NULL)")
        var random = SeededRandom(seed: 17)
        let bytes = Data((0...255).map { UInt8($0) } + (0..<600_000).map { _ in UInt8.random(in: 0...255, using: &random) })
        #expect(try db.run("INSERT INTO b VALUES (1, $1), (2, $2)", [bytes, Data([0x5c, 0x78])]) == 2)
        #expect(try db.scalar("SELECT content FROM b WHERE id = 1")?.data == bytes)
        #expect(try db.scalar("SELECT content FROM b WHERE id = 2")?.data == Data([0x5c, 0x78]))
        #expect(try db.scalar("SELECT length(content) FROM b WHERE id = 1")?.int == bytes.count)
    }

    /// A statement is prepared once per session and then only bound and run (the server's own
    /// view, pg_prepared_statements, counts them); off, nothing is prepared.
    @Test func statementsArePreparedOncePerSession() throws {
        let (server, url) = try Self.database()
        let db = try Self.connect(url, server)
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        for i in 1...5 { try db.run("INSERT INTO t VALUES ($1, $2)", [i, "n\(i)"]) }
        for i in 1...5 { #expect(try db.scalar("SELECT name FROM t WHERE id = $1", [i])?.string == "n\(i)") }
        #expect(db.preparedStatementCount == 2)
        let onServer = "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'passerelle\\_%'"
        #expect(try db.scalar(onServer)?.int == 3, "the two above and this count itself")
        // A new session starts without any.
        try db.reconnect()
        #expect(db.preparedStatementCount == 0)
        #expect(try db.scalar("SELECT name FROM t WHERE id = $1", [3])?.string == "n3")
        #expect(try db.scalar(onServer)?.int == 2)

        var configuration = try PostgresConfiguration(url: url, passwordFile: server.passwordFile.path)
        configuration.preparedStatements = false
        let unprepared = try PostgresConnection(configuration)
        #expect(try unprepared.scalar("SELECT name FROM t WHERE id = $1", [4])?.string == "n4")
        #expect(try unprepared.scalar("SELECT count(*) FROM pg_prepared_statements")?.int == 0)
        #expect(unprepared.preparedStatementCount == 0)
    }

    /// A table changed under a prepared `SELECT *` (another node's migration): the server
    /// refuses the old plan once (0A000), and the next call prepares the statement again.
    @Test func aStatementWhoseTableChangedIsPreparedAgain() throws {
        let (server, url) = try Self.database()
        let db = try Self.connect(url, server)
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        try db.run("INSERT INTO t VALUES ($1)", [1])
        #expect(try db.query("SELECT * FROM t WHERE id = $1", [1]).first?.columns == ["id"])
        let other = try Self.connect(url, server)
        try other.execute("ALTER TABLE t ADD COLUMN note TEXT")
        let changed = try #require(throws: PostgresError.self) { try db.query("SELECT * FROM t WHERE id = $1", [1]) }
        #expect(changed.sqlState == "0A000")
        #expect(try db.query("SELECT * FROM t WHERE id = $1", [1]).first?.columns == ["id", "note"])
    }

    @Test func errorsCarryTheServerMessageAndSQLState() throws {
        let (server, url) = try Self.database()
        let db = try Self.connect(url, server)
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        try db.run("INSERT INTO t VALUES ($1)", [1])
        let duplicate = try #require(throws: PostgresError.self) { try db.run("INSERT INTO t VALUES ($1)", [1]) }
        #expect(duplicate.isUniqueViolation)
        #expect(duplicate.sqlState == "23505")
        #expect(duplicate.message.contains("t_pkey"))
        let syntax = try #require(throws: PostgresError.self) { try db.query("SELEC 1") }
        #expect(syntax.sqlState == "42601")
        #expect(syntax.description.contains("syntax error"))
        // The connection is still usable after an error outside a transaction.
        #expect(try db.scalar("SELECT 1")?.int == 1)
    }

    @Test func transactionsCommitOrRollBack() throws {
        let (server, url) = try Self.database()
        let db = try Self.connect(url, server)
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        try db.transaction { try db.run("INSERT INTO t VALUES (1)") }
        struct Abort: Error {}
        #expect(throws: Abort.self) {
            try db.transaction { try db.run("INSERT INTO t VALUES (2)"); throw Abort() }
        }
        // A failed statement whose error the body swallowed: COMMIT must not pretend it worked.
        #expect(throws: PostgresError.self) {
            try db.transaction {
                try db.run("INSERT INTO t VALUES (3)")
                _ = try? db.run("INSERT INTO t VALUES (1)")
            }
        }
        #expect(!db.isInTransaction)
        #expect(try db.query("SELECT id FROM t ORDER BY id").map { $0["id"].int } == [1])
    }

    @Test func skipLockedPassesOverRowsAnotherSessionHolds() throws {
        let (server, url) = try Self.database()
        let a = try Self.connect(url, server), b = try Self.connect(url, server)
        try a.execute("CREATE TABLE q (id INTEGER PRIMARY KEY); INSERT INTO q SELECT generate_series(1, 3)")
        try a.execute("BEGIN")
        #expect(try a.scalar("SELECT id FROM q ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED")?.int == 1)
        // b does not wait for a's lock: it takes the next free row.
        #expect(try b.transaction { try b.scalar("SELECT id FROM q ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED")?.int } == 2)
        try a.execute("COMMIT")
        #expect(try b.transaction { try b.scalar("SELECT id FROM q ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED")?.int } == 1)
    }

    @Test func tlsWithVerifyFullChecksTheServerCertificate() throws {
        let (server, url) = try Self.database()
        let ca = TestPaths.testPKI.appendingPathComponent("ca.pem").path
        let name = URL(string: url)!.lastPathComponent
        let verified = try Self.connect(server.url(database: name, host: "localhost",
                                                   parameters: ["sslmode": "verify-full", "sslrootcert": ca]), server)
        #expect(try verified.scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")?.bool == true)
        // A CA that did not sign the server's certificate: refused, with libpq's reason.
        let unknownCA = TestPaths.testPKI.appendingPathComponent("unknown-ca.pem").path
        let refused = try #require(throws: PostgresError.self) {
            _ = try Self.connect(server.url(database: name, host: "localhost",
                                            parameters: ["sslmode": "verify-full", "sslrootcert": unknownCA]), server)
        }
        #expect(refused.message.contains("certificate verify failed"))
        #expect(refused.context.hasPrefix("connect"))
        // The certificate names localhost and 127.0.0.1, not another host name.
        let wrongName = try #require(throws: PostgresError.self) {
            _ = try Self.connect(server.url(database: name, host: "127.0.0.2",
                                            parameters: ["sslmode": "verify-full", "sslrootcert": ca, "connect_timeout": "3"]), server)
        }
        #expect(!wrongName.message.isEmpty)
    }

    @Test func theClientRunsOnItsOwnThreadAndReconnectsAfterTheServerDroppedIt() async throws {
        let (server, url) = try Self.database()
        let client = try PostgresClient(PostgresConfiguration(url: url, passwordFile: server.passwordFile.path))
        let (thread, pid) = try await client.withConnection { db in
            (BlockingExecutor.currentThreadName(), try db.scalar("SELECT pg_backend_pid()")?.int ?? 0)
        }
        #expect(thread == "passerelle-pg")  // the OS thread's name (Linux: 15 bytes at most)
        // The server ends the session (as a restart or an idle timeout would).
        let admin = try Self.connect(url, server)
        #expect(try admin.scalar("SELECT pg_terminate_backend($1)", [pid])?.bool == true)
        try await Task.sleep(for: .milliseconds(100))
        let newPID = try await client.withConnection { db in try db.transaction { try db.scalar("SELECT pg_backend_pid()")?.int ?? 0 } }
        #expect(newPID != 0 && newPID != pid)
    }

    /// Units overlap on sessions of their own (up to `connections`): the first unit, inside its
    /// transaction, waits until the second ran — one session at a time (the former serial lane)
    /// never lets it, and this fails. Sessions open only when units overlap.
    @Test func overlappingUnitsRunOnSessionsOfTheirOwn() async throws {
        let (server, url) = try Self.database()
        var configuration = try PostgresConfiguration(url: url, passwordFile: server.passwordFile.path)
        configuration.connections = 3
        let client = try PostgresClient(configuration)
        for _ in 0..<5 { _ = try await client.withConnection { db in try db.scalar("SELECT 1") } }
        #expect(client.sessionCount == 1)  // one after another: the first session serves them all

        let secondRan = DispatchSemaphore(value: 0)
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        async let first: (sawSecond: Bool, pid: Int) = client.withConnection { db in
            try db.transaction {
                let pid = try db.scalar("SELECT pg_backend_pid()")?.int ?? 0
                startedContinuation.yield()
                return (secondRan.wait(timeout: .now() + 20) == .success, pid)
            }
        }
        var iterator = started.makeAsyncIterator()
        _ = await iterator.next()  // the first unit holds its session, inside its transaction
        let secondPID = try await client.withConnection { db in try db.scalar("SELECT pg_backend_pid()")?.int ?? 0 }
        secondRan.signal()
        let (sawSecond, firstPID) = try await first
        #expect(sawSecond)
        #expect(firstPID != 0 && secondPID != 0 && firstPID != secondPID)
        #expect(client.sessionCount == 2)
        client.close()
    }

    @Test func passwordsNeverAppearInMessages() {
        #expect(PostgresConfiguration.redacted("postgresql://u:s3cret@db:5432/p?sslmode=require")
            == "postgresql://u:***@db:5432/p?sslmode=require")
        #expect(PostgresConfiguration.redacted("postgresql://u@db/p?password=s3cret") == "postgresql://u@db/p?password=***")
        #expect(PostgresConfiguration.redacted("host=db password='s 3cret' dbname=p") == "host=db password=*** dbname=p")
        let missing = #expect(throws: PostgresError.self) {
            _ = try PostgresConfiguration(url: "postgresql://u:s3cret@db/p", passwordFile: "/nonexistent/password")
        }
        #expect(missing?.description.contains("s3cret") == false)
        #expect(missing?.description.contains("/nonexistent/password") == true)
    }
}
