import BenchSupport
import Foundation
import Journal
import PasserelleCore
import PostgresKit
import SQLiteKit
import TestEndpoints
#if canImport(Glibc)
import Glibc
#endif

/// `passerelle-bench e2e --endpoint minimal`: the real `passerelle run` binary (a child process,
/// so its CPU and peak RSS are the gateway's alone) drains a backlog already in the inbox to the
/// minimal acknowledging endpoint (``MinimalEndpoint``, nginx, another process). The run ends
/// when nginx has answered every document and the journal records every DMP transmission as
/// succeeded.
struct MinimalRun {
    enum JournalBackend: String, CaseIterable { case sqlite, postgresql }

    var root: URL
    var documents: Int
    var connections: Int
    var journal: JournalBackend
    var gateway: URL
    /// A command put in front of the gateway (`valgrind --tool=callgrind …`).
    var wrapper: [String]
    /// A backlog made earlier (`--prepare-only`), hard-linked into the inbox instead of generating one.
    var inboxFrom: URL?
    var timeout: TimeInterval
    var logLevel: String
    /// A journal made beforehand (SQLite), copied in as the gateway's before it starts: a run on
    /// a large journal (the console's load check) without admitting its rows one by one.
    var journalFrom: URL? = nil
    /// `[http] metrics_port` with `[console] enabled`: the console answers there during the run.
    var consolePort: UInt16? = nil
    /// The documents: issue 17's DMP-only PDFs (default), the mixed sizes with `hl7Percent` % HL7
    /// messages, or small PDFs (the large-backlog drain). Always to the DMP alone.
    var sizes: EndToEndWorkload.Sizes = .dmpOnly
    var hl7Percent = 0
    /// Documents per second dropped into the running gateway's inbox (0: the backlog is there
    /// before it starts). With a rate, each document's drop-to-acknowledged latency is read
    /// from the journal (the end of its DMP attempt) and reported as percentiles.
    var rate = 0.0
    /// `passerelle run` processes on the one PostgreSQL journal, each with its own folders and
    /// its share of the inputs (the DMP queue is shared: any node may send any document).
    var gateways = 1

    /// Node `n`'s folders: the first node's are `root`'s (the single-gateway layout).
    func nodeRoot(_ n: Int) -> URL { n == 0 ? root : root.appendingPathComponent("node\(n + 1)") }
    func inbox(_ n: Int) -> URL { nodeRoot(n).appendingPathComponent("inbox") }

    /// Issue 17's workloads, to the DMP only (the minimal endpoint is a DMP).
    static func workload(root oid: String, sizes: EndToEndWorkload.Sizes, hl7Percent: Int) -> EndToEndWorkload {
        EndToEndWorkload(sizes: sizes, hl7Percent: sizes == .dmpOnly ? 0 : hl7Percent, mailPercent: 0, builder: BenchDMP.builder, root: oid)
    }

    /// Writes `documents` inputs into `inboxes` (input i into inbox i mod count); the PDF bytes written.
    static func writeBacklog(documents: Int, into inboxes: [URL], oid: String, sizes: EndToEndWorkload.Sizes = .dmpOnly,
                             hl7Percent: Int = 0) throws -> (pdfBytes: Int, seconds: Double) {
        for inbox in inboxes {
            try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let workload = Self.workload(root: oid, sizes: sizes, hl7Percent: hl7Percent)
        let start = Date()
        var bytes = 0
        for i in 0..<documents {
            let item = try workload.item(i)
            for (name, data) in item.files {
                let path = inboxes[i % inboxes.count].appendingPathComponent(name).path
                guard FileManager.default.createFile(atPath: path + ".part", contents: data, attributes: [.posixPermissions: 0o600]),
                      rename(path + ".part", path) == 0 else { throw MinimalRunError("cannot write \(path)") }
            }
            bytes += item.pdfBytes
        }
        return (bytes, Date().timeIntervalSince(start))
    }

    /// The configuration `passerelle run` of node `n` is given: LocalGatewayConfiguration's,
    /// pointed at nginx, MSSanté off, the CDA XSD of the shared kit, the chosen journal
    /// (`postgresURL`: the database every node shares).
    func configurationText(endpoint: URL, node n: Int = 0, postgresURL: String? = nil) throws -> String {
        let fm = FileManager.default
        let schema = TestPaths.shared.appendingPathComponent("conformance/cda/xsd/cda/CDA_extended.xsd")
        let nodeRoot = nodeRoot(n)
        var settings = LocalGatewayConfiguration(writtenBy: "passerelle-bench e2e --endpoint minimal", pki: TestPaths.testPKI, root: nodeRoot, dmpURL: endpoint,
                                                 registryURL: nil, smtpPort: nil, cdaSchema: fm.fileExists(atPath: schema.path) ? schema : nil)
        settings.dmpConnections = connections
        settings.quietPeriodSeconds = 0
        if let consolePort, n == 0 {
            settings.metricsPort = consolePort
            settings.console = true
        }
        if !wrapper.isEmpty {
            // Under valgrind everything is ~50× slower: no timeout or lease may expire because of it.
            settings.dmpTimeoutSeconds = 600
            settings.leaseSeconds = 3600
        }
        var text = settings.text
        if journal == .postgresql {
            guard let url = postgresURL else { throw MinimalRunError("no PostgreSQL database for the journal") }
            let server = try PostgresTestServer.shared()
            let sqlite = "backend = \"sqlite\"\npath = \"\(nodeRoot.path)/journal/journal.sqlite\""
            guard text.contains(sqlite) else { throw MinimalRunError("the generated configuration has no SQLite [journal] section to replace") }
            // The patient key is the deployment's, not a node's: every node reads the same file.
            text = text.replacingOccurrences(of: sqlite, with: """
                backend = "postgresql"
                url = "\(url)"
                password_file = "\(server.passwordFile.path)"
                blob_cache = "\(nodeRoot.path)/journal/blob-cache"
                patient_key_file = "\(root.path)/journal/patient-key"
                """)
        }
        return text
    }

    func measure() async throws -> MinimalReport {
        let fm = FileManager.default
        for n in 0..<gateways {
            for sub in ["journal", "inbox"] {
                try fm.createDirectory(at: nodeRoot(n).appendingPathComponent(sub), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
        }
        let endpoint = try MinimalEndpoint(folder: root.appendingPathComponent("nginx"), pki: TestPaths.testPKI)
        defer { endpoint.stop() }
        let postgresURL = journal == .postgresql ? try PostgresTestServer.createDatabase(prefix: "bench") : nil
        var configurations: [(file: URL, configuration: PasserelleConfiguration)] = []
        for n in 0..<gateways {
            let file = nodeRoot(n).appendingPathComponent("passerelle.toml")
            try configurationText(endpoint: endpoint.url, node: n, postgresURL: postgresURL).write(to: file, atomically: true, encoding: .utf8)
            do { configurations.append((file, try PasserelleConfiguration.load(from: file.path))) } catch {
                throw MinimalRunError("the benchmark configuration is invalid: \(error.problems.map(\.description).joined(separator: "; "))")
            }
        }
        let configuration = configurations[0].configuration
        let inboxes = (0..<gateways).map(inbox)

        // The inputs: in the inboxes before the gateways start, or (with a rate) in a staging
        // folder beside them, renamed into an inbox at the rate once the gateways run.
        var pdfBytes = 0
        var generation = 0.0
        let staging = root.appendingPathComponent("staging")
        let targets = rate > 0 ? [staging] : inboxes
        if let inboxFrom {
            let start = Date()
            let names = try fm.contentsOfDirectory(atPath: inboxFrom.path).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".part") }.sorted()
            if rate > 0 { try fm.createDirectory(at: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) }
            let byStem = Dictionary(grouping: names, by: Self.stem)
            for (i, stem) in byStem.keys.sorted().enumerated() {
                for name in byStem[stem] ?? [] {
                    guard link(inboxFrom.appendingPathComponent(name).path, targets[i % targets.count].appendingPathComponent(name).path) == 0 else {
                        throw MinimalRunError("cannot link \(name) into the inbox (same file system needed): \(String(cString: strerror(errno)))")
                    }
                    if name.hasSuffix(".pdf") { pdfBytes += (try fm.attributesOfItem(atPath: inboxFrom.appendingPathComponent(name).path)[.size] as? Int) ?? 0 }
                }
            }
            guard byStem.count == documents else {
                throw MinimalRunError("\(inboxFrom.path) holds \(byStem.count) documents, not --documents \(documents)")
            }
            generation = Date().timeIntervalSince(start)
        } else {
            (pdfBytes, generation) = try Self.writeBacklog(documents: documents, into: targets, oid: configuration.structure.oid,
                                                           sizes: sizes, hl7Percent: hl7Percent)
        }

        // A journal made beforehand: its rows are not this run's (the run's outcomes are counted
        // above them), and it is read raw, so that this binary's migrations never touch the
        // journal of the gateway under test (which may be an older passerelle's).
        var journalFile: String?
        var earlier = (succeeded: 0, failed: 0)
        if case .sqlite(let path) = configuration.journal { journalFile = path }
        if let journalFrom {
            guard journal == .sqlite, let path = journalFile else { throw MinimalRunError("--journal-from takes an SQLite journal") }
            try fm.copyItem(at: journalFrom, to: URL(fileURLWithPath: path))
            earlier = try Self.dmpOutcomes(path)
        }

        // The gateways: `passerelle run`, as an operator starts it.
        var processes: [Process] = []
        defer { for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let endpointCPUBefore = endpoint.cpuSeconds
        let databaseCPUBefore = journal == .postgresql ? Self.postgresCPU() : nil
        let start = Date()
        for (n, node) in configurations.enumerated() {
            let gatewayLog = nodeRoot(n).appendingPathComponent("gateway.log")
            _ = fm.createFile(atPath: gatewayLog.path, contents: nil, attributes: [.posixPermissions: 0o600])
            let process = Process()
            let arguments = ["run", "--config", node.file.path, "--templates", TestPaths.templates.path, "--log-level", logLevel]
            if let first = wrapper.first {
                process.executableURL = URL(fileURLWithPath: first.contains("/") ? first : "/usr/bin/env")
                process.arguments = (first.contains("/") ? [] : [first]) + wrapper.dropFirst() + [gateway.path] + arguments
            } else {
                process.executableURL = gateway
                process.arguments = arguments
            }
            process.currentDirectoryURL = nodeRoot(n)
            process.standardOutput = try FileHandle(forWritingTo: gatewayLog)
            process.standardError = try FileHandle(forWritingTo: gatewayLog)
            try process.run()
            processes.append(process)
        }

        // With a rate: input i moves into its inbox at start + i / rate (the sidecar first, the
        // PDF completing the pair); the time of its last rename is its drop.
        let dropper: Task<[String: Double], any Error>? = rate <= 0 ? nil : Task.detached { [documents, rate, inboxes] in
            let names = try FileManager.default.contentsOfDirectory(atPath: staging.path).sorted()
            let byStem = Dictionary(grouping: names, by: Self.stem)
            var dropped: [String: Double] = [:]
            let clock = ContinuousClock(), begin = clock.now
            for (i, stem) in byStem.keys.sorted().prefix(documents).enumerated() {
                try await Task.sleep(until: begin + .seconds(Double(i) / rate), clock: clock)
                // The sidecar before the PDF (the scanner waits for both halves).
                let files = byStem[stem] ?? []
                for name in files.filter({ $0.hasSuffix(".json") }) + files.filter({ !$0.hasSuffix(".json") }) {
                    guard rename(staging.appendingPathComponent(name).path, inboxes[i % inboxes.count].appendingPathComponent(name).path) == 0 else {
                        throw MinimalRunError("cannot move \(name) into the inbox: \(String(cString: strerror(errno)))")
                    }
                }
                dropped[stem] = Date().timeIntervalSince1970
            }
            return dropped
        }
        defer { dropper?.cancel() }

        // Wait for nginx to have answered every document, then for the journal to say so.
        var progress = (count: -1, at: Date())
        let deadline = start.addingTimeInterval(timeout)
        var succeeded = 0, failed = 0
        var gatewayCPU = 0.0, peakRSS = 0
        var gatewayStat: (user: Double, system: Double, minorFaults: Int)?
        var end = Date()
        var store: (any JournalStore)?
        func sample() {
            let stats = processes.compactMap { ResourceSample.processStat($0.processIdentifier) }
            gatewayStat = stats.isEmpty ? nil : stats.reduce((0, 0, 0)) { ($0.0 + $1.user, $0.1 + $1.system, $0.2 + $1.minorFaults) }
            gatewayCPU = gatewayStat.map { $0.user + $0.system } ?? 0
            peakRSS = processes.map { Self.status($0.processIdentifier, "VmHWM") }.max() ?? 0
            end = Date()
        }
        while Date() < deadline {
            for process in processes where !process.isRunning {
                throw MinimalRunError("passerelle run exited (status \(process.terminationStatus)) before the end: see \(process.currentDirectoryURL?.path ?? root.path)/gateway.log")
            }
            let answered = endpoint.requestCount()
            if answered >= documents {
                if let journalFile {
                    let outcomes = try Self.dmpOutcomes(journalFile)
                    (succeeded, failed) = (outcomes.succeeded - earlier.succeeded, outcomes.failed - earlier.failed)
                } else {
                    if store == nil { store = try Journals.open(configuration.journal) }
                    let counts = try await store!.stateCounts().filter { $0.target == .dmp }
                    succeeded = counts.filter { TransmissionState.succeeded.contains($0.state) }.reduce(0) { $0 + $1.count }
                    failed = counts.filter { $0.state == .failed }.reduce(0) { $0 + $1.count }
                }
                if succeeded + failed >= documents {
                    sample()
                    break
                }
            }
            if answered != progress.count { progress = (answered, Date()) } else if Date().timeIntervalSince(progress.at) > (wrapper.isEmpty ? 60 : 600) { break }
            try await Task.sleep(for: .milliseconds(wrapper.isEmpty ? 20 : 500))
        }
        if gatewayCPU == 0 { sample() }
        let endpointCPU = endpoint.cpuSeconds - endpointCPUBefore
        // Before the SIGTERM: the gateway's backends exit with it, and their CPU with them.
        let databaseCPU = databaseCPUBefore.map { Self.postgresCPU() - $0 }
        // SIGTERM: `passerelle run` stops cleanly (under callgrind: writes its profile).
        for process in processes { kill(process.processIdentifier, SIGTERM) }
        let stopDeadline = Date().addingTimeInterval(wrapper.isEmpty ? 30 : 300)
        while processes.contains(where: \.isRunning) && Date() < stopDeadline { try await Task.sleep(for: .milliseconds(50)) }
        let exitStatus: Int32? = processes.contains(where: \.isRunning) ? nil : processes.map(\.terminationStatus).max()
        endpoint.stop()

        // Drop-to-acknowledged: the end of each document's sent DMP attempt, from the journal.
        var latency: MinimalReport.Latency?
        if let dropper {
            let dropped = try await dropper.value
            let acknowledged = try Self.dmpAcknowledged(configuration.journal, postgresURL: postgresURL)
            let seconds = dropped.compactMap { stem, at in acknowledged[stem].map { Double($0) / 1000 - at } }.sorted()
            func percentile(_ p: Double) -> Double { EndToEndReport.Latency.percentile(seconds, p) }
            latency = .init(rate: rate, measured: seconds.count, p50Seconds: percentile(0.5), p95Seconds: percentile(0.95),
                            p99Seconds: percentile(0.99), maxSeconds: seconds.last ?? 0)
        }

        let requests = endpoint.requests()
        let connections = Set(requests.map(\.connection)).count
        let reused = Set(requests.filter(\.reused).map(\.connection)).count
        let firstAck = requests.map(\.time).min() ?? 0, lastAck = requests.map(\.time).max() ?? 0
        let refused = configurations.reduce(0) { count, node in
            count + ((try? fm.contentsOfDirectory(atPath: node.configuration.folders.error)) ?? []).filter { !$0.hasSuffix(".error.txt") }.count
        }
        let elapsed = end.timeIntervalSince(start)
        return MinimalReport(
            workload: .init(documents: documents, sizes: sizes.rawValue, hl7Percent: sizes == .dmpOnly ? 0 : hl7Percent,
                            pdfBytesTotal: pdfBytes, pdfMeanKb: Double(pdfBytes) / Double(max(documents, 1)) / 1024,
                            journal: journal.rawValue, gateways: gateways, dmpConnections: self.connections, cdaSchema: configuration.cda.schema != nil,
                            generationSeconds: generation, cpus: ProcessInfo.processInfo.activeProcessorCount,
                            wrapper: wrapper.isEmpty ? nil : wrapper.joined(separator: " ")),
            result: .init(succeededTransmissions: succeeded, failedTransmissions: failed, refusedInputs: refused,
                          requests: requests.count, requestsNotOK: requests.filter { $0.status != 200 }.count,
                          elapsedSeconds: elapsed, documentsPerSecond: Double(succeeded) / max(elapsed, 1e-9),
                          firstToLastAnswerSeconds: lastAck - firstAck,
                          steadyDocumentsPerSecond: requests.count > 1 ? Double(requests.count - 1) / max(lastAck - firstAck, 1e-9) : 0,
                          gatewayExitStatus: exitStatus),
            latency: latency,
            tls: .init(connections: connections, handshakes: connections, resumedSessions: reused,
                       handshakesPerThousandDocuments: Double(connections) * 1000 / Double(max(documents, 1)),
                       maxRequestsPerConnection: requests.map(\.connectionRequests).max() ?? 0),
            cpu: .init(gatewaySeconds: gatewayCPU, gatewayMsPerDocument: gatewayCPU * 1000 / Double(max(succeeded, 1)),
                       gatewaySystemSeconds: gatewayStat?.system ?? 0,
                       gatewayMinorFaultsPerDocument: Double(gatewayStat?.minorFaults ?? 0) / Double(max(succeeded, 1)),
                       endpointSeconds: endpointCPU, databaseSeconds: databaseCPU,
                       databaseDurable: databaseCPU == nil ? nil : (try? PostgresTestServer.shared())?.durable, loadAverage: Self.loadAverage()),
            memory: .init(gatewayPeakRssMb: peakRSS / 1024))
    }

    /// An input's name without its extension: the PDF and its sidecar share it.
    static func stem(_ name: String) -> String { String(name.prefix { $0 != "." }) }

    /// When each input's DMP transmission was acknowledged (the end of its sent attempt, epoch
    /// milliseconds), by input name without extension; the same SQL for both journals.
    static func dmpAcknowledged(_ journal: PasserelleConfiguration.Journal, postgresURL: String?) throws -> [String: Int64] {
        let sql = """
            SELECT i.file_name AS name, MAX(a.ended_at) AS ended FROM inputs i
            JOIN transmissions t ON t.document_id = i.document_id AND t.version = i.version AND t.target = 'dmp'
            JOIN attempts a ON a.transmission_id = t.id AND a.outcome = 'sent'
            GROUP BY i.file_name
            """
        var acknowledged: [String: Int64] = [:]
        switch journal {
        case .sqlite(let path):
            let db = try SQLiteConnection(path: path, mode: .readOnly)
            defer { db.close() }
            for row in try db.query(sql) { if let name = row["name"].string, let ended = row["ended"].int { acknowledged[stem(name)] = Int64(ended) } }
        default:
            guard let postgresURL else { return [:] }
            let server = try PostgresTestServer.shared()
            let db = try PostgresConnection(PostgresConfiguration(url: postgresURL, passwordFile: server.passwordFile.path))
            defer { db.close() }
            for row in try db.query(sql) { if let name = row["name"].string, let ended = row["ended"].int64 { acknowledged[stem(name)] = ended } }
        }
        return acknowledged
    }

    /// The DMP transmissions of an SQLite journal that succeeded and that failed, read without
    /// opening it as a journal (no migration).
    static func dmpOutcomes(_ path: String) throws -> (succeeded: Int, failed: Int) {
        let db = try SQLiteConnection(path: path, mode: .readOnly)
        defer { db.close() }
        let succeeded = TransmissionState.succeeded.map { "'\($0.rawValue)'" }.sorted().joined(separator: ", ")
        let row = try db.query("""
            SELECT COALESCE(SUM(state IN (\(succeeded))), 0) AS ok, COALESCE(SUM(state = 'failed'), 0) AS failed
            FROM transmissions WHERE target = 'dmp'
            """).first
        return (row?["ok"].int ?? 0, row?["failed"].int ?? 0)
    }

    /// A /proc/<pid>/status field in kB.
    static func status(_ pid: Int32, _ field: String) -> Int {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") ?? 0
        }
        return 0
    }

    /// CPU seconds of the throwaway PostgreSQL server: the postmaster (first line of
    /// data/postmaster.pid) and its children (the backends, the WAL writer, the checkpointer…).
    static func postgresCPU() -> Double {
        guard let server = try? PostgresTestServer.shared(),
              let text = try? String(contentsOfFile: server.folder.appendingPathComponent("data/postmaster.pid").path, encoding: .utf8),
              let master = text.split(separator: "\n").first.flatMap({ Int32($0) }) else { return 0 }
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == master
        }
        return ([master] + children).reduce(0) { $0 + ResourceSample.processCPU($1) }
    }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }
}

struct MinimalRunError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The figures of one `e2e --endpoint minimal` run (JSON: snake_case).
struct MinimalReport: Encodable {
    /// Issue 17's throughput goals: the DMP-only backlog 570/s, the mixed one 300/s (none for a rate or small PDFs).
    var goalDocumentsPerSecond: Double? {
        guard latency == nil else { return nil }
        switch EndToEndWorkload.Sizes(rawValue: workload.sizes) {
        case .dmpOnly?: return 570
        case .mixed?: return 300
        default: return nil
        }
    }
    static let goalCPUMsPerDocument = 3.5

    struct Workload: Encodable {
        var documents: Int
        /// dmp-only (issue 17's 50–500 KB PDFs), mixed (50 KB–2 MB, with hl7Percent % HL7 v2) or small.
        var sizes: String
        var hl7Percent: Int
        var pdfBytesTotal: Int
        var pdfMeanKb: Double
        var journal: String
        /// `passerelle run` processes on the one journal.
        var gateways: Int
        var dmpConnections: Int
        var cdaSchema: Bool
        var generationSeconds: Double
        var cpus: Int
        var wrapper: String?
    }
    struct Result: Encodable {
        var succeededTransmissions: Int
        var failedTransmissions: Int
        var refusedInputs: Int
        /// Requests in nginx's access log (a retried document counts twice).
        var requests: Int
        var requestsNotOK: Int
        /// From the start of `passerelle run` (its start-up included) to the journal recording the last success.
        var elapsedSeconds: Double
        var documentsPerSecond: Double
        var firstToLastAnswerSeconds: Double
        /// (requests − 1) / (last answer − first answer): without the gateway's start-up.
        var steadyDocumentsPerSecond: Double
        var gatewayExitStatus: Int32?
    }
    /// `--rate`: from the drop (the rename into the inbox) to the end of the sent DMP attempt.
    struct Latency: Encodable {
        var rate: Double
        var measured: Int
        var p50Seconds: Double
        var p95Seconds: Double
        var p99Seconds: Double
        var maxSeconds: Double
    }
    struct TLS: Encodable {
        var connections: Int
        /// Full handshakes: session cache and tickets are off in nginx, so one per connection.
        var handshakes: Int
        var resumedSessions: Int
        var handshakesPerThousandDocuments: Double
        var maxRequestsPerConnection: Int
    }
    struct CPU: Encodable {
        /// utime + stime of the `passerelle run` process (start-up included) up to the last success.
        var gatewaySeconds: Double
        var gatewayMsPerDocument: Double
        /// stime alone: the kernel's share (file and socket copies, page faults, fsyncs).
        var gatewaySystemSeconds: Double
        /// Minor page faults (first touches of fresh memory: zeroed pages) per document.
        var gatewayMinorFaultsPerDocument: Double
        /// nginx master + worker.
        var endpointSeconds: Double
        /// `--journal postgresql`: the PostgreSQL server's processes (nil for SQLite).
        var databaseSeconds: Double?
        /// `--journal postgresql`: whether that server fsyncs its commits (``PostgresTestServer/durable``).
        var databaseDurable: Bool?
        /// /proc/loadavg at the end (1, 5, 15 min): wall-clock figures are only comparable at similar load.
        var loadAverage: String
    }
    struct Memory: Encodable {
        var gatewayPeakRssMb: Int
    }

    var benchmark = "e2e-minimal"
    var workload: Workload
    var result: Result
    var latency: Latency?
    var tls: TLS
    var cpu: CPU
    var memory: Memory

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(self)
    }

    func table() -> String {
        let w = workload, r = result
        func f(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
        var lines: [String?] = [
            "passerelle-bench e2e --endpoint minimal — \(w.documents) documents (DMP only, \(latency.map { "dropped at \(f($0.rate)) per second" } ?? "backlog")), \(w.cpus) CPUs, load average \(cpu.loadAverage)",
            "  workload      \(Self.describe(w)) (mean \(f(w.pdfMeanKb)) KB, \(f(Double(w.pdfBytesTotal) / 1_048_576)) MB); journal \(w.journal)\(w.gateways > 1 ? " shared by \(w.gateways) gateways" : ""); DMP connections \(w.dmpConnections); CDA XSD \(w.cdaSchema ? "on" : "off")",
            "  endpoint      nginx (mutual TLS, canned RegistryResponse): \(r.requests) requests, \(r.requestsNotOK) not 200",
            "  result        \(r.succeededTransmissions)/\(w.documents) succeeded, failed \(r.failedTransmissions), refused \(r.refusedInputs); "
                + "requests beyond one per document \(max(0, r.requests - w.documents))",
            "  elapsed       \(f(r.elapsedSeconds, 2)) s from the start of passerelle run (first → last answer \(f(r.firstToLastAnswerSeconds, 2)) s)",
            "  throughput    \(f(r.documentsPerSecond)) documents/s (steady \(f(r.steadyDocumentsPerSecond)))"
                + (goalDocumentsPerSecond.map { " — goal ≥ \(Int($0)): \(r.documentsPerSecond >= $0 ? "met" : "not met")" } ?? ""),
            latency.map { "  latency       drop → acknowledged, \($0.measured) documents: p50 \(f($0.p50Seconds, 3)) s, p95 \(f($0.p95Seconds, 3)) s, p99 \(f($0.p99Seconds, 3)) s (goal < 2 s at 100/s: \($0.p99Seconds < 2 ? "met" : "not met")), max \(f($0.maxSeconds, 3)) s" },
            "  gateway CPU   \(f(cpu.gatewaySeconds, 2)) s = \(f(cpu.gatewayMsPerDocument, 2)) ms per document — goal ≤ \(Self.goalCPUMsPerDocument): \(cpu.gatewayMsPerDocument <= Self.goalCPUMsPerDocument ? "met" : "not met"); nginx \(f(cpu.endpointSeconds, 2)) s"
                + (cpu.databaseSeconds.map { "; PostgreSQL server \(f($0, 2)) s (\(cpu.databaseDurable == true ? "durable commits" : "fsync off"))" } ?? ""),
            "  kernel        \(f(cpu.gatewaySystemSeconds, 2)) s of it in the kernel (\(f(100 * cpu.gatewaySystemSeconds / max(cpu.gatewaySeconds, 1e-9), 0)) %); \(f(cpu.gatewayMinorFaultsPerDocument, 0)) minor page faults per document",
            "  TLS           \(tls.connections) connections = \(tls.handshakes) full handshakes (\(f(tls.handshakesPerThousandDocuments)) per 1,000 documents), \(tls.resumedSessions) resumed; up to \(tls.maxRequestsPerConnection) requests on one connection",
            "  memory        gateway peak RSS \(memory.gatewayPeakRssMb) MB",
        ]
        if let wrapper = w.wrapper { lines.append("  wrapper       \(wrapper)") }
        return lines.compactMap { $0 }.joined(separator: "\n")
    }

    static func describe(_ w: Workload) -> String {
        switch EndToEndWorkload.Sizes(rawValue: w.sizes) {
        case .mixed?: "PDF + sidecar and \(w.hl7Percent) % HL7 v2 (producer CDA), qualified INS, 50 KB–2 MB PDFs"
        case .small?: "PDF + sidecar and \(w.hl7Percent) % HL7 v2 (producer CDA), qualified INS, small PDFs"
        default: "PDF + sidecar, qualified INS, 50–500 KB PDFs"
        }
    }
}
