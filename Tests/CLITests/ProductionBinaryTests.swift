import Foundation
import Testing
import TestSupport

/// Product vs test code: the production `passerelle` executable holds no test endpoint, no demo
/// samples; those live in the demo-only `passerelle-testbed`, which `passerelle demo` runs.
@Suite("production binary holds no test code")
struct ProductionBinaryTests {
    /// Swift symbols start with `$s`, the length of their module's name and the name; type
    /// names inside are compressed (`SamplePDF` in `SampleDocuments` is `0A3PDF`), module
    /// names are not. The modules only the testbed (and the tests) may link:
    static let testOnlyModules = ["TestEndpoints", "passerelle_testbed", "TestSupport"]

    static func prefix(_ module: String) -> String { "$s\(module.utf8.count)\(module)" }

    static func symbols(_ binary: String) throws -> String {
        let result = try ProcessRunner.run("nm", [binary])
        #expect(result.status == 0, "nm \(binary): \(result.stderr)")
        return result.stdout
    }

    static var testbed: String? {
        guard let binary = CLI.binary else { return nil }
        let path = URL(fileURLWithPath: binary).deletingLastPathComponent().appendingPathComponent("passerelle-testbed").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    @Test func passerelleLinksNoTestEndpointNorDemoCode() throws {
        let binary = try #require(CLI.binary, "passerelle binary not found: run `swift build`")
        let symbols = try Self.symbols(binary).split(separator: "\n").map { $0.split(separator: " ").last.map(String.init) ?? "" }
        // The listing is real: the gateway, the CLI and the selfcheck's sample PDFs are there.
        for module in ["Gateway", "passerelle", "SampleDocuments"] {
            let count = symbols.filter { $0.hasPrefix(Self.prefix(module)) }.count
            #expect(count > 0, "no symbol of \(module) in nm \(binary): is it a passerelle binary?")
        }
        for module in Self.testOnlyModules {
            let found = symbols.filter { $0.hasPrefix(Self.prefix(module)) }
            #expect(found.isEmpty, "\(found.count) symbols of \(module) in the production binary, e.g. \(found.prefix(3))")
        }
        // Nor their text: the endpoint's and the demo's messages.
        let text = try ProcessRunner.run("strings", [binary]).stdout
        for message in ["/dmp/repository", "Passerelle demo:", "smtp_server.py"] {
            let found = text.contains(message)
            #expect(!found, "\(message) in the production binary")
        }
    }

    /// The same check on the testbed finds them: the test above can fail.
    @Test func theTestbedHoldsThem() throws {
        let testbed = try #require(Self.testbed, "passerelle-testbed not beside passerelle: run `swift build`")
        let symbols = try Self.symbols(testbed).split(separator: "\n").map { $0.split(separator: " ").last.map(String.init) ?? "" }
        for module in ["TestEndpoints", "passerelle_testbed"] {
            let count = symbols.filter { $0.hasPrefix(Self.prefix(module)) }.count
            #expect(count > 0, "no symbol of \(module) in the testbed")
        }
        let text = try ProcessRunner.run("strings", [testbed]).stdout
        let found = text.contains("/dmp/repository")
        #expect(found, "the endpoint's path is not in the testbed")
    }

    /// A production install has no testbed: `passerelle demo` says what is missing.
    @Test func demoWithoutTheTestbedSaysWhatIsMissing() throws {
        let binary = try #require(CLI.binary)
        let root = try TestPaths.temporaryDirectory("no-testbed")
        defer { try? FileManager.default.removeItem(at: root) }
        let copy = root.appendingPathComponent("passerelle")
        try FileManager.default.copyItem(atPath: binary, toPath: copy.path)
        let result = try ProcessRunner.run(copy.path, ["demo", "--folder", root.appendingPathComponent("demo-run").path],
                                           currentDirectory: TestPaths.repositoryRoot)
        #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stderr.contains("passerelle demo needs the passerelle-testbed executable (demo-only package)"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("demo-run").path))
    }
}
