import Foundation

/// Texts that come from peers (SMTP replies, SOAP faults, DSN diagnostics) may quote a patient
/// mailbox — whose local part is the INS — or a NIR. Before such a text goes to a log line,
/// both are masked; document ids, codes and professional addresses are left for the operator.
public enum LogRedaction {
    public static let patientMailboxPlaceholder = "<patient mailbox>"

    public static func redact(_ text: String) -> String {
        var result = text.replacingOccurrences(of: #"[0-9A-Za-z._%+-]+@patient\.mssante\.fr"#,
                                               with: patientMailboxPlaceholder,
                                               options: [.regularExpression, .caseInsensitive])
        // A matricule: sex digit, year, month, département (2A/2B for Corsica), commune, order, key.
        let nir = try! NSRegularExpression(pattern: #"(?<![0-9A-Za-z])[1-478]\d{4}(?:\d{2}|2[AaBb])\d{6}(?:\d{2})?(?![0-9A-Za-z])"#)
        let ns = result as NSString
        for match in nir.matches(in: result, range: NSRange(location: 0, length: ns.length)).reversed() {
            let found = ns.substring(with: match.range)
            result = (result as NSString).replacingCharacters(in: match.range, with: INS.mask(found))
        }
        return result
    }
}
