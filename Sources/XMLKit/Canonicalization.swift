import CLibXML2
import Foundation

/// Canonical XML settings. The default is Exclusive XML Canonicalization 1.0 without comments
/// (`http://www.w3.org/2001/10/xml-exc-c14n#`), the one XML signatures here use.
public struct CanonicalizationOptions: Sendable, Hashable {
    /// Exclusive C14N 1.0 when true, inclusive C14N 1.0 otherwise.
    public var exclusive: Bool
    /// Keep comments (the `#WithComments` variants).
    public var withComments: Bool
    /// Exclusive only: prefixes treated as in inclusive C14N (`InclusiveNamespaces PrefixList`);
    /// `#default` names the default namespace.
    public var inclusiveNamespacePrefixes: [String]

    public init(exclusive: Bool = true, withComments: Bool = false, inclusiveNamespacePrefixes: [String] = []) {
        self.exclusive = exclusive
        self.withComments = withComments
        self.inclusiveNamespacePrefixes = inclusiveNamespacePrefixes
    }

    public static let exclusive = CanonicalizationOptions()
}

extension XMLDocument {
    /// The canonical form of the whole document.
    public func canonicalized(_ options: CanonicalizationOptions = .exclusive) throws -> Data {
        try canonicalize(options, subtree: nil)
    }

    func canonicalize(_ options: CanonicalizationOptions, subtree: xmlNodePtr?) throws -> Data {
        try withLibXMLErrors { collector in
            try withPrefixList(options.exclusive ? options.inclusiveNamespacePrefixes : []) { prefixes in
                let mode = Int32(options.exclusive ? XML_C14N_EXCLUSIVE_1_0.rawValue : XML_C14N_1_0.rawValue)
                let comments = Int32(options.withComments ? 1 : 0)
                guard let output = xmlAllocOutputBuffer(nil) else {
                    throw XMLError.canonicalization(issues: collector.issues)
                }
                let status: Int32
                if let subtree {
                    status = xmlC14NExecute(rawDocument, subtreeVisibility, UnsafeMutableRawPointer(subtree),
                                            mode, prefixes, comments, output)
                } else {
                    status = xmlC14NDocSaveTo(rawDocument, nil, mode, prefixes, comments, output)
                }
                defer { xmlOutputBufferClose(output) }
                guard status >= 0, collector.errors.isEmpty else {
                    throw XMLError.canonicalization(issues: collector.issues)
                }
                guard let content = xmlOutputBufferGetContent(output) else { return Data() }
                return Data(bytes: content, count: Int(xmlOutputBufferGetSize(output)))
            }
        }
    }
}

extension XMLNode {
    /// The canonical form of this element and its descendants, as referenced by a same-document
    /// `URI="#id"` in an XML signature.
    public func canonicalized(_ options: CanonicalizationOptions = .exclusive) throws -> Data {
        try document.canonicalize(options, subtree: rawNode)
    }
}

/// Visible when the node (for a namespace node: its owning element) lies inside the subtree.
private let subtreeVisibility: xmlC14NIsVisibleCallback = { userData, node, parent in
    guard let userData, let node else { return 0 }
    let root = userData.assumingMemoryBound(to: xmlNode.self)
    // Namespace nodes are xmlNs structs: only `type` shares xmlNode's layout, so read it raw.
    let typeOffset = MemoryLayout<xmlNode>.offset(of: \xmlNode.type)!
    let type = UnsafeRawPointer(node).load(fromByteOffset: typeOffset, as: xmlElementType.self)
    var current: xmlNodePtr? = type == XML_NAMESPACE_DECL ? parent : node
    while let c = current {
        if c == root { return 1 }
        current = c.pointee.parent
    }
    return 0
}

/// A NULL-terminated `xmlChar **` for libxml2, or NULL for an empty list.
private func withPrefixList<T>(_ prefixes: [String], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<xmlChar>?>?) throws -> T) rethrows -> T {
    guard !prefixes.isEmpty else { return try body(nil) }
    let strings = prefixes.map { xmlStrdup($0) }
    defer { strings.forEach { passerelle_xml_free($0) } }
    var list: [UnsafeMutablePointer<xmlChar>?] = strings + [nil]
    return try list.withUnsafeMutableBufferPointer { try body($0.baseAddress) }
}
