import Foundation
@testable import SQLiteKit
import Synchronization
import Testing
import TestSupport

/// The journal's thread: units that queue while it is busy share one transaction and one
/// commit; each keeps its own failure to itself.
@Suite struct CommitQueueTests {
    /// A queue over a fresh file with `CREATE TABLE t (x UNIQUE)`.
    func makeQueue() throws -> (SQLiteCommitQueue, String) {
        let path = try TestPaths.temporaryDirectory("commit-queue").appendingPathComponent("q.db").path
        let db = try SQLiteConnection(path: path)
        try db.execute("CREATE TABLE t (x INTEGER UNIQUE)")
        return (SQLiteCommitQueue(connection: db, name: "test-sqlite"), path)
    }

    /// Holds the queue's thread inside a unit until `release()`.
    final class Gate: Sendable {
        private let opened = Mutex(false)
        private let entered = Mutex(false)
        func hold() {
            entered.withLock { $0 = true }
            while !opened.withLock({ $0 }) { usleep(1000) }
        }
        func release() { opened.withLock { $0 = true } }
        var isHeld: Bool { entered.withLock { $0 } }
    }

    func waitUntil(_ condition: () -> Bool) async {
        for _ in 0..<5000 where !condition() { try? await Task.sleep(nanoseconds: 1_000_000) }
    }

    @Test func unitsQueuedDuringACommitShareTheNextOne() async throws {
        let (queue, path) = try makeQueue()
        let gate = Gate()
        let blocker = Task { try await queue.run { db in gate.hold(); return try db.run("INSERT INTO t VALUES (0)") } }
        await waitUntil { gate.isHeld }
        let inserts = (1...20).map { i in Task { try await queue.run { db in try db.run("INSERT INTO t VALUES (?)", [i]) } } }
        await waitUntil { queue.waiting == 20 }
        #expect(queue.waiting == 20)
        gate.release()
        _ = try await blocker.value
        for insert in inserts { #expect(try await insert.value == 1) }
        // The blocker alone, then the twenty together: two commits for 21 units.
        #expect(queue.statistics.commits == 2)
        #expect(queue.statistics.units == 21)
        // Durable and visible to another connection once the callers resumed.
        let other = try SQLiteConnection(path: path)
        #expect(try other.scalar("SELECT COUNT(*) FROM t")?.int == 21)
    }

    @Test func aFailingUnitKeepsNoneOfItsWritesAndTheOthersCommit() async throws {
        let (queue, path) = try makeQueue()
        let gate = Gate()
        let blocker = Task { try await queue.run { _ in gate.hold() } }
        await waitUntil { gate.isHeld }
        let good1 = Task { try await queue.run { db in try db.run("INSERT INTO t VALUES (1)") } }
        await waitUntil { queue.waiting == 1 }
        // Writes 2 outside any transaction of its own, then fails on a duplicate.
        let bad = Task {
            try await queue.run { db in
                try db.run("INSERT INTO t VALUES (2)")
                try db.run("INSERT INTO t VALUES (1)")
            }
        }
        await waitUntil { queue.waiting == 2 }
        // A nested transaction that throws undoes only itself.
        let nested = Task {
            try await queue.run { db in
                try db.run("INSERT INTO t VALUES (3)")
                _ = try? db.transaction { try db.run("INSERT INTO t VALUES (4)"); try db.run("INSERT INTO t VALUES (3)") }
                return 1
            }
        }
        await waitUntil { queue.waiting == 3 }
        gate.release()
        try await blocker.value
        #expect(try await good1.value == 1)
        await #expect(throws: SQLiteError.self) { try await bad.value }
        #expect(try await nested.value == 1)
        #expect(queue.statistics.commits == 2)
        let other = try SQLiteConnection(path: path)
        #expect(try other.query("SELECT x FROM t ORDER BY x").map { $0[0].int } == [1, 3])
    }
}
