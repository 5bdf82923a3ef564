import BlockingIO
import CCurl
import Foundation

/// Settings of a `CurlSession` (and of an `HTTPClient`).
public struct CurlSessionConfiguration: Sendable {
    public var tls: TLSClientOptions
    public var timeouts: CurlTimeouts
    /// Transfers running at once, hence open connections (a session normally talks to one host).
    public var maxConnections: Int
    public var userAgent: String

    public init(tls: TLSClientOptions, timeouts: CurlTimeouts = CurlTimeouts(), maxConnections: Int = 4,
                userAgent: String = "Passerelle") {
        self.tls = tls
        self.timeouts = timeouts
        self.maxConnections = max(1, maxConnections)
        self.userAgent = userAgent
    }
}

/// Runs `CurlTransfer`s with fixed TLS options on a few dedicated threads, keeping
/// connections and TLS sessions alive between transfers.
///
/// `curl_easy_perform` blocks, so it never runs on Swift's cooperative pool: each transfer
/// goes to the session's bounded ``BlockingExecutor`` (at most `maxConnections` threads) and
/// resumes the caller when done. Easy handles are reused most-recently-used first, so
/// back-to-back transfers land on the handle that holds the open connection.
public final class CurlSession: Sendable {
    public let configuration: CurlSessionConfiguration
    private let executor: BlockingExecutor
    private let handles = HandlePool()

    public init(configuration: CurlSessionConfiguration) throws(CurlError) {
        _ = CurlGlobal.initialized
        try configuration.tls.validate()
        self.configuration = configuration
        self.executor = BlockingExecutor(name: "CurlKit transfer", threads: configuration.maxConnections)
    }

    /// Lets the threads finish queued transfers and exit; the handles go with the last one.
    deinit { executor.shutdown() }

    /// Runs one transfer. Throws `CurlError`, or `CancellationError` when the task is cancelled
    /// (checked by libcurl's progress callback, so within about a second).
    public func perform(_ transfer: CurlTransfer) async throws -> TransferResult {
        let cancel = CancelFlag()
        let configuration = self.configuration
        let handles = self.handles
        return try await withTaskCancellationHandler {
            try await executor.run {
                if cancel.isSet { throw CancellationError() }
                let handle = handles.take()
                // Back in the idle pool before the caller resumes, so a request sent right after
                // finds the open connection instead of making a new one.
                defer { handles.put(handle) }
                return try handle.perform(transfer, configuration: configuration, share: handles.share, cancel: cancel)
            }
        } onCancel: {
            cancel.set()
        }
    }
}

/// The idle easy handles of one session (most recently used last) and their shared caches.
final class HandlePool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [EasyHandle] = []
    let share = CurlShare()

    func take() -> EasyHandle { lock.withLock { idle.popLast() } ?? EasyHandle() }
    func put(_ handle: EasyHandle) { lock.withLock { idle.append(handle) } }

    // The handles point at the share: clean them up first.
    deinit { idle.removeAll() }
}

/// A CURLSH sharing the TLS session cache and DNS cache between a session's handles.
final class CurlShare: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    private let locks: [NSLock]

    init() {
        _ = CurlGlobal.initialized
        raw = curl_share_init()!
        locks = (0..<Int(CURL_LOCK_DATA_LAST.rawValue)).map { _ in NSLock() }
        let lock: @convention(c) (UnsafeMutableRawPointer?, curl_lock_data, curl_lock_access, UnsafeMutableRawPointer?) -> Void = {
            _, data, _, user in
            Unmanaged<CurlShare>.fromOpaque(user!).takeUnretainedValue().locks[Int(data.rawValue)].lock()
        }
        let unlock: @convention(c) (UnsafeMutableRawPointer?, curl_lock_data, UnsafeMutableRawPointer?) -> Void = { _, data, user in
            Unmanaged<CurlShare>.fromOpaque(user!).takeUnretainedValue().locks[Int(data.rawValue)].unlock()
        }
        ccurl_share_setopt_lock_function(raw, lock)
        ccurl_share_setopt_unlock_function(raw, unlock)
        ccurl_share_setopt_pointer(raw, CURLSHOPT_USERDATA, Unmanaged.passUnretained(self).toOpaque())
        // Not CURL_LOCK_DATA_CONNECT: libcurl documents shared connection caches as unsafe across threads.
        ccurl_share_setopt_long(raw, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_SSL_SESSION.rawValue))
        ccurl_share_setopt_long(raw, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_DNS.rawValue))
    }

    deinit { curl_share_cleanup(raw) }
}

/// One CURL easy handle. It keeps its connection cache across `curl_easy_reset`.
final class EasyHandle {
    private let raw: UnsafeMutableRawPointer
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init() {
        _ = CurlGlobal.initialized
        raw = curl_easy_init()!
    }

    deinit {
        curl_easy_cleanup(raw)
        errorBuffer.deallocate()
    }

    private func set(_ option: CURLoption, _ value: Int) throws(CurlError) {
        try check(ccurl_setopt_long(raw, option, value))
    }

    private func set(_ option: CURLoption, _ value: String?) throws(CurlError) {
        try check(ccurl_setopt_string(raw, option, value))
    }

    /// A blob option; libcurl copies the bytes (CURL_BLOB_COPY), so they need only live for the call.
    private func setBlob(_ option: CURLoption, _ bytes: UnsafeRawBufferPointer) -> CURLcode {
        var blob = curl_blob(data: UnsafeMutableRawPointer(mutating: bytes.baseAddress), len: bytes.count, flags: UInt32(CURL_BLOB_COPY))
        return withUnsafeMutablePointer(to: &blob) { ccurl_setopt_pointer(raw, option, $0) }
    }

    private func check(_ code: CURLcode) throws(CurlError) {
        guard code == CURLE_OK else {
            throw CurlError(code: code, detail: "setting a libcurl option failed: \(String(cString: curl_easy_strerror(code)))", host: nil)
        }
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }

    func perform(_ transfer: CurlTransfer, configuration: CurlSessionConfiguration, share: CurlShare,
                 cancel: CancelFlag) throws -> TransferResult {
        curl_easy_reset(raw)
        let host = transfer.url.host
        let reader = try transfer.upload.map { source throws(CurlError) in try UploadReader(source) }
        defer { reader?.close() }
        let writer = try DownloadWriter(transfer.download)
        let isHTTP = transfer.url.scheme?.lowercased().hasPrefix("http") ?? false
        let context = TransferContext(reader: reader, writer: writer, cancel: cancel, http: isHTTP)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        var succeeded = false
        defer { writer.finish(success: succeeded) }

        try withExtendedLifetime(context) { () throws(CurlError) in
            errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
            try check(ccurl_setopt_pointer(raw, CURLOPT_ERRORBUFFER, errorBuffer))
            try set(CURLOPT_NOSIGNAL, 1)  // signals and threads do not mix
            try check(ccurl_setopt_pointer(raw, CURLOPT_SHARE, share.raw))
            try set(CURLOPT_URL, transfer.url.absoluteString)
            // TLS or nothing: plain imap/smtp must upgrade with STARTTLS (USE_SSL=ALL), no http.
            try set(CURLOPT_PROTOCOLS_STR, "https,imaps,imap,smtps,smtp")
            try set(CURLOPT_REDIR_PROTOCOLS_STR, "https")
            try set(CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue))
            try set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))  // SOAP endpoints speak HTTP/1.1
            try set(CURLOPT_USERAGENT, configuration.userAgent)
            try set(CURLOPT_TCP_KEEPALIVE, 1)
            try set(CURLOPT_MAXCONNECTS, 2)

            let timeouts = configuration.timeouts
            try set(CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(timeouts.connect))
            if let total = transfer.totalTimeout ?? timeouts.total {
                try set(CURLOPT_TIMEOUT_MS, Self.milliseconds(total))
            }
            if let lowSpeed = timeouts.lowSpeed {
                try set(CURLOPT_LOW_SPEED_LIMIT, lowSpeed.bytesPerSecond)
                try set(CURLOPT_LOW_SPEED_TIME, max(1, Self.milliseconds(lowSpeed.duration) / 1000))
            }
            try applyTLS(configuration.tls)

            if let username = transfer.username { try set(CURLOPT_USERNAME, username) }
            if let password = transfer.password { try set(CURLOPT_PASSWORD, password.value) }
            if let loginOptions = transfer.loginOptions { try set(CURLOPT_LOGIN_OPTIONS, loginOptions) }

            try check(ccurl_setopt_write_function(raw, curlWriteCallback))
            try check(ccurl_setopt_pointer(raw, CURLOPT_WRITEDATA, context.opaque))
            try check(ccurl_setopt_header_function(raw, curlHeaderCallback))
            try check(ccurl_setopt_pointer(raw, CURLOPT_HEADERDATA, context.opaque))
            try check(ccurl_setopt_xferinfo_function(raw, curlProgressCallback))
            try check(ccurl_setopt_pointer(raw, CURLOPT_XFERINFODATA, context.opaque))
            try set(CURLOPT_NOPROGRESS, 0)

            if let reader {
                try check(ccurl_setopt_read_function(raw, curlReadCallback))
                try check(ccurl_setopt_pointer(raw, CURLOPT_READDATA, context.opaque))
                try check(ccurl_setopt_seek_function(raw, curlSeekCallback))
                try check(ccurl_setopt_pointer(raw, CURLOPT_SEEKDATA, context.opaque))
                switch transfer.uploadStyle {
                case .post:
                    try set(CURLOPT_POST, 1)
                    try check(ccurl_setopt_off_t(raw, CURLOPT_POSTFIELDSIZE_LARGE, Int(reader.length ?? -1)))
                case .upload:
                    try set(CURLOPT_UPLOAD, 1)
                    try check(ccurl_setopt_off_t(raw, CURLOPT_INFILESIZE_LARGE, Int(reader.length ?? -1)))
                }
            }
            if transfer.noBody { try set(CURLOPT_NOBODY, 1) }
            if let customRequest = transfer.customRequest { try set(CURLOPT_CUSTOMREQUEST, customRequest) }
            for line in transfer.headerLines { headerList = curl_slist_append(headerList, line) }
            if let headerList { try check(ccurl_setopt_pointer(raw, CURLOPT_HTTPHEADER, headerList)) }
        }

        let code = withExtendedLifetime(context) { curl_easy_perform(raw) }
        guard code == CURLE_OK else {
            if cancel.isSet && code == CURLE_ABORTED_BY_CALLBACK { throw CancellationError() }
            if code == CURLE_WRITE_ERROR, var failure = writer.failure {
                failure.host = host
                throw failure
            }
            if code == CURLE_ABORTED_BY_CALLBACK || code == CURLE_READ_ERROR, let message = context.uploadFailure {
                throw CurlError(kind: .uploadFailed, code: Int32(code.rawValue), codeName: CurlError.name(of: Int32(code.rawValue)),
                                detail: message, host: host)
            }
            throw CurlError(code: code, detail: String(cString: errorBuffer), host: host)
        }
        succeeded = true
        return TransferResult(responseCode: getLong(CURLINFO_RESPONSE_CODE), headerLines: context.headerLines,
                              body: writer.body, timing: timing())
    }

    private func applyTLS(_ tls: TLSClientOptions) throws(CurlError) {
        try set(CURLOPT_SSL_VERIFYPEER, 1)
        try set(CURLOPT_SSL_VERIFYHOST, 2)
        try set(CURLOPT_CAINFO, tls.caBundle.path)
        try set(CURLOPT_CAPATH, nil)  // Debian's libcurl defaults to /etc/ssl/certs: trust our bundle only
        let minimum = tls.minimumVersion == .v1_2 ? CURL_SSLVERSION_TLSv1_2 : CURL_SSLVERSION_TLSv1_3
        var version = Int(minimum)
        switch tls.maximumVersion {
        case .v1_2?: version |= Int(CURL_SSLVERSION_MAX_TLSv1_2)
        case .v1_3?: version |= Int(CURL_SSLVERSION_MAX_TLSv1_3)
        case nil: break
        }
        try set(CURLOPT_SSLVERSION, version)
        try set(CURLOPT_SSL_CIPHER_LIST, tls.tls12Ciphers)
        try set(CURLOPT_TLS13_CIPHERS, tls.tls13CipherSuites)
        if let crl = tls.crlFile { try set(CURLOPT_CRLFILE, crl.path) }
        switch tls.clientIdentity {
        case .pkcs12(let file, let passphrase)?:
            try set(CURLOPT_SSLCERT, file.path)
            try set(CURLOPT_SSLCERTTYPE, "P12")
            try set(CURLOPT_KEYPASSWD, passphrase.value)
        case .pem(let certificate, let key, let passphrase)?:
            try set(CURLOPT_SSLCERT, certificate.path)
            try set(CURLOPT_SSLCERTTYPE, "PEM")
            try set(CURLOPT_SSLKEY, key.path)
            try set(CURLOPT_SSLKEYTYPE, "PEM")
            if let passphrase { try set(CURLOPT_KEYPASSWD, passphrase.value) }
        case .memory(let chain, let key)?:
            try check(chain.withUnsafeBytes { setBlob(CURLOPT_SSLCERT_BLOB, $0) })
            try set(CURLOPT_SSLCERTTYPE, "PEM")
            try check(key.withBytes { setBlob(CURLOPT_SSLKEY_BLOB, $0) })
            try set(CURLOPT_SSLKEYTYPE, "PEM")
        case nil:
            break
        }
    }

    private func getLong(_ info: CURLINFO) -> Int {
        var value = 0
        _ = ccurl_getinfo_long(raw, info, &value)
        return value
    }

    private func getDuration(_ info: CURLINFO) -> Duration {
        var value: curl_off_t = 0
        _ = ccurl_getinfo_off_t(raw, info, &value)
        return .microseconds(value)
    }

    private func timing() -> TransferTiming {
        TransferTiming(
            nameLookup: getDuration(CURLINFO_NAMELOOKUP_TIME_T),
            connected: getDuration(CURLINFO_CONNECT_TIME_T),
            tlsEstablished: getDuration(CURLINFO_APPCONNECT_TIME_T),
            firstByte: getDuration(CURLINFO_STARTTRANSFER_TIME_T),
            total: getDuration(CURLINFO_TOTAL_TIME_T),
            newConnections: getLong(CURLINFO_NUM_CONNECTS)
        )
    }
}
