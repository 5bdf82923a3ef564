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

        With [http] metrics_port, 127.0.0.1:<port> answers /health (liveness), /ready (journal, \
        certificates valid today, DMP endpoint reachable: 200 or 503) and /metrics (Prometheus); \
        the certificates' expiry is logged at start and once a day.

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
        // [http] metrics_port: Prometheus metrics, /health and /ready on 127.0.0.1.
        let monitor = c.http.metricsPort.map { _ in ServiceMonitor() }
        let service: GatewayService
        do {
            service = try GatewayService.make(configuration: c, templates: BuildCommand.templatesDirectory(templates),
                                              events: monitor?.events ?? NoGatewayEvents())
            if let monitor, let port = c.http.metricsPort { try monitor.start(configuration: c, journal: service.pipeline.journal, port: UInt16(port)) }
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
        defer { monitor?.stop() }
        let sources = StopSignals.install { service.stop() }
        defer { sources.forEach { $0.cancel() } }
        do { try await service.run() } catch {
            printError(error.description)
            throw ExitCode.failure
        }
    }
}
