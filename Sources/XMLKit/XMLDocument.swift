import CLibXML2
import Foundation

/// An XML document owned by libxml2. The document owns every node; an `XMLNode` keeps its
/// document alive, so no node can outlive the memory it points to.
///
/// Not thread-safe: use one document from one task at a time (hand it over with `sending`).
public final class XMLDocument {
    /// The libxml2 document, for the other wrapper targets (XMLSecKit). Owned by `self`.
    package let rawDocument: xmlDocPtr

    /// Takes ownership of a libxml2 document (freed when `self` goes away).
    package init(adopting document: xmlDocPtr) {
        LibXML.ensureInitialized()
        rawDocument = document
    }

    deinit { xmlFreeDoc(rawDocument) }

    // MARK: Parsing

    /// Parser behaviour and budget. The defaults are the safe ones: no DOCTYPE (hence no DTD
    /// and no entity declarations: neither XXE nor entity expansion is possible), libxml2's own
    /// limits kept (10 MB per text node), at most ``defaultMaxBytes`` and ``defaultMaxDepth``.
    /// There is no switch to accept a DOCTYPE, expand entities or reach the network.
    public struct ParseOptions: Sendable, Hashable {
        /// Default ``maxBytes``: room for any SOAP answer, signature or CDA header.
        public static let defaultMaxBytes = 10 * 1024 * 1024
        /// Default ``maxDepth``: libxml2's own limit without XML_PARSE_HUGE (a CDA needs ~30).
        public static let defaultMaxDepth = 256

        /// Largest document accepted, in bytes: checked before parsing (for
        /// ``XMLDocument/parseStreaming(file:schema:options:)``: the file size, then the bytes read).
        public var maxBytes: Int
        /// Deepest element nesting accepted (the root is at depth 1).
        public var maxDepth: Int
        /// Lifts libxml2's 10 MB text-node limit (XML_PARSE_HUGE): only for a CDA, whose
        /// base64 PDF body can be one text node of ~4/3 `[cda] max_pdf_bytes`. The byte and
        /// depth budgets above still apply (XML_PARSE_HUGE would otherwise lift the depth limit too).
        public var allowLargeTextNodes: Bool
        /// Drop whitespace-only text nodes. Off by default so the tree keeps the input's bytes.
        public var removeBlankNodes: Bool
        /// Where ``maxBytes`` comes from (e.g. "[cda] max_pdf_bytes"), named in its error.
        public var budgetSource: String?

        public init(maxBytes: Int = ParseOptions.defaultMaxBytes, maxDepth: Int = ParseOptions.defaultMaxDepth,
                    allowLargeTextNodes: Bool = false, removeBlankNodes: Bool = false, budgetSource: String? = nil) {
            self.maxBytes = maxBytes
            self.maxDepth = maxDepth
            self.allowLargeTextNodes = allowLargeTextNodes
            self.removeBlankNodes = removeBlankNodes
            self.budgetSource = budgetSource
        }

        public static let `default` = ParseOptions()

        var libxmlOptions: Int32 {
            // NONET: never fetch anything over the network. No NOENT/DTDLOAD/DTDVALID: entities are
            // never substituted nor loaded (XXE). BIG_LINES: right line numbers past 65535.
            var o = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_BIG_LINES.rawValue
                | XML_PARSE_NOWARNING.rawValue)
            if allowLargeTextNodes { o |= Int32(XML_PARSE_HUGE.rawValue) }
            if removeBlankNodes { o |= Int32(XML_PARSE_NOBLANKS.rawValue) }
            return o
        }
    }

    /// Parses `data`. `url` is only used in messages and as the base URI. Refuses a DOCTYPE
    /// (``XMLError/doctypeRefused(declaration:line:)``) and anything over the budget of `options`
    /// (``XMLError/limitExceeded(_:limit:found:source:)``).
    public static func parse(_ data: Data, url: String? = nil, options: ParseOptions = .default) throws -> XMLDocument {
        guard data.count <= options.maxBytes else {
            throw XMLError.limitExceeded(.documentBytes, limit: options.maxBytes, found: data.count, source: options.budgetSource)
        }
        guard data.count <= Int(Int32.max) else {
            throw XMLError.parse(issues: [XMLIssue(severity: .fatal, message: "document larger than 2 GiB")])
        }
        return try withLibXMLErrors { collector in
            guard let context = xmlNewParserCtxt() else {
                throw XMLError.libxml(operation: "xmlNewParserCtxt", issues: collector.issues)
            }
            context.pointee._private = collector.opaque
            collector.maxDepth = options.maxDepth
            collector.budgetSource = options.budgetSource
            collector.maxTextNodeBytes = options.allowLargeTextNodes ? Int.max : XMLDocument.textNodeLimit
            if let sax = context.pointee.sax { installGuards(&sax.pointee) }
            registerUntrusted(collector.opaque)
            defer {
                unregisterUntrusted(collector.opaque)
                xmlFreeParserCtxt(context)
            }
            let document: xmlDocPtr? = data.withUnsafeBytes { bytes in
                guard let base = bytes.baseAddress?.assumingMemoryBound(to: CChar.self) else { return nil }
                return xmlCtxtReadMemory(context, base, Int32(bytes.count), url, nil, options.libxmlOptions)
            }
            if let refusal = collector.refusal {
                if let document { xmlFreeDoc(document) }
                throw refusal
            }
            // disableSAX: libxml2 halted the parse (e.g. its text-node limit, reported as out of
            // memory) yet may leave wellFormed set and return the truncated tree.
            guard let document, context.pointee.wellFormed != 0, context.pointee.disableSAX == 0 else {
                if let document { xmlFreeDoc(document) }
                throw parseFailure(collector, options: options)
            }
            return XMLDocument(adopting: document)
        }
    }

    /// The error of a failed parse: libxml2's own 10 MB limits (text node, CDATA section, push
    /// parser lookahead) are reported as the named text-node limit.
    static func parseFailure(_ collector: LibXMLErrorCollector, options: ParseOptions) -> XMLError {
        var issues = collector.errors
        if issues.isEmpty { issues = [XMLIssue(severity: .fatal, message: "empty or unreadable document")] }
        let limitMessages = ["huge text node", "XML_PARSE_HUGE", "CData section too big", "Huge input lookup"]
        if !options.allowLargeTextNodes, issues.contains(where: { issue in limitMessages.contains { issue.message.contains($0) } }) {
            return .limitExceeded(.textNodeBytes, limit: XMLDocument.textNodeLimit, found: nil, source: nil)
        }
        return .parse(issues: issues)
    }

    /// libxml2's own text-node limit (XML_MAX_TEXT_LENGTH), kept unless ``ParseOptions/allowLargeTextNodes``.
    public static let textNodeLimit = 10_000_000

    /// Parses the UTF-8 text `string`.
    public static func parse(_ string: String, options: ParseOptions = .default) throws -> XMLDocument {
        try parse(Data(string.utf8), options: options)
    }

    /// Reads and parses the file at `url` (refused unread when larger than the byte budget).
    public static func parse(contentsOf url: URL, options: ParseOptions = .default) throws -> XMLDocument {
        if let size = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? Int, size > options.maxBytes {
            throw XMLError.limitExceeded(.documentBytes, limit: options.maxBytes, found: size, source: options.budgetSource)
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw XMLError.io(path: url.path, reason: (error as NSError).localizedDescription)
        }
        return try parse(data, url: url.path, options: options)
    }

    // MARK: Building

    /// A new document whose root element is `rootName`, in `namespaceURI` (declared on the root,
    /// as the default namespace when `prefix` is nil).
    public convenience init(rootName: String, namespaceURI: String? = nil, prefix: String? = nil) throws {
        LibXML.ensureInitialized()
        try XMLNode.checkName(rootName)
        guard let doc = xmlNewDoc("1.0") else { throw XMLError.libxml(operation: "xmlNewDoc", issues: []) }
        self.init(adopting: doc)
        guard let root = xmlNewDocNode(doc, nil, rootName, nil) else {
            throw XMLError.libxml(operation: "xmlNewDocNode", issues: [])
        }
        xmlDocSetRootElement(doc, root)
        if let namespaceURI {
            let node = XMLNode(document: self, rawNode: root)
            let ns = try node.makeNamespace(namespaceURI, prefix: prefix)
            xmlSetNs(root, ns)
        }
    }

    /// The root element, nil for an empty document.
    public var root: XMLNode? {
        xmlDocGetRootElement(rawDocument).map { XMLNode(document: self, rawNode: $0) }
    }

    // MARK: Serialisation

    /// The document as UTF-8 bytes, with an XML declaration. `format` indents the output
    /// (only where no text would change).
    public func serialized(format: Bool = false, declaration: Bool = true) throws -> Data {
        try save(format: format, declaration: declaration) { ctxt in xmlSaveDoc(ctxt, rawDocument) }
    }

    func save(format: Bool, declaration: Bool, _ write: (xmlSaveCtxtPtr) -> Int) throws -> Data {
        try withLibXMLErrors { collector in
            guard let buffer = xmlBufferCreate() else { throw XMLError.serialization(issues: collector.issues) }
            defer { xmlBufferFree(buffer) }
            var options = Int32(0)
            if format { options |= Int32(XML_SAVE_FORMAT.rawValue) }
            if !declaration { options |= Int32(XML_SAVE_NO_DECL.rawValue) }
            guard let ctxt = xmlSaveToBuffer(buffer, "UTF-8", options) else {
                throw XMLError.serialization(issues: collector.issues)
            }
            let written = write(ctxt)
            let closed = xmlSaveClose(ctxt)
            guard written >= 0, closed >= 0, collector.errors.isEmpty else {
                throw XMLError.serialization(issues: collector.issues)
            }
            guard let content = xmlBufferContent(buffer) else { return Data() }
            return Data(bytes: content, count: Int(xmlBufferLength(buffer)))
        }
    }
}
