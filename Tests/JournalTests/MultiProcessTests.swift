import Foundation
import Journal
import PasserelleCore
import PostgresKit
import TestSupport
import Testing

/// Two separate OS processes (this test binary started again in "worker" mode) claim from one
/// journal (SQLite file, or PostgreSQL database as two gateway nodes would): no transmission
/// may be claimed by both.
@Suite struct MultiProcessClaimTests {
    static let environment = ProcessInfo.processInfo.environment
    static let workerDatabase = environment["PASSERELLE_JOURNAL_WORKER_DB"]

    @Test(arguments: JournalBackend.allCases) func twoProcessesNeverClaimTheSameTransmission(_ backend: JournalBackend) async throws {
        let f = try JournalFixture(backend)
        let count = 150
        for n in 0..<count { try await f.queued(n, targets: [.dmp]) }
        var processes: [(Process, URL)] = []
        for name in ["P1", "P2"] {
            let output = f.folder.appendingPathComponent("\(name).claimed")
            let process = try WorkerProcess.start(filter: "MultiProcessClaimTests/claimWorker", environment: [
                "PASSERELLE_JOURNAL_WORKER_DB": f.postgresURL ?? f.databasePath,
                "PASSERELLE_JOURNAL_WORKER_BACKEND": backend.rawValue,
                "PASSERELLE_JOURNAL_WORKER_PASSWORD_FILE": backend == .postgresql ? try PostgresTestServer.shared().passwordFile.path : "",
                "PASSERELLE_JOURNAL_WORKER_BLOBS": f.blobs.root.path,
                "PASSERELLE_JOURNAL_WORKER_NAME": name,
                "PASSERELLE_JOURNAL_WORKER_OUT": output.path,
                "PASSERELLE_JOURNAL_WORKER_GO": f.folder.appendingPathComponent("go").path,
            ])
            processes.append((process, output))
        }
        // Release both once both are ready, so they really race.
        let deadline = Date().addingTimeInterval(60)
        while processes.contains(where: { !FileManager.default.fileExists(atPath: $0.1.path + ".ready") }) {
            #expect(Date() < deadline, "worker processes did not start")
            if Date() >= deadline { processes.forEach { $0.0.terminate() }; return }
            try await Task.sleep(for: .milliseconds(20))
        }
        try #require(FileManager.default.createFile(atPath: f.folder.appendingPathComponent("go").path, contents: Data()))
        let released = Date()
        var claimed: [[Int64]] = []
        for (process, output) in processes {
            while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
            #expect(process.terminationStatus == 0, "worker exited with \(process.terminationStatus)")
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            claimed.append(text.split(separator: "\n").compactMap { Int64($0) })
        }
        let elapsed = Date().timeIntervalSince(released)
        print("journal \(backend.rawValue): 2 processes, \(count) claim+complete cycles (5 ms simulated send each) in "
              + String(format: "%.2f s = %.0f/s", elapsed, Double(count) / elapsed))
        let flat = claimed.flatMap { $0 }
        #expect(flat.count == count)
        #expect(Set(flat).count == count, "a transmission was claimed by both processes")
        #expect(claimed.allSatisfy { !$0.isEmpty }, "one process claimed nothing (\(claimed.map(\.count)))")
        #expect(try await f.store.stateCounts() == [StateCount(target: .dmp, state: .sent, count: count)])
        let raw = try f.raw()
        #expect(try raw.scalar("SELECT count(*) FROM attempts")?.int == count)
    }

    /// Worker mode only: started by the test above with the journal's location in the environment.
    @Test(.enabled(if: workerDatabase != nil)) func claimWorker() async throws {
        let env = Self.environment
        let name = try #require(env["PASSERELLE_JOURNAL_WORKER_NAME"])
        let output = try #require(env["PASSERELLE_JOURNAL_WORKER_OUT"])
        let go = try #require(env["PASSERELLE_JOURNAL_WORKER_GO"])
        let database = try #require(Self.workerDatabase)
        let blobFolder = URL(fileURLWithPath: try #require(env["PASSERELLE_JOURNAL_WORKER_BLOBS"]))
        let store: any JournalStore = switch env["PASSERELLE_JOURNAL_WORKER_BACKEND"] {
        case JournalBackend.postgresql.rawValue:
            try PostgresJournalStore(configuration: PostgresConfiguration(url: database,
                                                                          passwordFile: try #require(env["PASSERELLE_JOURNAL_WORKER_PASSWORD_FILE"])),
                                     cache: blobFolder.appendingPathComponent(name))
        default:
            try SQLiteJournalStore(path: database, blobs: BlobStore(root: blobFolder))
        }
        try #require(FileManager.default.createFile(atPath: output + ".ready", contents: Data()))
        while !FileManager.default.fileExists(atPath: go) { try await Task.sleep(for: .milliseconds(1)) }
        var ids: [Int64] = []
        while let c = try await store.claimNext(target: .dmp, now: JournalFixture.t0.plus(1), lease: 60, owner: name) {
            ids.append(c.transmission.id)
            // A real send takes a while between claim and completion; without it one process can
            // drain the queue before the other is even scheduled.
            try await Task.sleep(for: .milliseconds(5))
            _ = try await store.complete(c, owner: name, outcome: .success(), now: JournalFixture.t0.plus(2))
        }
        try Data(ids.map(String.init).joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: output))
    }
}
