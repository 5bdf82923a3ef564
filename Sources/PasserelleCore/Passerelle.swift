// PasserelleCore — the domain model shared by every pipeline stage: INS and identity,
// professional and structure identifiers, document kinds, sidecar metadata, configuration.
// Foundation only, value types only: the stages depend on this target, never the reverse.
import Foundation

/// Facts about the Passerelle build.
public enum Passerelle {
    /// The release version, printed by `passerelle --version`.
    public static let version = "0.1.0"
}

/// OIDs and code systems used across the CI-SIS, the DMP and MSSanté.
public enum OID {
    /// National identifiers of health professionals (IdNat_PS): `8`+RPPS, `0`+ADELI.
    public static let professionalNationalID = "1.2.250.1.71.4.2.1"
    /// National identifiers of health structures (IdNat_Struct): `1`+FINESS, `3`+SIRET.
    public static let structureNationalID = "1.2.250.1.71.4.2.2"
    /// LOINC, the code system of every document type Passerelle produces.
    public static let loinc = "2.16.840.1.113883.6.1"
    /// TRE_A03-ClasseDocument, the code system of XDS classCode (JDV_J06 / JDV_J57).
    public static let documentClass = "1.2.250.1.213.1.1.4.1"
    /// HL7 Confidentiality (N, R, V).
    public static let hl7Confidentiality = "2.16.840.1.113883.5.25"
    /// HL7 AdministrativeGender (F, M, UN).
    public static let hl7AdministrativeGender = "2.16.840.1.113883.5.1"
    /// TRE_R02-SecteurActivite (healthcare facility type, JDV_J02).
    public static let facilityType = "1.2.250.1.71.4.2.4"
    /// Practice setting codes of JDV_J04.
    public static let practiceSetting = "1.2.250.1.213.1.1.4.9"
    /// TRE_G15 profession/specialty (author role, JDV_J01).
    public static let authorSpecialty = "1.2.250.1.213.1.1.4.5"

    /// True when `text` is a syntactically valid OID: dot-separated decimal arcs,
    /// no leading zeros, at least two arcs, first arc 0, 1 or 2.
    public static func isValid(_ text: String) -> Bool {
        // One pass over the UTF-8 bytes (called for every OID of every document's metadata):
        // a byte outside 0-9 and '.' is refused, so the byte count is the character count.
        let bytes = text.utf8
        guard bytes.count <= 64, let first = bytes.first, (UInt8(ascii: "0")...UInt8(ascii: "2")).contains(first) else { return false }
        var arcs = 1
        var arcLength = 0
        var arcStartsWithZero = false
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                // The first arc is one digit (0, 1 or 2, checked above).
                guard arcLength > 0, arcs > 1 || arcLength == 1 else { return false }
                arcs += 1
                arcLength = 0
            } else if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                if arcLength == 0 { arcStartsWithZero = byte == UInt8(ascii: "0") } else if arcStartsWithZero { return false }
                arcLength += 1
            } else {
                return false
            }
        }
        return arcLength > 0 && arcs >= 2
    }
}

/// A coded value as carried by CDA `code` elements and XDS classifications.
public struct CodedValue: Sendable, Hashable, Codable {
    public var code: String
    public var codeSystem: String
    public var displayName: String

    public init(code: String, codeSystem: String, displayName: String) {
        self.code = code
        self.codeSystem = codeSystem
        self.displayName = displayName
    }

    enum CodingKeys: String, CodingKey {
        case code
        case codeSystem = "code_system"
        case displayName = "display_name"
    }
}

/// An HL7 instance identifier (CDA `id`, `setId`): an OID root and an optional extension.
public struct InstanceIdentifier: Sendable, Hashable, Codable, CustomStringConvertible {
    public var root: String
    public var `extension`: String?

    public init(root: String, extension: String? = nil) {
        self.root = root
        self.extension = `extension`
    }

    /// A fresh identifier under `root`: the extension is a random UUID (upper case, as
    /// commonly used in CDA ids). Use when the sidecar does not supply a document id.
    public static func generated(root: String) -> InstanceIdentifier {
        InstanceIdentifier(root: root, extension: UUID.random().uuidString)
    }

    public var description: String {
        if let ext = `extension` { return "\(root)^\(ext)" }
        return root
    }
}
