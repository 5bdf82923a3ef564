/// Whitespace trimming without Foundation's `trimmingCharacters(in:)`, which bridges through
/// NSString and a CharacterSet lookup per call: it was 2.5 % of the gateway's CPU per document
/// (metadata checks, CDA build and read, VIHF). Same sets as Foundation's, scalar by scalar:
/// `whitespaces` is Unicode's space separators (Zs), tab and U+200B; `whitespacesAndNewlines` adds
/// U+000A–U+000D, U+0085, U+2028 and U+2029 (`TrimmingTests` compares both with Foundation).
extension StringProtocol {
    /// `trimmingCharacters(in: .whitespaces)`.
    public func trimmingWhitespace() -> String { trimmed(newlines: false) }

    /// `trimmingCharacters(in: .whitespacesAndNewlines)`.
    public func trimmingWhitespaceAndNewlines() -> String { trimmed(newlines: true) }

    /// Without the leading and trailing scalars `trimmed` says yes to (other sets than
    /// whitespace, e.g. the dots and spaces around a title).
    public func trimming(where trimmed: (Unicode.Scalar) -> Bool) -> String {
        let scalars = unicodeScalars
        var start = scalars.startIndex, end = scalars.endIndex
        while start < end, trimmed(scalars[start]) { start = scalars.index(after: start) }
        while end > start {
            let before = scalars.index(before: end)
            guard trimmed(scalars[before]) else { break }
            end = before
        }
        return String(self[start..<end])
    }

    private func trimmed(newlines: Bool) -> String { trimming { Self.isTrimmed($0, newlines: newlines) } }

    private static func isTrimmed(_ scalar: Unicode.Scalar, newlines: Bool) -> Bool {
        switch scalar.value {
        case 0x20, 0x09, 0x200B: return true  // Foundation on Linux counts ZERO WIDTH SPACE too
        case 0x0A...0x0D, 0x85, 0x2028, 0x2029: return newlines
        case 0x21..<0x80: return false  // the common case: no property lookup
        default: return scalar.properties.generalCategory == .spaceSeparator
        }
    }
}
