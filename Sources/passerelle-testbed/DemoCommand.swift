import ArgumentParser
import CDA
import Foundation
import PasserelleCore
import SampleDocuments
import Synchronization

/// `passerelle-testbed demo` (what `passerelle demo` runs) — the whole product on one machine:
/// a local DMP-style endpoint, the real `passerelle run` with its journal, a set of sample
/// documents, their outcomes and the month's report.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the gateway against local DMP-style and MSSanté-style endpoints with sample documents, and check every outcome.",
        discussion: """
        From the repository root after scripts/setup.sh, or from any folder once the \
        passerelle and passerelle-demo packages are installed: makes the test PKI if missing \
        (in the demo folder when installed), writes a demo configuration in the demo folder (replaced on each run), starts a local \
        DMP-style endpoint (loopback, mutual TLS, test CA) in this process, the gateway — the \
        production `passerelle run` found beside this executable (SQLite journal in the \
        folder) — as a child process, and a local MSSanté-style SMTP relay (loopback, STARTTLS, \
        client certificate from the test CA; .venv/bin/python with aiosmtpd, made by \
        scripts/setup.sh, or python3 with python3-aiosmtpd when installed) that stores each message it receives in mssante-sent/. It drops \
        samples into the inbox — one PDF + sidecar per document kind (the letter also to a \
        doctor's mailbox, the prescription also to the doctor and the patient's mailbox), a \
        replacement, a deletion, an unqualified identity (to the doctor only, without INS), a \
        truncated PDF, an HL7 v2 ORU^R01 and MDM^T02 carrying CDAs, an ADT^A03 — waits until \
        each has reached its final state, checks it at the DMP endpoint or at the relay, and \
        prints one line per (document, target) (document id, kind, masked INS, target, \
        state), the month's usage report and where the journal, the endpoint's requests, the \
        sent messages and the HTML report are. MSSanté transmissions end as `sent`: the demo \
        has no acknowledgement mailbox. While it runs, /health, /ready and /metrics answer on \
        the status port it prints.

        `passerelle demo` hands its arguments to `passerelle-testbed demo`; the testbed is a \
        demo-only executable, absent from a production install.

        Example:
          passerelle demo --folder /tmp/passerelle-demo

        Exit codes: 0 every sample ended as expected, 1 a sample did not (the line says why) \
        or the demo could not run.
        """
    )

    @Option(name: .long, help: ArgumentHelp("Demo folder (created 0700; replaced on each run).", valueName: "dir"))
    var folder = "demo-run"

    @OptionGroup var material: SampleMaterialOptions

    // The defaults below are those of a repository checkout when run from its root, else those
    // of the installed packages (DataFiles): the help shows the checkout's.
    @Option(name: .long, help: ArgumentHelp(
        "Script that makes the test PKI (default: \(DataFiles.testPKIScript.checkout), else share/passerelle/make-test-pki.sh).",
        valueName: "file"))
    var pkiScript: String?

    @Option(name: .long, help: ArgumentHelp(
        "IHE XDS.b repository schema the local endpoint checks requests with (default: \(DataFiles.xdsSchema.checkout), else share/passerelle-demo/xds).",
        valueName: "file"))
    var xdsSchema: String?

    @Option(name: .long, help: ArgumentHelp(
        "Python with aiosmtpd that runs the local MSSanté relay (default: \(DataFiles.python.checkout), made by scripts/setup.sh, else \(DataFiles.python.installed)).",
        valueName: "file"))
    var python: String?

    @Option(name: .long, help: ArgumentHelp(
        "The local MSSanté-style SMTP relay script (default: \(DataFiles.smtpRelay.checkout), else share/passerelle-demo).", valueName: "file"))
    var smtpRelay: String?

    @Option(name: .long, help: ArgumentHelp(
        "CDA schema every document must pass before it is journaled ([cda] schema); skipped when absent (default: \(DataFiles.cdaSchema.checkout), else share/passerelle/cda).",
        valueName: "file"))
    var cdaSchema: String?

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for every sample to reach its final state.", valueName: "s"))
    var timeout: Int = 120

    @Option(name: .long, help: ArgumentHelp("Status endpoint port on 127.0.0.1 (0: any free port).", valueName: "port"))
    var metricsPort: Int = 0

    @Flag(name: .long, help: "After the outcomes, keep the gateway, the endpoint and the status port running until Ctrl-C / SIGTERM.")
    var keepRunning = false

    @Option(name: .long, help: ArgumentHelp(
        "Log level of `passerelle run`: \(LogLevel.allCases.map(\.rawValue).joined(separator: ", ")) (default: error).", valueName: "level"))
    var logLevel: LogLevel?

    @Option(name: .long, help: ArgumentHelp("The passerelle executable to run (default: the one beside passerelle-testbed).", valueName: "file"))
    var passerelle: String?

    func validate() throws {
        guard (0...65535).contains(metricsPort) else { throw ValidationError("--metrics-port must be between 0 and 65535") }
        guard (5...3600).contains(timeout) else { throw ValidationError("--timeout must be between 5 and 3600 seconds") }
    }

    /// `passerelle` in the folder of this executable (swift build and an install put them side by side).
    static var besideThisExecutable: URL {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("passerelle")
    }

    func run() async throws {
        let started = Date()
        func file(_ explicit: String?, _ item: DataFiles.Item) -> URL {
            explicit.map { URL(fileURLWithPath: $0).standardizedFileURL } ?? DataFiles.locate(item)
        }
        let folderURL = URL(fileURLWithPath: folder).standardizedFileURL
        // A checkout keeps its test PKI (Certificates/test-pki, made once); an install makes
        // a throwaway one in the demo folder on each run (the folder is replaced anyway).
        let pki = material.pki.map { URL(fileURLWithPath: $0).standardizedFileURL }
            ?? (DataFiles.isInCheckout(DataFiles.testPKIScript) ? URL(fileURLWithPath: "Certificates/test-pki").standardizedFileURL
                : folderURL.appendingPathComponent("test-pki"))
        let cdaSchema = file(cdaSchema, DataFiles.cdaSchema)
        let settings = DemoSettings(
            folder: folderURL, pki: pki,
            pkiScript: file(pkiScript, DataFiles.testPKIScript), templates: DataFiles.templatesFolder(explicit: material.templates),
            sidecar: material.sidecar.map { URL(fileURLWithPath: $0) }, xdsSchema: file(xdsSchema, DataFiles.xdsSchema),
            python: file(python, DataFiles.python), smtpRelay: file(smtpRelay, DataFiles.smtpRelay),
            cdaSchema: FileManager.default.fileExists(atPath: cdaSchema.path) ? cdaSchema : nil,
            timeout: TimeInterval(timeout), metricsPort: UInt16(metricsPort),
            passerelle: passerelle.map { URL(fileURLWithPath: $0).standardizedFileURL } ?? Self.besideThisExecutable,
            logLevel: (logLevel ?? .error).rawValue)
        let demo: DemoEnvironment
        let samples: [DemoSample]
        do {
            demo = try DemoEnvironment(settings)
        } catch {
            printError("passerelle demo: \(error)")
            throw ExitCode.failure
        }
        // From here on a signal stops the child processes too (the gateway, the relay) before
        // this process exits; in --keep-running's wait it ends the demo normally.
        let signalled = WakeOnce(), waiting = Atomic<Bool>(false)
        let sources = StopSignals.install {
            if waiting.load(ordering: .acquiring) { return signalled.fire() }
            demo.stop()
            Foundation.exit(1)
        }
        defer { sources.forEach { $0.cancel() } }
        do {
            let base = try DocumentMetadata.decodeValidated(sidecar: settings.sidecar.map { try Data(contentsOf: $0) } ?? SampleSidecar.ldl)
            let builder = try CDABuilder(templatesDirectory: settings.templates, options: CDABuilder.Options(documentIDRoot: demo.configuration.structure.oid))
            samples = try DemoSamples(base: base, builder: builder, root: demo.configuration.structure.oid).make()
            try demo.start()
        } catch {
            printError("passerelle demo: \(error)")
            demo.stop()
            throw ExitCode.failure
        }
        print("Passerelle demo in \(settings.folder.path)")
        print("  local DMP endpoint  \(demo.endpoint.url.absoluteString) (mutual TLS, test CA)")
        print("  local MSSanté relay smtp://127.0.0.1:\(demo.relay.port) (STARTTLS, client certificate from the test CA)")
        print("  gateway             \(settings.passerelle.path) run --config \(demo.configurationFile.path)")
        print("  status endpoint     http://127.0.0.1:\(demo.statusPort)/health, /ready, /metrics")
        print("  console             http://127.0.0.1:\(demo.statusPort)/console/ (loopback, no login: Vue d'ensemble, Échecs)")
        fflush(nil)  // a supervisor or a test may be reading the file as the demo runs

        let results: [DemoResult]
        do {
            let deadline = started.addingTimeInterval(settings.timeout)
            let first = samples.filter { $0.phase == 1 }, second = samples.filter { $0.phase == 2 }
            for sample in first { try demo.drop(sample) }
            print("  dropped \(first.count) samples; \(second.count) more (a replacement, a deletion) once their originals are in the DMP")
            _ = try await demo.settle(first, until: deadline)
            for sample in second { try demo.drop(sample) }
            results = try await demo.settle(samples, until: deadline)
        } catch {
            printError("passerelle demo: \(error)")
            demo.stop()
            throw ExitCode.failure
        }
        let elapsed = Date().timeIntervalSince(started)
        print("")
        print(DemoTable.render(results))
        let wrong = results.filter { !$0.ok }
        for r in wrong {
            print("  ✗ \(r.sample.label) → \(r.check.target?.rawValue ?? "-"): \(r.problem ?? "not as expected") (expected \(r.check.expected.text))")
        }
        print(String(format: "%d of %d outcomes as expected (%.1f s)", results.count - wrong.count, results.count, elapsed))

        do {
            print("")
            print("Usage report for this month (passerelle report):")
            print(try await demo.usageReport())
            let stored = try demo.writeStoredList()
            let config = settings.folder.appendingPathComponent("passerelle.toml").path
            print("Where to look:")
            print("  configuration        \(config)")
            print("  journal (SQLite)     \(demo.journalPath)   e.g. passerelle report --config \(config) --month \(DemoEnvironment.month(Date(), timeZone: demo.configuration.report.timeZone))")
            print("  refused files        \(demo.errorFolder.path)/ (each with NAME.error.txt)")
            print("  journaled inputs     \(demo.doneFolder.path)/")
            print("  DMP requests         \(demo.endpointFolder.path)/requests/ (each ITI-41 / ITI-57 exchange as received)")
            print("  DMP stored entries   \(stored.path)")
            print("  sent MSSanté mails   \(demo.sentFolder.path)/ (each message as the relay received it, .eml; log in mssante-relay.log)")
            print("  HTML report          \(demo.reportPath.path)")
        } catch {
            printError("passerelle demo: report: \(error)")
            demo.stop()
            throw ExitCode.failure
        }

        if keepRunning {
            // The gateway samples its queue gauges every 5 s: let one sample see the settled
            // queues, so /metrics agrees with the table from the moment this line is printed.
            try? await Task.sleep(for: .seconds(6))
            print("Running until Ctrl-C / SIGTERM (drop more files into \(demo.inbox.path)).")
            fflush(nil)
            waiting.store(true, ordering: .releasing)
            await signalled.wait()
        }
        demo.stop()
        if !wrong.isEmpty { throw ExitCode.failure }
    }
}

extension LogLevel: ExpressibleByArgument {}

/// The outcome table, one row per (sample, target): ids, kinds, masked INS, targets, states and
/// what the endpoint holds — no names, no NIR (a patient's address is shown masked).
enum DemoTable {
    static func render(_ results: [DemoResult]) -> String {
        let header = ["SAMPLE", "DOCUMENT", "KIND", "INS", "TARGET", "STATE", "AT THE ENDPOINT", "CHECK"]
        let rows = results.map { r in
            [r.sample.label, r.sample.documentID ?? "-", r.sample.kind?.shortName ?? "-", r.sample.maskedINS ?? "-",
             r.check.target?.rawValue ?? "-", r.state, r.entry, r.ok ? "ok" : "WRONG"]
        }
        let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
