import CLibXML2
import Foundation

/// What ``XMLDocument/parseStreaming(file:schema:options:)`` found.
public struct StreamingParseResult {
    /// The tree, with every text node cut to ``XMLDocument/streamingTextLimit`` bytes: enough to
    /// read a header, never a copy of a large base64 body.
    public let document: XMLDocument
    /// Schema problems (empty: valid, or no schema given). The schema saw the whole text.
    public let schemaIssues: [XMLIssue]
}

extension XMLDocument {
    /// Bytes kept of each text node by ``parseStreaming(file:schema:options:)``.
    public static let streamingTextLimit = 64 * 1024

    /// Parses the file at `url` in one pass, 64 KB at a time, validating it against `schema`
    /// on the way (libxml2's SAX-plugged XSD validation): memory stays bounded whatever the
    /// size of the document, because text nodes are kept only up to ``streamingTextLimit``
    /// bytes in the returned tree. Same guards and budget as ``parse(_:url:options:)``: the
    /// byte budget is checked against the file size first, then against the bytes read.
    public static func parseStreaming(file url: URL, schema: XMLSchema? = nil,
                                      options: ParseOptions = .default) throws -> StreamingParseResult {
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: url) } catch {
            throw XMLError.io(path: url.path, reason: (error as NSError).localizedDescription)
        }
        defer { try? handle.close() }
        var status = stat()
        if fstat(handle.fileDescriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG, Int(status.st_size) > options.maxBytes {
            throw XMLError.limitExceeded(.documentBytes, limit: options.maxBytes, found: Int(status.st_size), source: options.budgetSource)
        }
        return try withLibXMLErrors { collector in
            var sax = xmlSAXHandler()
            xmlSAXVersion(&sax, 2)
            installGuards(&sax)
            sax.characters = truncatingCharacters
            collector.maxDepth = options.maxDepth
            collector.budgetSource = options.budgetSource
            collector.maxTextNodeBytes = options.allowLargeTextNodes ? Int.max : XMLDocument.textNodeLimit
            guard let context = xmlCreatePushParserCtxt(&sax, nil, nil, 0, url.path) else {
                throw XMLError.libxml(operation: "xmlCreatePushParserCtxt", issues: collector.issues)
            }
            context.pointee._private = collector.opaque
            registerUntrusted(collector.opaque)
            defer {
                unregisterUntrusted(collector.opaque)
                // Whatever tree a failed or refused parse left (a success takes it first).
                if let document = context.pointee.myDoc { xmlFreeDoc(document) }
                xmlFreeParserCtxt(context)
            }
            _ = xmlCtxtUseOptions(context, options.libxmlOptions)
            // The schema sees every SAX event (the whole text) before the tree builder does.
            let schemaCollector = LibXMLErrorCollector()
            var validation: xmlSchemaValidCtxtPtr?
            var plug: xmlSchemaSAXPlugPtr?
            if let schema {
                validation = xmlSchemaNewValidCtxt(schema.rawSchema)
                guard let validation else { throw XMLError.libxml(operation: "xmlSchemaNewValidCtxt", issues: []) }
                xmlSchemaSetValidStructuredErrors(validation, libxmlStructuredSink, schemaCollector.opaque)
                plug = xmlSchemaSAXPlug(validation, &context.pointee.sax, &context.pointee.userData)
                guard plug != nil else { throw XMLError.libxml(operation: "xmlSchemaSAXPlug", issues: []) }
            }
            defer {
                if let plug { _ = xmlSchemaSAXUnplug(plug) }
                if let validation { xmlSchemaFreeValidCtxt(validation) }
                withExtendedLifetime(schemaCollector) {}
            }
            var read = 0
            while true {
                let chunk: Data?
                do { chunk = try handle.read(upToCount: 64 * 1024) } catch {
                    throw XMLError.io(path: url.path, reason: (error as NSError).localizedDescription)
                }
                guard let chunk, !chunk.isEmpty else { break }
                read += chunk.count
                if read > options.maxBytes {  // the file grew after the fstat, or is not a regular file
                    throw XMLError.limitExceeded(.documentBytes, limit: options.maxBytes, found: nil, source: options.budgetSource)
                }
                _ = chunk.withUnsafeBytes { raw in
                    xmlParseChunk(context, raw.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(raw.count), 0)
                }
                if context.pointee.wellFormed == 0 || context.pointee.disableSAX != 0 || collector.refusal != nil { break }
            }
            if collector.refusal == nil { _ = xmlParseChunk(context, nil, 0, 1) }
            if let refusal = collector.refusal { throw refusal }
            guard let parsed = context.pointee.myDoc, context.pointee.wellFormed != 0, context.pointee.disableSAX == 0 else {
                throw parseFailure(collector, options: options)
            }
            context.pointee.myDoc = nil  // owned by the XMLDocument from here on
            var schemaIssues = schemaCollector.issues
            if let validation, xmlSchemaIsValid(validation) != 1, schemaIssues.filter({ $0.severity != .warning }).isEmpty {
                schemaIssues.append(XMLIssue(severity: .error, message: "schema validation failed"))
            }
            return StreamingParseResult(document: XMLDocument(adopting: parsed), schemaIssues: schemaIssues)
        }
    }
}

/// The tree builder's `characters`, dropping text once the node's last text child holds
/// ``XMLDocument/streamingTextLimit`` bytes (libxml2 appends consecutive chunks to it).
private let truncatingCharacters: charactersSAXFunc = { userData, characters, length in
    guard let userData, textWithinLimit(userData, length) else { return }
    let context = userData.assumingMemoryBound(to: xmlParserCtxt.self)
    // `nodelen` is libxml2's running length of that text node (no strlen per chunk).
    if let node = context.pointee.node, let last = node.pointee.last, last.pointee.type == XML_TEXT_NODE,
       Int(context.pointee.nodelen) >= XMLDocument.streamingTextLimit {
        _ = droppedTextWithinLimit(userData, node: last, length)
        return
    }
    xmlSAX2Characters(userData, characters, length)
}
