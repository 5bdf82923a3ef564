import Foundation
import OpenSSLKit

/// A minimal HTTP/1.1 request reader: request line, headers, body by Content-Length or
/// chunked transfer encoding. Enough for the local endpoints, not a general server.
struct HTTPMessage {
    var method: String
    var path: String
    /// Header names lower-cased.
    var headers: [String: String]
    var body: Data

    var wantsClose: Bool { headers["connection"]?.lowercased() == "close" }

    static let maximumBody = 256 << 20

    /// Nil at a clean end of stream before a request line.
    static func read(from stream: TLSStream) throws -> HTTPMessage? {
        guard let line = try stream.readLine(maxLength: 8192), !line.isEmpty else { return nil }
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else { throw HTTPMessageError.malformed("request line") }
        var headers: [String: String] = [:]
        while let h = try stream.readLine(maxLength: 65_536), !h.isEmpty {
            guard let colon = h.firstIndex(of: ":") else { throw HTTPMessageError.malformed("header line") }
            headers[h[..<colon].lowercased()] = h[h.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data()
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                guard let sizeLine = try stream.readLine(maxLength: 1024),
                      let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else { throw HTTPMessageError.malformed("chunk size") }
                if size == 0 {
                    while let trailer = try stream.readLine(maxLength: 8192), !trailer.isEmpty {}
                    break
                }
                guard body.count + size <= maximumBody else { throw HTTPMessageError.malformed("body too large") }
                body.append(try readExactly(size, from: stream))
                _ = try stream.readLine(maxLength: 16)
            }
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            guard length <= maximumBody else { throw HTTPMessageError.malformed("body too large") }
            body = try readExactly(length, from: stream)
        }
        return HTTPMessage(method: String(parts[0]), path: String(parts[1]), headers: headers, body: body)
    }

    static func readExactly(_ count: Int, from stream: TLSStream) throws -> Data {
        var data = Data()
        data.reserveCapacity(count)
        while data.count < count {
            let chunk = try stream.read(maxLength: min(1 << 20, count - data.count))
            guard !chunk.isEmpty else { throw HTTPMessageError.malformed("connection closed inside the body") }
            data.append(chunk)
        }
        return data
    }
}

enum HTTPMessageError: Error {
    case malformed(String)
}

struct HTTPResponseMessage {
    var status: Int
    var contentType: String
    var body: Data
    var extraHeaders: [String: String] = [:]
    /// Close the connection after this response.
    var close = false
    /// Send half the body and close (failure mode).
    var truncate = false

    static func soap(status: Int, _ envelope: Data) -> HTTPResponseMessage {
        HTTPResponseMessage(status: status, contentType: "application/soap+xml; charset=UTF-8; action=\"urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse\"", body: envelope)
    }

    func write(to stream: TLSStream) throws {
        let reason = [200: "OK", 405: "Method Not Allowed", 500: "Internal Server Error", 503: "Service Unavailable"][status] ?? "Status"
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in extraHeaders { head += "\(k): \(v)\r\n" }
        head += close || truncate ? "Connection: close\r\n\r\n" : "\r\n"
        try stream.write(Data(head.utf8))
        if truncate {
            try stream.write(body.prefix(body.count / 2))
            stream.close()
            throw HTTPMessageError.malformed("truncated on purpose")
        }
        try stream.write(body)
    }
}
