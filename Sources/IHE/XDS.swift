import Foundation
import PasserelleCore

/// ebRIM 3.0 / IHE XDS.b constants (ITI TF-3 §4.2; values cross-checked in
/// `shared/reference/notes/dmp-xds.md` §1.2).
public enum XDS {
    public static let stableDocumentEntry = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
    public static let submissionSetNode = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
    public static let registryPackageType = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"

    /// Classification and identification schemes of a DocumentEntry (ITI TF-3 §4.2.5).
    public enum DocumentEntry {
        public static let author = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
        public static let classCode = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
        public static let confidentialityCode = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
        public static let eventCode = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
        public static let formatCode = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
        public static let healthcareFacilityTypeCode = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
        public static let practiceSettingCode = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
        public static let typeCode = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
        public static let patientId = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
        public static let uniqueId = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
    }

    /// Classification and identification schemes of a SubmissionSet.
    public enum SubmissionSet {
        public static let author = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
        public static let contentTypeCode = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
        public static let patientId = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
        public static let uniqueId = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
        public static let sourceId = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
    }

    public enum AssociationType {
        public static let hasMember = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
        public static let replace = "urn:ihe:iti:2007:AssociationType:RPLC"
        public static let signs = "urn:ihe:iti:2007:AssociationType:signs"
        /// ITI-57: changes the availabilityStatus of the target (slots OriginalStatus, NewStatus).
        public static let updateAvailabilityStatus = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
    }

    /// The patientId (HL7 v2 CX) of an INS: `<INS>^^^&<OID>&ISO^NH`, in the DMP and in XDM alike.
    public static func patientId(_ ins: INS) -> String { "\(ins.value)^^^&\(ins.oid)&ISO^NH" }

    /// formatCode of a CDA N1 with a PDF body (IHE XDS-SD), in the DMP and in XDM alike.
    public static let pdfFormat = CodedValue(code: "urn:ihe:iti:xds-sd:pdf:2008", codeSystem: CodeSystem.iheFormat,
                                             displayName: "Document à corps non structuré en Pdf/A-1")

    /// OIDs of the code systems used in the DMP metadata.
    public enum CodeSystem {
        /// TRE_A06 (ANS format codes `urn:asip:ci-sis:…`).
        public static let ansFormat = "1.2.250.1.213.1.1.4.2.282"
        /// TRE_A11 (IHE format codes).
        public static let iheFormat = "1.3.6.1.4.1.19376.1.2.3"
        /// National health-professional identifiers (XCN assigning authority).
        public static let professional = "1.2.250.1.71.4.2.1"
        /// National structure identifiers (XON assigning authority).
        public static let structure = "1.2.250.1.71.4.2.2"
    }
}

/// An `author` of a DocumentEntry or SubmissionSet, in HL7 v2 datatypes as XDS wants them.
public struct XDSAuthor: Sendable, Hashable {
    /// XCN: `<idNat>^NOM^Prénom^^^Prefix^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS`.
    public var person: String?
    /// XON: `<Raison sociale>^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^<idNat structure>`.
    public var institutions: [String]
    /// authorRole values.
    public var roles: [String]
    /// authorSpecialty values: `code^display^codeSystem`.
    public var specialties: [String]

    public init(person: String?, institutions: [String] = [], roles: [String] = [], specialties: [String] = []) {
        self.person = person
        self.institutions = institutions
        self.roles = roles
        self.specialties = specialties
    }
}

/// One DocumentEntry (`rim:ExtrinsicObject`) and its document.
public struct DocumentEntryMetadata: Sendable, Hashable {
    /// Symbolic id inside the submission (`urn:uuid:…`), also the `xdsb:Document/@id`.
    public var entryID: String
    public var uniqueId: String
    /// `<INS>^^^&<OID>&ISO^NH`.
    public var patientId: String
    /// `<IPP>^^^&<OID>&ISO^PI` (the patientId when there is no IPP).
    public var sourcePatientId: String
    /// `PID-5|…`, `PID-7|…`, `PID-8|…`.
    public var sourcePatientInfo: [String]
    public var mimeType: String
    public var title: String?
    /// UTC `YYYYMMDDhhmmss`.
    public var creationTime: String
    public var serviceStartTime: String?
    public var serviceStopTime: String?
    public var languageCode: String
    public var legalAuthenticator: String?
    public var authors: [XDSAuthor]
    public var classCode: CodedValue
    public var typeCode: CodedValue
    public var formatCode: CodedValue
    public var healthcareFacilityTypeCode: CodedValue
    public var practiceSettingCode: CodedValue
    public var confidentialityCodes: [CodedValue]
    public var eventCodes: [CodedValue]
    /// Bytes, and lowercase hex SHA-1.
    public var size: Int?
    public var hash: String?
    /// SHA-256 of the bytes when the caller already has it (the built CDA's journal digest): the
    /// submission set signature's manifest takes it instead of hashing the document again.
    public var sha256: Data?
    /// For a replacement: the `targetObject` of the RPLC association, the previous entry's
    /// entryUUID (`DocumentEntryMapper.entryUUID(uniqueId:)` for documents Passerelle sent).
    public var replaces: String?
    /// The document's file name inside an XDM subset (the `URI` slot, ITI-32); none in ITI-41.
    public var uri: String?
    /// Extra metadata slots (ITI TF-3 §4.1.14), e.g. the ANS deletion action of an XDM archive.
    public var extraSlots: [String: [String]] = [:]
    /// The document's bytes: they travel as a binary MIME part, never base64-inlined (a file
    /// is read in chunks while sending; size and hash must then be given by the caller).
    public var content: ContentBytes

    public init(entryID: String = "urn:uuid:\(UUID.random().uuidString.lowercased())", uniqueId: String, patientId: String,
                sourcePatientId: String, sourcePatientInfo: [String] = [], mimeType: String, title: String? = nil,
                creationTime: String, serviceStartTime: String? = nil, serviceStopTime: String? = nil,
                languageCode: String = "fr-FR", legalAuthenticator: String? = nil, authors: [XDSAuthor],
                classCode: CodedValue, typeCode: CodedValue, formatCode: CodedValue,
                healthcareFacilityTypeCode: CodedValue, practiceSettingCode: CodedValue,
                confidentialityCodes: [CodedValue], eventCodes: [CodedValue] = [],
                size: Int? = nil, hash: String? = nil, sha256: Data? = nil, replaces: String? = nil, content: ContentBytes) {
        self.entryID = entryID
        self.uniqueId = uniqueId
        self.patientId = patientId
        self.sourcePatientId = sourcePatientId
        self.sourcePatientInfo = sourcePatientInfo
        self.mimeType = mimeType
        self.title = title
        self.creationTime = creationTime
        self.serviceStartTime = serviceStartTime
        self.serviceStopTime = serviceStopTime
        self.languageCode = languageCode
        self.legalAuthenticator = legalAuthenticator
        self.authors = authors
        self.classCode = classCode
        self.typeCode = typeCode
        self.formatCode = formatCode
        self.healthcareFacilityTypeCode = healthcareFacilityTypeCode
        self.practiceSettingCode = practiceSettingCode
        self.confidentialityCodes = confidentialityCodes
        self.eventCodes = eventCodes
        self.size = size
        self.hash = hash
        self.sha256 = sha256
        self.replaces = replaces
        self.content = content
    }
}

/// The SubmissionSet (`rim:RegistryPackage`) and its DocumentEntries.
public struct SubmissionSetMetadata: Sendable, Hashable {
    public var entryID: String
    /// An OID (the submission set signature references it as `urn:oid:`).
    public var uniqueId: String
    /// The structure's root OID.
    public var sourceId: String
    /// UTC `YYYYMMDDhhmmss`.
    public var submissionTime: String
    public var title: String?
    public var contentTypeCode: CodedValue
    public var author: XDSAuthor
    public var patientId: String
    public var entries: [DocumentEntryMetadata]

    public init(entryID: String = "urn:uuid:\(UUID.random().uuidString.lowercased())", uniqueId: String, sourceId: String,
                submissionTime: String, title: String? = nil, contentTypeCode: CodedValue, author: XDSAuthor,
                patientId: String, entries: [DocumentEntryMetadata]) {
        self.entryID = entryID
        self.uniqueId = uniqueId
        self.sourceId = sourceId
        self.submissionTime = submissionTime
        self.title = title
        self.contentTypeCode = contentTypeCode
        self.author = author
        self.patientId = patientId
        self.entries = entries
    }
}

/// The availabilityStatus of a registry entry: ebRS values, and the DMP's own for logical
/// deletion (TD3.3c) and archiving (TD3.3d).
public enum AvailabilityStatus: String, Sendable, Hashable, CaseIterable {
    case approved = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
    /// Replaced by a newer version (RPLC).
    case deprecated = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
    case deleted = "urn:asip:ci-sis:2010:StatusType:Deleted"
    case archived = "urn:asip:ci-sis:2010:StatusType:Archived"
}

/// An ITI-57 Update Document Set that changes the availabilityStatus of one DocumentEntry
/// (the DMP's deletion, TD3.3c: Approved → Deleted). The SubmissionSet carries no entry.
public struct StatusUpdateMetadata: Sendable, Hashable {
    public var submission: SubmissionSetMetadata
    /// The document's uniqueId (for the journal and messages).
    public var documentUniqueId: String
    /// The entry's entryUUID: the association's targetObject.
    public var entryUUID: String
    public var originalStatus: AvailabilityStatus
    public var newStatus: AvailabilityStatus

    public init(submission: SubmissionSetMetadata, documentUniqueId: String, entryUUID: String,
                originalStatus: AvailabilityStatus = .approved, newStatus: AvailabilityStatus = .deleted) {
        self.submission = submission
        self.documentUniqueId = documentUniqueId
        self.entryUUID = entryUUID
        self.originalStatus = originalStatus
        self.newStatus = newStatus
    }
}
