import CDA
import DMP
import Foundation
import OpenSSLKit
import PasserelleCore
import Signing
import TestSupport

/// Test documents (QUAL identity of the ANS test patient), test PKI credentials, validators.
enum Fixtures {
    static let structureOID = "1.2.250.1.999.1"
    static let endpoint = URL(string: "https://localhost/dmp/repository")!

    static let author = SampleMetadata.author
    static let structure = SampleMetadata.structure

    static func metadata(kind: DocumentKind, flags: [MetaDMPMSSFlag] = [], replacing: CDADocument? = nil) -> DocumentMetadata {
        var m = SampleMetadata.document(kind: kind, id: SampleMetadata.oidDocumentID(root: structureOID), flags: flags)
        if let replacing {
            m.action = .replace
            m.parentID = replacing.id
            m.setID = replacing.setID
            m.versionNumber = replacing.versionNumber + 1
        }
        return m
    }

    static let cdaBuilder: CDABuilder = {
        try! CDABuilder(templatesDirectory: TestPaths.templates, options: CDABuilder.Options(documentIDRoot: structureOID))
    }()

    static func cda(_ metadata: DocumentMetadata, pdfBytes: Int = 0) throws -> CDADocument {
        try cdaBuilder.build(metadata: metadata, pdf: TestPDF.make(text: "Compte rendu de test", minimumBytes: pdfBytes))
    }

    static let mapper = DocumentEntryMapper(settings: DMPSubmissionSettings(sourceId: structureOID, structure: structure))

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
