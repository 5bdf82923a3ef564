import CLibXML2
import Foundation

/// The value of an XPath 1.0 expression.
public enum XPathValue {
    case nodes([XMLNode])
    case string(String)
    case number(Double)
    case boolean(Bool)
}

extension XMLDocument {
    /// Evaluates `expression` with `namespaces` (prefix → URI) registered, from `context`
    /// (default: the document).
    public func evaluate(_ expression: String, namespaces: [String: String] = [:], context: XMLNode? = nil) throws -> XPathValue {
        try withLibXMLErrors { collector in
            guard let ctxt = xmlXPathNewContext(rawDocument) else {
                throw XMLError.xpath(expression: expression, issues: collector.issues)
            }
            defer { xmlXPathFreeContext(ctxt) }
            for (prefix, uri) in namespaces where xmlXPathRegisterNs(ctxt, prefix, uri) != 0 {
                throw XMLError.xpath(expression: expression, issues: [XMLIssue(severity: .error, message: "cannot register prefix \(prefix)")])
            }
            if let context { ctxt.pointee.node = context.rawNode }
            guard let result = xmlXPathEvalExpression(expression, ctxt) else {
                throw XMLError.xpath(expression: expression, issues: collector.errors)
            }
            defer { xmlXPathFreeObject(result) }
            switch result.pointee.type {
            case XPATH_NODESET:
                var nodes: [XMLNode] = []
                if let set = result.pointee.nodesetval, set.pointee.nodeNr > 0, let tab = set.pointee.nodeTab {
                    nodes.reserveCapacity(Int(set.pointee.nodeNr))
                    for i in 0..<Int(set.pointee.nodeNr) {
                        // Namespace nodes in a node set are copies owned by the set: not exposed.
                        if let n = tab[i], n.pointee.type != XML_NAMESPACE_DECL {
                            nodes.append(XMLNode(document: self, rawNode: n))
                        }
                    }
                }
                return .nodes(nodes)
            case XPATH_STRING:
                return .string(result.pointee.stringval.map { String(cString: $0) } ?? "")
            case XPATH_NUMBER:
                return .number(result.pointee.floatval)
            case XPATH_BOOLEAN:
                return .boolean(result.pointee.boolval != 0)
            default:
                throw XMLError.xpath(expression: expression, issues: [XMLIssue(severity: .error, message: "unsupported XPath result type")])
            }
        }
    }

    /// The nodes selected by `expression` (an error if it does not yield a node set).
    public func nodes(_ expression: String, namespaces: [String: String] = [:], context: XMLNode? = nil) throws -> [XMLNode] {
        guard case .nodes(let nodes) = try evaluate(expression, namespaces: namespaces, context: context) else {
            throw XMLError.xpath(expression: expression, issues: [XMLIssue(severity: .error, message: "expression does not select nodes")])
        }
        return nodes
    }

    /// The XPath `string()` of the result: the first node's text for a node set.
    public func string(_ expression: String, namespaces: [String: String] = [:], context: XMLNode? = nil) throws -> String {
        switch try evaluate("string(\(expression))", namespaces: namespaces, context: context) {
        case .string(let s): return s
        case .number(let n): return String(n)
        case .boolean(let b): return String(b)
        case .nodes(let nodes): return nodes.first?.text ?? ""
        }
    }

    /// The number of nodes selected by `expression`.
    public func count(_ expression: String, namespaces: [String: String] = [:], context: XMLNode? = nil) throws -> Int {
        try nodes(expression, namespaces: namespaces, context: context).count
    }
}

extension XMLNode {
    /// Evaluates `expression` with this node as the context node.
    public func evaluate(_ expression: String, namespaces: [String: String] = [:]) throws -> XPathValue {
        try document.evaluate(expression, namespaces: namespaces, context: self)
    }

    public func nodes(_ expression: String, namespaces: [String: String] = [:]) throws -> [XMLNode] {
        try document.nodes(expression, namespaces: namespaces, context: self)
    }

    public func string(_ expression: String, namespaces: [String: String] = [:]) throws -> String {
        try document.string(expression, namespaces: namespaces, context: self)
    }

    public func count(_ expression: String, namespaces: [String: String] = [:]) throws -> Int {
        try document.count(expression, namespaces: namespaces, context: self)
    }
}
