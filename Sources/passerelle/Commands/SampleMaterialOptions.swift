import ArgumentParser
import Dispatch
import Foundation

/// The material `selfcheck` runs on without `--config`: the test PKI (the checkout's, or a
/// throwaway one), the CDA templates (found as `run` finds them) and the sample sidecar (built in).
struct SampleMaterialOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Test PKI folder (without --config). Defaults to Certificates/test-pki when it exists, else a throwaway one made with make-test-pki.sh.",
        valueName: "dir"))
    var pki: String?

    @Option(name: .long, help: ArgumentHelp(
        "Templates folder. Defaults to $PASSERELLE_TEMPLATES, then ./Templates, then share/passerelle/Templates of the install.",
        valueName: "dir"))
    var templates: String?

    @Option(name: .long, help: ArgumentHelp("Sample sidecar the documents are made from (one per kind); defaults to the built-in sample.",
                                            valueName: "file"))
    var sidecar: String?
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
