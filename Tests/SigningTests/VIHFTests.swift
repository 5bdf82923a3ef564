import Foundation
import PasserelleCore
import Signing
import Testing
import TestSupport

@Suite struct VIHFTests {
    static let keys: [String: String] = [
        "identifiant_structure": "1100000001",
        "secteur_activite": "SA01",
        "lps_nom": "Passerelle",
        "lps_version": "1.0.0",
        "lps_homologation_dmp": "HOMOLOGATION-TEST-1",
        "role": "10^1.2.250.1.71.1.2.7^Médecin",
    ]
    static let author = VIHFAuthor(identifier: "810000000001", displayName: "Dr TEST Jean <Cardiologie>")

    func assertion(_ name: String = "org-sign", algorithm: SignatureDigestAlgorithm = .sha256) throws -> Data {
        let builder = VIHFAssertionBuilder(configuration: try VIHFConfiguration(keys: Self.keys),
                                           credentials: try TestPKI.credentials(name), digestAlgorithm: algorithm)
        return try builder.assertion(patient: try INS("279035121518989", kind: .nirTest), author: Self.author)
    }

    @Test(arguments: [SignatureDigestAlgorithm.sha256, .sha1])
    func bothVerifiersAccept(algorithm: SignatureDigestAlgorithm) throws {
        let signed = try assertion(algorithm: algorithm)
        let cli = try ExternalVerifier.xmlsec1(signed)
        #expect(cli.succeeded, "xmlsec1: \(cli.stderr)")
        let python = try ExternalVerifier.signxml(signed, references: 1, sha1: algorithm == .sha1)
        #expect(python.succeeded, "signxml: \(python.stderr)")
        #expect(python.stdout.contains("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion"))
    }

    @Test func staysValidInsideASOAPHeader() throws {
        let signed = try assertion()
        #expect(!String(decoding: signed, as: UTF8.self).hasPrefix("<?xml"))
        let envelope = """
        <?xml version="1.0" encoding="UTF-8"?>
        <soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:saml2="urn:other" xmlns="urn:default">\
        <soap:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">\
        \(String(decoding: signed, as: UTF8.self))</wsse:Security></soap:Header><soap:Body/></soap:Envelope>
        """
        let cli = try ExternalVerifier.xmlsec1(Data(envelope.utf8))
        #expect(cli.succeeded, "xmlsec1: \(cli.stderr)")
        let python = try ExternalVerifier.signxml(Data(envelope.utf8), references: 1)
        #expect(python.succeeded, "signxml: \(python.stderr)")
    }

    @Test func assertionContent() throws {
        let signed = try assertion()
        // Structure checked by lxml (independent parser): Signature right after Issuer,
        // Issuer = certificate subject, attributes present.
        let script = """
        import sys
        from lxml import etree
        ns = {'s': 'urn:oasis:names:tc:SAML:2.0:assertion', 'ds': 'http://www.w3.org/2000/09/xmldsig#'}
        root = etree.parse(sys.argv[1]).getroot()
        children = [etree.QName(c).localname for c in root]
        assert children[:3] == ['Issuer', 'Signature', 'Subject'], children
        print(root.findtext('s:Issuer', namespaces=ns))
        for a in root.iterfind('s:AttributeStatement/s:Attribute', namespaces=ns):
            v = a.find('s:AttributeValue', namespaces=ns)
            print(a.get('Name') + '=' + (v.text or etree.tostring(v[0]).decode()))
        """
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("vihf.xml")
        try signed.write(to: file)
        let result = try ProcessRunner.run(TestPaths.testVenv.appendingPathComponent("bin/python").path, ["-c", script, file.path])
        #expect(result.succeeded, "\(result.stderr)")
        let credentials = try TestPKI.credentials("org-sign")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == credentials.certificateSubject)
        for expected in ["VIHF_Version=3.0", "Identifiant_Structure=1100000001", "Secteur_Activite=SA01^1.2.250.1.71.4.2.4",
                         "urn:oasis:names:tc:xspa:1.0:subject:subject-id=Dr TEST Jean <Cardiologie>",
                         "urn:oasis:names:tc:xacml:2.0:resource:resource-id=279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH",
                         "Ressource_URN=urn:dmp", "Mode_Acces=normal", "Authentification_Mode=INDIRECTE",
                         "LPS_Nom=Passerelle", "LPS_Version=1.0.0", "LPS_ID_HOMOLOGATION_DMP=HOMOLOGATION-TEST-1"] {
            #expect(lines.contains(expected), "missing \(expected)")
        }
        #expect(lines.contains { $0.hasPrefix("urn:oasis:names:tc:xacml:2.0:subject:role=") && $0.contains("code=\"10\"") })
        #expect(lines.contains { $0.hasPrefix("urn:oasis:names:tc:xspa:1.0:subject:purposeofuse=") && $0.contains("1.2.250.1.213.1.1.4.248") })
    }

    @Test func bothVerifiersRejectTamperingWrongAndExpiredCertificates() throws {
        let signed = try assertion()
        let tampered = tamper(signed, inside: "<saml2:Attribute Name=\"LPS_Nom\"><saml2:AttributeValue>")
        #expect(tampered != signed)
        #expect(try ExternalVerifier.xmlsec1(tampered).xmlsec1Rejected)
        #expect(try ExternalVerifier.signxml(tampered, references: 1).signxmlRejected)

        let unknown = try VIHFAssertionBuilder(configuration: VIHFConfiguration(keys: Self.keys),
                                               credentials: TestPKI.credentials("unknown-sign", trusted: false))
            .assertion(patient: INS("279035121518989", kind: .nirTest), author: Self.author)
        #expect(try ExternalVerifier.xmlsec1(unknown).xmlsec1Rejected)
        #expect(try ExternalVerifier.signxml(unknown, references: 1).signxmlRejected)
        #expect(try ExternalVerifier.xmlsec1(signed, trusted: "unknown-ca.pem").xmlsec1Rejected)
        #expect(try ExternalVerifier.signxml(signed, trusted: "unknown-ca.pem", references: 1).signxmlRejected)

        // The gateway refuses expired and revoked certificates…
        #expect(throws: SigningError.self) { _ = try assertion("expired-sign") }
        #expect(throws: SigningError.self) { _ = try assertion("revoked-sign") }
        // …and an assertion signed while the expired certificate was still valid is rejected now.
        let expired = try TestPKI.credentials("expired-sign", trusted: false)
        let old = try VIHFAssertionBuilder(configuration: VIHFConfiguration(keys: Self.keys), credentials: expired)
            .assertion(patient: INS("279035121518989", kind: .nirTest), author: Self.author,
                       issueInstant: expired.certificateValidity.lowerBound.addingTimeInterval(60))
        #expect(try ExternalVerifier.xmlsec1(old).xmlsec1Rejected)
        #expect(try ExternalVerifier.signxml(old, references: 1).signxmlRejected)
    }

    @Test func timesAreUTCWholeSeconds() throws {
        let credentials = try TestPKI.credentials("org-sign")
        let instant = credentials.certificateValidity.lowerBound.addingTimeInterval(86_400 + 0.75)
        let signed = try VIHFAssertionBuilder(configuration: VIHFConfiguration(keys: Self.keys), credentials: credentials)
            .assertion(patient: INS("279035121518989", kind: .nirTest), author: Self.author, issueInstant: instant)
        let expected = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: instant.timeIntervalSince1970.rounded(.down)))
        let later = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: instant.timeIntervalSince1970.rounded(.down) + 300))
        let text = String(decoding: signed, as: UTF8.self)
        #expect(text.contains("IssueInstant=\"\(expected)\""))
        #expect(text.contains("NotOnOrAfter=\"\(later)\""))
    }

    @Test func unknownConfigurationValuesAreErrors() throws {
        func error(_ change: [String: String?]) -> String? {
            var keys = Self.keys
            for (key, value) in change { keys[key] = value }
            do { _ = try VIHFConfiguration(keys: keys); return nil } catch { return "\(error)" }
        }
        #expect(error([:]) == nil)
        #expect(error(["secteur_activite": "HOPITAL"])?.contains("secteur_activite") == true)
        #expect(error(["identifiant_structure": "12345"])?.contains("identifiant_structure") == true)
        #expect(error(["mode_acces": "bris_de_glace"])?.contains("accepted: normal") == true)
        #expect(error(["authentification_mode": "DIRECTE"])?.contains("authentification_mode") == true)
        #expect(error(["lps_homologation_dmp": nil])?.contains("missing") == true)
        #expect(error(["role": "10"])?.contains("role") == true)
        #expect(error(["validity_seconds": "86400"])?.contains("validity_seconds") == true)
        #expect(error(["lps_name": "x"])?.contains("unknown key") == true)
        #expect(error(["lps_nom": "Passerelle\u{1}"])?.contains("control characters") == true)
    }

    @Test func authorWithoutRoleNeedsConfiguredRole() throws {
        var keys = Self.keys
        keys["role"] = nil
        let builder = VIHFAssertionBuilder(configuration: try VIHFConfiguration(keys: keys), credentials: try TestPKI.credentials("org-sign"))
        #expect(throws: SigningError.self) {
            _ = try builder.assertion(patient: INS("279035121518989", kind: .nirTest), author: Self.author)
        }
        let withRole = VIHFAuthor(identifier: "810000000001", displayName: "Dr TEST",
                                  roles: [CodedValue(code: "10", codeSystem: "1.2.250.1.71.1.2.7", displayName: "Médecin")])
        let signed = try builder.assertion(patient: INS("279035121518989", kind: .nirTest), author: withRole)
        #expect(try ExternalVerifier.xmlsec1(signed).succeeded)
    }
}

@Suite struct VIHFVerifierTests {
    let verifier: VIHFVerifier
    init() throws { verifier = try VIHFVerifier(trustAnchorFiles: [TestPKI.url("ca-with-crl.pem")]) }

    @Test func acceptsOwnAssertionAndReadsAttributes() throws {
        let signed = try VIHFTests().assertion()
        let result = try verifier.verify(signed)
        #expect(result.isValid, "\(result.problems)")
        #expect(result.subject == "810000000001")
        #expect(result.attributes["VIHF_Version"] == ["3.0"])
        #expect(result.attributes["urn:oasis:names:tc:xacml:2.0:subject:role"] == ["10^1.2.250.1.71.1.2.7"])
    }

    @Test func rejectsExpiredTamperedAndWrapped() throws {
        let signed = try VIHFTests().assertion()
        #expect(try !verifier.verify(signed, at: Date().addingTimeInterval(3600)).isValid)
        #expect(try !verifier.verify(tamper(signed, inside: "<saml2:Attribute Name=\"LPS_Nom\"><saml2:AttributeValue>")).isValid)
        // The signed assertion wrapped in another element: not a bare assertion any more.
        let wrapped = Data(("<saml2:Assertion xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"evil\">"
            + String(decoding: signed, as: UTF8.self) + "</saml2:Assertion>").utf8)
        #expect(try !verifier.verify(wrapped).isValid)
    }
}
