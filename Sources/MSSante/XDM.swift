import CDA
import Foundation
import IHE
import OpenSSLKit
import PasserelleCore

/// Errors while packaging a document as an IHE XDM archive.
public enum XDMError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// A metadata field the XDS DocumentEntry requires is missing.
    case missingMetadata(documentID: String, field: String)
    /// The document's metadata cannot be written as XDS metadata (IHE's message says why).
    case content(IHEError)
    case template(TemplateError)
    case zip(ZipWriter.ZipError)

    init(_ error: IHEError) {
        if case let .missingMetadata(id, field) = error { self = .missingMetadata(documentID: id, field: field) } else { self = .content(error) }
    }

    public var description: String {
        switch self {
        case let .missingMetadata(id, field): "document \(id): XDM metadata needs \(field)"
        case let .content(error): "XDM metadata: \(error)"
        case let .template(error): "XDM template: \(error)"
        case let .zip(error): "XDM archive: \(error)"
        }
    }

    public var errorDescription: String? { description }
}

/// Who sends the archive: written into METADATA.XML, INDEX.HTM and README.TXT.
public struct XDMSender: Sendable, Hashable {
    /// Root OID of the structure: SubmissionSet sourceId.
    public var structureOID: String
    public var structureName: String
    /// FINESS (or other national structure identifier), for README.TXT.
    public var structureID: String
    /// The application mailbox (BAL applicative).
    public var mailbox: String?
    public var applicationName: String
    public var applicationVersion: String
    public var applicationVendor: String
    /// SubmissionSet contentTypeCode (JDV_J59 ContentTypeCode-DMP), from configuration.
    public var contentTypeCode: CodedValue

    public init(structureOID: String, structureName: String, structureID: String, mailbox: String? = nil,
                contentTypeCode: CodedValue,
                applicationName: String = "Passerelle", applicationVersion: String = Passerelle.version,
                applicationVendor: String = "Passerelle") {
        self.contentTypeCode = contentTypeCode
        self.structureOID = structureOID
        self.structureName = structureName
        self.structureID = structureID
        self.mailbox = mailbox
        self.applicationName = applicationName
        self.applicationVersion = applicationVersion
        self.applicationVendor = applicationVendor
    }
}

/// A built archive.
public struct XDMPackage: Sendable {
    /// `IHE_XDM.ZIP` (read whole from its pieces: for small archives and tests).
    public var zip: Data { (try? ContentBytes.joined(archive)) ?? Data() }
    /// The archive as pieces: a file-backed CDA stays in its file until the mail is streamed.
    let archive: [ContentBytes]
    /// True when part of the archive is read from a file while sending.
    public var isFileBacked: Bool { archive.contains { if case .file = $0 { true } else { false } } }
    /// Size of the archive in bytes.
    public var zipSize: Int { archive.reduce(0) { $0 + $1.count } }
    /// `IHE_XDM/SUBSET01/METADATA.XML`.
    public let metadataXML: Data
    /// The CDA's file name in SUBSET01 (ISO 9660 8.3, upper case).
    public let documentFileName: String
    /// entryUUID of the DocumentEntry (derived from the document id, so a later RPLC can
    /// point at it without any state).
    public let documentEntryUUID: String
    /// uniqueId of the SubmissionSet (2.25 OID), also usable as the SMTP ENVID.
    public let submissionSetUniqueID: String
    /// Size and SHA-1 (hex) of the CDA, as written in the metadata.
    public let documentSize: Int
    public let documentSHA1: String
}

/// Builds IHE XDM (ITI-32) archives: INDEX.HTM, README.TXT, IHE_XDM/SUBSET01/METADATA.XML
/// (ebRIM 3.0 SubmitObjectsRequest) and the CDA.
public struct XDMBuilder: Sendable {
    public static let archiveName = "IHE_XDM.ZIP"
    public static let subsetPath = "IHE_XDM/SUBSET01"
    /// Extra-metadata slot (ITI TF-3 4.1.14) that marks a deletion request; its value is
    /// ``deletionActionCode``. Name and value follow the ANS rule "action D" for a deletion
    /// sent over MSSanté; the slot name is our reading and may need aligning with the
    /// official CI-SIS text.
    public static let deletionSlotName = "urn:asip:ci-sis:2010:action"
    public static let deletionActionCode = "D"

    let index: Template
    let readme: Template
    public var sender: XDMSender {
        didSet { mapper = Self.mapper(sender) }
    }
    private var mapper: DocumentEntryMapper

    /// XDM's rules: the IPP stands for a non-qualified identity, the structure may author, and
    /// the stay must give its facility type and practice setting (no structure-wide default).
    static func mapper(_ sender: XDMSender) -> DocumentEntryMapper {
        DocumentEntryMapper(settings: SubmissionSettings(
            sourceId: sender.structureOID, structure: HealthStructure(finess: sender.structureID, name: sender.structureName),
            contentTypeCode: sender.contentTypeCode, defaultFacilityType: nil, defaultPracticeSetting: nil, rules: .xdm))
    }

    /// Loads `xdm/INDEX.HTM` and `xdm/README.TXT` from the templates directory.
    public init(templatesDirectory: URL, sender: XDMSender) throws(XDMError) {
        do {
            index = try Template(contentsOf: templatesDirectory.appendingPathComponent("xdm/INDEX.HTM"), escaping: .html)
            readme = try Template(contentsOf: templatesDirectory.appendingPathComponent("xdm/README.TXT"), escaping: .none)
        } catch { throw .template(error) }
        self.sender = sender
        mapper = Self.mapper(sender)
    }

    /// Packages `document` with its `metadata`. `submissionTime` is the SubmissionSet time.
    public func build(document: CDADocument, metadata: DocumentMetadata, submissionTime: Date = Date()) throws(XDMError) -> XDMPackage {
        let fileName = Self.isoFileName(index: 1, extension: "XML")
        let xml: Data
        let submission: SubmissionSetMetadata
        do {
            // The same DocumentEntry as the DMP's (IHE's mapper), with the XDM subset's file name.
            var s = try mapper.submission(cda: document, metadata: metadata, at: submissionTime)
            s.entries[0].uri = fileName
            if metadata.action == .delete { s.entries[0].extraSlots[Self.deletionSlotName] = [Self.deletionActionCode] }
            xml = Data(try ProvideAndRegisterWriter.submitObjectsRequest(s).utf8)
            submission = s
        } catch { throw XDMError(error) }
        let entry = submission.entries[0]
        let date = ZonedDateTime(date: submissionTime, utcOffsetSeconds: 0).iso
        var values: [String: String] = [
            "structureName": sender.structureName, "structureID": sender.structureID,
            "applicationName": sender.applicationName, "applicationVersion": sender.applicationVersion,
            "applicationVendor": sender.applicationVendor, "submissionDate": date, "documentFile": fileName,
            "documentTitle": entry.title ?? document.kind.defaultTitle,
        ]
        if let mailbox = sender.mailbox { values["senderMailbox"] = mailbox }
        var zip = ZipWriter(modified: submissionTime)
        do {
            try zip.add("INDEX.HTM", data: Data(index.render(values).utf8))
            try zip.add("README.TXT", data: Data(readme.render(values).replacingOccurrences(of: "\n", with: "\r\n").utf8))
            try zip.add("\(Self.subsetPath)/METADATA.XML", data: xml)
            if let file = document.file {
                try zip.add("\(Self.subsetPath)/\(fileName)", file: FileSlice(url: file.url, length: file.size))
            } else {
                try zip.add("\(Self.subsetPath)/\(fileName)", data: document.data)
            }
            return XDMPackage(archive: try zip.finishPieces(), metadataXML: xml, documentFileName: fileName, documentEntryUUID: entry.entryID,
                              submissionSetUniqueID: submission.uniqueId, documentSize: document.size,
                              documentSHA1: entry.hash ?? document.sha1.hexString)
        } catch let error as TemplateError {
            throw .template(error)
        } catch let error as ZipWriter.ZipError {
            throw .zip(error)
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    /// ISO 9660 level 1 name: `DOC00001.XML`.
    static func isoFileName(index: Int, extension ext: String) -> String {
        String(format: "DOC%05d.%@", index, ext)
    }
}
