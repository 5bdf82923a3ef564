import PasserelleCore

/// XDS metadata of the submission set signature when it travels as its own document in the
/// ITI-41 request (IHE DSG as used by the DMP). The DMP code adds the `signs` association
/// (`urn:ihe:iti:2007:AssociationType:signs`, signature → submission set).
public enum SignatureDocumentMetadata {
    public static let mimeType = "text/xml"
    /// Language of a non-linguistic artefact.
    public static let languageCode = "art"
    public static let classCode = CodedValue(code: "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", codeSystem: "URN", displayName: "Digital Signature")
    public static let typeCode = CodedValue(code: "E1762", codeSystem: "ASTM", displayName: "Full Document")
    public static let formatCode = CodedValue(code: "http://www.w3.org/2000/09/xmldsig#", codeSystem: "URN", displayName: "Default Signature Style")
    public static let eventCode = CodedValue(code: SubmissionSetSigner.purposeOfSignature, codeSystem: "1.2.840.10065.1.12", displayName: "Source")
    /// Normal confidentiality, hidden from the patient and masked to professionals.
    public static let confidentialityCodes = [
        CodedValue(code: "N", codeSystem: "2.16.840.1.113883.5.25", displayName: "Normal"),
        CodedValue(code: "INVISIBLE_PATIENT", codeSystem: "1.2.250.1.213.1.1.4.13", displayName: "Non visible par le patient"),
        CodedValue(code: "MASQUE_PS", codeSystem: "1.2.250.1.213.1.1.4.13", displayName: "Masqué aux professionnels de santé"),
    ]
    public static let signsAssociationType = "urn:ihe:iti:2007:AssociationType:signs"
}
