import Foundation

/// Why a template could not be read or rendered.
public enum TemplateError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The template text itself is wrong (unclosed tag, unbalanced block), at a 1-based line.
    case syntax(template: String, line: Int, message: String)
    /// A placeholder that is rendered has no value.
    case missingValue(template: String, name: String)
    /// A value holds a character the output format cannot carry (XML 1.0 forbids most control
    /// characters); `name` is the placeholder, the value itself is never shown.
    case invalidCharacter(template: String, name: String, scalar: UInt32)
    /// The template file cannot be read.
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .syntax(let template, let line, let message):
            "template \(template), line \(line): \(message)"
        case .missingValue(let template, let name):
            "template \(template) needs a value for {{\(name)}}"
        case .invalidCharacter(let template, let name, let scalar):
            String(format: "value of {{%@}} in template %@ contains the character U+%04X, which is not allowed in XML; remove it from the input",
                   name, template, scalar)
        case .unreadable(let path, let reason):
            "cannot read template \(path): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// A deliberately tiny text template: no logic beyond optional blocks.
///
/// - `{{name}}` — the value of `name`, escaped for the output format;
/// - `{{#name}}…{{/name}}` — rendered only when `name` has a value (the value may be empty:
///   a block can act as a flag);
/// - `{{^name}}…{{/name}}` — rendered only when `name` has no value;
/// - `{{! comment }}` — dropped.
///
/// Values are always escaped (XML/HTML: `& < > " '`), so nothing in a value can change the
/// structure of the output; with `.xml`, characters XML 1.0 cannot carry are refused.
/// Parse once, render many times; rendering is a single pass over precomputed segments.
public struct Template: Sendable {
    /// How values are written into the output.
    public enum Escaping: Sendable {
        /// XML 1.0 text or attribute value: `&<>"'` escaped, control characters refused.
        case xml
        /// HTML text or attribute value (same rules as XML).
        case html
        /// Plain text (mail bodies): values inserted as they are.
        case none
    }

    private indirect enum Segment: Sendable {
        case literal(String)
        case value(String)
        case block(name: String, inverted: Bool, body: [Segment])
    }

    /// A name for messages (usually the file name).
    public let name: String
    public let escaping: Escaping
    private let segments: [Segment]
    /// Length of the literal text, to size the output buffer once.
    private let literalLength: Int

    /// Every placeholder and block name the template uses.
    public let names: Set<String>

    /// Parses `text`. Throws ``TemplateError/syntax(template:line:message:)`` on unbalanced tags.
    public init(_ text: String, name: String = "template", escaping: Escaping = .xml) throws(TemplateError) {
        self.name = name
        self.escaping = escaping
        var names = Set<String>()
        var length = 0
        var stack: [(name: String, inverted: Bool, line: Int, segments: [Segment])] = [("", false, 0, [])]
        var rest = Substring(text)
        var line = 1
        // True when the output so far ends at the start of a line (for standalone tags).
        var atLineStart = true
        while let open = rest.range(of: "{{") {
            var literal = rest[..<open.lowerBound]
            line += literal.reduce(0) { $1 == "\n" ? $0 + 1 : $0 }
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw .syntax(template: name, line: line, message: "'{{' is never closed by '}}'")
            }
            let tag = rest[open.upperBound..<close.lowerBound]
            let tagLines = tag.reduce(0) { $1 == "\n" ? $0 + 1 : $0 }
            rest = rest[close.upperBound...]
            guard let sigil = tag.first else { throw .syntax(template: name, line: line, message: "empty tag {{}}") }

            // A block or comment tag alone on its line takes the whole line with it, so block
            // markers do not leave blank lines in the output.
            if "#^/!".contains(sigil) {
                let head = literal.lastIndex(of: "\n").map { literal[literal.index(after: $0)...] } ?? literal
                let startsLine = literal.contains("\n") || atLineStart
                let after = rest.drop(while: { $0 == " " || $0 == "\t" })
                if startsLine, head.allSatisfy({ $0 == " " || $0 == "\t" }), after.isEmpty || after.first == "\n" || after.first == "\r\n" {
                    literal = literal[..<head.startIndex]
                    rest = after.isEmpty ? after : after.dropFirst()
                    line += after.isEmpty ? 0 : 1
                    atLineStart = true
                } else {
                    atLineStart = false
                }
            } else {
                atLineStart = false
            }
            if !literal.isEmpty {
                stack[stack.count - 1].segments.append(.literal(String(literal)))
                length += literal.utf8.count
            }
            let tagLine = line
            line += tagLines
            if sigil == "!" { continue }
            let body = (sigil == "#" || sigil == "^" || sigil == "/") ? tag.dropFirst() : tag
            let key = body.trimmingWhitespace()
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-" }) else {
                throw .syntax(template: name, line: tagLine, message: "'\(tag)' is not a valid tag name")
            }
            switch sigil {
            case "#", "^":
                stack.append((key, sigil == "^", tagLine, []))
                names.insert(key)
            case "/":
                guard stack.count > 1, stack[stack.count - 1].name == key else {
                    let expected = stack.count > 1 ? "{{/\(stack[stack.count - 1].name)}}" : "no open block"
                    throw .syntax(template: name, line: tagLine, message: "{{/\(key)}} does not close the open block (expected \(expected))")
                }
                let block = stack.removeLast()
                stack[stack.count - 1].segments.append(.block(name: block.name, inverted: block.inverted, body: block.segments))
            default:
                stack[stack.count - 1].segments.append(.value(key))
                names.insert(key)
            }
        }
        if !rest.isEmpty {
            stack[stack.count - 1].segments.append(.literal(String(rest)))
            length += rest.utf8.count
        }
        guard stack.count == 1 else {
            let open = stack[stack.count - 1]
            throw .syntax(template: name, line: open.line, message: "block {{\(open.inverted ? "^" : "#")\(open.name)}} is never closed")
        }
        self.segments = stack[0].segments
        self.names = names
        self.literalLength = length
    }

    /// Reads and parses a template file.
    public init(contentsOf url: URL, escaping: Escaping = .xml) throws(TemplateError) {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw .unreadable(path: url.path, reason: (error as NSError).localizedDescription)
        }
        try self.init(text, name: url.lastPathComponent, escaping: escaping)
    }

    /// Renders with `values`; a name absent from `values` has no value (its blocks are skipped,
    /// and a `{{name}}` rendered outside such a block is an error).
    public func render(_ values: [String: String]) throws(TemplateError) -> String {
        var output = ""
        output.reserveCapacity(literalLength + values.values.reduce(0) { $0 + $1.utf8.count } + 256)
        try render(segments, values, into: &output)
        return output
    }

    private func render(_ segments: [Segment], _ values: [String: String], into output: inout String) throws(TemplateError) {
        for segment in segments {
            switch segment {
            case .literal(let text):
                output += text
            case .value(let key):
                guard let value = values[key] else { throw .missingValue(template: name, name: key) }
                try append(value, key: key, to: &output)
            case .block(let key, let inverted, let body):
                if (values[key] != nil) != inverted { try render(body, values, into: &output) }
            }
        }
    }

    /// Bytes that need escaping or checking: controls, `& < > " '`, and 0xEF (which leads
    /// U+FFFE / U+FFFF in UTF-8).
    @inline(__always)
    private static func needsAttention(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == 0x26 || byte == 0x3C || byte == 0x3E || byte == 0x22 || byte == 0x27 || byte == 0xEF
    }

    private func append(_ value: String, key: String, to output: inout String) throws(TemplateError) {
        if case .none = escaping {
            output += value
            return
        }
        try Self.appendXML(value, key: key, template: name, to: &output)
    }

    /// One value escaped as a template with XML escaping writes it (`&<>"'`, tab and line ends
    /// as references, other control characters refused), without a template to render: for
    /// writers that build XML by hand value by value (ebRIM metadata).
    public static func escapedXML(_ value: String, key: String, template: String) throws(TemplateError) -> String {
        var output = ""
        try appendXML(value, key: key, template: template, to: &output)
        return output
    }

    private static func appendXML(_ value: String, key: String, template name: String, to output: inout String) throws(TemplateError) {
        // Fast path: most values (and the whole base64 body of a CDA) need no change at all.
        let clean = value.utf8.withContiguousStorageIfAvailable { !$0.contains(where: needsAttention) }
            ?? !value.utf8.contains(where: needsAttention)
        if clean {
            output += value
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&apos;"
            // As references, so attribute-value normalisation cannot turn them into spaces.
            case "\t": output += "&#9;"
            case "\n": output += "&#10;"
            case "\r": output += "&#13;"
            default:
                let v = scalar.value
                guard v >= 0x20, v != 0xFFFE, v != 0xFFFF else {
                    throw .invalidCharacter(template: name, name: key, scalar: v)
                }
                output.unicodeScalars.append(scalar)
            }
        }
    }
}
