import Foundation
import Synchronization

/// A shareable stop flag (Atomic itself cannot be captured by the accept thread).
final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// A small TCP server for tests and the local test endpoints: an accept loop on its own
/// thread, each connection handled on its own thread by a blocking handler.
public final class SocketServer: Sendable {
    private let listener: ListeningSocket
    private let stopped = StopFlag()
    private let done = DispatchSemaphore(value: 0)

    /// The bound port (ephemeral when 0 was asked).
    public var port: UInt16 { listener.port }
    public var host: String { listener.host }

    /// Starts listening at once and accepting on a background thread.
    public init(host: String = "127.0.0.1", port: UInt16 = 0,
                handler: @escaping @Sendable (Socket) -> Void) throws(SocketError) {
        listener = try ListeningSocket(host: host, port: port)
        let listener = listener, stopped = stopped, done = done
        let thread = Thread {
            while !stopped.value.load(ordering: .acquiring) {
                // A short poll so stop() is noticed without closing the descriptor under accept().
                guard let connection = try? listener.accept(timeout: 0.1) else { continue }
                Thread.detachNewThread { handler(connection) }
            }
            listener.close()
            done.signal()
        }
        thread.name = "OpenSSLKit.accept.\(listener.port)"
        thread.start()
    }

    /// Stops accepting and waits for the accept loop to end; connections in progress finish on their own.
    public func stop() {
        guard !stopped.value.exchange(true, ordering: .acquiringAndReleasing) else { return }
        done.wait()
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
