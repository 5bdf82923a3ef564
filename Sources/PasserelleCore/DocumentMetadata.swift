import Foundation

/// One problem found in a sidecar: the field path (`patient.traits.birth_date`) and what to fix.
public struct MetadataProblem: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var message: String
    /// The message in French for the refusal texts (`[intake] language = "fr"`), when it has
    /// been written; nil: the refusal text quotes the English message as a detail.
    public var french: String?
    public init(_ path: String, _ message: String, french: String? = nil) {
        self.path = path
        self.message = message
        self.french = french
    }
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Why a sidecar cannot be used.
public enum MetadataError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// Not a JSON object at all (syntax error, wrong top-level type).
    case malformedJSON(String)
    /// Decoded, but with problems (every one of them listed).
    case invalid([MetadataProblem])

    public var description: String {
        switch self {
        case .malformedJSON(let reason):
            "sidecar is not a valid JSON object: \(reason)"
        case .invalid(let problems):
            "sidecar has \(problems.count) problem(s):\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
        }
    }

    public var errorDescription: String? { description }
}

/// What to do with the document in the DMP.
public enum DocumentAction: String, Sendable, Hashable, CaseIterable, Codable {
    /// A new document (version 1 of a new set).
    case new
    /// A new version that replaces `parent_id` (same set id).
    case replace
    /// Remove `parent_id` from the DMP.
    case delete
}

/// A local identifier with its assigning authority (IPP, stay number).
public struct LocalIdentifier: Sendable, Hashable, Codable {
    public var value: String
    /// The OID of the assigning authority (the hospital's IPP or stay-number domain).
    public var authority: String
    public init(value: String, authority: String) {
        self.value = value
        self.authority = authority
    }
}

/// The INS as written in a sidecar: not yet checked, see ``checked()``.
public struct INSReference: Sendable, Hashable, Codable {
    public var value: String
    public var oid: String
    public init(value: String, oid: String) {
        self.value = value
        self.oid = oid
    }
    /// The checked INS.
    public func checked() throws(INSError) -> INS { try INS(value, oid: oid) }
}

/// A postal address.
public struct PostalAddress: Sendable, Hashable, Codable {
    public var lines: [String]
    public var postalCode: String?
    public var city: String?
    public var country: String?
    public init(lines: [String] = [], postalCode: String? = nil, city: String? = nil, country: String? = nil) {
        self.lines = lines
        self.postalCode = postalCode
        self.city = city
        self.country = country
    }
    enum CodingKeys: String, CodingKey {
        case lines, city, country
        case postalCode = "postal_code"
    }
}

/// The patient the document is about.
public struct PatientInfo: Sendable, Hashable, Codable {
    /// Local patient id (IPP) and its authority OID.
    public var ipp: LocalIdentifier?
    /// INS matricule and OID (only carried downstream when ``identityStatus`` is QUAL).
    public var ins: INSReference?
    public var identityStatus: IdentityStatus?
    public var traits: IdentityTraits
    public var address: PostalAddress?
    /// Telecom URIs: `tel:+33…`, `mailto:…`.
    public var telecom: [String]

    public init(ipp: LocalIdentifier? = nil, ins: INSReference? = nil, identityStatus: IdentityStatus? = nil,
                traits: IdentityTraits = IdentityTraits(), address: PostalAddress? = nil, telecom: [String] = []) {
        self.ipp = ipp
        self.ins = ins
        self.identityStatus = identityStatus
        self.traits = traits
        self.address = address
        self.telecom = telecom
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case ipp, ins, traits, address, telecom
        case identityStatus = "identity_status"
    }

    public init(from decoder: any Decoder) throws {
        let c = try LenientContainer(decoder, CodingKeys.self)
        ipp = try c(LocalIdentifier.self, .ipp)
        ins = try c(INSReference.self, .ins)
        identityStatus = try c(IdentityStatus.self, .identityStatus)
        traits = try c(IdentityTraits.self, .traits) ?? IdentityTraits()
        address = try c(PostalAddress.self, .address)
        telecom = try c([String].self, .telecom) ?? []
    }

    /// The INS that may be written into documents: only for a QUAL identity with a valid INS.
    public var shareableINS: INS? {
        guard identityStatus?.mayCarryINS == true, let ins else { return nil }
        return try? ins.checked()
    }
}

/// A health professional (author, legal authenticator, performer).
public struct HealthProfessional: Sendable, Hashable, Codable {
    /// RPPS (11 digits); give this or ``adeli``.
    public var rpps: String?
    /// ADELI (9 characters); for professions without an RPPS.
    public var adeli: String?
    public var familyName: String?
    public var givenName: String?
    /// e.g. "Dr".
    public var prefix: String?
    public var suffix: String?
    /// Role / specialty from JDV_J01 (e.g. G15_10/SM26, code system 1.2.250.1.213.1.1.4.5).
    public var specialty: CodedValue?

    public init(rpps: String? = nil, adeli: String? = nil, familyName: String? = nil, givenName: String? = nil,
                prefix: String? = nil, suffix: String? = nil, specialty: CodedValue? = nil) {
        self.rpps = rpps
        self.adeli = adeli
        self.familyName = familyName
        self.givenName = givenName
        self.prefix = prefix
        self.suffix = suffix
        self.specialty = specialty
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case rpps, adeli, prefix, suffix, specialty
        case familyName = "family_name"
        case givenName = "given_name"
    }

    public init(from decoder: any Decoder) throws {
        let c = try LenientContainer(decoder, CodingKeys.self)
        rpps = try c(String.self, .rpps)
        adeli = try c(String.self, .adeli)
        familyName = try c(String.self, .familyName)
        givenName = try c(String.self, .givenName)
        prefix = try c(String.self, .prefix)
        suffix = try c(String.self, .suffix)
        specialty = try c(CodedValue.self, .specialty)
    }

    /// The checked national identifier (RPPS preferred), nil when neither is given.
    public func identifier() throws(IdentifierError) -> ProfessionalIdentifier? {
        if let rpps, !rpps.isEmpty { return .rpps(try RPPS(rpps)) }
        if let adeli, !adeli.isEmpty { return .adeli(try ADELI(adeli)) }
        return nil
    }

    fileprivate func problems(at path: String, requireSpecialty: Bool) -> [MetadataProblem] {
        var out: [MetadataProblem] = []
        let hasRPPS = !(rpps ?? "").isEmpty, hasADELI = !(adeli ?? "").isEmpty
        if !hasRPPS && !hasADELI {
            out.append(MetadataProblem("\(path).rpps", "required: give the RPPS (11 digits) or, failing that, \(path).adeli",
                                       french: "obligatoire : donnez le RPPS (11 chiffres) ou, à défaut, \(path).adeli"))
        } else if hasRPPS && hasADELI {
            out.append(MetadataProblem("\(path).adeli", "give either rpps or adeli, not both"))
        } else {
            do { _ = try identifier() } catch {
                out.append(MetadataProblem("\(path).\(hasRPPS ? "rpps" : "adeli")", error.description, french: error.text(.fr)))
            }
        }
        if familyName.isBlank { out.append(MetadataProblem("\(path).family_name", "required")) }
        if requireSpecialty && specialty == nil {
            out.append(MetadataProblem("\(path).specialty", "required: the role/specialty code from JDV_J01 (e.g. G15_10/SM26)"))
        }
        if let specialty { out += codedProblems(specialty, at: "\(path).specialty") }
        return out
    }
}

/// The health structure (custodian, author organisation).
public struct HealthStructure: Sendable, Hashable, Codable {
    public var finess: String?
    public var name: String?
    public init(finess: String? = nil, name: String? = nil) {
        self.finess = finess
        self.name = name
    }
}

/// The hospital stay the document belongs to (CDA componentOf/encompassingEncounter).
public struct Stay: Sendable, Hashable, Codable {
    /// Stay number and its authority OID.
    public var id: LocalIdentifier?
    public var admission: ZonedDateTime?
    public var discharge: ZonedDateTime?
    /// Healthcare facility type from JDV_J02 (e.g. SA01, code system 1.2.250.1.71.4.2.4).
    public var facilityType: CodedValue?
    /// Practice setting from JDV_J04 (e.g. ETABLISSEMENT, code system 1.2.250.1.213.1.1.4.9).
    public var practiceSetting: CodedValue?

    public init(id: LocalIdentifier? = nil, admission: ZonedDateTime? = nil, discharge: ZonedDateTime? = nil,
                facilityType: CodedValue? = nil, practiceSetting: CodedValue? = nil) {
        self.id = id
        self.admission = admission
        self.discharge = discharge
        self.facilityType = facilityType
        self.practiceSetting = practiceSetting
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, admission, discharge
        case facilityType = "facility_type"
        case practiceSetting = "practice_setting"
    }

    public init(from decoder: any Decoder) throws {
        let c = try LenientContainer(decoder, CodingKeys.self)
        id = try c(LocalIdentifier.self, .id)
        admission = try c(ZonedDateTime.self, .admission)
        discharge = try c(ZonedDateTime.self, .discharge)
        facilityType = try c(CodedValue.self, .facilityType)
        practiceSetting = try c(CodedValue.self, .practiceSetting)
    }
}

/// The act documented (CDA documentationOf/serviceEvent).
public struct ServiceEvent: Sendable, Hashable, Codable {
    public var code: CodedValue?
    public var start: ZonedDateTime?
    public var end: ZonedDateTime?
    /// Defaults to the author.
    public var performer: HealthProfessional?

    public init(code: CodedValue? = nil, start: ZonedDateTime? = nil, end: ZonedDateTime? = nil,
                performer: HealthProfessional? = nil) {
        self.code = code
        self.start = start
        self.end = end
        self.performer = performer
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case code, start, end, performer }

    public init(from decoder: any Decoder) throws {
        let c = try LenientContainer(decoder, CodingKeys.self)
        code = try c(CodedValue.self, .code)
        start = try c(ZonedDateTime.self, .start)
        end = try c(ZonedDateTime.self, .end)
        performer = try c(HealthProfessional.self, .performer)
    }
}

/// The MSSanté message that carries the document.
public struct MSSanteMessage: Sendable, Hashable, Codable {
    /// Professional or application mailboxes (for the `mssante_ps` destination).
    public var recipients: [String]
    /// Reply-To address; defaults to the configured application mailbox.
    public var replyTo: String?
    public var professionalSubject: String?
    public var professionalBody: String?
    public var patientSubject: String?
    public var patientBody: String?

    public init(recipients: [String] = [], replyTo: String? = nil, professionalSubject: String? = nil,
                professionalBody: String? = nil, patientSubject: String? = nil, patientBody: String? = nil) {
        self.recipients = recipients
        self.replyTo = replyTo
        self.professionalSubject = professionalSubject
        self.professionalBody = professionalBody
        self.patientSubject = patientSubject
        self.patientBody = patientBody
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case recipients
        case replyTo = "reply_to"
        case professionalSubject = "ps_subject"
        case professionalBody = "ps_body"
        case patientSubject = "patient_subject"
        case patientBody = "patient_body"
    }

    public init(from decoder: any Decoder) throws {
        let c = try LenientContainer(decoder, CodingKeys.self)
        recipients = try c([String].self, .recipients) ?? []
        replyTo = try c(String.self, .replyTo)
        professionalSubject = try c(String.self, .professionalSubject)
        professionalBody = try c(String.self, .professionalBody)
        patientSubject = try c(String.self, .patientSubject)
        patientBody = try c(String.self, .patientBody)
    }
}

/// Everything Passerelle needs to know to share one document: the JSON sidecar that
/// arrives next to a PDF (see docs/sidecar.md).
///
/// Decode with ``decode(sidecar:)``, which never stops at the first bad field, then call
/// ``validate()`` to get every problem at once.
public struct DocumentMetadata: Sendable, Hashable, Codable {
    public var kind: DocumentKind?
    /// Document id; generated under the structure OID when absent.
    public var id: InstanceIdentifier?
    /// Set id (same for all versions); defaults to ``id`` for a new document.
    public var setID: InstanceIdentifier?
    public var versionNumber: Int
    /// The document replaced or deleted (``action`` replace / delete).
    public var parentID: InstanceIdentifier?
    public var action: DocumentAction
    public var effectiveTime: ZonedDateTime?
    /// Overrides ``DocumentKind/defaultTitle``.
    public var title: String?
    public var confidentiality: Confidentiality
    public var patient: PatientInfo
    public var author: HealthProfessional?
    /// Defaults to the author.
    public var legalAuthenticator: HealthProfessional?
    /// Defaults to the configured [structure].
    public var structure: HealthStructure?
    public var stay: Stay?
    public var serviceEvent: ServiceEvent?
    /// Restriction and acknowledgement flags (MASQUE_PS, INVISIBLE_PATIENT, ACK_RECEPTION, …).
    public var flags: [MetaDMPMSSFlag]
    public var destinations: [Destination]
    public var mssante: MSSanteMessage?

    /// Problems met while decoding (reported again by ``validate()``); not encoded.
    public var decodingProblems: [MetadataProblem] = []

    public init(
        kind: DocumentKind?, id: InstanceIdentifier? = nil, setID: InstanceIdentifier? = nil, versionNumber: Int = 1,
        parentID: InstanceIdentifier? = nil, action: DocumentAction = .new, effectiveTime: ZonedDateTime?,
        title: String? = nil, confidentiality: Confidentiality = .normal, patient: PatientInfo,
        author: HealthProfessional?, legalAuthenticator: HealthProfessional? = nil, structure: HealthStructure? = nil,
        stay: Stay? = nil, serviceEvent: ServiceEvent? = nil, flags: [MetaDMPMSSFlag] = [],
        destinations: [Destination], mssante: MSSanteMessage? = nil
    ) {
        self.kind = kind
        self.id = id
        self.setID = setID
        self.versionNumber = versionNumber
        self.parentID = parentID
        self.action = action
        self.effectiveTime = effectiveTime
        self.title = title
        self.confidentiality = confidentiality
        self.patient = patient
        self.author = author
        self.legalAuthenticator = legalAuthenticator
        self.structure = structure
        self.stay = stay
        self.serviceEvent = serviceEvent
        self.flags = flags
        self.destinations = destinations
        self.mssante = mssante
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, id, action, title, confidentiality, patient, author, structure, stay, flags, destinations, mssante
        case setID = "set_id"
        case versionNumber = "version_number"
        case parentID = "parent_id"
        case effectiveTime = "effective_time"
        case legalAuthenticator = "legal_authenticator"
        case serviceEvent = "service_event"
    }

    public init(from decoder: any Decoder) throws {
        let c = try LenientContainer(decoder, CodingKeys.self)
        kind = try c(DocumentKind.self, .kind)
        id = try c(InstanceIdentifier.self, .id)
        setID = try c(InstanceIdentifier.self, .setID)
        versionNumber = try c(Int.self, .versionNumber) ?? 1
        parentID = try c(InstanceIdentifier.self, .parentID)
        action = try c(DocumentAction.self, .action) ?? .new
        effectiveTime = try c(ZonedDateTime.self, .effectiveTime)
        title = try c(String.self, .title)
        confidentiality = try c(Confidentiality.self, .confidentiality) ?? .normal
        patient = try c(PatientInfo.self, .patient) ?? PatientInfo()
        author = try c(HealthProfessional.self, .author)
        legalAuthenticator = try c(HealthProfessional.self, .legalAuthenticator)
        structure = try c(HealthStructure.self, .structure)
        stay = try c(Stay.self, .stay)
        serviceEvent = try c(ServiceEvent.self, .serviceEvent)
        flags = try c([MetaDMPMSSFlag].self, .flags) ?? []
        destinations = try c([Destination].self, .destinations) ?? []
        mssante = try c(MSSanteMessage.self, .mssante)
        // Whether `patient` was present at all is checked in validate() through its fields.
        if let collector = decoder.userInfo[.metadataProblems] as? ProblemCollector {
            decodingProblems = collector.problems
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(kind, forKey: .kind)
        try c.encodeIfPresent(id, forKey: .id)
        try c.encodeIfPresent(setID, forKey: .setID)
        try c.encode(versionNumber, forKey: .versionNumber)
        try c.encodeIfPresent(parentID, forKey: .parentID)
        try c.encode(action, forKey: .action)
        try c.encodeIfPresent(effectiveTime, forKey: .effectiveTime)
        try c.encodeIfPresent(title, forKey: .title)
        try c.encode(confidentiality, forKey: .confidentiality)
        try c.encode(patient, forKey: .patient)
        try c.encodeIfPresent(author, forKey: .author)
        try c.encodeIfPresent(legalAuthenticator, forKey: .legalAuthenticator)
        try c.encodeIfPresent(structure, forKey: .structure)
        try c.encodeIfPresent(stay, forKey: .stay)
        try c.encodeIfPresent(serviceEvent, forKey: .serviceEvent)
        try c.encode(flags, forKey: .flags)
        try c.encode(destinations, forKey: .destinations)
        try c.encodeIfPresent(mssante, forKey: .mssante)
    }

    // MARK: Decoding

    /// Decodes a sidecar. Field-level problems do not stop decoding: they are kept in
    /// ``decodingProblems`` and reported by ``validate()``.
    /// - Throws: ``MetadataError/malformedJSON(_:)`` when the data is not a JSON object.
    public static func decode(sidecar data: Data) throws(MetadataError) -> DocumentMetadata {
        let collector = ProblemCollector()
        let decoder = JSONDecoder()
        decoder.userInfo[.metadataProblems] = collector
        do {
            return try decoder.decode(DocumentMetadata.self, from: data)
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
                let underlying = (context.underlyingError as NSError?)?.localizedDescription
                throw .malformedJSON(underlying ?? context.debugDescription)
            }
            let (path, message) = describe(error)
            throw .malformedJSON(path.isEmpty ? message : "\(path): \(message)")
        } catch {
            throw .malformedJSON("\(error)")
        }
    }

    /// Decodes and validates: returns the metadata only when it has no problem at all.
    public static func decodeValidated(sidecar data: Data) throws(MetadataError) -> DocumentMetadata {
        let metadata = try decode(sidecar: data)
        let problems = metadata.validate()
        guard problems.isEmpty else { throw .invalid(problems) }
        return metadata
    }

    /// The sidecar JSON (snake_case keys, sorted, pretty-printed).
    public func sidecarJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    // MARK: Derived values

    /// A copy with the configured defaults applied: a generated document id under the
    /// structure OID when the sidecar gave none, the set id of a new document, and the
    /// configured structure when the sidecar names none.
    public func withDefaults(from structure: PasserelleConfiguration.Structure) -> DocumentMetadata {
        var copy = self
        if copy.id == nil { copy.id = .generated(root: structure.oid) }
        if copy.setID == nil && copy.action == .new { copy.setID = copy.id }
        if copy.structure == nil { copy.structure = HealthStructure(finess: structure.finess.value, name: structure.name) }
        return copy
    }

    /// ``title`` or the kind's default title.
    public var effectiveTitle: String? { title.isBlank ? kind?.defaultTitle : title }
    /// ``legalAuthenticator`` or the author.
    public var effectiveLegalAuthenticator: HealthProfessional? { legalAuthenticator ?? author }
    /// ``setID``, or ``id`` for a new document.
    public var effectiveSetID: InstanceIdentifier? { setID ?? (action == .new ? id : nil) }
    /// The restriction flags only (those that become DMP confidentiality codes).
    public var restrictionFlags: [MetaDMPMSSFlag] { flags.filter(\.isRestriction) }

    // MARK: Validation

    /// Every problem in this metadata, each naming its field path and what to fix.
    /// An empty array means the document can go through the pipeline.
    public func validate() -> [MetadataProblem] {
        var p = decodingProblems
        // A value over its length limit is reported alone: the other checks may quote values.
        let tooLong = lengthProblems()
        if !tooLong.isEmpty { return p + tooLong }
        let failed = Set(decodingProblems.map(\.path))
        func require(_ present: Bool, _ path: String, _ message: String = "required", french: String? = nil) {
            if !present && !failed.contains(path) { p.append(MetadataProblem(path, message, french: french)) }
        }

        // Document
        require(kind != nil, "kind", "required: one of \(DocumentKind.accepted)", french: "obligatoire : l'un de \(DocumentKind.acceptedFrench)")
        for (value, path) in [(id, "id"), (setID, "set_id"), (parentID, "parent_id")] {
            if let value, !OID.isValid(value.root) {
                p.append(MetadataProblem("\(path).root", "'\(value.root)' is not an OID (digits separated by dots)",
                                         french: "« \(value.root) » n'est pas un OID (des nombres séparés par des points)"))
            }
        }
        if versionNumber < 1 { p.append(MetadataProblem("version_number", "must be 1 or more")) }
        switch action {
        case .new:
            if parentID != nil { p.append(MetadataProblem("parent_id", "only for action replace or delete; remove it or set action")) }
        case .replace, .delete:
            require(parentID != nil, "parent_id", "required for action \(action.rawValue): the id of the document to \(action.rawValue)",
                    french: "obligatoire pour l'action \(action.rawValue) : l'identifiant du document "
                        + (action == .replace ? "à remplacer" : "à supprimer"))
            if action == .replace && versionNumber < 2 {
                p.append(MetadataProblem("version_number", "a replacement must have version_number 2 or more"))
            }
        }
        require(effectiveTime != nil, "effective_time", "required: ISO 8601 with a UTC offset, e.g. 2026-11-20T14:30:00+01:00")

        // Patient
        p += patientProblems(failed: failed)

        // Author and legal authenticator
        if let author { p += author.problems(at: "author", requireSpecialty: true) }
        else { require(false, "author", "required: the professional who wrote the document (rpps, family_name, specialty)") }
        if let legalAuthenticator { p += legalAuthenticator.problems(at: "legal_authenticator", requireSpecialty: false) }

        // Structure
        if let structure {
            if let finess = structure.finess {
                do { _ = try FINESS(finess) } catch { p.append(MetadataProblem("structure.finess", error.description, french: error.text(.fr))) }
            } else {
                p.append(MetadataProblem("structure.finess", "required when structure is given (or leave structure out to use the configuration)"))
            }
            if structure.name.isBlank { p.append(MetadataProblem("structure.name", "required when structure is given")) }
        }

        // Stay and service event
        p += stayProblems(failed: failed)
        p += serviceEventProblems(failed: failed)

        // Routing
        require(!destinations.isEmpty || failed.contains("destinations"), "destinations",
                "required: at least one of dmp, mssante_ps, mssante_patient")
        if Set(destinations).count != destinations.count {
            p.append(MetadataProblem("destinations", "lists the same destination twice"))
        }
        for (i, flag) in flags.enumerated() where flag.destination != nil {
            p.append(MetadataProblem("flags[\(i)]", "\(flag.rawValue) is a destination: put \(flag.destination!.rawValue) in destinations instead",
                                     french: "\(flag.rawValue) est une destination : mettez \(flag.destination!.rawValue) dans destinations à la place"))
        }
        if destinations.contains(.dmp) || destinations.contains(.mssantePatient) {
            let target = destinations.contains(.dmp) ? "dmp" : "mssante_patient"
            if patient.identityStatus != nil && patient.identityStatus != .qualified {
                p.append(MetadataProblem("patient.identity_status",
                                         "destination \(target) needs a qualified identity (QUAL); this one is \(patient.identityStatus!.rawValue): qualify it or remove \(target)",
                                         french: "la destination \(target) exige une identité qualifiée (QUAL, INS qualifiée) ; celle-ci est "
                                             + "\(patient.identityStatus!.rawValue) : qualifiez l'identité (téléservice INSi) ou retirez \(target)"))
            }
            if patient.ins == nil && !failed.contains("patient.ins") {
                p.append(MetadataProblem("patient.ins", "required for destination \(target): the INS value and OID from INSi",
                                         french: "obligatoire pour la destination \(target) : le matricule INS et son OID, issus du téléservice INSi"))
            }
        }
        if destinations.contains(.mssantePS) {
            let recipients = mssante?.recipients ?? []
            if recipients.isEmpty && !failed.contains("mssante.recipients") {
                p.append(MetadataProblem("mssante.recipients", "required for destination mssante_ps: at least one MSSanté address"))
            }
        }
        if let mssante {
            for (i, address) in mssante.recipients.enumerated() where !isMailAddress(address) {
                p.append(MetadataProblem("mssante.recipients[\(i)]", "not a mail address (expected name@domain)"))
            }
            if let reply = mssante.replyTo, !isMailAddress(reply) {
                p.append(MetadataProblem("mssante.reply_to", "not a mail address (expected name@domain)"))
            }
        }
        return p
    }

    private func patientProblems(failed: Set<String>) -> [MetadataProblem] {
        var p: [MetadataProblem] = []
        func require(_ present: Bool, _ path: String, _ message: String = "required") {
            if !present && !failed.contains(path) { p.append(MetadataProblem(path, message)) }
        }
        if let ipp = patient.ipp {
            if ipp.value.trimmingWhitespace().isEmpty { p.append(MetadataProblem("patient.ipp.value", "required")) }
            if !OID.isValid(ipp.authority) {
                p.append(MetadataProblem("patient.ipp.authority", "must be the OID of the IPP assigning authority"))
            }
        } else {
            require(false, "patient.ipp", "required: the local patient id (value) and its authority OID")
        }
        require(patient.identityStatus != nil, "patient.identity_status", "required: PROV, RECUP, VALI or QUAL")

        var ins: INS?
        if let reference = patient.ins {
            do { ins = try reference.checked() } catch {
                p.append(MetadataProblem(error.isOIDError ? "patient.ins.oid" : "patient.ins.value", error.description, french: error.text(.fr)))
            }
        } else if patient.identityStatus == .qualified {
            require(false, "patient.ins", "required when identity_status is QUAL")
        }

        let traits = patient.traits
        // Minimum traits for any identity (ANS: nom de naissance, 1er prénom, date de naissance, sexe).
        var mandatory: [IdentityTrait] = [.birthName, .firstBirthGivenName, .birthDate, .sex]
        if patient.identityStatus == .qualified { mandatory += [.birthGivenNames, .birthPlace] }
        let missing = Set(traits.missingINSTraits)
        for trait in mandatory where missing.contains(trait) {
            let why = patient.identityStatus == .qualified && (trait == .birthGivenNames || trait == .birthPlace)
                ? "required for a qualified identity (QUAL)" : "required"
            require(false, trait.fieldPath, why)
        }
        if let place = traits.birthPlace, !place.isEmpty, !IdentityTraits.isCOGCode(place) {
            p.append(MetadataProblem("patient.traits.birth_place", IdentityError.invalidBirthPlace.description,
                                     french: IdentityError.invalidBirthPlace.text(.fr)))
        }
        if let birth = traits.birthDate, let effective = effectiveTime?.calendarDate, birth > effective {
            p.append(MetadataProblem("patient.traits.birth_date", "is after effective_time"))
        }
        if let ins {
            do { try traits.checkConsistency(with: ins) } catch {
                if case .traitMismatch(let trait, _) = error {
                    p.append(MetadataProblem(trait.fieldPath, error.description, french: error.text(.fr)))
                } else if error != .invalidBirthPlace {
                    p.append(MetadataProblem("patient.traits", error.description, french: error.text(.fr)))
                }
            }
        }
        for (i, uri) in patient.telecom.enumerated() where !["tel:", "mailto:", "fax:"].contains(where: uri.hasPrefix) {
            p.append(MetadataProblem("patient.telecom[\(i)]", "must be a URI starting with tel:, mailto: or fax:"))
        }
        return p
    }

    private func stayProblems(failed: Set<String>) -> [MetadataProblem] {
        var p: [MetadataProblem] = []
        guard let stay else {
            if kind == .dischargeLetter && !failed.contains("stay") {
                p.append(MetadataProblem("stay", "required for a discharge letter: the stay id, admission and discharge dates"))
            }
            return p
        }
        if let id = stay.id {
            if id.value.trimmingWhitespace().isEmpty { p.append(MetadataProblem("stay.id.value", "required")) }
            if !OID.isValid(id.authority) { p.append(MetadataProblem("stay.id.authority", "must be the OID of the stay-number authority")) }
        } else if !failed.contains("stay.id") {
            p.append(MetadataProblem("stay.id", "required: the stay number (value) and its authority OID"))
        }
        if stay.admission == nil && !failed.contains("stay.admission") {
            p.append(MetadataProblem("stay.admission", "required: ISO 8601 with offset"))
        }
        if kind == .dischargeLetter && stay.discharge == nil && !failed.contains("stay.discharge") {
            p.append(MetadataProblem("stay.discharge", "required for a discharge letter"))
        }
        if let a = stay.admission, let d = stay.discharge, d < a {
            p.append(MetadataProblem("stay.discharge", "is before stay.admission"))
        }
        if stay.facilityType == nil && !failed.contains("stay.facility_type") {
            p.append(MetadataProblem("stay.facility_type", "required: healthcare facility type from JDV_J02 (e.g. SA01, code system 1.2.250.1.71.4.2.4)"))
        }
        if stay.practiceSetting == nil && !failed.contains("stay.practice_setting") {
            p.append(MetadataProblem("stay.practice_setting", "required: practice setting from JDV_J04 (e.g. ETABLISSEMENT, code system 1.2.250.1.213.1.1.4.9)"))
        }
        if let c = stay.facilityType { p += codedProblems(c, at: "stay.facility_type") }
        if let c = stay.practiceSetting { p += codedProblems(c, at: "stay.practice_setting") }
        return p
    }

    private func serviceEventProblems(failed: Set<String>) -> [MetadataProblem] {
        var p: [MetadataProblem] = []
        let needsEvent = kind == .dischargeLetter || kind == .prescription
        guard let event = serviceEvent else {
            if needsEvent && !failed.contains("service_event") {
                p.append(MetadataProblem("service_event", "required for \(kind!.shortName): at least service_event.start",
                                         french: "obligatoire pour \(kind!.shortName) : au moins service_event.start"))
            }
            return p
        }
        if event.start == nil && !failed.contains("service_event.start") {
            p.append(MetadataProblem("service_event.start", "required: ISO 8601 with offset"))
        }
        if kind == .prescription && event.end == nil && !failed.contains("service_event.end") {
            p.append(MetadataProblem("service_event.end", "required for a prescription: the end of its validity period"))
        }
        if let s = event.start, let e = event.end, e < s {
            p.append(MetadataProblem("service_event.end", "is before service_event.start"))
        }
        if let code = event.code { p += codedProblems(code, at: "service_event.code") }
        if let performer = event.performer { p += performer.problems(at: "service_event.performer", requireSpecialty: false) }
        return p
    }
}

/// Code, OID code system and display name must all be present.
private func codedProblems(_ value: CodedValue, at path: String) -> [MetadataProblem] {
    var p: [MetadataProblem] = []
    if value.code.isEmpty { p.append(MetadataProblem("\(path).code", "required")) }
    if !OID.isValid(value.codeSystem) { p.append(MetadataProblem("\(path).code_system", "must be an OID")) }
    if value.displayName.isEmpty { p.append(MetadataProblem("\(path).display_name", "required (CI-SIS requires displayName)")) }
    return p
}

/// A deliberately simple check: one @, non-empty local part, a dot in the domain, no spaces.
func isMailAddress(_ text: String) -> Bool {
    let parts = text.split(separator: "@", omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix(".") else { return false }
    return !text.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" })
}

extension INSError {
    var isOIDError: Bool { if case .unknownOID = self { true } else { false } }
}
