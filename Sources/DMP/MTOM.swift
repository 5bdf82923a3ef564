import CurlKit
import Foundation

/// An MTOM/XOP `multipart/related` body: the SOAP envelope as the root
/// `application/xop+xml` part, then one binary part per document. The parts are kept by
/// reference (the document's `Data` or file) and produced chunk by chunk while sending, so a
/// large document is never copied into the body.
public struct MTOMMessage: Sendable {
    enum Piece: Sendable {
        case bytes(Data)
        case file(URL, size: Int)
        var count: Int {
            switch self {
            case .bytes(let d): d.count
            case .file(_, let size): size
            }
        }
    }

    /// One binary part.
    public struct Attachment: Sendable {
        public var contentID: String
        public var contentType: String
        public var content: DocumentContent
        public init(contentID: String, contentType: String, content: DocumentContent) {
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
    let pieces: [Piece]

    /// - Parameter action: the SOAP action, repeated as the `action` parameter (SOAP 1.2 media type).
    public init(envelope: Data, attachments: [Attachment], action: String) {
        let boundary = "MIMEBoundary_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        self.boundary = boundary
        let rootContentID = "root.\(UUID().uuidString.lowercased())@passerelle"
        contentType = "multipart/related; boundary=\"\(boundary)\"; type=\"application/xop+xml\"; "
            + "start=\"<\(rootContentID)>\"; start-info=\"application/soap+xml\"; action=\"\(action)\""
        self.rootContentID = rootContentID
        var parts: [Piece] = []
        func head(_ type: String, _ id: String) -> Data {
            Data("--\(boundary)\r\nContent-Type: \(type)\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <\(id)>\r\n\r\n".utf8)
        }
        parts.append(.bytes(head("application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"; action=\"\(action)\"", rootContentID)))
        parts.append(.bytes(envelope))
        for a in attachments {
            parts.append(.bytes(Data("\r\n".utf8) + head(a.contentType, a.contentID)))
            switch a.content {
            case .data(let d): parts.append(.bytes(d))
            case .file(let url, let size): parts.append(.file(url, size: size))
            }
        }
        parts.append(.bytes(Data("\r\n--\(boundary)--\r\n".utf8)))
        self.pieces = parts
    }

    /// Total body length (sent as Content-Length: no chunked encoding needed).
    public var length: Int64 { Int64(pieces.reduce(0) { $0 + $1.count }) }

    /// A one-shot chunk producer for CurlKit (`UploadSource.stream`); at most `chunkSize`
    /// bytes of a document are read at a time.
    public func chunkStream(chunkSize: Int = 256 * 1024) -> ChunkStream {
        let reader = makeReader(chunkSize: chunkSize)
        return ChunkStream { try reader.next() }
    }

    func makeReader(chunkSize: Int) -> PieceReader {
        PieceReader(pieces: pieces, chunkSize: chunkSize)
    }

    /// The CurlKit request body.
    public var uploadSource: UploadSource { .stream(chunkStream(), length: length) }

    /// Writes the whole body to `url` (0600: it carries patient data), streaming.
    public func write(to url: URL) throws {
        FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600])
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        let reader = PieceReader(pieces: pieces, chunkSize: 1 << 20)
        while let chunk = try reader.next() { try handle.write(contentsOf: chunk) }
    }
}

/// Walks the pieces; a file piece is read in `chunkSize` slices.
final class PieceReader: @unchecked Sendable {
    private let pieces: [MTOMMessage.Piece]
    private let chunkSize: Int
    private var index = 0
    private var offset = 0
    private var handle: FileHandle?
    private let lock = NSLock()

    init(pieces: [MTOMMessage.Piece], chunkSize: Int) {
        self.pieces = pieces
        self.chunkSize = chunkSize
    }

    deinit { try? handle?.close() }

    func next() throws -> Data? {
        lock.lock()
        defer { lock.unlock() }
        while index < pieces.count {
            switch pieces[index] {
            case .bytes(let data):
                if offset < data.count {
                    let end = min(data.count, offset + chunkSize)
                    // A slice shares the document's storage; the copy is one chunk.
                    let chunk = Data(data[data.startIndex + offset ..< data.startIndex + end])
                    offset = end
                    return chunk
                }
            case .file(let url, let size):
                if handle == nil { handle = try FileHandle(forReadingFrom: url) }
                if offset < size, let chunk = try handle!.read(upToCount: min(chunkSize, size - offset)), !chunk.isEmpty {
                    offset += chunk.count
                    return chunk
                }
                if offset != size {
                    throw DMPError.transport("\(url.lastPathComponent) changed size while being sent (\(offset) of \(size) bytes)")
                }
                try handle?.close()
                handle = nil
            }
            index += 1
            offset = 0
        }
        return nil
    }
}
