import BenchSupport
import Foundation
import Journal
import PasserelleCore
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

    var inbox: URL { root.appendingPathComponent("inbox") }

    /// The DMP-only workload of issue 17: PDF + sidecar, qualified INS, DMP only, 50–500 KB PDFs.
    static func workload(root oid: String) -> EndToEndWorkload {
        EndToEndWorkload(sizes: .dmpOnly, hl7Percent: 0, mailPercent: 0, builder: BenchDMP.builder, root: oid)
    }

    /// Writes the backlog (`documents` inputs) into `inbox`; the PDF bytes written.
    static func writeBacklog(documents: Int, into inbox: URL, oid: String) throws -> (pdfBytes: Int, seconds: Double) {
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let workload = Self.workload(root: oid)
        let start = Date()
        var bytes = 0
        for i in 0..<documents {
            let item = try workload.item(i)
            for (name, data) in item.files {
                let path = inbox.appendingPathComponent(name).path
                guard FileManager.default.createFile(atPath: path + ".part", contents: data, attributes: [.posixPermissions: 0o600]),
                      rename(path + ".part", path) == 0 else { throw MinimalRunError("cannot write \(path)") }
            }
            bytes += item.pdfBytes
        }
        return (bytes, Date().timeIntervalSince(start))
    }

    /// The configuration `passerelle run` is given: LocalGatewayConfiguration's, pointed at nginx,
    /// MSSanté off, the CDA XSD of the shared kit, the chosen journal.
    func configurationText(endpoint: URL) throws -> String {
        let fm = FileManager.default
        let schema = TestPaths.shared.appendingPathComponent("conformance/cda/xsd/cda/CDA_extended.xsd")
        var settings = LocalGatewayConfiguration(writtenBy: "passerelle-bench e2e --endpoint minimal", pki: TestPaths.testPKI, root: root, dmpURL: endpoint,
                                                 registryURL: nil, smtpPort: nil, cdaSchema: fm.fileExists(atPath: schema.path) ? schema : nil)
        settings.dmpConnections = connections
        settings.quietPeriodSeconds = 0
        if let consolePort {
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
            let url = try PostgresTestServer.createDatabase(prefix: "bench")
            let server = try PostgresTestServer.shared()
            let sqlite = "backend = \"sqlite\"\npath = \"\(root.path)/journal/journal.sqlite\""
            guard text.contains(sqlite) else { throw MinimalRunError("the generated configuration has no SQLite [journal] section to replace") }
            text = text.replacingOccurrences(of: sqlite, with: """
                backend = "postgresql"
                url = "\(url)"
                password_file = "\(server.passwordFile.path)"
                blob_cache = "\(root.path)/journal/blob-cache"
                patient_key_file = "\(root.path)/journal/patient-key"
                """)
        }
        return text
    }

    func measure() async throws -> MinimalReport {
        let fm = FileManager.default
        for sub in ["journal", "inbox"] {
            try fm.createDirectory(at: root.appendingPathComponent(sub), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let endpoint = try MinimalEndpoint(folder: root.appendingPathComponent("nginx"), pki: TestPaths.testPKI)
        defer { endpoint.stop() }
        let configFile = root.appendingPathComponent("passerelle.toml")
        try configurationText(endpoint: endpoint.url).write(to: configFile, atomically: true, encoding: .utf8)
        let configuration: PasserelleConfiguration
        do { configuration = try PasserelleConfiguration.load(from: configFile.path) } catch {
            throw MinimalRunError("the benchmark configuration is invalid: \(error.problems.map(\.description).joined(separator: "; "))")
        }

        // The backlog, before the gateway starts.
        var pdfBytes = 0
        var generation = 0.0
        if let inboxFrom {
            let start = Date()
            let names = try fm.contentsOfDirectory(atPath: inboxFrom.path).filter { $0.hasSuffix(".pdf") || $0.hasSuffix(".json") }.sorted()
            for name in names {
                guard link(inboxFrom.appendingPathComponent(name).path, inbox.appendingPathComponent(name).path) == 0 else {
                    throw MinimalRunError("cannot link \(name) into the inbox (same file system needed): \(String(cString: strerror(errno)))")
                }
                if name.hasSuffix(".pdf") { pdfBytes += (try fm.attributesOfItem(atPath: inboxFrom.appendingPathComponent(name).path)[.size] as? Int) ?? 0 }
            }
            guard names.count == 2 * documents else {
                throw MinimalRunError("\(inboxFrom.path) holds \(names.count / 2) documents, not --documents \(documents)")
            }
            generation = Date().timeIntervalSince(start)
        } else {
            (pdfBytes, generation) = try Self.writeBacklog(documents: documents, into: inbox, oid: configuration.structure.oid)
        }

        // A journal made beforehand: its rows are not this run's (the run's outcomes are counted
        // above them), and it is read raw, so that this binary's migrations never touch the
        // journal of the gateway under test (which may be an older passerelle's).
        var journalFile: String?
        var earlier = (succeeded: 0, failed: 0)
        if let journalFrom {
            guard journal == .sqlite, case .sqlite(let path) = configuration.journal else {
                throw MinimalRunError("--journal-from takes an SQLite journal")
            }
            try fm.copyItem(at: journalFrom, to: URL(fileURLWithPath: path))
            journalFile = path
            earlier = try Self.dmpOutcomes(path)
        }

        // The gateway: `passerelle run`, as an operator starts it.
        let gatewayLog = root.appendingPathComponent("gateway.log")
        _ = fm.createFile(atPath: gatewayLog.path, contents: nil, attributes: [.posixPermissions: 0o600])
        let process = Process()
        let arguments = ["run", "--config", configFile.path, "--templates", TestPaths.templates.path, "--log-level", logLevel]
        if let first = wrapper.first {
            process.executableURL = URL(fileURLWithPath: first.contains("/") ? first : "/usr/bin/env")
            process.arguments = (first.contains("/") ? [] : [first]) + wrapper.dropFirst() + [gateway.path] + arguments
        } else {
            process.executableURL = gateway
            process.arguments = arguments
        }
        process.currentDirectoryURL = root
        process.standardOutput = try FileHandle(forWritingTo: gatewayLog)
        process.standardError = try FileHandle(forWritingTo: gatewayLog)
        let endpointCPUBefore = endpoint.cpuSeconds
        let databaseCPUBefore = journal == .postgresql ? Self.postgresCPU() : nil
        let start = Date()
        try process.run()
        let pid = process.processIdentifier
        defer {
            if process.isRunning { kill(pid, SIGKILL) }
        }

        // Wait for nginx to have answered every document, then for the journal to say so.
        var progress = (count: -1, at: Date())
        let deadline = start.addingTimeInterval(timeout)
        var succeeded = 0, failed = 0
        var gatewayCPU = 0.0, peakRSS = 0
        var gatewayStat: (user: Double, system: Double, minorFaults: Int)?
        var end = Date()
        var store: (any JournalStore)?
        while Date() < deadline {
            guard process.isRunning else {
                throw MinimalRunError("passerelle run exited (status \(process.terminationStatus)) before the end: see \(gatewayLog.path)")
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
                    end = Date()
                    gatewayStat = ResourceSample.processStat(pid)
                    gatewayCPU = gatewayStat.map { $0.user + $0.system } ?? 0
                    peakRSS = Self.status(pid, "VmHWM")
                    break
                }
            }
            if answered != progress.count { progress = (answered, Date()) } else if Date().timeIntervalSince(progress.at) > (wrapper.isEmpty ? 60 : 600) { break }
            try await Task.sleep(for: .milliseconds(wrapper.isEmpty ? 20 : 500))
        }
        if gatewayCPU == 0 {
            gatewayStat = ResourceSample.processStat(pid)
            gatewayCPU = gatewayStat.map { $0.user + $0.system } ?? 0
            peakRSS = Self.status(pid, "VmHWM")
            end = Date()
        }
        let endpointCPU = endpoint.cpuSeconds - endpointCPUBefore
        // Before the SIGTERM: the gateway's backends exit with it, and their CPU with them.
        let databaseCPU = databaseCPUBefore.map { Self.postgresCPU() - $0 }
        // SIGTERM: `passerelle run` stops cleanly (under callgrind: writes its profile).
        kill(pid, SIGTERM)
        let stopDeadline = Date().addingTimeInterval(wrapper.isEmpty ? 30 : 300)
        while process.isRunning && Date() < stopDeadline { try await Task.sleep(for: .milliseconds(50)) }
        let exitStatus: Int32? = process.isRunning ? nil : process.terminationStatus
        endpoint.stop()

        let requests = endpoint.requests()
        let connections = Set(requests.map(\.connection)).count
        let reused = Set(requests.filter(\.reused).map(\.connection)).count
        let firstAck = requests.map(\.time).min() ?? 0, lastAck = requests.map(\.time).max() ?? 0
        let refused = ((try? fm.contentsOfDirectory(atPath: configuration.folders.error)) ?? []).filter { !$0.hasSuffix(".error.txt") }.count
        let elapsed = end.timeIntervalSince(start)
        return MinimalReport(
            workload: .init(documents: documents, pdfBytesTotal: pdfBytes, pdfMeanKb: Double(pdfBytes) / Double(max(documents, 1)) / 1024,
                            journal: journal.rawValue, dmpConnections: self.connections, cdaSchema: configuration.cda.schema != nil,
                            generationSeconds: generation, cpus: ProcessInfo.processInfo.activeProcessorCount,
                            wrapper: wrapper.isEmpty ? nil : wrapper.joined(separator: " ")),
            result: .init(succeededTransmissions: succeeded, failedTransmissions: failed, refusedInputs: refused,
                          requests: requests.count, requestsNotOK: requests.filter { $0.status != 200 }.count,
                          elapsedSeconds: elapsed, documentsPerSecond: Double(succeeded) / max(elapsed, 1e-9),
                          firstToLastAnswerSeconds: lastAck - firstAck,
                          steadyDocumentsPerSecond: requests.count > 1 ? Double(requests.count - 1) / max(lastAck - firstAck, 1e-9) : 0,
                          gatewayExitStatus: exitStatus),
            tls: .init(connections: connections, handshakes: connections, resumedSessions: reused,
                       handshakesPerThousandDocuments: Double(connections) * 1000 / Double(max(documents, 1)),
                       maxRequestsPerConnection: requests.map(\.connectionRequests).max() ?? 0),
            cpu: .init(gatewaySeconds: gatewayCPU, gatewayMsPerDocument: gatewayCPU * 1000 / Double(max(succeeded, 1)),
                       gatewaySystemSeconds: gatewayStat?.system ?? 0,
                       gatewayMinorFaultsPerDocument: Double(gatewayStat?.minorFaults ?? 0) / Double(max(succeeded, 1)),
                       endpointSeconds: endpointCPU, databaseSeconds: databaseCPU, loadAverage: Self.loadAverage()),
            memory: .init(gatewayPeakRssMb: peakRSS / 1024))
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
    static let goalDocumentsPerSecond = 570.0
    static let goalCPUMsPerDocument = 3.5

    struct Workload: Encodable {
        var documents: Int
        var pdfBytesTotal: Int
        var pdfMeanKb: Double
        var journal: String
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
        /// /proc/loadavg at the end (1, 5, 15 min): wall-clock figures are only comparable at similar load.
        var loadAverage: String
    }
    struct Memory: Encodable {
        var gatewayPeakRssMb: Int
    }

    var benchmark = "e2e-minimal"
    var workload: Workload
    var result: Result
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
        var lines = [
            "passerelle-bench e2e --endpoint minimal — \(w.documents) documents (DMP only, backlog), \(w.cpus) CPUs, load average \(cpu.loadAverage)",
            "  workload      PDF + sidecar, qualified INS, 50–500 KB PDFs (mean \(f(w.pdfMeanKb)) KB, \(f(Double(w.pdfBytesTotal) / 1_048_576)) MB); journal \(w.journal); DMP connections \(w.dmpConnections); CDA XSD \(w.cdaSchema ? "on" : "off")",
            "  endpoint      nginx (mutual TLS, canned RegistryResponse): \(r.requests) requests, \(r.requestsNotOK) not 200",
            "  result        \(r.succeededTransmissions)/\(w.documents) succeeded, failed \(r.failedTransmissions), refused \(r.refusedInputs)",
            "  elapsed       \(f(r.elapsedSeconds, 2)) s from the start of passerelle run (first → last answer \(f(r.firstToLastAnswerSeconds, 2)) s)",
            "  throughput    \(f(r.documentsPerSecond)) documents/s (steady \(f(r.steadyDocumentsPerSecond))) — goal ≥ \(Int(Self.goalDocumentsPerSecond)): \(r.documentsPerSecond >= Self.goalDocumentsPerSecond ? "met" : "not met")",
            "  gateway CPU   \(f(cpu.gatewaySeconds, 2)) s = \(f(cpu.gatewayMsPerDocument, 2)) ms per document — goal ≤ \(Self.goalCPUMsPerDocument): \(cpu.gatewayMsPerDocument <= Self.goalCPUMsPerDocument ? "met" : "not met"); nginx \(f(cpu.endpointSeconds, 2)) s"
                + (cpu.databaseSeconds.map { "; PostgreSQL server \(f($0, 2)) s" } ?? ""),
            "  kernel        \(f(cpu.gatewaySystemSeconds, 2)) s of it in the kernel (\(f(100 * cpu.gatewaySystemSeconds / max(cpu.gatewaySeconds, 1e-9), 0)) %); \(f(cpu.gatewayMinorFaultsPerDocument, 0)) minor page faults per document",
            "  TLS           \(tls.connections) connections = \(tls.handshakes) full handshakes (\(f(tls.handshakesPerThousandDocuments)) per 1,000 documents), \(tls.resumedSessions) resumed; up to \(tls.maxRequestsPerConnection) requests on one connection",
            "  memory        gateway peak RSS \(memory.gatewayPeakRssMb) MB",
        ]
        if let wrapper = w.wrapper { lines.append("  wrapper       \(wrapper)") }
        return lines.joined(separator: "\n")
    }
}
