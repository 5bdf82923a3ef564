import Foundation
import Testing
import TestSupport

@Suite("passerelle selfcheck")
struct SelfCheckTests {
    /// Runs `passerelle selfcheck` from the repository root, where its defaults point.
    func selfcheck(_ extra: [String] = []) throws -> ProcessResult {
        let binary = try #require(CLI.binary, "passerelle binary not found: run `swift build` (or set PASSERELLE_BIN)")
        return try ProcessRunner.run(binary, ["selfcheck"] + extra, currentDirectory: TestPaths.repositoryRoot)
    }

    @Test func passesOnTheEmbeddedDefaults() throws {
        let result = try selfcheck(["--pki", TestPaths.testPKI.path])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("selfcheck: all 9 checks passed"))
        for kind in ["ldl", "ordonnance", "cro", "cr-bio", "cr-imagerie"] {
            #expect(result.stdout.contains("ok   CDA \(kind)"), "\(kind) missing from:\n\(result.stdout)")
        }
        // Only the masked INS may appear.
        #expect(!result.stdout.contains("279035121518989"))
    }

    @Test func failsAndSaysWhichCheckWhenCertificatesAreMissing() throws {
        let empty = try TestPaths.temporaryDirectory("selfcheck")
        defer { try? FileManager.default.removeItem(at: empty) }
        let result = try selfcheck(["--pki", empty.path])
        #expect(result.status == 1)
        #expect(result.stdout.contains("FAIL certificates"))
        #expect(result.stdout.contains("FAIL signature"))
    }
}
