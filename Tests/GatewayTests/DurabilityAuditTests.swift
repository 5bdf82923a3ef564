import IHE
import DMP
import Foundation
import Gateway
import Journal
import PasserelleCore
import SQLiteKit
import Synchronization
import Testing
import TestSupport

/// Power loss, checked as an fsync audit: `passerelle run` is traced with strace while files and
/// MLLP messages flow to the DMP-style endpoint, and ``SyscallAudit`` checks that every byte and
/// every name the gateway relies on is synced before it lets go of an input (done/, the MLLP
/// ACK) or sends. The endpoint checks on its side that each document's attempt is already
/// committed when the document arrives.
@Suite(.serialized) struct DurabilityAuditTests {
    static let strace = "/usr/bin/strace"

    /// strace is installed (scripts/setup.sh) and this machine lets it trace a child.
    static let straceWorks: Bool = {
        guard FileManager.default.isExecutableFile(atPath: strace) else { return false }
        return (try? ProcessRunner.run(strace, ["-f", "-o", "/dev/null", "/bin/true"]))?.status == 0
    }()

    static let traced = "openat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,unlink,unlinkat,fsync,fdatasync,write,pwrite64,writev,pwritev,"
        + "connect,sendto,sendmsg,recvfrom,read"

    /// A free TCP port on the loopback (for a child process's listener).
    static func freePort() throws -> UInt16 { UInt16(try PostgresTestServer.freePort()) }

    @Test(.enabled(if: straceWorks, "strace cannot trace a child here: install strace (scripts/setup.sh) and allow ptrace"),
          .timeLimit(.minutes(2)))
    func everyInputIsDurableInTheJournalBeforeItIsLetGoOrSent() async throws {
        let mllpPort = try Self.freePort()
        let h = try Harness(extra: """
            [mllp]
            enabled = true
            port = \(mllpPort)
            max_message_bytes = 400000
            """, quiet: 0)
        defer { h.cleanUp() }

        // The endpoint's side: when a document arrives, its attempt must already be committed
        // (read from the journal file itself, as another process sees it).
        let expectedIDs = Mutex<Set<String>>([])
        let unjournaledSends = Mutex<[String]>([])
        let checkedSends = Atomic<Int>(0)
        let journalPath = h.journalPath
        h.endpoint.observeSubmissions { ids in
            var problems: [String] = []
            for id in ids where expectedIDs.withLock({ $0.contains(id) }) {
                do {
                    let db = try SQLiteConnection(path: journalPath, mode: .readOnly)
                    let rows = try db.query("""
                        SELECT t.state, (SELECT COUNT(*) FROM attempts a WHERE a.transmission_id = t.id AND a.ended_at IS NULL) AS open
                        FROM transmissions t WHERE t.document_id = ?
                        """, [id])
                    if rows.count != 1 || rows[0]["state"].string != "sending" || rows[0]["open"].int != 1 {
                        problems.append("\(id): arrived while the journal shows \(rows.map { "\($0["state"].string ?? "?") with \($0["open"].int ?? 0) open attempt(s)" })")
                    }
                } catch { problems.append("\(id): cannot read the journal: \(error)") }
            }
            checkedSends.add(1, ordering: .relaxed)
            unjournaledSends.withLock { $0 += problems }
        }

        // Three documents, a PDF the builder refuses (from work/) and an unknown file type (from the inbox).
        var expected = Set<String>()
        for i in 0..<3 {
            let m = Documents.metadata(DocumentKind.allCases[i])
            expected.insert(DocumentEntryMapper.uniqueId(m.id!))
            expectedIDs.withLock { $0.insert(DocumentEntryMapper.uniqueId(m.id!)) }
            try h.drop("doc\(i).json", sidecar: m)
            try h.drop("doc\(i).pdf", Documents.pdf("Audit \(i)"))
        }
        try h.drop("broken.json", sidecar: Documents.metadata())
        try h.drop("broken.pdf", Documents.pdf("tronqué").prefix(300))
        try h.drop("notes.docx", Data("not a document".utf8))

        let traceDirectory = h.root.appendingPathComponent("trace")
        try FileManager.default.createDirectory(at: traceDirectory, withIntermediateDirectories: true)
        let logURL = h.root.appendingPathComponent("passerelle.log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        let binary = try #require(CrashTests.binary, "passerelle binary not found: swift build, or set PASSERELLE_BIN")
        let strace = Process()
        strace.executableURL = URL(fileURLWithPath: Self.strace)
        strace.arguments = ["-f", "-ff", "-o", traceDirectory.appendingPathComponent("t").path, "--seccomp-bpf", "-qq",
                            "-ttt", "-T", "-yy", "-e", "trace=\(Self.traced)",
                            binary, "run", "--config", h.configPath, "--templates", TestPaths.templates.path, "--log-level", "notice"]
        strace.standardOutput = log
        strace.standardError = log
        try strace.run()
        defer { if strace.isRunning { strace.terminate() } }

        let journalAppeared = await Harness.waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: h.journalPath + "-wal") }
        try #require(journalAppeared, "the traced gateway did not open its journal")
        let journal = try h.journal()
        func acknowledged() async throws -> Int {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count
        }
        let filesDone = try await Harness.waitUntil(timeout: 45) { try await acknowledged() == 3 && h.files(in: h.error).count == 6 }
        #expect(filesDone, "files not through: error/ \(h.files(in: h.error)), work/ \(h.files(in: h.work))")

        // Three HL7 messages over MLLP, one after the other: each ACK must follow its commit.
        let example = try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex0-biology-new.hl7"))
        for i in 0..<3 {
            let (message, id) = try Documents.oru(example)
            expected.insert(DocumentEntryMapper.uniqueId(id))
            expectedIDs.withLock { $0.insert(DocumentEntryMapper.uniqueId(id)) }
            let file = h.root.appendingPathComponent("oru\(i).hl7")
            try message.write(to: file)
            let answer = try await Harness.runOffPool(MLLPServiceTests.mllpSend, ["--port", "\(mllpPort)", "--file", file.path, "--loose", "127.0.0.1"])
            #expect(MLLPServiceTests.fields(answer.stdout, "MSA")?[1] == "AA", "MLLP answer: \(answer.stdout) \(answer.stderr)")
        }
        let allDone = try await Harness.waitUntil(timeout: 45) { try await acknowledged() == 6 }
        #expect(allDone)

        // Stop it gracefully (SIGTERM to the traced gateway; strace ends with it).
        let pids = try FileManager.default.contentsOfDirectory(atPath: traceDirectory.path).compactMap { $0.split(separator: ".").last.flatMap { Int32($0) } }
        let gateway = try #require(pids.min())
        kill(gateway, SIGTERM)
        let stopped = await Harness.waitUntil(timeout: 30) { !strace.isRunning }
        #expect(stopped)
        try log.close()
        let logText = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""

        // The endpoint: every document once; each had its attempt committed when it arrived.
        let stored = h.endpoint.storedDocuments.filter { expected.contains($0.uniqueId) }
        #expect(Set(stored.map(\.uniqueId)) == expected && stored.count == 6, "stored \(stored.count); log: \(logText.suffix(2000))")
        #expect(checkedSends.load(ordering: .relaxed) >= 6)
        #expect(unjournaledSends.withLock { $0 }.isEmpty, "\(unjournaledSends.withLock { $0 })")
        #expect(h.files(in: h.error) == ["broken.json", "broken.json.error.txt", "broken.pdf", "broken.pdf.error.txt",
                                         "notes.docx", "notes.docx.error.txt"], "error/: \(h.files(in: h.error))")

        // The trace.
        let layout = SyscallAudit.Layout(
            root: h.root.path, journal: h.journalPath, blobs: Journals.blobFolder(forDatabase: h.journalPath).path,
            error: h.error.path, work: h.work.path, done: h.done.path,
            patientKey: GatewayService.patientKeyFile(try h.configuration()), mllpPort: Int(mllpPort), dmpPort: Int(h.endpoint.port))
        if let keep = ProcessInfo.processInfo.environment["PASSERELLE_AUDIT_TRACE_DIR"] {  // to read the trace by hand
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(at: traceDirectory, to: URL(fileURLWithPath: keep))
        }
        let audit = try SyscallAudit.audit(directory: traceDirectory, layout: layout)
        #expect(audit.violations.isEmpty, "\(audit.violations.count) ordering violations:\n\(audit.violations.prefix(8).joined(separator: "\n"))")
        // Not vacuous: the trace holds what the rules are about.
        let c = audit.counts
        #expect(c.walSyncs >= 12, "WAL syncs: \(c.walSyncs)")
        #expect(c.blobRenames >= 6, "blobs stored: \(c.blobRenames) (a CDA per document)")
        // Each document's small intake record went into the journal's own commit (migration 9),
        // so the WAL syncs above cover it: no file of its own.
        let raw = try SQLiteConnection(path: h.journalPath, mode: .readOnly)
        defer { raw.close() }
        let records = try raw.query("SELECT d.blob_sha256 FROM documents d JOIN blobs b ON b.sha256 = d.blob_sha256")
        #expect(records.count == 6, "records kept in the journal: \(records.count)")
        let blobs = try BlobStore(root: URL(fileURLWithPath: layout.blobs))
        #expect(records.allSatisfy { blobs.size($0["blob_sha256"].string ?? "") == nil }, "a record both in the journal and in a file")
        #expect(c.claimsDone == 3, "claims moved to done/: \(c.claimsDone)")
        #expect(c.mllpAnswers == 3, "MLLP answers: \(c.mllpAnswers)")
        #expect(c.dmpConnections >= 1, "connections to the DMP endpoint: \(c.dmpConnections)")
        #expect(c.reasonFiles >= 3, "refusal reasons written: \(c.reasonFiles)")
        print("fsync audit: \(c.walSyncs) WAL syncs, \(c.blobRenames) blobs, \(c.folderSyncs) folder syncs, \(c.claimsDone) claims to done/, "
              + "\(c.mllpAnswers) MLLP ACKs, \(c.dmpConnections) DMP connections, \(checkedSends.load(ordering: .relaxed)) submissions checked, "
              + "\(audit.violations.count) violations")
    }
}
