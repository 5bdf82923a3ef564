import Foundation

/// HTTP header fields: ordered, multi-valued, looked up case-insensitively.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}
    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { add(name, value) }
    }

    /// Appends a field (keeps existing ones with the same name).
    public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    /// Replaces every field with this name.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    public mutating func remove(_ name: String) {
        fields.removeAll { Self.sameName($0.name, name) }
    }

    /// The first value for `name`.
    public subscript(name: String) -> String? { values(for: name).first }

    /// Every value for `name`, in order.
    public func values(for name: String) -> [String] {
        fields.filter { Self.sameName($0.name, name) }.map(\.value)
    }

    /// Field names are ASCII tokens (RFC 9110 §5.1), compared with ASCII case folded, byte by
    /// byte: Foundation's `caseInsensitiveCompare` goes through NSString on Linux, a cost paid
    /// several times per request.
    static func sameName(_ a: String, _ b: String) -> Bool {
        func folded(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
        return a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { folded($0) == folded($1) }
    }

    /// `text` without the spaces and tabs around it (HTTP's optional whitespace, RFC 9110 §5.6.3).
    static func trimmingOWS(_ text: Substring) -> String {
        func isOWS(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
        let bytes = text.utf8
        guard let first = bytes.firstIndex(where: { !isOWS($0) }), let last = bytes.lastIndex(where: { !isOWS($0) }) else { return "" }
        return String(text[first..<bytes.index(after: last)])  // `last` ends a scalar: OWS or nothing follows
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }
}

/// An HTTP request. Only `https` URLs are accepted.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: URL
    public var headers: HTTPHeaders
    public var body: UploadSource?
    public var responseBody: ResponseBodyDestination
    /// Overrides the client's total timeout for this request.
    public var timeout: Duration?

    public init(method: String = "GET", url: URL, headers: HTTPHeaders = HTTPHeaders(), body: UploadSource? = nil,
                responseBody: ResponseBodyDestination = .collect(), timeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.responseBody = responseBody
        self.timeout = timeout
    }
}

/// An HTTP response, whatever its status (4xx/5xx are responses, not errors).
public struct HTTPResponse: Sendable {
    public var status: Int
    /// The status line's reason phrase, as the server sent it.
    public var reason: String
    public var headers: HTTPHeaders
    /// The body when collected; empty when it went to a file or sink.
    public var body: Data
    public var timing: TransferTiming
}

/// An HTTPS client with mutual TLS, built on `CurlSession`.
///
/// Guarantees: the server is always verified against `TLSClientOptions.caBundle` only (peer
/// and host name), requests never leave over plain HTTP, bodies from files or streams are
/// sent piecewise (never loaded whole), connections and TLS sessions are reused, and
/// `curl_easy_perform` runs on the client's own threads, not on the cooperative pool.
public final class HTTPClient: Sendable {
    public let session: CurlSession

    /// - Parameter maxConnectionsPerHost: requests in flight at once (a client normally serves one endpoint).
    public init(tls: TLSClientOptions, timeouts: CurlTimeouts = CurlTimeouts(), maxConnectionsPerHost: Int = 4,
                userAgent: String = "Passerelle") throws(CurlError) {
        session = try CurlSession(configuration: CurlSessionConfiguration(
            tls: tls, timeouts: timeouts, maxConnections: maxConnectionsPerHost, userAgent: userAgent))
    }

    /// Sends a request. Throws `CurlError` (classified) or `CancellationError`.
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard request.url.scheme?.lowercased() == "https" else {
            throw CurlError(kind: .invalidRequest, code: 0, codeName: "none",
                            detail: "only https URLs are allowed, got scheme \(request.url.scheme ?? "none")",
                            host: request.url.host)
        }
        let method = request.method.uppercased()
        var transfer = CurlTransfer(url: request.url, download: request.responseBody, totalTimeout: request.timeout)
        transfer.headerLines = request.headers.map { "\($0.name): \($0.value)" }
        if let body = request.body {
            transfer.upload = body
            transfer.uploadStyle = method == "PUT" ? .upload : .post
            if method != "POST" && method != "PUT" { transfer.customRequest = method }
        } else if method == "HEAD" {
            transfer.noBody = true
        } else if method != "GET" {
            transfer.customRequest = method
        }
        let result = try await session.perform(transfer)
        return Self.response(from: result)
    }

    static func response(from result: TransferResult) -> HTTPResponse {
        var headers = HTTPHeaders()
        var reason = ""
        for line in result.headerLines {
            if line.hasPrefix("HTTP/") {
                // "HTTP/1.1 503 Service Unavailable"
                reason = line.split(separator: " ", maxSplits: 2).dropFirst(2).first.map(String.init) ?? ""
            } else if let colon = line.firstIndex(of: ":") {
                headers.add(HTTPHeaders.trimmingOWS(line[..<colon]), HTTPHeaders.trimmingOWS(line[line.index(after: colon)...]))
            }
        }
        return HTTPResponse(status: result.responseCode, reason: reason, headers: headers, body: result.body,
                            timing: result.timing)
    }
}
