import Foundation
import PasserelleCore
import Signing

/// `passerelle-bench sign [PKI_DIR] [SECONDS]`: single-thread signatures per second for the
/// submission set (XAdES, one 64 KiB document) and the VIHF, with the test PKI's ORG_SIGN
/// certificate (RSA-2048, SHA-256). Run from the repository root after
/// `Certificates/make-test-pki.sh`.
enum SignBenchmark {
    static func run(_ arguments: ArraySlice<String>) throws {
        let pki = URL(fileURLWithPath: arguments.first ?? "Certificates/test-pki")
        let seconds = arguments.dropFirst().first.flatMap(Double.init) ?? 3
        let credentials = try SigningCredentials(KeyMaterialSource(
            authentication: nil, signing: pki.appendingPathComponent("org-sign.p12"),
            passphrase: .file(pki.appendingPathComponent("passphrase.txt")),
            trustAnchors: pki.appendingPathComponent("ca.pem"), crls: [pki.appendingPathComponent("ca.crl.pem")]))

        let document = Data((0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let registryPackage = Data(String(repeating: "<rim:Slot name=\"x\"/>", count: 50).utf8)
        let signer = SubmissionSetSigner(credentials: credentials)
        try report("submission set (XAdES, 1 x 64 KiB document)", seconds: seconds) {
            _ = try signer.sign(
                submissionSet: ManifestItem(uniqueId: "1.2.250.1.999.1.1.2.1", content: .bytes(registryPackage)),
                documents: [ManifestItem(uniqueId: "1.2.250.1.999.1.1.3.1", content: .bytes(document))])
        }

        let configuration = try VIHFConfiguration(keys: [
            "identifiant_structure": "1100000001", "secteur_activite": "SA01", "lps_nom": "Passerelle",
            "lps_version": Passerelle.version, "lps_homologation_dmp": "BENCH", "role": "10^1.2.250.1.71.1.2.7^Médecin",
        ])
        let builder = VIHFAssertionBuilder(configuration: configuration, credentials: credentials)
        let ins = try INS("279035121518989", kind: .nirTest)
        let author = VIHFAuthor(identifier: "810000000001", displayName: "Dr BENCH")
        try report("VIHF assertion", seconds: seconds) {
            _ = try builder.assertion(patient: ins, author: author)
        }
    }

    private static func report(_ label: String, seconds: Double, _ body: () throws -> Void) rethrows {
        for _ in 0..<20 { try body() }  // warm-up
        var count = 0
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            try body()
            count += 1
        }
        let elapsed = Date().timeIntervalSince(start)
        print(String(format: "%@: %.0f signs/s (%d in %.2f s, %.3f ms each)", label, Double(count) / elapsed, count, elapsed,
                     elapsed * 1000 / Double(count)))
    }
}
