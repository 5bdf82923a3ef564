import Foundation

/// The figures of one `passerelle-bench e2e` run, printed as a table and written as JSON
/// (snake_case keys, see ``json()``).
struct EndToEndReport: Encodable {
    /// The goal of issue 10 on the 2-core machine, both sides on it.
    static let goalDocumentsPerSecond = 300.0

    struct Workload: Encodable {
        var documents: Int
        /// `drop` (all at once), `rate` (paced) or `backlog` (in the inbox before the start).
        var mode: String
        var rate: Double
        var pdfSizes: String
        var hl7Messages: Int
        var pdfBytesTotal: Int
        var transmissions: Int
        var dmp: Int
        var mssantePS: Int
        var mssantePatient: Int
        var dmpConnections: Int
        var cdaSchema: Bool
        var generationSeconds: Double
        var cpus: Int
    }

    struct Result: Encodable {
        var acknowledgedDocuments: Int
        var acknowledgedTransmissions: Int
        var refusedInputs: Int
        var failedTransmissions: Int
        /// From the first drop (backlog: the gateway's start) to the last acknowledgement.
        var elapsedSeconds: Double
        var documentsPerSecond: Double
        var transmissionsPerSecond: Double
    }

    struct Latency: Encodable {
        var count: Int
        var p50: Double
        var p99: Double
        var max: Double

        init(_ seconds: [Double]) {
            let sorted = seconds.sorted()
            func at(_ p: Double) -> Double { Self.percentile(sorted, p) * 1000 }
            count = sorted.count
            p50 = at(0.5)
            p99 = at(0.99)
            max = (sorted.last ?? 0) * 1000
        }

        /// The nearest-rank percentile `p` (0–1) of `sorted` (ascending); 0 when empty.
        static func percentile(_ sorted: [Double], _ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Swift.max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))]
        }
    }

    struct CPU: Encodable {
        /// This process (gateway + DMP endpoint + the bench's polling), user and system.
        var processUserSeconds: Double
        var processSystemSeconds: Double
        /// The DMP endpoint's connection threads (TLS, HTTP, XSD, signature checks).
        var endpointSeconds: Double
        /// Process minus endpoint.
        var gatewaySeconds: Double
        /// The SMTP relay (a Python child process).
        var relaySeconds: Double
        var gatewayMsPerDocument: Double

        init(before: ResourceSample, after: ResourceSample, documents: Int) {
            processUserSeconds = after.user - before.user
            processSystemSeconds = after.system - before.system
            endpointSeconds = after.endpoint - before.endpoint
            gatewaySeconds = processUserSeconds + processSystemSeconds - endpointSeconds
            relaySeconds = after.relay - before.relay
            gatewayMsPerDocument = gatewaySeconds * 1000 / Double(max(documents, 1))
        }
    }

    struct Memory: Encodable {
        /// VmHWM from the gateway's start (the endpoint shares the process).
        var peakRssMb: Int
        /// ru_maxrss: since the process started (document generation included).
        var maxRssSinceStartMb: Int
    }

    struct Stage: Encodable {
        var stage: String
        var calls: Int
        var wallSeconds: Double
        /// Thread CPU time, for the calls that ran on one thread (nil: measured elsewhere).
        var cpuSeconds: Double?
        var cpuCalls: Int
        var cpuMsPerDocument: Double?
        var wallMsPerCall: Double
    }

    var benchmark = "e2e"
    var workload: Workload
    var result: Result
    var latencyMs: [String: Latency]
    var cpu: CPU
    var memory: Memory
    var stages: [Stage]

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(self)
    }

    func table() -> String {
        let w = workload, r = result
        var lines: [String] = []
        func f(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
        lines.append("passerelle-bench e2e — \(w.documents) documents (\(w.mode)\(w.mode == "rate" ? " \(f(w.rate)) docs/s" : "")), \(w.cpus) CPUs")
        lines.append("  workload      \(w.documents - w.hl7Messages) PDF + sidecar (\(w.pdfSizes) sizes, \(f(Double(w.pdfBytesTotal) / 1_048_576)) MB of PDF), \(w.hl7Messages) HL7 v2")
        lines.append("                transmissions \(w.transmissions): dmp \(w.dmp), mssante_ps \(w.mssantePS), mssante_patient \(w.mssantePatient); DMP connections \(w.dmpConnections); CDA XSD \(w.cdaSchema ? "on" : "off")")
        lines.append("  acknowledged  \(r.acknowledgedDocuments)/\(w.documents) documents, \(r.acknowledgedTransmissions)/\(w.transmissions) transmissions; refused \(r.refusedInputs), failed \(r.failedTransmissions)")
        lines.append("  elapsed       \(f(r.elapsedSeconds, 2)) s")
        lines.append("  throughput    \(f(r.documentsPerSecond)) documents/s, \(f(r.transmissionsPerSecond)) transmissions/s (goal ≥ \(Int(Self.goalDocumentsPerSecond)) documents/s: \(r.documentsPerSecond >= Self.goalDocumentsPerSecond ? "met" : "not met"))")
        for key in ["document", "dmp", "mssante"] {
            guard let l = latencyMs[key], l.count > 0 else { continue }
            lines.append("  latency \(key.padding(toLength: 9, withPad: " ", startingAt: 0)) p50 \(f(l.p50, 0)) ms  p99 \(f(l.p99, 0)) ms  max \(f(l.max, 0)) ms  (n=\(l.count), drop → acknowledged)")
        }
        let c = cpu
        lines.append("  CPU           process \(f(c.processUserSeconds + c.processSystemSeconds, 2)) s (user \(f(c.processUserSeconds, 2)), system \(f(c.processSystemSeconds, 2))) = gateway \(f(c.gatewaySeconds, 2)) s + DMP endpoint \(f(c.endpointSeconds, 2)) s; relay \(f(c.relaySeconds, 2)) s")
        lines.append("                gateway \(f(c.gatewayMsPerDocument, 2)) ms CPU per document")
        lines.append("  memory        peak RSS \(memory.peakRssMb) MB during the run (gateway and DMP endpoint share the process); \(memory.maxRssSinceStartMb) MB since start")
        lines.append("")
        lines.append("  STAGE       CALLS     WALL s   WALL ms/call    CPU s   CPU ms/doc   SHARE OF GATEWAY CPU")
        var attributed = 0.0
        for s in stages {
            let cpuText = s.cpuSeconds.map { f($0, 2) } ?? "-"
            let perDoc = s.cpuMsPerDocument.map { f($0, 3) } ?? "-"
            let share = s.cpuSeconds.map { f(100 * $0 / max(c.gatewaySeconds, 1e-9)) + " %" } ?? "(on other threads: transports, journal lane)"
            attributed += s.cpuSeconds ?? 0
            lines.append("  " + [s.stage.padding(toLength: 10, withPad: " ", startingAt: 0), String(s.calls).leftPad(7), f(s.wallSeconds, 2).leftPad(10),
                                 f(s.wallMsPerCall, 3).leftPad(14), cpuText.leftPad(8), perDoc.leftPad(12), "  " + share].joined(separator: " "))
        }
        let rest = c.gatewaySeconds - attributed
        lines.append("  " + ["other".padding(toLength: 10, withPad: " ", startingAt: 0), "".leftPad(7), "".leftPad(10), "".leftPad(14), f(rest, 2).leftPad(8),
                             f(rest * 1000 / Double(max(r.acknowledgedDocuments, 1)), 3).leftPad(12),
                             "  " + f(100 * rest / max(c.gatewaySeconds, 1e-9)) + " % (journal lane and blob threads, TLS client + curl, inbox watcher, runtime)"].joined(separator: " "))
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
