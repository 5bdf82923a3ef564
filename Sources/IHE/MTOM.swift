import Foundation
import PasserelleCore

/// An MTOM/XOP `multipart/related` body: the SOAP envelope as the root
/// `application/xop+xml` part, then one binary part per document. The parts are kept by
/// reference (the document's `Data` or file) and produced chunk by chunk while sending, so a
/// large document is never copied into the body.
public struct MTOMMessage: Sendable {
    /// One binary part.
    public struct Attachment: Sendable {
        public var contentID: String
        public var contentType: String
        public var content: ContentBytes
        public init(contentID: String, contentType: String, content: ContentBytes) {
            self.contentID = contentID
            self.contentType = contentType
            self.content = content
        }
    }

    public let boundary: String
    /// Content-ID of the root part, without `<>`.
    public let rootContentID: String
    /// The HTTP `Content-Type` of the whole body.
    public let contentType: String
    let pieces: [ContentBytes]

    /// - Parameter action: the SOAP action, repeated as the `action` parameter (SOAP 1.2 media type).
    public init(envelope: Data, attachments: [Attachment], action: String) {
        let boundary = "MIMEBoundary_\(UUID.random().uuidString.lowercased().filter { $0 != "-" })"
        self.boundary = boundary
        let rootContentID = "root.\(UUID.random().uuidString.lowercased())@passerelle"
        contentType = "multipart/related; boundary=\"\(boundary)\"; type=\"application/xop+xml\"; "
            + "start=\"<\(rootContentID)>\"; start-info=\"application/soap+xml\"; action=\"\(action)\""
        self.rootContentID = rootContentID
        var parts: [ContentBytes] = []
        func head(_ type: String, _ id: String) -> Data {
            Data("--\(boundary)\r\nContent-Type: \(type)\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <\(id)>\r\n\r\n".utf8)
        }
        parts.append(.data(head("application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"; action=\"\(action)\"", rootContentID)))
        parts.append(.data(envelope))
        for a in attachments {
            parts.append(.data(Data("\r\n".utf8) + head(a.contentType, a.contentID)))
            parts.append(a.content)
        }
        parts.append(.data(Data("\r\n--\(boundary)--\r\n".utf8)))
        self.pieces = parts
    }

    /// Total body length (sent as Content-Length: no chunked encoding needed).
    public var length: Int64 { Int64(pieces.reduce(0) { $0 + $1.count }) }

    /// A one-shot reader of the body; at most `chunkSize` bytes of a document are read at a time.
    public func makeReader(chunkSize: Int) -> ContentReader {
        ContentReader(pieces, chunkSize: chunkSize)
    }

    /// Writes the whole body to `url` (0600: it carries patient data), streaming.
    public func write(to url: URL) throws {
        FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600])
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        let reader = ContentReader(pieces, chunkSize: 1 << 20)
        while let chunk = try reader.next() { try handle.write(contentsOf: chunk) }
    }
}
