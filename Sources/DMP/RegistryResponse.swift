import CurlKit
import Foundation
import IHE
import PasserelleCore
import XMLKit

/// One `rs:RegistryError`.
public struct RegistryError: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable {
        case error = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
        case warning = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"
    }
    public var code: String
    public var context: String
    public var location: String?
    public var severity: Severity

    public init(code: String, context: String, location: String? = nil, severity: Severity = .error) {
        self.code = code
        self.context = context
        self.location = location
        self.severity = severity
    }

    public var description: String { "\(code)\(severity == .warning ? " (warning)" : ""): \(context)" }
}

/// An `rs:RegistryResponse` (ITI-41 answer).
public struct RegistryResponse: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        case success = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
        case partialSuccess = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
        case failure = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
    }
    public var status: Status
    public var errors: [RegistryError]

    public init(status: Status, errors: [RegistryError] = []) {
        self.status = status
        self.errors = errors
    }

    /// The response as XML (what the test endpoint answers).
    public func xml() -> String {
        var x = "<rs:RegistryResponse xmlns:rs=\"urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0\" status=\"\(status.rawValue)\">"
        if !errors.isEmpty {
            let highest = errors.contains { $0.severity == .error } ? RegistryError.Severity.error : .warning
            x += "<rs:RegistryErrorList highestSeverity=\"\(highest.rawValue)\">"
            for e in errors {
                let escape = { (s: String) in (try? ProvideAndRegisterWriter.e(s)) ?? "" }
                x += "<rs:RegistryError errorCode=\"\(escape(e.code))\" codeContext=\"\(escape(e.context))\""
                    + (e.location.map { " location=\"\(escape($0))\"" } ?? "") + " severity=\"\(e.severity.rawValue)\"/>"
            }
            x += "</rs:RegistryErrorList>"
        }
        return x + "</rs:RegistryResponse>"
    }
}

/// A SOAP 1.2 `soap:Fault`.
public struct SOAPFault: Sendable, Hashable, CustomStringConvertible {
    /// `Code/Value` local name: `Sender`, `Receiver`, `MustUnderstand`, `VersionMismatch`, …
    public var code: String
    /// `Subcode/Value`s (e.g. `wsse:InvalidSecurityToken`), as written.
    public var subcodes: [String]
    public var reason: String

    public init(code: String, subcodes: [String] = [], reason: String) {
        self.code = code
        self.subcodes = subcodes
        self.reason = reason
    }

    public var description: String { "SOAP fault \(([code] + subcodes).joined(separator: "/")): \(reason)" }
}

/// What came back for an ITI-41 request.
public enum ITI41Response: Sendable, Hashable {
    case registry(RegistryResponse)
    case fault(SOAPFault)

    static let ns = [
        "soap": "http://www.w3.org/2003/05/soap-envelope", "rs": "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0",
    ]

    /// The parse budget of a DMP answer (SOAP envelope with a RegistryResponse or a Fault, a
    /// few KB; 4 MB leaves room for a fault carrying a stack trace). DOCTYPE refused.
    public static let parseBudget = XMLDocument.ParseOptions(maxBytes: 4 * 1024 * 1024)

    /// Parses a response body: a SOAP 1.2 envelope (plain or as the root of an MTOM
    /// multipart when `contentType` says so) holding a RegistryResponse or a Fault, or a
    /// bare RegistryResponse.
    public static func parse(_ body: Data, contentType: String?) throws(DMPError) -> ITI41Response {
        var xml = body
        if let contentType, MIMEMultipart.mediaType(contentType) == "multipart/related" {
            guard let boundary = MIMEMultipart.parameter("boundary", in: contentType) else {
                throw .malformedResponse("multipart/related response without a boundary")
            }
            let parts = try MIMEMultipart.parse(body, boundary: boundary)
            let start = MIMEMultipart.parameter("start", in: contentType)?.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
            guard let root = parts.first(where: { start == nil || $0.contentID == start }) ?? parts.first else {
                throw .malformedResponse("multipart response without parts")
            }
            xml = root.body
        }
        let document: XMLDocument
        do { document = try XMLDocument.parse(xml, options: Self.parseBudget) } catch {
            throw .malformedResponse("not XML (\(xml.count) bytes): \(error)")
        }
        do {
            if try document.count("/soap:Envelope/soap:Body/soap:Fault", namespaces: ns) == 1 {
                let f = "/soap:Envelope/soap:Body/soap:Fault"
                let code = try document.string("normalize-space(\(f)/soap:Code/soap:Value)", namespaces: ns)
                let subcodes = try document.nodes("\(f)/soap:Code//soap:Subcode/soap:Value", namespaces: ns)
                    .map { $0.text.trimmingWhitespaceAndNewlines() }
                let reason = try document.string("normalize-space(\(f)/soap:Reason/soap:Text[1])", namespaces: ns)
                let local = code.split(separator: ":").last.map(String.init) ?? code
                return .fault(SOAPFault(code: local, subcodes: subcodes, reason: reason))
            }
            let paths = ["/soap:Envelope/soap:Body/rs:RegistryResponse", "/rs:RegistryResponse"]
            for path in paths where try document.count(path, namespaces: ns) == 1 {
                let statusText = try document.string("string(\(path)/@status)", namespaces: ns)
                guard let status = RegistryResponse.Status(rawValue: statusText) else {
                    throw DMPError.malformedResponse("unknown RegistryResponse status '\(statusText)'")
                }
                var errors: [RegistryError] = []
                for node in try document.nodes("\(path)/rs:RegistryErrorList/rs:RegistryError", namespaces: ns) {
                    let severity = node.attribute("severity").flatMap(RegistryError.Severity.init(rawValue:)) ?? .error
                    errors.append(RegistryError(code: node.attribute("errorCode") ?? "", context: node.attribute("codeContext") ?? "",
                                                location: node.attribute("location"), severity: severity))
                }
                return .registry(RegistryResponse(status: status, errors: errors))
            }
        } catch let error as DMPError {
            throw error
        } catch {
            throw .malformedResponse("\(error)")
        }
        throw .malformedResponse("neither a RegistryResponse nor a SOAP fault")
    }
}

/// What to do with a submission after an attempt.
public enum SubmissionOutcome: Sendable, Hashable {
    /// Stored by the DMP. `alreadyPresent`: a resend of a document the DMP already held.
    case done(alreadyPresent: Bool, warnings: [RegistryError])
    /// Try again later (transport error, 5xx, busy registry); `after` from Retry-After when given.
    case retry(after: Duration?, reason: String)
    /// Will not succeed as is: metadata or business error, certificate problem.
    case failed(reason: String, codes: [String])

    public var isDone: Bool { if case .done = self { true } else { false } }
}

/// Maps what an ITI-41 attempt produced to a ``SubmissionOutcome``.
public enum SubmissionDecision {
    /// IHE codes that mean "busy / temporarily unable": retry.
    public static let transientCodes: Set<String> = [
        "XDSRegistryBusy", "XDSRepositoryBusy", "XDSRegistryOutOfResources", "XDSRepositoryOutOfResources",
        "XDSRegistryNotAvailable", "XDSRegistryError", "XDSRepositoryError",
    ]
    /// The document uniqueId is already registered (with the same content — a different
    /// content under the same uniqueId is `XDSNonIdenticalHash`, a real failure): a resend
    /// after a lost response, so the document is in the DMP.
    public static let alreadyPresentCodes: Set<String> = ["XDSDuplicateUniqueIdInRegistry"]

    public static func decide(_ response: ITI41Response) -> SubmissionOutcome {
        switch response {
        case .fault(let fault):
            // Receiver faults are the server's own trouble; Sender/MustUnderstand/… are ours.
            if fault.code == "Receiver" { return .retry(after: nil, reason: fault.description) }
            return .failed(reason: fault.description, codes: [fault.code] + fault.subcodes)
        case .registry(let r):
            let errors = r.errors.filter { $0.severity == .error }
            let warnings = r.errors.filter { $0.severity == .warning }
            if r.status == .success && errors.isEmpty { return .done(alreadyPresent: false, warnings: warnings) }
            if errors.isEmpty {
                // Failure/PartialSuccess without any error entry: nothing says what went wrong.
                return .failed(reason: "registry status \(r.status) without error detail", codes: [])
            }
            let codes = errors.map(\.code)
            if codes.allSatisfy(alreadyPresentCodes.contains) { return .done(alreadyPresent: true, warnings: warnings) }
            if codes.allSatisfy({ transientCodes.contains($0) || alreadyPresentCodes.contains($0) }) {
                return .retry(after: nil, reason: errors.map(\.description).joined(separator: "; "))
            }
            return .failed(reason: errors.map(\.description).joined(separator: "; "), codes: codes)
        }
    }

    /// An HTTP exchange: status, headers and body. `retryAfter`: the header as received
    /// (seconds or an HTTP-date, ``RetryAfter``), read relative to `now`.
    public static func decide(status: Int, contentType: String?, retryAfter: String?, body: Data, now: Date = Date()) -> SubmissionOutcome {
        let after = RetryAfter.parse(retryAfter, now: now)
        if let parsed = try? ITI41Response.parse(body, contentType: contentType) {
            switch (decide(parsed), status) {
            case (.retry(_, let reason), _): return .retry(after: after, reason: reason)
            case (let outcome, 200...299): return outcome
            case (.failed(let reason, let codes), _):
                // An explicit SOAP fault / registry failure stays permanent even on a 500.
                return .failed(reason: "HTTP \(status): \(reason)", codes: codes)
            case (.done, _): return .failed(reason: "HTTP \(status) with a success body", codes: [])
            }
        }
        switch status {
        case 408, 429, 500...599: return .retry(after: after, reason: "HTTP \(status) without a readable SOAP body")
        case 200...299: return .retry(after: after, reason: "HTTP \(status) but the body is neither a RegistryResponse nor a SOAP fault")
        default: return .failed(reason: "HTTP \(status) without a readable SOAP body", codes: ["HTTP\(status)"])
        }
    }

    /// A transport failure (no HTTP response).
    public static func decide(_ error: CurlError) -> SubmissionOutcome {
        if error.isTransient { return .retry(after: nil, reason: error.description) }
        return .failed(reason: error.description, codes: [error.kind.rawValue])
    }
}
