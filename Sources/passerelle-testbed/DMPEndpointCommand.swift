import ArgumentParser
import Foundation
import OpenSSLKit
import TestEndpoints

/// `passerelle-testbed dmp-endpoint` — the strict DMP-style endpoint as a process of its own, for
/// trying a `passerelle run` by hand (its `[dmp] endpoint` / `registry_endpoint` are printed).
struct DMPEndpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmp-endpoint",
        abstract: "Run the local DMP-style ITI-41 / ITI-57 endpoint (mutual TLS, test CA) until Ctrl-C / SIGTERM.",
        discussion: """
        Listens on 127.0.0.1 (https://localhost:<port>/dmp/repository and /dmp/registry) with \
        server-localhost.p12 of the test PKI, asks for a client certificate from its CA, checks \
        every request against the IHE XDS.b schema and the DMP's rules, and answers as the DMP \
        does. Prints one line `endpoint <repository URL> registry <registry URL>` once it \
        listens. With --folder, each exchange is written to <folder>/requests/ and the stored \
        entries to <folder>/stored.tsv when it stops.

        Exit codes: 0 stopped on a signal, 1 cannot start.
        """
    )

    @Option(name: .long, help: ArgumentHelp("Test PKI folder (Certificates/make-test-pki.sh).", valueName: "dir"))
    var pki = "Certificates/test-pki"

    @Option(name: .long, help: ArgumentHelp("IHE XDS.b repository schema requests are checked with.", valueName: "file"))
    var xdsSchema = "../shared/conformance/xds/XDS.b_DocumentRepository.xsd"

    @Option(name: .long, help: ArgumentHelp("Port on 127.0.0.1 (0: any free port).", valueName: "port"))
    var port: Int = 0

    @Option(name: .long, help: ArgumentHelp("Folder for the requests received and the stored entries (created 0700).", valueName: "dir"))
    var folder: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
    }

    func run() async throws {
        let pkiURL = URL(fileURLWithPath: pki)
        let folderURL = folder.map { URL(fileURLWithPath: $0).standardizedFileURL }
        let endpoint: DMPTestEndpoint
        do {
            guard FileManager.default.fileExists(atPath: xdsSchema) else {
                throw DemoError("the IHE XDS.b schema is not at \(xdsSchema): give --xds-schema")
            }
            var requests: URL?
            if let folderURL {
                requests = folderURL.appendingPathComponent("requests")
                try FileManager.default.createDirectory(at: requests!, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            endpoint = try DMPTestEndpoint(DMPTestEndpoint.Configuration(
                serverIdentity: pkiURL.appendingPathComponent("server-localhost.p12"),
                passphrase: Passphrase.read(file: pkiURL.appendingPathComponent("passphrase.txt")),
                clientCA: pkiURL.appendingPathComponent("ca.pem"), schema: URL(fileURLWithPath: xdsSchema), dumpDirectory: requests),
                port: UInt16(port))
        } catch {
            printError("passerelle-testbed dmp-endpoint: \(error)")
            throw ExitCode.failure
        }
        let signalled = WakeOnce()
        let sources = StopSignals.install { signalled.fire() }
        defer { sources.forEach { $0.cancel() } }
        print("endpoint \(endpoint.url.absoluteString) registry \(endpoint.registryURL.absoluteString)")
        fflush(nil)
        await signalled.wait()
        endpoint.stop()
        if let folderURL {
            try Data(endpoint.storedTable.utf8).write(to: folderURL.appendingPathComponent("stored.tsv"), options: .atomic)
        }
    }
}

extension DMPTestEndpoint {
    /// The stored entries as TSV, one per line (no patient id: it carries the INS).
    var storedTable: String {
        var text = "uniqueId\tstatus\tmimeType\tsize\tsha1\n"
        for d in storedDocuments.sorted(by: { $0.uniqueId < $1.uniqueId }) {
            text += "\(d.uniqueId)\t\(d.status.shortName)\t\(d.mimeType)\t\(d.size)\t\(d.sha1)\n"
        }
        return text
    }
}
