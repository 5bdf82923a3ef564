import IHE
import DMP
import Foundation
import Handoff
import Journal
import PasserelleCore
import Testing
import TestSupport

/// A small tmpfs mounted over a test's folder, so the gateway's disk really fills up (root only).
final class TmpfsMount: Sendable {
    let path: URL

    /// This process may mount a tmpfs (root, and the container allows it).
    static let available: Bool = {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/bin/mount"),
              let probe = try? TestPaths.temporaryDirectory("passerelle-tmpfs-probe") else { return false }
        defer { try? FileManager.default.removeItem(at: probe) }
        guard (try? ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe.path]))?.status == 0 else { return false }
        _ = try? ProcessRunner.run("/bin/umount", [probe.path])
        return true
    }()

    init(at path: URL, size: String) throws {
        self.path = path
        let result = try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size),mode=0700", "tmpfs", path.path])
        guard result.status == 0 else { throw GatewayError.file(path: path.path, reason: "mount tmpfs failed: \(result.stderr)") }
    }

    func unmount() {
        if (try? ProcessRunner.run("/bin/umount", [path.path]))?.status != 0 {
            _ = try? ProcessRunner.run("/bin/umount", ["-l", path.path])
        }
    }

    /// Writes `file` until the file system has no room left (ENOSPC). Returns the bytes written.
    @discardableResult
    static func fill(_ file: URL) -> Int {
        let fd = open(file.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0xA5, count: 64 * 1024)
        var total = 0
        var size = chunk.count
        while size > 0 {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, size) }
            if n > 0 { total += n; continue }
            size /= 2  // the last pages: smaller writes until not even one byte fits
        }
        return total
    }
}

/// The state folder (inbox, work, error, done, the SQLite journal and its blobs) on a tmpfs of
/// a few MB that the test fills: the gateway must say so clearly (without patient data), hold
/// the documents back where they are — nothing lost, nothing moved to error/ as if malformed,
/// no half-written file — and, once space is back, send each of them exactly once.
@Suite(.serialized) struct DiskFullTests {
    static let skipReason: Comment = "needs root and tmpfs (mount -t tmpfs) to fill a real file system"

    /// What is never to appear in the log: the sample patient's INS, IPP and names.
    static let patientData = ["279035121518989", "IPP-000123", "PAT-TROIS", "DOMINIQUE", "Breteuil"]

    /// A gateway whose whole state folder is a `size` tmpfs; `passerelle run` in a process of
    /// its own (log outside the tmpfs), sending to the harness's DMP-style endpoint.
    final class FullDiskGateway: @unchecked Sendable {
        let h: Harness
        let disk: TmpfsMount
        let logDirectory: URL
        var process: Process?
        var log: URL { logDirectory.appendingPathComponent("passerelle.log") }
        var filler: URL { h.root.appendingPathComponent("filler") }

        init(size: String, extra: String) throws {
            h = try Harness(extra: extra, lease: 30, quiet: 0)
            var config = try String(contentsOfFile: h.configPath, encoding: .utf8)
            config = config.replacingOccurrences(of: "quiet_period_seconds = 0", with: "quiet_period_seconds = 0\nwork_retry_seconds = 1")
            disk = try TmpfsMount(at: h.root, size: size)
            logDirectory = try TestPaths.temporaryDirectory("passerelle-diskfull-log")
            try config.write(toFile: h.configPath, atomically: false, encoding: .utf8)
            try FileManager.default.createDirectory(at: h.inbox, withIntermediateDirectories: true)
        }

        /// Starts `passerelle run` (log appended).
        func launch() throws {
            if !FileManager.default.fileExists(atPath: log.path) { FileManager.default.createFile(atPath: log.path, contents: nil) }
            let handle = try FileHandle(forWritingTo: log)
            try handle.seekToEnd()
            process = try CrashTests.start(h, log: handle)
        }

        /// Starts it and opens the journal for the test once the gateway has.
        func start() async throws -> SQLiteJournalStore {
            try launch()
            let opened = await Harness.waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: self.h.journalPath + "-wal") }
            try #require(opened, "the gateway did not open its journal: \(logText.suffix(2000))")
            return try h.journal()
        }

        var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        func stop() -> Int32? {
            guard let process, process.isRunning else { return process?.terminationStatus }
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
            return process.terminationStatus
        }

        func cleanUp() {
            if let process, process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
            disk.unmount()
            h.cleanUp()
            try? FileManager.default.removeItem(at: logDirectory)
        }

        /// Files left half-written in the blob store (temporary names).
        func temporaryBlobs() -> [String] {
            let blobs = Journals.blobFolder(forDatabase: h.journalPath)
            let all = FileManager.default.enumerator(atPath: blobs.path)?.allObjects as? [String] ?? []
            return all.filter { $0.hasSuffix(".tmp") }
        }

        /// The claim folders in work/ and their files.
        /// The claim folders of work/ (the hidden in-flight counters of the poison-input guard are not claims).
        func claims() -> [[String]] {
            h.files(in: h.work).filter { !$0.hasPrefix(".") }.map { h.files(in: h.work.appendingPathComponent($0)) }
        }
    }

    /// `GET path` on the status endpoint: (status code, body), with curl (scripts/setup.sh).
    static func get(_ path: String, port: UInt16) async throws -> (Int, String) {
        let result = try await Harness.runOffPool("/usr/bin/curl", ["-s", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    static func mllpSend(_ file: URL, port: UInt16) async throws -> String? {
        let answer = try await Harness.runOffPool(MLLPServiceTests.mllpSend, ["--port", "\(port)", "--file", file.path, "--loose", "127.0.0.1"])
        return MLLPServiceTests.fields(answer.stdout, "MSA")?[1]
    }

    static func occurrences(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    @Test(.enabled(if: TmpfsMount.available, skipReason), .timeLimit(.minutes(2)))
    func documentsWaitOnAFullDiskAndGoThroughOnceWhenSpaceIsBack() async throws {
        let mllpPort = try DurabilityAuditTests.freePort()
        let httpPort = try DurabilityAuditTests.freePort()
        let g = try FullDiskGateway(size: "12m", extra: """
            [mllp]
            enabled = true
            port = \(mllpPort)
            max_message_bytes = 4000000

            [http]
            metrics_port = \(httpPort)

            [cda]
            max_pdf_bytes = 1048576
            """)
        defer { g.cleanUp() }
        let h = g.h
        let journal = try await g.start()
        func acknowledged() async throws -> Int { try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count }

        // Space enough: one document goes through; /ready says ready.
        var expected = Set<String>()
        let first = Documents.metadata(.dischargeLetter)
        expected.insert(DocumentEntryMapper.uniqueId(first.id!))
        try h.drop("doc0.json", sidecar: first)
        try h.drop("doc0.pdf", Documents.pdf("Premier"))
        #expect(try await Harness.waitUntil(timeout: 30) { try await acknowledged() == 1 }, "\(g.logText.suffix(2000))")
        #expect(await Harness.waitUntil(timeout: 10) { (try? await Self.get("/ready", port: httpPort))?.0 == 200 })

        // Two 600 kB documents and a file of an unknown type are staged on the same disk, the
        // disk is filled up, then they are moved into the inbox (a rename needs no space).
        let staging = h.root.appendingPathComponent("staging")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        var staged: [String] = []
        for i in 1...2 {
            let m = Documents.metadata(DocumentKind.allCases[i])
            expected.insert(DocumentEntryMapper.uniqueId(m.id!))
            try JSONEncoder().encode(m).write(to: staging.appendingPathComponent("doc\(i).json"))
            try TestPDF.make(text: "Gros document \(i)", minimumBytes: 600_000).write(to: staging.appendingPathComponent("doc\(i).pdf"))
            staged += ["doc\(i).pdf", "doc\(i).json"]
        }
        try Data("pas un document".utf8).write(to: staging.appendingPathComponent("notes.docx"))
        staged.append("notes.docx")
        let (message, oruID) = try Documents.oru(try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex0-biology-new.hl7")))
        expected.insert(DocumentEntryMapper.uniqueId(oruID))
        let oruFile = g.logDirectory.appendingPathComponent("oru.hl7")
        try message.write(to: oruFile)

        TmpfsMount.fill(g.filler)
        for name in staged { #expect(rename(staging.appendingPathComponent(name).path, h.inbox.appendingPathComponent(name).path) == 0) }

        // Full: the HL7 message is answered AR (resend later), not AA; the files wait in work/
        // (the pair) or in the inbox (the refusal whose reason cannot be written).
        #expect(try await Self.mllpSend(oruFile, port: mllpPort) == "AR", "an unjournaled message must not be acknowledged")
        let heldBack = await Harness.waitUntil(timeout: 30) {
            g.claims().count == 2 && Self.occurrences("No space left on device", in: g.logText) >= 4
                && g.logText.contains("notes.docx.error.txt")
        }
        let logWhileFull = g.logText
        #expect(heldBack, "work/: \(g.claims()); log: \(logWhileFull.suffix(3000))")
        #expect(g.claims().allSatisfy { $0.count == 2 }, "each claim keeps its document and sidecar: \(g.claims())")
        #expect(h.files(in: h.inbox) == ["notes.docx"], "inbox: \(h.files(in: h.inbox))")
        #expect(h.files(in: h.error).isEmpty, "nothing moved to error/ as if malformed: \(h.files(in: h.error))")
        #expect(g.temporaryBlobs().isEmpty, "half-written blobs left: \(g.temporaryBlobs())")
        #expect(logWhileFull.contains("stays in work/"), "the log says where the document waits")
        #expect(logWhileFull.contains("Free space in the error folder"))
        for secret in Self.patientData { #expect(!logWhileFull.contains(secret), "patient data in the log: \(secret)") }
        let ready = try await Self.get("/ready", port: httpPort)
        #expect(ready.0 == 503 && ready.1.contains("free"), "/ready while full: \(ready)")
        #expect(try await journal.transmissions(matching: TransmissionFilter()).count == 1, "nothing half-journaled")
        #expect(g.process?.isRunning == true, "the gateway keeps running")

        // Space back: everything goes through, once.
        try FileManager.default.removeItem(at: g.filler)
        #expect(try await Self.mllpSend(oruFile, port: mllpPort) == "AA")
        let drained = try await Harness.waitUntil(timeout: 45) {
            try await acknowledged() == 4 && h.files(in: h.inbox).isEmpty && h.files(in: h.work).isEmpty && h.files(in: h.error).count == 2
        }
        #expect(drained, "inbox \(h.files(in: h.inbox)) work \(g.claims()) error \(h.files(in: h.error)); log: \(g.logText.suffix(3000))")
        #expect(h.files(in: h.error) == ["notes.docx", "notes.docx.error.txt"])
        let stored = h.endpoint.storedDocuments
        #expect(Set(stored.filter { expected.contains($0.uniqueId) }.map(\.uniqueId)) == expected)
        #expect(stored.count == 2 * expected.count, "each document and its signature once: \(stored.count)")
        #expect(h.endpoint.rejections.isEmpty, "nothing sent twice: \(h.endpoint.rejections)")
        #expect(try await journal.transmissions(matching: TransmissionFilter()).count == 4)
        #expect(await Harness.waitUntil(timeout: 10) { (try? await Self.get("/ready", port: httpPort))?.0 == 200 })
        #expect(g.stop() == 0, "SIGTERM is a clean stop")
        print("disk full: \(Self.occurrences("No space left on device", in: g.logText)) ENOSPC log lines, 4 documents through once")
    }

    /// SQLite's own "database or disk is full": the send succeeded but its outcome cannot be
    /// committed. The worker keeps trying while its lease runs, so the document is not sent a
    /// second time once space is back; the gateway does not crash or loop on restarts.
    @Test(.enabled(if: TmpfsMount.available, skipReason), .timeLimit(.minutes(2)))
    func aFullJournalDuringASendDoesNotSendTwice() async throws {
        let g = try FullDiskGateway(size: "8m", extra: "")
        defer { g.cleanUp() }
        let h = g.h
        let journal = try await g.start()
        h.endpoint.fail(.slow(seconds: 3))
        let m = Documents.metadata(.dischargeLetter)
        try h.drop("doc.json", sidecar: m)
        try h.drop("doc.pdf", Documents.pdf("Envoi pendant un disque plein"))
        #expect(await Harness.waitUntil(timeout: 30) { h.endpoint.requestCount == 1 }, "\(g.logText.suffix(2000))")
        TmpfsMount.fill(g.filler)  // while the endpoint takes its time

        let retrying = await Harness.waitUntil(timeout: 30) { g.logText.contains("cannot record the outcome; trying again") }
        #expect(retrying, "\(g.logText.suffix(3000))")
        #expect(g.logText.contains("full"), "SQLite's message says why: \(g.logText.suffix(2000))")
        try await Task.sleep(nanoseconds: 1_500_000_000)
        #expect(g.process?.isRunning == true, "the gateway keeps running")
        try FileManager.default.removeItem(at: g.filler)

        let done = try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 1
        }
        #expect(done, "\(g.logText.suffix(3000))")
        #expect(h.endpoint.requestCount == 1, "sent once: \(h.endpoint.requestCount) requests")
        #expect(h.endpoint.storedDocuments.count == 2 && h.endpoint.rejections.isEmpty)
        let attempts = try await journal.attempts(transmissionID: try #require(try await journal.transmissions(matching: TransmissionFilter()).first).id)
        #expect(attempts.count == 1 && attempts.first?.outcome != nil, "one attempt, closed: \(attempts)")
        for secret in Self.patientData { #expect(!g.logText.contains(secret), "patient data in the log: \(secret)") }
        #expect(g.stop() == 0)
    }

    /// Started while its journal's disk is full (SQLite cannot even make its -shm index): the
    /// gateway logs it and waits in the process instead of exiting (which systemd would turn
    /// into a restart every few seconds), and starts working once space is back.
    @Test(.enabled(if: TmpfsMount.available, skipReason), .timeLimit(.minutes(2)))
    func aGatewayStartedOnAFullDiskWaitsForSpace() async throws {
        let g = try FullDiskGateway(size: "8m", extra: "")
        defer { g.cleanUp() }
        let h = g.h
        try g.launch()
        #expect(await Harness.waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: h.journalPath + "-wal") })
        #expect(g.stop() == 0, "a first run makes the journal, then stops")
        // A clean last close (here sqlite3's) removes the -wal and -shm: the next open must make them anew.
        let closed = try ProcessRunner.run("/usr/bin/sqlite3", [h.journalPath, "PRAGMA wal_checkpoint(TRUNCATE);"])
        #expect(closed.status == 0, "\(closed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: h.journalPath + "-shm"))

        let m = Documents.metadata(.dischargeLetter)
        let staging = h.root.appendingPathComponent("staging")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        try JSONEncoder().encode(m).write(to: staging.appendingPathComponent("doc.json"))
        try Documents.pdf("Démarrage sur disque plein").write(to: staging.appendingPathComponent("doc.pdf"))
        TmpfsMount.fill(g.filler)
        for name in ["doc.pdf", "doc.json"] { #expect(rename(staging.appendingPathComponent(name).path, h.inbox.appendingPathComponent(name).path) == 0) }

        try g.launch()
        let waiting = await Harness.waitUntil(timeout: 20) { g.logText.contains("its disk is full; waiting for space") }
        #expect(waiting, "\(g.logText.suffix(2000))")
        try await Task.sleep(nanoseconds: 2_000_000_000)
        #expect(g.process?.isRunning == true, "still running, not exited for systemd to restart: \(g.logText.suffix(1000))")
        #expect(h.files(in: h.inbox) == ["doc.json", "doc.pdf"], "the document waits in the inbox")

        try FileManager.default.removeItem(at: g.filler)
        let journaled = await Harness.waitUntil(timeout: 30) { h.files(in: h.done).count == 1 }
        #expect(journaled, "\(g.logText.suffix(2000))")
        let journal = try h.journal()
        let sent = try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 1
        }
        #expect(sent && h.endpoint.storedDocuments.count == 2 && h.endpoint.rejections.isEmpty)
        #expect(g.stop() == 0)
    }
}
