import CLibXML2
import Foundation

// Safe parsing by construction. Every parse XMLKit starts (`XMLDocument.parse`,
// `parseStreaming`) replaces these SAX callbacks of its parser context:
// - the DTD callbacks (internalSubset, externalSubset, entityDecl, unparsedEntityDecl): the
//   first is called as soon as `<!DOCTYPE name …` is read, before any internal subset, so the
//   parse stops there. No DOCTYPE means no entity declaration, hence no entity to expand
//   (billion laughs, quadratic blow-up) and no external resource to load (XXE); the refusing
//   entity loader (EntityLoader.swift) stays as a second line;
// - startElementNs: refuses an element nested deeper than the budget (libxml2 has no depth
//   limit at all under XML_PARSE_HUGE, which a CDA with a large PDF needs);
// - characters / cdataBlock: refuse a text node over libxml2's 10 MB text limit unless the
//   caller lifted it (libxml2 2.9 checks it only when appending to a text node, so one large
//   run of text delivered at once passes its own check).
// The budget and the refusal live on the parse's error collector, reached through the
// context's `_private` (libxml2 passes the parser context as the SAX user data).

/// Installs the guards in `sax` (a SAX2 handler, before any schema plug wraps it).
func installGuards(_ sax: inout xmlSAXHandler) {
    sax.internalSubset = refusingInternalSubset
    sax.externalSubset = refusingExternalSubset
    sax.entityDecl = refusingEntityDecl
    sax.unparsedEntityDecl = refusingUnparsedEntityDecl
    sax.startElementNs = depthCheckingStartElementNs
    sax.characters = limitedCharacters
    sax.ignorableWhitespace = limitedCharacters
    sax.cdataBlock = limitedCDataBlock
}

/// False (and the parse stopped) when `length` more bytes of text would take the current
/// text node past the collector's ``LibXMLErrorCollector/maxTextNodeBytes``.
func textWithinLimit(_ ctx: UnsafeMutableRawPointer?, _ length: Int32, cdata: Bool = false) -> Bool {
    guard let (context, collector) = guarded(ctx), collector.maxTextNodeBytes < Int.max else { return true }
    var total = Int(length)
    // libxml2 appends to the last child when it is a node of the same kind (`nodelen`: its length).
    if let node = context.pointee.node, let last = node.pointee.last,
       last.pointee.type == (cdata ? XML_CDATA_SECTION_NODE : XML_TEXT_NODE) {
        total += cdata ? Int(xmlStrlen(last.pointee.content)) : Int(context.pointee.nodelen)
    }
    guard total > collector.maxTextNodeBytes else { return true }
    let limit = collector.maxTextNodeBytes
    refuse(ctx) { _ in .limitExceeded(.textNodeBytes, limit: limit, found: nil, source: nil) }
    return false
}

/// ``textWithinLimit(_:_:cdata:)`` for text that parseStreaming drops from a truncated node
/// (whose `nodelen` no longer grows): counts it per node so the limit still sees the whole text.
func droppedTextWithinLimit(_ ctx: UnsafeMutableRawPointer?, node: xmlNodePtr, _ length: Int32) -> Bool {
    guard let (context, collector) = guarded(ctx), collector.maxTextNodeBytes < Int.max else { return true }
    if collector.truncatedNode != node {
        collector.truncatedNode = node
        collector.droppedTextBytes = 0
    }
    collector.droppedTextBytes += Int(length)
    guard Int(context.pointee.nodelen) + collector.droppedTextBytes > collector.maxTextNodeBytes else { return true }
    let limit = collector.maxTextNodeBytes
    refuse(ctx) { _ in .limitExceeded(.textNodeBytes, limit: limit, found: nil, source: nil) }
    return false
}

private let limitedCharacters: charactersSAXFunc = { ctx, characters, length in
    guard textWithinLimit(ctx, length) else { return }
    xmlSAX2Characters(ctx, characters, length)
}

private let limitedCDataBlock: cdataBlockSAXFunc = { ctx, value, length in
    guard textWithinLimit(ctx, length, cdata: true) else { return }
    xmlSAX2CDataBlock(ctx, value, length)
}

/// The collector of the parse whose SAX user data is `ctx` (the parser context).
private func guarded(_ ctx: UnsafeMutableRawPointer?) -> (xmlParserCtxtPtr, LibXMLErrorCollector)? {
    guard let ctx else { return nil }
    let context = ctx.assumingMemoryBound(to: xmlParserCtxt.self)
    guard let collector = LibXMLErrorCollector.from(context.pointee._private) else { return nil }
    return (context, collector)
}

/// Records `error` (the first one wins) and stops the parser at once.
private func refuse(_ ctx: UnsafeMutableRawPointer?, _ error: (xmlParserCtxtPtr) -> XMLError) {
    guard let ctx else { return }
    let context = ctx.assumingMemoryBound(to: xmlParserCtxt.self)
    if let collector = LibXMLErrorCollector.from(context.pointee._private), collector.refusal == nil {
        collector.refusal = error(context)
    }
    xmlStopParser(context)
    // A stopped parse is never handed back, even when libxml2 still calls it well-formed.
    context.pointee.wellFormed = 0
}

/// At most `limit` characters of attacker-controlled text, for a message.
private func excerpt(_ text: UnsafePointer<xmlChar>?, limit: Int = 120) -> String? {
    guard let text else { return nil }
    let s = String(cString: text)
    return s.count > limit ? String(s.prefix(limit)) + "…" : s
}

private func line(_ context: xmlParserCtxtPtr) -> Int { Int(context.pointee.input?.pointee.line ?? 0) }

private func doctype(_ name: UnsafePointer<xmlChar>?, _ publicID: UnsafePointer<xmlChar>?, _ systemID: UnsafePointer<xmlChar>?) -> String {
    var text = "<!DOCTYPE \(excerpt(name, limit: 60) ?? "?")"
    if let publicID = excerpt(publicID) { text += " PUBLIC \"\(publicID)\"" }
    if let systemID = excerpt(systemID) { text += (publicID == nil ? " SYSTEM" : "") + " \"\(systemID)\"" }
    return text + " …>"
}

private let refusingInternalSubset: internalSubsetSAXFunc = { ctx, name, publicID, systemID in
    refuse(ctx) { .doctypeRefused(declaration: doctype(name, publicID, systemID), line: line($0)) }
}

private let refusingExternalSubset: externalSubsetSAXFunc = { ctx, name, publicID, systemID in
    refuse(ctx) { .doctypeRefused(declaration: doctype(name, publicID, systemID), line: line($0)) }
}

private let refusingEntityDecl: entityDeclSAXFunc = { ctx, name, _, _, _, _ in
    refuse(ctx) { .doctypeRefused(declaration: "<!ENTITY \(excerpt(name, limit: 60) ?? "?") …>", line: line($0)) }
}

private let refusingUnparsedEntityDecl: unparsedEntityDeclSAXFunc = { ctx, name, _, _, _ in
    refuse(ctx) { .doctypeRefused(declaration: "<!ENTITY \(excerpt(name, limit: 60) ?? "?") … NDATA …>", line: line($0)) }
}

private let depthCheckingStartElementNs: startElementNsSAX2Func = {
    ctx, localname, prefix, uri, namespaceCount, namespaces, attributeCount, defaultedCount, attributes in
    if let (context, collector) = guarded(ctx) {
        // `nameNr` counts the open ancestors: this element sits one level below.
        let depth = Int(context.pointee.nameNr) + 1
        if depth > collector.maxDepth {
            let limit = collector.maxDepth
            refuse(ctx) { _ in .limitExceeded(.elementDepth, limit: limit, found: depth, source: nil) }
            return
        }
    }
    xmlSAX2StartElementNs(ctx, localname, prefix, uri, namespaceCount, namespaces, attributeCount, defaultedCount, attributes)
}
