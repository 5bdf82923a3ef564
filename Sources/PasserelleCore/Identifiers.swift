import Foundation

/// Why a professional or structure identifier was rejected.
public enum IdentifierError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    case wrongLength(kind: String, expected: Int, actual: Int)
    case invalidCharacter(kind: String, position: Int)
    case wrongCheckDigit(kind: String, value: String)
    /// A national id (IdNat_PS / IdNat_Struct) whose prefix Passerelle does not handle.
    case unsupportedNationalID(String)

    public var description: String {
        switch self {
        case .wrongLength(let kind, let expected, let actual):
            "\(kind) must have \(expected) characters, found \(actual)"
        case .invalidCharacter(let kind, let position):
            "\(kind) character \(position) is not allowed (digits only\(kind == "FINESS" || kind == "ADELI" ? ", or 2A/2B for Corsica in positions 1–2" : ""))"
        case .wrongCheckDigit(let kind, let value):
            "\(kind) \(value) fails its check-digit test (Luhn): the number was mistyped"
        case .unsupportedNationalID(let value):
            "national id '\(value)' is not supported: use 8+RPPS or 0+ADELI for professionals, 1+FINESS or 3+SIRET for structures"
        }
    }

    public var errorDescription: String? { description }
}

/// Luhn (mod 10) check over decimal digits, the rightmost digit being the check digit.
enum Luhn {
    static func isValid(_ digits: [Int]) -> Bool {
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            if offset % 2 == 1 {
                let doubled = digit * 2
                sum += doubled > 9 ? doubled - 9 : doubled
            } else {
                sum += digit
            }
        }
        return sum % 10 == 0
    }
}

/// Shared format checks; `corsicaPrefix` allows 2A/2B in the first two positions.
private func checkedIdentifier(
    _ raw: String, kind: String, length: Int, corsicaPrefix: Bool = false
) throws(IdentifierError) -> String {
    let s = raw.filter { !$0.isWhitespace }.uppercased()
    let chars = Array(s)
    guard chars.count == length else { throw .wrongLength(kind: kind, expected: length, actual: chars.count) }
    for (i, ch) in chars.enumerated() where !(ch.isASCII && ch.isNumber) {
        if corsicaPrefix && i == 1 && chars[0] == "2" && (ch == "A" || ch == "B") { continue }
        throw .invalidCharacter(kind: kind, position: i + 1)
    }
    return s
}

private func digits(_ s: String) -> [Int] { s.compactMap { $0.wholeNumberValue } }

/// RPPS number of a health professional: 11 digits, the last one a Luhn check digit
/// (verified on the ANS example national id 801234567897).
public struct RPPS: Sendable, Hashable, Codable, CustomStringConvertible {
    public let value: String
    public init(_ raw: String) throws(IdentifierError) {
        let s = try checkedIdentifier(raw, kind: "RPPS", length: 11)
        guard Luhn.isValid(digits(s)) else { throw .wrongCheckDigit(kind: "RPPS", value: s) }
        value = s
    }
    /// National PS identifier under 1.2.250.1.71.4.2.1: `8` + RPPS.
    public var nationalID: String { "8" + value }
    public var description: String { value }
}

/// ADELI number: 9 characters (département on 2 characters, 2A/2B allowed). No check digit
/// is verified: the ADELI key algorithm is not published in the CI-SIS material we rely on.
public struct ADELI: Sendable, Hashable, Codable, CustomStringConvertible {
    public let value: String
    public init(_ raw: String) throws(IdentifierError) {
        value = try checkedIdentifier(raw, kind: "ADELI", length: 9, corsicaPrefix: true)
    }
    /// National PS identifier under 1.2.250.1.71.4.2.1: `0` + ADELI.
    public var nationalID: String { "0" + value }
    public var description: String { value }
}

/// FINESS number of a health structure: 9 characters, the last a Luhn check digit.
/// Verified on the ANS example 750803447. Corsican numbers start with 2A/2B; for them we
/// compute the key with the département written 20 — an assumption (no public source
/// found), flagged in docs/sidecar.md; a false rejection shows up as a clear error.
public struct FINESS: Sendable, Hashable, Codable, CustomStringConvertible {
    public let value: String
    public init(_ raw: String) throws(IdentifierError) {
        let s = try checkedIdentifier(raw, kind: "FINESS", length: 9, corsicaPrefix: true)
        let numeric = s.hasPrefix("2A") || s.hasPrefix("2B") ? "20" + s.dropFirst(2) : Substring(s)
        guard Luhn.isValid(digits(String(numeric))) else { throw .wrongCheckDigit(kind: "FINESS", value: s) }
        value = s
    }
    /// National structure identifier under 1.2.250.1.71.4.2.2: `1` + FINESS.
    public var nationalID: String { "1" + value }
    public var description: String { value }
}

/// SIRET number: 14 digits, Luhn check (La Poste establishments, SIREN 356000000, use the
/// INSEE exception: the digit sum is a multiple of 5).
public struct SIRET: Sendable, Hashable, Codable, CustomStringConvertible {
    public let value: String
    public init(_ raw: String) throws(IdentifierError) {
        let s = try checkedIdentifier(raw, kind: "SIRET", length: 14)
        let d = digits(s)
        let laPoste = s.hasPrefix("356000000") && d.reduce(0, +) % 5 == 0
        guard laPoste || Luhn.isValid(d) else { throw .wrongCheckDigit(kind: "SIRET", value: s) }
        value = s
    }
    /// National structure identifier under 1.2.250.1.71.4.2.2: `3` + SIRET.
    public var nationalID: String { "3" + value }
    public var description: String { value }
}

/// The national identifier of a health professional (IdNat_PS).
public enum ProfessionalIdentifier: Sendable, Hashable, CustomStringConvertible {
    case rpps(RPPS)
    case adeli(ADELI)

    /// The OID root of every national PS identifier.
    public static let root = OID.professionalNationalID

    /// `8`+RPPS or `0`+ADELI.
    public var nationalID: String {
        switch self {
        case .rpps(let r): r.nationalID
        case .adeli(let a): a.nationalID
        }
    }

    /// The CDA/XDS identifier: root 1.2.250.1.71.4.2.1, extension = national id.
    public var instanceIdentifier: InstanceIdentifier {
        InstanceIdentifier(root: Self.root, extension: nationalID)
    }

    /// Parses a national id (`8`+RPPS or `0`+ADELI).
    public init(nationalID: String) throws(IdentifierError) {
        let s = nationalID.filter { !$0.isWhitespace }
        if s.count == 12, s.hasPrefix("8") { self = .rpps(try RPPS(String(s.dropFirst()))) }
        else if s.count == 10, s.hasPrefix("0") { self = .adeli(try ADELI(String(s.dropFirst()))) }
        else { throw .unsupportedNationalID(s) }
    }

    public var description: String { nationalID }
}

/// The national identifier of a health structure (IdNat_Struct).
public enum StructureIdentifier: Sendable, Hashable, CustomStringConvertible {
    case finess(FINESS)
    case siret(SIRET)

    /// The OID root of every national structure identifier.
    public static let root = OID.structureNationalID

    /// `1`+FINESS or `3`+SIRET.
    public var nationalID: String {
        switch self {
        case .finess(let f): f.nationalID
        case .siret(let s): s.nationalID
        }
    }

    /// The CDA/XDS identifier: root 1.2.250.1.71.4.2.2, extension = national id.
    public var instanceIdentifier: InstanceIdentifier {
        InstanceIdentifier(root: Self.root, extension: nationalID)
    }

    /// Parses a national id (`1`+FINESS or `3`+SIRET).
    public init(nationalID: String) throws(IdentifierError) {
        let s = nationalID.filter { !$0.isWhitespace }
        if s.count == 10, s.hasPrefix("1") { self = .finess(try FINESS(String(s.dropFirst()))) }
        else if s.count == 15, s.hasPrefix("3") { self = .siret(try SIRET(String(s.dropFirst()))) }
        else { throw .unsupportedNationalID(s) }
    }

    public var description: String { nationalID }
}

// French texts for the refusal texts (`[intake] language`, see Sources/Intake/RefusalTexts.swift).
extension IdentifierError {
    public func text(_ language: IntakeLanguage) -> String {
        guard language == .fr else { return description }
        switch self {
        case .wrongLength(let kind, let expected, let actual):
            return "le \(kind) doit compter \(expected) caractères, il en compte \(actual)"
        case .invalidCharacter(let kind, let position):
            return "le caractère \(position) du \(kind) n'est pas permis (chiffres seulement"
                + (kind == "FINESS" || kind == "ADELI" ? ", ou 2A/2B pour la Corse en positions 1–2)" : ")")
        case .wrongCheckDigit(let kind, let value):
            return "le \(kind) \(value) ne passe pas le contrôle de sa clé (Luhn) : le numéro a été mal saisi"
        case .unsupportedNationalID(let value):
            return "l'identifiant national « \(value) » n'est pas pris en charge : utilisez 8+RPPS ou 0+ADELI pour un professionnel, "
                + "1+FINESS ou 3+SIRET pour une structure"
        }
    }
}
