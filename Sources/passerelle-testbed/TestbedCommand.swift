import ArgumentParser
import Dispatch
import Foundation
import PasserelleCore
import Synchronization

/// `passerelle-testbed` — what only a demo or a test needs, kept out of the production
/// `passerelle` executable: the local DMP-style endpoint and the demo that runs the real
/// `passerelle run` against it. Never install it on a production server.
@main
struct TestbedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passerelle-testbed",
        abstract: "Demo and test only: local DMP-style endpoint and the Passerelle demo (not part of a production install).",
        discussion: """
        `passerelle demo` runs `passerelle-testbed demo` when this executable sits beside \
        `passerelle` (swift build puts both in .build/<configuration>/).
        """,
        version: Passerelle.version,
        subcommands: [DemoCommand.self, DMPEndpointCommand.self]
    )
}

/// Writes a line to stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// SIGTERM and SIGINT taken on dispatch sources (not in a C handler). Keep the sources;
/// cancel them when done.
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

/// A one-shot event an async caller can wait for.
final class WakeOnce: Sendable {
    private let state = Mutex<(fired: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    var fired: Bool { state.withLock { $0.fired } }

    func fire() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.fired = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.fired { return true }
                s.waiter = c
                return false
            }
            if now { c.resume() }
        }
    }
}

/// The material the demo runs on: the test PKI, the CDA templates and the sample sidecar.
/// Each default comes from ``DataFiles``: the repository checkout when run from its root
/// (scripts/run.sh), else the installed packages (share/passerelle, share/passerelle-demo).
struct SampleMaterialOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Test PKI folder; made when missing. Defaults to Certificates/test-pki in a repository checkout, else test-pki in the demo folder.",
        valueName: "dir"))
    var pki: String?

    @Option(name: .long, help: ArgumentHelp(
        "Templates folder. Defaults to $PASSERELLE_TEMPLATES, then ./Templates, then share/passerelle/Templates of the install.",
        valueName: "dir"))
    var templates: String?

    @Option(name: .long, help: ArgumentHelp("Sample sidecar the documents are made from (one per kind); defaults to the built-in sample (docs/examples/sidecar-ldl.json).",
                                            valueName: "file"))
    var sidecar: String?
}

/// The demo's own data files (package passerelle-demo), found as ``DataFiles`` finds the
/// others: the repository checkout from its root, else the install.
extension DataFiles {
    /// The XDS.b schema the local DMP-style endpoint checks requests with.
    static let xdsSchema = Item(checkout: "../shared/conformance/xds/XDS.b_DocumentRepository.xsd",
                                installed: "share/passerelle-demo/xds/XDS.b_DocumentRepository.xsd")
    /// The local MSSanté-style SMTP relay (aiosmtpd).
    static let smtpRelay = Item(checkout: "scripts/endpoints/smtp_server.py", installed: "share/passerelle-demo/smtp_server.py")
    /// A Python with aiosmtpd: the checkout's .venv (scripts/setup.sh), else the system's
    /// python3 with python3-aiosmtpd (a dependency of passerelle-demo).
    static let python = Item(checkout: ".venv/bin/python", installed: "/usr/bin/python3")
}
