import Foundation

/// The identity status of the RNIV (référentiel national d'identitovigilance).
/// Only a qualified identity (QUAL) may carry the INS matricule in shared documents.
public enum IdentityStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case provisional = "PROV"
    case recovered = "RECUP"
    case validated = "VALI"
    case qualified = "QUAL"

    /// The French label: provisoire, récupérée, validée, qualifiée.
    public var label: String {
        switch self {
        case .provisional: "provisoire"
        case .recovered: "récupérée"
        case .validated: "validée"
        case .qualified: "qualifiée"
        }
    }

    /// True only for QUAL: the INS and its OID may be sent downstream (CDA, DMP, MSSanté).
    public var mayCarryINS: Bool { self == .qualified }

    /// Parses the code (PROV, RECUP, VALI, QUAL), case-insensitively.
    public init?(code: String) {
        self.init(rawValue: code.uppercased())
    }
}

/// Administrative sex as recorded in the identity traits.
public enum Sex: String, Sendable, Hashable, CaseIterable, Codable {
    case female = "F"
    case male = "M"
    case unknown = "U"

    /// The HL7 AdministrativeGender code (F, M, UN).
    public var hl7Code: String {
        switch self {
        case .female: "F"
        case .male: "M"
        case .unknown: "UN"
        }
    }
}

/// A calendar date without time (birth date), `YYYY-MM-DD` in JSON.
public struct CalendarDate: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int

    /// A checked date (the day must exist in that month).
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month), day >= 1,
              day <= CalendarDate.daysIn(month: month, year: year) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses `YYYY-MM-DD`.
    public init?(iso: String) {
        let parts = iso.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]) else { return nil }
        self.init(year: y, month: m, day: d)
    }

    /// `YYYY-MM-DD`.
    public var iso: String {
        var out = DigitWriter(capacity: 10)
        out.digits(year, 4); out.byte(UInt8(ascii: "-")); out.digits(month, 2); out.byte(UInt8(ascii: "-")); out.digits(day, 2)
        return out.string
    }
    /// `YYYYMMDD`, the HL7 TS form used in CDA and XDS.
    public var hl7: String {
        var out = DigitWriter(capacity: 8)
        out.digits(year, 4); out.digits(month, 2); out.digits(day, 2)
        return out.string
    }
    public var description: String { iso }

    public static func < (a: CalendarDate, b: CalendarDate) -> Bool {
        (a.year, a.month, a.day) < (b.year, b.month, b.day)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let date = CalendarDate(iso: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a date as YYYY-MM-DD")
        }
        self = date
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(iso)
    }
}

/// One identity trait, used to say which trait is missing or disagrees with the INS.
public enum IdentityTrait: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case birthName = "birth_name"
    case firstBirthGivenName = "first_birth_given_name"
    case birthGivenNames = "birth_given_names"
    case birthDate = "birth_date"
    case birthYear = "birth_date (year)"
    case birthMonth = "birth_date (month)"
    case sex = "sex"
    case birthPlace = "birth_place"

    /// The sidecar field that holds this trait.
    public var fieldPath: String {
        switch self {
        case .birthYear, .birthMonth, .birthDate: "patient.traits.birth_date"
        default: "patient.traits.\(rawValue)"
        }
    }

    public var description: String {
        switch self {
        case .birthName: "birth name"
        case .firstBirthGivenName: "first birth given name"
        case .birthGivenNames: "birth given names"
        case .birthDate: "birth date"
        case .birthYear: "birth year"
        case .birthMonth: "birth month"
        case .sex: "sex"
        case .birthPlace: "birth place (département / country)"
        }
    }
}

/// An identity problem: traits that contradict the INS, or a QUAL identity without its traits.
/// Messages carry no patient data beyond the masked INS.
public enum IdentityError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The NIR and the traits disagree on `trait`.
    case traitMismatch(trait: IdentityTrait, maskedINS: String)
    /// A qualified identity lacks mandatory traits.
    case missingTraitsForQualifiedIdentity([IdentityTrait])
    /// The birth place is not a 5-character COG code.
    case invalidBirthPlace

    public var description: String {
        switch self {
        case .traitMismatch(let trait, let masked):
            "INS \(masked) contradicts the \(trait) in the traits (\(trait.fieldPath)): correct the traits or the INS from the INSi response"
        case .missingTraitsForQualifiedIdentity(let traits):
            "identity status QUAL requires all INS traits; missing: \(traits.map(\.description).joined(separator: ", "))"
        case .invalidBirthPlace:
            "birth place must be a 5-character INSEE COG code (commune such as 51215 or 2A004, or 99xxx for a country)"
        }
    }

    public var errorDescription: String? { description }
}

/// The identity traits of a patient (the INS traits plus the used name and given name).
public struct IdentityTraits: Sendable, Hashable, Codable {
    /// Nom de naissance.
    public var birthName: String?
    /// Premier prénom de naissance.
    public var firstBirthGivenName: String?
    /// Liste des prénoms de naissance, space-separated as on the birth certificate.
    public var birthGivenNames: String?
    /// Nom utilisé.
    public var usedName: String?
    /// Prénom utilisé.
    public var usedGivenName: String?
    public var birthDate: CalendarDate?
    public var sex: Sex?
    /// INSEE COG code of the birth place: commune (e.g. 51215, 2A004, 97411) or 99xxx (country).
    public var birthPlace: String?

    public init(
        birthName: String? = nil, firstBirthGivenName: String? = nil, birthGivenNames: String? = nil,
        usedName: String? = nil, usedGivenName: String? = nil, birthDate: CalendarDate? = nil,
        sex: Sex? = nil, birthPlace: String? = nil
    ) {
        self.birthName = birthName
        self.firstBirthGivenName = firstBirthGivenName
        self.birthGivenNames = birthGivenNames
        self.usedName = usedName
        self.usedGivenName = usedGivenName
        self.birthDate = birthDate
        self.sex = sex
        self.birthPlace = birthPlace
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case birthName = "birth_name"
        case firstBirthGivenName = "first_birth_given_name"
        case birthGivenNames = "birth_given_names"
        case usedName = "used_name"
        case usedGivenName = "used_given_name"
        case birthDate = "birth_date"
        case sex
        case birthPlace = "birth_place"
    }

    public init(from decoder: any Decoder) throws {
        let c = try LenientContainer(decoder, CodingKeys.self)
        birthName = try c(String.self, .birthName)
        firstBirthGivenName = try c(String.self, .firstBirthGivenName)
        birthGivenNames = try c(String.self, .birthGivenNames)
        usedName = try c(String.self, .usedName)
        usedGivenName = try c(String.self, .usedGivenName)
        birthDate = try c(CalendarDate.self, .birthDate)
        sex = try c(Sex.self, .sex)
        birthPlace = try c(String.self, .birthPlace)
    }

    /// The INS traits a QUAL identity must carry (CI-SIS StrucMin rule) that are absent.
    public var missingINSTraits: [IdentityTrait] {
        var missing: [IdentityTrait] = []
        if birthName.isBlank { missing.append(.birthName) }
        if firstBirthGivenName.isBlank { missing.append(.firstBirthGivenName) }
        if birthGivenNames.isBlank { missing.append(.birthGivenNames) }
        if birthDate == nil { missing.append(.birthDate) }
        if sex == nil { missing.append(.sex) }
        if birthPlace.isBlank { missing.append(.birthPlace) }
        return missing
    }

    /// True when `code` has the shape of a COG code: 5 characters, digits except 2A/2B.
    public static func isCOGCode(_ code: String) -> Bool {
        let c = Array(code.uppercased())
        guard c.count == 5 else { return false }
        let corsica = c[0] == "2" && (c[1] == "A" || c[1] == "B")
        return c.enumerated().allSatisfy { i, ch in (ch.isASCII && ch.isNumber) || (i == 1 && corsica) }
    }

    /// Checks the traits against the NIR: sex digit, birth year, birth month (only when the
    /// NIR month is 01–12) and département of birth (or 99 for a birth abroad).
    /// Traits that are absent are not compared (see ``missingINSTraits``); sex U never matches,
    /// since an INS always encodes M or F.
    ///
    /// Tolerated on purpose: a NIR with département 20 for a birth place in 2A/2B, because
    /// Corsica was split in 1976 and older NIRs keep 20.
    public func checkConsistency(with ins: INS) throws(IdentityError) {
        if let sex {
            let expected: Sex = "137".contains(ins.sexDigit) ? .male : .female
            if sex != expected { throw .traitMismatch(trait: .sex, maskedINS: ins.masked) }
        }
        if let birthDate {
            if Int(ins.birthYearDigits) != birthDate.year % 100 {  // no String(format:): it runs for every document
                throw .traitMismatch(trait: .birthYear, maskedINS: ins.masked)
            }
            if let month = Int(ins.birthMonthDigits), (1...12).contains(month), month != birthDate.month {
                throw .traitMismatch(trait: .birthMonth, maskedINS: ins.masked)
            }
        }
        if let place = birthPlace?.uppercased(), !place.isEmpty {
            guard IdentityTraits.isCOGCode(place) else { throw .invalidBirthPlace }
            let nirDepartement = ins.birthDepartement
            let matches: Bool
            if place.hasPrefix("99") {
                matches = nirDepartement == "99"
            } else if place.hasPrefix("97") || place.hasPrefix("98") {
                matches = nirDepartement == String(place.prefix(3))
            } else {
                let dep = String(place.prefix(2))
                matches = dep == nirDepartement || ((dep == "2A" || dep == "2B") && nirDepartement == "20")
            }
            if !matches { throw .traitMismatch(trait: .birthPlace, maskedINS: ins.masked) }
        }
    }

    /// For a QUAL identity: all INS traits present, then consistency with the INS.
    public func checkQualified(with ins: INS?) throws(IdentityError) {
        let missing = missingINSTraits
        if !missing.isEmpty { throw .missingTraitsForQualifiedIdentity(missing) }
        if let ins { try checkConsistency(with: ins) }
    }
}

extension Optional where Wrapped == String {
    /// nil, empty or only whitespace.
    var isBlank: Bool { self?.trimmingWhitespaceAndNewlines().isEmpty ?? true }
}

// French texts for the refusal texts (`[intake] language`, see Sources/Intake/RefusalTexts.swift).
extension IdentityTrait {
    /// The trait's name in the words of the ANS identity guides.
    public var frenchName: String {
        switch self {
        case .birthName: "nom de naissance"
        case .firstBirthGivenName: "premier prénom de naissance"
        case .birthGivenNames: "prénoms de naissance"
        case .birthDate: "date de naissance"
        case .birthYear: "année de naissance"
        case .birthMonth: "mois de naissance"
        case .sex: "sexe"
        case .birthPlace: "lieu de naissance (département / pays)"
        }
    }
}

extension IdentityError {
    public func text(_ language: IntakeLanguage) -> String {
        guard language == .fr else { return description }
        switch self {
        case .traitMismatch(let trait, let masked):
            return "l'INS \(masked) contredit le trait « \(trait.frenchName) » de l'identité (\(trait.fieldPath)) : corrigez les traits "
                + "ou l'INS d'après la réponse du téléservice INSi"
        case .missingTraitsForQualifiedIdentity(let traits):
            return "une identité qualifiée (QUAL) exige tous les traits INS ; manquants : \(traits.map(\.frenchName).joined(separator: ", "))"
        case .invalidBirthPlace:
            return "le lieu de naissance doit être un code officiel géographique (COG) INSEE de 5 caractères (commune comme 51215 "
                + "ou 2A004, ou 99xxx pour un pays)"
        }
    }
}
