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

    /// The test PKI configuration (folders and journal are not touched by selfcheck).
    func configFile(in dir: URL) throws -> URL {
        let file = dir.appendingPathComponent("passerelle.toml")
        try TestConfiguration.withTestPKI().write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test("--config from any folder: the configuration's certificates, the templates found as run finds them ($PASSERELLE_TEMPLATES)")
    func withConfigFromATemporaryFolder() throws {
        let dir = try TestPaths.temporaryDirectory("selfcheck-cwd")
        defer { try? FileManager.default.removeItem(at: dir) }
        let binary = try #require(CLI.binary)
        let config = try configFile(in: dir)
        let templates = TestPaths.repositoryRoot.appendingPathComponent("Templates").path
        let r = try ProcessRunner.run(binary, ["selfcheck", "--config", config.path], environment: ["PASSERELLE_TEMPLATES": templates],
                                      currentDirectory: dir)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("selfcheck: all 9 checks passed"))
        #expect(!r.stdout.contains("279035121518989"))

        // The configuration's certificates are the ones checked: an expired signing certificate fails.
        let expired = dir.appendingPathComponent("expired.toml")
        try TestConfiguration.withTestPKI(signing: "expired-sign").write(to: expired, atomically: true, encoding: .utf8)
        let bad = try ProcessRunner.run(binary, ["selfcheck", "--config", expired.path], environment: ["PASSERELLE_TEMPLATES": templates],
                                        currentDirectory: dir)
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("FAIL certificates") && bad.stdout.contains("signing"), "\(bad.stdout)")
    }

    @Test("installed layout (bin/passerelle, share/passerelle/Templates), run from another folder: passes without any path option")
    func installedLayout() throws {
        let root = try TestPaths.temporaryDirectory("selfcheck-install")
        defer { try? FileManager.default.removeItem(at: root) }
        let binary = try #require(CLI.binary)
        let bin = root.appendingPathComponent("bin"), share = root.appendingPathComponent("share/passerelle")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: share, withIntermediateDirectories: true)
        let installed = bin.appendingPathComponent("passerelle")
        // A hard link (same file system) or a copy: the binary resolves share/ from its own path.
        if link(binary, installed.path) != 0 { try FileManager.default.copyItem(atPath: binary, toPath: installed.path) }
        try FileManager.default.copyItem(at: TestPaths.repositoryRoot.appendingPathComponent("Templates"),
                                         to: share.appendingPathComponent("Templates"))
        let elsewhere = root.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        let config = try configFile(in: root)
        let r = try ProcessRunner.run(installed.path, ["selfcheck", "--config", config.path], environment: ["PASSERELLE_TEMPLATES": ""],
                                      currentDirectory: elsewhere)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("selfcheck: all 9 checks passed"))

        // Without templates anywhere: the CDA line says where they were looked for.
        try FileManager.default.removeItem(at: share.appendingPathComponent("Templates"))
        let missing = try ProcessRunner.run(installed.path, ["selfcheck", "--config", config.path], environment: ["PASSERELLE_TEMPLATES": ""],
                                            currentDirectory: elsewhere)
        #expect(missing.status == 1)
        #expect(missing.stdout.contains("FAIL CDA") && missing.stdout.contains("share/passerelle/Templates"), "\(missing.stdout)")
    }

    @Test("installed layout without --config nor a test PKI, from an empty folder: a throwaway test PKI (removed after), the packaged CDA schema")
    func installedWithoutConfiguration() throws {
        let root = try TestPaths.temporaryDirectory("selfcheck-bare")
        defer { try? FileManager.default.removeItem(at: root) }
        let binary = try #require(CLI.binary)
        let fm = FileManager.default
        let bin = root.appendingPathComponent("bin"), share = root.appendingPathComponent("share/passerelle")
        try fm.createDirectory(at: bin, withIntermediateDirectories: true)
        try fm.createDirectory(at: share, withIntermediateDirectories: true)
        let installed = bin.appendingPathComponent("passerelle")
        if link(binary, installed.path) != 0 { try fm.copyItem(atPath: binary, toPath: installed.path) }
        // What scripts/package.sh puts in share/passerelle.
        try fm.copyItem(at: TestPaths.repositoryRoot.appendingPathComponent("Templates"), to: share.appendingPathComponent("Templates"))
        try fm.copyItem(at: TestPaths.shared.appendingPathComponent("conformance/cda/xsd/cda"), to: share.appendingPathComponent("cda"))
        try fm.copyItem(at: TestPaths.repositoryRoot.appendingPathComponent("Certificates/make-test-pki.sh"),
                        to: share.appendingPathComponent("make-test-pki.sh"))
        let elsewhere = root.appendingPathComponent("elsewhere")
        try fm.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        let r = try ProcessRunner.run(installed.path, ["selfcheck"], environment: ["PASSERELLE_TEMPLATES": "", "TMPDIR": root.path],
                                      currentDirectory: elsewhere)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("selfcheck: all 9 checks passed"), "\(r.stdout)")
        #expect(r.stdout.contains("throwaway test PKI"), "\(r.stdout)")
        #expect(r.stdout.contains("XSD + header rules valid"), "the packaged schema was not used:\n\(r.stdout)")
        let leftovers = try fm.contentsOfDirectory(atPath: root.path).filter { $0.hasPrefix("passerelle-selfcheck-") }
        #expect(leftovers.isEmpty, "the throwaway PKI was left behind: \(leftovers)")

        // Without the script: the certificate line says what to give instead.
        try fm.removeItem(at: share.appendingPathComponent("make-test-pki.sh"))
        let bare = try ProcessRunner.run(installed.path, ["selfcheck"], environment: ["PASSERELLE_TEMPLATES": "", "TMPDIR": root.path],
                                         currentDirectory: elsewhere)
        #expect(bare.status == 1)
        #expect(bare.stdout.contains("make-test-pki.sh is missing: give --config"), "\(bare.stdout)")
    }
}
