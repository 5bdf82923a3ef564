import Foundation
import IHE

/// MIME base64 of a byte stream: lines of 76 characters (57 bytes), each ended by CRLF, as
/// ``MailMessage`` writes attachments, produced a few thousand lines at a time.
final class Base64Lines {
    static let lineBytes = 57
    private let source: ContentReader
    private var carry = Data()
    private var finished = false

    init(_ source: ContentReader) { self.source = source }

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
