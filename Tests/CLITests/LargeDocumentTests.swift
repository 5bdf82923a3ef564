import Foundation
import Testing
import TestSupport

/// One large PDF through a real `passerelle run` (intake → journal → CDA → XSD → signatures →
/// DMP ITI-41 and MSSanté SMTP), driven by `passerelle-bench large`: the document must arrive
/// intact (the relay's mail is opened and compared) and the gateway's peak RSS may grow by
/// little more than the PDF itself (held once, at intake). The old in-memory path grew by
/// about 18 times the PDF's size, so a copy of the PDF or the CDA coming back fails this.
///
/// `PASSERELLE_LARGE_MB` sets the size (default 20 MB, about 15 s; 50 for the figure).
@Suite(.serialized) struct LargeDocumentTests {
    static var megabytes: Int { Int(ProcessInfo.processInfo.environment["PASSERELLE_LARGE_MB"] ?? "") ?? 20 }

    @Test func largePDFGoesTheWholeWayInBoundedMemory() throws {
        let passerelle = try #require(CLI.binary, "passerelle binary not found: run `swift build` (or set PASSERELLE_BIN)")
        let bench = URL(fileURLWithPath: passerelle).deletingLastPathComponent().appendingPathComponent("passerelle-bench").path
        try #require(FileManager.default.isExecutableFile(atPath: bench), "passerelle-bench not built next to \(passerelle): swift build")
        let mb = Self.megabytes
        // The PDF once (read at intake) plus 16 MB for buffers, TLS, the schema's SAX pass…
        let allowed = mb + 16
        let result = try ProcessRunner.run(bench, ["large", "--mb", String(mb), "--passerelle", passerelle, "--timeout", "240",
                                                   "--max-growth-mb", String(allowed)],
                                           currentDirectory: TestPaths.repositoryRoot)
        #expect(result.succeeded, "passerelle-bench large failed:\n\(result.stdout)\n\(result.stderr)")
        let json = try #require(result.stdout.split(separator: "\n").last { $0.hasPrefix("{") })
        let figures = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Int])
        let growth = try #require(figures["growth_mb"])
        #expect(growth <= allowed, "peak RSS grew by \(growth) MB for a \(mb) MB PDF (allowed \(allowed) MB)")
        #expect(result.stdout.contains("mail at the relay: PDF and XDM CDA identical"), "\(result.stdout)")
        #expect(result.stdout.contains("dmp acknowledged"), "\(result.stdout)")
    }
}
