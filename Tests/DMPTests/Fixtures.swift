import IHE
import CDA
import DMP
import Foundation
import OpenSSLKit
import PasserelleCore
import Signing
import Testing
import TestSupport

/// Test documents (QUAL identity of the ANS test patient), test PKI credentials, validators.
enum Fixtures {
    static let structureOID = "1.2.250.1.999.1"
    static let endpoint = URL(string: "https://localhost/dmp/repository")!

    static let author = SampleMetadata.author
    static let structure = SampleMetadata.structure

    static func metadata(kind: DocumentKind, flags: [MetaDMPMSSFlag] = [], replacing: CDADocument? = nil) -> DocumentMetadata {
        let m = SampleMetadata.document(kind: kind, id: SampleMetadata.oidDocumentID(root: structureOID), flags: flags)
        guard let replacing else { return m }
        return m.replacing(id: replacing.id, setID: replacing.setID, versionNumber: replacing.versionNumber)
    }

    static let cdaBuilder: CDABuilder = {
        try! CDABuilder(templatesDirectory: TestPaths.templates, options: CDABuilder.Options(documentIDRoot: structureOID))
    }()

    static func cda(_ metadata: DocumentMetadata, pdfBytes: Int = 0) throws -> CDADocument {
        try cdaBuilder.build(metadata: metadata, pdf: TestPDF.make(text: "Compte rendu de test", minimumBytes: pdfBytes))
    }

    static let mapper = DocumentEntryMapper(settings: SubmissionSettings(sourceId: structureOID, structure: structure))

    static func pki(_ name: String) -> URL { TestPaths.testPKI.appendingPathComponent(name) }

    static func credentials(_ name: String = "org-sign") throws -> SigningCredentials {
        try SigningCredentials(pkcs12: Data(contentsOf: pki("\(name).p12")),
                               passphrase: Passphrase.read(file: TestPaths.testPKIPassphraseFile),
                               trustStore: TrustStore(anchorsFile: pki("ca.pem"), crlFiles: [pki("ca.crl.pem")]))
    }

    static let vihfKeys: [String: String] = [
        "identifiant_structure": "1750803447",
        "secteur_activite": "SA01",
        "lps_nom": "Passerelle",
        "lps_version": "1.0.0",
        "lps_homologation_dmp": "HOMOLOGATION-TEST-1",
        "role": "10^1.2.250.1.71.1.2.7^Médecin",
    ]

    static func vihfBuilder() throws -> VIHFAssertionBuilder {
        VIHFAssertionBuilder(configuration: try VIHFConfiguration(keys: vihfKeys), credentials: try credentials())
    }

    static func vihf(for cda: CDADocument) throws -> Data {
        let builder = VIHFAssertionBuilder(configuration: try VIHFConfiguration(keys: vihfKeys), credentials: try credentials())
        return try builder.assertion(patient: cda.ins!, author: VIHFAuthor(author))
    }

    static func requestBuilder() throws -> ITI41RequestBuilder {
        ITI41RequestBuilder(endpoint: endpoint, signer: SubmissionSetSigner(credentials: try credentials()))
    }

    /// A complete request for one new document of `kind`.
    static func request(kind: DocumentKind, flags: [MetaDMPMSSFlag] = [], replacing: CDADocument? = nil) throws -> (CDADocument, ITI41Request) {
        let m = metadata(kind: kind, flags: flags, replacing: replacing)
        let document = try cda(m)
        let submission = try mapper.submission(cda: document, metadata: m)
        return (document, try requestBuilder().build(submission, vihf: try vihf(for: document)))
    }
}

enum XDSValidate {
    static let tool = TestPaths.shared.appendingPathComponent("tools/xds-validate").path

    /// Runs the shared strict checker on a raw MTOM body.
    static func run(body: URL, contentType: String) throws -> ProcessResult {
        try ProcessRunner.run(tool, ["--content-type", contentType, body.path])
    }

    static func run(_ request: ITI41Request, in directory: URL, name: String) throws -> ProcessResult {
        let file = directory.appendingPathComponent("\(name).mime")
        try request.body.write(to: file)
        return try run(body: file, contentType: request.body.contentType)
    }
}

/// The `xmlsec1` command line on what a request carries.
enum XMLSec1 {
    static var common: [String] { ["--verify", "--trusted-pem", Fixtures.pki("ca.pem").path, "--enabled-key-data", "x509"] }

    /// The XAdES submission set signature document (SignedInfo → Manifest, SignedProperties;
    /// the Manifest's `urn:oid:` references are checked by our verifier, which resolves them).
    static func verifySubmissionSetSignature(_ file: URL) throws -> ProcessResult {
        try ProcessRunner.run("xmlsec1", common + [
            "--ignore-manifests", "--id-attr:Id", "http://www.w3.org/2000/09/xmldsig#:Manifest",
            "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", file.path])
    }

    /// The VIHF assertion's enveloped signature, inside the SOAP envelope.
    static func verifyVIHF(envelope file: URL) throws -> ProcessResult {
        try ProcessRunner.run("xmlsec1", common + [
            "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", "--node-xpath",
            "//*[local-name()='Assertion']/*[local-name()='Signature']", file.path])
    }

    /// Splits a dumped MTOM request and verifies both signatures it carries.
    static func verifyDumped(body: URL, contentType: String) throws -> (vihf: ProcessResult, submissionSet: ProcessResult) {
        let parts = try MIMEMultipart.parse(try Data(contentsOf: body), boundary: MIMEMultipart.parameter("boundary", in: contentType) ?? "")
        let start = MIMEMultipart.parameter("start", in: contentType)?.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
        let envelope = try #require(parts.first { $0.contentID == start })
        let signature = try #require(parts.first { String(decoding: $0.body.prefix(300), as: UTF8.self).contains("<ds:Signature") })
        let envelopeFile = body.appendingPathExtension("envelope.xml"), signatureFile = body.appendingPathExtension("signature.xml")
        try envelope.body.write(to: envelopeFile)
        try signature.body.write(to: signatureFile)
        return (try verifyVIHF(envelope: envelopeFile), try verifySubmissionSetSignature(signatureFile))
    }
}
