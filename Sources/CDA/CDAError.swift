import Foundation
import PasserelleCore
import XMLKit

/// One header rule a CDA document breaks, naming the element (as a path from
/// `ClinicalDocument`) and, for parsed documents, the line.
public struct CDAProblem: Sendable, Hashable, CustomStringConvertible {
    /// Path of the element or attribute concerned, e.g. `ClinicalDocument/recordTarget/patientRole/id`.
    public var element: String
    public var message: String
    /// 1-based line in the document, when known.
    public var line: Int?

    public init(_ element: String, _ message: String, line: Int? = nil) {
        self.element = element
        self.message = message
        self.line = line
    }

    public var description: String {
        (line.map { "line \($0): " } ?? "") + "\(element): \(message)"
    }
}

/// Why a CDA document could not be built or accepted. Messages name what to fix and carry no
/// patient data (the INS is masked).
public enum CDAError: Error, Sendable, CustomStringConvertible, LocalizedError {
    /// The body is not a PDF file.
    case notAPDF(reason: String)
    /// The PDF is empty.
    case emptyPDF
    /// The PDF exceeds the configured limit (`[cda] max_pdf_bytes`).
    case pdfTooLarge(bytes: Int, limit: Int)
    /// The document kind is missing from the five Passerelle produces, or unknown.
    case unknownKind(String)
    /// The metadata lacks mandatory values or has wrong ones (every problem listed).
    case invalidMetadata([MetadataProblem])
    /// The INS matricule is malformed or its key is wrong.
    case invalidINS(INSError)
    /// Identity problem: QUAL without all INS traits, or traits contradicting the NIR.
    case identity(IdentityError)
    /// The template cannot be read or rendered (includes values with forbidden characters).
    case template(TemplateError)
    /// A producer CDA is not well-formed XML, carries a DOCTYPE or exceeds its parse budget.
    case notWellFormed(XMLError)
    /// The CDA header breaks CI-SIS / project rules (every problem listed).
    case invalidHeader([CDAProblem])
    /// The CDA schema could not be loaded.
    case schemaUnavailable(XMLError)
    /// A producer CDA disagrees with the identity or kind the producer declared.
    case declarationMismatch(String)
    /// The file a large CDA is written to (or read from) cannot be used.
    case file(path: String, reason: String)

    public var description: String {
        switch self {
        case .notAPDF(let reason):
            return "the document body is not a PDF file (\(reason)); send the PDF itself"
        case .emptyPDF:
            return "the PDF file is empty"
        case .pdfTooLarge(let bytes, let limit):
            return "the PDF has \(bytes) bytes, more than the limit of \(limit) ([cda] max_pdf_bytes)"
        case .unknownKind(let detail):
            return "unknown document kind: \(detail); expected one of \(DocumentKind.accepted)"
        case .invalidMetadata(let problems):
            return "metadata cannot make a CDA document (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n"
                + problems.map { "  - \($0)" }.joined(separator: "\n")
        case .invalidINS(let error):
            return "patient.ins: \(error.description)"
        case .identity(let error):
            return error.description
        case .template(let error):
            return error.description
        case .notWellFormed(let error):
            switch error {
            case .doctypeRefused:
                return "DOCTYPE not allowed in a CDA: \(error.description)"
            case .limitExceeded:
                return "the CDA document is refused: \(error.description)"
            default:
                return "the CDA document is not well-formed XML: \(error.description)"
            }
        case .invalidHeader(let problems):
            return "the CDA header breaks \(problems.count) rule\(problems.count == 1 ? "" : "s"):\n"
                + problems.map { "  - \($0)" }.joined(separator: "\n")
        case .schemaUnavailable(let error):
            return "the CDA schema cannot be used ([cda] schema): \(error.description)"
        case .declarationMismatch(let detail):
            return "the CDA document does not match its metadata: \(detail)"
        case .file(let path, let reason):
            return "cannot use the CDA file \(path): \(reason) (check the free space and permissions of the journal's blob folder)"
        }
    }

    public var errorDescription: String? { description }
}

// French texts for the refusal texts (`[intake] language`, see Sources/Intake/RefusalTexts.swift).
// The details libxml2 gives (XML syntax, limits) and the header rules of a producer CDA stay in
// English, marked so; the sentence around them is French.
extension CDAError {
    public func text(_ language: IntakeLanguage) -> String {
        guard language == .fr else { return description }
        switch self {
        case .notAPDF(let reason):
            let why = switch reason {
            case "it does not start with %PDF-": "il ne commence pas par %PDF-"
            case "no %%EOF marker at its end: the file is truncated or damaged": "pas de marque %%EOF à la fin : le fichier est tronqué ou abîmé"
            default: "en anglais : \(reason)"
            }
            return "le corps du document n'est pas un fichier PDF (\(why)) ; envoyez le PDF lui-même"
        case .emptyPDF:
            return "le fichier PDF est vide"
        case .pdfTooLarge(let bytes, let limit):
            return "le PDF fait \(bytes) octets, plus que la limite de \(limit) ([cda] max_pdf_bytes)"
        case .unknownKind(let detail):
            return "type de document inconnu : \(detail) ; attendu l'un de \(DocumentKind.acceptedFrench)"
        case .invalidMetadata(let problems):
            return "les métadonnées ne permettent pas de construire le document CDA (\(problems.count) problème\(problems.count == 1 ? "" : "s")) :\n"
                + problems.map { "  - \($0.text(.fr))" }.joined(separator: "\n")
        case .invalidINS(let error):
            return "patient.ins : \(error.text(.fr))"
        case .identity(let error):
            return error.text(.fr)
        case .template(let error):
            if case .invalidCharacter(let template, let name, let scalar) = error {
                return String(format: "la valeur de {{%@}} (modèle %@) contient le caractère U+%04X, interdit en XML ; retirez-le de la saisie",
                              name, template, scalar)
            }
            return "le modèle du document CDA est inutilisable : prévenez l'administrateur de la passerelle ; détail (en anglais) : \(error.description)"
        case .notWellFormed(let error):
            switch error {
            case .doctypeRefused:
                return "DOCTYPE interdit dans un CDA (pas de DTD, pas de déclaration d'entité) : retirez-le là où le document est produit ; "
                    + "détail (en anglais) : \(error.description)"
            case .limitExceeded:
                return "le document CDA est refusé, il dépasse une limite : \(error.description) (en anglais)"
            default:
                return "le document CDA n'est pas un XML bien formé ; détail (en anglais) : \(error.description)"
            }
        case .invalidHeader(let problems):
            return "l'en-tête du CDA enfreint \(problems.count) règle\(problems.count == 1 ? "" : "s") (élément, puis la règle en anglais) :\n"
                + problems.map { "  - " + ($0.line.map { "ligne \($0) : " } ?? "") + "\($0.element) : \($0.message)" }.joined(separator: "\n")
        case .schemaUnavailable(let error):
            return "le schéma CDA est inutilisable ([cda] schema) : prévenez l'administrateur de la passerelle ; détail (en anglais) : "
                + error.description
        case .declarationMismatch(let detail):
            return "le document CDA ne correspond pas à ses métadonnées ; détail (en anglais) : \(detail)"
        case .file(let path, let reason):
            return "impossible d'utiliser le fichier CDA \(path) : \(reason) (vérifiez l'espace libre et les droits du dossier des blobs du journal)"
        }
    }
}
