import IHE
import ArgumentParser
import CDA
import CurlKit
import DMP
import Foundation
import OpenSSLKit
import PasserelleCore
import SampleDocuments
import Signing
import TestEndpoints
import BenchSupport

/// ITI-41 throughput to the local DMP-style endpoint over mutual TLS (test PKI): requests
/// are built and signed first, then sent over one reused connection, then with
/// `--connections` at once. The endpoint runs in the same process and checks every request
/// strictly (XSD, signatures), so the figure is end-to-end, not client-only.
///
/// With `--endpoint URL` nothing is started: one `--large-mb` document is sent to an
/// endpoint run in another process (`passerelle-bench dmp-endpoint`), so the peak RSS of
/// this process (`/usr/bin/time -v`) is the client's alone.
struct DMPBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dmp", abstract: "ITI-41 documents per second to the local DMP endpoint.")

    @Option(help: "Documents per measurement.")
    var documents = 100
    @Option(help: "Concurrent connections for the second measurement.")
    var connections = 4
    @Option(help: "Send one document with a PDF of this many MB to --endpoint instead.")
    var largeMb: Int?
    @Option(help: "Endpoint URL for --large-mb (started with `passerelle-bench dmp-endpoint`).")
    var endpoint: String?

    func run() async throws {
        if let largeMb, let endpoint, let url = URL(string: endpoint) {
            let (client, builder) = try BenchDMP.client(url: url, connections: 1)
            let start = ContinuousClock.now
            let request = try BenchDMP.request(builder, kind: .imagingReport, pdfBytes: largeMb << 20)
            let built = ContinuousClock.now - start
            let peakAfterBuild = BenchDMP.peakRSSMB()
            let residentBeforeSend = BenchDMP.residentMB()
            // Measure the send alone: reset the peak (Linux: write 5 to clear_refs resets VmHWM).
            try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
            let result = await client.send(request)
            let sendPeak = BenchDMP.peakRSSMB()
            let total = ContinuousClock.now - start
            print("dmp.large  pdf=\(largeMb) MB body=\(request.body.length) bytes outcome=\(result.outcome) build=\(built) total=\(total)")
            print("dmp.large  peak RSS while building the CDA and request: \(peakAfterBuild) MB; resident before send: \(residentBeforeSend) MB; peak RSS during send: \(sendPeak) MB")
            return
        }
        let endpoint = try BenchDMP.endpoint()
        defer { endpoint.stop() }
        for c in [1, connections] {
            let (client, builder) = try BenchDMP.client(url: endpoint.url, connections: c)
            var requests: [ITI41Request] = []
            for i in 0..<(documents + c) { requests.append(try BenchDMP.request(builder, kind: DocumentKind.allCases[i % DocumentKind.allCases.count])) }
            // Warm-up, concurrently so that `c` connections are open before timing.
            await withTaskGroup(of: Void.self) { group in
                for r in requests.prefix(c) { group.addTask { _ = await client.send(r) } }
            }
            let before = endpoint.connectionCount
            let timed = Array(requests.dropFirst(c))
            let start = ContinuousClock.now
            let outcomes = await withTaskGroup(of: [SubmissionOutcome].self) { group in
                for lane in 0..<c {
                    group.addTask {
                        var out: [SubmissionOutcome] = []
                        for index in stride(from: lane, to: timed.count, by: c) { out.append(await client.send(timed[index]).outcome) }
                        return out
                    }
                }
                return await group.reduce(into: []) { $0 += $1 }
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let done = outcomes.filter(\.isDone).count
            print(String(format: "dmp.send   connections=%d documents=%d done=%d %.1f docs/s (new connections during the run: %d)",
                         c, timed.count, done, Double(timed.count) / seconds, endpoint.connectionCount - before))
        }
    }
}

/// Runs the local DMP-style endpoint until interrupted, printing its URL.
struct DMPEndpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dmp-endpoint", abstract: "Serve the local DMP endpoint (for `dmp --large-mb`).")
    @Option var port: UInt16 = 0

    func run() throws {
        let endpoint = try BenchDMP.endpoint(port: port)
        FileHandle.standardOutput.write(Data((endpoint.url.absoluteString + "\n").utf8))  // unbuffered: a script waits for it
        while true { Thread.sleep(forTimeInterval: 3600) }
    }
}

enum BenchDMP {
    /// VmHWM / VmRSS from /proc/self/status, in MB.
    static func status(_ key: String) -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix(key + ":") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }
    static func peakRSSMB() -> Int { status("VmHWM") }
    static func residentMB() -> Int { status("VmRSS") }

    static func pki(_ name: String) -> URL { TestPaths.testPKI.appendingPathComponent(name) }

    static func endpoint(port: UInt16 = 0) throws -> DMPTestEndpoint {
        try DMPTestEndpoint(DMPTestEndpoint.Configuration(
            serverIdentity: pki("server-localhost.p12"), passphrase: Passphrase.read(file: TestPaths.testPKIPassphraseFile),
            clientCA: pki("ca.pem"), schema: TestPaths.shared.appendingPathComponent("conformance/xds/XDS.b_DocumentRepository.xsd")), port: port)
    }

    static func client(url: URL, connections: Int) throws -> (DMPClient, ITI41RequestBuilder) {
        let tls = TLSClientOptions(caBundle: pki("ca.pem"), clientIdentity: .pkcs12(pki("org-auth.p12"), passphrase: TLSPassphrase(try Passphrase.read(file: TestPaths.testPKIPassphraseFile).reveal())))
        let client = try DMPClient(endpoint: url, tls: tls, maxConnections: connections)
        let credentials = try SigningCredentials(pkcs12: Data(contentsOf: pki("org-sign.p12")),
                                                 passphrase: Passphrase.read(file: TestPaths.testPKIPassphraseFile), trustStore: nil)
        return (client, ITI41RequestBuilder(endpoint: url, signer: SubmissionSetSigner(credentials: credentials)))
    }

    static let structure = SampleMetadata.structure
    static let author = SampleMetadata.author
    static let builder: CDABuilder = {
        var options = CDABuilder.Options(documentIDRoot: "1.2.250.1.999.1")
        options.maximumPDFBytes = 1 << 30
        return try! CDABuilder(templatesDirectory: TestPaths.templates, options: options)
    }()
    static let vihf: VIHFAssertionBuilder = {
        let credentials = try! SigningCredentials(pkcs12: Data(contentsOf: pki("org-sign.p12")),
                                                  passphrase: Passphrase.read(file: TestPaths.testPKIPassphraseFile), trustStore: nil)
        return VIHFAssertionBuilder(configuration: try! VIHFConfiguration(keys: [
            "identifiant_structure": "1750803447", "secteur_activite": "SA01", "lps_nom": "Passerelle", "lps_version": Passerelle.version,
            "lps_homologation_dmp": "BENCH", "role": "10^1.2.250.1.71.1.2.7^Médecin",
        ]), credentials: credentials)
    }()

    static func request(_ requestBuilder: ITI41RequestBuilder, kind: DocumentKind, pdfBytes: Int = 0) throws -> ITI41Request {
        let metadata = SampleMetadata.document(kind: kind, id: SampleMetadata.oidDocumentID())
        let cda = try builder.build(metadata: metadata, pdf: SamplePDF.make(text: "Benchmark", minimumBytes: pdfBytes))
        let mapper = DocumentEntryMapper(settings: SubmissionSettings(sourceId: "1.2.250.1.999.1", structure: structure))
        return try requestBuilder.build(try mapper.submission(cda: cda, metadata: metadata),
                                        vihf: try vihf.assertion(patient: cda.ins!, author: VIHFAuthor(author)))
    }
}
