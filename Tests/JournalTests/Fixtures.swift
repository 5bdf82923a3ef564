import Foundation
import Journal
import PasserelleCore
import TestSupport

/// A journal in a fresh temporary folder, with a fixed clock and jitter source.
///
/// Tests go through `store` (the ``JournalStore`` protocol) so that the PostgreSQL backend can
/// run them unchanged; only tests that inspect the file itself use `databasePath`.
struct JournalFixture {
    let folder: URL
    let databasePath: String
    let blobs: BlobStore
    let sqlite: SQLiteJournalStore
    var store: any JournalStore { sqlite }
    let policy: RetryPolicy

    static let t0 = Date(timeIntervalSince1970: 1_790_000_000)  // 2026-09-21T14:13:20Z
    static let finess = "750712184"

    init(policy: RetryPolicy = RetryPolicy(initialDelay: 30, multiplier: 2, maxDelay: 600, jitter: 0.5, maxAttempts: 5,
                                           deadline: 24 * 3600),
         random: @escaping @Sendable () -> Double = { 0.5 }) throws {
        folder = try TestPaths.temporaryDirectory("journal")
        databasePath = folder.appendingPathComponent("journal.db").path
        blobs = try BlobStore(root: folder.appendingPathComponent("blobs"))
        self.policy = policy
        sqlite = try SQLiteJournalStore(path: databasePath, blobs: blobs, policy: policy, random: random, now: Self.t0)
    }

    /// Another store (its own connection) on the same file: a second worker or process.
    func secondStore(random: @escaping @Sendable () -> Double = { 0.5 }) throws -> any JournalStore {
        try secondSQLiteStore(random: random)
    }

    func secondSQLiteStore(random: @escaping @Sendable () -> Double = { 0.5 }) throws -> SQLiteJournalStore {
        try SQLiteJournalStore(path: databasePath, blobs: blobs, policy: policy, random: random, now: Self.t0)
    }

    static func document(_ n: Int, version: Int = 1, patientKey: String? = "pk-1") -> JournalDocument {
        JournalDocument(id: "1.2.250.1.999.1.\(n)", setID: "1.2.250.1.999.1.\(n)", version: version, kind: .dischargeLetter,
                        maskedINS: "2**********89", patientKey: patientKey, identityStatus: "VALI", finess: finess,
                        stayID: "S\(n)", receivedAt: t0)
    }

    /// Accepts, builds and queues document `n` for `targets`.
    @discardableResult
    func queued(_ n: Int, targets: [Destination] = [.dmp], at now: Date = t0, patientKey: String? = "pk-1") async throws -> [Transmission] {
        let doc = Self.document(n, patientKey: patientKey)
        let result = try await store.accept(doc, content: Data("input \(n)".utf8),
                                            input: InputFile(sha256: BlobStore.sha256Hex(Data("input \(n)".utf8)), fileName: "in\(n).pdf"),
                                            stay: JournalStay(stayID: "S\(n)", finess: Self.finess), now: now)
        guard case .accepted = result else { throw FixtureError.notAccepted("\(result)") }
        _ = try await store.markBuilt(documentID: doc.id, version: 1, built: Data("<ClinicalDocument>\(n)</ClinicalDocument>".utf8),
                                      now: now)
        return try await store.enqueue(documentID: doc.id, version: 1, targets: targets, now: now)
    }
}

enum FixtureError: Error { case notAccepted(String), noTestBinary }

extension Date {
    func plus(_ seconds: TimeInterval) -> Date { addingTimeInterval(seconds) }
}

/// This test binary started again with `--filter filter` and extra environment: the worker side
/// of the multi-process tests (a real separate process that can race or be killed).
enum WorkerProcess {
    static func start(filter: String, environment extra: [String: String]) throws -> Process {
        guard let binary = Bundle.main.executablePath ?? CommandLine.arguments.first else { throw FixtureError.noTestBinary }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--testing-library", "swift-testing", "--filter", filter]
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { _, new in new }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }
}
