import Foundation
import PasserelleCore

/// A minimal `multipart/related` reader (MTOM responses and, in the test endpoint, requests):
/// parts split on the boundary, each with its headers (names lower-cased) and raw body.
public struct MIMEPart: Sendable {
    public var headers: [String: String]
    public var body: Data
    /// `Content-ID` without `<>`.
    public var contentID: String? {
        headers["content-id"].map { $0.trimmingWhitespace().trimmingCharacters(in: CharacterSet(charactersIn: "<>")) }
    }
}

public enum MIMEMultipart {
    /// A parameter of a header value (`boundary`, `type`, `start`…), quotes removed.
    public static func parameter(_ name: String, in headerValue: String) -> String? {
        for piece in headerValue.split(separator: ";").dropFirst() {
            let kv = piece.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0].trimmingWhitespace().lowercased() == name.lowercased() else { continue }
            var value = kv[1].trimmingWhitespace()
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    /// The media type of a Content-Type value, lower-cased.
    public static func mediaType(_ headerValue: String) -> String {
        headerValue.split(separator: ";").first.map { $0.trimmingWhitespace().lowercased() } ?? ""
    }

    /// Splits `body` (a multipart with `boundary`). Throws when the framing is broken.
    public static func parse(_ body: Data, boundary: String) throws(DMPError) -> [MIMEPart] {
        let delimiter = Data("--\(boundary)".utf8)
        var parts: [MIMEPart] = []
        guard var cursor = body.range(of: delimiter)?.upperBound else {
            throw .malformedResponse("multipart body without its boundary")
        }
        while true {
            // After a delimiter: "--" closes, else CRLF then the part.
            if body[cursor...].starts(with: Data("--".utf8)) { return parts }
            guard body[cursor...].starts(with: Data("\r\n".utf8)) else { throw .malformedResponse("boundary not followed by CRLF") }
            let partStart = cursor + 2
            guard let next = body.range(of: Data("\r\n".utf8) + delimiter, in: partStart..<body.endIndex) else {
                throw .malformedResponse("multipart body not closed by its final boundary")
            }
            let part = body[partStart..<next.lowerBound]
            guard let split = part.range(of: Data("\r\n\r\n".utf8)) else { throw .malformedResponse("MIME part without a header block") }
            var headers: [String: String] = [:]
            for line in String(decoding: part[part.startIndex..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].trimmingWhitespace().lowercased()] = line[line.index(after: colon)...].trimmingWhitespace()
            }
            parts.append(MIMEPart(headers: headers, body: Data(part[split.upperBound...])))
            cursor = next.upperBound
        }
    }
}
