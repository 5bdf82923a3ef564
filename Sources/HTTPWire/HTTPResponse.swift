import Foundation
import OpenSSLKit

/// One HTTP/1.1 response with a Content-Length body.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header fields besides Content-Type, Content-Length and Connection, in order.
    public var headers: [(name: String, value: String)]
    public var contentType: String
    public var body: Data
    /// Close the connection after this response (sends `Connection: close`).
    public var close: Bool

    public init(status: Int, contentType: String, body: Data, headers: [(name: String, value: String)] = [], close: Bool = false) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
        self.close = close
    }

    /// A plain-text response.
    public static func text(_ status: Int, _ text: String, headers: [(name: String, value: String)] = [], close: Bool = false) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: Data(text.utf8), headers: headers, close: close)
    }

    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 204: "No Content"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }

    /// Status line and header fields, up to and including the blank line.
    public var head: Data {
        var text = "HTTP/1.1 \(status) \(Self.reason(status))\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers {
            // A value is ours, never the client's; still, a line break would split the response.
            precondition(!name.contains(where: \.isNewline) && !value.contains(where: \.isNewline), "line break in a response header")
            text += "\(name): \(value)\r\n"
        }
        if close { text += "Connection: close\r\n" }
        text += "\r\n"
        return Data(text.utf8)
    }

    /// Head and body (`omitBody`: the answer to a HEAD request, same head).
    public func serialized(omitBody: Bool = false) -> Data { omitBody ? head : head + body }

    /// Writes the whole response on the connection's thread.
    public func write(to connection: any Connection, omitBody: Bool = false) throws {
        try connection.write(serialized(omitBody: omitBody))
    }

    /// The async form: writes on the connection's lane.
    public func write(to connection: any Connection, omitBody: Bool = false) async throws {
        try await connection.write(serialized(omitBody: omitBody))
    }
}
