import Foundation
import Testing
import TestSupport

/// The shipped systemd unit must be one `systemd-analyze verify` accepts without a warning:
/// systemd ignores a mistyped hardening value with a warning and still starts the service
/// unprotected, so warnings count as failures here.
@Suite("packaging/systemd/passerelle.service")
struct SystemdUnitTests {
    let unit = TestPaths.repositoryRoot.appendingPathComponent("packaging/systemd/passerelle.service")

    func verify(_ text: String) throws -> ProcessResult {
        let folder = try TestPaths.temporaryDirectory("systemd-unit")
        defer { try? FileManager.default.removeItem(at: folder) }
        let copy = folder.appendingPathComponent("passerelle.service")
        try text.write(to: copy, atomically: true, encoding: .utf8)
        return try ProcessRunner.run("/usr/bin/systemd-analyze", ["verify", copy.path])
    }

    /// The unit with ExecStart pointing at the binary just built (verify checks it is executable).
    func unitText() throws -> String {
        let binary = try #require(CLI.binary, "passerelle binary not found: run `swift build` (or set PASSERELLE_BIN)")
        return try String(contentsOf: unit, encoding: .utf8)
            .replacingOccurrences(of: "/usr/bin/passerelle", with: binary)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")))
    func verifiesWithoutWarnings() throws {
        let result = try verify(try unitText())
        #expect(result.status == 0)
        #expect(result.stdout.isEmpty && result.stderr.isEmpty, "systemd-analyze said:\n\(result.stdout)\(result.stderr)")
    }

    /// Guards the guard: a mistyped hardening value must be caught by the check above.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")))
    func aMistypedValueIsReported() throws {
        let broken = try unitText().replacingOccurrences(of: "ProtectSystem=strict", with: "ProtectSystem=strickt")
        let result = try verify(broken)
        #expect((result.stdout + result.stderr).contains("ProtectSystem") || (result.stdout + result.stderr).contains("protect system"))
    }

    @Test func hardeningIsPresent() throws {
        let text = try String(contentsOf: unit, encoding: .utf8)
        for line in ["User=passerelle", "ProtectSystem=strict", "NoNewPrivileges=yes", "UMask=0077",
                     "ExecStartPre=/usr/bin/passerelle config check", "ExecStart=/usr/bin/passerelle run",
                     "ReadWritePaths=/var/lib/passerelle/inbox /var/lib/passerelle/work /var/lib/passerelle/error /var/lib/passerelle/done /var/lib/passerelle/journal"] {
            #expect(text.contains("\n\(line)\n"), "missing: \(line)")
        }
    }
}
