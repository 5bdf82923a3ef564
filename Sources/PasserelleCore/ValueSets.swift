import Foundation

/// A CI-SIS value set (JDV) small enough to ship in the binary, so configured codes are checked
/// when the configuration is read rather than when the DMP refuses a document.
/// The content matches the ANS files in conformance/cda/value-sets (a test compares them).
public struct CISISValueSet: Sendable, Hashable {
    public let name: String
    public let concepts: [CodedValue]

    public init(name: String, concepts: [CodedValue]) {
        self.name = name
        self.concepts = concepts
    }

    /// The concept with this code, whatever its code system.
    public func concept(code: String) -> CodedValue? { concepts.first { $0.code == code } }

    /// Checks `value` against the set: the code must be in it with the same code system, and a
    /// display name, when given, must be the set's (CI-SIS compares it). Returns the concept
    /// (its display name filled in when `value` has none), or why it is not acceptable.
    public func check(_ value: CodedValue) -> Result<CodedValue, CodedValueProblem> {
        guard let concept = concept(code: value.code) else {
            let examples = concepts.prefix(4).map(\.code).joined(separator: ", ")
            return .failure(CodedValueProblem("code \"\(value.code)\" is not in \(name) (e.g. \(examples))"))
        }
        guard concept.codeSystem == value.codeSystem else {
            return .failure(CodedValueProblem("code \(value.code) of \(name) has code system \(concept.codeSystem), not \(value.codeSystem)"))
        }
        if !value.displayName.isEmpty && value.displayName != concept.displayName {
            return .failure(CodedValueProblem("the display name of \(value.code) in \(name) is \"\(concept.displayName)\""))
        }
        return .success(concept)
    }
}

/// Why a coded value is not acceptable (text for an operator).
public struct CodedValueProblem: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension CodedValue {
    /// Reads `code^codeSystemOID^displayName` (the HL7 v2 CE order with the OID second, as
    /// configuration files write it); the display name may be left out (`code^OID`).
    public static func parse(caretSeparated text: String) -> Result<CodedValue, CodedValueProblem> {
        let parts = text.split(separator: "^", omittingEmptySubsequences: false).map { $0.trimmingWhitespace() }
        guard parts.count == 2 || parts.count == 3, !parts[0].isEmpty else {
            return .failure(CodedValueProblem("expected code^codeSystemOID^displayName, e.g. \"SA01^1.2.250.1.71.4.2.4^Etablissement public de santé\""))
        }
        guard OID.isValid(parts[1]) else {
            return .failure(CodedValueProblem("the code system \"\(parts[1])\" is not an OID (digits separated by dots)"))
        }
        return .success(CodedValue(code: parts[0], codeSystem: parts[1], displayName: parts.count == 3 ? parts[2] : ""))
    }

    /// Checks an author role/specialty (JDV_J01_XdsAuthorSpecialty_CISIS). That value set is not
    /// shipped, so only its shape is checked: a display name, and TRE_G15 codes look like `G15_10/SM26`.
    public func checkedAuthorSpecialty() -> Result<CodedValue, CodedValueProblem> {
        if displayName.isEmpty {
            return .failure(CodedValueProblem("the display name is required (CI-SIS checks it): code^codeSystemOID^displayName"))
        }
        if codeSystem == OID.authorSpecialty && !code.hasPrefix("G15_") {
            return .failure(CodedValueProblem("\"\(code)\" is not a TRE_G15 code (G15_10 for a physician, G15_10/SM26 with a specialty)"))
        }
        return .success(self)
    }
}

/// The value sets Passerelle checks configured codes against.
public enum CISISValueSets {
    /// JDV_J02_XdsHealthcareFacilityTypeCode_CISIS (1.2.250.1.213.1.1.5.466): healthCareFacility/code, XDS healthcareFacilityTypeCode.
    public static let facilityType = CISISValueSet(name: "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS", concepts: [
        CodedValue(code: "EXP_PATIENT", codeSystem: "1.2.250.1.213.1.1.4.6", displayName: "Expression personnelle du patient"),
        CodedValue(code: "SNR", codeSystem: "1.2.250.1.213.1.1.4.6", displayName: "Service numérique référencé"),
        CodedValue(code: "SA01", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissement public de santé"),
        CodedValue(code: "SA02", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Hôpital militaire du Service de santé des armées"),
        CodedValue(code: "SA03", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissement privé PSPH"),
        CodedValue(code: "SA04", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissement privé non PSPH"),
        CodedValue(code: "SA05", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Centre de santé"),
        CodedValue(code: "SA06", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Autre structure du Service de santé des armées"),
        CodedValue(code: "SA07", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Cabinet individuel"),
        CodedValue(code: "SA08", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Cabinet de groupe"),
        CodedValue(code: "SA09", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Exercice en société"),
        CodedValue(code: "SA10", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Transporteur sanitaire"),
        CodedValue(code: "SA12", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissement de soins et prévention"),
        CodedValue(code: "SA13", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Prévention et soins en entreprise"),
        CodedValue(code: "SA14", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissements scolaires, universitaires et de formation hors champ FINESS"),
        CodedValue(code: "SA15", codeSystem: "1.2.250.1.71.4.2.4", displayName: "PMI et Planification familiale"),
        CodedValue(code: "SA16", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissement pour personnes handicapées"),
        CodedValue(code: "SA17", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissement pour personnes âgées"),
        CodedValue(code: "SA18", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissement aide à la famille"),
        CodedValue(code: "SA19", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissements FINESS de formation aux professions sanitaires et sociales"),
        CodedValue(code: "SA20", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissement pour la protection de l'enfance"),
        CodedValue(code: "SA21", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Etablissement d'hébergement et de réadaptation"),
        CodedValue(code: "SA22", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Recherche"),
        CodedValue(code: "SA23", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Assurance privée"),
        CodedValue(code: "SA24", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Organisme de sécurité sociale"),
        CodedValue(code: "SA25", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Laboratoire de biologie médicale"),
        CodedValue(code: "SA26", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Ministère ou Service déconcentré"),
        CodedValue(code: "SA27", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Collectivité territoriale"),
        CodedValue(code: "SA28", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Association ou organisme humanitaire"),
        CodedValue(code: "SA29", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Laboratoire d'analyses et de biologie médicale"),
        CodedValue(code: "SA30", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Autre établissement sanitaire"),
        CodedValue(code: "SA31", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Répartition et Distribution de médicaments et dispositifs médicaux"),
        CodedValue(code: "SA32", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Fabrication, Exploitation et Importation de médicaments et dispositifs médicaux"),
        CodedValue(code: "SA33", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Pharmacie d'officine"),
        CodedValue(code: "SA34", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Centre de dialyse"),
        CodedValue(code: "SA35", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Para-pharmacie"),
        CodedValue(code: "SA36", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Centre anti-cancer"),
        CodedValue(code: "SA37", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Centre de transfusion sanguine"),
        CodedValue(code: "SA38", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Pharmacie minière"),
        CodedValue(code: "SA39", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Pharmacie mutualiste"),
        CodedValue(code: "SA40", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Secteur privé, praticien hospitalier temps plein"),
        CodedValue(code: "SA41", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Autre établissement du domaine social ou médico-social"),
        CodedValue(code: "SA42", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Appareillage médical"),
        CodedValue(code: "SA43", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Secteur non défini"),
        CodedValue(code: "SA44", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Recrutement ou Gestion RH"),
        CodedValue(code: "SA45", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Communication, Marketing, Consulting, Média"),
        CodedValue(code: "SA46", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Fabrication, Exploitation, Importation, Répartition, Distribution médicaments et dispositifs médicaux"),
        CodedValue(code: "SA47", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Incendie et secours"),
        CodedValue(code: "SA48", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Entreprise industrielle et tertiaire hors industrie pharmaceutique"),
        CodedValue(code: "SA49", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Entité Outre-Mer"),
        CodedValue(code: "SA50", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Permanence des soins ambulatoires hors cabinet"),
        CodedValue(code: "SA51", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Structure de coopération avec autorisation de soins"),
        CodedValue(code: "SA52", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Maison de santé ou Pôle de santé"),
        CodedValue(code: "SA53", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Siège administratif d'un établissement de santé"),
        CodedValue(code: "SA54", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Centre de dépistage et de prévention"),
        CodedValue(code: "SA55", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Laboratoire pharmaceutique préparant et délivrant des allergènes"),
        CodedValue(code: "SA56", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Propharmacie"),
        CodedValue(code: "SA57", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Structure de coopération avec mission de coordination de soins"),
        CodedValue(code: "SA58", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Entreprise de taxis"),
        CodedValue(code: "SA59", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Laboratoire de biologie médicale hors catégorie standard"),
        CodedValue(code: "SA60", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Centres médicaux SNCF"),
        CodedValue(code: "SA61", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Structure Dispensatrice à domicile d'Oxygène à usage médical"),
        CodedValue(code: "SA63", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Communauté professionnelle territoriale de santé et équipe de soins spécialisés"),
        CodedValue(code: "SA64", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Société de téléconsultation"),
        CodedValue(code: "SA65", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Antenne de pharmacie"),
        CodedValue(code: "SA66", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Services de Prévention et de Santé au Travail (SPST)"),
        CodedValue(code: "SA67", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Maisons médicales de garde (MMG)"),
        CodedValue(code: "SA68", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Services départementaux d'incendie et de secours"),
        CodedValue(code: "SA69", codeSystem: "1.2.250.1.71.4.2.4", displayName: "Maisons de naissance"),
    ])
    /// JDV_J04_XdsPracticeSettingCode_CISIS (1.2.250.1.213.1.1.5.467): standardIndustryClassCode, XDS practiceSettingCode.
    public static let practiceSetting = CISISValueSet(name: "JDV_J04_XdsPracticeSettingCode_CISIS", concepts: [
        CodedValue(code: "EXP_PATIENT", codeSystem: "1.2.250.1.213.1.1.4.6", displayName: "Expression personnelle du patient"),
        CodedValue(code: "SNR", codeSystem: "1.2.250.1.213.1.1.4.6", displayName: "Service numérique référencé"),
        CodedValue(code: "AMBULATOIRE", codeSystem: "1.2.250.1.213.1.1.4.9", displayName: "Ambulatoire"),
        CodedValue(code: "AMO", codeSystem: "1.2.250.1.213.1.1.4.9", displayName: "Organisme d'assurance maladie obligatoire"),
        CodedValue(code: "DEPISTAGE", codeSystem: "1.2.250.1.213.1.1.4.9", displayName: "Dépistage"),
        CodedValue(code: "ESSMS", codeSystem: "1.2.250.1.213.1.1.4.9", displayName: "Etablissement ou Service Social ou Médico-Social"),
        CodedValue(code: "ETABLISSEMENT", codeSystem: "1.2.250.1.213.1.1.4.9", displayName: "Etablissement de santé"),
        CodedValue(code: "HAD", codeSystem: "1.2.250.1.213.1.1.4.9", displayName: "Hospitalisation à domicile"),
        CodedValue(code: "MAD", codeSystem: "1.2.250.1.213.1.1.4.9", displayName: "Maintien à domicile"),
        CodedValue(code: "PALLIATIF", codeSystem: "1.2.250.1.213.1.1.4.9", displayName: "Soins palliatifs"),
        CodedValue(code: "SAD", codeSystem: "1.2.250.1.213.1.1.4.9", displayName: "Soins à domicile"),
        CodedValue(code: "SAMU_SMUR", codeSystem: "1.2.250.1.213.1.1.4.9", displayName: "SAMU/SMUR"),
    ])
}

/// Values the configuration supplies (`[cda] default_*`) for what HL7 v2 messages do not carry:
/// the author's role/specialty and the stay's facility type and practice setting. Used only
/// where the document lacks them; what the document says always wins.
public struct DocumentDefaults: Sendable, Hashable {
    /// JDV_J01 author role/specialty (`assignedAuthor/code`).
    public var authorSpecialty: CodedValue?
    /// JDV_J02 healthcare facility type (`healthCareFacility/code`).
    public var facilityType: CodedValue?
    /// JDV_J04 practice setting.
    public var practiceSetting: CodedValue?

    public init(authorSpecialty: CodedValue? = nil, facilityType: CodedValue? = nil, practiceSetting: CodedValue? = nil) {
        self.authorSpecialty = authorSpecialty
        self.facilityType = facilityType
        self.practiceSetting = practiceSetting
    }

    /// `metadata` with the missing values filled in. A stay is completed, never invented: a
    /// document without one still needs PV1 (stay id and admission).
    public func apply(to metadata: DocumentMetadata) -> DocumentMetadata {
        var copy = metadata
        if copy.author != nil && copy.author?.specialty == nil { copy.author?.specialty = authorSpecialty }
        if copy.stay != nil {
            if copy.stay?.facilityType == nil { copy.stay?.facilityType = facilityType }
            if copy.stay?.practiceSetting == nil { copy.stay?.practiceSetting = practiceSetting }
        }
        return copy
    }
}
