import Foundation

/// A byte range of a file (e.g. the PDF inside a journaled record, or a large CDA), read in
/// chunks while a mail is sent, never loaded whole.
public struct FileSlice: Sendable, Hashable {
    public var url: URL
    public var offset: Int
    public var length: Int

    public init(url: URL, offset: Int = 0, length: Int) {
        self.url = url
        self.offset = offset
        self.length = length
    }
}

/// Bytes in memory or in a file.
enum BytePiece: Sendable, Hashable {
    case data(Data)
    case file(FileSlice)

    var count: Int {
        switch self {
        case .data(let d): d.count
        case .file(let f): f.length
        }
    }

    /// The bytes of `pieces` in one `Data` (small messages and tests).
    static func joined(_ pieces: [BytePiece]) throws -> Data {
        let reader = PieceChunks(pieces)
        var out = Data()
        while let chunk = try reader.next() { out.append(chunk) }
        return out
    }
}

/// Why a file piece could not be read while sending.
struct PieceReadError: Error, CustomStringConvertible {
    var description: String
}

/// Walks pieces, yielding at most `chunkSize` bytes of a file piece at a time.
final class PieceChunks {
    private let pieces: [BytePiece]
    private let chunkSize: Int
    private var index = 0
    private var done = 0
    private var handle: FileHandle?

    init(_ pieces: [BytePiece], chunkSize: Int = 256 << 10) {
        self.pieces = pieces
        self.chunkSize = chunkSize
    }

    deinit { try? handle?.close() }

    func next() throws -> Data? {
        while index < pieces.count {
            switch pieces[index] {
            case .data(let data):
                index += 1
                if !data.isEmpty { return data }
            case .file(let slice):
                if handle == nil {
                    do {
                        handle = try FileHandle(forReadingFrom: slice.url)
                        try handle!.seek(toOffset: UInt64(slice.offset))
                    } catch { throw PieceReadError(description: "cannot read \(slice.url.lastPathComponent): \(error.localizedDescription)") }
                }
                if done < slice.length {
                    let chunk: Data
                    do { chunk = try handle!.read(upToCount: min(chunkSize, slice.length - done)) ?? Data() } catch {
                        throw PieceReadError(description: "cannot read \(slice.url.lastPathComponent): \(error.localizedDescription)")
                    }
                    guard !chunk.isEmpty else {
                        throw PieceReadError(description: "\(slice.url.lastPathComponent) is shorter than expected (\(done) of \(slice.length) bytes)")
                    }
                    done += chunk.count
                    return chunk
                }
                try? handle?.close()
                handle = nil
                done = 0
                index += 1
            }
        }
        return nil
    }
}

/// MIME base64 of a byte stream: lines of 76 characters (57 bytes), each ended by CRLF, as
/// ``MailMessage`` writes attachments, produced a few thousand lines at a time.
final class Base64Lines {
    static let lineBytes = 57
    private let source: PieceChunks
    private var carry = Data()
    private var finished = false

    init(_ source: PieceChunks) { self.source = source }

    /// Encoded length of `count` bytes.
    static func length(of count: Int) -> Int {
        count == 0 ? 0 : (count + 2) / 3 * 4 + (count + lineBytes - 1) / lineBytes * 2
    }

    func next() throws -> Data? {
        let block = Self.lineBytes * 2048
        while !finished && carry.count < block {
            if let more = try source.next() { carry.append(more) } else { finished = true }
        }
        guard !carry.isEmpty else { return nil }
        let take = min(block, carry.count)
        let input = carry.prefix(take)
        carry = Data(carry.dropFirst(take))
        var out = input.base64EncodedData(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        out.append(contentsOf: [0x0D, 0x0A])
        return out
    }
}
