import Foundation
import Testing
import PasserelleCore
import TestSupport

/// The project's trimming replaces Foundation's on hot paths: it must cut exactly the same characters.
@Suite("Whitespace trimming against Foundation's")
struct TrimmingTests {
    /// Every scalar Foundation puts in `.whitespacesAndNewlines`, a few it does not, and ordinary text.
    static let pieces: [String] = [
        " ", "\t", "\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{A0}", "\u{1680}", "\u{2000}", "\u{2007}", "\u{200A}",
        "\u{2028}", "\u{2029}", "\u{202F}", "\u{205F}", "\u{3000}", "\u{200B}", "\u{FEFF}", "\u{180E}", "\u{1}",
        "a", "Zoé", "1.2.250", "é", "\u{301}", "🏥", "-", "x y",
    ]

    @Test("agrees with trimmingCharacters(in:) on 20,000 random strings of spaces, newlines and text")
    func randomStrings() {
        var generator = SeededRandom(seed: 17)
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...6, using: &generator)
            let text = (0..<count).map { _ in Self.pieces.randomElement(using: &generator)! }.joined()
            #expect(text.trimmingWhitespace() == text.trimmingCharacters(in: .whitespaces), "\(Array(text.unicodeScalars))")
            #expect(text.trimmingWhitespaceAndNewlines() == text.trimmingCharacters(in: .whitespacesAndNewlines),
                    "\(Array(text.unicodeScalars))")
        }
    }

    @Test("every Basic Multilingual Plane scalar alone, on both sides of a word")
    func everyScalar() {
        for value in UInt32(0)...0xFFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let text = "\(scalar)a\(scalar)"
            #expect(text.trimmingWhitespace() == text.trimmingCharacters(in: .whitespaces), "U+\(String(value, radix: 16))")
            #expect(text.trimmingWhitespaceAndNewlines() == text.trimmingCharacters(in: .whitespacesAndNewlines),
                    "U+\(String(value, radix: 16))")
        }
    }

    @Test("substrings trim like strings")
    func substrings() {
        let line = "  key = value \t"
        let value = line.split(separator: "=")[1]
        #expect(value.trimmingWhitespace() == "value")
        #expect(Substring("\r\n x \n").trimmingWhitespaceAndNewlines() == "x")
    }
}
