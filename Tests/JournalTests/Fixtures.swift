import Foundation
import Journal
import PasserelleCore
import PostgresKit
import SQLiteKit
import Testing
import TestSupport

/// The journal backends every journal test runs against.
enum JournalBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    /// A real server: a throwaway cluster started once per test process (``PostgresTestServer``),
    /// one fresh database per fixture.
    case postgresql

    var testDescription: String { rawValue }
}

/// A journal in a fresh temporary folder (SQLite) or database (PostgreSQL), with a fixed clock
/// and jitter source.
///
/// Tests go through `store` (the ``JournalStore`` protocol) so that both backends run them
/// unchanged; tests that inspect the database itself go through ``raw()``.
struct JournalFixture {
    let backend: JournalBackend
    let folder: URL
    /// The SQLite file (SQLite backend).
    let databasePath: String
    /// The database's URL, without password (PostgreSQL backend).
    let postgresURL: String?
    let blobs: BlobStore
    let store: any JournalStore
    let policy: RetryPolicy
    private let random: @Sendable () -> Double

    static let t0 = Date(timeIntervalSince1970: 1_790_000_000)  // 2026-09-21T14:13:20Z
    static let finess = "750712184"

    init(_ backend: JournalBackend = .sqlite,
         policy: RetryPolicy = RetryPolicy(initialDelay: 30, multiplier: 2, maxDelay: 600, jitter: 0.5, maxAttempts: 5,
                                           deadline: 24 * 3600),
         random: @escaping @Sendable () -> Double = { 0.5 }) throws {
        self.backend = backend
        folder = try TestPaths.temporaryDirectory("journal")
        databasePath = folder.appendingPathComponent("journal.db").path
        self.policy = policy
        self.random = random
        switch backend {
        case .sqlite:
            postgresURL = nil
            blobs = try BlobStore(root: folder.appendingPathComponent("blobs"))
            store = try SQLiteJournalStore(path: databasePath, blobs: blobs, policy: policy, random: random, now: Self.t0)
        case .postgresql:
            postgresURL = try PostgresTestServer.createDatabase()
            let postgres = try PostgresJournalStore(configuration: PostgresTestServer.configuration(postgresURL!),
                                                    cache: folder.appendingPathComponent("blobs"), policy: policy, random: random,
                                                    now: Self.t0)
            blobs = postgres.blobs
            store = postgres
        }
    }

    /// Another store (its own connection) on the same journal: a second worker, process or node
    /// (PostgreSQL: with its own, empty, blob cache).
    func secondStore(random: (@Sendable () -> Double)? = nil) throws -> any JournalStore {
        switch backend {
        case .sqlite:
            return try SQLiteJournalStore(path: databasePath, blobs: blobs, policy: policy, random: random ?? self.random, now: Self.t0)
        case .postgresql:
            return try PostgresJournalStore(configuration: PostgresTestServer.configuration(postgresURL!),
                                            cache: folder.appendingPathComponent("blobs-\(UUID().uuidString.prefix(8))"),
                                            policy: policy, random: random ?? self.random, now: Self.t0)
        }
    }

    /// The schema version, read by a fresh store.
    func schemaVersion() async throws -> Int {
        switch try secondStore() {
        case let s as SQLiteJournalStore: try s.schemaVersion()
        case let s as PostgresJournalStore: try await s.schemaVersion()
        default: -1
        }
    }

    /// A direct connection to the database, bypassing the store.
    func raw() throws -> RawDatabase {
        switch backend {
        case .sqlite: RawDatabase(sqlite: try SQLiteConnection(path: databasePath))
        case .postgresql: RawDatabase(postgres: try PostgresConnection(PostgresTestServer.configuration(postgresURL!)))
        }
    }

    static func document(_ n: Int, version: Int = 1, patientKey: String? = "pk-1", kind: DocumentKind = .dischargeLetter) -> JournalDocument {
        JournalDocument(id: "1.2.250.1.999.1.\(n)", setID: "1.2.250.1.999.1.\(n)", version: version, kind: kind,
                        maskedINS: "2**********89", patientKey: patientKey, identityStatus: "VALI", finess: finess,
                        stayID: "S\(n)", receivedAt: t0)
    }

    /// Accepts, builds and queues document `n` for `targets`.
    @discardableResult
    func queued(_ n: Int, targets: [Destination] = [.dmp], at now: Date = t0, patientKey: String? = "pk-1",
                kind: DocumentKind = .dischargeLetter) async throws -> [Transmission] {
        let doc = Self.document(n, patientKey: patientKey, kind: kind)
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
