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
        for line in ["User=passerelle", "ProtectSystem=strict", "NoNewPrivileges=yes", "UMask=0077", "PrivateTmp=yes", "ProtectHome=yes",
                     "CapabilityBoundingSet=", "MemoryDenyWriteExecute=yes",
                     "ExecStartPre=/usr/bin/passerelle config check", "ExecStart=/usr/bin/passerelle run",
                     "ReadWritePaths=/var/lib/passerelle/inbox /var/lib/passerelle/work /var/lib/passerelle/error /var/lib/passerelle/done /var/lib/passerelle/journal"] {
            #expect(text.contains("\n\(line)\n"), "missing: \(line)")
        }
    }

    /// `systemd-analyze security` offline (systemd ≥ 250): the unit's exposure score, 0 (most
    /// protected) to 10. 1.2 when written; a removed hardening line raises it above 2.0.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")))
    func exposureStaysLow() throws {
        func exposure(_ text: String) throws -> Double? {
            let folder = try TestPaths.temporaryDirectory("systemd-unit")
            defer { try? FileManager.default.removeItem(at: folder) }
            let copy = folder.appendingPathComponent("passerelle.service")
            try text.write(to: copy, atomically: true, encoding: .utf8)
            let r = try ProcessRunner.run("/usr/bin/systemd-analyze", ["security", "--offline=yes", copy.path])
            let line = r.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") }
            return line.flatMap { $0.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) } }
        }
        let text = try String(contentsOf: unit, encoding: .utf8)
        let score = try #require(try exposure(text), "no exposure level in systemd-analyze's output")
        #expect(score <= 2.0, "exposure \(score)")
        // The guard can fail: without the system-call filter and the capability set, the score rises.
        let weaker = text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("SystemCallFilter=") && !$0.hasPrefix("CapabilityBoundingSet=") && !$0.hasPrefix("PrivateDevices=") }
            .joined(separator: "\n")
        let weakerScore = try #require(try exposure(weaker))
        #expect(weakerScore > 2.0, "exposure without the filter and capability lines: \(weakerScore)")
    }
}

