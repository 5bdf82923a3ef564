import CDA
import Foundation
import IHE
import PasserelleCore

/// Writes the ebRIM 3.0 `lcm:SubmitObjectsRequest` of an XDM subset: one DocumentEntry
/// (ExtrinsicObject), the SubmissionSet (RegistryPackage), HasMember, and RPLC for a
/// replacement. Element order follows rim.xsd (Slot, Name, Description, VersionInfo,
/// Classification, ExternalIdentifier).
struct EbRIMWriter {
    let document: CDADocument
    let metadata: DocumentMetadata
    let sender: XDMSender
    let fileName: String
    let sha1: String
    let entryUUID: String
    let submissionSetUniqueID: String
    let submissionTime: Date

    private var out = ""

    init(document: CDADocument, metadata: DocumentMetadata, sender: XDMSender, fileName: String, sha1: String,
         entryUUID: String, submissionSetUniqueID: String, submissionTime: Date) {
        self.document = document
        self.metadata = metadata
        self.sender = sender
        self.fileName = fileName
        self.sha1 = sha1
        self.entryUUID = entryUUID
        self.submissionSetUniqueID = submissionSetUniqueID
        self.submissionTime = submissionTime
    }

    mutating func write() throws(XDMError) -> Data {
        let id = document.id.description
        func require<T>(_ value: T?, _ field: String) throws(XDMError) -> T {
            guard let value else { throw .missingMetadata(documentID: id, field: field) }
            return value
        }
        let creation = try require(metadata.effectiveTime, "effective_time")
        let facility = try require(metadata.stay?.facilityType, "stay.facility_type (healthcareFacilityTypeCode)")
        let practice = try require(metadata.stay?.practiceSetting, "stay.practice_setting (practiceSettingCode)")
        let patientID = try require(Self.patientID(metadata.patient), "a qualified INS or an IPP (patientId)")
        let setUUID = "urn:uuid:" + UUID.random().uuidString.lowercased()

        out = #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n"
        out += #"<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" "#
            + #"xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">"# + "\n<rim:RegistryObjectList>\n"

        // DocumentEntry
        out += "<rim:ExtrinsicObject id=\(q(entryUUID)) mimeType=\"text/xml\" objectType=\(q(XDS.stableDocumentEntry)) status=\(q(AvailabilityStatus.approved.rawValue))>\n"
        slot("creationTime", [creation.hl7UTC])
        slot("hash", [sha1])
        slot("languageCode", ["fr-FR"])
        if let start = metadata.serviceEvent?.start ?? metadata.stay?.admission { slot("serviceStartTime", [start.hl7UTC]) }
        if let stop = metadata.serviceEvent?.end ?? metadata.stay?.discharge { slot("serviceStopTime", [stop.hl7UTC]) }
        slot("size", [String(document.size)])
        if let ipp = metadata.patient.ipp { slot("sourcePatientId", ["\(ipp.value)^^^&\(ipp.authority)&ISO^PI"]) }
        slot("sourcePatientInfo", Self.sourcePatientInfo(metadata.patient.traits))
        slot("URI", [fileName])
        if metadata.action == .delete { slot(XDMBuilder.deletionSlotName, [XDMBuilder.deletionActionCode]) }
        name(metadata.effectiveTitle ?? document.kind.defaultTitle)
        author(scheme: XDS.DocumentEntry.author, object: entryUUID)
        classification(XDS.DocumentEntry.classCode, entryUUID, document.kind.classCode)
        var confidentiality = [metadata.confidentiality.code]
        confidentiality += metadata.restrictionFlags.compactMap(\.confidentialityCode)
        for code in confidentiality { classification(XDS.DocumentEntry.confidentialityCode, entryUUID, code) }
        if let event = metadata.serviceEvent?.code { classification(XDS.DocumentEntry.eventCode, entryUUID, event) }
        classification(XDS.DocumentEntry.formatCode, entryUUID, XDS.pdfFormat)
        classification(XDS.DocumentEntry.healthcareFacilityTypeCode, entryUUID, facility)
        classification(XDS.DocumentEntry.practiceSettingCode, entryUUID, practice)
        classification(XDS.DocumentEntry.typeCode, entryUUID, document.kind.code)
        externalIdentifier(XDS.DocumentEntry.patientId, entryUUID, patientID, "XDSDocumentEntry.patientId")
        externalIdentifier(XDS.DocumentEntry.uniqueId, entryUUID, id, "XDSDocumentEntry.uniqueId")
        out += "</rim:ExtrinsicObject>\n"

        // SubmissionSet
        out += "<rim:RegistryPackage id=\(q(setUUID))>\n"
        slot("submissionTime", [ZonedDateTime(date: submissionTime, utcOffsetSeconds: 0).hl7UTC])
        name(metadata.effectiveTitle ?? document.kind.defaultTitle)
        author(scheme: XDS.SubmissionSet.author, object: setUUID)
        classification(XDS.SubmissionSet.contentTypeCode, setUUID, sender.contentTypeCode)
        externalIdentifier(XDS.SubmissionSet.uniqueId, setUUID, submissionSetUniqueID, "XDSSubmissionSet.uniqueId")
        externalIdentifier(XDS.SubmissionSet.sourceId, setUUID, sender.structureOID, "XDSSubmissionSet.sourceId")
        externalIdentifier(XDS.SubmissionSet.patientId, setUUID, patientID, "XDSSubmissionSet.patientId")
        out += "</rim:RegistryPackage>\n"
        out += "<rim:Classification id=\(q(newID())) classifiedObject=\(q(setUUID)) classificationNode=\(q(XDS.submissionSetNode))/>\n"
        out += "<rim:Association id=\(q(newID())) associationType=\(q(XDS.AssociationType.hasMember)) sourceObject=\(q(setUUID)) targetObject=\(q(entryUUID))>\n"
        slot("SubmissionSetStatus", ["Original"])
        out += "</rim:Association>\n"
        if metadata.action == .replace {
            let parent = try require(document.replaces ?? metadata.parentID, "parent_id (the replaced document)")
            out += "<rim:Association id=\(q(newID())) associationType=\(q(XDS.AssociationType.replace)) sourceObject=\(q(entryUUID)) "
                + "targetObject=\(q(XDMBuilder.entryUUID(for: parent)))/>\n"
        }
        out += "</rim:RegistryObjectList>\n</lcm:SubmitObjectsRequest>\n"
        return Data(out.utf8)
    }

    // MARK: pieces

    private mutating func slot(_ name: String, _ values: [String]) {
        out += "<rim:Slot name=\(q(name))><rim:ValueList>"
        for value in values { out += "<rim:Value>\(esc(value))</rim:Value>" }
        out += "</rim:ValueList></rim:Slot>\n"
    }

    private mutating func name(_ text: String) {
        out += "<rim:Name><rim:LocalizedString xml:lang=\"fr-FR\" charset=\"UTF-8\" value=\(q(text))/></rim:Name>\n"
    }

    private mutating func classification(_ scheme: String, _ object: String, _ code: CodedValue) {
        out += "<rim:Classification id=\(q(newID())) classificationScheme=\(q(scheme)) classifiedObject=\(q(object)) "
            + "nodeRepresentation=\(q(code.code))>\n"
        slot("codingScheme", [code.codeSystem])
        name(code.displayName)
        out += "</rim:Classification>\n"
    }

    private mutating func externalIdentifier(_ scheme: String, _ object: String, _ value: String, _ label: String) {
        out += "<rim:ExternalIdentifier id=\(q(newID())) identificationScheme=\(q(scheme)) registryObject=\(q(object)) "
            + "value=\(q(value))>\n"
        name(label)
        out += "</rim:ExternalIdentifier>\n"
    }

    private mutating func author(scheme: String, object: String) {
        out += "<rim:Classification id=\(q(newID())) classificationScheme=\(q(scheme)) classifiedObject=\(q(object)) nodeRepresentation=\"\">\n"
        if let author = metadata.author {
            slot("authorInstitution", Self.xon(metadata.structure, sender))
            if let person = Self.xcn(author) { slot("authorPerson", [person]) }
            if let specialty = author.specialty {
                slot("authorSpecialty", ["\(specialty.code)^\(specialty.displayName)^\(specialty.codeSystem)"])
            }
        } else {
            slot("authorInstitution", Self.xon(metadata.structure, sender))
        }
        out += "</rim:Classification>\n"
    }

    // MARK: HL7 v2 data types used by XDS

    /// XCN with the national professional identifier (RPPS: 8…, ADELI: 0…).
    static func xcn(_ professional: HealthProfessional) -> String? {
        guard let id = try? professional.identifier() else { return nil }
        return "\(id.nationalID)^\(hl7(professional.familyName))^\(hl7(professional.givenName))^^^\(hl7(professional.prefix))"
            + "^^^&\(OID.professionalNationalID)&ISO^D^^^IDNPS"
    }

    /// XON of the structure: name and national identifier (1 + FINESS).
    static func xon(_ structure: HealthStructure?, _ sender: XDMSender) -> [String] {
        let name = hl7(structure?.name ?? sender.structureName)
        guard let finess = structure?.finess.flatMap({ try? FINESS($0) }) else { return [name] }
        return ["\(name)^^^^^&\(OID.structureNationalID)&ISO^IDNST^^^\(finess.nationalID)"]
    }

    /// patientId: the INS for a qualified identity, otherwise the IPP.
    static func patientID(_ patient: PatientInfo) -> String? {
        if let ins = patient.shareableINS { return XDS.patientId(ins) }
        if let ipp = patient.ipp { return "\(ipp.value)^^^&\(ipp.authority)&ISO^PI" }
        return nil
    }

    static func sourcePatientInfo(_ traits: IdentityTraits) -> [String] {
        var values: [String] = []
        if let birthName = traits.birthName {
            values.append("PID-5|\(hl7(birthName))^\(hl7(traits.firstBirthGivenName))^^^^^L")
        }
        if let date = traits.birthDate { values.append("PID-7|\(date.hl7)") }
        if let sex = traits.sex { values.append("PID-8|\(sex.hl7Code)") }
        return values
    }

    /// HL7 v2 component text: the delimiters are dropped (they cannot occur in a name).
    static func hl7(_ text: String?) -> String {
        (text ?? "").filter { !"^&~|\\".contains($0) }
    }

    private func q(_ text: String) -> String { "\"" + esc(text) + "\"" }

    private func esc(_ text: String) -> String { XMLText.escape(text) }

    private func newID() -> String { "urn:uuid:" + UUID.random().uuidString.lowercased() }
}
