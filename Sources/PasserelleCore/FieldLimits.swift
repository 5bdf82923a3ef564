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
    /// Walks what `encode(to:)` writes, so a field added later is checked too (by the fallback at
    /// least); the text fields are visited as they are encoded, without producing and parsing
    /// JSON again (that round trip was ~6 % of a document's instructions). Problems come sorted
    /// by path, object keys by name and array elements by position.
    public func lengthProblems() -> [MetadataProblem] {
        let visitor = TextFieldVisitor()
        try? encode(to: visitor)
        return visitor.problems.sorted { TextFieldVisitor.precedes($0.0, $1.0) }.map(\.1)
    }
}

/// An `Encoder` that only looks at the text values, with the path of each (see ``DocumentMetadata/lengthProblems()``).
private final class TextFieldVisitor: Encoder {
    enum Step { case key(String), index(Int) }

    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    private var steps: [Step] = []
    private(set) var problems: [([Step], MetadataProblem)] = []

    /// `text` at `steps` + `last` (the path is built only for a value that is too long: most
    /// fields are short, and a path array per field was most of this check's cost).
    func visit(_ text: String, at steps: [Step], _ last: Step? = nil) {
        // A value within the smallest limit (in bytes, so in characters too) fits every field.
        guard text.utf8.count > Self.smallestLimit else { return }
        let key: String? = if case .key(let k) = last { k } else {
            steps.last(where: { if case .key = $0 { true } else { false } }).flatMap { if case .key(let k) = $0 { k } else { nil } }
        }
        guard let key else { return }
        let limit = MetadataFieldLimits.byField[key] ?? MetadataFieldLimits.fallback
        // A character never takes more than 4 bytes: the count is needed only when it may be over.
        guard text.utf8.count > limit.maxCharacters else { return }
        let count = text.unicodeScalars.count
        if count > limit.maxCharacters {
            let path = last.map { steps + [$0] } ?? steps
            problems.append((path, MetadataProblem(Self.path(path), "\(count) characters, at most \(limit.maxCharacters) (\(limit.source))",
                                                         french: "\(count) caractères, au plus \(limit.maxCharacters) (\(limit.source))")))
        }
    }

    /// The smallest limit of ``MetadataFieldLimits``.
    static let smallestLimit = min(MetadataFieldLimits.byField.values.map(\.maxCharacters).min() ?? 0,
                                   MetadataFieldLimits.fallback.maxCharacters)

    static func path(_ steps: [Step]) -> String {
        var out = ""
        for step in steps {
            switch step {
            case .key(let key): out += out.isEmpty ? key : ".\(key)"
            case .index(let i): out += "[\(i)]"
            }
        }
        return out
    }

    /// Object keys by name, array elements by position, a parent before its children.
    static func precedes(_ a: [Step], _ b: [Step]) -> Bool {
        for (x, y) in zip(a, b) {
            switch (x, y) {
            case (.key(let l), .key(let r)) where l != r: return l < r
            case (.index(let l), .index(let r)) where l != r: return l < r
            default: continue
            }
        }
        return a.count < b.count
    }

    func nested(_ step: Step, _ value: some Encodable) throws {
        steps.append(step)
        defer { steps.removeLast() }
        if let text = value as? String { visit(text, at: steps) } else { try value.encode(to: self) }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(Keyed<Key>(visitor: self, steps: steps))
    }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { Unkeyed(visitor: self, steps: steps) }
    func singleValueContainer() -> any SingleValueEncodingContainer { Single(visitor: self, steps: steps) }

    /// Containers remember the path where they were made: a type may make several.
    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let visitor: TextFieldVisitor
        let steps: [Step]
        var codingPath: [any CodingKey] { [] }
        func encodeNil(forKey key: Key) {}
        func encode(_ value: String, forKey key: Key) { visitor.visit(value, at: steps, .key(key.stringValue)) }
        func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try visitor.at(steps) { try visitor.nested(.key(key.stringValue), value) } }
        func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            KeyedEncodingContainer(Keyed<NestedKey>(visitor: visitor, steps: steps + [.key(key.stringValue)]))
        }
        func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            Unkeyed(visitor: visitor, steps: steps + [.key(key.stringValue)])
        }
        func superEncoder() -> any Encoder { visitor.moved(to: steps) }
        func superEncoder(forKey key: Key) -> any Encoder { visitor.moved(to: steps + [.key(key.stringValue)]) }
    }

    final class Unkeyed: UnkeyedEncodingContainer {
        let visitor: TextFieldVisitor
        let steps: [Step]
        private(set) var count = 0
        var codingPath: [any CodingKey] { [] }
        init(visitor: TextFieldVisitor, steps: [Step]) { self.visitor = visitor; self.steps = steps }
        private func next() -> Step { defer { count += 1 }; return .index(count) }
        func encodeNil() { count += 1 }
        func encode(_ value: String) { visitor.visit(value, at: steps, next()) }
        func encode<T: Encodable>(_ value: T) throws { let step = next(); try visitor.at(steps) { try visitor.nested(step, value) } }
        func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            KeyedEncodingContainer(Keyed<NestedKey>(visitor: visitor, steps: steps + [next()]))
        }
        func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { Unkeyed(visitor: visitor, steps: steps + [next()]) }
        func superEncoder() -> any Encoder { visitor.moved(to: steps + [next()]) }
    }

    struct Single: SingleValueEncodingContainer {
        let visitor: TextFieldVisitor
        let steps: [Step]
        var codingPath: [any CodingKey] { [] }
        func encodeNil() {}
        func encode(_ value: Bool) {}
        func encode(_ value: String) { visitor.visit(value, at: steps) }
        func encode(_ value: Double) {}
        func encode(_ value: Float) {}
        func encode(_ value: Int) {}
        func encode(_ value: Int8) {}
        func encode(_ value: Int16) {}
        func encode(_ value: Int32) {}
        func encode(_ value: Int64) {}
        func encode(_ value: UInt) {}
        func encode(_ value: UInt8) {}
        func encode(_ value: UInt16) {}
        func encode(_ value: UInt32) {}
        func encode(_ value: UInt64) {}
        func encode<T: Encodable>(_ value: T) throws { try visitor.at(steps) { try value.encode(to: visitor) } }
    }

    /// Runs `body` with the visitor's current path set to `steps`.
    func at(_ steps: [Step], _ body: () throws -> Void) rethrows {
        let saved = self.steps
        self.steps = steps
        defer { self.steps = saved }
        try body()
    }

    /// The visitor itself, at another path (for `superEncoder`, which no type here uses).
    func moved(to steps: [Step]) -> any Encoder {
        self.steps = steps
        return self
    }
}
