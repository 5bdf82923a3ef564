import Foundation
import OpenSSLKit
import Testing
import TestSupport

@Suite struct CertificateTests {
    @Test func orgSignFields() throws {
        let certificate = try PKI.bundle("org-sign").certificate
        #expect(certificate.subject.commonName == "passerelle.ch-test.fr (ORG_SIGN)")
        #expect(certificate.subject["O"] == "CENTRE HOSPITALIER DE TEST PASSERELLE")
        #expect(certificate.subject["OU"] == "FINESS 100000001")
        #expect(certificate.subject.components.map(\.type) == ["C", "O", "OU", "CN"])
        #expect(certificate.subject.rfc2253
            == "CN=passerelle.ch-test.fr (ORG_SIGN),OU=FINESS 100000001,O=CENTRE HOSPITALIER DE TEST PASSERELLE,C=FR")
        #expect(certificate.issuer.commonName == "AC RACINE TEST PASSERELLE (IGC-Sante test)")
        #expect(certificate.keyUsage == [.digitalSignature, .nonRepudiation])
        #expect(certificate.keyUsage?.names == ["digitalSignature", "nonRepudiation"])
        #expect(certificate.extendedKeyUsage == nil)
        #expect(certificate.subjectAltNames.isEmpty)
        #expect(!certificate.isCA)
        #expect(!certificate.isSelfIssued)
        #expect(certificate.notBefore < Date())
        #expect(certificate.notAfter > Date())
    }

    @Test func fieldsMatchTheOpenSSLCommandLine() throws {
        let file = PKI.url("org-auth.pem")
        let certificate = try Certificate(contentsOf: file)
        let cli = try opensslCLI(["x509", "-in", file.path, "-noout", "-serial", "-enddate", "-startdate",
                                  "-fingerprint", "-sha256"])
        #expect(cli.succeeded)
        #expect(cli.stdout.contains("serial=\(certificate.serialNumber)\n"))
        #expect(cli.stdout.contains("Fingerprint=\(Certificate.colonHex(certificate.sha256Fingerprint))"))
        let sha1 = try opensslCLI(["x509", "-in", file.path, "-noout", "-fingerprint", "-sha1"])
        #expect(sha1.stdout.contains("Fingerprint=\(Certificate.colonHex(certificate.sha1Fingerprint))"))
        // notAfter as printed by OpenSSL, e.g. "notAfter=Feb 26 10:11:45 2029 GMT".
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "MMM d HH:mm:ss yyyy 'GMT'"
        let line = cli.stdout.split(separator: "\n").first { $0.hasPrefix("notAfter=") }
        let printed = try #require(line).dropFirst("notAfter=".count).replacingOccurrences(of: "  ", with: " ")
        #expect(formatter.date(from: printed) == certificate.notAfter)
        #expect(certificate.extendedKeyUsage == [.clientAuth])
        #expect(certificate.keyUsage == [.digitalSignature, .keyEncipherment])
    }

    @Test func serverSubjectAltNames() throws {
        let certificate = try PKI.certificate("server-localhost")
        #expect(certificate.subjectAltNames == [.dns("localhost"), .ip("127.0.0.1"), .ip("::1")])
        #expect(certificate.extendedKeyUsage == [.serverAuth])
    }

    @Test func pemDerRoundTripAndMultiCertificateFiles() throws {
        let chain = try Certificate.load(contentsOf: PKI.url("org-sign-chain.pem"))
        #expect(chain.count == 2)
        #expect(chain[1].isCA && chain[1].isSelfIssued)
        let leaf = chain[0]
        #expect(try Certificate(der: leaf.der) == leaf)
        #expect(try Certificate(pem: Data(leaf.pem.utf8)) == leaf)
        // The PEM export is what the file holds.
        let file = try String(contentsOf: PKI.url("org-sign.pem"), encoding: .utf8)
        #expect(file.contains(leaf.pem))
        // A DER file loads too.
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let der = directory.appendingPathComponent("leaf.der")
        try leaf.der.write(to: der)
        #expect(try Certificate(contentsOf: der) == leaf)
        // The CRL block in ca-with-crl.pem is skipped.
        #expect(try Certificate.load(contentsOf: PKI.url("ca-with-crl.pem")).count == 1)
    }

    @Test func utf8NamesStayReadable() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = directory.appendingPathComponent("k.pem"), cert = directory.appendingPathComponent("c.pem")
        let made = try opensslCLI(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-utf8",
                                   "-subj", "/C=FR/O=Hôpital Saint-Éloi, Nord/CN=Dr Zoë Lefèvre",
                                   "-keyout", key.path, "-out", cert.path])
        #expect(made.succeeded, "\(made.stderr)")
        let certificate = try Certificate(contentsOf: cert)
        #expect(certificate.subject.commonName == "Dr Zoë Lefèvre")
        #expect(certificate.subject["O"] == "Hôpital Saint-Éloi, Nord")
        // RFC 2253 escapes the comma, keeps the accents.
        #expect(certificate.subject.rfc2253 == "CN=Dr Zoë Lefèvre,O=Hôpital Saint-Éloi\\, Nord,C=FR")
        #expect(certificate.isSelfIssued)
    }

    @Test func encryptedPEMKey() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let encrypted = directory.appendingPathComponent("enc.pem")
        let made = try opensslCLI(["pkey", "-in", PKI.url("org-sign.key.pem").path, "-aes256",
                                   "-passout", "pass:key-secret", "-out", encrypted.path])
        #expect(made.succeeded, "\(made.stderr)")
        let key = try PrivateKey(pemFile: encrypted, passphrase: Passphrase("key-secret"))
        #expect(key.matches(try PKI.certificate("org-sign")))
        #expect(throws: OpenSSLError.self) { try PrivateKey(pemFile: encrypted, passphrase: Passphrase("wrong")) }
        #expect(throws: OpenSSLError.self) { try PrivateKey(pemFile: encrypted) }  // never prompts on a terminal
    }

    @Test func garbageIsAnInvalidCertificate() {
        #expect(throws: OpenSSLError.self) { try Certificate(der: Data([1, 2, 3])) }
        #expect(throws: OpenSSLError.self) { try Certificate(pem: Data("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8)) }
    }
}
