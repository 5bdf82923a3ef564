import Foundation
import Testing
import TestSupport

@Suite("config check: [vihf]")
struct VIHFConfigCheckTests {
    static let example = TestPaths.repositoryRoot.appendingPathComponent("docs/passerelle.example.toml")

    /// The example configuration with `transform` applied, written to a temporary file.
    func variant(_ transform: (String) -> String) throws -> (URL, URL) {
        let directory = try TestPaths.temporaryDirectory("vihf-config")
        let file = directory.appendingPathComponent("passerelle.toml")
        try transform(String(contentsOf: Self.example, encoding: .utf8)).write(to: file, atomically: true, encoding: .utf8)
        return (directory, file)
    }

    @Test func theExampleHasAValidVIHFSection() throws {
        let result = try CLI.run(["config", "check", "--file-only", "--config", Self.example.path])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("vihf") && result.stdout.contains("ok: Passerelle"))
    }

    @Test func aBadValueNamesFileLineAndKey() throws {
        let (directory, file) = try variant { $0.replacingOccurrences(of: "secteur_activite = \"SA01\"", with: "secteur_activite = \"XX01\"") }
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = try String(contentsOf: file, encoding: .utf8)
        let line = try #require(text.split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.hasPrefix("secteur_activite") }) + 1
        let result = try CLI.run(["config", "check", "--file-only", "--config", file.path])
        #expect(result.status == 1)
        #expect(result.stdout.contains("\(file.path):\(line): vihf.secteur_activite: 'XX01' is not a TRE_R02 code"), "\(result.stdout)")
    }

    @Test func anUnknownKeyIsRefused() throws {
        let (directory, file) = try variant { $0.replacingOccurrences(of: "lps_nom = ", with: "lps_name = ") }
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try CLI.run(["config", "check", "--file-only", "--config", file.path])
        #expect(result.status == 1)
        #expect(result.stdout.contains("vihf.lps_name: unknown key"), "\(result.stdout)")
    }

    @Test func theDMPNeedsAVIHFSection() throws {
        let (directory, file) = try variant { text in
            // Drop the [vihf] table: from its header to the next table.
            guard let start = text.range(of: "[vihf]"), let end = text.range(of: "[folders]") else { return text }
            return String(text[..<start.lowerBound] + text[end.lowerBound...])
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try CLI.run(["config", "check", "--file-only", "--config", file.path])
        #expect(result.status == 1)
        #expect(result.stdout.contains("[vihf] is missing; the DMP is enabled"), "\(result.stdout)")
    }
}
