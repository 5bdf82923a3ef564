import Foundation

/// One PostgreSQL connection owned by a dedicated thread: libpq calls block, so they never run
/// on Swift's cooperative pool (a slow query would starve every other task). Work is handed
/// to the thread one unit at a time, in order.
///
/// A connection found broken (server restarted, idle connection cut) is reopened before the
/// next unit. A unit that failed because the connection was lost *on its first statement*
/// is run once more on a fresh connection: nothing of it reached the database. Units must
/// therefore start with `BEGIN` (``PostgresConnection/transaction(isolation:_:)``) or only read.
public final class PostgresClient: Sendable {
    public let configuration: PostgresConfiguration
    private let queue: WorkQueue

    /// Connects now (so a wrong URL or password fails at startup) and starts the thread.
    public init(_ configuration: PostgresConfiguration) throws(PostgresError) {
        self.configuration = configuration
        let connection = try PostgresConnection(configuration)
        queue = WorkQueue(connection: connection, name: "passerelle-pg")
    }

    deinit { queue.stop() }

    /// Runs `body` on the connection's thread and returns its result.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            queue.submit { connection in
                continuation.resume(with: Result { try Self.perform(connection, body) })
            }
        }
    }

    /// The blocking form, for synchronous callers (it parks the calling thread until done).
    public func withConnectionBlocking<T>(_ body: @escaping (PostgresConnection) throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<T, any Error>?
        nonisolated(unsafe) let work = body
        queue.submit { connection in
            outcome = Result { try Self.perform(connection, work) }
            done.signal()
        }
        done.wait()
        return try outcome!.get()
    }

    /// Stops the thread after the queued work and closes the connection.
    public func close() { queue.stop() }

    private static func perform<T>(_ connection: PostgresConnection?, _ body: (PostgresConnection) throws -> T) throws -> T {
        guard let connection else { throw PostgresError(message: "the client was closed", context: "query") }
        if !connection.isHealthy { try connection.reconnect() }
        connection.markUnitStart()
        do {
            return try body(connection)
        } catch let error as PostgresError where error.connectionLost && connection.statementsSinceMark <= 1 {
            try connection.reconnect()
            connection.markUnitStart()
            return try body(connection)
        }
    }
}

/// A thread that runs submitted closures in order with exclusive use of one connection.
private final class WorkQueue: @unchecked Sendable {
    // `jobs` and `stopped` are only touched under `condition`; `connection` only on the thread.
    private let condition = NSCondition()
    private var jobs: [(PostgresConnection?) -> Void] = []
    private var stopped = false
    private let connection: PostgresConnection

    init(connection: PostgresConnection, name: String) {
        self.connection = connection
        // Named from inside: on Linux a name set before start() does not reach the OS thread.
        let thread = Thread { [self] in
            Thread.current.name = name
            run()
        }
        thread.start()
    }

    /// Runs `job` on the thread, or at once with nil once stopped.
    func submit(_ job: @escaping (PostgresConnection?) -> Void) {
        condition.lock()
        if stopped {
            condition.unlock()
            job(nil)
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty && stopped {
                condition.unlock()
                connection.close()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job(connection)
        }
    }
}
