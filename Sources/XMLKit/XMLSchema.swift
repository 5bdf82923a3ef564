import CLibXML2
import Foundation

/// A compiled W3C XML Schema (XSD 1.0), loaded once and shared: libxml2 allows one compiled
/// schema to serve many validation contexts at once, and each validation makes its own.
public final class XMLSchema: @unchecked Sendable {
    private let schema: xmlSchemaPtr
    /// The schema's main file.
    public let path: String

    /// Loads the schema at `url`; `xs:include` / `xs:import` are resolved relative to it.
    ///
    /// Not under the parse guards of ``XMLDocument/parse(_:url:options:)``: a schema is a trusted
    /// local file named in the configuration (or shipped with the tests), read by libxml2's
    /// schema parser, which needs its includes and may meet a DTD (XMLSchema.xsd carries one).
    /// Documents validated against it are parsed with the guards (``validate(_:url:)``).
    public init(contentsOf url: URL) throws {
        path = url.path
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw XMLError.io(path: url.path, reason: "no such readable file")
        }
        // Compilation is serialised: two schemas compiled at once (two services starting in one
        // process) make libxml2 report bogus errors in XMLSchema.xsd (shared lazy type tables).
        let loaded: xmlSchemaPtr? = try Self.compiling.withLock { try withLibXMLErrors { collector in
            guard let parser = xmlSchemaNewParserCtxt(url.path) else {
                throw XMLError.schema(path: url.path, issues: collector.issues)
            }
            defer { xmlSchemaFreeParserCtxt(parser) }
            xmlSchemaSetParserStructuredErrors(parser, libxmlStructuredSink, collector.opaque)
            let schema = xmlSchemaParse(parser)
            if schema == nil || !collector.errors.isEmpty {
                if let schema { xmlSchemaFree(schema) }
                throw XMLError.schema(path: url.path, issues: collector.issues)
            }
            return schema
        } }
        guard let loaded else { throw XMLError.schema(path: url.path, issues: []) }
        schema = loaded
    }

    private static let compiling = NSLock()

    var rawSchema: xmlSchemaPtr { schema }

    deinit { xmlSchemaFree(schema) }

    /// Validates `document` and returns every problem found (empty: valid). Warnings included.
    public func validate(_ document: XMLDocument) -> [XMLIssue] {
        withLibXMLErrors { collector in
            guard let context = xmlSchemaNewValidCtxt(schema) else {
                return [XMLIssue(severity: .fatal, message: "cannot create a schema validation context")]
            }
            defer { xmlSchemaFreeValidCtxt(context) }
            xmlSchemaSetValidStructuredErrors(context, libxmlStructuredSink, collector.opaque)
            let status = xmlSchemaValidateDoc(context, document.rawDocument)
            var issues = collector.issues
            if status != 0 && issues.filter({ $0.severity != .warning }).isEmpty {
                issues.append(XMLIssue(severity: .error, message: "schema validation failed (libxml2 status \(status))"))
            }
            return issues
        }
    }

    /// Parses (with `options`: DOCTYPE refused, byte and depth budget) and validates `data`:
    /// parse errors and refusals come back as issues too.
    public func validate(_ data: Data, url: String? = nil, options: XMLDocument.ParseOptions = .default) -> [XMLIssue] {
        do {
            return validate(try XMLDocument.parse(data, url: url, options: options))
        } catch let error as XMLError {
            return error.issues.isEmpty ? [XMLIssue(severity: .fatal, message: error.description)] : error.issues
        } catch {
            return [XMLIssue(severity: .fatal, message: "\(error)")]
        }
    }
}
