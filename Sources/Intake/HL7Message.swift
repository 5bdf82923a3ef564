import Foundation
import PasserelleCore

/// The five delimiters an HL7 v2 message declares in MSH-1 and MSH-2.
public struct HL7Encoding: Sendable, Hashable {
    public var field: Character
    public var component: Character
    public var repetition: Character
    public var escape: Character
    public var subcomponent: Character

    /// `|^~\&`, the delimiters nearly every sender uses.
    public static let standard = HL7Encoding(field: "|", component: "^", repetition: "~", escape: "\\", subcomponent: "&")

    public init(field: Character, component: Character, repetition: Character, escape: Character, subcomponent: Character) {
        self.field = field
        self.component = component
        self.repetition = repetition
        self.escape = escape
        self.subcomponent = subcomponent
    }

    /// MSH-2 as written: component, repetition, escape, subcomponent.
    public var encodingCharacters: String { String([component, repetition, escape, subcomponent]) }

    /// Escapes delimiters in a value so it can be written into a field.
    public func escaped(_ value: String) -> String {
        var out = ""
        for ch in value {
            switch ch {
            case escape: out += "\(escape)E\(escape)"
            case field: out += "\(escape)F\(escape)"
            case component: out += "\(escape)S\(escape)"
            case subcomponent: out += "\(escape)T\(escape)"
            case repetition: out += "\(escape)R\(escape)"
            // CR LF is one Character in Swift (and the only cluster holding CR or LF besides
            // each alone): without its case it went out raw, ending the segment inside a field.
            case "\r", "\n", "\r\n": out += "\(escape).br\(escape)"
            default: out.append(ch)
            }
        }
        return out
    }
}

/// Why a byte stream is not a usable HL7 v2 message. Messages name the segment and field,
/// never a field's value (it may be patient data).
public enum HL7ParseError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// Nothing but whitespace or MLLP framing.
    case empty
    /// The first segment is not MSH (or is too short to declare the delimiters).
    case missingMSH
    /// MSH-1 and MSH-2 do not declare five distinct delimiters, none a letter, digit or space.
    case invalidEncodingCharacters
    /// MSH-18 names a character set Passerelle cannot decode.
    case unsupportedCharacterSet(String)
    /// The bytes are not valid in the character set MSH-18 declares.
    case undecodable(characterSet: String)
    /// A segment whose id is not three upper-case letters or digits (1-based segment number).
    case invalidSegmentID(segmentNumber: Int)

    /// The English text (its French one and both texts are in RefusalTexts.swift).
    public var description: String { text(.en) }

    public var errorDescription: String? { description }
}

/// One repetition of a field: components, each made of subcomponents (already unescaped).
public struct HL7Repetition: Sendable, Hashable {
    /// `components[i][j]` is component i+1, subcomponent j+1.
    public var components: [[String]]

    public init(components: [[String]]) { self.components = components }

    /// Component `n` (1-based), first subcomponent; "" when absent.
    public func component(_ n: Int) -> String { subcomponent(n, 1) }

    /// Component `n`, subcomponent `s` (both 1-based); "" when absent.
    public func subcomponent(_ n: Int, _ s: Int) -> String {
        guard n >= 1, n <= components.count, s >= 1, s <= components[n - 1].count else { return "" }
        return components[n - 1][s - 1]
    }

    /// True when every component is empty.
    public var isEmpty: Bool { components.allSatisfy { $0.allSatisfy(\.isEmpty) } }
}

/// A field with its repetitions.
public struct HL7Field: Sendable, Hashable {
    public var repetitions: [HL7Repetition]

    public init(repetitions: [HL7Repetition]) { self.repetitions = repetitions }

    static let empty = HL7Field(repetitions: [])

    /// The first repetition, or an empty one.
    public var first: HL7Repetition { repetitions.first ?? HL7Repetition(components: []) }
    /// First repetition, first component, first subcomponent.
    public var value: String { first.component(1) }
    /// Component `n` of the first repetition.
    public func component(_ n: Int) -> String { first.component(n) }
    /// True when absent or empty.
    public var isEmpty: Bool { repetitions.allSatisfy(\.isEmpty) }
}

/// One segment: its id and fields numbered as in the standard (``field(_:)`` is 1-based;
/// for MSH, field 1 is the field separator and field 2 the encoding characters).
public struct HL7Segment: Sendable, Hashable {
    public var id: String
    /// `fields[n - 1]` is field n.
    public var fields: [HL7Field]

    public init(id: String, fields: [HL7Field]) {
        self.id = id
        self.fields = fields
    }

    /// Field `n` (1-based); empty when absent.
    public func field(_ n: Int) -> HL7Field {
        guard n >= 1, n <= fields.count else { return .empty }
        return fields[n - 1]
    }

    /// Shorthand for `field(n).value`.
    public subscript(_ n: Int) -> String { field(n).value }
}

/// A parsed HL7 v2 message (ER7, the pipe-delimited encoding).
///
/// Accepts CR, LF or CRLF between segments and strips MLLP framing (0x0B … 0x1C 0x0D)
/// when a file still has it. The character set comes from MSH-18 (UTF-8, ISO 8859/1,
/// ISO 8859/15); without MSH-18 the bytes are read as UTF-8 when valid, else ISO 8859/1.
/// Leaf values are unescaped (\F\ \S\ \T\ \R\ \E\ \Xhh\, \.br\ as a line break).
public struct HL7Message: Sendable, Hashable {
    public var encoding: HL7Encoding
    public var segments: [HL7Segment]
    /// The character set the bytes were decoded with (MSH-18 or the fallback used).
    public var characterSet: String

    /// Parses raw bytes (a file or an MLLP frame).
    public init(data: Data) throws(HL7ParseError) {
        var bytes = [UInt8](data)
        // A UTF-8 byte order mark some editors add.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        // MLLP framing: <VT> message <FS><CR>; also tolerate surrounding whitespace.
        while let f = bytes.first, f == 0x0B || f == 0x20 || f == 0x0D || f == 0x0A || f == 0x09 { bytes.removeFirst() }
        while let l = bytes.last, l == 0x1C || l == 0x0D || l == 0x0A || l == 0x20 || l == 0x09 { bytes.removeLast() }
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count >= 8, bytes.starts(with: Array("MSH".utf8)) else { throw .missingMSH }
        // MSH is ASCII up to MSH-18: read it as ISO 8859-1 (never fails) to learn the charset.
        let headerEnd = bytes.firstIndex(where: { $0 == 0x0D || $0 == 0x0A }) ?? bytes.count
        let header = Self.latin1(bytes[0..<headerEnd])
        let fieldSeparator = Character(UnicodeScalar(bytes[3]))
        let headerFields = header.split(separator: fieldSeparator, omittingEmptySubsequences: false)
        // headerFields[0] = "MSH", [1] = MSH-2, so MSH-n is headerFields[n - 1].
        let declared = headerFields.count >= 18 ? String(headerFields[17]).split(separator: Character(UnicodeScalar(bytes[4]))).first.map(String.init) ?? "" : ""
        let charset = declared.trimmingWhitespace()
        let text: String
        switch Self.normalizedCharset(charset) {
        case .some(.utf8):
            guard let t = String(validating: bytes, as: UTF8.self) else { throw .undecodable(characterSet: charset) }
            text = t
        case .some(.latin1):
            text = Self.latin1(bytes)
        case .some(.latin9):
            text = Self.latin9(bytes)
        case .none:
            throw .unsupportedCharacterSet(charset)
        case .some(.undeclared):
            text = String(validating: bytes, as: UTF8.self) ?? Self.latin1(bytes)
        }
        try self.init(text: text, characterSet: charset.isEmpty ? "(undeclared)" : charset)
    }

    /// Parses text already decoded.
    public init(text: String) throws(HL7ParseError) {
        try self.init(text: text, characterSet: "(text)")
    }

    private init(text rawText: String, characterSet: String) throws(HL7ParseError) {
        var text = Substring(rawText)
        while let f = text.first, f == "\u{0B}" || f == "\u{FEFF}" || f.isWhitespace { text.removeFirst() }
        while let l = text.last, l == "\u{1C}" || l.isWhitespace { text.removeLast() }
        guard !text.isEmpty else { throw .empty }
        let chars = Array(text.prefix(8))
        guard chars.count >= 8, text.hasPrefix("MSH") else { throw .missingMSH }
        let enc = HL7Encoding(field: chars[3], component: chars[4], repetition: chars[5], escape: chars[6], subcomponent: chars[7])
        let delimiters = [enc.field, enc.component, enc.repetition, enc.escape, enc.subcomponent]
        // No letter, digit or blank, the field separator included: a letter there splits segment
        // ids (MSH, MSA, ERR) in the answer.
        guard Set(delimiters).count == 5,
              delimiters.allSatisfy({ $0.isASCII && !$0.isLetter && !$0.isNumber && !$0.isWhitespace })
        else { throw .invalidEncodingCharacters }
        self.encoding = enc
        self.characterSet = characterSet
        // Segments end at CR, LF or CRLF ("\r\n" is one Character in Swift).
        // Splitting works on UTF-8 bytes with memchr (delimiters are ASCII): splitting by
        // Character would run grapheme breaking over megabytes of base64 documents.
        let d = Delimiters(enc)
        // The bytes are read in place from a native string (contiguous UTF-8): `Array(text.utf8)`
        // copied a substring byte by byte, most of the parse of a message carrying a large CDA.
        var owned = String(text)
        let parsed = owned.withUTF8 { buf in Result { () throws(HL7ParseError) -> [HL7Segment] in
            // CR, LF or CRLF end a segment; the empty pieces CRLF leaves are dropped so that
            // error messages count segments as the sender does.
            let lines = Self.split(buf, 0..<buf.count, 0x0D).flatMap { Self.split(buf, $0, 0x0A) }.filter { !$0.isEmpty }
            // \Xhh\ escapes are bytes in the declared character set.
            let mshFields = lines.first.map { Self.split(buf, $0, d.field) } ?? []
            let msh18 = mshFields.count >= 18 ? Self.split(buf, mshFields[17], d.component)[0] : 0..<0
            let latin = [.latin1, .latin9].contains(Self.normalizedCharset(Self.string(buf, msh18)))
            var segments: [HL7Segment] = []
            for (index, rawLine) in lines.enumerated() {
                var line = rawLine
                while !line.isEmpty && buf[line.upperBound - 1] == 0x20 { line = line.lowerBound..<(line.upperBound - 1) }
                if line.isEmpty { continue }
                segments.append(try Self.parseSegment(buf, line, number: index + 1, delimiters: d, utf8: !latin))
            }
            return segments
        } }
        self.segments = try parsed.get()
    }

    /// The delimiters as bytes (checked ASCII by the caller).
    struct Delimiters {
        let field, component, repetition, escape, subcomponent: UInt8
        let encoding: HL7Encoding
        init(_ e: HL7Encoding) {
            encoding = e
            field = e.field.asciiValue!; component = e.component.asciiValue!; repetition = e.repetition.asciiValue!
            escape = e.escape.asciiValue!; subcomponent = e.subcomponent.asciiValue!
        }
    }

    /// The ranges between occurrences of `byte` within `range` (empty ones included).
    private static func split(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ byte: UInt8) -> [Range<Int>] {
        guard let base = buf.baseAddress, !range.isEmpty else { return [range] }
        var out: [Range<Int>] = []
        var start = range.lowerBound
        while true {
            guard let hit = memchr(base + start, Int32(byte), range.upperBound - start) else {
                out.append(start..<range.upperBound)
                return out
            }
            let index = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            out.append(start..<index)
            start = index + 1
        }
    }

    private static func string(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: buf[range]), as: UTF8.self)
    }

    private static func parseSegment(_ buf: UnsafeBufferPointer<UInt8>, _ line: Range<Int>, number: Int, delimiters d: Delimiters,
                                     utf8: Bool) throws(HL7ParseError) -> HL7Segment {
        var parts = split(buf, line, d.field)
        let id = string(buf, parts.removeFirst())
        guard id.utf8.count == 3, id.allSatisfy({ ($0.isUppercase || $0.isNumber) && $0.isASCII }) else {
            throw .invalidSegmentID(segmentNumber: number)
        }
        var fields: [HL7Field] = []
        if id == "MSH" {
            // MSH-1 is the separator itself and MSH-2 is taken literally.
            fields.append(HL7Field(repetitions: [HL7Repetition(components: [[String(d.encoding.field)]])]))
            let msh2 = parts.isEmpty ? "" : string(buf, parts.removeFirst())
            fields.append(HL7Field(repetitions: [HL7Repetition(components: [[msh2]])]))
        }
        for raw in parts {
            if raw.isEmpty { fields.append(HL7Field(repetitions: [])); continue }
            let reps = split(buf, raw, d.repetition).map { rep in
                HL7Repetition(components: split(buf, rep, d.component).map { comp in
                    split(buf, comp, d.subcomponent).map { leaf in
                        let value = string(buf, leaf)
                        return memchr(buf.baseAddress! + leaf.lowerBound, Int32(d.escape), leaf.count) == nil
                            ? value : unescape(Substring(value), encoding: d.encoding, utf8: utf8)
                    }
                })
            }
            fields.append(HL7Field(repetitions: reps))
        }
        return HL7Segment(id: id, fields: fields)
    }

    /// Resolves escape sequences in one leaf value.
    static func unescape(_ value: Substring, encoding enc: HL7Encoding, utf8: Bool) -> String {
        guard value.contains(enc.escape) else { return String(value) }
        var out = ""
        var i = value.startIndex
        while i < value.endIndex {
            let ch = value[i]
            guard ch == enc.escape, let close = value[value.index(after: i)...].firstIndex(of: enc.escape) else {
                out.append(ch)
                i = value.index(after: i)
                continue
            }
            let code = value[value.index(after: i)..<close]
            switch code {
            case "F": out.append(enc.field)
            case "S": out.append(enc.component)
            case "T": out.append(enc.subcomponent)
            case "R": out.append(enc.repetition)
            case "E": out.append(enc.escape)
            case ".br": out.append("\n")
            case "H", "N": break  // highlighting on/off: formatting only
            default:
                if code.first == "X", code.count > 1, code.count % 2 == 1,
                   let bytes = hexBytes(code.dropFirst()) {
                    out += utf8 ? (String(validating: bytes, as: UTF8.self) ?? latin1(bytes)) : latin1(bytes)
                } else {
                    // Unknown sequence (\Zxx\, \Cxxyy\ …): kept verbatim rather than guessed.
                    out += value[i...close]
                }
            }
            i = value.index(after: close)
        }
        return out
    }

    private static func hexBytes(_ hex: Substring) -> [UInt8]? {
        var bytes: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() {
            guard let v = UInt8(String([a, b]), radix: 16) else { return nil }
            bytes.append(v)
        }
        return bytes
    }

    private enum Charset { case utf8, latin1, latin9, undeclared }

    private static func normalizedCharset(_ name: String) -> Charset? {
        let n = name.uppercased().replacingOccurrences(of: " ", with: "").replacingOccurrences(of: "_", with: "")
        switch n {
        case "": return .undeclared
        case "UNICODEUTF-8", "UTF-8", "UTF8", "UNICODE", "ASCII": return n == "ASCII" ? .undeclared : .utf8
        case "8859/1", "ISO8859-1", "ISO-8859-1", "ISOIR100": return .latin1
        case "8859/15", "ISO8859-15", "ISO-8859-15": return .latin9
        default: return nil
        }
    }

    private static func latin1(_ bytes: some Sequence<UInt8>) -> String {
        String(String.UnicodeScalarView(bytes.map { UnicodeScalar($0) }))
    }

    /// ISO 8859-15 differs from 8859-1 in eight positions (€, Š, š, Ž, ž, Œ, œ, Ÿ).
    private static func latin9(_ bytes: [UInt8]) -> String {
        let differences: [UInt8: UnicodeScalar] = [
            0xA4: "\u{20AC}", 0xA6: "\u{0160}", 0xA8: "\u{0161}", 0xB4: "\u{017D}",
            0xB8: "\u{017E}", 0xBC: "\u{0152}", 0xBD: "\u{0153}", 0xBE: "\u{0178}",
        ]
        return String(String.UnicodeScalarView(bytes.map { differences[$0] ?? UnicodeScalar($0) }))
    }

    // MARK: Access

    /// All segments with this id, in order.
    public func segments(_ id: String) -> [HL7Segment] { segments.filter { $0.id == id } }

    /// The first segment with this id.
    public func segment(_ id: String) -> HL7Segment? { segments.first { $0.id == id } }

    /// The value at a terser-style path, from the first segment with that id:
    /// `PID-3` (first repetition, first component), `PID-3.4` (component),
    /// `PID-3.4.2` (subcomponent), `PID-3[2].1` (second repetition). Nil when absent or empty.
    public subscript(_ path: String) -> String? {
        guard let p = HL7Path(path), let seg = segment(p.segment) else { return nil }
        let rep = seg.field(p.field).repetitions.dropFirst(p.repetition - 1).first ?? HL7Repetition(components: [])
        let v = rep.subcomponent(p.component, p.subcomponent)
        return v.isEmpty ? nil : v
    }

    /// MSH-9.1 and MSH-9.2, e.g. ("ORU", "R01").
    public var messageType: (code: String, trigger: String) {
        let f = segment("MSH")?.field(9) ?? .empty
        return (f.component(1), f.component(2))
    }

    /// MSH-10.
    public var controlID: String { self["MSH-10"] ?? "" }

    /// MSH-12.1.
    public var version: String { self["MSH-12"] ?? "" }
}

/// A parsed `SEG-f[.c[.s]]` path with an optional `[r]` repetition on the field.
struct HL7Path {
    var segment: String
    var field: Int
    var repetition = 1
    var component = 1
    var subcomponent = 1

    init?(_ text: String) {
        let parts = text.split(separator: "-", maxSplits: 1)
        guard parts.count == 2, parts[0].count == 3 else { return nil }
        segment = String(parts[0])
        var dotted = parts[1].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !dotted.isEmpty, dotted.count <= 3 else { return nil }
        var fieldText = dotted.removeFirst()
        if let open = fieldText.firstIndex(of: "["), fieldText.hasSuffix("]") {
            guard let r = Int(fieldText[fieldText.index(after: open)..<fieldText.index(before: fieldText.endIndex)]), r >= 1 else { return nil }
            repetition = r
            fieldText = String(fieldText[..<open])
        }
        guard let f = Int(fieldText), f >= 1 else { return nil }
        field = f
        if let c = dotted.first { guard let v = Int(c), v >= 1 else { return nil }; component = v }
        if dotted.count == 2 { guard let v = Int(dotted[1]), v >= 1 else { return nil }; subcomponent = v }
    }
}
