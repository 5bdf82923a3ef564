import Foundation
import OpenSSLKit
import Synchronization

/// Budgets of one request: hostile input is normal input, so every part a client sends is bounded.
public struct HTTPLimits: Sendable {
    /// The request line ("GET /path HTTP/1.1").
    public var maxRequestLineBytes: Int
    /// All header lines together (request line excluded); chunked trailers count here too.
    public var maxHeaderBytes: Int
    public var maxHeaderCount: Int
    /// The body, by Content-Length or once de-chunked.
    public var maxBodyBytes: Int
    /// From the request's first byte to its last: a client trickling bytes is closed at this
    /// point (idle waits between requests are the connection's own read timeout).
    public var requestDeadline: Duration

    public init(maxRequestLineBytes: Int = 8192, maxHeaderBytes: Int = 32 << 10, maxHeaderCount: Int = 100,
                maxBodyBytes: Int = 1 << 20, requestDeadline: Duration = .seconds(30)) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.requestDeadline = requestDeadline
    }
}

/// One HTTP/1.x request.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The request target as sent ("/ready?verbose").
    public var target: String
    /// "HTTP/1.1" or "HTTP/1.0".
    public var version: String
    /// Header fields in arrival order, names as sent.
    public var headers: [(name: String, value: String)]
    public var body: Data

    /// The target without its query.
    public var path: String { String(target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "") }

    /// The first field named `name` (case-insensitive), its value trimmed.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// Whether the connection ends after this request (Connection: close, or HTTP/1.0 without keep-alive).
    public var wantsClose: Bool {
        let connection = header("connection")?.lowercased() ?? ""
        if connection.contains("close") { return true }
        return version == "HTTP/1.0" && !connection.contains("keep-alive")
    }
}

/// Why a request could not be read. ``response`` is what to answer before closing (nil when
/// the connection is already gone).
public enum HTTPReadError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    case requestLineTooLong(limit: Int)
    case headersTooLarge(limit: Int)
    case tooManyHeaders(limit: Int)
    case bodyTooLarge(limit: Int)
    case unsupportedTransferEncoding(String)
    /// The request was not complete within ``HTTPLimits/requestDeadline``; the connection was cut.
    case deadlineExceeded(Duration)
    /// The client went away (or the read failed) inside a request.
    case connectionLost(String)

    public var description: String {
        switch self {
        case .malformed(let what): "malformed request: \(what)"
        case .requestLineTooLong(let limit): "request line longer than \(limit) bytes"
        case .headersTooLarge(let limit): "request headers larger than \(limit) bytes"
        case .tooManyHeaders(let limit): "more than \(limit) request header fields"
        case .bodyTooLarge(let limit): "request body larger than \(limit) bytes"
        case .unsupportedTransferEncoding(let coding): "unsupported transfer coding \"\(coding)\": send Content-Length or chunked"
        case .deadlineExceeded(let deadline): "request not complete within \(deadline): connection closed"
        case .connectionLost(let reason): "connection lost inside a request: \(reason)"
        }
    }

    /// The status to answer with (the connection is closed after it).
    public var status: Int? {
        switch self {
        case .malformed: 400
        case .requestLineTooLong: 414
        case .headersTooLarge, .tooManyHeaders: 431
        case .bodyTooLarge: 413
        case .unsupportedTransferEncoding: 501
        case .deadlineExceeded, .connectionLost: nil
        }
    }

    public var response: HTTPResponse? {
        status.map { HTTPResponse(status: $0, contentType: "text/plain; charset=utf-8", body: Data((description + "\n").utf8), close: true) }
    }
}

/// Reads requests one after the other from one connection (keep-alive and pipelining: bytes
/// read past a request are kept for the next). Blocking: use it on the connection's thread, or
/// through ``next()-swift.method`` async, which runs it on the connection's lane.
public final class HTTPRequestReader: @unchecked Sendable {
    // Only touched by one call at a time (the connection's thread or its lane).
    private let connection: any Connection
    public let limits: HTTPLimits
    private var buffer = Data()
    private var deadline: Watchdog?

    public init(_ connection: any Connection, limits: HTTPLimits = HTTPLimits()) {
        self.connection = connection
        self.limits = limits
    }

    /// The next request, or nil when the client closed (or went silent past the connection's
    /// read timeout) before sending one.
    public func next() throws(HTTPReadError) -> HTTPRequest? {
        defer {
            deadline?.disarm()
            deadline = nil
        }
        // Blank lines before a request are tolerated (RFC 9112 §2.2).
        while true {
            while let first = buffer.first, first == UInt8(ascii: "\r") || first == UInt8(ascii: "\n") { buffer.removeFirst() }
            if !buffer.isEmpty { break }
            guard try fill(startingRequest: true) else { return nil }
        }
        let head = try readHead()
        // "\r\n" is one Character in Swift: split on both forms.
        var lines = head.split(omittingEmptySubsequences: false) { $0 == "\r\n" || $0 == "\n" }
        guard !lines.contains(where: { $0.contains("\r") }) else { throw .malformed("bare CR in the request head") }
        let requestLine = lines.removeFirst()
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0", !parts[0].isEmpty, !parts[1].isEmpty,
              parts[0].allSatisfy({ $0.isLetter && $0.isUppercase }) else {
            throw .malformed("request line")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                  !line[..<colon].contains(where: { $0 == " " || $0 == "\t" }) else {
                throw .malformed("header line")  // also refuses obsolete line folding
            }
            guard headers.count < limits.maxHeaderCount else { throw .tooManyHeaders(limit: limits.maxHeaderCount) }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var request = HTTPRequest(method: String(parts[0]), target: String(parts[1]), version: String(parts[2]), headers: headers, body: Data())
        request.body = try readBody(request)
        return request
    }

    /// The async form: runs ``next()`` on the connection's lane, never on the cooperative pool.
    public func next() async throws(HTTPReadError) -> HTTPRequest? {
        let result: Result<HTTPRequest?, HTTPReadError>
        do {
            result = try await connection.executor.run { [self] in Result { () throws(HTTPReadError) in try next() } }
        } catch {
            throw .connectionLost("\(error)")
        }
        return try result.get()
    }

    // MARK: - Head

    /// Request line and header lines, as text (latin-1 never fails; non-ASCII is refused later by use).
    private func readHead() throws(HTTPReadError) -> Substring {
        var scanned = 0
        while true {
            if let end = Self.endOfHead(buffer, from: scanned) {
                let headBytes = buffer.prefix(end.headLength)
                let requestLineLength = headBytes.firstIndex(of: UInt8(ascii: "\n")).map { $0 - headBytes.startIndex } ?? headBytes.count
                guard requestLineLength <= limits.maxRequestLineBytes else { throw .requestLineTooLong(limit: limits.maxRequestLineBytes) }
                guard headBytes.count - requestLineLength <= limits.maxHeaderBytes else { throw .headersTooLarge(limit: limits.maxHeaderBytes) }
                buffer.removeFirst(end.consumed)
                return Substring(String(decoding: headBytes, as: UTF8.self))
            }
            scanned = max(0, buffer.count - 3)
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                guard newline - buffer.startIndex <= limits.maxRequestLineBytes else { throw .requestLineTooLong(limit: limits.maxRequestLineBytes) }
                guard buffer.count <= limits.maxRequestLineBytes + limits.maxHeaderBytes + 4 else { throw .headersTooLarge(limit: limits.maxHeaderBytes) }
            } else if buffer.count > limits.maxRequestLineBytes {
                throw .requestLineTooLong(limit: limits.maxRequestLineBytes)
            }
            guard try fill(startingRequest: false) else { throw .connectionLost("closed inside the request headers") }
        }
    }

    /// Where the head ends ("\r\n\r\n" or "\n\n"): its length without the blank line, and the bytes to consume.
    static func endOfHead(_ data: Data, from offset: Int) -> (headLength: Int, consumed: Int)? {
        var index = data.startIndex + offset
        while let newline = data[index...].firstIndex(of: UInt8(ascii: "\n")) {
            var next = newline + 1
            if next < data.endIndex, data[next] == UInt8(ascii: "\r") { next += 1 }
            guard next < data.endIndex else { return nil }
            if data[next] == UInt8(ascii: "\n") {
                let lineEnd = newline > data.startIndex && data[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline
                return (lineEnd - data.startIndex, next + 1 - data.startIndex)
            }
            index = newline + 1
        }
        return nil
    }

    // MARK: - Body

    private func readBody(_ request: HTTPRequest) throws(HTTPReadError) -> Data {
        let codings = request.headers.filter { $0.name.lowercased() == "transfer-encoding" }.map { $0.value.lowercased() }
        let lengths = request.headers.filter { $0.name.lowercased() == "content-length" }.map(\.value)
        if !codings.isEmpty {
            // Both, or a coding other than chunked alone: the classic request-smuggling shapes.
            guard lengths.isEmpty else { throw .malformed("both Transfer-Encoding and Content-Length") }
            guard codings == ["chunked"] else { throw .unsupportedTransferEncoding(codings.joined(separator: ", ")) }
            return try readChunked()
        }
        guard let text = lengths.first else { return Data() }
        guard Set(lengths).count == 1, !text.isEmpty, text.count <= 18, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber),
              let length = Int(text) else {
            throw .malformed("Content-Length")
        }
        guard length <= limits.maxBodyBytes else { throw .bodyTooLarge(limit: limits.maxBodyBytes) }
        return try take(length)
    }

    private func readChunked() throws(HTTPReadError) -> Data {
        var body = Data()
        while true {
            let sizeLine = try line(limit: 1024, what: "chunk size")
            let sizeText = sizeLine.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first?
                .trimmingCharacters(in: .whitespaces) ?? ""
            guard !sizeText.isEmpty, sizeText.count <= 15, let size = Int(sizeText, radix: 16), size >= 0 else {
                throw .malformed("chunk size")
            }
            if size == 0 { break }
            guard body.count + size <= limits.maxBodyBytes else { throw .bodyTooLarge(limit: limits.maxBodyBytes) }
            body.append(try take(size))
            guard try line(limit: 2, what: "chunk end").isEmpty else { throw .malformed("chunk not followed by CRLF") }
        }
        var trailerBytes = 0
        while true {
            let trailer = try line(limit: limits.maxHeaderBytes, what: "trailer")
            if trailer.isEmpty { return body }
            trailerBytes += trailer.utf8.count
            guard trailerBytes <= limits.maxHeaderBytes else { throw .headersTooLarge(limit: limits.maxHeaderBytes) }
        }
    }

    /// One line without its line ending.
    private func line(limit: Int, what: String) throws(HTTPReadError) -> String {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var line = buffer[buffer.startIndex..<newline]
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                guard line.count <= limit else { throw .malformed("\(what) line too long") }
                let text = String(decoding: line, as: UTF8.self)
                buffer.removeFirst(newline + 1 - buffer.startIndex)
                return text
            }
            guard buffer.count <= limit + 1 else { throw .malformed("\(what) line too long") }
            guard try fill(startingRequest: false) else { throw .connectionLost("closed inside the request body") }
        }
    }

    /// Exactly `count` body bytes.
    private func take(_ count: Int) throws(HTTPReadError) -> Data {
        if buffer.count < count { buffer.reserveCapacity(count) }
        while buffer.count < count {
            guard try fill(startingRequest: false, wanted: count - buffer.count) else {
                throw .connectionLost("closed inside the request body")
            }
        }
        let data = Data(buffer.prefix(count))
        buffer.removeFirst(count)
        return data
    }

    // MARK: - Reading

    /// Appends what the connection has; false at end of stream. The first bytes of a request
    /// start its deadline.
    private func fill(startingRequest: Bool, wanted: Int = 0) throws(HTTPReadError) -> Bool {
        let chunk: Data
        do {
            chunk = try connection.read(maxLength: min(1 << 20, max(65_536, wanted)))
        } catch {
            if let deadline, deadline.fired { throw .deadlineExceeded(limits.requestDeadline) }
            if startingRequest && buffer.isEmpty { return false }  // idle timeout between requests: a clean end
            throw .connectionLost("\(error)")
        }
        if chunk.isEmpty {
            if let deadline, deadline.fired { throw .deadlineExceeded(limits.requestDeadline) }
            return false
        }
        if deadline == nil {
            let interrupter = connection.interrupter
            deadline = Watchdog(after: limits.requestDeadline) { interrupter.interrupt() }
        }
        buffer.append(chunk)
        return true
    }
}

/// Calls `action` once after `delay` unless disarmed first (the call and disarming never overlap).
final class Watchdog: Sendable {
    private let state = Mutex((armed: true, fired: false))

    init(after delay: Duration, _ action: @escaping @Sendable () -> Void) {
        let (seconds, attoseconds) = delay.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
            state.withLock { s in
                guard s.armed else { return }
                s.fired = true
                action()
            }
        }
    }

    func disarm() { state.withLock { $0.armed = false } }
    var fired: Bool { state.withLock { $0.fired } }
}
