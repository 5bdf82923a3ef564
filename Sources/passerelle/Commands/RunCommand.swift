import ArgumentParser
import Dispatch
import Foundation
import Gateway
import PasserelleCore

/// `passerelle run` — the service.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the gateway: watched folder, MLLP listener, journal and senders.",
        discussion: """
        Takes files from [folders] inbox (and HL7 v2 messages over MLLP when [mllp] enabled), \
        journals each document before the input is removed or acknowledged, builds its CDA, \
        and sends it to its targets with bounded concurrency and retries ([service]). At start \
        it finishes what a previous run left (documents not yet queued, files left in work/, \
        sends interrupted by a crash once their lease has expired).

        SIGTERM or SIGINT: stop taking input, let in-flight sends finish (at most [service] \
        shutdown_timeout_seconds), exit 0. Sends still running then are re-sent by the next run \
        (the DMP recognises a document it already holds).

        Example:
          passerelle run --config /etc/passerelle/passerelle.toml

        Exit codes: 0 stopped on a signal, 1 cannot start (configuration, journal, folders).
        """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp(
        "Templates directory. Defaults to $PASSERELLE_TEMPLATES, then ./Templates, then share/passerelle/Templates beside the executable.",
        valueName: "dir"))
    var templates: String?

    func run() async throws {
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? c.logging.level, format: c.logging.format)
        let service: GatewayService
        do {
            service = try GatewayService.make(configuration: c, templates: BuildCommand.templatesDirectory(templates))
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        // Signals arrive on a dispatch source, not in a C handler: stop() may allocate and lock.
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { service.stop() }
            source.resume()
            sources.append(source)
        }
        defer { sources.forEach { $0.cancel() } }
        do { try await service.run() } catch {
            printError(error.description)
            throw ExitCode.failure
        }
    }
}
