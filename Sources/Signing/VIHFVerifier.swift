import Foundation
import OpenSSLKit
import XMLKit
import XMLSecKit

/// What a receiver (the test DMP endpoint) learns from a VIHF assertion.
public struct VIHFVerification: Sendable {
    /// True when the signature verifies, covers the whole assertion, the Issuer is the
    /// signing certificate's subject and the assertion is within its Conditions.
    public var isValid: Bool { problems.isEmpty }
    public var problems: [String]
    public var issuer: String?
    /// Subject/NameID.
    public var subject: String?
    /// Attribute Name → values; coded values (Role, PurposeOfUse) as `code^codeSystem`.
    public var attributes: [String: [String]]
}

/// Checks a VIHF assertion (as made by ``VIHFAssertionBuilder``) with xmlsec1 and the trust anchors.
public struct VIHFVerifier: Sendable {
    let trustStore: XMLSecTrustStore
    /// Tolerated clock difference for the Conditions window.
    public var clockSkew: TimeInterval = 60

    public init(trustAnchorFiles: [URL]) throws(SigningError) {
        do { trustStore = try XMLSecTrustStore(pemFiles: trustAnchorFiles) } catch { throw .xmlsec(error) }
    }

    public init(trustAnchorsPEM: [Data]) throws(SigningError) {
        do { trustStore = try XMLSecTrustStore(pem: trustAnchorsPEM) } catch { throw .xmlsec(error) }
    }

    public func verify(_ assertion: Data, at time: Date = Date()) throws(SigningError) -> VIHFVerification {
        let result: XMLSignatureVerification
        do { result = try XMLSignatureVerifier.verify(assertion, trustStore: trustStore, at: time) } catch { throw .xmlsec(error) }
        var problems: [String] = []
        if !result.isValid { problems.append("XML signature invalid: \(result.failure ?? "unknown reason")") }

        let ns = ["saml2": VIHFAssertionBuilder.samlNamespace, "ds": xmlDSigNamespace, "hl7": "urn:hl7-org:v3"]
        var verification = VIHFVerification(problems: [], issuer: nil, subject: nil, attributes: [:])
        do {
            let document = try XMLKit.XMLDocument.parse(assertion, options: xmlSignatureParseBudget)
            let id = try document.string("string(/saml2:Assertion/@ID)", namespaces: ns)
            // The one reference must designate the root assertion, whose ID is unique, and the
            // signature must be the assertion's own (enveloped) one.
            if id.isEmpty || !Identifiers.isNCName(id) {
                problems.append("the root is not a saml2:Assertion with an ID")
            } else {
                if result.references.map(\.uri) != ["#\(id)"] { problems.append("the signature does not cover exactly the assertion #\(id)") }
                if try document.count("//*[@ID='\(id)' or @Id='\(id)']", namespaces: ns) != 1 { problems.append("ID \(id) appears more than once") }
            }
            if try document.count("/saml2:Assertion/ds:Signature", namespaces: ns) != 1 || document.count("//ds:Signature", namespaces: ns) != 1 {
                problems.append("expected exactly one ds:Signature, child of the assertion")
            }
            verification.issuer = try document.string("string(/saml2:Assertion/saml2:Issuer)", namespaces: ns)
            verification.subject = try document.string("string(/saml2:Assertion/saml2:Subject/saml2:NameID)", namespaces: ns)
            if result.isValid, verification.issuer != result.signer?.subject.rfc2253 {
                problems.append("Issuer '\(verification.issuer ?? "")' is not the signing certificate's subject")
            }
            let notBefore = try document.string("string(/saml2:Assertion/saml2:Conditions/@NotBefore)", namespaces: ns)
            let notOnOrAfter = try document.string("string(/saml2:Assertion/saml2:Conditions/@NotOnOrAfter)", namespaces: ns)
            let parse = ISO8601DateFormatter()
            if let start = parse.date(from: notBefore), let end = parse.date(from: notOnOrAfter) {
                if time < start.addingTimeInterval(-clockSkew) || time >= end.addingTimeInterval(clockSkew) {
                    problems.append("outside its validity \(notBefore) – \(notOnOrAfter)")
                }
            } else {
                problems.append("Conditions NotBefore/NotOnOrAfter missing or unreadable")
            }
            for attribute in try document.nodes("/saml2:Assertion/saml2:AttributeStatement/saml2:Attribute", namespaces: ns) {
                let name = attribute.attribute("Name") ?? ""
                for value in attribute.elements(named: "AttributeValue", namespaceURI: VIHFAssertionBuilder.samlNamespace) {
                    if let coded = value.elements.first {
                        verification.attributes[name, default: []].append("\(coded.attribute("code") ?? "")^\(coded.attribute("codeSystem") ?? "")")
                    } else {
                        verification.attributes[name, default: []].append(value.text)
                    }
                }
            }
            if verification.attributes["VIHF_Version"] == nil { problems.append("no VIHF_Version attribute") }
        } catch {
            problems.append("cannot read the assertion: \(error)")
        }
        verification.problems = problems
        return verification
    }
}
