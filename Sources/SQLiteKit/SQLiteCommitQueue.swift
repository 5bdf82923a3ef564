import BlockingIO
import Foundation

/// The lane (one thread of the shared ``BlockingIO/BlockingExecutor``) that owns one SQLite
/// connection: every async unit of work runs there, never on Swift's cooperative pool (a
/// statement or a commit's fsync blocks its thread).
///
/// Group commit: units that arrive while the thread is busy are run together in one
/// transaction, each in its own savepoint (a unit that throws undoes only its own writes), and
/// one COMMIT — one fsync — makes them all durable. A unit's caller resumes only after that
/// COMMIT, so "returned" still means "on disk". A unit alone runs as it is written. Nothing
/// waits on purpose for company: the batch is whatever queued during the previous commit.
public final class SQLiteCommitQueue: @unchecked Sendable {
    /// Largest number of units in one transaction (bounds the time the write lock is held).
    public static let maxBatch = 64

    private let condition = NSCondition()
    private var units: [Unit] = []
    private var finished = false
    /// A drain job is queued or running on the lane (only one at a time: it takes every batch).
    private var draining = false
    private let lane: BlockingExecutor
    private let connection: SQLiteConnection
    /// Also taken by synchronous callers of the same connection (``withConnection(_:)``).
    private let lock = NSLock()

    private var commits = 0
    private var unitsRun = 0

    /// How many transactions committed and how many units they carried (units / commits is
    /// the batching; the tests read it).
    public var statistics: (commits: Int, units: Int) { lock.withLock { (commits, unitsRun) } }

    private struct Unit {
        /// Runs the body; says whether it threw, and returns the completion to call once the
        /// enclosing commit is known.
        var run: (SQLiteConnection) -> (failed: Bool, complete: (Result<Void, any Error>) -> Void)
    }

    /// Takes `connection` over: use it only through this queue from now on.
    public init(connection: SQLiteConnection, name: String) {
        self.connection = connection
        lane = BlockingExecutor(name: name, threads: 1)
    }

    /// Lets the thread end once the queued units are done (the connection stays open until
    /// the queue is freed).
    public func finish() {
        condition.lock()
        finished = true
        condition.unlock()
        lane.shutdown()
    }

    /// Runs `body` on the connection's thread, possibly in a transaction shared with other
    /// units (``body`` may open its own: it becomes a savepoint). Returns once committed.
    public func run<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let unit = Unit { connection in
                let result = Result { try body(connection) }
                let failed = if case .failure = result { true } else { false }
                return (failed, { commit in
                    switch (result, commit) {
                    case (.success(let value), .success): continuation.resume(returning: value)
                    case (.failure(let error), _), (.success, .failure(let error)): continuation.resume(throwing: error)
                    }
                })
            }
            condition.lock()
            if finished {
                condition.unlock()
                continuation.resume(throwing: SQLiteError(extendedCode: 21, message: "the journal connection was closed", context: "run"))
                return
            }
            units.append(unit)
            let schedule = !draining
            draining = true
            condition.unlock()
            guard schedule else { return }
            // The lane refuses work only once finish() ran concurrently: finish these units here.
            do { try lane.submit { [self] in drain() } } catch { drain() }
        }
    }

    /// Units waiting for the thread (tests: a batch can be formed deterministically).
    var waiting: Int { condition.withLock { units.count } }

    /// Runs `body` on the calling thread, between two batches (synchronous callers: opening,
    /// schema checks). Never call it from the cooperative pool for long work.
    public func withConnection<T>(_ body: (SQLiteConnection) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(connection)
    }

    /// Runs batches until none is waiting: what queued during one commit forms the next batch.
    private func drain() {
        while true {
            condition.lock()
            if units.isEmpty {
                draining = false
                condition.unlock()
                return
            }
            let batch = Array(units.prefix(Self.maxBatch))
            units.removeFirst(batch.count)
            condition.unlock()
            lock.lock()
            let completions = batch.count == 1 ? [runAlone(batch[0])] : runTogether(batch)
            lock.unlock()
            for completion in completions { completion(.success(())) }
        }
    }

    private func runAlone(_ unit: Unit) -> (Result<Void, any Error>) -> Void {
        commits += 1
        unitsRun += 1
        return unit.run(connection).complete
    }

    /// One transaction, one savepoint per unit, one COMMIT. If the transaction cannot start
    /// (another process holds the lock past the busy timeout) the units run one by one, each
    /// meeting the same condition on its own terms.
    private func runTogether(_ batch: [Unit]) -> [(Result<Void, any Error>) -> Void] {
        do { try connection.execute("BEGIN IMMEDIATE") } catch {
            return batch.map(runAlone)
        }
        commits += 1
        unitsRun += batch.count
        var completions: [(Result<Void, any Error>) -> Void] = []
        for unit in batch {
            var completion: ((Result<Void, any Error>) -> Void)?
            do {
                try connection.execute("SAVEPOINT unit")
                let ran = unit.run(connection)
                completion = ran.complete
                // A unit that threw keeps none of its writes, even those outside its own transaction.
                if ran.failed { try connection.execute("ROLLBACK TO unit") }
                try connection.execute("RELEASE unit")
            } catch {
                // The savepoint itself failed: the unit cannot be isolated; undo it and report.
                try? connection.execute("ROLLBACK TO unit")
                try? connection.execute("RELEASE unit")
                let failure = error
                completions.append { _ in completion?(.failure(failure)) }
                continue
            }
            completions.append(completion!)
        }
        do {
            try connection.execute("COMMIT")
            return completions
        } catch {
            try? connection.execute("ROLLBACK")
            let failure = error
            return completions.map { completion in { _ in completion(.failure(failure)) } }
        }
    }
}
