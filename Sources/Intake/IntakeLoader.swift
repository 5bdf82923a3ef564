import Foundation
import PasserelleCore
import OpenSSLKit
#if canImport(Glibc)
import Glibc
#endif

/// What a claimed inbox file turns out to be.
public enum IntakeItem: Sendable, Hashable {
    /// A document to share (from a PDF/CDA + sidecar pair or an ORU/MDM message).
    case document(IncomingDocument)
    /// An admission or discharge (ADT^A01 / ADT^A03) for the indicators.
    case stay(StayEvent)
}

/// The size caps of inbox files, checked from `fstat` before a byte is read (a file over its
/// cap is refused without being read into memory).
public struct IntakeLimits: Sendable, Hashable {
    /// A PDF: `[cda] max_pdf_bytes`.
    public var maxPDFBytes: Int
    /// A JSON sidecar: `[folders] max_sidecar_bytes`.
    public var maxSidecarBytes: Int
    /// An HL7 v2 file: the same cap as a message received over MLLP, `[mllp] max_message_bytes`
    /// (one rule for one kind of content, whichever way it comes).
    public var maxHL7Bytes: Int

    public init(maxPDFBytes: Int = 20 * 1024 * 1024, maxSidecarBytes: Int = 1024 * 1024, maxHL7Bytes: Int = 32 * 1024 * 1024) {
        self.maxPDFBytes = maxPDFBytes
        self.maxSidecarBytes = maxSidecarBytes
        self.maxHL7Bytes = maxHL7Bytes
    }

    /// A producer-built CDA (.xml): derived from `[cda] max_pdf_bytes`, as the CDA carries the PDF
    /// in base64 (4 bytes per 3, plus a line break every 76 characters) and a header (1 MiB allowed).
    public var maxCDABytes: Int {
        let base64 = (maxPDFBytes + 2) / 3 * 4
        return base64 + (base64 / 76 + 1) * 2 + 1024 * 1024
    }
}

/// Reads claimed files into ``IntakeItem`` values; every failure is a ``RefusalReason``
/// ready for ``InboxScanner/refuse(_:reason:at:)``.
public struct IntakeLoader: Sendable {
    public var reader: HL7DocumentReader
    public var limits: IntakeLimits

    public init(reader: HL7DocumentReader = HL7DocumentReader(), limits: IntakeLimits = IntakeLimits()) {
        self.reader = reader
        self.limits = limits
    }

    /// Loads one claim. A sidecar must pass `DocumentMetadata.validate()`; an HL7 document's
    /// metadata is not validated here because a CDA carries most of it in its own header.
    public func load(_ claim: ClaimedFile) throws(RefusalReason) -> IntakeItem { try loadWithDigest(claim).item }

    /// Loads one claim and gives the input's identity from the bytes just read (no second read
    /// of the files): the SHA-256 of a lone file, or for a pair the SHA-256 of both files'
    /// hexadecimal digests, document first (the value journaled since the first version).
    public func loadWithDigest(_ claim: ClaimedFile) throws(RefusalReason) -> (item: IntakeItem, sha256: String) {
        switch claim {
        case .pdf(let document, let sidecar), .cda(let document, let sidecar):
            let metadata: DocumentMetadata
            let json = try Self.read(sidecar, limit: limits.maxSidecarBytes, key: "[folders] max_sidecar_bytes")
            do { metadata = try DocumentMetadata.decode(sidecar: json) } catch { throw .invalidSidecar(error) }
            let problems = metadata.validate()
            guard problems.isEmpty else { throw .invalidSidecar(.invalid(problems)) }
            let data: Data
            if case .pdf = claim {
                data = try Self.read(document, limit: limits.maxPDFBytes, key: "[cda] max_pdf_bytes")
            } else {
                data = try Self.read(document, limit: limits.maxCDABytes, key: "[cda] max_pdf_bytes (a CDA may be 4/3 of it plus 1 MiB)")
            }
            let content: DocumentContent
            if case .pdf = claim {
                guard data.starts(with: Array("%PDF-".utf8)) else { throw .invalidContent(.notPDF(name: document.lastPathComponent)) }
                content = .pdf(data)
            } else {
                let head = String(decoding: data.prefix(512), as: UTF8.self).drop { $0.isWhitespace || $0 == "\u{FEFF}" }
                guard head.hasPrefix("<") else { throw .invalidContent(.notXML(name: document.lastPathComponent)) }
                content = .cda(data)
            }
            let pair = Data((Digest.sha256(data).hexString + Digest.sha256(json).hexString).utf8)
            return (.document(IncomingDocument(metadata: metadata, content: content, action: metadata.action, controlID: "")),
                    Digest.sha256(pair).hexString)
        case .hl7(let url):
            let data = try Self.read(url, limit: limits.maxHL7Bytes, key: "[mllp] max_message_bytes")
            return (try loadMessage(data), Digest.sha256(data).hexString)
        }
    }

    /// Reads one HL7 v2 message (from a file or an MLLP frame): ADT^A01/A03 is a stay, anything
    /// else must be a document message.
    public func loadMessage(_ data: Data) throws(RefusalReason) -> IntakeItem {
        let message: HL7Message
        do { message = try HL7Message(data: data) } catch { throw .invalidMessage(.parse(error)) }
        return try load(message)
    }

    /// Maps an already parsed message (see ``loadMessage(_:)``).
    public func load(_ message: HL7Message) throws(RefusalReason) -> IntakeItem {
        do throws(IntakeError) {
            if message.messageType.code == "ADT" { return .stay(try StayEvent(message: message, timeZone: reader.timeZone)) }
            let document = try reader.read(message)
            // The same field lengths as a sidecar (the DMP refuses longer ones after the send).
            if let problem = document.metadata.lengthProblems().first {
                throw IntakeError.mappedField(problem)
            }
            return .document(document)
        } catch { throw .invalidMessage(error) }
    }

    /// Reads a claimed file: opened with O_NOFOLLOW (a link swapped in after classification is
    /// refused, never followed), checked to be a regular file no larger than `limit` by `fstat`
    /// before anything is read, then exactly the size `fstat` gave is read (a file still growing
    /// cannot push it past the limit).
    public static func read(_ url: URL, limit: Int, key: String) throws(RefusalReason) -> Data {
        let name = url.lastPathComponent
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below).
        let fd = open(url.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ELOOP { throw .symbolicLink(name: name) }
            throw .invalidContent(.unreadable(name: name, errno: code))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .invalidContent(.unreadable(name: name, errno: errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .notRegularFile(name: name) }
        let size = Int(info.st_size)
        guard size <= limit else { throw .tooLarge(name: name, size: Int64(size), limit: limit, key: key) }
        // Not zero-filled first (Data(count:) would write every byte once more before read does).
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 16)
        var offset = 0
        var failure: Int32?
        while offset < size {
            let n = Glibc.read(fd, buffer + offset, size - offset)
            if n < 0 { if errno == EINTR { continue }; failure = errno; break }
            if n == 0 { break }  // truncated meanwhile: what is there is checked as usual
            offset += n
        }
        if let failure {
            buffer.deallocate()
            throw .invalidContent(.unreadable(name: name, errno: failure))
        }
        return Data(bytesNoCopy: buffer, count: offset, deallocator: .custom { pointer, _ in pointer.deallocate() })
    }
}
