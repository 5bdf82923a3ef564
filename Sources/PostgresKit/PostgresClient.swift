import BlockingIO
import Foundation
import Synchronization

/// PostgreSQL sessions, each owned by a thread of its own: libpq calls block, so they never run
/// on Swift's cooperative pool (a slow query would starve every other task). A unit of work
/// takes an idle session for its duration (``PostgresConfiguration/connections`` run at once,
/// started in submission order); units are transactions or plain reads, so concurrent ones are kept
/// apart by the server's row locks, as those of several nodes are.
///
/// A connection found broken (server restarted, idle connection cut) is reopened before the
/// next unit. A unit that failed because the connection was lost *on its first statement*
/// is run once more on a fresh connection: nothing of it reached the database. Units must
/// therefore start with `BEGIN` (``PostgresConnection/transaction(isolation:_:)``) or only read.
public final class PostgresClient: Sendable {
    public let configuration: PostgresConfiguration
    /// One thread per session: a unit always finds an idle one.
    private let threads: BlockingExecutor
    private let pool: SessionPool

    /// Connects the first session now (so a wrong URL or password fails at startup); the others
    /// open when units overlap, up to ``PostgresConfiguration/connections``.
    public init(_ configuration: PostgresConfiguration) throws(PostgresError) {
        self.configuration = configuration
        let limit = max(1, configuration.connections)
        pool = SessionPool(first: try PostgresConnection(configuration), limit: limit)
        threads = BlockingExecutor(name: "passerelle-pg", threads: limit)
    }

    deinit { close() }

    /// The sessions opened so far: one at first, more once units overlapped (tests, diagnostics);
    /// closing the client does not lower it.
    public var sessionCount: Int { pool.openCount }

    /// Runs `body` on a session's thread and returns its result.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let pool = self.pool
        do {
            return try await threads.run { try pool.withSession { try Self.perform($0, body) } }
        } catch is BlockingExecutorError {
            throw Self.closed
        }
    }

    /// The blocking form, for synchronous callers (it parks the calling thread until done).
    public func withConnectionBlocking<T>(_ body: @escaping (PostgresConnection) throws -> T) throws -> T {
        let pool = self.pool
        do {
            return try threads.runAndWait { try pool.withSession { try Self.perform($0, body) } }
        } catch is BlockingExecutorError {
            throw Self.closed
        }
    }

    /// Stops the threads after the queued work and closes the sessions.
    public func close() {
        let pool = self.pool
        threads.shutdown(finally: { pool.close() })
    }

    private static var closed: PostgresError { PostgresError(message: "the client was closed", context: "query") }

    private static func perform<T>(_ connection: PostgresConnection, _ body: (PostgresConnection) throws -> T) throws -> T {
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

/// The sessions. One is used by one thread at a time: taken for a unit, given back after it.
/// A new one opens when every open one is busy (there are as many threads as the limit, each
/// holding at most one). Closing closes the idle ones, and each busy one when it is given back.
private final class SessionPool: Sendable {
    /// A connection, handed between threads only through the pool (one unit at a time).
    private final class Session: @unchecked Sendable {
        let connection: PostgresConnection
        init(_ connection: PostgresConnection) { self.connection = connection }
    }
    private struct State: Sendable {
        var idle: [Session]
        var opened: Int
        var closed = false
    }
    private let state: Mutex<State>
    private let limit: Int
    private let configuration: PostgresConfiguration

    init(first: PostgresConnection, limit: Int) {
        state = Mutex(State(idle: [Session(first)], opened: 1))
        self.limit = limit
        configuration = first.configuration
    }

    private enum Next { case reuse(Session), open, none }

    func withSession<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let next = state.withLock { s -> Next in
            if let session = s.idle.popLast() { return .reuse(session) }
            guard !s.closed, s.opened < limit else { return .none }
            s.opened += 1
            return .open
        }
        let session: Session
        switch next {
        case .reuse(let idle): session = idle
        case .open:
            do { session = Session(try PostgresConnection(configuration)) } catch {
                state.withLock { $0.opened -= 1 }
                throw error
            }
        case .none: throw PostgresError(message: "no PostgreSQL session free (the client was closed)", context: "query")
        }
        defer {
            let closeIt = state.withLock { s -> Bool in
                if s.closed { return true }
                s.idle.append(session)
                return false
            }
            if closeIt { session.connection.close() }
        }
        return try body(session.connection)
    }

    /// The sessions opened so far (for tests and diagnostics); ``close()`` does not lower it.
    var openCount: Int { state.withLock { $0.opened } }

    func close() {
        let idle = state.withLock { s -> [Session] in
            s.closed = true
            defer { s.idle = [] }
            return s.idle
        }
        for session in idle { session.connection.close() }
    }
}
