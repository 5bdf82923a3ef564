import ArgumentParser
import Dispatch
import Foundation

/// The repository material `selfcheck` runs on: the test PKI, the CDA templates and the sample
/// sidecar (paths relative to the repository root; `passerelle-testbed demo` has the same defaults).
struct SampleMaterialOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Test PKI folder.", valueName: "dir"))
    var pki = "Certificates/test-pki"

    @Option(name: .long, help: ArgumentHelp("Templates folder.", valueName: "dir"))
    var templates = "Templates"

    @Option(name: .long, help: ArgumentHelp("Sample sidecar the documents are made from (one per kind).", valueName: "file"))
    var sidecar = "docs/examples/sidecar-ldl.json"
}

/// SIGTERM and SIGINT for the long-running commands, taken on dispatch sources rather than in
/// a C handler (the handler may allocate and lock). Keep the sources; cancel them when done.
enum StopSignals {
    static func install(_ handler: @escaping @Sendable () -> Void) -> [any DispatchSourceSignal] {
        [SIGTERM, SIGINT].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler(handler: handler)
            source.resume()
            return source
        }
    }
}
