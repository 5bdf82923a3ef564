import Foundation

// Sidecar decoding never stops at the first bad field: each field that fails to decode
// becomes a MetadataProblem and decoding goes on, so `validate()` can report everything
// in one pass. The collector travels in JSONDecoder.userInfo; without it (plain decoding)
// errors are thrown as usual.

/// Collects problems during one decoding call; confined to that call.
final class ProblemCollector: @unchecked Sendable {
    var problems: [MetadataProblem] = []
}

extension CodingUserInfoKey {
    static let metadataProblems = CodingUserInfoKey(rawValue: "passerelle.metadataProblems")!
}

/// Any JSON key, used to spot unknown (probably misspelt) fields.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { self.stringValue = String(intValue); self.intValue = intValue }
}

/// `patient.traits.birth_date`, `mssante.recipients[1]`.
func fieldPath(_ path: [any CodingKey]) -> String {
    var out = ""
    for key in path {
        if let index = key.intValue { out += "[\(index)]" }
        else { out += out.isEmpty ? key.stringValue : ".\(key.stringValue)" }
    }
    return out
}

func describe(_ error: any Error) -> (path: String, message: String) {
    guard let error = error as? DecodingError else { return ("", "\(error)") }
    switch error {
    case .typeMismatch(let type, let context):
        return (fieldPath(context.codingPath), "wrong type: expected \(jsonTypeName(type))")
    case .valueNotFound(let type, let context):
        return (fieldPath(context.codingPath), "null is not allowed here: give \(jsonTypeName(type)) or leave the field out")
    case .keyNotFound(let key, let context):
        return (fieldPath(context.codingPath + [key]), "required")
    case .dataCorrupted(let context):
        return (fieldPath(context.codingPath), context.debugDescription)
    @unknown default:
        return ("", "\(error)")
    }
}

private func jsonTypeName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Int.Type: "an integer"
    case is Bool.Type: "true or false"
    default:
        String(describing: type).hasPrefix("Array") ? "an array" : "an object"
    }
}

struct LenientContainer<K: CodingKey & CaseIterable> {
    let container: KeyedDecodingContainer<K>
    let collector: ProblemCollector?

    init(_ decoder: any Decoder, _ keys: K.Type) throws {
        container = try decoder.container(keyedBy: K.self)
        collector = decoder.userInfo[.metadataProblems] as? ProblemCollector
        if let collector {
            // Unknown keys are most likely typos that would silently drop a field.
            // K(stringValue:) is the keys' own switch: no set of names built per object.
            let all = try decoder.container(keyedBy: AnyCodingKey.self).allKeys
            for key in all where K(stringValue: key.stringValue) == nil {
                let path = fieldPath(decoder.codingPath + [key])
                let match = closestMatch(key.stringValue, in: K.allCases.map(\.stringValue))
                let hint = match.map { " (did you mean '\($0)'?)" } ?? ""
                collector.problems.append(MetadataProblem(path, "unknown field\(hint); remove it or fix its name",
                                                          french: "champ inconnu\(match.map { " (vouliez-vous dire « \($0) » ?)" } ?? "") ; "
                                                              + "retirez-le ou corrigez son nom"))
            }
        }
    }

    func callAsFunction<T: Decodable>(_ type: T.Type, _ key: K) throws -> T? {
        do {
            return try container.decodeIfPresent(T.self, forKey: key)
        } catch {
            guard let collector else { throw error }
            let (path, message) = describe(error)
            collector.problems.append(MetadataProblem(path.isEmpty ? fieldPath(container.codingPath + [key]) : path, message))
            return nil
        }
    }
}

/// The candidate closest to `word` (edit distance ≤ 3), for "did you mean" hints.
func closestMatch(_ word: String, in candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
    let w = Array(word.lowercased())
    let scored = candidates.map { ($0, distance(w, Array($0.lowercased()))) }.filter { $0.1 <= 3 }
    return scored.min { $0.1 < $1.1 }?.0
}

/// String-coded enums whose decoding error lists the accepted values (so a sidecar or
/// configuration error tells the operator what to write instead).
public protocol CodedEnum: RawRepresentable, CaseIterable, Decodable where RawValue == String {
    /// The value for `text` (raw value in any case by default; types add aliases).
    static func parse(_ text: String) -> Self?
    /// The accepted spellings, for error messages.
    static var acceptedValues: String { get }
}

extension CodedEnum {
    public static func parse(_ text: String) -> Self? {
        Self(rawValue: text) ?? Self(rawValue: text.uppercased()) ?? Self(rawValue: text.lowercased())
    }

    public static var acceptedValues: String { allCases.map(\.rawValue).joined(separator: ", ") }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Self.parse(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not allowed; use one of \(Self.acceptedValues)")
        }
        self = value
    }
}

extension Sex: CodedEnum {}
extension IdentityStatus: CodedEnum {}
extension DocumentAction: CodedEnum {}
extension Confidentiality: CodedEnum {}
extension DocumentKind: CodedEnum {
    public static func parse(_ text: String) -> DocumentKind? { DocumentKind(parsing: text) }
    public static var acceptedValues: String { accepted }
}

extension Destination: CodedEnum {
    public static func parse(_ text: String) -> Destination? { Destination(parsing: text) }
}

extension MetaDMPMSSFlag: CodedEnum {
    public static func parse(_ text: String) -> MetaDMPMSSFlag? { MetaDMPMSSFlag(code: text) }
}
