import Foundation
import XMLKit

/// The outcome of validating one CDA file.
public struct CDAValidationReport: Sendable, CustomStringConvertible {
    public var file: String
    /// Parse errors (the document is not well-formed).
    public var parseIssues: [XMLIssue]
    /// XSD errors (empty when no schema was configured).
    public var schemaIssues: [XMLIssue]
    /// Header rule violations.
    public var headerProblems: [CDAProblem]
    /// False when no schema was configured: the XSD step was skipped.
    public var schemaChecked: Bool

    public var isValid: Bool {
        parseIssues.isEmpty && schemaIssues.allSatisfy { $0.severity == .warning } && headerProblems.isEmpty
    }

    /// Every message, one per line (`xsd:`, `header:` or `xml:` first).
    public var messages: [String] {
        parseIssues.map { "xml: \($0)" }
            + schemaIssues.map { "xsd: \($0.line > 0 ? "line \($0.line): " : "")\($0.message)" }
            + headerProblems.map { "header: \($0)" }
    }

    public var description: String {
        ([(isValid ? "VALID   " : "INVALID ") + file] + messages.map { "    " + $0 }).joined(separator: "\n")
    }
}

/// XSD validation (libxml2, against the schema given in the configuration) plus the
/// project's header rules. The schema is compiled once and shared by concurrent validations.
public struct CDAValidator: Sendable {
    public let schema: XMLSchema?
    /// The parse budget of the documents checked (a DOCTYPE is refused whatever the budget).
    public var budget: XMLDocument.ParseOptions

    /// `schema`: the CDA XSD (`CDA_extended.xsd`); nil skips the XSD step. The schema is a
    /// trusted local file: XMLSchema compiles it with libxml2's schema parser (includes allowed).
    public init(schema: URL?, budget: XMLDocument.ParseOptions = CDAParseBudget.default) throws(CDAError) {
        self.budget = budget
        if let schema {
            do { self.schema = try XMLSchema(contentsOf: schema) } catch let error as XMLError {
                throw .schemaUnavailable(error)
            } catch {
                throw .schemaUnavailable(.io(path: schema.path, reason: "\(error)"))
            }
        } else {
            self.schema = nil
        }
    }

    public func validate(_ data: Data, file: String = "-") -> CDAValidationReport {
        var report = CDAValidationReport(file: file, parseIssues: [], schemaIssues: [], headerProblems: [],
                                         schemaChecked: schema != nil)
        let document: XMLDocument
        do {
            document = try XMLDocument.parse(data, url: file, options: budget)
        } catch let error as XMLError {
            report.parseIssues = error.issues.isEmpty ? [XMLIssue(severity: .fatal, message: error.description)] : error.issues
            return report
        } catch {
            report.parseIssues = [XMLIssue(severity: .fatal, message: "\(error)")]
            return report
        }
        if let schema { report.schemaIssues = schema.validate(document) }
        report.headerProblems = CDAHeader.read(document).problems
        return report
    }

    /// ``validate(_:file:)`` for a document in a file, in one streaming pass: the XSD sees the
    /// whole document as it is read, and only a tree with shortened text nodes is kept for the
    /// header rules, so a 70 MB CDA is checked in a few MB of memory.
    public func validate(streaming url: URL, file: String = "-") -> CDAValidationReport {
        var report = CDAValidationReport(file: file, parseIssues: [], schemaIssues: [], headerProblems: [],
                                         schemaChecked: schema != nil)
        do {
            let result = try XMLDocument.parseStreaming(file: url, schema: schema, options: budget)
            report.schemaIssues = result.schemaIssues
            report.headerProblems = CDAHeader.read(result.document).problems
        } catch let error as XMLError {
            report.parseIssues = error.issues.isEmpty ? [XMLIssue(severity: .fatal, message: error.description)] : error.issues
        } catch {
            report.parseIssues = [XMLIssue(severity: .fatal, message: "\(error)")]
        }
        return report
    }

    public func validate(file url: URL) -> CDAValidationReport {
        do {
            return validate(try Data(contentsOf: url), file: url.path)
        } catch {
            return CDAValidationReport(file: url.path, parseIssues: [XMLIssue(severity: .fatal, message: "cannot read: \((error as NSError).localizedDescription)")],
                                       schemaIssues: [], headerProblems: [], schemaChecked: schema != nil)
        }
    }
}
