import Foundation
import Testing
@testable import PasserelleCore

@Suite("UUID.random: version 4, RFC 4122 variant, from the system generator")
struct RandomUUIDTests {
    @Test func versionVariantAndUniqueness() {
        var seen = Set<UUID>()
        for _ in 0..<2_000 {
            let id = UUID.random()
            let text = id.uuidString
            let characters = Array(text)
            #expect(characters.count == 36)
            #expect(characters[14] == "4", "\(text)")                // version nibble
            #expect("89AB".contains(characters[19]), "\(text)")       // variant bits 10xx
            #expect(UUID(uuidString: text) == id)
            seen.insert(id)
        }
        #expect(seen.count == 2_000)
    }
}
