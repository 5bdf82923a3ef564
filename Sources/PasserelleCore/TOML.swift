import Foundation

// A small, strict TOML subset for passerelle.toml: tables ([a] and [a.b]), bare keys,
// basic strings with escapes, literal strings, integers, booleans, arrays of strings
// (may span lines), comments. Anything else (floats, dates, inline tables, dotted keys,
// arrays of tables, multi-line strings) is refused with the line number rather than
// half-understood.

/// A parsed value with the line it was written on.
struct TOMLEntry: Sendable {
    enum Value: Sendable, Equatable {
        case string(String)
        case integer(Int)
        case boolean(Bool)
        case strings([String])

        var typeName: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .boolean: "a boolean"
            case .strings: "an array of strings"
            }
        }
    }

    var key: String
    var value: Value
    var line: Int
}

/// A table: `[name]` with its header line (0 for the root table) and entries in file order.
struct TOMLTable: Sendable {
    var name: String
    var line: Int
    var entries: [TOMLEntry] = []
    func entry(_ key: String) -> TOMLEntry? { entries.first { $0.key == key } }
}

struct TOMLSyntaxError: Error, Sendable, Equatable {
    var line: Int
    var message: String
}

/// The parsed document: tables in file order, the root table first.
struct TOMLDocument: Sendable {
    var tables: [TOMLTable]
    func table(_ name: String) -> TOMLTable? { tables.first { $0.name == name } }

    init(parsing text: String) throws(TOMLSyntaxError) {
        var parser = TOMLParser(text)
        tables = try parser.parse()
    }
}

private struct TOMLParser {
    let chars: [Character]
    var index = 0
    var line = 1

    init(_ text: String) {
        // Normalise CRLF so "\r\n" counts as one line break.
        var normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
        if normalized.hasPrefix("\u{FEFF}") { normalized.removeFirst() }   // editors on Windows add a BOM
        chars = Array(normalized)
    }

    var current: Character? { index < chars.count ? chars[index] : nil }

    func fail(_ message: String) -> TOMLSyntaxError { TOMLSyntaxError(line: line, message: message) }

    mutating func skipSpaces() {
        while let c = current, c == " " || c == "\t" { index += 1 }
    }

    mutating func skipComment() {
        if current == "#" { while let c = current, c != "\n" { index += 1 } }
    }

    /// After a value or header: only spaces and a comment may follow on the line.
    mutating func endOfLine() throws(TOMLSyntaxError) {
        skipSpaces()
        skipComment()
        guard let c = current else { return }
        guard c == "\n" else { throw fail("unexpected '\(c)' after the value; put one key = value per line") }
        index += 1
        line += 1
    }

    static func isBareKeyCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == "-")
    }

    mutating func bareKey() throws(TOMLSyntaxError) -> String {
        var key = ""
        while let c = current, TOMLParser.isBareKeyCharacter(c) { key.append(c); index += 1 }
        guard !key.isEmpty else {
            throw fail(current.map { "expected a key (letters, digits, _ or -), found '\($0)'" } ?? "expected a key")
        }
        return key
    }

    mutating func parse() throws(TOMLSyntaxError) -> [TOMLTable] {
        var tables = [TOMLTable(name: "", line: 0)]
        while let c = current {
            switch c {
            case " ", "\t": index += 1
            case "\n": index += 1; line += 1
            case "#": skipComment()
            case "[":
                let headerLine = line
                index += 1
                if current == "[" { throw fail("arrays of tables ([[...]]) are not supported") }
                skipSpaces()
                var parts = [try bareKey()]
                skipSpaces()
                while current == "." {
                    index += 1
                    skipSpaces()
                    parts.append(try bareKey())
                    skipSpaces()
                }
                guard current == "]" else { throw fail("table header must end with ']'") }
                index += 1
                let name = parts.joined(separator: ".")
                if tables.contains(where: { $0.name == name }) {
                    throw fail("table [\(name)] is defined twice; merge the two sections")
                }
                try endOfLine()
                tables.append(TOMLTable(name: name, line: headerLine))
            default:
                let entryLine = line
                let key = try bareKey()
                skipSpaces()
                if current == "." { throw fail("dotted keys are not supported; use a [table] header") }
                guard current == "=" else { throw fail("expected '=' after key '\(key)'") }
                index += 1
                skipSpaces()
                let value = try parseValue()
                if tables[tables.count - 1].entry(key) != nil {
                    throw TOMLSyntaxError(line: entryLine, message: "key '\(key)' is set twice in the same table")
                }
                tables[tables.count - 1].entries.append(TOMLEntry(key: key, value: value, line: entryLine))
                try endOfLine()
            }
        }
        return tables
    }

    mutating func parseValue() throws(TOMLSyntaxError) -> TOMLEntry.Value {
        guard let c = current, c != "\n" else { throw fail("missing value after '='") }
        switch c {
        case "\"", "'":
            return .string(try parseString())
        case "[":
            return .strings(try parseArray())
        case "{":
            throw fail("inline tables are not supported; use a [table] header")
        default:
            var word = ""
            while let c = current, !(c == " " || c == "\t" || c == "\n" || c == "#" || c == "," || c == "]") {
                word.append(c)
                index += 1
            }
            if word.isEmpty { throw fail("missing value after '='") }
            if word == "true" { return .boolean(true) }
            if word == "false" { return .boolean(false) }
            return .integer(try integer(word))
        }
    }

    func integer(_ word: String) throws(TOMLSyntaxError) -> Int {
        var body = Substring(word)
        var sign = 1
        if body.first == "+" || body.first == "-" {
            sign = body.first == "-" ? -1 : 1
            body = body.dropFirst()
        }
        // Underscores are allowed only between digits (1_000).
        let valid = !body.isEmpty && body.first!.isNumber && body.last!.isNumber
            && body.allSatisfy { ($0.isASCII && $0.isNumber) || $0 == "_" } && !body.contains("__")
        guard valid, let value = Int(body.replacingOccurrences(of: "_", with: "")) else {
            if word.contains(".") || word.lowercased().contains("e") && word.first?.isNumber == true {
                throw fail("'\(word)': floating-point numbers are not supported here")
            }
            throw fail("'\(word)' is not a valid value: strings need quotes, e.g. \"\(word)\"")
        }
        if body.count > 1 && body.first == "0" { throw fail("'\(word)': leading zeros are not allowed") }
        return sign * value
    }

    mutating func parseString() throws(TOMLSyntaxError) -> String {
        let quote = current!
        index += 1
        if current == quote, index + 1 < chars.count, chars[index + 1] == quote {
            throw fail("multi-line strings are not supported")
        }
        var out = ""
        while true {
            guard let c = current, c != "\n" else { throw fail("string is not closed with \(quote) on the same line") }
            index += 1
            if c == quote { return out }
            if c == "\\" && quote == "\"" {
                guard let e = current else { throw fail("unfinished escape at end of file") }
                index += 1
                switch e {
                case "\"": out.append("\"")
                case "\\": out.append("\\")
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "u", "U":
                    let count = e == "u" ? 4 : 8
                    guard index + count <= chars.count else { throw fail("\\\(e) needs \(count) hex digits") }
                    let hex = String(chars[index..<(index + count)])
                    guard let scalarValue = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(scalarValue) else {
                        throw fail("\\\(e)\(hex) is not a valid Unicode scalar")
                    }
                    out.unicodeScalars.append(scalar)
                    index += count
                default:
                    throw fail("unknown escape '\\\(e)'; use \\\\ for a backslash (or a 'literal string' for Windows paths)")
                }
            } else {
                out.append(c)
            }
        }
    }

    mutating func parseArray() throws(TOMLSyntaxError) -> [String] {
        index += 1   // [
        var items: [String] = []
        var expectingItem = true
        while true {
            // Arrays may span lines and hold comments.
            while let c = current, c == " " || c == "\t" || c == "\n" || c == "#" {
                if c == "#" { skipComment() } else { if c == "\n" { line += 1 }; index += 1 }
            }
            guard let c = current else { throw fail("array is not closed with ']'") }
            if c == "]" { index += 1; return items }
            if c == "," {
                if expectingItem { throw fail("unexpected ',' in array") }
                expectingItem = true
                index += 1
                continue
            }
            guard expectingItem else { throw fail("missing ',' between array items") }
            guard c == "\"" || c == "'" else { throw fail("arrays may only hold strings (in quotes)") }
            items.append(try parseString())
            expectingItem = false
        }
    }
}
