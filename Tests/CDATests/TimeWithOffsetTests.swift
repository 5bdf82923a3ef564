import Foundation
import Testing
@testable import CDA

/// The effective-time check written by hand must say exactly what the pattern it replaced says.
@Suite struct TimeWithOffsetTests {
    static let pattern = #"^[0-9]{12,14}(\.[0-9]+)?[+-][0-9]{4}$"#

    @Test func agreesWithTheRegularExpression() {
        var cases = ["20261120143000+0100", "202611201430+0100", "20261120143000.123-0500", "2026112014300+0000",
                     "20261120143000", "20261120143000+010", "20261120143000.+0100", "20261120143000.5+01000",
                     "2026112014+0100", "202611201430001+0100", "20261120143000 +0100", "", "+0100", "x0261120143000+0100",
                     "20261120143000.12.3+0100", "20261120143000-0100", "٢٠٢٦١١٢٠١٤٣٠٠٠+0100"]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789.+-")
        for _ in 0..<20_000 {
            let length = Int.random(in: 14...22, using: &generator)
            var text = String((0..<length).map { _ in Bool.random(using: &generator) ? "1" : alphabet.randomElement(using: &generator)! })
            if Bool.random(using: &generator) { text.replaceSubrange(text.index(text.endIndex, offsetBy: -5)..., with: "+0100") }
            cases.append(text)
        }
        for text in cases {
            let expected = text.range(of: Self.pattern, options: .regularExpression) != nil
            #expect(CDAHeader.isTimeWithOffset(text) == expected, "\(text)")
        }
        #expect(cases.filter(CDAHeader.isTimeWithOffset).count > 100, "the random cases include valid ones")
    }
}
