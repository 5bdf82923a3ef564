import CDA
import Foundation
import Gateway
import Journal
import OpenSSLKit
import PasserelleCore
import TestEndpoints
import TestSupport

/// A gateway installation in a temporary folder, sending to a local DMP-style endpoint over
/// mutual TLS with the test PKI.
final class Harness: @unchecked Sendable {
    let root: URL
    let endpoint: DMPTestEndpoint
    var inbox: URL { root.appendingPathComponent("inbox") }
    var error: URL { root.appendingPathComponent("error") }
    var done: URL { root.appendingPathComponent("done") }
    var work: URL { root.appendingPathComponent("work") }
    var journalPath: String { root.appendingPathComponent("journal.sqlite").path }
    var configPath: String { root.appendingPathComponent("passerelle.toml").path }
    /// More `[folders]` keys (written by ``writeConfiguration(extra:lease:quiet:journal:)``).
    var folders = ""
    /// `[intake] language`: "en" for the tests written against the English texts; nil leaves the
    /// key out (the default, French).
    var language: String?

    /// - Parameter journal: the body of `[journal]` (SQLite beside the configuration by default).
    /// - Parameter folders: more `[folders]` keys.
    /// - Parameter language: `[intake] language` (nil: left out, French).
    init(endpoint: DMPTestEndpoint? = nil, extra: String = "", lease: Int = 10, quiet: Int = 1,
         journal: String = "backend = \"sqlite\"\npath = \"journal.sqlite\"", folders: String = "", language: String? = "en") throws {
        root = try TestPaths.temporaryDirectory("passerelle-gateway")
        self.endpoint = try endpoint ?? Self.endpoint()
        self.folders = folders
        self.language = language
        try writeConfiguration(extra: extra, lease: lease, quiet: quiet, journal: journal)
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
    }

    static func endpoint(port: UInt16 = 0) throws -> DMPTestEndpoint {
        try DMPTestEndpoint(DMPTestEndpoint.Configuration(
            serverIdentity: TestPaths.testPKI.appendingPathComponent("server-localhost.p12"),
            passphrase: Passphrase.read(file: TestPaths.testPKIPassphraseFile),
            clientCA: TestPaths.testPKI.appendingPathComponent("ca.pem"),
            schema: TestPaths.shared.appendingPathComponent("conformance/xds/XDS.b_DocumentRepository.xsd")), port: port)
    }

    func writeConfiguration(extra: String, lease: Int, quiet: Int,
                            journal: String = "backend = \"sqlite\"\npath = \"journal.sqlite\"") throws {
        let pki = TestPaths.testPKI.path
        let text = """
        [structure]
        finess = "750803447"
        name = "Hôpital de démonstration"
        oid = "1.2.250.1.999.1"

        [certificates]
        authentication = "\(pki)/org-auth.p12"
        signing = "\(pki)/org-sign.p12"
        passphrase_file = "\(TestPaths.testPKIPassphraseFile.path)"
        trust_anchors = "\(pki)/ca.pem"

        [dmp]
        enabled = true
        endpoint = "\(endpoint.url.absoluteString)"
        timeout_seconds = 8
        max_connections = 2

        [mssante]
        enabled = false

        [vihf]
        identifiant_structure = "1750803447"
        secteur_activite = "SA01"
        lps_nom = "Passerelle"
        lps_version = "1.0.0"
        lps_homologation_dmp = "HOMOLOGATION-TEST-1"
        role = "10^1.2.250.1.71.1.2.7^Médecin"

        [folders]
        inbox = "inbox"
        work = "work"
        error = "error"
        done = "done"
        quiet_period_seconds = \(quiet)
        \(folders)

        [journal]
        \(journal)
        \(language.map { "\n[intake]\nlanguage = \"\($0)\"\n" } ?? "")
        [service]
        lease_seconds = \(lease)
        shutdown_timeout_seconds = 10
        retry_initial_seconds = 1
        retry_max_seconds = 2

        \(extra)
        """
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    func configuration() throws -> PasserelleConfiguration { try PasserelleConfiguration.load(from: configPath) }

    func service() throws -> GatewayService {
        try GatewayService.make(configuration: try configuration(), templates: TestPaths.templates, pollInterval: 0.1)
    }

    func journal() throws -> SQLiteJournalStore {
        try SQLiteJournalStore(path: journalPath, blobs: BlobStore(root: Journals.blobFolder(forDatabase: journalPath)))
    }

    /// Writes a file the way producers should: under a partial name, then renamed in.
    func drop(_ name: String, _ data: Data) throws {
        let partial = inbox.appendingPathComponent(name + ".part")
        try data.write(to: partial)
        try FileManager.default.moveItem(at: partial, to: inbox.appendingPathComponent(name))
    }

    func drop(_ name: String, sidecar metadata: DocumentMetadata) throws {
        let encoder = JSONEncoder()
        try drop(name, try encoder.encode(metadata))
    }

    func files(in folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }

    func cleanUp() {
        endpoint.stop()
        try? FileManager.default.removeItem(at: root)
    }

    /// Polls `condition` every 100 ms until it holds or `timeout` passes.
    static func waitUntil(timeout: TimeInterval, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return true }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        return try await condition()
    }

    /// Runs a process on a thread of its own: waiting for it on the cooperative pool (two
    /// threads on a 2-core machine) would starve the service the process talks to.
    static func runOffPool(_ executable: String, _ arguments: [String], stdin: Data? = nil) async throws -> ProcessResult {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try ProcessRunner.run(executable, arguments, stdin: stdin) })
            }
        }
    }

    static let fixtures = TestPaths.repositoryRoot.appendingPathComponent("Tests/IntakeTests/Fixtures")

    static let adtA01 = [
        "MSH|^~\\&|GAM|750803447|PASSERELLE|CHU_X|20231003083000||ADT^A01^ADT_A01|ADT1|P|2.5|||||FRA|8859/15",
        "EVN||20231003083000",
        "PID|1||123456^^^CHU_X&1.2.250.1.999.1.1&ISO^PI||TESTINS^MARIE^^^^^L||19790315|F||||||||||AN1^^^CHU_X&1.2.250.1.999.1.3&ISO^AN",
        "PV1|1|I|CARDIO^^^750803447||||||||||||||||V100^^^CHU_X&1.2.250.1.999.1.2&ISO^VN|||||||||||||||||||||||||20231003081500",
    ].joined(separator: "\r")
}

/// Documents for the tests.
enum Documents {
    static func metadata(_ kind: DocumentKind = .dischargeLetter, id: InstanceIdentifier? = SampleMetadata.oidDocumentID()) -> DocumentMetadata {
        SampleMetadata.document(kind: kind, id: id, destinations: [.dmp])
    }

    static func pdf(_ text: String = "Compte rendu de test") -> Data { TestPDF.make(text: text) }

    /// The ANS ORU^R01 example made sendable: a real CDA of its patient in OBX-5, a qualified
    /// identity (PID-32), a valid RPPS for the sender. Returns the message and the document id.
    /// `transform` changes the CDA before it goes into OBX-5 (hostile variants).
    static func oru(_ example: Data, kind: DocumentKind = .biologyReport,
                    transform: (Data) -> Data = { $0 }) throws -> (Data, InstanceIdentifier) {
        var metadata = SampleMetadata.document(kind: kind, id: SampleMetadata.oidDocumentID())
        metadata.patient.ipp = LocalIdentifier(value: "123456", authority: "1.2.250.1.999.1.1")
        let built = try builder.build(metadata: metadata, pdf: pdf("Biologie HL7"))
        let cda = (data: transform(built.data), id: built.id)
        var segments = String(decoding: example, as: UTF8.self).split(separator: "\r", omittingEmptySubsequences: true).map(String.init)
        for i in segments.indices {
            if segments[i].hasPrefix("PID|") {
                var fields = segments[i].split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                while fields.count <= 32 { fields.append("") }
                fields[32] = "QUAL"
                segments[i] = fields.joined(separator: "|")
            }
            segments[i] = segments[i]
                .replacingOccurrences(of: "^TEXT^XML^Base64^RG9jdW1lbnQgbcOpZGljYWwgYXUgZm 9ybWF0IENEQQ", with: "^TEXT^XML^Base64^" + cda.data.base64EncodedString())
                .replacingOccurrences(of: "801234567866", with: "801234567897")
        }
        return (Data(segments.joined(separator: "\r").utf8), metadata.id!)
    }

    static let builder: CDABuilder = {
        try! CDABuilder(templatesDirectory: TestPaths.templates, options: CDABuilder.Options(documentIDRoot: "1.2.250.1.999.1"))
    }()
}
