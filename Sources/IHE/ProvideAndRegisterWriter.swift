import Foundation
import PasserelleCore

/// Writes the ebRIM 3.0 `xdsb:ProvideAndRegisterDocumentSetRequest` of a submission set.
/// Each `xdsb:Document` holds an `xop:Include` to the MIME part whose Content-ID
/// ``contentID(of:)`` gives: documents never go through base64.
public enum ProvideAndRegisterWriter {
    static let ns = """
    xmlns:xdsb="urn:ihe:iti:xds-b:2007" xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" \
    xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
    """

    /// The `rim:RegistryPackage` of the submission set alone (also what the submission set
    /// signature's Manifest digests for the submission set).
    public static func registryPackage(_ s: SubmissionSetMetadata) throws(IHEError) -> String {
        let id = s.entryID
        var x = "<rim:RegistryPackage id=\"\(try e(id))\" objectType=\"\(XDS.registryPackageType)\">"
        x += try slot("submissionTime", [s.submissionTime])
        if let title = s.title { x += try name(title) }
        x += try author(s.author, scheme: XDS.SubmissionSet.author, object: id, n: 1)
        x += try classification(s.contentTypeCode, scheme: XDS.SubmissionSet.contentTypeCode, object: id, id: "\(id)-ctc")
        x += try external(s.patientId, scheme: XDS.SubmissionSet.patientId, object: id, id: "\(id)-pid", name: "XDSSubmissionSet.patientId")
        x += try external(s.sourceId, scheme: XDS.SubmissionSet.sourceId, object: id, id: "\(id)-src", name: "XDSSubmissionSet.sourceId")
        x += try external(s.uniqueId, scheme: XDS.SubmissionSet.uniqueId, object: id, id: "\(id)-uid", name: "XDSSubmissionSet.uniqueId")
        return x + "</rim:RegistryPackage>"
    }

    /// The whole request element (namespace declarations on it, so it can sit in any envelope).
    public static func request(_ s: SubmissionSetMetadata, registryPackage package: String,
                        signature: DocumentEntryMetadata?) throws(IHEError) -> String {
        var x = "<xdsb:ProvideAndRegisterDocumentSetRequest \(ns)><lcm:SubmitObjectsRequest>"
        x += try registryObjects(s, registryPackage: package, signature: signature)
        x += "</lcm:SubmitObjectsRequest>"
        for entry in s.entries + (signature.map { [$0] } ?? []) {
            x += "<xdsb:Document id=\"\(try e(entry.entryID))\"><xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" href=\"cid:\(contentID(of: entry))\"/></xdsb:Document>"
        }
        return x + "</xdsb:ProvideAndRegisterDocumentSetRequest>"
    }

    /// The `METADATA.XML` of an XDM subset (ITI-32): the same SubmitObjectsRequest as ITI-41's,
    /// standalone; each entry names its file in the subset (``DocumentEntryMetadata/uri``).
    public static func submitObjectsRequest(_ s: SubmissionSetMetadata) throws(IHEError) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            + "<lcm:SubmitObjectsRequest xmlns:lcm=\"urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0\" "
            + "xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\">"
            + (try registryObjects(s, registryPackage: try registryPackage(s), signature: nil)) + "</lcm:SubmitObjectsRequest>\n"
    }

    /// The `rim:RegistryObjectList`: the package, its entries and their associations.
    static func registryObjects(_ s: SubmissionSetMetadata, registryPackage package: String,
                                signature: DocumentEntryMetadata?) throws(IHEError) -> String {
        var x = "<rim:RegistryObjectList>" + package
        x += "<rim:Classification id=\"\(try e(s.entryID))-node\" classifiedObject=\"\(try e(s.entryID))\" classificationNode=\"\(XDS.submissionSetNode)\"/>"
        let all = s.entries + (signature.map { [$0] } ?? [])
        for entry in all { x += try extrinsicObject(entry) }
        var n = 0
        func association(_ type: String, _ source: String, _ target: String, original: Bool) throws(IHEError) -> String {
            n += 1
            var a = "<rim:Association id=\"\(try e(s.entryID))-as\(n)\" associationType=\"\(type)\" sourceObject=\"\(try e(source))\" targetObject=\"\(try e(target))\">"
            if original { a += try slot("SubmissionSetStatus", ["Original"]) }
            return a + "</rim:Association>"
        }
        for entry in all {
            x += try association(XDS.AssociationType.hasMember, s.entryID, entry.entryID, original: true)
        }
        for entry in s.entries {
            if let previous = entry.replaces {
                x += try association(XDS.AssociationType.replace, entry.entryID, previous, original: false)
            }
        }
        if let signature {
            x += try association(XDS.AssociationType.signs, signature.entryID, s.entryID, original: false)
        }
        return x + "</rim:RegistryObjectList>"
    }

    /// The ITI-57 `lcm:SubmitObjectsRequest` of a status update: the SubmissionSet and one
    /// UpdateAvailabilityStatus association from it to the entry.
    public static func updateRequest(_ u: StatusUpdateMetadata) throws(IHEError) -> String {
        let s = u.submission
        var x = "<lcm:SubmitObjectsRequest xmlns:lcm=\"urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0\" "
            + "xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\"><rim:RegistryObjectList>"
        x += try registryPackage(s)
        x += "<rim:Classification id=\"\(try e(s.entryID))-node\" classifiedObject=\"\(try e(s.entryID))\" classificationNode=\"\(XDS.submissionSetNode)\"/>"
        x += "<rim:Association id=\"\(try e(s.entryID))-as1\" associationType=\"\(XDS.AssociationType.updateAvailabilityStatus)\" "
            + "sourceObject=\"\(try e(s.entryID))\" targetObject=\"\(try e(u.entryUUID))\">"
        x += try slot("OriginalStatus", [u.originalStatus.rawValue]) + (try slot("NewStatus", [u.newStatus.rawValue]))
        return x + "</rim:Association></rim:RegistryObjectList></lcm:SubmitObjectsRequest>"
    }

    /// MIME Content-ID (without `<>`) of an entry's document part: RFC 2392 safe characters only.
    public static func contentID(of entry: DocumentEntryMetadata) -> String {
        // ASCII letters, digits, '-' and '.' of the id (a UUID URN: its prefix dropped), by bytes.
        let id = entry.entryID.hasPrefix("urn:uuid:") ? entry.entryID.dropFirst("urn:uuid:".count) : Substring(entry.entryID)
        let safe = id.utf8.filter { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."): true
            default: false
            }
        }
        return "doc-\(String(decoding: safe, as: UTF8.self))@passerelle"
    }

    public static func extrinsicObject(_ d: DocumentEntryMetadata) throws(IHEError) -> String {
        let id = d.entryID
        var x = "<rim:ExtrinsicObject id=\"\(try e(id))\" mimeType=\"\(try e(d.mimeType))\" objectType=\"\(XDS.stableDocumentEntry)\">"
        x += try slot("creationTime", [d.creationTime])
        if let hash = d.hash { x += try slot("hash", [hash]) }
        x += try slot("languageCode", [d.languageCode])
        if let l = d.legalAuthenticator { x += try slot("legalAuthenticator", [l]) }
        if let t = d.serviceStartTime { x += try slot("serviceStartTime", [t]) }
        if let t = d.serviceStopTime { x += try slot("serviceStopTime", [t]) }
        if let size = d.size { x += try slot("size", [String(size)]) }
        x += try slot("sourcePatientId", [d.sourcePatientId])
        if !d.sourcePatientInfo.isEmpty { x += try slot("sourcePatientInfo", d.sourcePatientInfo) }
        if let uri = d.uri { x += try slot("URI", [uri]) }
        for (name, values) in d.extraSlots.sorted(by: { $0.key < $1.key }) { x += try slot(name, values) }
        if let title = d.title { x += try name(title) }
        for (i, a) in d.authors.enumerated() { x += try author(a, scheme: XDS.DocumentEntry.author, object: id, n: i + 1) }
        x += try classification(d.classCode, scheme: XDS.DocumentEntry.classCode, object: id, id: "\(id)-class")
        for (i, c) in d.confidentialityCodes.enumerated() {
            x += try classification(c, scheme: XDS.DocumentEntry.confidentialityCode, object: id, id: "\(id)-conf\(i + 1)")
        }
        for (i, c) in d.eventCodes.enumerated() {
            x += try classification(c, scheme: XDS.DocumentEntry.eventCode, object: id, id: "\(id)-event\(i + 1)")
        }
        x += try classification(d.formatCode, scheme: XDS.DocumentEntry.formatCode, object: id, id: "\(id)-format")
        x += try classification(d.healthcareFacilityTypeCode, scheme: XDS.DocumentEntry.healthcareFacilityTypeCode, object: id, id: "\(id)-hcft")
        x += try classification(d.practiceSettingCode, scheme: XDS.DocumentEntry.practiceSettingCode, object: id, id: "\(id)-pract")
        x += try classification(d.typeCode, scheme: XDS.DocumentEntry.typeCode, object: id, id: "\(id)-type")
        x += try external(d.patientId, scheme: XDS.DocumentEntry.patientId, object: id, id: "\(id)-pid", name: "XDSDocumentEntry.patientId")
        x += try external(d.uniqueId, scheme: XDS.DocumentEntry.uniqueId, object: id, id: "\(id)-uid", name: "XDSDocumentEntry.uniqueId")
        return x + "</rim:ExtrinsicObject>"
    }

    // MARK: Pieces

    static func slot(_ name: String, _ values: [String]) throws(IHEError) -> String {
        var x = "<rim:Slot name=\"\(try e(name))\"><rim:ValueList>"
        for v in values { x += "<rim:Value>\(try e(v))</rim:Value>" }
        return x + "</rim:ValueList></rim:Slot>"
    }

    static func name(_ text: String) throws(IHEError) -> String {
        "<rim:Name><rim:LocalizedString value=\"\(try e(text))\"/></rim:Name>"
    }

    static func classification(_ c: CodedValue, scheme: String, object: String, id: String) throws(IHEError) -> String {
        "<rim:Classification id=\"\(try e(id))\" classificationScheme=\"\(scheme)\" classifiedObject=\"\(try e(object))\" nodeRepresentation=\"\(try e(c.code))\">"
            + (try slot("codingScheme", [c.codeSystem])) + (try name(c.displayName)) + "</rim:Classification>"
    }

    static func author(_ a: XDSAuthor, scheme: String, object: String, n: Int) throws(IHEError) -> String {
        var x = "<rim:Classification id=\"\(try e(object))-author\(n)\" classificationScheme=\"\(scheme)\" classifiedObject=\"\(try e(object))\" nodeRepresentation=\"\">"
        if let p = a.person { x += try slot("authorPerson", [p]) }
        if !a.institutions.isEmpty { x += try slot("authorInstitution", a.institutions) }
        if !a.roles.isEmpty { x += try slot("authorRole", a.roles) }
        if !a.specialties.isEmpty { x += try slot("authorSpecialty", a.specialties) }
        return x + "</rim:Classification>"
    }

    static func external(_ value: String, scheme: String, object: String, id: String, name text: String) throws(IHEError) -> String {
        "<rim:ExternalIdentifier id=\"\(try e(id))\" identificationScheme=\"\(scheme)\" registryObject=\"\(try e(object))\" value=\"\(try e(value))\">"
            + (try name(text)) + "</rim:ExternalIdentifier>"
    }

    /// XML-escaped through PasserelleCore's template renderer (the project's single
    /// implementation of the escaping rules); characters XML cannot carry are refused.
    public static func e(_ text: String) throws(IHEError) -> String {
        do { return try Template.escapedXML(text, key: "v", template: "XML value") } catch { throw .notRepresentable("\(error)") }
    }
}

/// Why IHE content could not be mapped or written.
public enum IHEError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A metadata value holds characters XML cannot carry (control characters): fix the value.
    case notRepresentable(String)
    /// A field XDS requires is missing from the document's metadata (which one, and its XDS name).
    case missingMetadata(documentID: String, field: String)
    /// The document cannot go to this channel as it is (the message says what to fix).
    case metadata(String)

    public var description: String {
        switch self {
        case .notRepresentable(let detail): "value not representable in XML: \(detail)"
        case let .missingMetadata(id, field): "document \(id): XDS metadata needs \(field)"
        case .metadata(let message): message
        }
    }
}
