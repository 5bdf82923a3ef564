import Foundation
import PasserelleCore
import XMLSecKit

/// The structure-wide values of the VIHF (the DMP's SAML 2.0 identity assertion), from the
/// `[vihf]` configuration section. Every value is checked when the configuration is read:
/// an unknown value is a configuration error, never replaced by a guess.
public struct VIHFConfiguration: Sendable, Hashable {
    /// Accepted `authentification_mode` values (indirect authentication: the structure
    /// authenticates with its own certificates and asserts the user).
    public static let authenticationModes: Set<String> = ["INDIRECTE", "INDIRECTE_RENFORCEE"]
    /// Accepted `mode_acces` / `purpose_of_use` values: a feeding gateway only ever has normal access.
    public static let accessModes: Set<String> = ["normal"]
    /// Accepted `authn_context` values (SAML 2.0 authentication context classes).
    public static let authnContextClasses: Set<String> = [
        "urn:oasis:names:tc:SAML:2.0:ac:classes:Password",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:X509",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered",
    ]
    /// Configuration keys of the `[vihf]` section.
    public static let keys: Set<String> = [
        "identifiant_structure", "secteur_activite", "lps_nom", "lps_version", "lps_id",
        "lps_homologation_dmp", "mode_acces", "authentification_mode", "role", "purpose_of_use",
        "authn_context", "validity_seconds",
    ]

    /// `Identifiant_Structure`: `1` + FINESS (10 characters) or `3` + SIRET (15 characters).
    public var structureIdentifier: String
    /// `Secteur_Activite` code (TRE_R02 / JDV_J61, `SAxx`); sent as `SAxx^1.2.250.1.71.4.2.4`.
    public var secteurActivite: String
    public var lpsName: String
    public var lpsVersion: String
    /// `LPS_ID` (optional).
    public var lpsID: String?
    /// `LPS_ID_HOMOLOGATION_DMP`: the DMP homologation number of the software.
    public var lpsHomologationDMP: String
    public var accessMode: String
    public var authenticationMode: String
    /// Role used when the author carries none (automated processing): `code^codeSystemOID^displayName`.
    public var defaultRole: CodedValue?
    public var purposeOfUse: String
    public var authnContextClass: String
    /// Lifetime of an assertion (`Conditions/@NotOnOrAfter` − `@NotBefore`).
    public var validity: TimeInterval

    /// Builds the configuration from the `[vihf]` section's key/value strings.
    public init(keys values: [String: String]) throws(SigningError) {
        for key in values.keys where !Self.keys.contains(key) {
            throw .configuration(key: key, message: "unknown key (accepted: \(Self.keys.sorted().joined(separator: ", ")))")
        }
        for (key, value) in values where !Identifiers.isXMLText(value) {
            throw .configuration(key: key, message: "contains control characters")
        }
        func required(_ key: String) throws(SigningError) -> String {
            guard let value = values[key]?.trimmingWhitespace(), !value.isEmpty else {
                throw .configuration(key: key, message: "missing")
            }
            return value
        }
        func oneOf(_ key: String, _ allowed: Set<String>, default fallback: String) throws(SigningError) -> String {
            let value = values[key]?.trimmingWhitespace() ?? fallback
            guard allowed.contains(value) else {
                throw .configuration(key: key, message: "'\(value)' is not accepted (accepted: \(allowed.sorted().joined(separator: ", ")))")
            }
            return value
        }

        structureIdentifier = try required("identifiant_structure")
        let digits = structureIdentifier.dropFirst()
        let isFINESS = structureIdentifier.first == "1" && structureIdentifier.count == 10
            && digits.allSatisfy { $0.isASCIIDigit || $0 == "A" || $0 == "B" }
        let isSIRET = structureIdentifier.first == "3" && structureIdentifier.count == 15 && digits.allSatisfy(\.isASCIIDigit)
        guard isFINESS || isSIRET else {
            throw .configuration(key: "identifiant_structure",
                                 message: "'\(structureIdentifier)' is neither 1+FINESS (10 characters) nor 3+SIRET (15 characters)")
        }
        secteurActivite = try required("secteur_activite")
        guard secteurActivite.count == 4, secteurActivite.hasPrefix("SA"), secteurActivite.dropFirst(2).allSatisfy(\.isASCIIDigit) else {
            throw .configuration(key: "secteur_activite", message: "'\(secteurActivite)' is not a TRE_R02 code (SA followed by two digits, e.g. SA01)")
        }
        lpsName = try required("lps_nom")
        lpsVersion = try required("lps_version")
        lpsID = values["lps_id"].flatMap { $0.isEmpty ? nil : $0 }
        lpsHomologationDMP = try required("lps_homologation_dmp")
        accessMode = try oneOf("mode_acces", Self.accessModes, default: "normal")
        authenticationMode = try oneOf("authentification_mode", Self.authenticationModes, default: "INDIRECTE")
        purposeOfUse = try oneOf("purpose_of_use", Self.accessModes, default: "normal")
        authnContextClass = try oneOf("authn_context", Self.authnContextClasses,
                                      default: "urn:oasis:names:tc:SAML:2.0:ac:classes:Password")
        if let role = values["role"] {
            defaultRole = try Self.parseRole(role, key: "role")
        }
        if let text = values["validity_seconds"] {
            guard let seconds = Int(text), (30...3600).contains(seconds) else {
                throw .configuration(key: "validity_seconds", message: "'\(text)' is not a number of seconds between 30 and 3600")
            }
            validity = TimeInterval(seconds)
        } else {
            validity = 300
        }
    }

    /// Parses `code^codeSystemOID^displayName`.
    public static func parseRole(_ text: String, key: String = "role") throws(SigningError) -> CodedValue {
        let parts = text.split(separator: "^", omittingEmptySubsequences: false).map { $0.trimmingWhitespace() }
        guard parts.count == 3, !parts[0].isEmpty, Identifiers.isOID(parts[1]), !parts[2].isEmpty else {
            throw .configuration(key: key, message: "'\(text)' is not code^codeSystemOID^displayName (e.g. 10^1.2.250.1.71.1.2.7^Médecin)")
        }
        return CodedValue(code: parts[0], codeSystem: parts[1], displayName: parts[2])
    }
}

/// The person (or, for automated processing, the responsible person) the VIHF asserts.
public struct VIHFAuthor: Sendable, Hashable {
    /// `Subject/NameID`: national identifier of the professional (e.g. `8` + RPPS).
    public var identifier: String
    /// `subject-id`: name (and service) of the professional.
    public var displayName: String
    /// `subject:role` values (profession, then specialty for doctors and pharmacists);
    /// the configured default role when empty.
    public var roles: [CodedValue]

    public init(identifier: String, displayName: String, roles: [CodedValue] = []) {
        self.identifier = identifier
        self.displayName = displayName
        self.roles = roles
    }
}

/// Builds and signs the VIHF SAML 2.0 assertion placed in the WS-Security header of each
/// DMP request: Issuer = subject DN of the signing certificate, enveloped exc-C14N
/// signature right after Issuer (xmlsec1), VIHF_Version 3.0 attributes.
public struct VIHFAssertionBuilder: Sendable {
    public static let version = "3.0"
    static let samlNamespace = "urn:oasis:names:tc:SAML:2.0:assertion"

    public var configuration: VIHFConfiguration
    public var credentials: SigningCredentials
    public var digestAlgorithm: SignatureDigestAlgorithm

    public init(configuration: VIHFConfiguration, credentials: SigningCredentials, digestAlgorithm: SignatureDigestAlgorithm = .sha256) {
        self.configuration = configuration
        self.credentials = credentials
        self.digestAlgorithm = digestAlgorithm
    }

    /// Returns the signed `saml2:Assertion` (UTF-8 XML without an XML declaration, ready to be
    /// placed as is in the `wsse:Security` header: the exclusive C14N signature does not depend
    /// on the enclosing elements).
    public func assertion(patient: INS, author: VIHFAuthor, issueInstant: Date = Date(),
                          assertionID: String = "VIHF-\(UUID.random().uuidString.lowercased())") throws(SigningError) -> Data {
        guard Identifiers.isNCName(assertionID) else { throw .invalidInput("assertion ID '\(assertionID)' is not an XML NCName") }
        guard !author.identifier.trimmingWhitespace().isEmpty else {
            throw .invalidInput("the VIHF needs the author's identifier (Subject/NameID)")
        }
        guard !author.displayName.trimmingWhitespace().isEmpty else {
            throw .invalidInput("the VIHF needs the author's name (subject-id)")
        }
        let texts = [author.identifier, author.displayName] + author.roles.flatMap { [$0.code, $0.codeSystem, $0.displayName] }
        guard texts.allSatisfy(Identifiers.isXMLText) else {
            throw .invalidInput("the author's identifier, name or roles contain control characters")
        }
        let roles = author.roles.isEmpty ? configuration.defaultRole.map { [$0] } ?? [] : author.roles
        guard !roles.isEmpty else {
            throw .configuration(key: "role", message: "the author has no role and no default role is configured")
        }
        try credentials.checkUsable(at: issueInstant)

        let c = configuration
        let algorithm = digestAlgorithm.xmlsec
        let now = Identifiers.xmlDateTime(issueInstant)
        let until = Identifiers.xmlDateTime(issueInstant.addingTimeInterval(c.validity))
        func attribute(_ name: String, _ value: String) -> String {
            "<saml2:Attribute Name=\"\(name.xmlEscaped)\"><saml2:AttributeValue>\(value.xmlEscaped)</saml2:AttributeValue></saml2:Attribute>"
        }
        func coded(_ element: String, _ value: CodedValue) -> String {
            "<\(element) xmlns=\"urn:hl7-org:v3\" code=\"\(value.code.xmlEscaped)\" codeSystem=\"\(value.codeSystem.xmlEscaped)\" "
                + "displayName=\"\(value.displayName.xmlEscaped)\" xsi:type=\"CE\"/>"
        }
        var attributes = attribute("VIHF_Version", Self.version)
            + attribute("Identifiant_Structure", c.structureIdentifier)
            + attribute("Secteur_Activite", "\(c.secteurActivite)^1.2.250.1.71.4.2.4")
            + attribute("urn:oasis:names:tc:xspa:1.0:subject:subject-id", author.displayName)
            + "<saml2:Attribute Name=\"urn:oasis:names:tc:xacml:2.0:subject:role\">"
            + roles.map { "<saml2:AttributeValue>\(coded("Role", $0))</saml2:AttributeValue>" }.joined()
            + "</saml2:Attribute>"
            + "<saml2:Attribute Name=\"urn:oasis:names:tc:xspa:1.0:subject:purposeofuse\"><saml2:AttributeValue>"
            + coded("PurposeOfUse", CodedValue(code: c.purposeOfUse, codeSystem: "1.2.250.1.213.1.1.4.248", displayName: "Accès normal"))
            + "</saml2:AttributeValue></saml2:Attribute>"
            + attribute("urn:oasis:names:tc:xacml:2.0:resource:resource-id", "\(patient.value)^^^&\(patient.oid)&ISO^NH")
            + attribute("Ressource_URN", "urn:dmp")
            + attribute("Mode_Acces", c.accessMode)
            + attribute("Authentification_Mode", c.authenticationMode)
            + attribute("LPS_Nom", c.lpsName)
            + attribute("LPS_Version", c.lpsVersion)
        if let id = c.lpsID { attributes += attribute("LPS_ID", id) }
        attributes += attribute("LPS_ID_HOMOLOGATION_DMP", c.lpsHomologationDMP)

        let c14n = "http://www.w3.org/2001/10/xml-exc-c14n#"
        let template = """
        <saml2:Assertion xmlns:saml2="\(Self.samlNamespace)" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
        ID="\(assertionID)" IssueInstant="\(now)" Version="2.0">\
        <saml2:Issuer Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName">\(credentials.certificateSubject.xmlEscaped)</saml2:Issuer>\
        <ds:Signature xmlns:ds="\(xmlDSigNamespace)"><ds:SignedInfo>\
        <ds:CanonicalizationMethod Algorithm="\(c14n)"/><ds:SignatureMethod Algorithm="\(algorithm.rsaSignatureURI)"/>\
        <ds:Reference URI="#\(assertionID)"><ds:Transforms>\
        <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>\
        <ds:Transform Algorithm="\(c14n)"/></ds:Transforms>\
        <ds:DigestMethod Algorithm="\(algorithm.digestURI)"/><ds:DigestValue></ds:DigestValue></ds:Reference>\
        </ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data></ds:X509Data></ds:KeyInfo></ds:Signature>\
        <saml2:Subject><saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">\(author.identifier.xmlEscaped)</saml2:NameID></saml2:Subject>\
        <saml2:Conditions NotBefore="\(now)" NotOnOrAfter="\(until)"/>\
        <saml2:AuthnStatement AuthnInstant="\(now)"><saml2:AuthnContext>\
        <saml2:AuthnContextClassRef>\(c.authnContextClass)</saml2:AuthnContextClassRef></saml2:AuthnContext></saml2:AuthnStatement>\
        <saml2:AttributeStatement>\(attributes)</saml2:AttributeStatement>\
        </saml2:Assertion>
        """
        return try credentials.sign(template: template, xmlDeclaration: false)
    }
}
