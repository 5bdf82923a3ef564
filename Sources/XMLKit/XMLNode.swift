import CLibXML2
import Foundation

/// A node of an `XMLDocument`. Holding a node keeps its document alive.
public struct XMLNode {
    /// The document that owns this node.
    public let document: XMLDocument
    /// The libxml2 node, for the other wrapper targets (XMLSecKit). Owned by `document`.
    package let rawNode: xmlNodePtr

    package init(document: XMLDocument, rawNode: xmlNodePtr) {
        self.document = document
        self.rawNode = rawNode
    }

    public enum Kind: Sendable, Hashable {
        case element, text, cdata, comment, processingInstruction, attribute, entityReference, document, other
    }

    public var kind: Kind {
        switch rawNode.pointee.type {
        case XML_ELEMENT_NODE: return .element
        case XML_TEXT_NODE: return .text
        case XML_CDATA_SECTION_NODE: return .cdata
        case XML_COMMENT_NODE: return .comment
        case XML_PI_NODE: return .processingInstruction
        case XML_ATTRIBUTE_NODE: return .attribute
        case XML_ENTITY_REF_NODE: return .entityReference
        case XML_DOCUMENT_NODE: return .document
        default: return .other
        }
    }

    /// The local name (no prefix).
    public var name: String { rawNode.pointee.name.map { String(cString: $0) } ?? "" }

    /// The namespace URI, nil when the node is in no namespace.
    public var namespaceURI: String? { rawNode.pointee.ns?.pointee.href.map { String(cString: $0) } }

    /// The prefix used in the document, nil for the default namespace or none.
    public var prefix: String? { rawNode.pointee.ns?.pointee.prefix.map { String(cString: $0) } }

    /// The 1-based source line (0 for nodes built in memory).
    public var line: Int { Int(xmlGetLineNo(rawNode)) }

    /// The text content: for an element, the concatenation of all descendant text and CDATA.
    /// Entity references are never substituted (a parsed document has none: its DOCTYPE would
    /// have been refused); libxml2's xmlNodeGetContent would expand them.
    public var text: String { Self.text(of: rawNode) }

    /// The text under `node`, walked without recursion, skipping entity references.
    static func text(of node: xmlNodePtr) -> String {
        switch node.pointee.type {
        case XML_TEXT_NODE, XML_CDATA_SECTION_NODE, XML_COMMENT_NODE, XML_PI_NODE:
            return node.pointee.content.map { String(cString: $0) } ?? ""
        case XML_ELEMENT_NODE, XML_ATTRIBUTE_NODE, XML_DOCUMENT_NODE, XML_DOCUMENT_FRAG_NODE:
            break
        default:
            return ""
        }
        // One text child: the common case, no copy through a buffer.
        if let only = node.pointee.children, only.pointee.next == nil, only.pointee.type == XML_TEXT_NODE {
            return only.pointee.content.map { String(cString: $0) } ?? ""
        }
        var bytes: [UInt8] = []
        var current = node.pointee.children
        while let c = current {
            let type = c.pointee.type
            if type == XML_TEXT_NODE || type == XML_CDATA_SECTION_NODE, let content = c.pointee.content {
                bytes.append(contentsOf: UnsafeBufferPointer(start: content, count: strlen(UnsafeRawPointer(content).assumingMemoryBound(to: CChar.self))))
            }
            // Descend into elements only (an entity reference's children belong to its declaration).
            if type == XML_ELEMENT_NODE, let child = c.pointee.children {
                current = child
                continue
            }
            var next = c
            while next.pointee.next == nil {
                guard let up = next.pointee.parent, up != node else { return String(decoding: bytes, as: UTF8.self) }
                next = up
            }
            current = next.pointee.next
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The parent element (nil at the root or for a detached node).
    public var parent: XMLNode? {
        guard let p = rawNode.pointee.parent, p.pointee.type == XML_ELEMENT_NODE else { return nil }
        return XMLNode(document: document, rawNode: p)
    }

    /// All child nodes, in document order.
    public var children: [XMLNode] {
        var result: [XMLNode] = []
        var child = rawNode.pointee.children
        while let c = child {
            result.append(XMLNode(document: document, rawNode: c))
            child = c.pointee.next
        }
        return result
    }

    /// The child elements, in document order.
    public var elements: [XMLNode] {
        var result: [XMLNode] = []
        var child = rawNode.pointee.children
        while let c = child {
            if c.pointee.type == XML_ELEMENT_NODE { result.append(XMLNode(document: document, rawNode: c)) }
            child = c.pointee.next
        }
        return result
    }

    /// The child elements named `name` (in `namespaceURI` when given).
    public func elements(named name: String, namespaceURI: String? = nil) -> [XMLNode] {
        var result: [XMLNode] = []
        var child = rawNode.pointee.children
        while let c = child {
            if Self.matches(c, name, namespaceURI) { result.append(XMLNode(document: document, rawNode: c)) }
            child = c.pointee.next
        }
        return result
    }

    /// The first child element named `name` (in `namespaceURI` when given).
    public func firstElement(named name: String, namespaceURI: String? = nil) -> XMLNode? {
        var child = rawNode.pointee.children
        while let c = child {
            if Self.matches(c, name, namespaceURI) { return XMLNode(document: document, rawNode: c) }
            child = c.pointee.next
        }
        return nil
    }

    /// Names compared on libxml2's bytes: header reading looks up hundreds of names per document,
    /// and a String made for each node was most of its cost.
    static func matches(_ node: xmlNodePtr, _ name: String, _ namespaceURI: String?) -> Bool {
        guard node.pointee.type == XML_ELEMENT_NODE, equal(node.pointee.name, name) else { return false }
        guard let namespaceURI else { return true }
        return equal(node.pointee.ns?.pointee.href, namespaceURI)
    }

    /// A NUL-terminated libxml2 string equals `text` (nil equals nothing).
    static func equal(_ c: UnsafePointer<xmlChar>?, _ text: String) -> Bool {
        guard let c else { return false }
        var i = 0
        for byte in text.utf8 {
            if c[i] != byte { return false }  // also stops at c's NUL, never read past it
            i += 1
        }
        return c[i] == 0
    }

    /// An attribute of an element.
    public struct Attribute: Sendable, Hashable {
        public var name: String
        public var namespaceURI: String?
        public var value: String
    }

    /// The attributes of an element, in document order (namespace declarations are not attributes).
    public var attributes: [Attribute] {
        guard rawNode.pointee.type == XML_ELEMENT_NODE else { return [] }
        var result: [Attribute] = []
        var attr = rawNode.pointee.properties
        while let a = attr {
            let name = a.pointee.name.map { String(cString: $0) } ?? ""
            let ns = a.pointee.ns?.pointee.href.map { String(cString: $0) }
            let value = Self.text(of: UnsafeMutableRawPointer(a).assumingMemoryBound(to: xmlNode.self))
            result.append(Attribute(name: name, namespaceURI: ns, value: value))
            attr = a.pointee.next
        }
        return result
    }

    /// The value of attribute `name` (in `namespaceURI`, or in no namespace when nil).
    /// Read from the attribute's own text (never entity substitution, never DTD defaults).
    public func attribute(_ name: String, namespaceURI: String? = nil) -> String? {
        guard rawNode.pointee.type == XML_ELEMENT_NODE else { return nil }
        var attr = rawNode.pointee.properties
        while let a = attr {
            let sameNamespace = namespaceURI.map { Self.equal(a.pointee.ns?.pointee.href, $0) } ?? (a.pointee.ns == nil)
            if sameNamespace && Self.equal(a.pointee.name, name) {
                return Self.text(of: UnsafeMutableRawPointer(a).assumingMemoryBound(to: xmlNode.self))
            }
            attr = a.pointee.next
        }
        return nil
    }

    // MARK: Building

    /// Appends a child element. With a `namespaceURI`, an in-scope declaration of that URI is
    /// reused (with the same prefix when one is given), otherwise one is declared on the new element.
    @discardableResult
    public func addElement(_ name: String, namespaceURI: String? = nil, prefix: String? = nil) throws -> XMLNode {
        try Self.checkName(name)
        guard let child = xmlNewDocNode(rawNode.pointee.doc, nil, name, nil) else {
            throw XMLError.libxml(operation: "xmlNewDocNode", issues: [])
        }
        guard xmlAddChild(rawNode, child) != nil else {
            xmlFreeNode(child)
            throw XMLError.libxml(operation: "xmlAddChild", issues: [])
        }
        let node = XMLNode(document: document, rawNode: child)
        if let namespaceURI {
            let ns = try node.inScopeNamespace(namespaceURI, prefix: prefix) ?? node.makeNamespace(namespaceURI, prefix: prefix)
            xmlSetNs(child, ns)
        }
        return node
    }

    /// Appends `text` as a text node; libxml2 escapes it when serialising.
    public func addText(_ text: String) throws {
        try Self.checkCharacters(text, context: "text of <\(name)>")
        guard let node = xmlNewDocTextLen(rawNode.pointee.doc, text, Int32(text.utf8.count)) else {
            throw XMLError.libxml(operation: "xmlNewDocText", issues: [])
        }
        // xmlAddChild may merge and free `node`: it is not used afterwards.
        if xmlAddChild(rawNode, node) == nil {
            xmlFreeNode(node)
            throw XMLError.libxml(operation: "xmlAddChild", issues: [])
        }
    }

    /// Appends a comment.
    public func addComment(_ text: String) throws {
        try Self.checkCharacters(text, context: "comment")
        guard !text.contains("--"), !text.hasSuffix("-") else { throw XMLError.invalidName("comment containing --") }
        guard let node = xmlNewDocComment(rawNode.pointee.doc, text) else {
            throw XMLError.libxml(operation: "xmlNewDocComment", issues: [])
        }
        xmlAddChild(rawNode, node)
    }

    /// Sets (or replaces) an attribute. A namespaced attribute needs a prefix; its namespace is
    /// declared on this element when not already in scope. The value is stored verbatim and
    /// escaped by libxml2 when serialising.
    public func setAttribute(_ name: String, _ value: String, namespaceURI: String? = nil, prefix: String? = nil) throws {
        try Self.checkName(name)
        try Self.checkCharacters(value, context: "attribute \(name)")
        if let namespaceURI {
            guard let prefix, !prefix.isEmpty else { throw XMLError.invalidName("\(name): a namespaced attribute needs a prefix") }
            let ns = try inScopeNamespace(namespaceURI, prefix: prefix) ?? makeNamespace(namespaceURI, prefix: prefix)
            guard xmlSetNsProp(rawNode, ns, name, value) != nil else {
                throw XMLError.libxml(operation: "xmlSetNsProp", issues: [])
            }
        } else {
            guard xmlSetProp(rawNode, name, value) != nil else {
                throw XMLError.libxml(operation: "xmlSetProp", issues: [])
            }
        }
    }

    /// Declares a namespace on this element (`prefix` nil: the default namespace).
    public func declareNamespace(_ uri: String, prefix: String? = nil) throws {
        _ = try makeNamespace(uri, prefix: prefix)
    }

    func makeNamespace(_ uri: String, prefix: String?) throws -> xmlNsPtr {
        if let prefix { try Self.checkName(prefix) }
        try Self.checkCharacters(uri, context: "namespace URI")
        guard let ns = xmlNewNs(rawNode, uri, prefix) else {
            throw XMLError.libxml(operation: "xmlNewNs (prefix already declared on <\(name)>?)", issues: [])
        }
        return ns
    }

    private func inScopeNamespace(_ uri: String, prefix: String?) -> xmlNsPtr? {
        guard let ns = xmlSearchNsByHref(rawNode.pointee.doc, rawNode, uri) else { return nil }
        if let prefix {
            return ns.pointee.prefix.map { String(cString: $0) } == prefix ? ns : nil
        }
        return ns
    }

    // MARK: Serialisation

    /// This subtree as UTF-8 bytes (no XML declaration).
    public func serialized(format: Bool = false) throws -> Data {
        try document.save(format: format, declaration: false) { ctxt in xmlSaveTree(ctxt, rawNode) }
    }

    // MARK: Checks

    static func checkName(_ name: String) throws {
        guard !name.isEmpty, xmlValidateNCName(name, 0) == 0 else { throw XMLError.invalidName(name) }
    }

    /// XML 1.0 `Char`: refuses control characters (other than tab, LF, CR) and U+FFFE/U+FFFF,
    /// which libxml2 would write as character references that no parser accepts.
    static func checkCharacters(_ text: String, context: String) throws {
        for scalar in text.unicodeScalars where !isXMLChar(scalar.value) {
            throw XMLError.invalidCharacter(scalar: scalar.value, context: context)
        }
    }

    @inline(__always)
    static func isXMLChar(_ v: UInt32) -> Bool {
        if v >= 0x20 { return v <= 0xD7FF || (v >= 0xE000 && v <= 0xFFFD) || v >= 0x10000 }
        return v == 0x9 || v == 0xA || v == 0xD
    }
}

extension XMLNode: Equatable {
    public static func == (a: XMLNode, b: XMLNode) -> Bool { a.rawNode == b.rawNode }
}

extension XMLNode: CustomStringConvertible {
    public var description: String {
        kind == .element ? "<\(prefix.map { $0 + ":" } ?? "")\(name)> line \(line)" : "\(kind) node"
    }
}
