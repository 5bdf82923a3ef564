import Foundation
import Testing
import TestSupport

/// Product vs test code: the production `passerelle` executable holds no test endpoint, no demo
/// samples; those live in the demo-only `passerelle-testbed`, which `passerelle demo` runs.
@Suite("production binary holds no test code")
struct ProductionBinaryTests {
    /// What only the testbed (and the tests) may hold: the modules and types of the test
    /// endpoints and the demo, as they appear in mangled Swift symbol names.
    static let testOnly = ["TestEndpoints", "DMPTestEndpoint", "LocalSMTPRelay", "SampleHL7", "LocalGatewayConfiguration",
                           "ITI41Check", "DemoSamples", "DemoEnvironment", "passerelle_testbed"]

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
        let symbols = try Self.symbols(binary)
        // The listing is real: the gateway, the CLI and the selfcheck's sample PDFs are there.
        for present in ["GatewayService", "SelfCheckCommand", "SamplePDF"] {
            #expect(symbols.contains(present), "\(present) missing from nm \(binary): is it a passerelle binary?")
        }
        for name in Self.testOnly {
            let lines = symbols.split(separator: "\n").filter { $0.contains(name) }
            #expect(lines.isEmpty, "\(name) in the production binary: \(lines.prefix(3))")
        }
        // Nor their text: the endpoint's and the demo's messages.
        let text = try ProcessRunner.run("strings", [binary]).stdout
        for message in ["/dmp/repository", "Passerelle demo:", "smtp_server.py"] {
            #expect(!text.contains(message), "\(message) in the production binary")
        }
    }

    /// The same check on the testbed finds them: the test above can fail.
    @Test func theTestbedHoldsThem() throws {
        let testbed = try #require(Self.testbed, "passerelle-testbed not beside passerelle: run `swift build`")
        let symbols = try Self.symbols(testbed)
        for name in ["DMPTestEndpoint", "LocalSMTPRelay", "DemoSamples"] {
            #expect(symbols.contains(name), "\(name) missing from the testbed")
        }
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
