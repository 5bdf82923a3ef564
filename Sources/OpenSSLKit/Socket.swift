import BlockingIO
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors of plain TCP sockets.
public enum SocketError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    case resolveFailed(host: String, reason: String)
    case connectFailed(host: String, port: UInt16, reason: String)
    case listenFailed(host: String, port: UInt16, reason: String)
    /// Nothing arrived / could be sent within the timeout.
    case timedOut(operation: String, peer: String)
    /// A system call failed on an established connection.
    case io(operation: String, peer: String, reason: String)
    /// The peer closed the connection in the middle of a line or before an expected reply.
    case closedByPeer(peer: String)
    /// A line longer than the limit arrived (protects against unbounded buffering).
    case lineTooLong(peer: String, limit: Int)
    /// The socket was already closed.
    case closed

    public var description: String {
        switch self {
        case let .resolveFailed(host, reason): "cannot resolve \(host): \(reason)"
        case let .connectFailed(host, port, reason): "cannot connect to \(host):\(port): \(reason)"
        case let .listenFailed(host, port, reason): "cannot listen on \(host):\(port): \(reason)"
        case let .timedOut(operation, peer): "\(operation) with \(peer) timed out"
        case let .io(operation, peer, reason): "\(operation) with \(peer) failed: \(reason)"
        case let .closedByPeer(peer): "\(peer) closed the connection"
        case let .lineTooLong(peer, limit): "\(peer) sent a line longer than \(limit) bytes"
        case .closed: "the connection is closed"
        }
    }

    public var errorDescription: String? { description }
}

// Free functions reach the C calls that methods of the same name (close, connect...) shadow.
func systemClose(_ fd: Int32) { _ = close(fd) }
func systemShutdown(_ fd: Int32, _ how: Int32) { _ = shutdown(fd, how) }
func systemSocket(_ domain: Int32, _ type: Int32, _ proto: Int32) -> Int32 { socket(domain, type, proto) }
func systemConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> Int32 { connect(fd, address, length) }
func systemListen(_ fd: Int32, _ backlog: Int32) -> Int32 { listen(fd, backlog) }
func systemAccept(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?) -> Int32 {
    accept(fd, address, length)
}

func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

/// Ignoring SIGPIPE once, process-wide: OpenSSL writes to sockets with write(2), and a peer
/// that hangs up must produce an error, not kill the gateway.
let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

/// Bytes read ahead of the caller, so lines can be split without losing what follows.
struct ReadBuffer {
    private var bytes: [UInt8] = []
    private var start = 0

    var isEmpty: Bool { start >= bytes.count }

    mutating func append(_ data: Data) {
        if start > 0 && start >= bytes.count / 2 {
            bytes.removeFirst(start)
            start = 0
        }
        bytes.append(contentsOf: data)
    }

    /// Up to `maxLength` buffered bytes, or nil when the buffer is empty.
    mutating func take(maxLength: Int) -> Data? {
        guard !isEmpty else { return nil }
        let end = min(bytes.count, start + maxLength)
        defer { start = end }
        return Data(bytes[start..<end])
    }

    /// A complete line (without its CR LF or LF), or nil when no line end is buffered yet.
    mutating func takeLine() -> String? {
        guard let newline = bytes[start...].firstIndex(of: 0x0A) else { return nil }
        var end = newline
        if end > start && bytes[end - 1] == 0x0D { end -= 1 }
        defer { start = newline + 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// Everything left (for an unterminated last line).
    mutating func takeAll() -> String? {
        guard !isEmpty else { return nil }
        defer { start = bytes.count }
        return String(decoding: bytes[start...], as: UTF8.self)
    }

    var count: Int { bytes.count - start }

    /// Buffered bytes first, else whatever `receive` gets.
    mutating func read<E: Error>(maxLength: Int, receive: () throws(E) -> Data) throws(E) -> Data {
        if let buffered = take(maxLength: maxLength) { return buffered }
        return try receive()
    }

    /// The next line, receiving more as needed; at end of stream the unterminated rest, then nil.
    mutating func readLine<E: Error>(maxLength: Int, tooLong: @autoclosure () -> E,
                                     receive: () throws(E) -> Data) throws(E) -> String? {
        while true {
            if let line = takeLine() { return line }
            if count > maxLength { throw tooLong() }
            let chunk = try receive()
            if chunk.isEmpty { return takeAll() }
            append(chunk)
        }
    }
}

/// A byte stream: a plain TCP ``Socket`` or a ``TLSStream``. The synchronous methods block
/// the calling thread (bounded by the timeouts); in async code use the `async` overloads,
/// which run the blocking work on the connection's own thread (``executor``), never on
/// Swift's cooperative pool.
public protocol Connection: AnyObject, Sendable {
    /// Up to `maxLength` bytes; empty Data at end of stream.
    func read(maxLength: Int) throws -> Data
    /// The next line without its line ending; nil at end of stream.
    func readLine(maxLength: Int) throws -> String?
    /// Writes all of `data`.
    func write(_ data: Data) throws
    /// Closes the connection (idempotent).
    func close()
    /// "host:port" of the peer, for messages.
    var peer: String { get }
    /// The connection's serial lane: the async overloads run on it, one call at a time, in order.
    var executor: BlockingExecutor { get }
    /// Ends the connection's blocked I/O from another thread (a deadline, a shutdown).
    var interrupter: ConnectionInterrupter { get }
}

extension Connection {
    /// Line with the default 64 KiB limit.
    public func readLine() throws -> String? { try readLine(maxLength: 65_536) }
    public func write(_ text: String) throws { try write(Data(text.utf8)) }

    func onQueue<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await executor.run(body)
    }

    public func read(maxLength: Int) async throws -> Data { try await onQueue { try self.read(maxLength: maxLength) } }
    public func readLine(maxLength: Int = 65_536) async throws -> String? {
        try await onQueue { try self.readLine(maxLength: maxLength) }
    }
    public func write(_ data: Data) async throws { try await onQueue { try self.write(data) } }
    public func write(_ text: String) async throws { try await write(Data(text.utf8)) }
    // close() has no async overload on purpose: it does not wait for the peer, and a
    // synchronous close can be used in `defer`.
}

/// Wakes a connection's blocked reads and writes from another thread (shutdown(2): the reader
/// sees end of stream) without closing the descriptor under it. Shared by a ``Socket`` and
/// the ``TLSStream`` it becomes; after the connection is closed it does nothing, so a
/// descriptor number reused by another connection is never touched.
public final class ConnectionInterrupter: Sendable {
    private let descriptor: Mutex<Int32>

    init(_ descriptor: Int32) { self.descriptor = Mutex(descriptor) }

    /// Ends the connection's I/O now (idempotent; a no-op once closed).
    public func interrupt() {
        descriptor.withLock { fd in if fd >= 0 { systemShutdown(fd, Int32(SHUT_RDWR)) } }
    }

    /// Shuts down and closes the descriptor (idempotent).
    func close() {
        descriptor.withLock { fd in
            guard fd >= 0 else { return }
            systemShutdown(fd, Int32(SHUT_RDWR))
            systemClose(fd)
            fd = -1
        }
    }
}

/// A connected TCP socket with read/write timeouts and line reading.
///
/// One operation at a time: the synchronous methods must not be called concurrently from
/// several threads (the async overloads serialise themselves on ``executor``).
public final class Socket: Connection, @unchecked Sendable {
    private(set) var descriptor: Int32
    public let peer: String
    /// The peer's numeric address alone (no port): what allow-lists and per-client limits use.
    public let peerHost: String
    public let executor: BlockingExecutor
    /// Ends this connection's blocked I/O from another thread (also after a TLS upgrade).
    public let interrupter: ConnectionInterrupter
    var buffer = ReadBuffer()
    private let lock = NSLock()

    init(descriptor: Int32, peer: String, peerHost: String? = nil) {
        self.descriptor = descriptor
        self.peer = peer
        self.peerHost = peerHost ?? peer
        interrupter = ConnectionInterrupter(descriptor)
        executor = BlockingExecutor(name: "OpenSSLKit.socket.\(peer)")
        _ = ignoreSIGPIPE
    }

    deinit {
        if descriptor >= 0 { interrupter.close() }
        executor.shutdown()
    }

    /// Connects to `host:port`, trying each resolved address in turn, each attempt bounded by
    /// `timeout`, which then also bounds every read and write (change it with ``setTimeout(_:)``).
    /// `localAddress` binds the client side to that numeric address first (e.g. another
    /// loopback address, to look like another client).
    public static func connect(host: String, port: UInt16, timeout: TimeInterval = 30, localAddress: String? = nil) throws(SocketError) -> Socket {
        _ = ignoreSIGPIPE
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw .resolveFailed(host: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = systemSocket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue),
                                  info.pointee.ai_protocol)
            guard fd >= 0 else { lastError = errnoText(); continue }
            if let localAddress {
                guard bindLocal(fd, localAddress, family: info.pointee.ai_family) else {
                    lastError = "cannot bind to \(localAddress): \(errnoText())"
                    systemClose(fd)
                    continue
                }
            }
            // Non-blocking connect, so the attempt can be bounded by poll().
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var result = systemConnect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen)
            if result != 0 && errno == EINPROGRESS {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&poller, 1, Int32(max(0, timeout) * 1000))
                if ready == 0 {
                    lastError = "timed out after \(timeout) s"
                    systemClose(fd)
                    continue
                }
                var socketError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
                result = socketError == 0 ? 0 : -1
                if socketError != 0 { errno = socketError }
            }
            guard result == 0 else {
                lastError = errnoText()
                systemClose(fd)
                continue
            }
            _ = fcntl(fd, F_SETFL, flags)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let socket = Socket(descriptor: fd, peer: "\(host):\(port)")
            socket.setTimeout(timeout)
            return socket
        }
        throw .connectFailed(host: host, port: port, reason: lastError)
    }

    /// Async ``connect(host:port:timeout:localAddress:)``: resolution and connection run off the cooperative pool.
    public static func connect(host: String, port: UInt16, timeout: TimeInterval = 30, localAddress: String? = nil) async throws -> Socket {
        try await BlockingExecutor.once("OpenSSLKit.connect") { () throws(SocketError) in
            try connect(host: host, port: port, timeout: timeout, localAddress: localAddress)
        }
    }

    /// Binds `fd` to the numeric `address` (any port) of `family`.
    private static func bindLocal(_ fd: Int32, _ address: String, family: Int32) -> Bool {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address, "0", &hints, &list) == 0, let list else { return false }
        defer { freeaddrinfo(list) }
        return bind(fd, list.pointee.ai_addr, list.pointee.ai_addrlen) == 0
    }

    /// Read and write timeout in seconds (0 or nil: none).
    public func setTimeout(_ seconds: TimeInterval?) {
        var value = timeval()
        if let seconds, seconds > 0 {
            value.tv_sec = Int(seconds)
            value.tv_usec = Int((seconds - Double(Int(seconds))) * 1_000_000)
        }
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Reads from the kernel, bypassing the line buffer.
    func receive(maxLength: Int) throws(SocketError) -> Data {
        guard descriptor >= 0 else { throw .closed }
        var chunk = [UInt8](repeating: 0, count: max(1, maxLength))
        while true {
            let count = recv(descriptor, &chunk, chunk.count, 0)
            if count >= 0 { return Data(chunk.prefix(count)) }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut(operation: "read", peer: peer) }
            throw .io(operation: "read", peer: peer, reason: errnoText())
        }
    }

    public func read(maxLength: Int) throws(SocketError) -> Data {
        try buffer.read(maxLength: maxLength) { () throws(SocketError) in try receive(maxLength: maxLength) }
    }

    public func readLine(maxLength: Int) throws(SocketError) -> String? {
        try buffer.readLine(maxLength: maxLength, tooLong: .lineTooLong(peer: peer, limit: maxLength)) { () throws(SocketError) in
            try receive(maxLength: 16_384)
        }
    }

    public func write(_ data: Data) throws(SocketError) {
        guard descriptor >= 0 else { throw .closed }
        let bytes = [UInt8](data)
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut(operation: "write", peer: peer) }
                throw .io(operation: "write", peer: peer, reason: errnoText())
            }
            offset += count
        }
    }

    public func readLine() throws(SocketError) -> String? { try readLine(maxLength: 65_536) }
    public func write(_ text: String) throws(SocketError) { try write(Data(text.utf8)) }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        guard descriptor >= 0 else { return }
        interrupter.close()
        descriptor = -1
    }

    /// Hands the descriptor to a TLS stream; this object no longer closes it.
    func detachDescriptor() -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        let fd = descriptor
        descriptor = -1
        return fd
    }

    /// True when bytes were received but not yet consumed (must be false before STARTTLS).
    var hasBufferedInput: Bool { !buffer.isEmpty }
}

/// A listening TCP socket.
public final class ListeningSocket: @unchecked Sendable {
    private var descriptor: Int32
    public let host: String
    /// The bound port (the one the kernel chose when 0 was asked).
    public let port: UInt16
    private let lock = NSLock()

    /// Listens on `host` (loopback by default); port 0 picks a free ephemeral port.
    public init(host: String = "127.0.0.1", port: UInt16 = 0, backlog: Int32 = 64) throws(SocketError) {
        _ = ignoreSIGPIPE
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw .listenFailed(host: host, port: port, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        let info = list.pointee
        let fd = systemSocket(info.ai_family, info.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.ai_protocol)
        guard fd >= 0 else { throw .listenFailed(host: host, port: port, reason: errnoText()) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.ai_addr, info.ai_addrlen) == 0, systemListen(fd, backlog) == 0 else {
            let reason = errnoText()
            systemClose(fd)
            throw .listenFailed(host: host, port: port, reason: reason)
        }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        let family = Int32(address.ss_family)
        let bound: UInt16 = withUnsafePointer(to: &address) { pointer in
            if family == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        descriptor = fd
        self.host = host
        self.port = bound
    }

    deinit { close() }

    /// Waits up to `timeout` (nil: forever) for a connection; nil when the wait timed out.
    public func accept(timeout: TimeInterval? = nil) throws(SocketError) -> Socket? {
        let fd = lock.withLock { descriptor }
        guard fd >= 0 else { throw .closed }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, timeout.map { Int32(max(0, $0) * 1000) } ?? -1)
        if ready == 0 { return nil }
        if ready < 0 {
            if errno == EINTR { return nil }
            throw .io(operation: "accept", peer: "\(host):\(port)", reason: errnoText())
        }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let client = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { systemAccept(fd, $0, &length) }
        }
        if client >= 0 { _ = fcntl(client, F_SETFD, FD_CLOEXEC) }
        guard client >= 0 else {
            if errno == EAGAIN || errno == EINTR || errno == ECONNABORTED { return nil }
            throw .io(operation: "accept", peer: "\(host):\(port)", reason: errnoText())
        }
        var hostBuffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var portBuffer = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = getnameinfo($0, length, &hostBuffer, socklen_t(hostBuffer.count), &portBuffer, socklen_t(portBuffer.count),
                                NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        let peerHost = cString(hostBuffer)
        return Socket(descriptor: client, peer: "\(peerHost):\(cString(portBuffer))", peerHost: peerHost)
    }

    /// Stops listening (idempotent).
    public func close() {
        lock.withLock {
            guard descriptor >= 0 else { return }
            systemClose(descriptor)
            descriptor = -1
        }
    }
}
