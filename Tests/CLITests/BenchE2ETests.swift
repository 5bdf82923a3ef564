import Foundation
import Testing
import TestSupport

/// `passerelle-bench e2e` on a few documents, so that the benchmark cannot rot unnoticed: the
/// real local DMP endpoint, the real aiosmtpd relay, the gateway; every transmission must be
/// acknowledged and the JSON must carry the figures the report is made of.
@Suite("passerelle-bench e2e", .serialized)
struct BenchE2ETests {
    /// `passerelle-bench`, built next to `passerelle` (or $PASSERELLE_BENCH_BIN).
    static var binary: String? {
        if let explicit = ProcessInfo.processInfo.environment["PASSERELLE_BENCH_BIN"] { return explicit }
        guard let passerelle = CLI.binary else { return nil }
        let path = URL(fileURLWithPath: passerelle).deletingLastPathComponent().appendingPathComponent("passerelle-bench").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// A JSON number, whichever type JSONSerialization gave it.
    static func number(_ value: Any?) -> Double { (value as? NSNumber)?.doubleValue ?? -1 }

    @Test func twentyDocumentsAreAllAcknowledgedAndTheJSONHasTheFigures() throws {
        let binary = try #require(Self.binary, "passerelle-bench not found: run `swift build` (or set PASSERELLE_BENCH_BIN)")
        let root = try TestPaths.temporaryDirectory("bench-e2e")
        defer { try? FileManager.default.removeItem(at: root) }
        let json = root.appendingPathComponent("e2e.json")
        let started = Date()
        let result = try ProcessRunner.run(binary, ["e2e", "--documents", "20", "--json", json.path, "--folder", root.appendingPathComponent("run").path,
                                                    "--timeout", "60"], currentDirectory: TestPaths.repositoryRoot)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(result.stdout.contains("documents/s") && result.stdout.contains("STAGE"), "\(result.stdout)")

        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        #expect(Set(object.keys) == ["benchmark", "workload", "result", "latency_ms", "cpu", "memory", "stages"])
        let workload = try #require(object["workload"] as? [String: Any])
        let outcome = try #require(object["result"] as? [String: Any])
        #expect(workload["documents"] as? Int == 20)
        let transmissions = try #require(workload["transmissions"] as? Int)
        #expect(transmissions > 20, "the seeded mix mails some documents too")
        #expect((workload["hl7_messages"] as? Int ?? 0) > 0)
        #expect(outcome["acknowledged_documents"] as? Int == 20)
        #expect(outcome["acknowledged_transmissions"] as? Int == transmissions)
        #expect(outcome["refused_inputs"] as? Int == 0)
        #expect(outcome["failed_transmissions"] as? Int == 0)
        #expect(Self.number(outcome["documents_per_second"]) > 0)

        let latency = try #require(object["latency_ms"] as? [String: [String: Any]])
        for key in ["document", "dmp", "mssante"] {
            let l = try #require(latency[key], "latency_ms.\(key)")
            #expect(Self.number(l["count"]) > 0 && Self.number(l["p50"]) > 0, "\(key): \(l)")
            #expect(Self.number(l["p50"]) <= Self.number(l["p99"]) && Self.number(l["p99"]) <= Self.number(l["max"]))
        }
        #expect(latency["document"]?["count"] as? Int == 20)

        let cpu = try #require(object["cpu"] as? [String: Any])
        #expect(Self.number(cpu["gateway_seconds"]) > 0 && Self.number(cpu["endpoint_seconds"]) > 0)
        let memory = try #require(object["memory"] as? [String: Any])
        #expect(Self.number(memory["peak_rss_mb"]) > 0)

        let stages = try #require(object["stages"] as? [[String: Any]])
        #expect(stages.compactMap { $0["stage"] as? String } == ["parse", "cda_build", "validate", "sign", "send", "journal"])
        for stage in stages {
            let name = stage["stage"] as? String ?? "?"
            #expect((stage["calls"] as? Int ?? 0) >= 20, "\(name): \(stage)")
            // The send and the journal run on other threads (transport executors, the SQLite
            // lane): wall time only; their CPU is in the process total.
            if name == "send" || name == "journal" { #expect(stage["cpu_seconds"] == nil, "\(name): \(stage)") } else {
                #expect(Self.number(stage["cpu_seconds"]) > 0, "\(name): \(stage)")
            }
        }
    }

    /// `--endpoint minimal`: nginx (installed by scripts/setup.sh) answering over mutual TLS, the
    /// `passerelle run` binary as a child process, the DMP-only backlog. Every document must be
    /// answered once, on few connections (keep-alive), and the JSON must carry the figures.
    @Test(.timeLimit(.minutes(1)))
    func minimalEndpointTwentyDocumentsOnKeptAliveConnections() throws {
        let binary = try #require(Self.binary, "passerelle-bench not found: run `swift build` (or set PASSERELLE_BENCH_BIN)")
        let nginx = ProcessInfo.processInfo.environment["PASSERELLE_NGINX"] ?? "/usr/sbin/nginx"
        try #require(FileManager.default.isExecutableFile(atPath: nginx), "nginx is not installed: run scripts/setup.sh (nginx-light)")
        let root = try TestPaths.temporaryDirectory("bench-minimal")
        defer { try? FileManager.default.removeItem(at: root) }
        let json = root.appendingPathComponent("minimal.json")
        let result = try ProcessRunner.run(binary, ["e2e", "--endpoint", "minimal", "--documents", "20", "--dmp-connections", "2", "--json", json.path,
                                                    "--folder", root.appendingPathComponent("run").path, "--timeout", "45"],
                                           currentDirectory: TestPaths.repositoryRoot)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("documents/s") && result.stdout.contains("full handshakes"), "\(result.stdout)")

        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        #expect(Set(object.keys) == ["benchmark", "workload", "result", "tls", "cpu", "memory"])
        let workload = try #require(object["workload"] as? [String: Any])
        #expect(workload["documents"] as? Int == 20)
        #expect(workload["dmp_connections"] as? Int == 2)
        let meanKB = Self.number(workload["pdf_mean_kb"])
        #expect(meanKB >= 50 && meanKB <= 500, "the DMP-only workload has 50–500 KB PDFs: \(meanKB)")
        let outcome = try #require(object["result"] as? [String: Any])
        #expect(outcome["succeeded_transmissions"] as? Int == 20)
        #expect(outcome["failed_transmissions"] as? Int == 0)
        #expect(outcome["refused_inputs"] as? Int == 0)
        #expect(outcome["requests"] as? Int == 20, "one request per document at the endpoint")
        #expect(outcome["requests_not_ok"] as? Int == 0)
        #expect(outcome["gateway_exit_status"] as? Int == 0, "passerelle run stops cleanly on SIGTERM")
        #expect(Self.number(outcome["documents_per_second"]) > 0)

        // Keep-alive: at most one connection (one handshake) per configured DMP connection.
        let tls = try #require(object["tls"] as? [String: Any])
        let connections = try #require(tls["connections"] as? Int)
        #expect(connections >= 1 && connections <= 2, "\(tls)")
        #expect(tls["handshakes"] as? Int == connections)
        #expect(Self.number(tls["handshakes_per_thousand_documents"]) == Double(connections) * 50)

        let cpu = try #require(object["cpu"] as? [String: Any])
        #expect(Self.number(cpu["gateway_seconds"]) > 0 && Self.number(cpu["gateway_ms_per_document"]) > 0)
        let memory = try #require(object["memory"] as? [String: Any])
        #expect(Self.number(memory["gateway_peak_rss_mb"]) > 0)
    }
}
