import Foundation
import Intake
import Journal
import PasserelleCore

/// What the gateway journals for each accepted document: its metadata (sidecar JSON, ids
/// already assigned) and the producer's bytes. The dropped file is gone once the journal holds
/// this, so everything a sender needs later — after a restart too — must be in it.
///
/// Layout: `passerelle-intake/1 pdf|cda\n`, the metadata as one line of JSON, `\n`, then the
/// content bytes as received (no base64: a 20 MB PDF stays 20 MB).
///
/// When the journal takes the built CDA in the same transaction and that CDA holds the content
/// whole (a producer's CDA is the content, byte for byte; a built N1 CDA carries the PDF as its
/// base64 body), the record is written without content, kind `pdf-in-cda` or `cda-in-cda`: the
/// bytes are stored once. Large documents keep the content in the record (the mail attaches the
/// PDF from it without decoding a base64 body held in a file).
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
        try encodedParts().reduce(into: Data()) { $0.append($1) }
    }

    /// The bytes to store as header and content, so a large PDF is not copied to store it.
    /// `contentInBuiltCDA`: the header alone (see the type's documentation).
    public func encodedParts(contentInBuiltCDA: Bool = false) throws(GatewayError) -> [Data] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json: Data
        do { json = try encoder.encode(metadata) } catch { throw .record("cannot encode the metadata: \(error)") }
        let base = if case .pdf = content { "pdf" } else { "cda" }
        let kind = base + (contentInBuiltCDA ? Self.inBuiltCDA : "")
        var data = Data("\(Self.magic) \(kind)\n".utf8)
        data.append(json)  // JSONEncoder never writes a raw newline
        data.append(0x0A)
        return contentInBuiltCDA ? [data] : [data, content.data]
    }

    static let inBuiltCDA = "-in-cda"

    /// Reads back what ``encoded()`` wrote (a record with its content).
    public static func decode(_ data: Data) throws(GatewayError) -> IntakeRecord {
        guard let header = try Header(data) else { throw .record("the journaled record is truncated") }
        guard header.hasContent else { throw .record("the journaled record holds no content: it is in the document's built CDA") }
        let body = Data(data[(data.startIndex + header.contentOffset)...])
        return IntakeRecord(metadata: header.metadata, content: header.isPDF ? .pdf(body) : .cda(body))
    }

    /// A record's metadata and where its content starts: what a sender needs, read from the
    /// first bytes of the blob without loading a large PDF.
    public struct Header: Sendable {
        public var metadata: DocumentMetadata
        public var isPDF: Bool
        /// False when the content is in the built CDA only (kinds `pdf-in-cda`, `cda-in-cda`).
        public var hasContent: Bool
        /// Offset of the content bytes in the record.
        public var contentOffset: Int

        /// Nil when `prefix` ends before the metadata line does.
        init?(_ prefix: Data) throws(GatewayError) {
            guard let first = prefix.firstIndex(of: 0x0A),
                  let second = prefix[(first + 1)...].firstIndex(of: 0x0A) else { return nil }
            let parts = String(decoding: prefix[prefix.startIndex..<first], as: UTF8.self).split(separator: " ")
            let kinds = ["pdf", "cda"].flatMap { [$0, $0 + IntakeRecord.inBuiltCDA] }
            guard parts.count == 2, parts[0] == IntakeRecord.magic, kinds.contains(String(parts[1])) else {
                throw .record("the journaled record has an unknown header (written by a newer passerelle?)")
            }
            do { metadata = try DocumentMetadata.decode(sidecar: Data(prefix[(first + 1)..<second])) } catch {
                throw .record("the journaled metadata cannot be read: \(error)")
            }
            isPDF = parts[1].hasPrefix("pdf")
            hasContent = !parts[1].hasSuffix(IntakeRecord.inBuiltCDA)
            contentOffset = second + 1 - prefix.startIndex
        }

        /// The header of the record stored as blob `sha256`.
        public static func read(_ sha256: String, blobs: BlobStore) throws(GatewayError) -> Header {
            do {
                // Checked whole like any blob, then only the start is read.
                if let header = try Header(try blobs.verifiedPrefix(sha256, upTo: 1 << 20)) { return header }
                // Metadata over 1 MB (never in practice): read it all.
                guard let header = try Header(try blobs.get(sha256)) else { throw GatewayError.record("the journaled record is truncated") }
                return header
            } catch let error as GatewayError { throw error } catch let error as JournalError { throw .journal(error) } catch {
                throw .record("\(error)")
            }
        }
    }
}
