import CDA
import Foundation
import IHE
import Journal
import OpenSSLKit
import PasserelleCore

/// A journaled document ready to go: its metadata and the CDA exactly as built or received.
public struct OutgoingDocument: Sendable {
    public var metadata: DocumentMetadata
    public var cda: CDADocument
    public var journal: JournalDocument
    /// Where the producer's PDF sits in the journaled record (a file-backed document built
    /// from a PDF): the MSSanté mail attaches it from there instead of decoding the CDA's body.
    public var recordPDF: FileSlice?

    /// The size from which a built CDA stays in its blob file instead of memory: admission
    /// builds it there (``Admission/PipelineSettings/fileBackedBytes``), delivery parses it streaming.
    public static let fileBackedDefault = 4 << 20

    public init(metadata: DocumentMetadata, cda: CDADocument, journal: JournalDocument, recordPDF: FileSlice? = nil) {
        self.metadata = metadata
        self.cda = cda
        self.journal = journal
        self.recordPDF = recordPDF
    }

    /// Reads the document of a claim back from the blob store. A built CDA of at least
    /// `fileBackedBytes` stays in its blob file (checked and parsed in one streaming pass each).
    public static func load(_ document: JournalDocument, blobs: BlobStore,
                            fileBackedBytes: Int = fileBackedDefault) throws(GatewayError) -> OutgoingDocument {
        guard let builtSHA = document.builtSHA256 else { throw .record("document \(document.id) has no built CDA") }
        let header = try IntakeRecord.Header.read(document.blobSHA256, blobs: blobs)
        if header.metadata.action == .delete && builtSHA == Deletion.markerSHA256 {
            return OutgoingDocument(metadata: header.metadata, cda: Deletion.placeholder(header.metadata), journal: document)
        }
        // A deletion notified by MSSanté: its built blob is the withdrawn document it carried.
        // Keep the origin: the DMP formatCode of a Passerelle-built N1 PDF differs from a producer's.
        let origin: CDADocument.Origin = header.isPDF ? .built : .producer
        let parsed: CDADocument
        var recordPDF: FileSlice?
        do {
            let builtURL = blobs.url(for: builtSHA)
            // By one lstat (FileManager's attributes also read /etc/passwd and /etc/group).
            if let size = blobs.size(builtSHA), size >= fileBackedBytes {
                var file = try CDAFile.measure(builtURL)
                if file.sha256.hexString != builtSHA && blobs.dropDamagedCopy(builtSHA) {
                    _ = try blobs.verifiedFile(builtSHA)  // a PostgreSQL node's cached copy: fetched again
                    file = try CDAFile.measure(builtURL)
                }
                guard file.sha256.hexString == builtSHA else {
                    throw GatewayError.journal(.blobStore(path: builtURL.path, reason: "content does not match its SHA-256 (disk corruption?)"))
                }
                parsed = try ProducerCDA.accept(file: file, declared: nil, budget: CDAParseBudget.journaled)
                if header.isPDF && header.hasContent {
                    let recordURL = blobs.url(for: document.blobSHA256)
                    guard let recordSize = blobs.size(document.blobSHA256) else {
                        throw GatewayError.journal(.blobStore(path: recordURL.path, reason: "blob missing or unreadable"))
                    }
                    recordPDF = FileSlice(url: recordURL, offset: header.contentOffset, length: Int(recordSize) - header.contentOffset)
                }
            } else {
                parsed = try ProducerCDA.accept(try blobs.get(builtSHA), declared: nil, budget: CDAParseBudget.journaled)
            }
        } catch let error as GatewayError { throw error } catch let error as JournalError { throw .journal(error) } catch let error as CDAError {
            throw .record("the journaled CDA of \(document.id) cannot be read: \(error.description)")
        } catch {
            throw .record("\(error)")
        }
        let cda = CDADocument(storage: parsed.storage, origin: origin, kind: parsed.kind, id: parsed.id, setID: parsed.setID,
                              versionNumber: parsed.versionNumber, replaces: parsed.replaces, effectiveTime: parsed.effectiveTime,
                              ins: parsed.ins)
        return OutgoingDocument(metadata: header.metadata, cda: cda, journal: document, recordPDF: recordPDF)
    }
}
