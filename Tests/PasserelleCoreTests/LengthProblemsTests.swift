import Foundation
import Testing
import TestSupport
@testable import PasserelleCore

/// `lengthProblems()` visits the encoded text fields directly: it must find exactly what the
/// JSON round trip it replaced found, in the same order (that walk is the oracle here).
@Suite struct LengthProblemsTests {
    static func oracle(_ metadata: DocumentMetadata) -> [String] {
        guard let data = try? JSONEncoder().encode(metadata),
              let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return [] }
        var problems: [String] = []
        func walk(_ value: Any, _ path: String) {
            switch value {
            case let text as String:
                let limit = MetadataFieldLimits.limit(forPath: path)
                let count = text.unicodeScalars.count
                if count > limit.maxCharacters { problems.append("\(path): \(count) characters, at most \(limit.maxCharacters) (\(limit.source))") }
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

    @Test func findsWhatTheJSONWalkFoundInTheSameOrder() {
        var m = SampleMetadata.document(kind: .dischargeLetter, id: SampleMetadata.oidDocumentID(), destinations: [.dmp, .mssantePS])
        #expect(m.lengthProblems().isEmpty && Self.oracle(m).isEmpty)
        let long = String(repeating: "x", count: 2_000)
        m.title = long
        m.patient.traits.birthName = long
        m.patient.telecom = ["tel:+33100000000", "mailto:" + long, long]
        m.patient.address = PostalAddress(lines: ["1 rue", long], postalCode: long, city: "Paris", country: nil)
        m.author?.familyName = String(repeating: "é", count: 300)      // 300 characters, 600 bytes
        m.author?.givenName = String(repeating: "é", count: 100)       // 200 bytes, within 256 characters
        m.stay?.id = LocalIdentifier(value: long, authority: "1.2.3")
        let visited = m.lengthProblems().map(\.description)
        let expected = Self.oracle(m)
        #expect(visited == expected)
        #expect(visited.count >= 7, "\(visited)")
        #expect(visited.contains { $0.hasPrefix("patient.telecom[1]:") } && visited.contains { $0.hasPrefix("patient.address.lines[1]:") })
        #expect(!visited.contains { $0.hasPrefix("author.given_name") })
    }
}
