import Foundation
import OpenSSLKit
import Synchronization

/// MLLP framing (HL7 v2 over TCP): `0x0B message 0x1C 0x0D`.
public enum MLLPFrame {
    public static let start: UInt8 = 0x0B
    public static let end: [UInt8] = [0x1C, 0x0D]

    /// Wraps one message.
    public static func wrap(_ message: Data) -> Data {
        var out = Data([start])
        out.append(message)
        out.append(contentsOf: end)
        return out
    }

    /// The result of looking for one frame in a buffer.
    public enum Scan: Equatable {
        /// A complete message; `consumed` bytes of the buffer (up to and including 0x1C 0x0D) are used.
        case message(Data, consumed: Int)
        /// More bytes are needed. `discard` leading bytes are noise before a start byte.
        case incomplete(discard: Int)
        /// The frame already holds more than the limit.
        case tooLarge
    }

    /// Looks for the first complete frame in `buffer`.
    public static func scan(_ buffer: Data, maxMessageBytes: Int) -> Scan {
        guard let s = buffer.firstIndex(of: start) else { return .incomplete(discard: buffer.count) }
        let bodyStart = s + 1
        var i = bodyStart
        while let e = buffer[i...].firstIndex(of: end[0]) {
            if e + 1 < buffer.endIndex {
                if buffer[e + 1] == end[1] {
                    if e - bodyStart > maxMessageBytes { return .tooLarge }
                    return .message(Data(buffer[bodyStart..<e]), consumed: e + 2 - buffer.startIndex)
                }
                i = e + 1
            } else {
                break
            }
        }
        if buffer.endIndex - bodyStart > maxMessageBytes + 2 { return .tooLarge }
        return .incomplete(discard: s - buffer.startIndex)
    }
}

/// Settings of the MLLP listener.
public struct MLLPSettings: Sendable {
    public var host: String
    public var port: UInt16
    public var maxMessageBytes: Int
    public var maxConnections: Int
    public var idleTimeout: TimeInterval
    /// Server TLS (identity, optional client CA); nil = plain TCP.
    public var tls: TLSConfiguration?

    public init(host: String = "127.0.0.1", port: UInt16 = 0, maxMessageBytes: Int = 32 * 1024 * 1024,
                maxConnections: Int = 16, idleTimeout: TimeInterval = 300, tls: TLSConfiguration? = nil) {
        self.host = host
        self.port = port
        self.maxMessageBytes = maxMessageBytes
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.tls = tls
    }
}

/// Receives HL7 v2 messages over MLLP, one thread per connection (bounded), several messages per
/// connection in sequence. Each message goes to `handler`, whose answer (the ACK, built only once
/// the message is journaled) is framed and sent back before the next message is read.
public final class MLLPListener: Sendable {
    /// Answer to a frame too large to read: the ACK to send before closing.
    public typealias Handler = @Sendable (_ message: Data) async -> Data
    public typealias OversizeHandler = @Sendable () -> Data

    private enum Server: Sendable {
        case plain(SocketServer)
        case tls(TLSServer)
    }

    private let server: Server
    private let active = Atomic<Int>(0)
    public let settings: MLLPSettings

    public var port: UInt16 {
        switch server {
        case .plain(let s): s.port
        case .tls(let s): s.port
        }
    }

    public init(settings: MLLPSettings, handler: @escaping Handler, oversize: @escaping OversizeHandler,
                onError: @escaping @Sendable (String) -> Void = { _ in }) throws(GatewayError) {
        self.settings = settings
        let box = ListenerBox()
        let serve: @Sendable (any Connection) -> Void = { connection in
            box.listener?.serve(connection, handler: handler, oversize: oversize, onError: onError)
        }
        do {
            if var tls = settings.tls {
                tls.timeout = settings.idleTimeout
                server = .tls(try TLSServer(host: settings.host, port: settings.port, configuration: tls,
                                            onError: { onError("TLS handshake failed: \($0)") }, handler: { serve($0) }))
            } else {
                let idle = settings.idleTimeout
                server = .plain(try SocketServer(host: settings.host, port: settings.port) { socket in
                    socket.setTimeout(idle)
                    serve(socket)
                    socket.close()
                })
            }
        } catch {
            throw .listener("cannot listen on \(settings.host):\(settings.port): \(error)")
        }
        box.listener = self
    }

    /// Stops accepting; connections in progress end after their current message.
    public func stop() {
        switch server {
        case .plain(let s): s.stop()
        case .tls(let s): s.stop()
        }
    }

    /// Open connections.
    public var activeConnections: Int { active.load(ordering: .relaxed) }

    func serve(_ connection: any Connection, handler: @escaping Handler, oversize: OversizeHandler,
               onError: @Sendable (String) -> Void) {
        let count = active.add(1, ordering: .relaxed).newValue
        defer { active.subtract(1, ordering: .relaxed) }
        guard count <= settings.maxConnections else {
            onError("connection from \(connection.peer) refused: \(settings.maxConnections) connections already open ([mllp] max_connections)")
            return
        }
        var buffer = Data()
        while true {
            switch MLLPFrame.scan(buffer, maxMessageBytes: settings.maxMessageBytes) {
            case .message(let message, let consumed):
                buffer.removeFirst(consumed)
                let ack = Self.blockingCall { await handler(message) }
                do { try connection.write(MLLPFrame.wrap(ack)) } catch { return }
                continue
            case .tooLarge:
                onError("message from \(connection.peer) exceeds \(settings.maxMessageBytes) bytes ([mllp] max_message_bytes); connection closed")
                try? connection.write(MLLPFrame.wrap(oversize()))
                return
            case .incomplete(let discard):
                if discard > 0 { buffer.removeFirst(discard) }
            }
            let chunk: Data
            do { chunk = try connection.read(maxLength: 65_536) } catch { return }  // idle timeout, reset
            if chunk.isEmpty { return }
            buffer.append(chunk)
        }
    }

    /// Runs async work from a connection thread (never from the cooperative pool) and waits.
    static func blockingCall(_ body: @escaping @Sendable () async -> Data) -> Data {
        let result = Mutex<Data?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let value = await body()
            result.withLock { $0 = value }
            done.signal()
        }
        done.wait()
        return result.withLock { $0 ?? Data() }
    }
}

/// Lets the server's handler reach the listener created after it.
private final class ListenerBox: @unchecked Sendable {
    // Set right after the server starts; a connection accepted in that instant is closed at once.
    private let lock = NSLock()
    private weak var _listener: MLLPListener?
    var listener: MLLPListener? {
        get { lock.withLock { _listener } }
        set { lock.withLock { _listener = newValue } }
    }
}
