import IHE
import DMP
import Foundation
import Journal
import PasserelleCore
import Testing
import TestSupport

/// `passerelle run` as a separate process, killed with SIGKILL at random points while
/// documents flow to a DMP-style endpoint hosted by this test process (so it survives the kills).
@Suite(.serialized) struct CrashTests {
    /// The built `passerelle` executable: $PASSERELLE_BIN, else next to the test bundle.
    static let binary: String? = {
        if let explicit = ProcessInfo.processInfo.environment["PASSERELLE_BIN"] { return explicit }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("passerelle")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue { return candidate.path }
            dir.deleteLastPathComponent()
        }
        return nil
    }()

    /// Starts `passerelle run` on `h`; `environment` is added to this process's (e.g. PASSERELLE_CRASH_AT).
    static func start(_ h: Harness, log: FileHandle, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(binary, "passerelle binary not found: swift build, or set PASSERELLE_BIN"))
        process.arguments = ["run", "--config", h.configPath, "--templates", TestPaths.templates.path, "--log-level", "notice"]
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = log
        process.standardError = log
        try process.run()
        return process
    }

    /// True once `pid` has set SIGTERM aside for its own handling (SigIgn in /proc/PID/status).
    static func takesSIGTERM(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigIgn:") }),
              let mask = UInt64(line.dropFirst("SigIgn:".count).trimmingCharacters(in: .whitespaces), radix: 16) else { return false }
        return mask & (1 << UInt64(SIGTERM - 1)) != 0
    }

    @Test(.timeLimit(.minutes(4)))
    func killNineAtRandomPointsLosesNothingAndStoresEachDocumentOnce() async throws {
        // These kills are the suite's, not caused by an input: the poison-input guard must not set
        // aside a document the suite killed the process on repeatedly.
        let h = try Harness(lease: 5, quiet: 0, folders: "max_processing_attempts = 100")
        defer { h.cleanUp() }
        let log = try FileHandle(forWritingTo: {
            let url = h.root.appendingPathComponent("passerelle.log")
            FileManager.default.createFile(atPath: url.path, contents: nil)
            return url
        }())
        let total = 200
        var expected = Set<String>()
        var pending: [(String, DocumentMetadata)] = []
        for i in 0..<total {
            let m = Documents.metadata(DocumentKind.allCases[i % DocumentKind.allCases.count])
            expected.insert(DocumentEntryMapper.uniqueId(m.id!))
            pending.append((String(format: "doc%03d", i), m))
        }
        let pdf = Documents.pdf("Compte rendu, test de crash")
        func dropWave(_ count: Int) throws {
            for (name, m) in pending.prefix(count) {
                try h.drop("\(name).json", sidecar: m)
                try h.drop("\(name).pdf", pdf)
            }
            pending.removeFirst(min(count, pending.count))
        }

        // Documents arrive in waves while the service is killed at random moments.
        let started = Date()
        var kills = 0
        var generator = SystemRandomNumberGenerator()
        for wave in 0..<8 {
            try dropWave(total / 8)
            let process = try Self.start(h, log: log)
            let delay = Double.random(in: 0.3...2.5, using: &generator)
            try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            #expect(process.isRunning, "wave \(wave): passerelle exited early (see log)")
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            kills += 1
        }
        try dropWave(pending.count)

        // A last run without kills drains everything, then stops gracefully on SIGTERM.
        let final = try Self.start(h, log: log)
        let journal = try h.journal()
        let drained = try await Harness.waitUntil(timeout: 120) {
            let done = try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count
            return done == total && h.files(in: h.inbox).isEmpty && h.files(in: h.work).isEmpty
        }
        let elapsed = Date().timeIntervalSince(started)
        // Everything may have been drained by earlier runs: SIGTERM only once the last run takes
        // it (a signal before the process has even reached main() kills it, as any process).
        _ = await Harness.waitUntil(timeout: 20) { Self.takesSIGTERM(final.processIdentifier) }
        kill(final.processIdentifier, SIGTERM)
        final.waitUntilExit()
        try log.close()
        let logText = (try? String(contentsOf: h.root.appendingPathComponent("passerelle.log"), encoding: .utf8)) ?? ""
        #expect(drained, "not drained: inbox \(h.files(in: h.inbox).count) work \(h.files(in: h.work)) error \(h.files(in: h.error)); log tail: \(logText.suffix(3000))")
        #expect(final.terminationStatus == 0, "SIGTERM is a clean stop")
        #expect(h.files(in: h.error).isEmpty, "nothing refused: \(h.files(in: h.error))")

        // The endpoint's side: every document stored, once, under its own id; nothing else.
        let stored = h.endpoint.storedDocuments
        let cdas = stored.filter { expected.contains($0.uniqueId) }
        #expect(Set(cdas.map(\.uniqueId)) == expected, "missing: \(expected.subtracting(cdas.map(\.uniqueId)).count)")
        #expect(stored.count == 2 * total, "each document + its submission-set signature, nothing twice: \(stored.count)")
        #expect(h.endpoint.rejections.allSatisfy { $0.contains("XDSDuplicateUniqueIdInRegistry") }, "\(h.endpoint.rejections.prefix(3))")

        // The journal's side.
        let all = try await journal.transmissions(matching: TransmissionFilter())
        #expect(all.count == total)
        #expect(all.allSatisfy { $0.state == .acknowledged })
        var interrupted = 0
        for t in all { interrupted += try await journal.attempts(transmissionID: t.id).filter { $0.outcome == "interrupted" }.count }
        let resendsRecognised = h.endpoint.rejections.count
        let lost = expected.subtracting(cdas.map(\.uniqueId)).count
        let extra = stored.count - 2 * total + lost
        print("crash test: \(total) documents, \(kills) SIGKILLs, \(interrupted) interrupted sends taken back, \(resendsRecognised) resends recognised by the DMP, lost \(lost), extra stored \(extra), \(String(format: "%.1f", elapsed)) s in all")
    }
}
