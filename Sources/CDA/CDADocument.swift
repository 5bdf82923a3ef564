import Foundation
import OpenSSLKit
import PasserelleCore

/// A CDA kept in a file rather than in memory (a large document, e.g. a 50 MB PDF becomes a
/// 70 MB CDA): its size and digests, computed while it was written or read once.
public struct CDAFile: Sendable, Hashable {
    public let url: URL
    public let size: Int
    /// SHA-1 (the XDS `hash`) and SHA-256 (the journal's blob name) of the bytes.
    public let sha1: Data
    public let sha256: Data

    public init(url: URL, size: Int, sha1: Data, sha256: Data) {
        self.url = url
        self.size = size
        self.sha1 = sha1
        self.sha256 = sha256
    }

    /// Reads `url` once, in chunks, for its size and digests.
    public static func measure(_ url: URL) throws(CDAError) -> CDAFile {
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: url) } catch { throw .file(path: url.path, reason: "\(error.localizedDescription)") }
        defer { try? handle.close() }
        let digests = StreamDigests()
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { digests.update(chunk) }
        } catch { throw .file(path: url.path, reason: "\(error.localizedDescription)") }
        return digests.file(url)
    }
}

/// SHA-1, SHA-256 and size of bytes seen in pieces.
final class StreamDigests {
    private let sha1 = DigestContext(.sha1)
    private let sha256 = DigestContext(.sha256)
    private(set) var size = 0

    func update(_ data: Data) {
        sha1.update(data)
        sha256.update(data)
        size += data.count
    }

    func file(_ url: URL) -> CDAFile { CDAFile(url: url, size: size, sha1: sha1.finalize(), sha256: sha256.finalize()) }

    /// SHA-1 and SHA-256 of `data`, in one pass.
    static func of(_ data: Data) -> (sha1: Data, sha256: Data) {
        let pass = StreamDigests()
        pass.update(data)
        return (pass.sha1.finalize(), pass.sha256.finalize())
    }
}

/// A CDA R2 document ready to travel: its exact bytes plus the header facts the later stages
/// (signature, XDS metadata, XDM) need without parsing it again.
public struct CDADocument: Sendable, Hashable {
    /// Where the bytes came from.
    public enum Origin: String, Sendable, Hashable {
        /// Built by Passerelle from `Templates/cda/n1-pdf.xml`.
        case built
        /// Received ready-made from the producer and kept byte for byte.
        case producer
    }

    /// Where the bytes are: in memory, or in a file for a large document.
    public enum Storage: Sendable, Hashable {
        case memory(Data)
        case file(CDAFile)
    }

    public let storage: Storage

    /// The document, UTF-8 XML. Never re-serialised after it was built or received. For a
    /// file-backed document this reads the whole file: large-document paths use ``file``.
    public var data: Data {
        switch storage {
        case .memory(let data): data
        case .file(let file): (try? Data(contentsOf: file.url)) ?? Data()
        }
    }

    /// The file of a file-backed document.
    public var file: CDAFile? { if case .file(let f) = storage { f } else { nil } }

    /// Size in bytes.
    public var size: Int {
        switch storage {
        case .memory(let data): data.count
        case .file(let file): file.size
        }
    }

    /// SHA-1 of the bytes (the XDS DocumentEntry `hash`).
    public var sha1: Data { digests.sha1 }
    /// SHA-256 of the bytes (the journal's blob name, the submission set signature's manifest).
    public var sha256: Data { digests.sha256 }
    /// Both computed once, in one pass, when the document is made: every send path needs both.
    private let digests: Digests
    private struct Digests: Sendable, Hashable { let sha1: Data, sha256: Data }
    public let origin: Origin
    public let kind: DocumentKind
    /// `ClinicalDocument/id`.
    public let id: InstanceIdentifier
    /// `ClinicalDocument/setId`.
    public let setID: InstanceIdentifier
    public let versionNumber: Int
    /// `relatedDocument[@typeCode='RPLC']/parentDocument/id`, for a replacement.
    public let replaces: InstanceIdentifier?
    /// `ClinicalDocument/effectiveTime/@value` (HL7 TS with offset).
    public let effectiveTime: String
    /// The INS written in `recordTarget` (nil when the identity is not qualified).
    public let ins: INS?
    /// For a built document: the same document with its body cut to the base64 of the PDF's
    /// first bytes. It differs from the real one only inside the body's text node (base64
    /// characters in an `ED`, which the schema does not type), so the schema and header checks
    /// give the same answer on it, and a 400 KB body is not parsed again to find that out.
    public let checkView: Data?

    public init(data: Data, origin: Origin, kind: DocumentKind, id: InstanceIdentifier, setID: InstanceIdentifier,
                versionNumber: Int, replaces: InstanceIdentifier?, effectiveTime: String, ins: INS?, checkView: Data? = nil) {
        self.init(storage: .memory(data), origin: origin, kind: kind, id: id, setID: setID, versionNumber: versionNumber,
                  replaces: replaces, effectiveTime: effectiveTime, ins: ins, checkView: checkView)
    }

    public init(storage: Storage, origin: Origin, kind: DocumentKind, id: InstanceIdentifier, setID: InstanceIdentifier,
                versionNumber: Int, replaces: InstanceIdentifier?, effectiveTime: String, ins: INS?, checkView: Data? = nil) {
        self.storage = storage
        self.checkView = checkView
        switch storage {
        case .memory(let data):
            let both = StreamDigests.of(data)
            digests = Digests(sha1: both.sha1, sha256: both.sha256)
        case .file(let file): digests = Digests(sha1: file.sha1, sha256: file.sha256)
        }
        self.origin = origin
        self.kind = kind
        self.id = id
        self.setID = setID
        self.versionNumber = versionNumber
        self.replaces = replaces
        self.effectiveTime = effectiveTime
        self.ins = ins
    }
}
