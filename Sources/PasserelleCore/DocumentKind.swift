import Foundation

/// The SUN-ES usage-rate domain a document counts in.
public enum SUNESDomain: String, Sendable, Hashable, CaseIterable, Codable {
    /// D1: documents issued at discharge (LDL, ordonnance de sortie, CR opératoire).
    case d1 = "D1"
    /// D2: biology reports.
    case d2 = "D2"
    /// D3: imaging reports.
    case d3 = "D3"
}

/// The document types Passerelle shares, with their CI-SIS coding.
///
/// Short names accepted by ``init(parsing:)`` (and in the sidecar `kind` field):
/// `ldl`, `ordonnance` (alias `prescription`), `cro`, `cr-bio`, `cr-imagerie`, or the LOINC code.
public enum DocumentKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// Lettre de liaison à la sortie (LDL-SES), LOINC 11490-0.
    case dischargeLetter = "11490-0"
    /// Ordonnance de sortie / prescription de produits de santé, LOINC 57833-6.
    case prescription = "57833-6"
    /// Compte rendu opératoire, LOINC 34874-8.
    case operativeReport = "34874-8"
    /// Compte rendu d'examens biologiques, LOINC 11502-2.
    case biologyReport = "11502-2"
    /// Compte rendu d'imagerie médicale, LOINC 18748-4.
    case imagingReport = "18748-4"

    /// The LOINC code (CDA `ClinicalDocument/code/@code`, XDS typeCode).
    public var loincCode: String { rawValue }

    /// LOINC, 2.16.840.1.113883.6.1.
    public var codeSystem: String { OID.loinc }

    /// The displayName exactly as in JDV_J07_XdsTypeCode_CISIS (1.2.250.1.213.1.1.5.471).
    public var displayName: String {
        switch self {
        case .dischargeLetter: "Lettre de liaison à la sortie d'un établissement de soins"
        case .prescription: "Prescription de produits de santé"
        case .operativeReport: "CR opératoire"
        case .biologyReport: "CR d'examens biologiques"
        case .imagingReport: "CR d'imagerie médicale"
        }
    }

    /// The document code as a ``CodedValue``.
    public var code: CodedValue { CodedValue(code: loincCode, codeSystem: codeSystem, displayName: displayName) }

    /// The title used when the sidecar gives none.
    public var defaultTitle: String {
        switch self {
        case .dischargeLetter: "Lettre de liaison de sortie"
        case .prescription: "Ordonnance de sortie"
        case .operativeReport: "Compte rendu opératoire"
        case .biologyReport: "Compte rendu de biologie"
        case .imagingReport: "Compte rendu d'imagerie"
        }
    }

    /// The XDS classCode (JDV_J06 CI-SIS / JDV_J57 DMP, code system TRE_A03, 1.2.250.1.213.1.1.4.1).
    ///
    /// The mapping follows the NOS correspondence table ASS_X04 (typeCode → classCode) as far as
    /// public material shows it: discharge letter → 11 Synthèse, prescription → 42, CR → 10;
    /// imaging reports → 31 "Imagerie médicale" (as for the other imaging report codes in ASS_X04).
    /// Check against the current ASS_X04 before DMP homologation.
    public var classCode: CodedValue {
        switch self {
        case .dischargeLetter: CodedValue(code: "11", codeSystem: OID.documentClass, displayName: "Synthèse")
        case .prescription: CodedValue(code: "42", codeSystem: OID.documentClass, displayName: "Prescription")
        case .operativeReport, .biologyReport:
            CodedValue(code: "10", codeSystem: OID.documentClass, displayName: "Compte rendu")
        case .imagingReport: CodedValue(code: "31", codeSystem: OID.documentClass, displayName: "Imagerie médicale")
        }
    }

    /// The SUN-ES domain this document counts in.
    public var sunesDomain: SUNESDomain {
        switch self {
        case .dischargeLetter, .prescription, .operativeReport: .d1
        case .biologyReport: .d2
        case .imagingReport: .d3
        }
    }

    /// The short name used on the command line and in sidecars.
    public var shortName: String {
        switch self {
        case .dischargeLetter: "ldl"
        case .prescription: "ordonnance"
        case .operativeReport: "cro"
        case .biologyReport: "cr-bio"
        case .imagingReport: "cr-imagerie"
        }
    }

    /// Parses a LOINC code or a short name (case-insensitive): `ldl`, `ordonnance`,
    /// `prescription`, `cro`, `cr-bio`, `cr-imagerie`.
    public init?(parsing text: String) {
        let t = text.trimmingWhitespace().lowercased()
        if let kind = DocumentKind(rawValue: t) { self = kind; return }
        if t == "prescription" { self = .prescription; return }
        guard let kind = DocumentKind.allCases.first(where: { $0.shortName == t }) else { return nil }
        self = kind
    }


    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(shortName)
    }

    /// Accepted spellings, for error messages and help texts.
    public static let accepted = "ldl, ordonnance, cro, cr-bio, cr-imagerie (or the LOINC code 11490-0, 57833-6, 34874-8, 11502-2, 18748-4)"
    /// ``accepted`` in French (refusal texts).
    public static let acceptedFrench = "ldl, ordonnance, cro, cr-bio, cr-imagerie (ou le code LOINC 11490-0, 57833-6, 34874-8, 11502-2, 18748-4)"
}

/// Confidentiality of the document (HL7 Confidentiality, JDV_J08 subset N / R / V).
public enum Confidentiality: String, Sendable, Hashable, CaseIterable, Codable {
    case normal = "N"
    case restricted = "R"
    case veryRestricted = "V"

    public var displayName: String {
        switch self {
        case .normal: "Normal"
        case .restricted: "Restreint"
        case .veryRestricted: "Très restreint"
        }
    }

    /// As a coded value (code system 2.16.840.1.113883.5.25).
    public var code: CodedValue { CodedValue(code: rawValue, codeSystem: OID.hl7Confidentiality, displayName: displayName) }
}

/// Where a document goes.
public enum Destination: String, Sendable, Hashable, CaseIterable, Codable {
    /// The patient's DMP (XDS.b ITI-41).
    case dmp
    /// Health professionals' MSSanté mailboxes (or application mailboxes).
    case mssantePS = "mssante_ps"
    /// The patient's MSSanté mailbox (Mon espace santé).
    case mssantePatient = "mssante_patient"

    /// The MetaDMPMSS flag that requests this destination in the ANS HL7 v2 guide.
    public var flag: MetaDMPMSSFlag {
        switch self {
        case .dmp: .destDMP
        case .mssantePS: .destMSSantePS
        case .mssantePatient: .destMSSantePatient
        }
    }

    /// Accepts `dmp`, `mssante_ps`, `mssante_patient` or the HL7 v2 codes DESTDMP, DESTMSSANTEPS, DESTMSSANTEPAT.
    public init?(parsing text: String) {
        if let d = Destination(rawValue: text.lowercased()) { self = d; return }
        guard let flag = MetaDMPMSSFlag(code: text), let d = flag.destination else { return nil }
        self = d
    }

}

/// The MetaDMPMSS table of the ANS HL7 v2 transmission guide (OBX-3 codes): restriction,
/// routing and acknowledgement flags.
public enum MetaDMPMSSFlag: String, Sendable, Hashable, CaseIterable, Codable {
    /// Masqué aux professionnels de santé.
    case masquePS = "MASQUE_PS"
    /// Document non visible par le patient.
    case invisiblePatient = "INVISIBLE_PATIENT"
    /// Non visible par les représentants légaux du patient.
    case invisibleRepresentantsLegaux = "INVISIBLE_REP_LEGAUX"
    /// Connexion secrète.
    case connexionSecrete = "CONNEXION_SECRETE"
    /// Modification du confidentialityCode.
    case modifConfCode = "MODIF_CONF_CODE"
    /// Destinataire DMP.
    case destDMP = "DESTDMP"
    /// Destinataire MSSanté professionnel (PS, organisation ou BAL applicative).
    case destMSSantePS = "DESTMSSANTEPS"
    /// Destinataire MSSanté patient.
    case destMSSantePatient = "DESTMSSANTEPAT"
    /// Accusé de réception demandé.
    case ackReception = "ACK_RECEPTION"
    /// Accusé de lecture demandé (code ACK_LECTURE_MSS in the guide; ACK_LECTURE accepted).
    case ackLecture = "ACK_LECTURE_MSS"

    /// The guide's label.
    public var label: String {
        switch self {
        case .masquePS: "Masqué aux professionnels de Santé"
        case .invisiblePatient: "Document Non Visible par le patient"
        case .invisibleRepresentantsLegaux: "Non visible par les représentants Légaux du patient"
        case .connexionSecrete: "Connexion Secrete"
        case .modifConfCode: "Modification Confidentiality Code"
        case .destDMP: "Destinataire DMP"
        case .destMSSantePS: "Destinataire (Professionnel de Santé, organisation ou BAL applicative)"
        case .destMSSantePatient: "Destinataire Patient"
        case .ackReception: "Accusé de réception"
        case .ackLecture: "Accusé de lecture"
        }
    }

    /// The destination a DEST* flag requests, nil for other flags.
    public var destination: Destination? {
        switch self {
        case .destDMP: .dmp
        case .destMSSantePS: .mssantePS
        case .destMSSantePatient: .mssantePatient
        default: nil
        }
    }

    /// True for the flags that restrict visibility (they become DMP confidentiality codes).
    public var isRestriction: Bool {
        [.masquePS, .invisiblePatient, .invisibleRepresentantsLegaux, .connexionSecrete, .modifConfCode].contains(self)
    }

    /// The XDS confidentialityCode this flag becomes (JDV_J08, code system
    /// 1.2.250.1.213.1.1.4.13), for the three visibility flags; nil otherwise.
    /// Note the J08 code INVISIBLE_REPRESENTANTS_LEGAUX differs from the v2 flag name.
    public var confidentialityCode: CodedValue? {
        let system = "1.2.250.1.213.1.1.4.13"
        switch self {
        case .masquePS: return CodedValue(code: "MASQUE_PS", codeSystem: system, displayName: "Masqué aux professionnels de santé")
        case .invisiblePatient: return CodedValue(code: "INVISIBLE_PATIENT", codeSystem: system, displayName: "Non visible par le patient")
        case .invisibleRepresentantsLegaux:
            return CodedValue(code: "INVISIBLE_REPRESENTANTS_LEGAUX", codeSystem: system,
                              displayName: "Non visible par les représentants légaux du patient")
        default: return nil
        }
    }

    /// Parses a code, case-insensitively; `ACK_LECTURE` is accepted for `ACK_LECTURE_MSS`.
    public init?(code: String) {
        let c = code.uppercased()
        if c == "ACK_LECTURE" { self = .ackLecture; return }
        self.init(rawValue: c)
    }

}
