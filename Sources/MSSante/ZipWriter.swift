import Foundation
import IHE

/// A minimal ZIP writer: stored (uncompressed) entries with CRC-32, enough for an IHE XDM
/// archive (the CDA and PDF inside are small and the mail is base64 anyway). No ZIP64, no
/// encryption; names are ASCII (XDM uses ISO 9660 names).
public struct ZipWriter: Sendable {
    public enum ZipError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
        /// Names must be non-empty relative ASCII paths without `..`.
        case invalidName(String)
        case duplicateName(String)
        /// Beyond the classic ZIP limits (4 GiB, 65,535 entries); ZIP64 is not implemented.
        case tooLarge(String)
        /// A file entry's content could not be read.
        case unreadable(String, String)

        public var description: String {
            switch self {
            case let .invalidName(name): "ZIP entry name \"\(name)\" is not a relative ASCII path"
            case let .duplicateName(name): "ZIP entry \"\(name)\" is added twice"
            case let .tooLarge(what): "ZIP archive too large: \(what) (ZIP64 is not supported)"
            case let .unreadable(name, reason): "ZIP entry \(name): \(reason)"
            }
        }

        public var errorDescription: String? { description }
    }

    private struct Entry {
        var name: [UInt8]
        var crc: UInt32
        var size: UInt32
        var offset: UInt32
    }

    /// Headers in memory, large contents as file slices read when the archive is streamed.
    private var output: [ContentBytes] = []
    private var length = 0
    private var entries: [Entry] = []
    /// MS-DOS time and date of every entry.
    private let dosTime: UInt16
    private let dosDate: UInt16

    /// `modified` is written as local-less MS-DOS time in UTC (ZIP has no time zone).
    public init(modified: Date = Date()) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: modified)
        dosTime = UInt16(c.hour! << 11 | c.minute! << 5 | c.second! / 2)
        dosDate = UInt16(max(0, c.year! - 1980) << 9 | c.month! << 5 | c.day!)
    }

    /// Adds a file entry.
    public mutating func add(_ name: String, data: Data) throws(ZipError) {
        try add(name, crc: CRC32.checksum(data), content: .data(data))
    }

    /// Adds a file entry whose content is read from `file` (its CRC now, in one streaming
    /// pass; its bytes when the archive is streamed): a large CDA is never held in memory.
    public mutating func add(_ name: String, file: FileSlice) throws(ZipError) {
        let chunks = ContentReader([.file(file)], chunkSize: 1 << 20)
        var crc = CRC32()
        do { while let chunk = try chunks.next() { crc.update(chunk) } } catch { throw .unreadable(name, "\(error)") }
        try add(name, crc: crc.value, content: .file(file))
    }

    private mutating func add(_ name: String, crc: UInt32, content: ContentBytes) throws(ZipError) {
        guard !name.isEmpty, !name.hasPrefix("/"), name.allSatisfy({ $0.isASCII && $0 != "\\" }),
              !name.split(separator: "/").contains("..") else { throw .invalidName(name) }
        guard !entries.contains(where: { $0.name == Array(name.utf8) }) else { throw .duplicateName(name) }
        guard content.count < Int(UInt32.max), length < Int(UInt32.max) - content.count - 30 - name.utf8.count,
              entries.count < 65_535 else { throw .tooLarge(name) }
        let entry = Entry(name: Array(name.utf8), crc: crc, size: UInt32(content.count), offset: UInt32(length))
        var output = Data()
        output.append(le32: 0x0403_4b50)  // local file header
        output.append(le16: 20)  // version needed: 2.0
        output.append(le16: 0)  // flags
        output.append(le16: 0)  // method: stored
        output.append(le16: dosTime)
        output.append(le16: dosDate)
        output.append(le32: entry.crc)
        output.append(le32: entry.size)  // compressed size
        output.append(le32: entry.size)
        output.append(le16: UInt16(entry.name.count))
        output.append(le16: 0)  // extra length
        output.append(contentsOf: entry.name)
        self.output += [.data(output), content]
        length += output.count + content.count
        entries.append(entry)
    }

    /// The finished archive: entries, central directory, end record.
    public func finish() throws(ZipError) -> Data {
        let pieces = try finishPieces()
        do { return try ContentBytes.joined(pieces) } catch { throw .unreadable("archive", "\(error)") }
    }

    /// The finished archive as pieces: file contents stay in their files until streamed.
    func finishPieces() throws(ZipError) -> [ContentBytes] {
        var data = Data()
        let directoryOffset = length
        for entry in entries {
            data.append(le32: 0x0201_4b50)  // central directory header
            data.append(le16: 20)  // made by: MS-DOS / 2.0 (no Unix modes to carry)
            data.append(le16: 20)
            data.append(le16: 0)
            data.append(le16: 0)
            data.append(le16: dosTime)
            data.append(le16: dosDate)
            data.append(le32: entry.crc)
            data.append(le32: entry.size)
            data.append(le32: entry.size)
            data.append(le16: UInt16(entry.name.count))
            data.append(le16: 0)  // extra
            data.append(le16: 0)  // comment
            data.append(le16: 0)  // disk number
            data.append(le16: 0)  // internal attributes
            data.append(le32: 0)  // external attributes
            data.append(le32: entry.offset)
            data.append(contentsOf: entry.name)
        }
        let directorySize = data.count
        guard length + data.count < Int(UInt32.max) else { throw .tooLarge("central directory") }
        data.append(le32: 0x0605_4b50)  // end of central directory
        data.append(le16: 0)
        data.append(le16: 0)
        data.append(le16: UInt16(entries.count))
        data.append(le16: UInt16(entries.count))
        data.append(le32: UInt32(directorySize))
        data.append(le32: UInt32(directoryOffset))
        data.append(le16: 0)  // comment length
        return output + [.data(data)]
    }
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as ZIP requires.
public struct CRC32: Sendable {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ data: some DataProtocol) -> UInt32 {
        var crc = CRC32()
        crc.update(data)
        return crc.value
    }

    private var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// Feeds more bytes (a large file is checksummed chunk by chunk).
    public mutating func update(_ data: some DataProtocol) {
        let table = Self.table
        var crc = state
        for region in data.regions {
            region.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
                table.withUnsafeBufferPointer { t in
                    for byte in bytes { crc = t[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
                }
            }
        }
        state = crc
    }

    /// The checksum of the bytes fed so far.
    public var value: UInt32 { state ^ 0xFFFF_FFFF }
}

extension Data {
    mutating func append(le16 value: UInt16) { Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) } }
    mutating func append(le32 value: UInt32) { Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) } }
}
