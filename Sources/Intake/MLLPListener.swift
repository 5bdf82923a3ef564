import Foundation
import OpenSSLKit
import PasserelleCore
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

/// Why the MLLP listener cannot start (what to change).
public struct MLLPListenerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { "MLLP listener: \(message)" }
}

/// Settings of the MLLP listener.
public struct MLLPSettings: Sendable {
    public var host: String
    public var port: UInt16
    public var maxMessageBytes: Int
    public var maxConnections: Int
    /// Silence allowed between messages.
    public var idleTimeout: TimeInterval
    /// A whole message must arrive within this time of its first byte (the first message: of
    /// the connection's start, TLS handshake included).
    public var messageTimeout: TimeInterval
    public var maxConnectionsPerPeer: Int
    /// Empty: every client address is served.
    public var allowedClients: [ClientAddressRange]
    /// Server TLS (identity, optional client CA); nil = plain TCP.
    public var tls: TLSConfiguration?

    public init(host: String = "127.0.0.1", port: UInt16 = 0, maxMessageBytes: Int = 32 * 1024 * 1024,
                maxConnections: Int = 16, idleTimeout: TimeInterval = 300, messageTimeout: TimeInterval = 120,
                maxConnectionsPerPeer: Int = 8, allowedClients: [ClientAddressRange] = [], tls: TLSConfiguration? = nil) {
        self.host = host
        self.port = port
        self.maxMessageBytes = maxMessageBytes
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.messageTimeout = messageTimeout
        self.maxConnectionsPerPeer = maxConnectionsPerPeer
        self.allowedClients = allowedClients
        self.tls = tls
    }

    /// The connection policy part.
    public var policy: MLLPConnectionPolicy {
        MLLPConnectionPolicy(maxConnections: maxConnections, maxConnectionsPerPeer: maxConnectionsPerPeer,
                             messageTimeout: messageTimeout, allowedClients: allowedClients)
    }
}

/// Receives HL7 v2 messages over MLLP, one thread per connection, several messages per
/// connection in sequence. Each message goes to `handler`, whose answer (the ACK, built only once
/// the message is journaled) is framed and sent back before the next message is read.
///
/// Connections follow ``MLLPConnectionPolicy``: allow-list and per-client limit at accept, the
/// longest-idle connection closed when the listener is full (never one whose message is being
/// processed), and a deadline per message watched by one thread, so idle or slow clients
/// cannot keep a legitimate one out. An ended connection is shut down (shutdown(2)), which
/// wakes its thread at once.
public final class MLLPListener: Sendable {
    /// Answer to a frame too large to read: the ACK to send before closing.
    public typealias Handler = @Sendable (_ message: Data) async -> Data
    public typealias OversizeHandler = @Sendable () -> Data

    private let server: SocketServer
    private let tlsContext: TLSContext?
    private let table: MLLPConnectionTable
    private let watchStopped = StopSignal()
    private let throttle = LogThrottle()
    public let settings: MLLPSettings

    public var port: UInt16 { server.port }

    public init(settings: MLLPSettings, handler: @escaping Handler, oversize: @escaping OversizeHandler,
                onError: @escaping @Sendable (String) -> Void = { _ in }) throws(MLLPListenerError) {
        self.settings = settings
        let table = MLLPConnectionTable(policy: settings.policy)
        self.table = table
        if var tls = settings.tls {
            tls.timeout = settings.idleTimeout
            do { tlsContext = try TLSContext(role: .server, configuration: tls) } catch {
                throw MLLPListenerError(message: "[mllp] TLS: \(error)")
            }
        } else {
            tlsContext = nil
        }
        let box = ListenerBox()
        do {
            server = try SocketServer(host: settings.host, port: settings.port) { socket in
                guard let listener = box.listener else { socket.close(); return }
                listener.accepted(socket, handler: handler, oversize: oversize, onError: onError)
            }
        } catch {
            throw MLLPListenerError(message: "cannot listen on \(settings.host):\(settings.port): \(error)")
        }
        box.listener = self
        Self.watchDeadlines(table, timeout: settings.messageTimeout, stopped: watchStopped, throttle: throttle, onError: onError)
    }

    deinit { watchStopped.set() }

    /// Stops accepting; connections in progress end after their current message.
    public func stop() {
        server.stop()
        watchStopped.set()
    }

    /// Open connections.
    public var activeConnections: Int { table.count }

    /// One thread closes the connections whose message is late (checked a few times per deadline).
    private static func watchDeadlines(_ table: MLLPConnectionTable, timeout: TimeInterval, stopped: StopSignal,
                                       throttle: LogThrottle, onError: @escaping @Sendable (String) -> Void) {
        let tick = min(0.5, max(0.05, timeout / 10))
        let thread = Thread {
            while !stopped.wait(tick) {
                for peer in table.expire() {
                    throttle.report("deadline", onError) {
                        "connection from \(peer) closed: no complete message within \(Int(timeout)) s ([mllp] message_timeout_seconds)"
                    }
                }
            }
        }
        thread.name = "Intake.mllp.deadlines"
        thread.start()
    }

    func accepted(_ socket: Socket, handler: @escaping Handler, oversize: OversizeHandler, onError: @Sendable (String) -> Void) {
        let interrupter = socket.interrupter
        let id: Int
        switch table.admit(peer: socket.peer, peerHost: socket.peerHost, interrupt: { interrupter.interrupt() }) {
        case .refused(let decision):
            socket.close()
            throttle.report("refused \(decision)", onError) { "connection from \(socket.peer) refused: " + Self.refusal(decision, settings) }
            return
        case .admitted(let admitted, let evicted):
            id = admitted
            if let evicted {
                throttle.report("evicted", onError) {
                    "connection from \(evicted.peer) closed (silent for \(evicted.idleSeconds) s) to serve \(socket.peer): "
                        + "\(settings.maxConnections) connections open ([mllp] max_connections)"
                }
            }
        }
        defer { table.remove(id) }
        socket.setTimeout(settings.idleTimeout)
        let connection: any Connection
        if let tlsContext {
            do { connection = try TLSStream.upgrade(socket, context: tlsContext) } catch {
                throttle.report("tls", onError) { "TLS handshake failed: \(error)" }
                return
            }
        } else {
            connection = socket
        }
        serve(connection, id: id, handler: handler, oversize: oversize, onError: onError)
        connection.close()
    }

    static func refusal(_ decision: MLLPConnectionPolicy.Admission, _ settings: MLLPSettings) -> String {
        switch decision {
        case .refuseNotAllowed: "address not in [mllp] allowed_clients"
        case .refusePeerLimit: "\(settings.maxConnectionsPerPeer) connections already open from this address ([mllp] max_connections_per_peer)"
        case .refuseFull: "\(settings.maxConnections) connections open, each with a message being processed ([mllp] max_connections)"
        case .admit, .admitEvicting: "admitted"
        }
    }

    func serve(_ connection: any Connection, id: Int, handler: @escaping Handler, oversize: OversizeHandler,
               onError: @Sendable (String) -> Void) {
        var buffer = Data()
        while true {
            switch MLLPFrame.scan(buffer, maxMessageBytes: settings.maxMessageBytes) {
            case .message(let message, let consumed):
                buffer.removeFirst(consumed)
                table.processing(id)
                let ack = Self.blockingCall { await handler(message) }
                do { try connection.write(MLLPFrame.wrap(ack)) } catch { return }
                table.answered(id, pending: !buffer.isEmpty)
                continue
            case .tooLarge:
                throttle.report("oversize", onError) {
                    "message from \(connection.peer) exceeds \(settings.maxMessageBytes) bytes ([mllp] max_message_bytes); connection closed"
                }
                try? connection.write(MLLPFrame.wrap(oversize()))
                return
            case .incomplete(let discard):
                if discard > 0 { buffer.removeFirst(discard) }
            }
            let chunk: Data
            // Idle timeout, reset, or shut down by the listener (evicted, message deadline).
            do { chunk = try connection.read(maxLength: 65_536) } catch { return }
            if chunk.isEmpty { return }
            buffer.append(chunk)
            // Any byte starts the message clock, noise included: a client dribbling bytes
            // that never make a frame is as slow as one dribbling a frame.
            table.received(id)
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

/// At most one log line per kind and second: a flood of connections must not flood the log
/// (nor fill its disk). The next line of the kind says how many were left out.
final class LogThrottle: Sendable {
    private let state = Mutex<[String: (last: Date, skipped: Int)]>([:])

    func report(_ kind: String, _ sink: (String) -> Void, now: Date = Date(), _ message: () -> String) {
        let skipped: Int? = state.withLock { table in
            if let entry = table[kind], now.timeIntervalSince(entry.last) < 1 {
                table[kind]!.skipped += 1
                return nil
            }
            let skipped = table[kind]?.skipped ?? 0
            table[kind] = (now, 0)
            return skipped
        }
        guard let skipped else { return }
        sink(skipped > 0 ? message() + " (\(skipped) similar lines left out)" : message())
    }
}

/// A stop flag a thread can wait on.
final class StopSignal: Sendable {
    private let stopped = Mutex(false)
    private let semaphore = DispatchSemaphore(value: 0)

    func set() {
        let first = stopped.withLock { was in defer { was = true }; return !was }
        if first { semaphore.signal() }
    }

    /// Waits up to `seconds`; true once stopped.
    func wait(_ seconds: TimeInterval) -> Bool {
        if stopped.withLock({ $0 }) { return true }
        _ = semaphore.wait(timeout: .now() + seconds)
        if stopped.withLock({ $0 }) { semaphore.signal(); return true }
        return false
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
