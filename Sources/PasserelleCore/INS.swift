import Foundation

/// The kind of INS matricule, told apart by its OID (patientRole/id/@root, XDS patientId).
public enum INSKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// INS-NIR, production (1.2.250.1.213.1.4.8).
    case nir = "INS-NIR"
    /// INS-NIA, temporary number (1.2.250.1.213.1.4.9).
    case nia = "INS-NIA"
    /// INS-NIR de test (1.2.250.1.213.1.4.10), the one every ANS example uses.
    case nirTest = "INS-NIR-TEST"
    /// INS-NIR de démonstration (1.2.250.1.213.1.4.11).
    case nirDemo = "INS-NIR-DEMO"

    /// The OID of this kind.
    public var oid: String {
        switch self {
        case .nir: "1.2.250.1.213.1.4.8"
        case .nia: "1.2.250.1.213.1.4.9"
        case .nirTest: "1.2.250.1.213.1.4.10"
        case .nirDemo: "1.2.250.1.213.1.4.11"
        }
    }

    /// The French label used by the ANS stylesheets.
    public var label: String {
        switch self {
        case .nir: "INS-NIR"
        case .nia: "INS-NIA"
        case .nirTest: "INS-NIR de test"
        case .nirDemo: "INS-NIR de démonstration"
        }
    }

    /// True for the production roots (.8 and .9): the only ones the production DMP accepts.
    public var isProduction: Bool { self == .nir || self == .nia }

    /// The kind whose OID is `oid`, or nil.
    public init?(oid: String) {
        guard let kind = INSKind.allCases.first(where: { $0.oid == oid }) else { return nil }
        self = kind
    }
}

/// Why an INS matricule was rejected. Messages never show the full number.
public enum INSError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The matricule does not have 15 characters (spaces are ignored).
    case wrongLength(actual: Int)
    /// A character that must be a digit is not (positions are 1-based).
    case notADigit(position: Int)
    /// The first character (sex) is not 1, 2, 3, 4, 7 or 8.
    case invalidSexDigit
    /// The two-digit key does not match 97 − (first 13 digits mod 97).
    case wrongKey(masked: String, given: String, expected: String)
    /// The OID is not one of the four INS OIDs.
    case unknownOID(String)

    public var description: String {
        switch self {
        case .wrongLength(let actual):
            "INS matricule has \(actual) character\(actual == 1 ? "" : "s"); it must have exactly 15 (13 digits + 2-digit key, spaces ignored)"
        case .notADigit(let position):
            position == 6 || position == 7
                ? "INS matricule character \(position) must be a digit (or 2A/2B for Corsica in positions 6–7)"
                : "INS matricule character \(position) must be a digit"
        case .invalidSexDigit:
            "INS matricule must start with 1 or 2 (sex), or 3, 4, 7, 8 for temporary numbers"
        case .wrongKey(let masked, let given, let expected):
            "INS \(masked) has key \(given) but its first 13 characters give key \(expected): the number was mistyped"
        case .unknownOID(let oid):
            "'\(oid)' is not an INS OID; use 1.2.250.1.213.1.4.8 (INS-NIR), .9 (INS-NIA), .10 (INS-NIR de test) or .11 (INS-NIR de démonstration)"
        }
    }

    public var errorDescription: String? { description }
}

/// An INS matricule (NIR or NIA) whose format and key have been checked.
///
/// The stored value is the 15-character normalised form (spaces removed, upper case).
/// Never log ``value``: use ``masked``.
public struct INS: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The 15-character matricule.
    public let value: String
    /// NIR, NIA, test or demo.
    public let kind: INSKind

    /// Checks `matricule` (spaces allowed) and its key.
    public init(_ matricule: String, kind: INSKind = .nir) throws(INSError) {
        self.value = try INS.normalizedChecked(matricule)
        self.kind = kind
    }

    /// Checks `matricule` and resolves `oid` to its ``INSKind``.
    public init(_ matricule: String, oid: String) throws(INSError) {
        guard let kind = INSKind(oid: oid) else { throw .unknownOID(oid) }
        try self.init(matricule, kind: kind)
    }

    /// The OID of ``kind``.
    public var oid: String { kind.oid }

    /// A form safe for logs: the first digit and the last three characters only.
    public var masked: String { INS.mask(value) }

    /// A readable grouping: `2 79 03 51 215 189 89`.
    public var display: String {
        let c = Array(value)
        let groups = [c[0...0], c[1...2], c[3...4], c[5...6], c[7...9], c[10...12], c[13...14]]
        return groups.map { String($0) }.joined(separator: " ")
    }

    /// The masked form, so that string interpolation never leaks the number.
    public var description: String { masked }

    /// Sex digit (position 1).
    public var sexDigit: Character { value.first! }
    /// Last two digits of the birth year (positions 2–3).
    public var birthYearDigits: String { slice(1, 3) }
    /// Birth month (positions 4–5); may be outside 01–12 for some numbers.
    public var birthMonthDigits: String { slice(3, 5) }
    /// Birth place: 2 characters (positions 6–7), 3 for overseas departments (97x/98x).
    public var birthDepartement: String {
        let two = slice(5, 7)
        return (two == "97" || two == "98") ? slice(5, 8) : two
    }
    /// The two-digit key.
    public var key: String { slice(13, 15) }

    /// The two-digit key of the first 13 characters of a NIR (2A → 19, 2B → 18).
    public static func key(forFirst13 first13: String) -> String? {
        var chars = Array(first13.uppercased())
        guard chars.count == 13 else { return nil }
        if chars[5] == "2" && chars[6] == "A" { chars[5] = "1"; chars[6] = "9" }
        if chars[5] == "2" && chars[6] == "B" { chars[5] = "1"; chars[6] = "8" }
        guard let number = UInt64(String(chars)) else { return nil }
        let key = 97 - Int(number % 97)
        return key < 10 ? "0\(key)" : String(key)
    }

    /// Masks any matricule-like string for logs (works even on invalid input).
    public static func mask(_ raw: String) -> String {
        let s = Array(raw.filter { !$0.isWhitespace })
        guard s.count > 4 else { return String(repeating: "*", count: s.count) }
        return String(s[0]) + String(repeating: "*", count: s.count - 4) + String(s[(s.count - 3)...])
    }

    private func slice(_ from: Int, _ to: Int) -> String {
        let c = Array(value)
        return String(c[from..<to])
    }

    private static func normalizedChecked(_ raw: String) throws(INSError) -> String {
        let s = raw.filter { !$0.isWhitespace }.uppercased()
        let chars = Array(s)
        guard chars.count == 15 else { throw .wrongLength(actual: chars.count) }
        for (index, ch) in chars.enumerated() {
            let isDigit = ch.isASCII && ch.isNumber
            if isDigit { continue }
            // Corsica: département 2A / 2B in positions 6–7.
            if index == 6 && (ch == "A" || ch == "B") && chars[5] == "2" { continue }
            throw .notADigit(position: index + 1)
        }
        guard "123478".contains(chars[0]) else { throw .invalidSexDigit }
        let expected = key(forFirst13: String(chars[0..<13]))!
        let given = String(chars[13..<15])
        guard expected == given else { throw .wrongKey(masked: mask(s), given: given, expected: expected) }
        return s
    }
}

extension INS {
    enum CodingKeys: String, CodingKey { case value, oid }

    /// Decodes `{"value": "...", "oid": "..."}` and checks the number and the OID.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let value = try container.decode(String.self, forKey: .value)
        let oid = try container.decode(String.self, forKey: .oid)
        do {
            try self.init(value, oid: oid)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .value, in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(value, forKey: .value)
        try container.encode(oid, forKey: .oid)
    }
}

// The French texts of the INS checks, for the refusal texts (`[intake] language`, see
// Sources/Intake/RefusalTexts.swift): a sidecar and an HL7 message share them.
extension INSError {
    /// The INS checks in `language` (the number is never shown whole).
    public func text(_ language: IntakeLanguage) -> String {
        guard language == .fr else { return description }
        switch self {
        case .wrongLength(let actual):
            return "le matricule INS compte \(actual) caractère\(actual > 1 ? "s" : "") ; il en faut exactement 15 "
                + "(13 chiffres et une clé de 2 chiffres, espaces ignorés)"
        case .notADigit(let position):
            return position == 6 || position == 7
                ? "le caractère \(position) du matricule INS doit être un chiffre (ou 2A/2B pour la Corse en positions 6–7)"
                : "le caractère \(position) du matricule INS doit être un chiffre"
        case .invalidSexDigit:
            return "le matricule INS doit commencer par 1 ou 2 (sexe), ou par 3, 4, 7 ou 8 pour un numéro provisoire"
        case .wrongKey(let masked, let given, let expected):
            return "l'INS \(masked) a la clé \(given) alors que ses 13 premiers caractères donnent la clé \(expected) : "
                + "le numéro a été mal saisi ; vérifiez-le dans le dossier du patient (identité issue du téléservice INSi)"
        case .unknownOID(let oid):
            return "« \(oid) » n'est pas un OID d'INS ; utilisez 1.2.250.1.213.1.4.8 (INS-NIR), .9 (INS-NIA), "
                + ".10 (INS-NIR de test) ou .11 (INS-NIR de démonstration)"
        }
    }
}
