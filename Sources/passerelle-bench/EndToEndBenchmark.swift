import ArgumentParser
import BenchSupport
import CDA
import Foundation
import Gateway
import Handoff
import Intake
import Journal
import Logging
import PasserelleCore
import Synchronization
import TestEndpoints

/// `passerelle-bench e2e`: the whole product under load on one machine. Starts in this process
/// the local DMP-style endpoint (mutual TLS, every request checked against the XDS schema and
/// its signatures verified) and the gateway as `passerelle run` assembles it (SQLite journal,
/// CDA XSD when the shared kit is there, test PKI), and the local MSSanté-style relay (aiosmtpd,
/// a child process). Drops `--documents` inputs (see ``EndToEndWorkload``) atomically into the
/// inbox and waits until every transmission is acknowledged at its endpoint: stored by the DMP
/// endpoint, or stored by the relay (which writes the message before its 250).
struct EndToEndBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "End-to-end documents per second: inbox → gateway → local DMP endpoint and SMTP relay.",
        discussion: """
        Run in release from the repository root, after scripts/setup.sh (the relay needs .venv):
          swift build -c release --product passerelle-bench
          .build/release/passerelle-bench e2e --documents 1000 --json e2e.json
          .build/release/passerelle-bench e2e --backlog 100000 --json backlog.json
        Against a minimal acknowledging endpoint (nginx, mutual TLS, canned RegistryResponse; the
        `passerelle run` binary as a child process; issue 17's DMP-only backlog of 50–500 KB PDFs):
          swift build -c release --product passerelle && swift build -c release --product passerelle-bench
          .build/release/passerelle-bench e2e --endpoint minimal --documents 1000 --json minimal.json
          .build/release/passerelle-bench e2e --endpoint minimal --journal postgresql --documents 1000
        The minimal endpoint with the other workloads of issue 17 (always to the DMP alone):
          … e2e --endpoint minimal --pdf-sizes mixed --documents 1000          # 50 KB–2 MB, 20 % HL7 v2
          … e2e --endpoint minimal --rate 100 --documents 3000                 # p99 drop → acknowledged
          … e2e --endpoint minimal --pdf-sizes small --backlog 100000          # the large backlog
          … e2e --endpoint minimal --journal postgresql --gateways 2           # two nodes, one journal
        Latency is from the drop (the rename into the inbox; for --backlog, the gateway's start)
        to the moment the endpoint stored the document or the relay stored the message.
        """
    )

    @Option(help: "Documents to drop (each one input: PDF + sidecar, or an HL7 v2 message).")
    var documents = 1000

    @Option(help: "Documents already in the inbox before the gateway starts (small PDFs); overrides --documents.")
    var backlog: Int?

    @Option(help: "Drop rate in documents per second (0: all at once; minimal endpoint: a backlog before the start).")
    var rate: Double = 0

    @Option(help: "PDF sizes: mixed (50 KB–2 MB) or small (~0.6 KB; default for --backlog); minimal endpoint: dmp-only (50–500 KB, no HL7; its default), mixed or small.")
    var pdfSizes: String?

    @Option(help: "Percent of the documents sent as HL7 v2 messages (ORU^R01 / MDM^T02 carrying a CDA).")
    var hl7Percent = 20

    @Option(help: "Percent of the PDF documents also mailed over MSSanté (half of them to the patient too).")
    var mailPercent = 20

    @Option(help: "DMP connections ([dmp] max_connections).")
    var dmpConnections = 4

    @Option(help: "Seconds to wait for every acknowledgement.")
    var timeout = 1800

    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    @Option(help: "Python with aiosmtpd for the local MSSanté relay (default: .venv/bin/python of the repository).")
    var python: String?

    @Option(help: "The local MSSanté relay script (default: scripts/endpoints/smtp_server.py of the repository).")
    var smtpRelay: String?

    @Option(help: "Working folder (default: a temporary folder, removed at the end).")
    var folder: String?

    @Flag(help: "Keep the working folder (journal, done/, the relay's messages).")
    var keep = false

    @Option(help: "strict: the in-process DMP-style endpoint that checks everything (default); minimal: nginx answering a canned RegistryResponse, the gateway as a `passerelle run` child process, documents to the DMP only.")
    var endpoint = "strict"

    @Option(help: "Minimal endpoint: the journal, sqlite or postgresql (a throwaway server like the tests', but committing durably: fsync, synchronous_commit and full-page writes on; PASSERELLE_PG_DURABLE=0 turns them off as in the tests).")
    var journal = "sqlite"

    @Option(help: "Minimal endpoint: the passerelle executable (default: beside this one).")
    var passerelle: String?

    @Option(help: "Minimal endpoint: a command to run the gateway under, e.g. \"valgrind --tool=callgrind --callgrind-out-file=cg.out\" (split on spaces).")
    var wrapper: String?

    @Option(help: "Minimal endpoint: write the DMP-only backlog of --documents inputs into this folder and exit.")
    var prepareOnly: String?

    @Option(help: "Minimal endpoint: hard-link the backlog from this folder (made by --prepare-only) instead of generating it.")
    var inboxFrom: String?

    @Option(help: "Minimal endpoint: start from a copy of this SQLite journal (e.g. one filled with 1,000,000 rows by scripts/bench/console-load.sh); the run's outcomes are counted above its rows.")
    var journalFrom: String?

    @Option(help: "Minimal endpoint: turn the console on, on this loopback port ([http] metrics_port, [console] enabled).")
    var consolePort: UInt16?

    @Option(help: "Minimal endpoint: `passerelle run` processes sharing the PostgreSQL journal (--journal postgresql), each with its own folders and an equal share of the inputs.")
    var gateways = 1

    @Option(help: "Gateway log level on stderr (info: about four lines per document, as `passerelle run` logs).")
    var logLevel = "warning"

    func validate() throws {
        guard documents > 0, backlog.map({ $0 > 0 }) ?? true else { throw ValidationError("--documents and --backlog must be positive") }
        guard rate >= 0 else { throw ValidationError("--rate must be 0 (all at once) or positive") }
        guard endpoint == "minimal" || pdfSizes.map({ EndToEndWorkload.Sizes(rawValue: $0).map { $0 != .dmpOnly } ?? false }) ?? true else {
            throw ValidationError("--pdf-sizes: mixed or small (dmp-only: with --endpoint minimal)")
        }
        guard (0...100).contains(hl7Percent), (0...100).contains(mailPercent) else { throw ValidationError("percentages are 0–100") }
        guard (1...64).contains(dmpConnections) else { throw ValidationError("--dmp-connections: 1–64") }
        guard ["strict", "minimal"].contains(endpoint) else { throw ValidationError("--endpoint: strict or minimal") }
        guard MinimalRun.JournalBackend(rawValue: journal) != nil else { throw ValidationError("--journal: sqlite or postgresql") }
        guard journalFrom == nil || journal == "sqlite" else { throw ValidationError("--journal-from takes an SQLite journal (--journal sqlite)") }
        if endpoint == "minimal" {
            guard pdfSizes.map({ EndToEndWorkload.Sizes(rawValue: $0) != nil }) ?? true else { throw ValidationError("--pdf-sizes: dmp-only, mixed or small") }
            guard (1...8).contains(gateways), gateways == 1 || journal == "postgresql" else {
                throw ValidationError("--gateways: 1–8, more than one on a PostgreSQL journal (--journal postgresql)")
            }
            guard gateways == 1 || (wrapper == nil && consolePort == nil && journalFrom == nil) else {
                throw ValidationError("--gateways goes without --wrapper, --console-port and --journal-from")
            }
        } else if gateways != 1 {
            throw ValidationError("--gateways goes with --endpoint minimal")
        }
        if endpoint == "strict" {
            guard journal == "sqlite", passerelle == nil, wrapper == nil, prepareOnly == nil, inboxFrom == nil, journalFrom == nil, consolePort == nil else {
                throw ValidationError("--journal, --passerelle, --wrapper, --prepare-only, --inbox-from, --journal-from and --console-port go with --endpoint minimal")
            }
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: trace, debug, info, notice, warning, error or critical") }
    }

    func run() async throws {
        if endpoint == "minimal" { return try await runMinimal() }
        let level = Logger.Level(rawValue: logLevel) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let count = backlog ?? documents
        let sizes = pdfSizes.flatMap(EndToEndWorkload.Sizes.init) ?? (backlog == nil ? .mixed : .small)
        let root = folder.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("passerelle-bench-e2e-\(getpid())")
        let run = try EndToEndRun(root: root, connections: dmpConnections,
                                  python: python.map { URL(fileURLWithPath: $0) } ?? TestPaths.testVenv.appendingPathComponent("bin/python"),
                                  script: smtpRelay.map { URL(fileURLWithPath: $0) }
                                      ?? TestPaths.repositoryRoot.appendingPathComponent("scripts/endpoints/smtp_server.py"))
        defer {
            run.stopEndpoints()
            if !keep { try? FileManager.default.removeItem(at: root) }
        }
        let workload = EndToEndWorkload(sizes: sizes, hl7Percent: hl7Percent, mailPercent: mailPercent, builder: BenchDMP.builder,
                                        root: run.configuration.structure.oid)
        let report = try await run.measure(workload, count: count, backlog: backlog != nil, rate: rate, timeout: TimeInterval(timeout))
        print(report.table())
        if let json {
            try report.json().write(to: URL(fileURLWithPath: json), options: .atomic)
            print("JSON written to \(json)")
        }
        if keep { print("Working folder kept: \(root.path)") }
        if report.result.acknowledgedTransmissions != report.workload.transmissions { throw ExitCode.failure }
    }
}

extension EndToEndBenchmark {
    /// `--endpoint minimal`: see ``MinimalRun``. `--backlog N` is taken as `--documents N` (the inputs are always a backlog).
    func runMinimal() async throws {
        // A journal benchmark on a server that does not fsync its commits would flatter it
        // (SQLite runs with synchronous=FULL): durable unless asked otherwise, before first use.
        setenv("PASSERELLE_PG_DURABLE", "1", 0)
        let count = backlog ?? documents
        let sizes = pdfSizes.flatMap(EndToEndWorkload.Sizes.init) ?? .dmpOnly
        if let prepareOnly {
            let folder = URL(fileURLWithPath: prepareOnly)
            let (bytes, seconds) = try MinimalRun.writeBacklog(documents: count, into: [folder], oid: "1.2.250.1.999.1", sizes: sizes, hl7Percent: hl7Percent)
            print(String(format: "%d \(sizes.rawValue) documents (%.1f MB of PDF, mean %.1f KB) written to %@ in %.1f s", count,
                         Double(bytes) / 1_048_576, Double(bytes) / Double(count) / 1024, folder.path, seconds))
            return
        }
        let gateway = passerelle.map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("passerelle")
        guard FileManager.default.isExecutableFile(atPath: gateway.path) else {
            throw ValidationError("no passerelle executable at \(gateway.path): swift build -c release --product passerelle, or give --passerelle")
        }
        let root = folder.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("passerelle-bench-minimal-\(getpid())")
        if FileManager.default.fileExists(atPath: root.path), !((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []).isEmpty {
            throw ValidationError("\(root.path) is not empty: give an empty or new --folder")
        }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { if !keep { try? FileManager.default.removeItem(at: root) } }
        let run = MinimalRun(root: root, documents: count, connections: dmpConnections, journal: MinimalRun.JournalBackend(rawValue: journal) ?? .sqlite,
                             gateway: gateway, wrapper: wrapper.map { $0.split(separator: " ").map(String.init) } ?? [],
                             inboxFrom: inboxFrom.map { URL(fileURLWithPath: $0) }, timeout: TimeInterval(timeout), logLevel: logLevel,
                             journalFrom: journalFrom.map { URL(fileURLWithPath: $0) }, consolePort: consolePort,
                             sizes: sizes, hl7Percent: hl7Percent, rate: rate, gateways: gateways)
        let report = try await run.measure()
        print(report.table())
        if let json {
            try report.json().write(to: URL(fileURLWithPath: json), options: .atomic)
            print("JSON written to \(json)")
        }
        if keep { print("Working folder kept: \(root.path)") }
        if report.result.succeededTransmissions != count { throw ExitCode.failure }
    }
}

/// The per-stage figures the gateway reports (``GatewayEvents/stageFinished(_:timing:)``).
final class StageCollector: GatewayEvents {
    struct Figures: Sendable {
        var calls = 0
        var wall: Duration = .zero
        var cpu: Duration = .zero
        var cpuCalls = 0
    }
    struct State: Sendable {
        var stages: [GatewayStage: Figures] = [:]
        var sends: [SendResult: Int] = [:]
        var received = 0
        var refused: [String: Int] = [:]
    }
    let state = Mutex(State())

    func documentReceived(kind: DocumentKind?, source: IntakeOrigin) { state.withLock { $0.received += 1 } }
    func documentRefused(reason: String, source: IntakeOrigin) { state.withLock { $0.refused[reason, default: 0] += 1 } }
    func documentBuilt(kind: DocumentKind) {}
    func sendFinished(target: Destination, kind: DocumentKind, result: SendResult, duration: Duration) {
        state.withLock { $0.sends[result, default: 0] += 1 }
    }
    func stageFinished(_ stage: GatewayStage, timing: StageTiming) {
        state.withLock { s in
            var f = s.stages[stage, default: Figures()]
            f.calls += 1
            f.wall += timing.wall
            if let cpu = timing.cpu {
                f.cpu += cpu
                f.cpuCalls += 1
            }
            s.stages[stage] = f
        }
    }
    func reset() { state.withLock { $0 = State() } }
}

/// The endpoints, the configuration and the folders of one benchmark run.
final class EndToEndRun {
    let root: URL
    let endpoint: DMPTestEndpoint
    let relay: LocalSMTPRelay
    let configuration: PasserelleConfiguration
    var staging: URL { root.appendingPathComponent("staging") }
    var inbox: URL { URL(fileURLWithPath: configuration.folders.inbox) }

    init(root: URL, connections: Int, python: URL, script: URL) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: root.path) {
            guard ((try? fm.contentsOfDirectory(atPath: root.path)) ?? []).isEmpty else {
                throw ValidationError("\(root.path) is not empty: give an empty or new --folder")
            }
        }
        self.root = root
        for sub in ["staging", "journal", "inbox"] {
            try fm.createDirectory(at: root.appendingPathComponent(sub), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        endpoint = try BenchDMP.endpoint()
        do {
            relay = try LocalSMTPRelay(python: python, script: script, pki: TestPaths.testPKI, folder: root.appendingPathComponent("mssante-sent"),
                                       log: root.appendingPathComponent("mssante-relay.log"))
        } catch {
            endpoint.stop()
            throw error
        }
        let schema = TestPaths.shared.appendingPathComponent("conformance/cda/xsd/cda/CDA_extended.xsd")
        var settings = LocalGatewayConfiguration(writtenBy: "passerelle-bench e2e", pki: TestPaths.testPKI, root: root, dmpURL: endpoint.url,
                                                 registryURL: endpoint.registryURL, smtpPort: relay.port,
                                                 cdaSchema: fm.fileExists(atPath: schema.path) ? schema : nil)
        settings.dmpConnections = connections
        // Producers rename complete files into the inbox: no need to wait for them to settle.
        settings.quietPeriodSeconds = 0
        let file = root.appendingPathComponent("passerelle.toml")
        try settings.text.write(to: file, atomically: true, encoding: .utf8)
        do { configuration = try PasserelleConfiguration.load(from: file.path) } catch {
            endpoint.stop()
            relay.stop()
            throw ValidationError("the benchmark configuration is invalid: \(error.problems.map(\.description).joined(separator: "; "))")
        }
    }

    func stopEndpoints() {
        endpoint.stop()
        relay.stop()
    }

    /// What the bench keeps of each input once its files are written.
    struct Input {
        var names: [String]
        var uniqueId: String
        var targets: [Destination]
        var pdfBytes: Int
        var hl7: Bool
        var dropped: Date = .distantPast
    }

    func measure(_ workload: EndToEndWorkload, count: Int, backlog: Bool, rate: Double, timeout: TimeInterval) async throws -> EndToEndReport {
        // Inputs are written before anything is timed: to the inbox itself for a backlog,
        // else to a staging folder on the same file system, renamed into the inbox later.
        var inputs: [Input] = []
        inputs.reserveCapacity(count)
        let target = backlog ? inbox : staging
        let generationStart = ContinuousClock.now
        for i in 0..<count {
            let item = try workload.item(i)
            for (name, data) in item.files {
                let path = target.appendingPathComponent(name).path
                guard FileManager.default.createFile(atPath: path + ".part", contents: data, attributes: [.posixPermissions: 0o600]),
                      rename(path + ".part", path) == 0 else { throw ValidationError("cannot write \(path)") }
            }
            inputs.append(Input(names: item.files.map(\.name), uniqueId: item.uniqueId, targets: item.targets, pdfBytes: item.pdfBytes, hl7: item.hl7))
        }
        let generation = ContinuousClock.now - generationStart

        let collector = StageCollector()
        let service = try GatewayService.make(configuration: configuration, templates: TestPaths.templates, pollInterval: 0.2, events: collector)
        // The peak RSS of the run, not of the generation (Linux: 5 → clear_refs resets VmHWM).
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        let before = ResourceSample(endpoint: endpoint, relay: relay)
        let start = Date()
        let running = Task { try await service.run() }

        if backlog {
            for i in inputs.indices { inputs[i].dropped = start }
        } else {
            for i in inputs.indices {
                if rate > 0 {
                    let due = start.addingTimeInterval(Double(i) / rate)
                    if due > Date() { try await Task.sleep(for: .seconds(due.timeIntervalSinceNow)) }
                }
                for name in inputs[i].names {
                    guard rename(staging.appendingPathComponent(name).path, inbox.appendingPathComponent(name).path) == 0 else {
                        throw ValidationError("cannot move \(name) into the inbox: \(String(cString: strerror(errno)))")
                    }
                }
                inputs[i].dropped = Date()
            }
        }

        // Wait until every DMP entry is stored and every mail is at the relay, or no progress
        // for a minute, or the timeout.
        let dmpExpected = inputs.filter { $0.targets.contains(.dmp) }.count
        let mailExpected = inputs.reduce(0) { $0 + $1.targets.filter { $0 != .dmp }.count }
        var pending = Set(inputs.indices.filter { inputs[$0].targets.contains(.dmp) })
        var progress = (count: -1, at: Date())
        let deadline = start.addingTimeInterval(timeout)
        var mails = 0
        while Date() < deadline {
            pending = pending.filter { endpoint.stored(inputs[$0].uniqueId) == nil }
            mails = ((try? FileManager.default.contentsOfDirectory(atPath: relay.folder.path)) ?? []).filter { $0.hasSuffix(".eml") }.count
            let done = dmpExpected - pending.count + mails
            if done >= dmpExpected + mailExpected { break }
            if done != progress.count { progress = (done, Date()) } else if Date().timeIntervalSince(progress.at) > 60 { break }
            try await Task.sleep(for: .milliseconds(count > 5000 ? 500 : 50))
        }
        let after = ResourceSample(endpoint: endpoint, relay: relay)
        service.stop()
        try await running.value

        // Acknowledgement times, from the endpoint side.
        var latencies: [Destination: [Double]] = [:]
        var documentLatency = [Double?](repeating: nil, count: inputs.count)
        var documentAcks = [Int](repeating: 0, count: inputs.count)
        var lastAck = start
        func acknowledged(_ index: Int, _ target: Destination, at time: Date) {
            let latency = time.timeIntervalSince(inputs[index].dropped)
            latencies[target, default: []].append(latency)
            documentLatency[index] = max(documentLatency[index] ?? 0, latency)
            documentAcks[index] += 1
            lastAck = max(lastAck, time)
        }
        let byUniqueId = Dictionary(uniqueKeysWithValues: inputs.indices.map { (inputs[$0].uniqueId, $0) })
        for (uid, index) in byUniqueId where inputs[index].targets.contains(.dmp) {
            if let stored = endpoint.stored(uid) { acknowledged(index, .dmp, at: stored.storedAt) }
        }
        // A mail is matched to its document by the Message-ID the journal recorded.
        let journal = service.journal
        var documentOfMessage: [String: (Int, Destination)] = [:]
        for target in [Destination.mssantePS, .mssantePatient] {
            for t in try await journal.transmissions(matching: TransmissionFilter(target: target)) {
                if let id = t.messageID, let index = byUniqueId[t.documentID] { documentOfMessage[id] = (index, target) }
            }
        }
        for mail in relay.received() {
            if let id = mail.messageID, let (index, target) = documentOfMessage[id] { acknowledged(index, target, at: mail.storedAt) }
        }
        let refused = ((try? FileManager.default.contentsOfDirectory(atPath: configuration.folders.error)) ?? []).filter { !$0.hasSuffix(".error.txt") }.count
        let failed = try await journal.transmissions(matching: TransmissionFilter(states: [.failed])).count
        let elapsed = lastAck.timeIntervalSince(start)
        let figures = collector.state.withLock { $0 }

        let acknowledgedDocuments = inputs.indices.filter { documentAcks[$0] == inputs[$0].targets.count }.count
        let transmissions = inputs.reduce(0) { $0 + $1.targets.count }
        let acknowledgedTransmissions = latencies.values.reduce(0) { $0 + $1.count }
        return EndToEndReport(
            workload: .init(documents: count, mode: backlog ? "backlog" : (rate > 0 ? "rate" : "drop"), rate: rate,
                            pdfSizes: workload.sizes.rawValue, hl7Messages: inputs.filter(\.hl7).count,
                            pdfBytesTotal: inputs.reduce(0) { $0 + $1.pdfBytes },
                            transmissions: transmissions, dmp: dmpExpected,
                            mssantePS: inputs.filter { $0.targets.contains(.mssantePS) }.count,
                            mssantePatient: inputs.filter { $0.targets.contains(.mssantePatient) }.count,
                            dmpConnections: configuration.dmp.maxConnections, cdaSchema: configuration.cda.schema != nil,
                            generationSeconds: generation.seconds, cpus: ProcessInfo.processInfo.activeProcessorCount),
            result: .init(acknowledgedDocuments: acknowledgedDocuments, acknowledgedTransmissions: acknowledgedTransmissions,
                          refusedInputs: refused, failedTransmissions: failed, elapsedSeconds: elapsed,
                          documentsPerSecond: Double(acknowledgedDocuments) / max(elapsed, 1e-9),
                          transmissionsPerSecond: Double(acknowledgedTransmissions) / max(elapsed, 1e-9)),
            latencyMs: [
                "document": .init(documentLatency.compactMap { $0 }),
                "dmp": .init(latencies[.dmp] ?? []),
                "mssante": .init((latencies[.mssantePS] ?? []) + (latencies[.mssantePatient] ?? [])),
            ],
            cpu: .init(before: before, after: after, documents: acknowledgedDocuments),
            memory: .init(peakRssMb: BenchDMP.peakRSSMB(), maxRssSinceStartMb: ResourceSample.maxRSSMB()),
            stages: GatewayStage.allCases.map { stage in
                let f = figures.stages[stage] ?? StageCollector.Figures()
                return .init(stage: stage.rawValue, calls: f.calls, wallSeconds: f.wall.seconds,
                             cpuSeconds: f.cpuCalls > 0 ? f.cpu.seconds : nil, cpuCalls: f.cpuCalls,
                             cpuMsPerDocument: f.cpuCalls > 0 ? f.cpu.seconds * 1000 / Double(max(acknowledgedDocuments, 1)) : nil,
                             wallMsPerCall: f.calls > 0 ? f.wall.seconds * 1000 / Double(f.calls) : 0)
            })
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// CPU clocks at one instant: this process (getrusage), the endpoint's threads, the relay.
struct ResourceSample {
    var user: Double
    var system: Double
    var endpoint: Double
    var relay: Double

    init(endpoint: DMPTestEndpoint, relay: LocalSMTPRelay) {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        self.endpoint = endpoint.cpuTime.seconds
        self.relay = Self.processCPU(relay.processID)
    }

    /// utime + stime of another process, from /proc/<pid>/stat (after the command name).
    static func processCPU(_ pid: Int32) -> Double {
        processStat(pid).map { $0.user + $0.system } ?? 0
    }

    /// utime, stime (seconds) and minor page faults of another process, from /proc/<pid>/stat.
    static func processStat(_ pid: Int32) -> (user: Double, system: Double, minorFaults: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // Fields after the name start at field 3 (state): minflt is field 10, utime 14, stime 15.
        guard fields.count > 12, let faults = Int(fields[7]), let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (utime / tick, stime / tick, faults)
    }

    /// ru_maxrss: the peak since the process started (generation included), in MB.
    static func maxRSSMB() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss / 1024
    }
}
