import Foundation

/// Where a request body comes from. Files and streams are sent in small pieces as libcurl
/// asks for them; nothing is loaded whole.
public enum UploadSource: Sendable {
    case data(Data)
    /// A file, read in libcurl-sized pieces (can be resent if libcurl must retry on a fresh connection).
    case file(URL)
    /// Chunks produced on the fly (e.g. an MTOM multipart); `length` nil means chunked encoding.
    /// A stream can be read once: a transfer that needs to resend it fails with `.uploadFailed`.
    case stream(ChunkStream, length: Int64? = nil)
}

/// A one-shot producer of body chunks, read on a transfer thread.
public final class ChunkStream: @unchecked Sendable {
    private let nextChunk: @Sendable () throws -> Data?
    private let onClose: @Sendable () -> Void

    /// `next` is called on a transfer thread (it may block) and returns nil at the end.
    public init(_ next: @escaping @Sendable () throws -> Data?) {
        self.nextChunk = next
        self.onClose = {}
    }

    /// Bridges an async sequence of chunks: it is iterated in a task, at most two chunks ahead
    /// of the network, so memory stays bounded whatever the body size.
    public init<S: AsyncSequence & Sendable>(_ sequence: S) where S.Element == Data {
        let bridge = AsyncChunkBridge(sequence)
        self.nextChunk = { try bridge.next() }
        self.onClose = { bridge.close() }
    }

    func next() throws -> Data? { try nextChunk() }
    func close() { onClose() }
}

/// Hands chunks from an async producer task to a blocking consumer (the transfer thread).
private final class AsyncChunkBridge: @unchecked Sendable {
    private let condition = NSCondition()
    private var buffer: [Data] = []
    private var finished = false
    private var failure: Error?
    private var closed = false
    private var waitingProducer: CheckedContinuation<Void, Never>?
    private var task: Task<Void, Never>?
    private let start: @Sendable (AsyncChunkBridge) -> Task<Void, Never>
    private static let capacity = 2

    init<S: AsyncSequence & Sendable>(_ sequence: S) where S.Element == Data {
        start = { bridge in
            Task {
                do {
                    for try await chunk in sequence {
                        guard await bridge.push(chunk) else { return }
                    }
                    bridge.finish(nil)
                } catch {
                    bridge.finish(error)
                }
            }
        }
    }

    /// Returns false when the consumer has gone away.
    private func push(_ chunk: Data) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            defer { condition.unlock() }
            if closed { continuation.resume(); return }
            buffer.append(chunk)
            condition.broadcast()
            if buffer.count >= Self.capacity { waitingProducer = continuation } else { continuation.resume() }
        }
        return !isClosed()
    }

    private func isClosed() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return closed
    }

    private func finish(_ error: Error?) {
        condition.lock()
        finished = true
        failure = error
        condition.broadcast()
        condition.unlock()
    }

    func next() throws -> Data? {
        condition.lock()
        defer { condition.unlock() }
        if task == nil && !closed { task = start(self) }
        while buffer.isEmpty && !finished && !closed { condition.wait() }
        if !buffer.isEmpty {
            let chunk = buffer.removeFirst()
            waitingProducer?.resume()
            waitingProducer = nil
            return chunk
        }
        if let failure { throw failure }
        return nil
    }

    func close() {
        condition.lock()
        closed = true
        waitingProducer?.resume()
        waitingProducer = nil
        task?.cancel()
        condition.broadcast()
        condition.unlock()
    }
}

/// Where a response body goes.
public enum ResponseBodyDestination: Sendable {
    /// Kept in memory, up to `limit` bytes (more fails with `.responseTooLarge`).
    case collect(limit: Int = 16 << 20)
    /// Written to a file created with mode 0600 (it may hold patient data); removed if the transfer fails.
    case file(URL)
    /// Each piece handed over in order, on a transfer thread.
    case sink(@Sendable (Data) throws -> Void)
}

/// How an upload is presented to the protocol.
public enum UploadStyle: Sendable {
    /// HTTP POST semantics (CURLOPT_POST); the method may be overridden by `customRequest`.
    case post
    /// libcurl's generic upload (CURLOPT_UPLOAD): HTTP PUT, IMAP APPEND, SMTP DATA.
    case upload
}

/// One libcurl transfer, protocol-neutral: what `HTTPClient` is built on, and what an IMAP
/// reader uses with an `imaps://` URL and a custom command.
public struct CurlTransfer: Sendable {
    public var url: URL
    /// CURLOPT_CUSTOMREQUEST: an HTTP method other than GET/POST, or an IMAP command.
    public var customRequest: String?
    /// Request header lines ("Name: value"), HTTP only.
    public var headerLines: [String]
    public var upload: UploadSource?
    public var uploadStyle: UploadStyle
    /// Ask for headers only (HTTP HEAD).
    public var noBody: Bool
    public var download: ResponseBodyDestination
    /// Login for protocols that need one (IMAP); `loginOptions` e.g. "AUTH=EXTERNAL".
    public var username: String?
    public var password: TLSPassphrase?
    public var loginOptions: String?
    /// Overrides the session's total timeout for this transfer (large uploads).
    public var totalTimeout: Duration?

    public init(
        url: URL,
        customRequest: String? = nil,
        headerLines: [String] = [],
        upload: UploadSource? = nil,
        uploadStyle: UploadStyle = .post,
        noBody: Bool = false,
        download: ResponseBodyDestination = .collect(),
        username: String? = nil,
        password: TLSPassphrase? = nil,
        loginOptions: String? = nil,
        totalTimeout: Duration? = nil
    ) {
        self.url = url
        self.customRequest = customRequest
        self.headerLines = headerLines
        self.upload = upload
        self.uploadStyle = uploadStyle
        self.noBody = noBody
        self.download = download
        self.username = username
        self.password = password
        self.loginOptions = loginOptions
        self.totalTimeout = totalTimeout
    }
}

/// Timings from libcurl, each measured from the start of the transfer. On a reused
/// connection `connected` and `tlsEstablished` are zero.
public struct TransferTiming: Sendable, Hashable {
    public var nameLookup: Duration
    public var connected: Duration
    public var tlsEstablished: Duration
    public var firstByte: Duration
    public var total: Duration
    /// New connections opened by this transfer (0 = an existing connection was reused).
    public var newConnections: Int
    public var connectionReused: Bool { newConnections == 0 }
    /// Time spent in the TLS handshake on a new connection.
    public var tlsHandshake: Duration { tlsEstablished > connected ? tlsEstablished - connected : .zero }
}

/// What a finished transfer produced.
public struct TransferResult: Sendable {
    /// HTTP status, or the last IMAP/SMTP response code.
    public var responseCode: Int
    /// Raw header lines of the final response (HTTP), or the server's untagged responses (IMAP),
    /// without line breaks.
    public var headerLines: [String]
    /// The body, when collected (empty when sent to a file or sink).
    public var body: Data
    public var timing: TransferTiming
}

/// Timeouts applied to every transfer of a session.
public struct CurlTimeouts: Sendable, Hashable {
    public var connect: Duration
    /// Whole transfer, connect included; nil means no limit (then rely on `lowSpeed`).
    public var total: Duration?
    /// Abort when fewer than `bytesPerSecond` flow for `duration`.
    public var lowSpeed: (bytesPerSecond: Int, duration: Duration)? {
        get { lowSpeedLimit.map { ($0.bytes, $0.duration) } }
        set { lowSpeedLimit = newValue.map { LowSpeed($0.bytesPerSecond, $0.duration) } }
    }
    private var lowSpeedLimit: LowSpeed?
    private struct LowSpeed: Sendable, Hashable {
        var bytes: Int, duration: Duration
        init(_ bytes: Int, _ duration: Duration) { self.bytes = bytes; self.duration = duration }
    }

    public init(
        connect: Duration = .seconds(15),
        total: Duration? = .seconds(300),
        lowSpeed: (bytesPerSecond: Int, duration: Duration)? = (1024, .seconds(60))
    ) {
        self.connect = connect
        self.total = total
        self.lowSpeedLimit = lowSpeed.map { LowSpeed($0.bytesPerSecond, $0.duration) }
    }
}
