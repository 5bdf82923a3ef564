/// The ANS MSSanté routing matrix (transmission guide, "règles de gestion MSSanté"): which
/// restriction flags allow which MSSanté destinations. The one place it is written: admission
/// refuses a forbidden combination at intake (ACK AE, reason file), and the MSSanté sender
/// applies the same function again before composing a mail (a defensive check only).
///
/// | destinations | allowed when |
/// |---|---|
/// | professionals + patient | MASQUE_PS, INVISIBLE_PATIENT and INVISIBLE_REP_LEGAUX all absent |
/// | professionals only | MASQUE_PS and INVISIBLE_REP_LEGAUX absent (INVISIBLE_PATIENT either way) |
/// | patient only | INVISIBLE_PATIENT, CONNEXION_SECRETE and DESTDMP absent |
///
/// The guide lists "professionals only" with INVISIBLE_PATIENT=Y; a plain professional
/// mailing without any restriction is accepted too (a document masked to professionals never
/// goes to a professional, one invisible to the patient never to the patient). "Les cas non
/// représentés génèrent un message d'erreur."
public enum RoutingMatrix {
    /// Why a combination is forbidden: the rule of the matrix it breaks.
    public enum Rule: String, Sendable, Hashable, CaseIterable {
        case masquedToProfessionals
        case invisibleToPatient
        case bothWithLegalRepresentativesHidden
        case professionalsWithLegalRepresentativesHidden
        case patientOnlyWithSecretConnection
        case patientOnlyWithDMP

        /// The flag the rule is about (the ACK's ERR points at its OBX).
        public var flag: MetaDMPMSSFlag {
            switch self {
            case .masquedToProfessionals: .masquePS
            case .invisibleToPatient: .invisiblePatient
            case .bothWithLegalRepresentativesHidden, .professionalsWithLegalRepresentativesHidden: .invisibleRepresentantsLegaux
            case .patientOnlyWithSecretConnection: .connexionSecrete
            case .patientOnlyWithDMP: .destDMP
            }
        }

        public func text(_ language: IntakeLanguage) -> String {
            let fr = language == .fr
            switch self {
            case .masquedToProfessionals:
                return fr ? "un document masqué aux professionnels de santé (MASQUE_PS) n'est jamais adressé à une boîte MSSanté de professionnel"
                    : "a document masked to professionals (MASQUE_PS) never goes to a professional mailbox"
            case .invisibleToPatient:
                return fr ? "un document non visible par le patient (INVISIBLE_PATIENT) n'est jamais adressé au patient"
                    : "a document invisible to the patient (INVISIBLE_PATIENT) never goes to the patient"
            case .bothWithLegalRepresentativesHidden:
                return fr ? "l'envoi aux professionnels et au patient à la fois n'est possible que sans aucune restriction de visibilité "
                    + "(INVISIBLE_REP_LEGAUX est positionné)"
                    : "professionals and patient together only without any masking flag (INVISIBLE_REP_LEGAUX is set)"
            case .professionalsWithLegalRepresentativesHidden:
                return fr ? "la matrice n'a pas de ligne « professionnels seuls » avec INVISIBLE_REP_LEGAUX"
                    : "the matrix has no professional-only row with INVISIBLE_REP_LEGAUX"
            case .patientOnlyWithSecretConnection:
                return fr ? "l'envoi au seul patient exige CONNEXION_SECRETE à N" : "patient-only mailing requires CONNEXION_SECRETE absent"
            case .patientOnlyWithDMP:
                return fr ? "l'envoi au seul patient exige DESTDMP à N" : "patient-only mailing requires DESTDMP absent"
            }
        }
    }

    /// The rule `destinations` and `flags` break, or nil when the matrix allows them (or when
    /// no MSSanté destination is asked: the matrix is about MSSanté only). DEST* flags count as
    /// destinations.
    public static func violation(destinations: some Sequence<Destination>, flags: some Sequence<MetaDMPMSSFlag>) -> Rule? {
        let flags = Set(flags)
        var asked = Set(destinations)
        for flag in flags { if let d = flag.destination { asked.insert(d) } }
        let toPS = asked.contains(.mssantePS)
        let toPatient = asked.contains(.mssantePatient)
        let masquePS = flags.contains(.masquePS)
        let invisiblePatient = flags.contains(.invisiblePatient)
        let invisibleRL = flags.contains(.invisibleRepresentantsLegaux)
        switch (toPS, toPatient) {
        case (true, true):
            if masquePS { return .masquedToProfessionals }
            if invisiblePatient { return .invisibleToPatient }
            if invisibleRL { return .bothWithLegalRepresentativesHidden }
        case (true, false):
            if masquePS { return .masquedToProfessionals }
            if invisibleRL { return .professionalsWithLegalRepresentativesHidden }
        case (false, true):
            if invisiblePatient { return .invisibleToPatient }
            if flags.contains(.connexionSecrete) { return .patientOnlyWithSecretConnection }
            if asked.contains(.dmp) { return .patientOnlyWithDMP }
        case (false, false):
            return nil
        }
        return nil
    }

    /// ``violation(destinations:flags:)`` of a document's metadata.
    public static func violation(_ metadata: DocumentMetadata) -> Rule? {
        violation(destinations: metadata.destinations, flags: metadata.flags)
    }
}
