import CurlKit
import DMP
import Foundation
import Testing
import TestSupport

@Suite struct ResponseTests {
    static func envelope(_ body: String) -> Data {
        Data("""
        <?xml version="1.0" encoding="UTF-8"?>
        <soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing">
          <soap:Header><wsa:Action>urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse</wsa:Action></soap:Header>
          <soap:Body>\(body)</soap:Body>
        </soap:Envelope>
        """.utf8)
    }

    static let rs = "xmlns:rs=\"urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0\""
    static let errorSeverity = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    static let warningSeverity = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"

    static func failure(_ errors: [(String, String)], status: String = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure") -> Data {
        let list = errors.map { "<rs:RegistryError errorCode=\"\($0.0)\" codeContext=\"ctx \($0.0)\" location=\"Document01\" severity=\"\($0.1)\"/>" }.joined()
        return envelope("<rs:RegistryResponse \(rs) status=\"\(status)\"><rs:RegistryErrorList highestSeverity=\"\(errorSeverity)\">\(list)</rs:RegistryErrorList></rs:RegistryResponse>")
    }

    static func fault(_ code: String, subcode: String? = nil, reason: String) -> Data {
        let sub = subcode.map { "<soap:Subcode><soap:Value xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">\($0)</soap:Value></soap:Subcode>" } ?? ""
        return envelope("<soap:Fault><soap:Code><soap:Value>soap:\(code)</soap:Value>\(sub)</soap:Code><soap:Reason><soap:Text xml:lang=\"fr\">\(reason)</soap:Text></soap:Reason></soap:Fault>")
    }

    @Test func sharedFailureExample() throws {
        let data = try Data(contentsOf: TestPaths.shared.appendingPathComponent("reference/xds-examples/registry-response-failure.xml"))
        let response = try ITI41Response.parse(data, contentType: "application/soap+xml")
        guard case .registry(let r) = response else { Issue.record("not a registry response"); return }
        #expect(r.status == .failure)
        #expect(r.errors == [RegistryError(code: "XDSRegistryMetadataError", context: "formatCode inconnu", location: "Document01", severity: .error)])
        #expect(SubmissionDecision.decide(response) == .failed(reason: "XDSRegistryMetadataError: formatCode inconnu", codes: ["XDSRegistryMetadataError"]))
    }

    @Test func successAndWarnings() throws {
        let ok = Self.envelope("<rs:RegistryResponse \(Self.rs) status=\"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success\"/>")
        #expect(SubmissionDecision.decide(status: 200, contentType: "application/soap+xml", retryAfter: nil, body: ok) == .done(alreadyPresent: false, warnings: []))
        let warned = Self.failure([("XDSExtraMetadataNotSaved", Self.warningSeverity)], status: "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success")
        let outcome = SubmissionDecision.decide(status: 200, contentType: nil, retryAfter: nil, body: warned)
        guard case .done(false, let warnings) = outcome else { Issue.record("\(outcome)"); return }
        #expect(warnings.map(\.code) == ["XDSExtraMetadataNotSaved"])
    }

    @Test func partialSuccessWithAnErrorIsAFailure() throws {
        let body = Self.failure([("XDSRegistryMetadataError", Self.errorSeverity), ("XDSExtraMetadataNotSaved", Self.warningSeverity)],
                                status: "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess")
        let response = try ITI41Response.parse(body, contentType: nil)
        guard case .registry(let r) = response else { Issue.record("not a registry response"); return }
        #expect(r.status == .partialSuccess)
        #expect(r.errors.count == 2)
        #expect(SubmissionDecision.decide(response) == .failed(reason: "XDSRegistryMetadataError: ctx XDSRegistryMetadataError", codes: ["XDSRegistryMetadataError"]))
    }

    @Test func resendOfAStoredDocumentIsDone() {
        let duplicate = Self.failure([("XDSDuplicateUniqueIdInRegistry", Self.errorSeverity)])
        #expect(SubmissionDecision.decide(status: 200, contentType: nil, retryAfter: nil, body: duplicate) == .done(alreadyPresent: true, warnings: []))
        // Same uniqueId but different bytes: not the same document, a real failure.
        let different = Self.failure([("XDSNonIdenticalHash", Self.errorSeverity)])
        #expect(SubmissionDecision.decide(status: 200, contentType: nil, retryAfter: nil, body: different)
                == .failed(reason: "XDSNonIdenticalHash: ctx XDSNonIdenticalHash", codes: ["XDSNonIdenticalHash"]))
        // Duplicate plus a metadata error: failed.
        let mixed = Self.failure([("XDSDuplicateUniqueIdInRegistry", Self.errorSeverity), ("XDSPatientIdDoesNotMatch", Self.errorSeverity)])
        #expect(!SubmissionDecision.decide(status: 200, contentType: nil, retryAfter: nil, body: mixed).isDone)
    }

    @Test func busyRegistryIsRetried() {
        let busy = Self.failure([("XDSRepositoryBusy", Self.errorSeverity)])
        #expect(SubmissionDecision.decide(status: 200, contentType: nil, retryAfter: "30", body: busy)
                == .retry(after: .seconds(30), reason: "XDSRepositoryBusy: ctx XDSRepositoryBusy"))
    }

    @Test func soapFaults() throws {
        let receiver = Self.fault("Receiver", reason: "Service momentanément indisponible")
        let parsed = try ITI41Response.parse(receiver, contentType: "application/soap+xml; charset=UTF-8")
        #expect(parsed == .fault(SOAPFault(code: "Receiver", reason: "Service momentanément indisponible")))
        #expect(SubmissionDecision.decide(status: 500, contentType: nil, retryAfter: nil, body: receiver)
                == .retry(after: nil, reason: "SOAP fault Receiver: Service momentanément indisponible"))
        let sender = Self.fault("Sender", subcode: "wsse:InvalidSecurityToken", reason: "VIHF invalide")
        #expect(SubmissionDecision.decide(status: 500, contentType: nil, retryAfter: nil, body: sender)
                == .failed(reason: "HTTP 500: SOAP fault Sender/wsse:InvalidSecurityToken: VIHF invalide", codes: ["Sender", "wsse:InvalidSecurityToken"]))
    }

    @Test func httpStatusesWithoutSOAP() {
        let html = Data("<html><body>Service Unavailable</body></html>".utf8)
        #expect(SubmissionDecision.decide(status: 503, contentType: "text/html", retryAfter: "120", body: html)
                == .retry(after: .seconds(120), reason: "HTTP 503 without a readable SOAP body"))
        #expect(SubmissionDecision.decide(status: 404, contentType: "text/html", retryAfter: nil, body: html)
                == .failed(reason: "HTTP 404 without a readable SOAP body", codes: ["HTTP404"]))
    }

    /// Retry-After in both RFC 9110 forms, capped at an hour; nothing to honour when unreadable or past.
    @Test func retryAfterSecondsOrHTTPDateCapped() {
        let now = Date(timeIntervalSince1970: 784_111_777)  // Sun, 06 Nov 1994 08:49:37 GMT
        #expect(RetryAfter.parse("120", now: now) == .seconds(120))
        #expect(RetryAfter.parse(" 5 ", now: now) == .seconds(5))
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:51:37 GMT", now: now) == .seconds(120))
        #expect(RetryAfter.parse("Sunday, 06-Nov-94 08:50:37 GMT", now: now) == .seconds(60))
        #expect(RetryAfter.parse("Sun Nov  6 08:49:47 1994", now: now) == .seconds(10))
        #expect(RetryAfter.parse("86400", now: now) == RetryAfter.maximum)
        #expect(RetryAfter.parse("99999999999999999999999", now: now) == RetryAfter.maximum)
        #expect(RetryAfter.parse("Mon, 06 Nov 2095 08:49:37 GMT", now: now) == RetryAfter.maximum)
        for ignored in [nil, "", "0", "-5", "soon", "1.5", "Sun, 06 Nov 1994 08:40:00 GMT"] {
            #expect(RetryAfter.parse(ignored, now: now) == nil, "\(ignored ?? "nil")")
        }
        let html = Data("<html><body>Too Many Requests</body></html>".utf8)
        #expect(SubmissionDecision.decide(status: 429, contentType: "text/html", retryAfter: "Sun, 06 Nov 1994 08:50:07 GMT", body: html, now: now)
                == .retry(after: .seconds(30), reason: "HTTP 429 without a readable SOAP body"))
        #expect(SubmissionDecision.decide(status: 503, contentType: "text/html", retryAfter: "7200", body: html, now: now)
                == .retry(after: .seconds(3600), reason: "HTTP 503 without a readable SOAP body"))
    }

    @Test func mtomResponse() throws {
        let boundary = "uuid:resp-boundary"
        let root = Self.envelope("<rs:RegistryResponse \(Self.rs) status=\"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success\"/>")
        var body = Data("--\(boundary)\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\nContent-ID: <root@x>\r\n\r\n".utf8)
        body += root + Data("\r\n--\(boundary)--\r\n".utf8)
        let ct = "multipart/related; boundary=\"\(boundary)\"; type=\"application/xop+xml\"; start=\"<root@x>\"; start-info=\"application/soap+xml\""
        #expect(SubmissionDecision.decide(status: 200, contentType: ct, retryAfter: nil, body: body) == .done(alreadyPresent: false, warnings: []))
    }

    @Test func transportErrors() {
        let timeout = CurlError(kind: .timeout, code: 28, codeName: "CURLE_OPERATION_TIMEDOUT", detail: "timed out")
        guard case .retry = SubmissionDecision.decide(timeout) else { Issue.record("timeout not retried"); return }
        let cert = CurlError(kind: .peerCertificate, code: 60, codeName: "CURLE_PEER_FAILED_VERIFICATION", detail: "unknown CA")
        #expect(SubmissionDecision.decide(cert) == .failed(reason: cert.description, codes: ["peerCertificate"]))
    }

    @Test func unreadableResponsesAreErrors() {
        #expect(throws: DMPError.self) { try ITI41Response.parse(Data("not xml".utf8), contentType: nil) }
        #expect(throws: DMPError.self) { try ITI41Response.parse(Self.envelope("<other/>"), contentType: nil) }
    }
}
