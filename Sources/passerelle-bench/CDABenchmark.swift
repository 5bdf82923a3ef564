import ArgumentParser
import CDA
import Foundation
import PasserelleCore
import SampleDocuments
import BenchSupport
import XMLKit

/// Builds one CDA document for a PDF of `--pdf-kb` KB with the example sidecar
/// (docs/examples/sidecar-ldl.json), with and without the post-build verification.
struct CDABenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cda", abstract: "CDA N1 build time for a PDF body.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Size of the generated PDF, in KB.")
    var pdfKb = 200

    func run() throws {
        let sidecar = TestPaths.repositoryRoot.appendingPathComponent("docs/examples/sidecar-ldl.json")
        let metadata = try DocumentMetadata.decode(sidecar: Data(contentsOf: sidecar))
        let pdf = SamplePDF.make(minimumBytes: pdfKb * 1024)
        var results: [BenchResult] = []
        for verify in [false, true] {
            let builder = try CDABuilder(templatesDirectory: TestPaths.templates, options: .init(verify: verify))
            var size = 0
            var result = try BenchResult.measure(verify ? "cda.build+verify" : "cda.build", iterations: options.iterations,
                                                 details: ["pdf_bytes": pdf.count]) {
                size = try builder.build(metadata: metadata, pdf: pdf).data.count
            }
            result.details["cda_bytes"] = size
            results.append(result)
        }
        // The verification step alone: parse the built document and check its header.
        let built = try CDABuilder(templatesDirectory: TestPaths.templates).build(metadata: metadata, pdf: pdf).data
        results.append(try BenchResult.measure("cda.parse+header", iterations: options.iterations, details: ["cda_bytes": built.count]) {
            let header = CDAHeader.read(try XMLDocument.parse(built, options: CDAParseBudget.default))
            precondition(header.problems.isEmpty)
        })
        results.forEach { $0.printTableLine() }
        results.forEach { $0.printJSON() }
    }
}
