import Foundation
import PasserelleCore
#if canImport(Glibc)
import Glibc
#endif

// The catalogue of what the gateway tells the people who produce documents: the reason file
// next to a refused file (`NAME.error.txt`) and the ERR-8 of an HL7 ACK. Every text is here, in
// French (`[intake] language = "fr"`, the default) and English: each switch is exhaustive, so a
// new reason does not compile until it has both. Readers are secretaries, lab and radiology
// staff, the DIM: each text says what is wrong, where (file, line, segment-field, sidecar key)
// and what to do, in the vocabulary of the ANS guides; never a patient value (codes and file
// names only, the INS masked). The English texts are the ones logs and the CLI show.

extension RefusalReason {
    /// The reason in `language`.
    public func text(_ language: IntakeLanguage) -> String {
        let fr = language == .fr
        switch self {
        case .unsupportedFileType(let name):
            return fr
                ? "\(name) : type de fichier non pris en charge. Déposez NOM.pdf avec NOM.json, NOM.xml (document CDA) avec NOM.json, "
                    + "ou un message HL7 v2 NOM.hl7 / NOM.er7."
                : "\(name): unsupported file type. Drop NAME.pdf + NAME.json, NAME.xml (CDA) + NAME.json, or NAME.hl7 / NAME.er7."
        case .emptyFile(let name):
            return fr
                ? "\(name) est vide. Écrivez le fichier ailleurs (ou sous le nom NOM.part) et ne le renommez dans le dossier de dépôt "
                    + "qu'une fois complet."
                : "\(name) is empty. Write the file elsewhere (or as NAME.part) and rename it into the inbox once complete."
        case .missingSidecar(let document, let expected):
            return fr
                ? "\(document) n'a pas de fichier de métadonnées : déposez \(expected) à côté (voir docs/sidecar.md), "
                    + "puis déposez à nouveau le document."
                : "\(document) has no sidecar: drop \(expected) (see docs/sidecar.md) next to it, then drop the document again."
        case .orphanSidecar(let sidecar):
            return fr
                ? "\(sidecar) n'accompagne aucun document : déposez le PDF ou le CDA de même nom, puis déposez à nouveau "
                    + "le fichier de métadonnées."
                : "\(sidecar) has no document: drop the PDF or CDA with the same base name, then drop the sidecar again."
        case .ambiguousSidecar(let sidecar):
            return fr
                ? "\(sidecar) correspond à la fois à un .pdf et à un .xml : un seul document par fichier de métadonnées "
                    + "(renommez l'une des deux paires)."
                : "\(sidecar) matches both a .pdf and a .xml: keep one document per sidecar (rename one pair)."
        case .invalidSidecar(let error):
            return fr
                ? "le fichier de métadonnées (JSON) est inutilisable. Corrigez-le et déposez à nouveau la paire.\n\(error.text(.fr))"
                : "the sidecar cannot be used. Fix it and drop the pair again.\n\(error.description)"
        case .invalidMessage(let error):
            return fr
                ? "le message HL7 v2 est inutilisable : \(error.text(.fr)). Corrigez-le et renvoyez-le."
                : "the HL7 v2 message cannot be used: \(error.text(.en)). Fix it and resend it."
        case .invalidContent(let problem):
            return fr
                ? "le contenu du document est inutilisable : \(problem.text(.fr))."
                : "the document content is not usable: \(problem.text(.en))."
        case .symbolicLink(let name):
            return fr
                ? "\(name) est un lien symbolique : les liens ne sont pas suivis ; déposez le fichier lui-même."
                : "\(name) is a symbolic link: links are not followed; drop the file itself."
        case .notRegularFile(let name):
            return fr
                ? "\(name) n'est pas un fichier ordinaire (dossier, FIFO, socket ou périphérique) : déposez le fichier lui-même."
                : "\(name) is not a regular file (a folder, FIFO, socket or device): drop the file itself."
        case .tooLarge(let name, let size, let limit, let key):
            return fr
                ? "\(name) fait \(size) octets, plus que la limite de \(limit) octets (\(key)) : il n'a pas été lu. "
                    + "Scindez ou allégez le document, ou demandez à l'administrateur de la passerelle de relever \(key)."
                : "\(name) is \(size) bytes, more than the limit of \(limit) bytes (\(key)): it was not read. "
                    + "Split or shrink the document, or raise \(key)."
        case .interruptedTooOften(let attempts, let key):
            return fr
                ? "la passerelle s'est arrêtée (plantage ou arrêt forcé) \(attempts) fois pendant le traitement de cette entrée : "
                    + "elle est mise de côté pour ne pas bloquer la réception des autres documents (\(key)). Signalez-la à "
                    + "l'administrateur de la passerelle avec les journaux de ces arrêts ; corrigez-la puis déposez-la à nouveau."
                : "the gateway stopped (crash or kill) while processing this input \(attempts) times: it is set aside so that it "
                    + "cannot block the intake (\(key)). Report it with the gateway logs of those stops; fix it and drop it again."
        case .routing(let refusals):
            return refusals.map { $0.text(language) }.joined(separator: "\n")
        }
    }

    /// The cases, for the test that walks every one of them (``caseName`` is exhaustive: a new
    /// case must be named here, then the test asks for a sample of it).
    public enum Case: String, Sendable, CaseIterable {
        case unsupportedFileType, emptyFile, missingSidecar, orphanSidecar, ambiguousSidecar, invalidSidecar, invalidMessage
        case invalidContent, symbolicLink, notRegularFile, tooLarge, interruptedTooOften, routing
    }

    public var caseName: Case {
        switch self {
        case .unsupportedFileType: .unsupportedFileType
        case .emptyFile: .emptyFile
        case .missingSidecar: .missingSidecar
        case .orphanSidecar: .orphanSidecar
        case .ambiguousSidecar: .ambiguousSidecar
        case .invalidSidecar: .invalidSidecar
        case .invalidMessage: .invalidMessage
        case .invalidContent: .invalidContent
        case .symbolicLink: .symbolicLink
        case .notRegularFile: .notRegularFile
        case .tooLarge: .tooLarge
        case .interruptedTooOften: .interruptedTooOften
        case .routing: .routing
        }
    }

    /// The reason file of an input accepted for some destinations and refused for others
    /// (``IntakeOutcome/acceptedInPart(accepted:refused:)``): what goes, what does not, and why.
    public func partialReport(for fileName: String, accepted: [Destination], at date: Date = Date(),
                              language: IntakeLanguage = .default) -> String {
        let stamp = ZonedDateTime(date: date, utcOffsetSeconds: TimeZone.current.secondsFromGMT(for: date)).iso
        let names = accepted.map { $0.name(language) }.joined(separator: ", ")
        return switch language {
        case .en: "Passerelle accepted \(fileName) on \(stamp) for \(names) only (the file is in done/); the rest of the request "
            + "is refused and will not be sent.\n\n\(text(.en))\n"
        case .fr: "Passerelle a accepté \(fileName) le \(stamp) pour \(names) seulement (le fichier est dans done/) ; le reste de "
            + "la demande est refusé et ne sera pas transmis.\n\n\(text(.fr))\n"
        }
    }
}

extension Destination {
    /// How the people who produce documents call this destination.
    public func name(_ language: IntakeLanguage) -> String {
        switch (self, language) {
        case (.dmp, _): "DMP"
        case (.mssantePS, .fr): "MSSanté professionnels (DESTMSSANTEPS)"
        case (.mssantePS, .en): "MSSanté professionals (DESTMSSANTEPS)"
        case (.mssantePatient, .fr): "MSSanté patient (DESTMSSANTEPAT)"
        case (.mssantePatient, .en): "MSSanté patient (DESTMSSANTEPAT)"
        }
    }
}

extension RoutingRefusal {
    /// One line per refusal, in the vocabulary of the ANS guide (INS qualifiée, matrice de gestion MSSanté).
    public func text(_ language: IntakeLanguage) -> String {
        let fr = language == .fr
        switch self {
        case .identityNotQualified(let target, let status):
            let code = status?.rawValue ?? (fr ? "absent (PID-32 vide)" : "missing (PID-32 empty)")
            let label = status.map { fr ? " (identité \($0.label))" : "" } ?? ""
            let what = target == .dmp
                ? (fr ? "le DMP n'accepte qu'une identité qualifiée (QUAL) portant son INS qualifiée"
                      : "the DMP only accepts a qualified identity (QUAL) with its INS")
                : (fr ? "la messagerie MSSanté du patient n'est joignable qu'avec une identité qualifiée (QUAL) portant son INS qualifiée"
                      : "the patient's MSSanté mailbox is reached only for a qualified identity (QUAL) with its INS")
            return fr
                ? "\(target.name(.fr)) : le statut de l'identité du patient est \(code)\(label) ; \(what). Cette partie de la demande "
                    + "n'est pas transmise : qualifiez l'identité (téléservice INSi, PID-32 = QUAL) puis renvoyez le document "
                    + "pour cette destination."
                : "\(target.name(.en)): the patient's identity status is \(code); \(what). This part of the request is not sent: "
                    + "qualify the identity (INSi, PID-32 = QUAL) and send the document again for this destination."
        case .forbiddenCombination(let rule, let destinations, let flags):
            let asked = destinations.map(\.flag.rawValue).joined(separator: " + ")
            let set = flags.map(\.rawValue).joined(separator: ", ")
            return fr
                ? "combinaison interdite par la matrice de gestion MSSanté : \(asked) avec [\(set)] ; \(rule.text(.fr)). "
                    + "Aucun courriel MSSanté n'est envoyé : corrigez les OBX MetaDMPMSS (ou destinations et flags du fichier de métadonnées) "
                    + "puis renvoyez le document."
                : "combination forbidden by the MSSanté routing matrix: \(asked) with [\(set)]; \(rule.text(.en)). "
                    + "No MSSanté mail is sent: fix the MetaDMPMSS OBX (or the sidecar's destinations and flags) and send the document again."
        case .noProfessionalRecipient:
            return fr
                ? "\(Destination.mssantePS.name(.fr)) : aucune adresse MSSanté de professionnel n'est donnée (PRT RCT avec "
                    + "l'adresse en PRT-15.4, type X.400, ou mssante.recipients du fichier de métadonnées). Cette partie n'est pas "
                    + "transmise : ajoutez le destinataire et renvoyez le document."
                : "\(Destination.mssantePS.name(.en)): no professional MSSanté address is given (PRT RCT with the address in "
                    + "PRT-15.4, type X.400, or the sidecar's mssante.recipients). This part is not sent: add the recipient and "
                    + "send the document again."
        case .deletionNoticeWithoutDocument(let targets):
            let names = targets.map { $0.name(language) }.joined(separator: ", ")
            return fr
                ? "\(names) : la demande de suppression ne porte pas la dernière version du document (le CDA R2 : en base64 "
                    + "dans OBX-5, sous-type XML, ou NOM.xml avec son fichier de métadonnées) ; sans elle le courriel signalant le "
                    + "retrait du document ne peut pas être construit. Cette partie n'est pas transmise : joignez le document CDA "
                    + "et renvoyez la demande."
                : "\(names): the deletion does not carry the last version of the document (the CDA R2: in base64 in OBX-5, "
                    + "subtype XML, or NAME.xml with its sidecar); without it the notice of the withdrawal cannot be built. This "
                    + "part is not sent: add the CDA and send the request again."
        }
    }
}

extension RefusalReason.ContentProblem {
    public func text(_ language: IntakeLanguage) -> String {
        let fr = language == .fr
        switch self {
        case .notPDF(let name):
            return fr ? "\(name) n'est pas un PDF (il ne commence pas par %PDF-) : déposez le PDF lui-même"
                : "\(name) is not a PDF (it does not start with %PDF-)"
        case .notXML(let name):
            return fr ? "\(name) n'est pas un fichier XML : déposez le document CDA R2 lui-même" : "\(name) is not XML"
        case .unreadable(let name, let code):
            return fr
                ? "impossible de lire \(name) (\(Self.frenchSystemError(code))) : vérifiez les droits du fichier, puis déposez-le à nouveau"
                : "cannot read \(name): \(String(cString: strerror(code)))"
        case .duplicateDocument(let id, let version):
            return fr
                ? "le document \(id) version \(version) a déjà été reçu (depuis un autre fichier). Pour le modifier, envoyez un "
                    + "remplacement (action replace, nouvelle version) ; pour le transmettre à nouveau tel quel, demandez-le à "
                    + "l'administrateur de la passerelle (passerelle resend)"
                : "document \(id) version \(version) is already in the journal (from another file). "
                    + "To change it, send a replacement (action replace, a new version); to send it again, use passerelle resend"
        case .cdaNotXML(let bytes):
            return fr
                ? "le document fourni comme CDA (sous-type XML en OBX-5 d'un message HL7, ou fichier NOM.xml) est un texte de "
                    + "\(bytes) octets, pas un document XML : mettez-y le base64 du document CDA R2, ou envoyez le PDF avec le "
                    + "sous-type PDF pour que Passerelle construise le CDA"
                : "the document given as a CDA (HL7 OBX-5 subtype XML, or NAME.xml) is \(bytes) bytes of text, not an XML document: "
                    + "put the base64 of the CDA R2 document there, or send the PDF with subtype PDF so Passerelle builds the CDA"
        case .cdaUnusable(let detail, let french):
            return fr ? (french.map { "le document CDA est inutilisable : \($0)" } ?? "le document CDA est inutilisable ; détail du contrôle (en anglais) :\n\(detail)")
                : "the CDA cannot be used: \(detail)"
        case .cdaHeaderTooLong(let problem):
            return fr ? "l'en-tête du CDA ne tient pas dans les métadonnées du DMP : \(problem.text(.fr))"
                : "the CDA header does not fit the DMP metadata: \(problem.description)"
        case .cdaNotBuilt(let detail, let french, let keys):
            let settings = keys.map { "[cda] \($0)" }.joined(separator: ", ")
            if fr {
                return (french.map { "le document CDA ne peut pas être construit : \($0)" }
                        ?? "le document CDA ne peut pas être construit ; détail (en anglais) :\n\(detail)")
                    + (keys.isEmpty ? "" : "\nUn message HL7 v2 ne peut pas porter ces valeurs : demandez à l'administrateur de la "
                        + "passerelle de renseigner \(settings) dans la configuration (code^OID du système de codes^libellé), "
                        + "ou donnez-les dans le fichier de métadonnées")
            }
            return "the CDA cannot be built: \(detail)"
                + (keys.isEmpty ? "" : "\nAn HL7 v2 message cannot carry these: set \(settings) in the configuration "
                    + "(code^codeSystemOID^displayName), or give them in the sidecar")
        case .schemaInvalid(let messages):
            return fr
                ? "le document CDA n'est pas conforme au schéma CDA ([cda] schema) ; messages du validateur (en anglais), "
                    + "avec le numéro de ligne :\n" + messages.joined(separator: "\n")
                : "the CDA does not pass the CDA schema ([cda] schema):\n" + messages.joined(separator: "\n")
        case .idHasExtension:
            return fr
                ? "l'identifiant du document a une extension (racine^extension, par exemple en TXA-12 ou dans l'id du CDA) ; "
                    + "le DMP exige un identifiant de document qui soit un OID seul (la signature du lot de soumission désigne "
                    + "chaque document par urn:oid:) : envoyez l'identifiant sous forme d'OID "
                    + "(TXA-12 = l'OID seul, id.root sans extension dans le fichier de métadonnées)"
                : "the document id has an extension (root^extension, e.g. from HL7 TXA-12 or the CDA id); the DMP needs a "
                    + "document id that is a plain OID: send the id as an OID (TXA-12 = OID alone, sidecar id.root without extension)"
        }
    }

    /// The usual causes of an unreadable file, in French; others keep the system's (English) text.
    static func frenchSystemError(_ code: Int32) -> String {
        switch code {
        case EACCES, EPERM: "accès refusé"
        case ENOENT: "fichier disparu"
        case EIO: "erreur d'entrée-sortie du disque"
        case EISDIR: "c'est un dossier"
        default: String(cString: strerror(code))
        }
    }

    public enum Case: String, Sendable, CaseIterable {
        case notPDF, notXML, unreadable, duplicateDocument, cdaNotXML, cdaUnusable, cdaHeaderTooLong, cdaNotBuilt, schemaInvalid
        case idHasExtension
    }

    public var caseName: Case {
        switch self {
        case .notPDF: .notPDF
        case .notXML: .notXML
        case .unreadable: .unreadable
        case .duplicateDocument: .duplicateDocument
        case .cdaNotXML: .cdaNotXML
        case .cdaUnusable: .cdaUnusable
        case .cdaHeaderTooLong: .cdaHeaderTooLong
        case .cdaNotBuilt: .cdaNotBuilt
        case .schemaInvalid: .schemaInvalid
        case .idHasExtension: .idHasExtension
        }
    }
}

extension MetadataError {
    public func text(_ language: IntakeLanguage) -> String {
        guard language == .fr else { return description }
        switch self {
        case .malformedJSON(let reason):
            return "le fichier de métadonnées n'est pas un objet JSON valide ; détail (en anglais) : \(reason)"
        case .invalid(let problems):
            return "le fichier de métadonnées comporte \(problems.count) problème\(problems.count == 1 ? "" : "s") "
                + "(clé concernée, puis ce qui ne va pas) :\n" + problems.map { "  - \($0.text(.fr))" }.joined(separator: "\n")
        }
    }
}

extension HL7ParseError {
    public func text(_ language: IntakeLanguage) -> String {
        let fr = language == .fr
        switch self {
        case .empty:
            return fr ? "le message est vide : il doit être fait de segments commençant par MSH"
                : "the message is empty: expected segments starting with MSH"
        case .missingMSH:
            return fr ? "le message ne commence pas par un segment MSH déclarant ses séparateurs (MSH|^~\\&|…)"
                : "the message does not start with an MSH segment declaring its delimiters (MSH|^~\\&|…)"
        case .invalidEncodingCharacters:
            return fr ? "MSH-1 et MSH-2 doivent déclarer cinq séparateurs distincts, ni lettre, ni chiffre, ni espace (en général |^~\\&)"
                : "MSH-1 and MSH-2 must declare five distinct delimiters, none a letter, digit or space (usually |^~\\&)"
        case .unsupportedCharacterSet(let name):
            return fr ? "le jeu de caractères « \(name) » déclaré en MSH-18 n'est pas pris en charge : utilisez UNICODE UTF-8, 8859/1 ou 8859/15"
                : "MSH-18 character set '\(name)' is not supported: use UNICODE UTF-8, 8859/1 or 8859/15"
        case .undecodable(let name):
            return fr ? "les octets du message ne sont pas du \(name) valide (jeu déclaré en MSH-18) : corrigez MSH-18 ou l'encodage "
                + "de l'application émettrice"
                : "the message bytes are not valid \(name) (as declared in MSH-18): fix MSH-18 or the sender's encoding"
        case .invalidSegmentID(let n):
            return fr ? "le segment \(n) ne commence pas par un identifiant de segment de trois caractères (PID, OBX…) : vérifiez "
                + "les retours à la ligne à l'intérieur des champs"
                : "segment \(n) does not start with a three-character segment id (e.g. PID, OBX): check line breaks inside fields"
        }
    }
}

extension IntakeError {
    /// The English text (logs, CLI).
    public var description: String { text(.en) }

    public var errorDescription: String? { description }

    public func text(_ language: IntakeLanguage) -> String {
        let fr = language == .fr
        switch self {
        case .parse(let e):
            return e.text(language)
        case .unsupportedMessageType(let t):
            return fr ? "le type de message \(t) n'est pas accepté ici : envoyez ORU^R01, MDM^T02, MDM^T04 ou MDM^T10"
                : "message type \(t) is not accepted here: send ORU^R01, MDM^T02, MDM^T04 or MDM^T10"
        case .missingSegment(let s):
            if s == "OBX" {
                return fr ? "le message n'a pas de segment OBX de type ED portant le document"
                    : "the message has no OBX (value type ED holding the document) segment"
            }
            return fr ? "le message n'a pas de segment \(s)" : "the message has no \(s) segment"
        case .missingField(let path, let need):
            return fr ? "\(path) est vide : il doit contenir \(need.text(.fr))" : "\(path) is empty: \(need.text(.en))"
        case .invalidField(let path, let fault):
            return fr ? "\(path) : \(fault.text(.fr))" : "\(path): \(fault.text(.en))"
        case .mappedField(let problem):
            return fr ? "\(problem.path) (valeur reprise du message) : \(problem.frenchMessage)"
                : "\(problem.path) (mapped from the message): \(problem.message)"
        case .invalidINS(let e):
            return fr ? "INS en PID-3 : \(e.text(.fr))" : "PID-3 INS: \(e.description)"
        case .unknownDocumentKind(let code):
            return fr ? "le type de document « \(code) » n'est pas pris en charge : utilisez l'un de \(DocumentKind.acceptedFrench)"
                : "document type '\(code)' is not supported: use one of \(DocumentKind.accepted)"
        case .inconsistentAction(let mismatch):
            return mismatch.text(language)
        }
    }

    public enum Case: String, Sendable, CaseIterable {
        case parse, unsupportedMessageType, missingSegment, missingField, invalidField, mappedField, invalidINS, unknownDocumentKind
        case inconsistentAction
    }

    public var caseName: Case {
        switch self {
        case .parse: .parse
        case .unsupportedMessageType: .unsupportedMessageType
        case .missingSegment: .missingSegment
        case .missingField: .missingField
        case .invalidField: .invalidField
        case .mappedField: .mappedField
        case .invalidINS: .invalidINS
        case .unknownDocumentKind: .unknownDocumentKind
        case .inconsistentAction: .inconsistentAction
        }
    }
}

extension IntakeError.FieldNeed {
    public func text(_ language: IntakeLanguage) -> String {
        let fr = language == .fr
        switch self {
        case .documentType:
            return fr ? "le type de document (code LOINC du jeu de valeurs JDV_J07)" : "the document type (LOINC code from JDV_J07)"
        case .action:
            return fr ? "F (nouveau document), C (remplacement) ou D (suppression)" : "F (new document), C (replacement) or D (deletion)"
        case .replacedDocument:
            return fr ? "l'identifiant du document remplacé (obligatoire avec T10 / OBX-11 C)"
                : "the id of the document replaced (required with T10 / OBX-11 C)"
        case .insOID:
            return fr ? "l'OID de l'INS (1.2.250.1.213.1.4.8 pour l'INS-NIR)" : "the INS OID (1.2.250.1.213.1.4.8 for INS-NIR)"
        case .ippAuthority:
            return fr ? "l'OID de l'autorité d'affectation de l'IPP" : "the OID of the IPP assigning authority"
        case .visitNumber:
            return fr ? "le numéro de séjour (ou PID-18, le numéro de dossier administratif)"
                : "the visit number (or PID-18, the administrative file number)"
        case .stayAuthority:
            return fr ? "l'OID de l'autorité d'affectation du numéro de séjour" : "the OID of the stay-number assigning authority"
        case .base64Document:
            return fr ? "le document encodé en base64" : "the base64 document"
        case .dataSubtype:
            return fr ? "le sous-type de données : XML (CDA) ou PDF" : "the data subtype: XML (CDA) or PDF"
        }
    }
}

extension IntakeError.FieldFault {
    static let specialtyForm = (
        en: "code^display name^code system OID from JDV_J01, e.g. G15_10/SM26^Médecin - Qualifié en médecine générale (SM)^1.2.250.1.213.1.1.4.5",
        fr: "code^libellé^OID du système de codes, du jeu de valeurs JDV_J01, par exemple "
            + "G15_10/SM26^Médecin - Qualifié en médecine générale (SM)^1.2.250.1.213.1.1.4.5")

    public func text(_ language: IntakeLanguage) -> String {
        let fr = language == .fr
        switch self {
        case .actionCode(let status):
            return fr ? "« \(status) » n'est pas F (nouveau document), C (remplacement) ou D (suppression)"
                : "'\(status)' is not F (new), C (replacement) or D (deletion)"
        case .kindDiffers(let given, let path, let kind):
            return fr ? "le type de document « \(given) » diffère de celui de \(path)-3 (« \(kind) ») : mettez le même code LOINC"
                : "document type '\(given)' differs from \(path)-3 '\(kind)'"
        case .birthDate:
            return fr ? "la date de naissance n'est pas une date (AAAAMMJJ)" : "not a date (YYYYMMDD)"
        case .sex:
            return fr ? "le sexe doit être F, M ou U" : "sex must be F, M or U"
        case .flag(let name):
            return fr ? "\(name) doit valoir Y ou N" : "\(name) must be Y or N"
        case .mailBody(let code, let problem):
            switch problem {
            case .invalid:
                return fr ? "\(code) doit être un texte UTF-8 encodé en base64" : "\(code) must be UTF-8 text in base64"
            case .truncated(let length):
                return fr
                    ? "\(code) est tronqué : son base64 compte \(length) caractères, ce qui ne peut pas être un encodage complet "
                        + "(un multiple de 4, au signe = près) ; le champ a été coupé par l'application émettrice ou pendant l'envoi : "
                        + "renvoyez le message avec le texte complet"
                    : "\(code) is truncated: its base64 has \(length) characters, which no complete encoding has (a multiple of 4, "
                        + "padding aside); the field was cut by the sending application or in transit: resend the message with the whole text"
            case .cutCharacter:
                return fr
                    ? "\(code) est tronqué : le texte décodé s'arrête au milieu d'un caractère (le base64 a été coupé) ; "
                        + "renvoyez le message avec le texte complet"
                    : "\(code) is truncated: the decoded text stops in the middle of a character (the base64 was cut); "
                        + "resend the message with the whole text"
            }
        case .specialtyMissing:
            return fr ? "la spécialité de l'auteur doit être de la forme \(Self.specialtyForm.fr)"
                : "the author's specialty must be \(Self.specialtyForm.en)"
        case .specialty(let detail):
            return fr ? "spécialité de l'auteur refusée (en anglais : \(detail)) ; attendu : \(Self.specialtyForm.fr)"
                : "\(detail); expected \(Self.specialtyForm.en)"
        case .identifierForm:
            return fr ? "attendu : extension^^OID racine^ISO, ou l'OID du document" : "expected extension^^root-OID^ISO or a document OID"
        case .identifierRoot:
            return fr ? "la racine de l'identifiant du document doit être un OID" : "the document id root must be an OID"
        case .encoding(let encoding):
            return fr ? "l'encodage « \(encoding) » n'est pas pris en charge : envoyez le document en Base64"
                : "encoding '\(encoding)' is not supported: send Base64"
        case .documentBase64(let problem):
            switch problem {
            case .invalid, .cutCharacter:
                return fr ? "le document n'est pas un base64 valide" : "not valid base64"
            case .truncated(let length):
                return fr
                    ? "le document en base64 est tronqué : \(length) caractères, ce qui ne peut pas être un encodage complet "
                        + "(un multiple de 4, au signe = près) ou ne contient pas la fin du PDF ; il a été coupé par l'application "
                        + "émettrice ou pendant l'envoi : renvoyez le message avec le document complet"
                    : "the base64 document is truncated: \(length) characters, which no complete encoding has (a multiple of 4, "
                        + "padding aside) or which stop before the end of the PDF; it was cut by the sending application or in "
                        + "transit: resend the message with the whole document"
            }
        case .notPDF:
            return fr ? "le sous-type est PDF mais les données ne sont pas un PDF" : "subtype PDF but the data is not a PDF"
        case .subtype(let subtype):
            return fr ? "le sous-type de données « \(subtype) » n'est pas pris en charge : XML (CDA) ou PDF"
                : "data subtype '\(subtype)' is not supported: XML (CDA) or PDF"
        case .timestamp:
            return fr ? "n'est pas un horodatage HL7 (AAAAMMJJHHMM[SS][+ZZZZ])" : "not an HL7 timestamp (YYYYMMDDHHMM[SS][+ZZZZ])"
        }
    }

    public enum Case: String, Sendable, CaseIterable {
        case actionCode, kindDiffers, birthDate, sex, flag, mailBody, specialtyMissing, specialty, identifierForm, identifierRoot
        case encoding, documentBase64, notPDF, subtype, timestamp
    }

    public var caseName: Case {
        switch self {
        case .actionCode: .actionCode
        case .kindDiffers: .kindDiffers
        case .birthDate: .birthDate
        case .sex: .sex
        case .flag: .flag
        case .mailBody: .mailBody
        case .specialtyMissing: .specialtyMissing
        case .specialty: .specialty
        case .identifierForm: .identifierForm
        case .identifierRoot: .identifierRoot
        case .encoding: .encoding
        case .documentBase64: .documentBase64
        case .notPDF: .notPDF
        case .subtype: .subtype
        case .timestamp: .timestamp
        }
    }
}

extension IntakeError.ActionMismatch {
    public func text(_ language: IntakeLanguage) -> String {
        let fr = language == .fr
        switch self {
        case .trigger(let event, let path, let status):
            return fr ? "l'événement \(event) de MSH-9 ne correspond pas à \(path)-11 « \(status) » : utilisez T02 avec F, T10 avec C, T04 avec D"
                : "MSH-9 event \(event) does not match \(path)-11 '\(status)': use T02 with F, T10 with C, T04 with D"
        case .orderControl(let code, let path, let status):
            return fr ? "ORC-1 « \(code) » ne correspond pas à \(path)-11 « \(status) » : utilisez NW avec F, RO avec C, CA avec D"
                : "ORC-1 '\(code)' does not match \(path)-11 '\(status)': use NW with F, RO with C, CA with D"
        }
    }
}

/// What the gateway answers to an HL7 message it does not process: AR (the journal cannot take
/// it now, the service is stopping: resend later) or AE (a frame over the size limit).
public enum IntakeNotice: Sendable, Hashable {
    /// The journal cannot record the message.
    case journalUnavailable
    /// The service is stopping.
    case stopping
    /// The MLLP frame is larger than `[mllp] max_message_bytes` (it was not read).
    case tooLarge(limit: Int)

    public static let samples: [IntakeNotice] = [.journalUnavailable, .stopping, .tooLarge(limit: 1024)]

    public func text(_ language: IntakeLanguage) -> String {
        let fr = language == .fr
        switch self {
        case .journalUnavailable:
            return fr ? "le journal de la passerelle est indisponible ; renvoyez le message plus tard"
                : "the gateway journal is unavailable; resend the message later"
        case .stopping:
            return fr ? "la passerelle est en cours d'arrêt ; renvoyez le message plus tard" : "the gateway is stopping; resend the message later"
        case .tooLarge(let limit):
            return fr
                ? "message de plus de \(limit) octets ([mllp] max_message_bytes) : il n'a pas été lu ; scindez-le ou demandez à "
                    + "l'administrateur de la passerelle de relever la limite"
                : "message larger than \(limit) bytes ([mllp] max_message_bytes); split it or raise the limit"
        }
    }
}
