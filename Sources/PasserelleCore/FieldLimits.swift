import Foundation

/// The longest value each metadata field may hold, checked at intake (sidecar and HL7 mapping):
/// a value the DMP would refuse after the send (its XDS metadata schema) is refused before.
///
/// One table, keyed by the field's own name (the last key of its path; `telecom[2]` → `telecom`).
/// Values from ../shared/conformance/xds/rim.xsd (ebRIM 3.0): `LongName` 256 (slot values, codes),
/// `ShortName` 64, `FreeFormText` 1024 (localized strings: titles, display names). Where a value
/// is composed into one slot with others (XCN, CX, XON: `id^family^given…&OID&ISO`) or the
/// schema has no limit (CDA strings, mail texts), the bound is chosen and says so.
public enum MetadataFieldLimits {
    public struct Limit: Sendable, Hashable {
        /// Characters (Unicode code points, as XSD `maxLength` counts them).
        public var maxCharacters: Int
        /// Where the number comes from, quoted in the refusal.
        public var source: String
    }

    static let longName = "DMP XDS metadata: ebRIM LongName"
    static let freeText = "DMP XDS metadata: ebRIM FreeFormText"
    static let oid = "an OID: at most 64 characters (IHE ITI TF-3)"

    public static let byField: [String: Limit] = {
        var t: [String: Limit] = [:]
        // Patient and professional names: the ebRIM slot value that carries them (sourcePatientInfo PID-5, authorPerson).
        for k in ["birth_name", "first_birth_given_name", "birth_given_names", "used_name", "used_given_name", "family_name", "given_name"] {
            t[k] = Limit(maxCharacters: 256, source: longName)
        }
        // Chosen: a civility or degree ("Dr", "Pr"), no schema limit of its own; ebRIM ShortName size.
        for k in ["prefix", "suffix"] { t[k] = Limit(maxCharacters: 64, source: "chosen bound for a title, ebRIM ShortName size") }
        // The document title is the document entry's name (LocalizedString value), display names the classifications' names.
        for k in ["title", "display_name"] { t[k] = Limit(maxCharacters: 1024, source: freeText) }
        t["code"] = Limit(maxCharacters: 256, source: "\(longName) (classification nodeRepresentation)")
        for k in ["root", "code_system", "authority", "oid"] { t[k] = Limit(maxCharacters: 64, source: oid) }
        // Chosen: ids go into one LongName with their OID (`value^^^&OID&ISO`, `root^extension`): 128 + OID + separators fit 256.
        for k in ["value", "extension"] {
            t[k] = Limit(maxCharacters: 128, source: "chosen so that the id with its OID fits one \(longName) (256)")
        }
        // Chosen: the XON of the author institution holds the name with `^^^^^&OID&ISO^IDNST^^^FINESS`.
        t["name"] = Limit(maxCharacters: 200, source: "chosen so that the institution XON fits one \(longName) (256)")
        // Mail: RFC 5321 paths are at most 256 octets; RFC 5322 header lines at most 998 characters.
        for k in ["recipients", "reply_to"] { t[k] = Limit(maxCharacters: 254, source: "RFC 5321 mail address") }
        for k in ["ps_subject", "patient_subject"] { t[k] = Limit(maxCharacters: 998, source: "RFC 5322 header line") }
        // Chosen: a covering note, not a document (the document is the attachment).
        for k in ["ps_body", "patient_body"] { t[k] = Limit(maxCharacters: 65_536, source: "chosen bound for a covering mail text") }
        return t
    }()

    /// Any other text field (address lines, telecom, dates, codes of value sets): chosen, the
    /// ebRIM slot value size, far above any legitimate value.
    public static let fallback = Limit(maxCharacters: 256, source: "chosen bound, the size of one \(longName)")

    /// The limit of the field at `path` (`patient.traits.birth_name`, `patient.telecom[0]`).
    public static func limit(forPath path: String) -> Limit {
        var key = path.split(separator: ".").last.map(String.init) ?? path
        if let bracket = key.firstIndex(of: "[") { key = String(key[..<bracket]) }
        return byField[key] ?? fallback
    }
}

extension DocumentMetadata {
    /// Every text field longer than its ``MetadataFieldLimits`` entry, e.g.
    /// `patient.traits.birth_name: 1048576 characters, at most 256 (DMP XDS metadata: ebRIM LongName)`.
    /// Walks the encoded form, so a field added later is checked too (by the fallback at least).
    public func lengthProblems() -> [MetadataProblem] {
        guard let data = try? JSONEncoder().encode(self),
              let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return [] }
        var problems: [MetadataProblem] = []
        func walk(_ value: Any, _ path: String) {
            switch value {
            case let text as String:
                let limit = MetadataFieldLimits.limit(forPath: path)
                let count = text.unicodeScalars.count
                if count > limit.maxCharacters {
                    problems.append(MetadataProblem(path, "\(count) characters, at most \(limit.maxCharacters) (\(limit.source))"))
                }
            case let object as [String: Any]:
                for key in object.keys.sorted() { walk(object[key]!, path.isEmpty ? key : "\(path).\(key)") }
            case let array as [Any]:
                for (i, element) in array.enumerated() { walk(element, "\(path)[\(i)]") }
            default:
                break
            }
        }
        walk(root, "")
        return problems
    }
}
