import Foundation
import Journal
import PasserelleCore
import SQLiteKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A worker process (this test binary in worker mode) is killed with SIGKILL mid-work; the
/// journal must hold everything committed before the kill, nothing half-done, and nothing the
/// worker had not committed.
@Suite struct KillTests {
    static let environment = ProcessInfo.processInfo.environment
    static let mode = environment["PASSERELLE_JOURNAL_KILL_MODE"]

    /// Starts `killWorker` in `mode` on the fixture's journal; returns the process and its progress file.
    func startWorker(_ mode: String, fixture f: JournalFixture) throws -> (Process, URL) {
        let progress = f.folder.appendingPathComponent("progress-\(mode)")
        let process = try WorkerProcess.start(filter: "KillTests/killWorker", environment: [
            "PASSERELLE_JOURNAL_KILL_MODE": mode,
            "PASSERELLE_JOURNAL_KILL_DB": f.databasePath,
            "PASSERELLE_JOURNAL_KILL_BLOBS": f.blobs.root.path,
            "PASSERELLE_JOURNAL_KILL_PROGRESS": progress.path,
        ])
        return (process, progress)
    }

    func lines(_ url: URL) -> [String] {
        ((try? String(contentsOf: url, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func waitFor(_ condition: () -> Bool, seconds: Double = 60) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() > deadline { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    @Test func killedMidSendIsRecoveredForARecheckNotResentBlindly() async throws {
        let f = try JournalFixture()
        let t = try await f.queued(1, targets: [.mssantePS])[0]
        let (process, progress) = try startWorker("send", fixture: f)
        let started = try await waitFor { lines(progress).contains("claimed") }
        #expect(started, "worker did not claim")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)

        let after = try #require(try await f.store.transmission(id: t.id))
        #expect(after.state == .sending)
        #expect(after.leaseOwner == "killed-worker")
        #expect(after.messageID == "<kill-test@passerelle.test>")
        let recovered = try await f.store.recoverInterrupted(now: JournalFixture.t0.plus(301))
        #expect(recovered.map(\.id) == [t.id])
        #expect(recovered.first?.needsRecheck == true)
        let claim = try #require(try await f.store.claimNext(target: .mssantePS, now: JournalFixture.t0.plus(302), lease: 60, owner: "new"))
        #expect(claim.transmission.messageID == "<kill-test@passerelle.test>")
        #expect(try await f.store.attempts(transmissionID: t.id).map(\.outcome) == ["interrupted", nil])
    }

    @Test func killedDuringABurstOfAcceptsLosesNothingCommitted() async throws {
        let f = try JournalFixture()
        let (process, progress) = try startWorker("accept", fixture: f)
        let running = try await waitFor { lines(progress).count >= 20 }
        #expect(running, "worker did not accept documents")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()

        let reported = lines(progress).compactMap { Int($0) }
        let raw = try SQLiteConnection(path: f.databasePath)
        #expect(try raw.scalar("PRAGMA integrity_check")?.string == "ok")
        let committed = try raw.query("SELECT id, blob_sha256 FROM documents ORDER BY received_at")
        let inputs = try raw.scalar("SELECT count(*) FROM inputs")?.int
        // Every document the worker saw committed is there; at most the one in flight more.
        #expect(committed.count >= reported.count)
        #expect(committed.count <= reported.count + 1)
        #expect(inputs == committed.count)
        // Every committed row points at a complete blob (written and fsynced before the commit).
        for row in committed {
            let sha = try #require(row["blob_sha256"].string)
            #expect((try? f.blobs.get(sha)) != nil, "blob of \(row["id"].string ?? "?") missing or torn")
        }
        // Dropping a file again after the crash is still recognised.
        if let first = reported.first {
            let content = Self.acceptContent(first)
            #expect(try await f.store.accept(JournalFixture.document(first), content: content,
                                             input: InputFile(sha256: BlobStore.sha256Hex(content), fileName: "again"), stay: nil,
                                             now: JournalFixture.t0) == .duplicateInput(documentID: JournalFixture.document(first).id, version: 1))
        }
    }

    /// The bytes of the n-th file the accept worker drops.
    static func acceptContent(_ n: Int) -> Data {
        Data("kill input \(n)".utf8) + Data(repeating: UInt8(n % 251), count: 2048)
    }

    /// Worker mode only: started by the tests above, killed by them.
    @Test(.enabled(if: mode != nil)) func killWorker() async throws {
        let env = Self.environment
        let store = try SQLiteJournalStore(path: try #require(env["PASSERELLE_JOURNAL_KILL_DB"]),
                                           blobs: BlobStore(root: URL(fileURLWithPath: try #require(env["PASSERELLE_JOURNAL_KILL_BLOBS"]))))
        let progress = try #require(env["PASSERELLE_JOURNAL_KILL_PROGRESS"])
        try #require(FileManager.default.createFile(atPath: progress, contents: Data()))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: progress))
        switch Self.mode {
        case "send":
            let claim = try #require(try await store.claimNext(target: .mssantePS, now: JournalFixture.t0, lease: 300, owner: "killed-worker"))
            try await store.recordMessageID("<kill-test@passerelle.test>", transmissionID: claim.transmission.id, owner: "killed-worker")
            try handle.write(contentsOf: Data("claimed\n".utf8))
            try await Task.sleep(for: .seconds(120))  // "sending" until killed
        case "accept":
            for n in 0..<100_000 {
                let content = Self.acceptContent(n)
                let result = try await store.accept(JournalFixture.document(n), content: content,
                                                    input: InputFile(sha256: BlobStore.sha256Hex(content), fileName: "in\(n)"),
                                                    stay: nil, now: JournalFixture.t0.plus(Double(n)))
                guard case .accepted = result else { Issue.record("not accepted: \(result)"); return }
                try handle.write(contentsOf: Data("\(n)\n".utf8))
            }
        default:
            Issue.record("unknown worker mode")
        }
    }
}
