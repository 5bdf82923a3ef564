import CLibXML2
import Foundation

/// One diagnostic reported by libxml2 (parser, XPath, C14N, schema…), with its position.
public struct XMLIssue: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable { case warning, error, fatal }

    public var severity: Severity
    /// libxml2's own message, without its trailing newline.
    public var message: String
    /// 1-based line in the input, 0 when libxml2 does not know it.
    public var line: Int
    /// 1-based column when libxml2 reports one (parser errors), else nil.
    public var column: Int?
    /// The file or URL libxml2 was reading, when known.
    public var file: String?

    public init(severity: Severity, message: String, line: Int = 0, column: Int? = nil, file: String? = nil) {
        self.severity = severity
        self.message = message
        self.line = line
        self.column = column
        self.file = file
    }

    public var description: String {
        var place = ""
        if let file { place += file + ":" }
        if line > 0 { place += "\(line):" }
        if let column, column > 0 { place += "\(column):" }
        return (place.isEmpty ? "" : place + " ") + "\(severity.rawValue): \(message)"
    }

    init(_ error: UnsafePointer<xmlError>) {
        let e = error.pointee
        switch e.level {
        case XML_ERR_WARNING: severity = .warning
        case XML_ERR_FATAL: severity = .fatal
        default: severity = .error
        }
        var text = e.message.map { String(cString: $0) } ?? "libxml2 error \(e.code)"
        while text.last?.isNewline == true || text.last == " " { text.removeLast() }
        message = text
        var line = Int(e.line)
        // Schema and XPath errors carry the node rather than a parser position.
        if line == 0, let node = e.node {
            line = Int(xmlGetLineNo(node.assumingMemoryBound(to: xmlNode.self)))
        }
        self.line = max(line, 0)
        column = e.int2 > 0 ? Int(e.int2) : nil
        file = e.file.map { String(cString: $0) }
    }
}

/// Errors thrown by XMLKit. Each carries libxml2's own diagnostics where it gave any.
public enum XMLError: Error, Sendable, CustomStringConvertible, LocalizedError {
    /// The input is not well-formed XML (or uses a refused feature).
    case parse(issues: [XMLIssue])
    /// A file could not be read.
    case io(path: String, reason: String)
    /// The XPath expression is invalid or failed to evaluate.
    case xpath(expression: String, issues: [XMLIssue])
    /// Canonicalisation failed.
    case canonicalization(issues: [XMLIssue])
    /// The schema could not be loaded or compiled.
    case schema(path: String, issues: [XMLIssue])
    /// Serialisation failed.
    case serialization(issues: [XMLIssue])
    /// A name given to the builder is not a valid XML name.
    case invalidName(String)
    /// A value given to the builder holds a character XML 1.0 cannot carry (e.g. a control character).
    case invalidCharacter(scalar: UInt32, context: String)
    /// A libxml2 call failed without saying why (usually out of memory).
    case libxml(operation: String, issues: [XMLIssue])
    /// The document carries a DOCTYPE (DTD, entity declarations): refused, the parse stopped there.
    case doctypeRefused(declaration: String, line: Int)
    /// The document exceeds a limit of its parse budget (`found`: the value seen, when known;
    /// `source`: the configuration the limit comes from, when any).
    case limitExceeded(XMLLimit, limit: Int, found: Int?, source: String?)

    public var description: String {
        func join(_ issues: [XMLIssue]) -> String {
            issues.isEmpty ? "no detail from libxml2" : issues.map(\.description).joined(separator: "; ")
        }
        switch self {
        case .parse(let issues): return "XML is not well-formed: \(join(issues))"
        case .io(let path, let reason): return "cannot read \(path): \(reason)"
        case .xpath(let expression, let issues): return "XPath '\(expression)' failed: \(join(issues))"
        case .canonicalization(let issues): return "XML canonicalisation failed: \(join(issues))"
        case .schema(let path, let issues): return "cannot load XML schema \(path): \(join(issues))"
        case .serialization(let issues): return "XML serialisation failed: \(join(issues))"
        case .invalidName(let name): return "'\(name)' is not a valid XML name"
        case .invalidCharacter(let scalar, let context):
            return String(format: "character U+%04X is not allowed in XML (%@)", scalar, context)
        case .libxml(let operation, let issues): return "libxml2 \(operation) failed: \(join(issues))"
        case .doctypeRefused(let declaration, let line):
            return "DOCTYPE refused\(line > 0 ? " (line \(line))" : ""): \(declaration): XML received from outside may not "
                + "carry a DOCTYPE (no DTD, entity declarations refused); remove it where the document is produced"
        case .limitExceeded(let limit, let value, let found, let source):
            let from = source.map { " (from \($0))" } ?? ""
            switch limit {
            case .documentBytes:
                guard let found else { return "the XML document is larger than the limit of \(value) bytes\(from)" }
                return "the XML document has \(found) bytes, more than the limit of \(value) bytes\(from)"
            case .elementDepth:
                guard let found else { return "XML elements are nested deeper than the limit of \(value) levels (maximum element depth)\(from)" }
                return "XML elements nested \(found) levels deep, more than the limit of \(value) levels (maximum element depth)\(from)"
            case .textNodeBytes:
                return "an XML text node is larger than the limit of \(value) bytes (text node limit)\(from)"
            }
        }
    }

    public var errorDescription: String? { description }

    /// The libxml2 diagnostics carried by this error, if any.
    public var issues: [XMLIssue] {
        switch self {
        case .parse(let i), .xpath(_, let i), .canonicalization(let i), .schema(_, let i),
             .serialization(let i), .libxml(_, let i):
            return i
        case .io, .invalidName, .invalidCharacter, .doctypeRefused, .limitExceeded: return []
        }
    }
}

/// A limit of ``XMLDocument/ParseOptions``.
public enum XMLLimit: String, Sendable, Hashable {
    /// ``XMLDocument/ParseOptions/maxBytes``.
    case documentBytes = "document size"
    /// ``XMLDocument/ParseOptions/maxDepth``.
    case elementDepth = "element depth"
    /// libxml2's 10 MB per text node (kept unless ``XMLDocument/ParseOptions/allowLargeTextNodes``).
    case textNodeBytes = "text node size"
}

extension XMLError {
    /// True for a refusal of the parse guards (DOCTYPE, budget), as opposed to broken XML.
    public var isRefusal: Bool {
        switch self {
        case .doctypeRefused, .limitExceeded: return true
        default: return false
        }
    }
}

/// Collects libxml2 diagnostics for one call. libxml2's handlers are per-thread globals, so a
/// collector installed for the duration of a synchronous call sees only that call's errors.
package final class LibXMLErrorCollector {
    package private(set) var issues: [XMLIssue] = []
    /// Heap copy of the generic-handler target, which must outlive the call.
    fileprivate let genericTarget: UnsafeMutablePointer<passerelle_xml_generic_target>

    package init() {
        genericTarget = .allocate(capacity: 1)
        genericTarget.initialize(to: passerelle_xml_generic_target(sink: nil, context: nil))
    }

    deinit { genericTarget.deallocate() }

    package func append(_ issue: XMLIssue) { issues.append(issue) }

    // The parse guards' state (ParseGuards.swift), for the parse this collector serves.
    /// Deepest element nesting accepted.
    var maxDepth = Int.max
    /// Longest text node accepted (Int.max: no limit).
    var maxTextNodeBytes = Int.max
    /// parseStreaming: the text node being truncated and the bytes dropped from it.
    var truncatedNode: xmlNodePtr?
    var droppedTextBytes = 0
    /// Named in limit errors.
    var budgetSource: String?
    /// Set by the first guard that stopped the parse; thrown instead of libxml2's issues.
    var refusal: XMLError?

    /// Errors and fatal errors only.
    package var errors: [XMLIssue] { issues.filter { $0.severity != .warning } }

    package var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    package static func from(_ pointer: UnsafeMutableRawPointer?) -> LibXMLErrorCollector? {
        pointer.map { Unmanaged<LibXMLErrorCollector>.fromOpaque($0).takeUnretainedValue() }
    }
}

/// libxml2 structured-error callback that appends to the collector passed as context.
package let libxmlStructuredSink: xmlStructuredErrorFunc = { context, error in
    guard let error, let collector = LibXMLErrorCollector.from(context) else { return }
    collector.append(XMLIssue(UnsafePointer(error)))
}

private let libxmlGenericSink: passerelle_xml_sink = { context, message in
    guard let message, let collector = LibXMLErrorCollector.from(context) else { return }
    var text = String(cString: message)
    while text.last?.isNewline == true { text.removeLast() }
    guard !text.isEmpty else { return }
    collector.append(XMLIssue(severity: .error, message: text))
}

/// One-time libxml2 initialisation (must happen before concurrent use).
enum LibXML {
    static let initialized: Bool = {
        xmlInitParser()
        installEntityLoader()
        return true
    }()

    static func ensureInitialized() { _ = initialized }
}

/// Runs `body` with libxml2's error output for this thread routed into a fresh collector, and
/// restores the previous handlers afterwards. Nothing is ever printed to stderr.
package func withLibXMLErrors<T>(_ body: (LibXMLErrorCollector) throws -> T) rethrows -> T {
    LibXML.ensureInitialized()
    let collector = LibXMLErrorCollector()
    collector.genericTarget.pointee = passerelle_xml_generic_target(sink: libxmlGenericSink, context: collector.opaque)
    let saved = passerelle_xml_get_handlers()
    xmlSetStructuredErrorFunc(collector.opaque, libxmlStructuredSink)
    passerelle_xml_set_generic_target(collector.genericTarget)
    defer {
        if saved.structured == nil {
            // No enclosing collector: leave the thread silent rather than on libxml2's stderr default.
            xmlSetStructuredErrorFunc(nil, nil)
            passerelle_xml_set_generic_target(nil)
        } else {
            passerelle_xml_set_handlers(saved)
        }
        withExtendedLifetime(collector) {}
    }
    return try body(collector)
}
