// The French of the sidecar checks' messages (DocumentMetadata.validate, the JSON decoding),
// for the refusal texts (`[intake] language`): here, below the modules that report them (Intake,
// CDA), so that each can give them. The refusal catalogue itself is Sources/Intake/RefusalTexts.swift.

extension MetadataProblem {
    /// The problem with its sidecar key; in French when its French message is known (given
    /// where the problem is found, or a fixed message of ``frenchMessages``), else with the
    /// English message marked as such.
    public func text(_ language: IntakeLanguage) -> String {
        guard language == .fr else { return description }
        return path.isEmpty ? frenchMessage : "\(path) : \(frenchMessage)"
    }

    /// The message alone, in French (or the English one marked "(en anglais)").
    public var frenchMessage: String { french ?? Self.frenchMessages[message] ?? Self.frenchValueChoice(message) ?? "(en anglais) \(message)" }

    /// Whether a French message is known.
    public var hasFrench: Bool { french != nil || Self.frenchMessages[message] != nil || Self.frenchValueChoice(message) != nil }

    /// A coded field's value outside its list (LenientDecoding): "'X' is not allowed; use one of A, B".
    static func frenchValueChoice(_ message: String) -> String? {
        guard message.hasPrefix("'"), let cut = message.range(of: "' is not allowed; use one of ") else { return nil }
        return "« \(message[message.index(after: message.startIndex)..<cut.lowerBound]) » n'est pas permis ; "
            + "utilisez l'une des valeurs \(message[cut.upperBound...])"
    }

    /// The fixed messages of the sidecar checks (DocumentMetadata.validate, the JSON decoding), in French.
    public static let frenchMessages: [String: String] = {
        var table = [
            "required": "obligatoire",
            "give either rpps or adeli, not both": "donnez soit rpps, soit adeli, pas les deux",
            "required: the role/specialty code from JDV_J01 (e.g. G15_10/SM26)":
                "obligatoire : le code de rôle/spécialité du jeu de valeurs JDV_J01 (par exemple G15_10/SM26)",
            "must be an OID": "doit être un OID",
            "required (CI-SIS requires displayName)": "obligatoire (le CI-SIS exige le libellé displayName)",
            "must be 1 or more": "doit valoir 1 ou plus",
            "only for action replace or delete; remove it or set action":
                "seulement pour l'action replace ou delete : retirez-le ou renseignez action",
            "a replacement must have version_number 2 or more": "un remplacement doit avoir version_number 2 ou plus",
            "required: ISO 8601 with a UTC offset, e.g. 2026-11-20T14:30:00+01:00":
                "obligatoire : date ISO 8601 avec décalage horaire, par exemple 2026-11-20T14:30:00+01:00",
            "required: the professional who wrote the document (rpps, family_name, specialty)":
                "obligatoire : le professionnel qui a rédigé le document (rpps, family_name, specialty)",
            "required when structure is given (or leave structure out to use the configuration)":
                "obligatoire quand structure est renseignée (ou retirez structure pour prendre celle de la configuration)",
            "required when structure is given": "obligatoire quand structure est renseignée",
            "required: at least one of dmp, mssante_ps, mssante_patient":
                "obligatoire : au moins un destinataire parmi dmp, mssante_ps, mssante_patient",
            "lists the same destination twice": "cite deux fois la même destination",
            "required for destination mssante_ps: at least one MSSanté address":
                "obligatoire pour la destination mssante_ps : au moins une adresse MSSanté",
            "not a mail address (expected name@domain)": "n'est pas une adresse de messagerie (attendu : nom@domaine)",
            "must be the OID of the IPP assigning authority": "doit être l'OID de l'autorité d'affectation de l'IPP",
            "required: the local patient id (value) and its authority OID":
                "obligatoire : l'identifiant local du patient, IPP (value), et l'OID de son autorité d'affectation",
            "required: PROV, RECUP, VALI or QUAL": "obligatoire : PROV, RECUP, VALI ou QUAL (statut de l'identité)",
            "required when identity_status is QUAL": "obligatoire quand identity_status vaut QUAL (identité qualifiée)",
            "required for a qualified identity (QUAL)": "obligatoire pour une identité qualifiée (QUAL)",
            "is after effective_time": "est postérieure à effective_time",
            "must be a URI starting with tel:, mailto: or fax:": "doit être une URI commençant par tel:, mailto: ou fax:",
            "required for a discharge letter: the stay id, admission and discharge dates":
                "obligatoire pour une lettre de liaison : le numéro de séjour, les dates d'entrée et de sortie",
            "must be the OID of the stay-number authority": "doit être l'OID de l'autorité d'affectation du numéro de séjour",
            "required: the stay number (value) and its authority OID":
                "obligatoire : le numéro de séjour (value) et l'OID de son autorité d'affectation",
            "required: ISO 8601 with offset": "obligatoire : date ISO 8601 avec décalage horaire",
            "required for a discharge letter": "obligatoire pour une lettre de liaison",
            "is before stay.admission": "est antérieure à stay.admission",
            "required: healthcare facility type from JDV_J02 (e.g. SA01, code system 1.2.250.1.71.4.2.4)":
                "obligatoire : le type d'établissement du jeu de valeurs JDV_J02 (par exemple SA01, système de codes 1.2.250.1.71.4.2.4)",
            "required: practice setting from JDV_J04 (e.g. ETABLISSEMENT, code system 1.2.250.1.213.1.1.4.9)":
                "obligatoire : le cadre d'exercice du jeu de valeurs JDV_J04 (par exemple ETABLISSEMENT, système de codes 1.2.250.1.213.1.1.4.9)",
            "required for a prescription: the end of its validity period":
                "obligatoire pour une prescription : la fin de sa période de validité",
            "is before service_event.start": "est antérieure à service_event.start",
            "expected an ISO 8601 date-time with a UTC offset, e.g. 2026-11-20T14:30:00+01:00":
                "attendu : une date-heure ISO 8601 avec décalage horaire, par exemple 2026-11-20T14:30:00+01:00",
            "expected a date as YYYY-MM-DD": "attendu : une date AAAA-MM-JJ",
        ]
        // The JSON decoding's messages (LenientDecoding.describe), one per JSON type.
        for (english, french) in [("a string", "une chaîne de caractères"), ("an integer", "un entier"), ("true or false", "true ou false"),
                                  ("an array", "un tableau"), ("an object", "un objet")] {
            table["wrong type: expected \(english)"] = "type incorrect : attendu \(french)"
            table["null is not allowed here: give \(english) or leave the field out"] = "null n'est pas permis ici : donnez \(french) ou retirez le champ"
        }
        return table
    }()
}
