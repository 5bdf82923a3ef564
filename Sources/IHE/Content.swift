import Foundation

/// A byte range of a file (the PDF inside a journaled record, a large CDA), read in chunks
/// while a request or a mail is sent, never loaded whole.
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

/// Bytes in memory or in a file: the one body type of the IHE content, whether an XDS
/// document (an MTOM part of ITI-41) or a part of an MSSanté mail or XDM archive.
public enum ContentBytes: Sendable, Hashable {
    case data(Data)
    case file(FileSlice)

    /// A whole file of `size` bytes.
    public static func file(_ url: URL, size: Int) -> ContentBytes { .file(FileSlice(url: url, length: size)) }

    public var count: Int {
        switch self {
        case .data(let d): d.count
        case .file(let f): f.length
        }
    }

    /// The bytes of `pieces` in one `Data` (small messages and tests).
    public static func joined(_ pieces: [ContentBytes]) throws(ContentReadError) -> Data {
        let reader = ContentReader(pieces)
        var out = Data()
        while let chunk = try reader.next() { out.append(chunk) }
        return out
    }
}

/// Why a file piece could not be read while sending.
public struct ContentReadError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Walks pieces, yielding at most `chunkSize` bytes at a time: a file piece is read in slices,
/// a larger in-memory piece is cut into slices that share its storage (nothing is copied).
/// Locked: libcurl's upload callback may call it from another thread than its creator's.
public final class ContentReader: @unchecked Sendable {
    private let pieces: [ContentBytes]
    private let chunkSize: Int
    private var index = 0
    private var done = 0
    private var handle: FileHandle?
    private let lock = NSLock()

    public init(_ pieces: [ContentBytes], chunkSize: Int = 256 << 10) {
        self.pieces = pieces
        self.chunkSize = chunkSize
    }

    deinit { try? handle?.close() }

    public func next() throws(ContentReadError) -> Data? {
        lock.lock()
        defer { lock.unlock() }
        while index < pieces.count {
            switch pieces[index] {
            case .data(let data):
                if done < data.count {
                    let end = min(data.count, done + chunkSize)
                    // A slice shares the piece's storage: no copy (its indices start at the
                    // offset; readers use count and withUnsafeBytes).
                    let chunk = done == 0 && end == data.count ? data : data[data.startIndex + done ..< data.startIndex + end]
                    done = end
                    return chunk
                }
            case .file(let slice):
                if handle == nil {
                    do {
                        handle = try FileHandle(forReadingFrom: slice.url)
                        if slice.offset > 0 { try handle!.seek(toOffset: UInt64(slice.offset)) }
                    } catch { throw ContentReadError(description: "cannot read \(slice.url.lastPathComponent): \(error.localizedDescription)") }
                }
                if done < slice.length {
                    let chunk: Data
                    do { chunk = try handle!.read(upToCount: min(chunkSize, slice.length - done)) ?? Data() } catch {
                        throw ContentReadError(description: "cannot read \(slice.url.lastPathComponent): \(error.localizedDescription)")
                    }
                    guard !chunk.isEmpty else {
                        throw ContentReadError(description: "\(slice.url.lastPathComponent) changed size while being sent (\(done) of \(slice.length) bytes)")
                    }
                    done += chunk.count
                    return chunk
                }
                try? handle?.close()
                handle = nil
            }
            index += 1
            done = 0
        }
        return nil
    }
}
