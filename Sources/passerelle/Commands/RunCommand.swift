import ArgumentParser
import Dispatch
import Foundation
import Gateway
import Handoff
import Journal
import Logging
import Observability
import PasserelleCore
import Synchronization

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
        "Templates directory. Defaults to $PASSERELLE_TEMPLATES, then ./Templates, then share/passerelle/Templates of the install.",
        valueName: "dir"))
    var templates: String?

    func run() async throws {
        // One set of signal sources for the whole run: installing a second one after cancelling
        // the first leaves the signal ignored on Linux (libdispatch installs its handler once).
        // First thing: a SIGTERM while the configuration and journal are opened is a clean stop too.
        let state = RunState()
        let sources = StopSignals.install {
            state.stopping.store(true, ordering: .releasing)
            state.service.withLock { $0 }?.stop()
        }
        defer { sources.forEach { $0.cancel() } }
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? c.logging.level, format: c.logging.format)
        // [http] metrics_port: Prometheus metrics, /health and /ready on 127.0.0.1.
        let monitor = c.http.metricsPort.map { _ in ServiceMonitor() }
        let service: GatewayService
        do {
            guard let made = try await Self.makeWaitingForSpace(c, templates: BuildCommand.templatesDirectory(templates),
                                                                events: monitor?.events ?? NoGatewayEvents(), state: state) else { return }
            service = made
            state.service.withLock { $0 = made }
            if state.stopping.load(ordering: .acquiring) { made.stop() }  // a signal before it was set
            if let monitor, let port = c.http.metricsPort { try await monitor.start(configuration: c, journal: service.journal, port: UInt16(port), loaded: service.keyMaterial) }
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
        defer { monitor?.stop() }
        do { try await service.run() } catch {
            printError(error.description)
            throw ExitCode.failure
        }
    }

    /// The service; but while its journal cannot be opened because the journal's disk is full,
    /// waits in the process (an error logged each minute) rather than exit and be restarted by
    /// systemd every few seconds. Documents wait in the inbox meanwhile. Nil: stopped by a signal.
    ///
    /// Only a full disk is waited for: a read-only file system, a permission or a missing folder
    /// (told apart by the errno of a probe write, see ``FileSystemCause``) ends the start with
    /// the cause, the folder and the fix, as waiting would not help and would hide them.
    static func makeWaitingForSpace(_ c: PasserelleConfiguration, templates: URL,
                                    events: any GatewayEvents, state: RunState) async throws(GatewayError) -> GatewayService? {
        let logger = Logger(label: "passerelle.service")
        var lastLog: Date?
        while true {
            do { return try GatewayService.make(configuration: c, templates: templates, events: events) } catch {
                guard case .journal = error, case .sqlite(let path) = c.journal else { throw error }
                let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
                let blobs = Journals.blobFolder(forDatabase: path).path
                var cause = FileSystemCause.probe(folder: folder)
                if cause == nil, FileManager.default.fileExists(atPath: blobs) { cause = FileSystemCause.probe(folder: blobs) }
                if let cause, !cause.waitingHelps {
                    let fix = cause.fix(folder: folder, key: "[journal] path")
                    logger.error("cannot open the journal: \(cause)",
                                 metadata: ["folder": "\(folder)", "cause": "\(cause)", "fix": "\(fix)", "error": "\(error)"])
                    throw .file(path: folder, reason: "cannot open the journal: \(cause): \(fix) (\(error))")
                }
                let needed = 3 * Int64(c.cda.maxPDFBytes)  // as /ready: room for one large document
                let free = JournalProbe.freeBytes(folder)
                // A page fits but not a document counts as full too.
                guard cause == .noSpace || free.map({ $0 < needed }) == true else { throw error }
                if lastLog.map({ Date().timeIntervalSince($0) >= 60 }) ?? true {
                    lastLog = Date()
                    logger.error("cannot open the journal: its disk is full; waiting for space (documents wait in the inbox)",
                                 metadata: ["folder": "\(folder)", "free_kib": "\((free ?? 0) / 1024)", "cause": "disk full",
                                            "fix": "\(FileSystemCause.noSpace.fix(folder: folder, key: "[journal] path"))", "error": "\(error)"])
                }
                for _ in 0..<5 {
                    if state.stopping.load(ordering: .acquiring) { return nil }
                    try? await Task.sleep(nanoseconds: 1_000_000_000)
                }
            }
        }
    }
}

/// What the signal handler of `passerelle run` acts on: the stop request, and the service once made.
final class RunState: Sendable {
    let stopping = Atomic<Bool>(false)
    let service = Mutex<GatewayService?>(nil)
}
