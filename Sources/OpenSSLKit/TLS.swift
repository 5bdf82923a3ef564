import BlockingIO
import COpenSSL
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Errors of TLS connections. Messages carry OpenSSL's alert and verification texts,
/// e.g. "certificate verify failed: certificate has expired".
public enum TLSError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The configuration cannot be applied (unknown cipher, unreadable CA file, missing certificate...).
    case configuration(String)
    /// The TCP connection itself failed.
    case socket(SocketError)
    /// The handshake failed: peer certificate rejected, protocol or cipher mismatch, alert from the peer.
    case handshakeFailed(peer: String, reason: String)
    /// An established connection failed (alert from the peer, protocol error).
    case connectionFailed(peer: String, reason: String)
    /// Plain-text bytes arrived after the STARTTLS command: refused (command injection).
    case unexpectedDataBeforeHandshake(peer: String)

    public var description: String {
        switch self {
        case let .configuration(message): "TLS configuration: \(message)"
        case let .socket(error): error.description
        case let .handshakeFailed(peer, reason): "TLS handshake with \(peer) failed: \(reason)"
        case let .connectionFailed(peer, reason): "TLS connection with \(peer) failed: \(reason)"
        case let .unexpectedDataBeforeHandshake(peer):
            "\(peer) sent plain-text data before the TLS handshake (STARTTLS injection); connection refused"
        }
    }

    public var errorDescription: String? { description }
}

/// TLS settings. Peer verification is always on: a client always verifies the server's
/// chain and host name, a server always verifies a client certificate that is presented.
public struct TLSConfiguration: Sendable {
    public enum ProtocolVersion: Int32, Sendable, Comparable, CaseIterable {
        case tls1_2 = 0x0303
        case tls1_3 = 0x0304
        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public var minimumVersion: ProtocolVersion = .tls1_2
    public var maximumVersion: ProtocolVersion = .tls1_3
    /// OpenSSL cipher list for TLS 1.2 (nil: OpenSSL's default).
    public var cipherList: String?
    /// TLS 1.3 ciphersuites, colon-separated (nil: OpenSSL's default).
    public var ciphersuites: String?
    /// PEM file of the CAs that verify the peer. Required for clients and for servers that
    /// require client certificates.
    public var trustedCAFile: URL?
    /// CRL files checked against the peer's certificate (optional).
    public var crlFiles: [URL]
    /// Our certificate and key: the client certificate, or the server certificate.
    public var identity: PKCS12Bundle?
    /// Servers: refuse clients that present no certificate.
    public var requireClientCertificate: Bool
    /// Timeout of the TCP connection, the handshake and each read/write, in seconds.
    public var timeout: TimeInterval

    public init(trustedCAFile: URL?, identity: PKCS12Bundle? = nil, crlFiles: [URL] = [],
                requireClientCertificate: Bool = false, minimumVersion: ProtocolVersion = .tls1_2,
                maximumVersion: ProtocolVersion = .tls1_3, cipherList: String? = nil, ciphersuites: String? = nil,
                timeout: TimeInterval = 30) {
        self.trustedCAFile = trustedCAFile
        self.identity = identity
        self.crlFiles = crlFiles
        self.requireClientCertificate = requireClientCertificate
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.cipherList = cipherList
        self.ciphersuites = ciphersuites
        self.timeout = timeout
    }
}

/// A configured SSL_CTX, built once and shared by many connections (SSL_CTX is safe to
/// share once set up).
public final class TLSContext: @unchecked Sendable {
    public enum Role: Sendable { case client, server }

    let pointer: OpaquePointer
    public let role: Role
    public let configuration: TLSConfiguration

    public init(role: Role, configuration: TLSConfiguration) throws(TLSError) {
        ErrorQueue.clear()
        guard let context = SSL_CTX_new(role == .client ? TLS_client_method() : TLS_server_method()) else {
            throw .configuration("SSL_CTX_new: \(ErrorQueue.drain())")
        }
        pointer = context
        self.role = role
        self.configuration = configuration
        try apply(configuration)
    }

    deinit { SSL_CTX_free(pointer) }

    private func apply(_ c: TLSConfiguration) throws(TLSError) {
        guard c.minimumVersion <= c.maximumVersion else {
            throw .configuration("minimum protocol version is above the maximum")
        }
        _ = copenssl_ssl_ctx_set_min_proto_version(pointer, c.minimumVersion.rawValue)
        _ = copenssl_ssl_ctx_set_max_proto_version(pointer, c.maximumVersion.rawValue)
        copenssl_ssl_ctx_ignore_unexpected_eof(pointer)
        if let list = c.cipherList, SSL_CTX_set_cipher_list(pointer, list) != 1 {
            throw .configuration("cipher list \"\(list)\": \(ErrorQueue.drain())")
        }
        if let suites = c.ciphersuites, SSL_CTX_set_ciphersuites(pointer, suites) != 1 {
            throw .configuration("TLS 1.3 ciphersuites \"\(suites)\": \(ErrorQueue.drain())")
        }

        if let caFile = c.trustedCAFile {
            guard SSL_CTX_load_verify_locations(pointer, caFile.path, nil) == 1 else {
                throw .configuration("cannot load the CA file \(caFile.path): \(ErrorQueue.drain())")
            }
            if role == .server, let names = SSL_load_client_CA_file(caFile.path) {
                SSL_CTX_set_client_CA_list(pointer, names)  // tells clients which CAs are accepted
            }
        } else if role == .client || c.requireClientCertificate {
            throw .configuration("a CA file is required to verify the peer (verification cannot be turned off)")
        }
        if !c.crlFiles.isEmpty {
            let store = SSL_CTX_get_cert_store(pointer)
            for file in c.crlFiles {
                let crls: [OpaquePointer]
                do { crls = try TrustStore.parseCRLs(try readFile(file), source: file.path) } catch {
                    throw .configuration(error.description)
                }
                for crl in crls {
                    X509_STORE_add_crl(store, crl)
                    X509_CRL_free(crl)  // the store holds its own reference
                }
            }
            X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK))
        }

        if let identity = c.identity {
            guard SSL_CTX_use_certificate(pointer, identity.certificate.handle.pointer) == 1,
                  SSL_CTX_use_PrivateKey(pointer, identity.privateKey.handle.pointer) == 1,
                  SSL_CTX_check_private_key(pointer) == 1 else {
                throw .configuration("certificate/key of \(identity.source): \(ErrorQueue.drain())")
            }
            // Send the intermediates, not the root the peer must already trust.
            for certificate in identity.chain where !certificate.isSelfIssued {
                _ = copenssl_ssl_ctx_add1_chain_cert(pointer, certificate.handle.pointer)
            }
        } else if role == .server {
            throw .configuration("a server needs a certificate and key (identity)")
        }

        // SSL_VERIFY_PEER: clients check the server; servers ask for (and check) a client certificate.
        var mode = SSL_VERIFY_PEER
        if role == .server && c.requireClientCertificate { mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT }
        if role == .server && c.trustedCAFile == nil { mode = SSL_VERIFY_NONE }  // nothing to verify a client with
        SSL_CTX_set_verify(pointer, mode, nil)
        if role == .server {
            // Without a session id context, a client resuming a session on a server that
            // verifies client certificates gets an internal_error alert (OpenSSL requirement).
            let sessionContext: [UInt8] = Array("passerelle-tls-server".utf8)
            _ = SSL_CTX_set_session_id_context(pointer, sessionContext, UInt32(sessionContext.count))
        }
        ErrorQueue.clear()
    }
}

/// A TLS connection over a ``Socket``: client or server side, fresh or upgraded (STARTTLS).
///
/// One operation at a time for the synchronous methods; the async overloads of
/// ``Connection`` serialise on ``executor``.
public final class TLSStream: Connection, @unchecked Sendable {
    private let ssl: OpaquePointer
    private var descriptor: Int32
    public let peer: String
    public let executor: BlockingExecutor
    public let context: TLSContext
    /// The underlying socket's interrupter: ends blocked I/O from another thread.
    public let interrupter: ConnectionInterrupter
    private var buffer = ReadBuffer()
    private var closed = false
    private let lock = NSLock()

    /// Connects to `host:port` and performs the client handshake; the server certificate must
    /// chain to the configured CAs and name `host` (DNS name or IP address).
    public static func connect(host: String, port: UInt16, configuration: TLSConfiguration) throws(TLSError) -> TLSStream {
        let context = try TLSContext(role: .client, configuration: configuration)
        return try connect(host: host, port: port, context: context)
    }

    public static func connect(host: String, port: UInt16, context: TLSContext) throws(TLSError) -> TLSStream {
        let socket: Socket
        do { socket = try Socket.connect(host: host, port: port, timeout: context.configuration.timeout) } catch {
            throw .socket(error)
        }
        return try upgrade(socket, context: context, serverName: host)
    }

    /// Async ``connect(host:port:configuration:)``: the blocking work runs off the cooperative pool.
    public static func connect(host: String, port: UInt16, configuration: TLSConfiguration) async throws -> TLSStream {
        try await BlockingExecutor.once("OpenSSLKit.tls-connect") { () throws(TLSError) in try connect(host: host, port: port, configuration: configuration) }
    }

    /// Performs the TLS handshake on an established plain connection (STARTTLS, or a server's
    /// accepted socket). Clients pass the expected `serverName`. The socket is taken over.
    public static func upgrade(_ socket: Socket, context: TLSContext, serverName: String? = nil) throws(TLSError) -> TLSStream {
        guard !socket.hasBufferedInput else {
            socket.close()
            throw .unexpectedDataBeforeHandshake(peer: socket.peer)
        }
        ErrorQueue.clear()
        guard let ssl = SSL_new(context.pointer) else {
            socket.close()
            throw .configuration("SSL_new: \(ErrorQueue.drain())")
        }
        socket.setTimeout(context.configuration.timeout)
        let stream = TLSStream(ssl: ssl, descriptor: socket.detachDescriptor(), peer: socket.peer, context: context,
                               interrupter: socket.interrupter)
        SSL_set_fd(ssl, stream.descriptor)
        if context.role == .client {
            guard let serverName, !serverName.isEmpty else {
                stream.close()
                throw .configuration("a client needs the server name to verify")
            }
            if isIPAddress(serverName) {
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName)
            } else {
                SSL_set1_host(ssl, serverName)
                _ = copenssl_ssl_set_tlsext_host_name(ssl, serverName)  // SNI
            }
        }
        let result = context.role == .client ? SSL_connect(ssl) : SSL_accept(ssl)
        if result != 1 {
            let reason = stream.failureReason(result, operation: "handshake")
            stream.close(notify: false)
            throw .handshakeFailed(peer: socket.peer, reason: reason)
        }
        ErrorQueue.clear()
        return stream
    }

    /// Async ``upgrade(_:context:serverName:)``.
    public static func upgrade(_ socket: Socket, context: TLSContext, serverName: String? = nil) async throws -> TLSStream {
        try await socket.executor.run { () throws(TLSError) in try upgrade(socket, context: context, serverName: serverName) }
    }

    private init(ssl: OpaquePointer, descriptor: Int32, peer: String, context: TLSContext, interrupter: ConnectionInterrupter) {
        self.ssl = ssl
        self.descriptor = descriptor
        self.peer = peer
        self.context = context
        self.interrupter = interrupter
        executor = BlockingExecutor(name: "OpenSSLKit.tls.\(peer)")
    }

    deinit {
        close(notify: false)
        SSL_free(ssl)
        executor.shutdown()
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// Why an SSL call failed, in OpenSSL's words, with the certificate verification result when it is the cause.
    private func failureReason(_ result: Int32, operation: String) -> String {
        let savedErrno = errno
        let code = SSL_get_error(ssl, result)
        let verify = SSL_get_verify_result(ssl)
        let queue = ErrorQueue.drain(fallback: "")
        if verify != X509_V_OK {
            let text = X509_verify_cert_error_string(verify).map { String(cString: $0) } ?? "error \(verify)"
            return "certificate verify failed: \(text)"
        }
        switch code {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return "\(operation) timed out after \(context.configuration.timeout) s"
        case SSL_ERROR_SYSCALL:
            if savedErrno == EAGAIN || savedErrno == EWOULDBLOCK {
                return "\(operation) timed out after \(context.configuration.timeout) s"
            }
            if !queue.isEmpty { return queue }
            return savedErrno == 0 ? "connection closed by the peer" : errnoText(savedErrno)
        case SSL_ERROR_ZERO_RETURN:
            return "connection closed by the peer"
        default:
            return Self.readable(queue)
        }
    }

    /// Keeps the reason part of each "error:0A000410:SSL routines::sslv3 alert handshake failure" entry.
    static func readable(_ queue: String) -> String {
        guard !queue.isEmpty else { return "unknown TLS error" }
        return queue.split(separator: ";").map { entry in
            let parts = entry.split(separator: ":", omittingEmptySubsequences: false)
            return parts.count >= 5 ? parts[4...].joined(separator: ":") : String(entry)
        }.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; ")
    }

    // MARK: Connection info

    /// The peer's certificate (nil for a server whose client sent none).
    public var peerCertificate: Certificate? {
        guard let x509 = SSL_get1_peer_certificate(ssl) else { return nil }
        return Certificate(handle: X509Handle(owning: x509))
    }

    /// Negotiated protocol, e.g. "TLSv1.3".
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// Negotiated cipher, e.g. "TLS_AES_256_GCM_SHA384".
    public var cipher: String {
        guard let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else { return "" }
        return String(cString: name)
    }

    // MARK: I/O

    private func receive(maxLength: Int) throws(TLSError) -> Data {
        guard !closed else { throw .socket(.closed) }
        ErrorQueue.clear()
        var chunk = [UInt8](repeating: 0, count: max(1, min(maxLength, 1 << 20)))
        let count = SSL_read(ssl, &chunk, Int32(chunk.count))
        if count > 0 { return Data(chunk.prefix(Int(count))) }
        let code = SSL_get_error(ssl, count)
        if code == SSL_ERROR_ZERO_RETURN { return Data() }
        if code == SSL_ERROR_SYSCALL && errno == 0 && ERR_peek_error() == 0 { return Data() }
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE
            || (code == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ErrorQueue.clear()
            throw .socket(.timedOut(operation: "TLS read", peer: peer))
        }
        throw .connectionFailed(peer: peer, reason: failureReason(count, operation: "read"))
    }

    public func read(maxLength: Int) throws(TLSError) -> Data {
        try buffer.read(maxLength: maxLength) { () throws(TLSError) in try receive(maxLength: maxLength) }
    }

    public func readLine(maxLength: Int) throws(TLSError) -> String? {
        try buffer.readLine(maxLength: maxLength, tooLong: .socket(.lineTooLong(peer: peer, limit: maxLength))) {
            () throws(TLSError) in try receive(maxLength: 16_384)
        }
    }

    public func write(_ data: Data) throws(TLSError) {
        guard !closed else { throw .socket(.closed) }
        guard !data.isEmpty else { return }
        ErrorQueue.clear()
        let bytes = [UInt8](data)
        var written = 0
        let result = SSL_write_ex(ssl, bytes, bytes.count, &written)
        guard result == 1 else {
            let code = SSL_get_error(ssl, result)
            if code == SSL_ERROR_WANT_WRITE || code == SSL_ERROR_WANT_READ {
                ErrorQueue.clear()
                throw .socket(.timedOut(operation: "TLS write", peer: peer))
            }
            let reason = failureReason(result, operation: "write")
            // A peer that rejects us (e.g. our client certificate, TLS 1.3) sends an alert and
            // hangs up; our write then only sees EPIPE. The alert, already received, says why.
            throw .connectionFailed(peer: peer, reason: code == SSL_ERROR_SYSCALL ? pendingAlert() ?? reason : reason)
        }
    }

    /// The reason of an alert waiting in the receive buffer, if any.
    private func pendingAlert() -> String? {
        ErrorQueue.clear()
        var byte: UInt8 = 0
        let result = SSL_read(ssl, &byte, 1)
        guard result <= 0, SSL_get_error(ssl, result) == SSL_ERROR_SSL else {
            ErrorQueue.clear()
            return nil
        }
        let queue = ErrorQueue.drain(fallback: "")
        return queue.isEmpty ? nil : Self.readable(queue)
    }

    public func readLine() throws(TLSError) -> String? { try readLine(maxLength: 65_536) }
    public func write(_ text: String) throws(TLSError) { try write(Data(text.utf8)) }

    /// Sends close_notify and closes the socket (idempotent).
    public func close() { close(notify: true) }

    private func close(notify: Bool) {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        if notify { _ = SSL_shutdown(ssl) }
        ErrorQueue.clear()
        if descriptor >= 0 {
            interrupter.close()
            descriptor = -1
        }
    }
}
