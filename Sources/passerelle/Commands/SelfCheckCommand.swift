import ArgumentParser
import CDA
import CurlKit
import Foundation
import OpenSSLKit
import PasserelleCore
import SampleDocuments
import Signing

/// `passerelle selfcheck` — proves, on embedded defaults, that this installation works end to
/// end as far as it can without a network: the C libraries load, the certificates check out,
/// a document of each kind builds and validates, a submission set signs and verifies.
struct SelfCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfcheck",
        abstract: "Check this installation: libraries, certificates, CDA build and validation, signatures.",
        discussion: """
        Without --config, runs on embedded defaults: the test PKI (--pki; Certificates/test-pki \
        from the repository root, else a throwaway one made in a temporary folder with \
        make-test-pki.sh and the openssl command, removed afterwards), the built-in sample \
        sidecar, generated sample PDFs, the templates and, when present, the official CDA \
        schema (../shared/conformance/cda/xsd/cda/CDA_extended.xsd from the repository root, \
        else share/passerelle/cda/CDA_extended.xsd of the install).

        With --config FILE (from any folder, e.g. once installed): the certificates of \
        [certificates] (their passphrase as the service reads it) and the schema of [cda] schema. \
        The templates are found as `passerelle run` finds them: --templates, \
        $PASSERELLE_TEMPLATES, ./Templates, then share/passerelle/Templates of the install. \
        Nothing is sent anywhere.

        Exit codes: 0 every check passed, 1 a check failed (the line says which and why).
        """
    )

    @Option(name: .long, help: ArgumentHelp("Check this configuration's certificates and CDA schema instead of the test PKI's.",
                                            valueName: "file"))
    var config: String?

    @OptionGroup var material: SampleMaterialOptions

    @Option(name: .long, help: ArgumentHelp(
        "CDA XSD; the XSD step is skipped when the file is absent. Defaults to [cda] schema with --config, else the official schema (../shared or share/passerelle/cda).",
        valueName: "file"))
    var schema: String?

    @OptionGroup var logging: LogOptions

    private struct Outcome {
        var check: String
        var passed: Bool
        var detail: String
    }

    func run() async throws {
        var outcomes: [Outcome] = []
        func record(_ check: String, _ body: () throws -> String) {
            do { outcomes.append(Outcome(check: check, passed: true, detail: try body())) } catch {
                outcomes.append(Outcome(check: check, passed: false, detail: String(describing: error)))
            }
        }
        var configuration: PasserelleConfiguration?
        if let config {
            do { configuration = try PasserelleConfiguration.load(from: config) } catch {
                printError("Configuration \(config) is invalid:")
                for problem in error.problems { printError("  \(problem)") }
                throw ExitCode.failure
            }
        }
        // Without --config nor --pki: the checkout's test PKI, else (an install) a throwaway one.
        var throwawayPKI: URL?
        defer { if let throwawayPKI { try? FileManager.default.removeItem(at: throwawayPKI.deletingLastPathComponent()) } }
        let pkiURL: URL
        if let pki = material.pki {
            pkiURL = URL(fileURLWithPath: pki)
        } else if configuration != nil || FileManager.default.fileExists(atPath: Self.checkoutPKI) {
            pkiURL = URL(fileURLWithPath: Self.checkoutPKI)
        } else {
            do {
                pkiURL = try ThrowawayPKI.make()
                throwawayPKI = pkiURL
                print("selfcheck: no --config: certificates and signatures checked on a throwaway test PKI (\(pkiURL.path), removed afterwards)")
            } catch {
                pkiURL = URL(fileURLWithPath: Self.checkoutPKI)
                print("selfcheck: no --config and no test PKI: \(error)")
            }
        }
        func pkiFile(_ name: String) -> URL { pkiURL.appendingPathComponent(name) }
        let schema: String? = if let explicit = self.schema { explicit } else if let configuration { configuration.cda.schema } else {
            Optional(DataFiles.locate(DataFiles.cdaSchema).path)
        }
        let templates = BuildCommand.templatesDirectory(material.templates)

        record("libraries") { "libcurl \(CurlLibrary.version)" }

        record("INS") {
            let ins = try INS("279035121518989", oid: INSKind.nirTest.oid)
            let traits = IdentityTraits(birthDate: CalendarDate(year: 1979, month: 3, day: 28), sex: .female, birthPlace: "51215")
            try traits.checkConsistency(with: ins)
            return "ANS test INS \(ins.masked) valid, consistent with its traits"
        }

        let keys = configuration.map { KeyMaterialSource($0.certificates) } ?? KeyMaterialSource(
            authentication: pkiFile("org-auth.p12"), signing: pkiFile("org-sign.p12"),
            passphrase: .file(pkiFile("passphrase.txt")), trustAnchors: pkiFile("ca.pem"), crls: [pkiFile("ca.crl.pem")])
        record("certificates") {
            let summary = CertificateCheck.run(keys, warningDays: configuration?.certificates.expiryWarningDays ?? 30)
            let line = summary.reports.map { "\($0.label) \($0.state)" }.joined(separator: ", ")
            guard summary.state == .ok else {
                throw SelfCheckFailure(summary.reports.map { "\($0.label): \($0.status)" }.joined(separator: "; "))
            }
            return line
        }

        var built: [CDADocument] = []
        do {
            let sidecar = try material.sidecar.map { try Data(contentsOf: URL(fileURLWithPath: $0)) } ?? SampleSidecar.ldl
            let sample = try DocumentMetadata.decodeValidated(sidecar: sidecar)
            let builder: CDABuilder
            do { builder = try CDABuilder(templatesDirectory: templates) } catch {
                throw SelfCheckFailure("templates \(templates.path): \(error): give --templates or $PASSERELLE_TEMPLATES, "
                                       + "or install them in share/passerelle/Templates beside the executable")
            }
            let schemaURL = schema.flatMap { FileManager.default.fileExists(atPath: $0) ? URL(fileURLWithPath: $0) : nil }
            let validator = try CDAValidator(schema: schemaURL)
            for kind in DocumentKind.allCases {
                record("CDA \(kind.shortName)") {
                    var metadata = sample
                    metadata.kind = kind
                    // A fresh document under the sample's root: each kind is its own document.
                    // A pure OID (no extension): the signature's Manifest references it as urn:oid:.
                    let root = sample.id?.root ?? "1.2.250.1.999.1"
                    metadata.id = InstanceIdentifier(root: "\(root).\(UInt32.random(in: 1...UInt32.max))")
                    metadata.setID = nil
                    let document = try builder.build(
                        metadata: metadata, pdf: SamplePDF.make(text: "Passerelle selfcheck: \(kind.displayName)"))
                    let report = validator.validate(document.data, file: kind.shortName)
                    guard report.isValid else { throw SelfCheckFailure(report.description) }
                    built.append(document)
                    return "\(document.data.count) bytes, \(schemaURL == nil ? "header rules (no XSD found)" : "XSD + header rules") valid"
                }
            }
        } catch {
            outcomes.append(Outcome(check: "CDA", passed: false, detail: String(describing: error)))
        }

        record("signature") {
            guard !built.isEmpty else { throw SelfCheckFailure("no document was built to sign") }
            let credentials = try SigningCredentials(keys)
            let submissionSet = ManifestItem(uniqueId: "1.2.250.1.999.1.9.\(UInt32.random(in: 1...UInt32.max))",
                                             content: .bytes(Data("selfcheck submission set".utf8)))
            let documents = built.map { ManifestItem(uniqueId: $0.id.root, content: .bytes($0.data)) }
            let signature = try SubmissionSetSigner(credentials: credentials).sign(submissionSet: submissionSet, documents: documents)
            var contents: [String: Data] = [:]
            for item in [submissionSet] + documents { if case .bytes(let data) = item.content { contents[item.uniqueId] = data } }
            let report = try SubmissionSetSignatureVerifier(trustAnchorFiles: [keys.trustAnchors])
                .verify(signature, documents: contents)
            guard report.isValid else { throw SelfCheckFailure(report.problems.joined(separator: "; ")) }
            return "XAdES submission set over \(documents.count) documents signed and verified"
        }

        let width = outcomes.map(\.check.count).max() ?? 0
        for outcome in outcomes {
            let name = outcome.check.padding(toLength: width, withPad: " ", startingAt: 0)
            print("\(outcome.passed ? "ok  " : "FAIL") \(name)  \(outcome.detail)")
        }
        let failed = outcomes.filter { !$0.passed }.count
        print(failed == 0 ? "selfcheck: all \(outcomes.count) checks passed" : "selfcheck: \(failed) of \(outcomes.count) checks failed")
        if failed > 0 { throw ExitCode(1) }
    }
}

extension SelfCheckCommand {
    /// Where a repository checkout keeps its test PKI (Certificates/make-test-pki.sh).
    static let checkoutPKI = "Certificates/test-pki"
}

/// A test PKI made for one selfcheck run in a private temporary folder, with the
/// make-test-pki.sh that DataFiles finds (the checkout's or share/passerelle's) and the
/// openssl command: nothing of it is a real structure's key.
enum ThrowawayPKI {
    static func make() throws -> URL {
        let script = DataFiles.locate(DataFiles.testPKIScript)
        guard FileManager.default.isExecutableFile(atPath: script.path) else {
            throw SelfCheckFailure("\(script.path) is missing: give --config (the installation's certificates) or --pki DIR")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("passerelle-selfcheck-\(UUID.random().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        let out = folder.appendingPathComponent("test-pki")
        let process = Process()
        process.executableURL = script
        process.arguments = [out.path]
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        do { try process.run() } catch {
            try? FileManager.default.removeItem(at: folder)
            throw SelfCheckFailure("cannot run \(script.path): \(error.localizedDescription)")
        }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            try? FileManager.default.removeItem(at: folder)
            throw SelfCheckFailure("\(script.path) failed (exit \(process.terminationStatus)): \(text.suffix(300)); "
                                   + "it needs the openssl command (apt install openssl)")
        }
        return out
    }
}

private struct SelfCheckFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
