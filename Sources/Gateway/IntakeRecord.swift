import Foundation
import Intake
import PasserelleCore

/// What the gateway journals for each accepted document: its metadata (sidecar JSON, ids
/// already assigned) and the producer's bytes. The dropped file is gone once the journal holds
/// this, so everything a sender needs later — after a restart too — must be in it.
///
/// Layout: `passerelle-intake/1 pdf|cda\n`, the metadata as one line of JSON, `\n`, then the
/// content bytes as received (no base64: a 20 MB PDF stays 20 MB).
public struct IntakeRecord: Sendable, Hashable {
    static let magic = "passerelle-intake/1"

    public var metadata: DocumentMetadata
    public var content: DocumentContent

    public init(metadata: DocumentMetadata, content: DocumentContent) {
        self.metadata = metadata
        self.content = content
    }

    /// The bytes to store.
    public func encoded() throws(GatewayError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json: Data
        do { json = try encoder.encode(metadata) } catch { throw .record("cannot encode the metadata: \(error)") }
        let kind = if case .pdf = content { "pdf" } else { "cda" }
        var data = Data("\(Self.magic) \(kind)\n".utf8)
        data.append(json)  // JSONEncoder never writes a raw newline
        data.append(0x0A)
        data.append(content.data)
        return data
    }

    /// Reads back what ``encoded()`` wrote.
    public static func decode(_ data: Data) throws(GatewayError) -> IntakeRecord {
        guard let first = data.firstIndex(of: 0x0A),
              let second = data[(first + 1)...].firstIndex(of: 0x0A) else {
            throw .record("the journaled record is truncated")
        }
        let header = String(decoding: data[data.startIndex..<first], as: UTF8.self)
        let parts = header.split(separator: " ")
        guard parts.count == 2, parts[0] == magic, parts[1] == "pdf" || parts[1] == "cda" else {
            throw .record("the journaled record has an unknown header (written by a newer passerelle?)")
        }
        let metadata: DocumentMetadata
        do { metadata = try DocumentMetadata.decode(sidecar: Data(data[(first + 1)..<second])) } catch {
            throw .record("the journaled metadata cannot be read: \(error)")
        }
        let body = Data(data[(second + 1)...])
        return IntakeRecord(metadata: metadata, content: parts[1] == "pdf" ? .pdf(body) : .cda(body))
    }
}
