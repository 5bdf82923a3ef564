import CDA
import Foundation
import OpenSSLKit
import PasserelleCore

/// Structure-wide values of an XDS submission that no document carries (DMP and XDM alike).
public struct SubmissionSettings: Sendable, Hashable {
    /// The structure's root OID: SubmissionSet sourceId and root of the generated uniqueIds.
    public var sourceId: String
    /// The structure (authorInstitution).
    public var structure: HealthStructure
    /// SubmissionSet contentTypeCode (JDV_J03 / TRE_A00-ProducteurDocNonSante or care context).
    public var contentTypeCode: CodedValue
    /// Used when the document's stay gives none (JDV_J02 / JDV_J04); without them the stay
    /// must give both.
    public var defaultFacilityType: CodedValue?
    public var defaultPracticeSetting: CodedValue?
    /// What the channel accepts of the patient and the author.
    public var rules: MappingRules

    public init(sourceId: String, structure: HealthStructure,
                contentTypeCode: CodedValue = CodedValue(code: "03", codeSystem: "1.2.250.1.213.2.2", displayName: "Hospitalisation complète"),
                defaultFacilityType: CodedValue? = CodedValue(code: "SA01", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissement public de santé"),
                defaultPracticeSetting: CodedValue? = CodedValue(code: "ETABLISSEMENT", codeSystem: "1.2.250.1.213.1.1.4.9", displayName: "Etablissement de santé"),
                rules: MappingRules = .dmp) {
        self.sourceId = sourceId
        self.structure = structure
        self.contentTypeCode = contentTypeCode
        self.defaultFacilityType = defaultFacilityType
        self.defaultPracticeSetting = defaultPracticeSetting
        self.rules = rules
    }

    /// From the `[structure]` section of the configuration.
    public init(_ structure: PasserelleConfiguration.Structure) {
        self.init(sourceId: structure.oid, structure: HealthStructure(finess: structure.finess.value, name: structure.name))
    }
}

/// What a channel accepts of the patient and the author: the one place where the DMP and an
/// XDM archive sent over MSSanté differ in their metadata.
public struct MappingRules: Sendable, Hashable {
    /// XDM may name the patient by the IPP when the identity is not qualified; the DMP only
    /// takes a qualified identity's INS.
    public var acceptsIPP: Bool
    /// The DMP needs the author (RPPS/ADELI); an XDM archive may come from the structure alone.
    public var requiresAuthor: Bool

    public static let dmp = MappingRules(acceptsIPP: false, requiresAuthor: true)
    public static let xdm = MappingRules(acceptsIPP: true, requiresAuthor: false)
}

/// Maps a CDA document and its sidecar metadata to XDS DocumentEntry / SubmissionSet
/// metadata, as the ANS `CDAHeaderToXDM` mapping does: identifiers and codes come from the
/// CDA header facts (``CDADocument``), people and context from the metadata that produced it.
/// The DMP (ITI-41/57) and MSSanté's XDM archives (ITI-32) both use it.
public struct DocumentEntryMapper: Sendable {
    public var settings: SubmissionSettings

    public init(settings: SubmissionSettings) { self.settings = settings }

    /// `urn:ihe:iti:xds-sd:pdf:2008` for the N1 PDF bodies Passerelle builds; a structured
    /// body from a producer gets its kind's CI-SIS / IHE format code.
    public static func formatCode(kind: DocumentKind, origin: CDADocument.Origin) -> CodedValue {
        if origin == .built {
            return XDS.pdfFormat
        }
        switch kind {
        case .dischargeLetter:
            return CodedValue(code: "urn:asip:ci-sis:ldl-ses:2017", codeSystem: XDS.CodeSystem.ansFormat, displayName: "Lettre de liaison à la sortie d'un établissement de santé")
        case .biologyReport:
            return CodedValue(code: "urn:ihe:lab:xd-lab:2008", codeSystem: XDS.CodeSystem.iheFormat, displayName: "CR d'examens biologiques")
        case .imagingReport:
            return CodedValue(code: "urn:ihe:rad:CDA:ImagingReportStructuredHeadings:2013", codeSystem: XDS.CodeSystem.iheFormat, displayName: "Compte rendu d'imagerie médicale")
        case .prescription:
            return CodedValue(code: "urn:ihe:pharm:pre:2010", codeSystem: XDS.CodeSystem.iheFormat, displayName: "Prescription de médicaments")
        case .operativeReport:
            // No kind-specific code verified for the CRO: the CI-SIS structured-header code.
            return CodedValue(code: "urn:asip:ci-sis:2010", codeSystem: XDS.CodeSystem.ansFormat, displayName: "Document à entête CI-SIS")
        }
    }

    /// The DocumentEntry of `cda`.
    public func documentEntry(cda: CDADocument, metadata: DocumentMetadata) throws(IHEError) -> DocumentEntryMetadata {
        let id = cda.id.description
        let patientId: String
        if let ins = cda.ins {
            patientId = Self.patientId(ins)
        } else if settings.rules.acceptsIPP, let ipp = metadata.patient.ipp {
            patientId = Self.cx(ipp)
        } else if settings.rules.acceptsIPP {
            throw .missingMetadata(documentID: id, field: "a qualified INS or an IPP (patientId)")
        } else {
            throw .metadata("document \(id): no INS in the CDA header; the DMP only accepts documents of a qualified (QUAL) identity")
        }
        if settings.rules.requiresAuthor, metadata.author == nil { throw .metadata("document \(id): no author") }
        let creation = try Self.utc(hl7: cda.effectiveTime, field: "ClinicalDocument/effectiveTime of \(id)")
        let start = metadata.serviceEvent?.start ?? metadata.stay?.admission
        let stop = metadata.serviceEvent?.end ?? metadata.stay?.discharge
        guard let facility = metadata.stay?.facilityType ?? settings.defaultFacilityType else {
            throw .missingMetadata(documentID: id, field: "stay.facility_type (healthcareFacilityTypeCode)")
        }
        guard let practice = metadata.stay?.practiceSetting ?? settings.defaultPracticeSetting else {
            throw .missingMetadata(documentID: id, field: "stay.practice_setting (practiceSettingCode)")
        }

        // A replacement names its predecessor: the CDA's relatedDocument, else the sidecar's parent.
        let replaced = cda.replaces ?? (metadata.action == .replace ? metadata.parentID : nil)
        if metadata.action == .replace, replaced == nil {
            throw .missingMetadata(documentID: id, field: "parent_id (the replaced document)")
        }
        let sourcePatientId = metadata.patient.ipp.map(Self.cx) ?? patientId
        var info: [String] = []
        let traits = metadata.patient.traits
        if let family = traits.birthName ?? traits.usedName {
            let given = traits.firstBirthGivenName ?? traits.usedGivenName ?? ""
            info.append("PID-5|\(Self.hl7Escaped(family))^\(Self.hl7Escaped(given))^^^^^L")
        }
        if let birth = traits.birthDate {
            info.append("PID-7|" + birth.hl7)
        }
        // HL7 v2 table 0001 (F, M, U), not the v3 code of the CDA header.
        if let sex = traits.sex { info.append("PID-8|\(sex.rawValue)") }

        let confidentiality = [metadata.confidentiality.code] + metadata.restrictionFlags.compactMap(\.confidentialityCode)
        let uniqueId = Self.uniqueId(cda.id)
        return DocumentEntryMetadata(
            entryID: Self.entryUUID(uniqueId: uniqueId), uniqueId: uniqueId, patientId: patientId, sourcePatientId: sourcePatientId,
            sourcePatientInfo: info, mimeType: "text/xml", title: metadata.effectiveTitle ?? cda.kind.defaultTitle,
            creationTime: creation, serviceStartTime: start?.hl7UTC, serviceStopTime: stop?.hl7UTC,
            legalAuthenticator: try metadata.effectiveLegalAuthenticator.map { (p) throws(IHEError) in try Self.xcn(p) },
            authors: [try self.author(metadata.author, structure: metadata.structure)],
            classCode: cda.kind.classCode, typeCode: cda.kind.code,
            formatCode: Self.formatCode(kind: cda.kind, origin: cda.origin),
            healthcareFacilityTypeCode: facility, practiceSettingCode: practice,
            confidentialityCodes: confidentiality, eventCodes: metadata.serviceEvent?.code.map { [$0] } ?? [],
            size: cda.size, hash: cda.sha1.hexString, sha256: cda.sha256,
            replaces: replaced.map { Self.entryUUID(uniqueId: Self.uniqueId($0)) },
            // A file-backed CDA goes into the MTOM body chunk by chunk, straight from its file.
            content: cda.file.map { .file($0.url, size: $0.size) } ?? .data(cda.data))
    }

    /// A SubmissionSet holding the given entries (all for the same patient).
    public func submissionSet(entries: [DocumentEntryMetadata], author: HealthProfessional?, structure: HealthStructure? = nil,
                              at time: Date = Date()) throws(IHEError) -> SubmissionSetMetadata {
        guard let first = entries.first else { throw .metadata("a submission set needs at least one document") }
        for entry in entries where entry.patientId != first.patientId {
            throw .metadata("document \(entry.uniqueId) is for another patient than \(first.uniqueId); send them separately")
        }
        let stamp = ZonedDateTime(date: time, utcOffsetSeconds: 0).hl7UTC
        return SubmissionSetMetadata(
            uniqueId: Self.generatedOID(root: settings.sourceId, at: time), sourceId: settings.sourceId,
            submissionTime: stamp, title: first.title, contentTypeCode: settings.contentTypeCode,
            author: try self.author(author, structure: structure), patientId: first.patientId, entries: entries)
    }

    /// Convenience: the SubmissionSet of one document.
    public func submission(cda: CDADocument, metadata: DocumentMetadata, at time: Date = Date()) throws(IHEError) -> SubmissionSetMetadata {
        let entry = try documentEntry(cda: cda, metadata: metadata)
        return try submissionSet(entries: [entry], author: metadata.author, structure: metadata.structure, at: time)
    }

    /// The TD3.3c deletion of the document `metadata.parentID` (action `delete`): an ITI-57
    /// status update Approved → Deleted of its entry, under a SubmissionSet of the author.
    public func deletion(metadata: DocumentMetadata, at time: Date = Date()) throws(IHEError) -> StatusUpdateMetadata {
        guard let parent = metadata.parentID else { throw .metadata("a deletion needs parent_id: the id of the document to delete") }
        let ins = try Self.qualifiedINS(metadata, what: "deletion of \(parent)")
        guard let author = metadata.author else { throw .metadata("deletion of \(parent): no author (only the author's structure may delete)") }
        let set = SubmissionSetMetadata(
            uniqueId: Self.generatedOID(root: settings.sourceId, at: time), sourceId: settings.sourceId,
            submissionTime: ZonedDateTime(date: time, utcOffsetSeconds: 0).hl7UTC, contentTypeCode: settings.contentTypeCode,
            author: try self.author(author, structure: metadata.structure), patientId: Self.patientId(ins), entries: [])
        let uniqueId = Self.uniqueId(parent)
        return StatusUpdateMetadata(submission: set, documentUniqueId: uniqueId, entryUUID: Self.entryUUID(uniqueId: uniqueId))
    }

    /// The patient's INS, when the identity is qualified (the DMP takes nothing else).
    public static func qualifiedINS(_ metadata: DocumentMetadata, what: String) throws(IHEError) -> INS {
        guard metadata.patient.identityStatus == .qualified, let reference = metadata.patient.ins else {
            throw .metadata("\(what): the DMP only accepts a qualified (QUAL) identity with its INS")
        }
        do { return try INS(reference.value, oid: reference.oid) } catch { throw .metadata("\(what): \(error)") }
    }

    // MARK: HL7 v2 datatypes

    /// The author: the professional (when known) and the structure's XON.
    func author(_ person: HealthProfessional?, structure: HealthStructure?) throws(IHEError) -> XDSAuthor {
        if settings.rules.requiresAuthor, person == nil { throw .metadata("no author: the DMP names the professional") }
        let s = structure ?? settings.structure
        var institutions: [String] = []
        if let finess = s.finess {
            institutions.append("\(Self.hl7Escaped(s.name ?? ""))^^^^^&\(XDS.CodeSystem.structure)&ISO^IDNST^^^1\(finess)")
        }
        let specialties = person?.specialty.map { ["\($0.code)^\(Self.hl7Escaped($0.displayName))^\($0.codeSystem)"] } ?? []
        return XDSAuthor(person: try person.map { (p) throws(IHEError) in try Self.xcn(p) }, institutions: institutions, specialties: specialties)
    }

    /// XCN of a professional: national id, names, prefix, assigning authority, IDNPS.
    static func xcn(_ p: HealthProfessional) throws(IHEError) -> String {
        let id: ProfessionalIdentifier?
        do { id = try p.identifier() } catch { throw .metadata("professional identifier: \(error)") }
        guard let id else { throw .metadata("a professional without RPPS or ADELI cannot be an XDS author") }
        let e = hl7Escaped
        return "\(id.nationalID)^\(e(p.familyName ?? ""))^\(e(p.givenName ?? ""))^^^\(e(p.prefix ?? ""))^^^&\(XDS.CodeSystem.professional)&ISO^D^^^IDNPS"
    }

    /// `<INS>^^^&<OID>&ISO^NH`.
    public static func patientId(_ ins: INS) -> String { XDS.patientId(ins) }

    /// `<IPP>^^^&<OID>&ISO^PI`: the structure's own patient identifier.
    static func cx(_ ipp: LocalIdentifier) -> String { "\(hl7Escaped(ipp.value))^^^&\(ipp.authority)&ISO^PI" }

    /// The entryUUID Passerelle gives the DocumentEntry of `uniqueId`: a name-based UUID
    /// (RFC 4122 version 5, OID namespace), so the same document always gets the same one.
    /// A registry keeps the entryUUIDs a source assigns, so a later replacement (RPLC) or
    /// deletion (TD3.3c) can name the entry without first searching the DMP for it (TD3.1).
    public static func entryUUID(uniqueId: String) -> String {
        let oidNamespace: [UInt8] = [0x6b, 0xa7, 0xb8, 0x12, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8]
        var bytes = Array(Digest.sha1(Data(oidNamespace) + Data(uniqueId.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0f) | 0x50
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = Data(bytes).hexString
        let groups = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return "urn:uuid:" + groups.joined(separator: "-")
    }

    /// XDS uniqueId of a CDA id: `root^extension`, or the root alone.
    public static func uniqueId(_ id: InstanceIdentifier) -> String { id.description }

    /// A fresh OID under `root` (submission set uniqueIds must be OIDs).
    public static func generatedOID(root: String, at time: Date = Date()) -> String {
        let millis = UInt64(time.timeIntervalSince1970 * 1000)
        return "\(root).5.\(millis).\(UInt32.random(in: 1...UInt32.max))"
    }

    /// Escapes the HL7 v2 delimiters (`| ^ ~ \ &`) in a component.
    static func hl7Escaped(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "\\": out += "\\E\\"
            case "|": out += "\\F\\"
            case "^": out += "\\S\\"
            case "&": out += "\\T\\"
            case "~": out += "\\R\\"
            default: out.append(c)
            }
        }
        return out
    }


    /// HL7 TS with offset (`20261120143000+0100`) → UTC `YYYYMMDDhhmmss`.
    static func utc(hl7 text: String, field: String) throws(IHEError) -> String {
        let digits = text.prefix { $0.isASCIIDigit }
        let rest = text.dropFirst(digits.count)
        guard digits.count >= 8, digits.count <= 14, let value = Int(digits) else {
            throw .metadata("\(field) '\(text)' is not an HL7 timestamp")
        }
        _ = value
        guard !rest.isEmpty else { return String(digits) }  // no offset: already as given
        guard rest.count == 5, let sign = rest.first, sign == "+" || sign == "-",
              let hh = Int(rest.dropFirst().prefix(2)), let mm = Int(rest.suffix(2)) else {
            throw .metadata("\(field) '\(text)' has a malformed UTC offset")
        }
        let padded = String(digits) + String(repeating: "0", count: 14 - digits.count)
        func n(_ from: Int, _ len: Int) -> Int { Int(padded.dropFirst(from).prefix(len))! }
        var components = DateComponents(timeZone: TimeZone(secondsFromGMT: (sign == "+" ? 1 : -1) * (hh * 3600 + mm * 60)),
                                        year: n(0, 4), month: n(4, 2), day: n(6, 2), hour: n(8, 2), minute: n(10, 2), second: n(12, 2))
        components.calendar = Calendar(identifier: .gregorian)
        guard let date = components.date else { throw .metadata("\(field) '\(text)' is not a valid date") }
        let utc = ZonedDateTime(date: date, utcOffsetSeconds: 0).hl7UTC
        return String(utc.prefix(max(digits.count, 8)))
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
