/// The language of what the gateway answers to the people who produce documents: the reason
/// file next to a refused file (`NAME.error.txt`) and the ERR-8 / MSA text of an HL7 ACK
/// (`[intake] language`). Secretaries, lab and radiology staff read those; the CLI and the logs
/// stay in English for the people who run the gateway.
public enum IntakeLanguage: String, Sendable, Hashable, CaseIterable {
    /// French, the default: the vocabulary of the ANS guides (INS qualifiée, lot de soumission, volet…).
    case fr
    /// English, as the texts were before the French catalogue.
    case en

    public static let `default`: IntakeLanguage = .fr
}
