import CLibXML2
import Foundation

// Defence in depth against XXE: XMLKit never asks libxml2 to load or substitute entities
// (no XML_PARSE_NOENT / DTDLOAD / DTDVALID), and on top of that every parse started by
// `XMLDocument.parse` is registered here (by the `_private` pointer of its parser context, which
// libxml2 copies into the sub-contexts it creates for entities) so the process-wide entity
// loader refuses any load it would attempt. Other parses (schema includes, xmlsec) keep
// libxml2's previous loader.

private let previousEntityLoader: xmlExternalEntityLoader? = xmlGetExternalEntityLoader()

private final class UntrustedContexts: @unchecked Sendable {
    private let lock = NSLock()
    private var contexts: Set<UnsafeMutableRawPointer> = []

    func insert(_ context: UnsafeMutableRawPointer) { lock.withLock { _ = contexts.insert(context) } }
    func remove(_ context: UnsafeMutableRawPointer) { lock.withLock { _ = contexts.remove(context) } }
    func contains(_ context: UnsafeMutableRawPointer) -> Bool { lock.withLock { contexts.contains(context) } }
}

private let untrustedContexts = UntrustedContexts()

private let refusingEntityLoader: xmlExternalEntityLoader = { url, id, context in
    if let context, let marker = context.pointee._private, untrustedContexts.contains(marker) {
        if let collector = LibXMLErrorCollector.from(context.pointee._private) {
            let target = url.map { String(cString: $0) } ?? id.map { String(cString: $0) } ?? "?"
            collector.append(XMLIssue(
                severity: .error,
                message: "refused to load external resource '\(target)' (external entities are disabled)",
                line: Int(xmlSAX2GetLineNumber(context))))
        }
        return nil
    }
    return previousEntityLoader?(url, id, context)
}

func installEntityLoader() {
    _ = previousEntityLoader
    xmlSetExternalEntityLoader(refusingEntityLoader)
}

func registerUntrusted(_ marker: UnsafeMutableRawPointer) { untrustedContexts.insert(marker) }
func unregisterUntrusted(_ marker: UnsafeMutableRawPointer) { untrustedContexts.remove(marker) }
