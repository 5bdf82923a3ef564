import IHE
import DMP
import Foundation
import Journal
import PasserelleCore
import Testing
import TestSupport

/// Two `passerelle run` processes (two gateway nodes, each with its own folders and blob cache)
/// share one PostgreSQL journal: every document reaches the DMP endpoint exactly once.
@Suite(.serialized) struct TwoNodeTests {
    @Test(.timeLimit(.minutes(3)))
    func twoRunProcessesOnOnePostgreSQLNeverSendTheSameTransmissionTwice() async throws {
        let url = try PostgresTestServer.createDatabase(prefix: "nodes")
        let server = try PostgresTestServer.shared()
        let endpoint = try Harness.endpoint()
        let shared = try TestPaths.temporaryDirectory("passerelle-nodes")
        let patientKey = shared.appendingPathComponent("patient-key").path  // one secret for every node
        func node() throws -> Harness {
            try Harness(endpoint: endpoint, lease: 30, quiet: 0, journal: """
                backend = "postgresql"
                url = "\(url)"
                password_file = "\(server.passwordFile.path)"
                blob_cache = "blob-cache"
                patient_key_file = "\(patientKey)"
                """)
        }
        let a = try node(), b = try node()
        // A DMP that takes its time, as a real one does: node A's two workers cannot drain the
        // queue alone before node B's are polling.
        for _ in 0..<60 { endpoint.fail(.slow(seconds: 0.05)) }
        defer { a.cleanUp(); b.cleanUp() }

        // Every document enters through node A; node B's workers claim from the same queue and
        // read the documents from the database (B's blob cache starts empty).
        let total = 60
        var expected = Set<String>()
        let pdf = Documents.pdf("Compte rendu, deux nœuds")
        for i in 0..<total {
            let m = Documents.metadata(DocumentKind.allCases[i % DocumentKind.allCases.count])
            expected.insert(DocumentEntryMapper.uniqueId(m.id!))
            try a.drop(String(format: "doc%03d.json", i), sidecar: m)
            try a.drop(String(format: "doc%03d.pdf", i), pdf)
        }
        var logs: [URL] = []
        var processes: [Process] = []
        for h in [a, b] {
            let log = h.root.appendingPathComponent("passerelle.log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try #require(CrashTests.binary, "passerelle binary not found"))
            process.arguments = ["run", "--config", h.configPath, "--templates", TestPaths.templates.path, "--log-level", "info"]
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            processes.append(process)
            logs.append(log)
        }
        let journal = try Journals.open(.postgresql(url: url, passwordFile: server.passwordFile.path,
                                                    blobCache: shared.appendingPathComponent("cache").path))
        let drained = try await Harness.waitUntil(timeout: 120) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == total
        }
        for p in processes { kill(p.processIdentifier, SIGTERM) }
        for p in processes { p.waitUntilExit() }
        let texts = logs.map { (try? String(contentsOf: $0, encoding: .utf8)) ?? "" }
        #expect(drained, "not drained; logs: \(texts.map { String($0.suffix(1500)) })")
        #expect(processes.allSatisfy { $0.terminationStatus == 0 }, "SIGTERM is a clean stop")

        // The endpoint: every document once, and no second submission of anything (not even one
        // the DMP would have recognised as a duplicate).
        let stored = endpoint.storedDocuments
        #expect(Set(stored.filter { expected.contains($0.uniqueId) }.map(\.uniqueId)) == expected)
        #expect(stored.count == 2 * total, "each document + its submission-set signature, nothing twice: \(stored.count)")
        #expect(endpoint.rejections.isEmpty, "\(endpoint.rejections.prefix(3))")
        // The journal: one transmission per document, one attempt each.
        let all = try await journal.transmissions(matching: TransmissionFilter())
        #expect(all.count == total)
        #expect(all.allSatisfy { $0.state == .acknowledged && $0.attempts == 1 })
        // Both nodes did send: the queue really was shared.
        let sends = texts.map { $0.components(separatedBy: "\n").filter { $0.contains("sent") && $0.contains("acknowledged") }.count }
        print("two nodes on PostgreSQL: \(total) documents, sends per node \(sends)")
        #expect(sends.allSatisfy { $0 > 0 }, "sends per node: \(sends)")
    }
}
