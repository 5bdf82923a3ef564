import ArgumentParser
import Foundation
import OpenSSLKit
import PasserelleCore
import Signing
import BenchSupport

/// Single-thread signature time for the submission set (XAdES over one document of
/// `--document-kb` KB) and the VIHF, with the test PKI's ORG_SIGN certificate (RSA-2048,
/// SHA-256, certificate checked against the CA and its CRL). Needs `Certificates/make-test-pki.sh`.
struct SignBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sign", abstract: "Submission set (XAdES) and VIHF signatures per second.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Size of the signed document, in KB.")
    var documentKb = 64

    func run() throws {
        let pki = TestPaths.testPKI
        let credentials = try SigningCredentials(KeyMaterialSource(
            authentication: nil, signing: pki.appendingPathComponent("org-sign.p12"),
            passphrase: .file(TestPaths.testPKIPassphraseFile),
            trustAnchors: pki.appendingPathComponent("ca.pem"), crls: [pki.appendingPathComponent("ca.crl.pem")]))

        let document = Data((0..<(documentKb * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let registryPackage = Data(String(repeating: "<rim:Slot name=\"x\"/>", count: 50).utf8)
        let signer = SubmissionSetSigner(credentials: credentials)
        var results: [BenchResult] = []
        results.append(try BenchResult.measure("sign.submission-set", iterations: options.iterations,
                                               details: ["document_bytes": document.count]) {
            _ = try signer.sign(
                submissionSet: ManifestItem(uniqueId: "1.2.250.1.999.1.1.2.1", content: .bytes(registryPackage)),
                documents: [ManifestItem(uniqueId: "1.2.250.1.999.1.1.3.1", content: .bytes(document))])
        })

        let configuration = try VIHFConfiguration(keys: [
            "identifiant_structure": "1100000001", "secteur_activite": "SA01", "lps_nom": "Passerelle",
            "lps_version": Passerelle.version, "lps_homologation_dmp": "BENCH", "role": "10^1.2.250.1.71.1.2.7^Médecin",
        ])
        let builder = VIHFAssertionBuilder(configuration: configuration, credentials: credentials)
        let ins = try INS("279035121518989", kind: .nirTest)
        let author = VIHFAuthor(identifier: "810000000001", displayName: "Dr BENCH")
        results.append(try BenchResult.measure("sign.vihf", iterations: options.iterations) {
            _ = try builder.assertion(patient: ins, author: author)
        })
        for index in results.indices {
            results[index].details["signs_per_s"] = Int((1000 / results[index].meanMs).rounded())
        }
        results.forEach { $0.printTableLine() }
        results.forEach { $0.printJSON() }
    }
}
