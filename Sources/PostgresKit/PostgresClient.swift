import BlockingIO
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
    /// The connection's serial lane: units run one at a time, in submission order.
    private let lane: BlockingExecutor
    private let owned: OwnedConnection

    /// Connects now (so a wrong URL or password fails at startup) and starts the thread.
    public init(_ configuration: PostgresConfiguration) throws(PostgresError) {
        self.configuration = configuration
        owned = OwnedConnection(try PostgresConnection(configuration))
        lane = BlockingExecutor(name: "passerelle-pg")
    }

    deinit { close() }

    /// Runs `body` on the connection's thread and returns its result.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let owned = self.owned
        do {
            return try await lane.run { try Self.perform(owned.connection, body) }
        } catch is BlockingExecutorError {
            throw Self.closed
        }
    }

    /// The blocking form, for synchronous callers (it parks the calling thread until done).
    public func withConnectionBlocking<T>(_ body: @escaping (PostgresConnection) throws -> T) throws -> T {
        let owned = self.owned
        do {
            return try lane.runAndWait { try Self.perform(owned.connection, body) }
        } catch is BlockingExecutorError {
            throw Self.closed
        }
    }

    /// Stops the thread after the queued work and closes the connection.
    public func close() {
        let owned = self.owned
        lane.shutdown(finally: { owned.connection.close() })
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

/// The connection, handed between threads only through the lane (one unit at a time).
private final class OwnedConnection: @unchecked Sendable {
    let connection: PostgresConnection
    init(_ connection: PostgresConnection) { self.connection = connection }
}
