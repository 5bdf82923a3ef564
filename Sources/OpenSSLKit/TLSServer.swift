import BlockingIO
import Foundation
import Synchronization

/// A shareable stop flag (Atomic itself cannot be captured by the accept thread).
final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// A small TCP server for tests, the local endpoints and the status endpoint: an accept loop
/// on a lane of its own, each connection handled by a blocking handler on a thread of the
/// server's connection pool (or by an async handler in a task, its I/O on the connection's lane).
public final class SocketServer: Sendable {
    private let listener: ListeningSocket
    private let stopped = StopFlag()
    private let acceptLane: BlockingExecutor
    private let connections: BlockingExecutor

    /// The bound port (ephemeral when 0 was asked).
    public var port: UInt16 { listener.port }
    public var host: String { listener.host }

    /// Starts listening at once and accepting on a background thread. Each connection's
    /// `handler` runs on a thread of its own, at most `maxConnections` at once (later
    /// connections wait for a thread, in order).
    public convenience init(host: String = "127.0.0.1", port: UInt16 = 0, maxConnections: Int = 1024,
                            handler: @escaping @Sendable (Socket) -> Void) throws(SocketError) {
        try self.init(host: host, port: port, maxConnections: maxConnections, dispatch: { pool, socket in
            // The pool outlives the accept loop until stop(), which ends the loop first.
            try? pool.submit { handler(socket) }
        })
    }

    /// Starts listening at once; each connection is served by `asyncHandler` in a task of its own
    /// (its blocking I/O goes through the connection's async overloads, off the cooperative pool).
    public static func serving(host: String = "127.0.0.1", port: UInt16 = 0,
                               _ handler: @escaping @Sendable (Socket) async -> Void) throws(SocketError) -> SocketServer {
        try SocketServer(host: host, port: port, maxConnections: 1, dispatch: { _, socket in
            Task { await handler(socket) }
        })
    }

    private init(host: String, port: UInt16, maxConnections: Int,
                 dispatch: @escaping @Sendable (BlockingExecutor, Socket) -> Void) throws(SocketError) {
        listener = try ListeningSocket(host: host, port: port)
        acceptLane = BlockingExecutor(name: "OpenSSLKit.accept.\(listener.port)")
        // Threads end as soon as their connection does, as one thread per connection did.
        connections = BlockingExecutor(name: "OpenSSLKit.conn.\(listener.port)", threads: maxConnections, idleTimeout: .zero)
        let listener = listener, stopped = stopped, connections = connections
        try? acceptLane.submit {
            while !stopped.value.load(ordering: .acquiring) {
                // A short poll so stop() is noticed without closing the descriptor under accept().
                guard let connection = try? listener.accept(timeout: 0.1) else { continue }
                dispatch(connections, connection)
            }
            listener.close()
        }
    }

    /// Stops accepting and waits for the accept loop to end; connections in progress finish on their own.
    public func stop() {
        guard !stopped.value.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // The lane is serial: this empty call returns once the accept loop has ended.
        _ = try? acceptLane.runAndWait {}
        acceptLane.shutdown()
        connections.shutdown()
    }

    deinit { stop() }
}

/// A TLS server: ``SocketServer`` plus the server handshake. Handshake failures (refused
/// client certificates, protocol or cipher mismatches) go to `onError`.
public final class TLSServer: Sendable {
    private let server: SocketServer
    public let context: TLSContext
    public var port: UInt16 { server.port }
    public var host: String { server.host }

    public init(host: String = "127.0.0.1", port: UInt16 = 0, configuration: TLSConfiguration,
                onError: @escaping @Sendable (TLSError) -> Void = { _ in },
                handler: @escaping @Sendable (TLSStream) -> Void) throws(TLSError) {
        let context = try TLSContext(role: .server, configuration: configuration)
        self.context = context
        do throws(SocketError) {
            server = try SocketServer(host: host, port: port) { socket in
                do throws(TLSError) {
                    let stream = try TLSStream.upgrade(socket, context: context)
                    handler(stream)
                    stream.close()
                } catch {
                    onError(error)
                }
            }
        } catch {
            throw .socket(error)
        }
    }

    public func stop() { server.stop() }
}
