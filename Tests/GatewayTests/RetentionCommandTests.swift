import IHE
import Foundation
import Gateway
import Journal
import Logging
import PasserelleCore
import SQLiteKit
import Testing
import TestSupport

/// `passerelle purge`, `backup` and `restore` through the binary, on a journal filled by the
/// running gateway (issue 18, item 4).
@Suite(.serialized) struct RetentionCommandTests {
    func passerelle(_ h: Harness, _ arguments: [String], config: String? = nil, stdin: Data? = nil) async throws -> ProcessResult {
        let binary = try #require(CrashTests.binary, "passerelle binary not found")
        return try await Harness.runOffPool(binary, arguments + ["--config", config ?? h.configPath], stdin: stdin)
    }

    static func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? nil
    }

    /// The month's report table and CSV (the JSON and HTML carry the generation time).
    func report(_ h: Harness, config: String? = nil) async throws -> [String] {
        let f = Date.ISO8601FormatStyle().year().month().day()
        let range = ["--from", f.format(Date().addingTimeInterval(-86_400)), "--to", f.format(Date().addingTimeInterval(86_400))]
        var out: [String] = []
        for format in ["table", "csv"] {
            let r = try await passerelle(h, ["report"] + range + ["--format", format], config: config)
            #expect(r.status == 0, "\(r.stderr)")
            out.append(r.stdout)
        }
        return out
    }

    @Test func purgeThenShowAndResendSayTheContentWasPurged() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        h.endpoint.fail(.registryError(code: "XDSPatientIdDoesNotMatch"))
        let refusedDoc = Documents.metadata()
        let journal = try h.journal()
        do {
            let service = try h.service()
            let running = Task { try await service.run() }
            try h.drop("refused.json", sidecar: refusedDoc)
            try h.drop("refused.pdf", Documents.pdf())
            #expect(try await Harness.waitUntil(timeout: 20) {
                try await journal.transmissions(matching: TransmissionFilter(states: [.failed])).count == 1
            })
            try h.drop("ok.json", sidecar: Documents.metadata(.biologyReport))
            try h.drop("ok.pdf", Documents.pdf())
            #expect(try await Harness.waitUntil(timeout: 20) {
                try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 1
            })
            service.stop()
            try await running.value
        }
        let failedID = DocumentEntryMapper.uniqueId(refusedDoc.id!)
        let blobFolder = Journals.blobFolder(forDatabase: h.journalPath)
        func blobFiles() -> [String] {
            (FileManager.default.enumerator(atPath: blobFolder.path)?.allObjects as? [String] ?? []).filter { $0.count == 67 }
        }
        // Each document: its CDA a file, its small intake record in the journal's `blobs` table (migration 9).
        func recordsInJournal() throws -> Int {
            let raw = try SQLiteConnection(path: h.journalPath, mode: .readOnly)
            defer { raw.close() }
            return try raw.scalar("SELECT count(*) FROM blobs")?.int ?? -1
        }
        #expect(try blobFiles().count == 2 && recordsInJournal() == 2, "two documents, each a CDA file and a record in the journal: \(blobFiles())")

        let none = try await passerelle(h, ["purge"])
        #expect(none.status == 1 && none.stderr.contains("no [journal] retention_days"), "\(none.stderr)")
        let future = try await passerelle(h, ["purge", "--before", "2999-01-01"])
        #expect(future.status == 1 && future.stderr.contains("in the future"), "\(future.stderr)")
        // A day is midnight in [report] time_zone (Europe/Paris: +01:00 in January).
        let january = try await passerelle(h, ["purge", "--before", "2026-01-01", "--dry-run"])
        #expect(january.stdout.contains("ended before 2026-01-01 00:00:00 +01:00"), "\(january.stdout)\(january.stderr)")
        #expect(january.stdout.contains("Would purge the content of 0 document sets"), "\(january.stdout)")
        let reportBefore = try await report(h)

        try await Task.sleep(for: .seconds(1.1))
        let cutoff = Date.ISO8601FormatStyle().format(Date())
        let dry = try await passerelle(h, ["purge", "--before", cutoff, "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("Would purge the content of 2 document sets (2 documents, 2 transmissions)"), "\(dry.stdout)")
        #expect(try blobFiles().count == 2 && recordsInJournal() == 2, "a dry run changes nothing")

        let purge = try await passerelle(h, ["purge", "--before", cutoff, "--json"])
        #expect(purge.status == 0, "\(purge.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(purge.stdout.utf8)) as? [String: Any], "\(purge.stdout)")
        #expect(result["sets"] as? Int == 2 && result["documents"] as? Int == 2 && result["blobs"] as? Int == 4)
        #expect((result["bytes_freed"] as? Int ?? 0) > 1000, "\(result)")
        #expect(result["dry_run"] as? Bool == false && result["audit_id"] is Int)
        #expect(try blobFiles().isEmpty && recordsInJournal() == 0, "the content is gone from the disk and the journal: \(blobFiles())")

        // The report of the period: unchanged.
        #expect(try await report(h) == reportBefore)

        let show = try await passerelle(h, ["show", failedID])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.range(of: #"content purged on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d \(retention\)"#,
                                  options: .regularExpression) != nil, "\(show.stdout)")
        #expect(show.stdout.contains("patient INS none"), "the masked INS went with the content: \(show.stdout)")
        #expect(show.stdout.contains("operator purge"), "\(show.stdout)")

        let resend = try await passerelle(h, ["resend", "--document", failedID, "--yes"])
        #expect(resend.status == 1, "\(resend.stdout)")
        #expect(resend.stdout.contains("its content was purged on") && resend.stderr.contains("purged (retention)"), "\(resend.stdout)\(resend.stderr)")
        #expect(try await journal.transmissions(matching: TransmissionFilter(documentID: failedID)).first?.state == .failed)

        let audit = try await passerelle(h, ["audit", "--json"])
        let actions = try #require(try JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]], "\(audit.stdout)")
        #expect(actions.map { $0["action"] as? String } == ["purge"])
        #expect(actions.first?["user"] as? String == OperatorRequest.currentUser())
        #expect(actions.first?["count"] as? Int == 2)

        // Item 5 of issue 18 on the same journal: human times in [report] time_zone (Europe/Paris
        // by default) with their offset, in every table; every --json with snake_case keys.
        let paris = TimeZone(identifier: "Europe/Paris")!.secondsFromGMT(for: Date())
        let offset = String(format: "%@%02d:%02d", paris < 0 ? "-" : "+", abs(paris) / 3600, abs(paris) % 3600 / 60)
        let stamp = #"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "# + NSRegularExpression.escapedPattern(for: offset)
        let status = try await passerelle(h, ["status"])
        #expect(status.stdout.range(of: "last error " + stamp, options: .regularExpression) != nil, "\(status.stdout)")
        #expect(!status.stdout.contains("Z transmission"), "no UTC stamp left: \(status.stdout)")
        #expect(show.stdout.range(of: "received " + stamp, options: .regularExpression) != nil, "\(show.stdout)")
        #expect(show.stdout.range(of: "operator purge " + stamp, options: .regularExpression) != nil, "\(show.stdout)")
        let auditTable = try await passerelle(h, ["audit"])
        #expect(auditTable.stdout.range(of: stamp, options: .regularExpression) != nil, "\(auditTable.stdout)")
        let queue = try await passerelle(h, ["queue"])
        #expect(queue.stdout.range(of: stamp, options: .regularExpression) != nil, "\(queue.stdout)")

        let f = Date.ISO8601FormatStyle().year().month().day()
        let range = ["--from", f.format(Date().addingTimeInterval(-86_400)), "--to", f.format(Date().addingTimeInterval(86_400))]
        let commands: [[String]] = [["status", "--json"], ["queue", "--json"], ["audit", "--json"], ["flush", "--json"],
                                    ["purge", "--dry-run", "--before", cutoff, "--json"], ["report"] + range + ["--format", "json"],
                                    ["certs", "check", "--format", "json"]]
        for command in commands {
            let r = try await passerelle(h, command)
            let object = try #require(try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)), "\(command): \(r.stdout)\(r.stderr)")
            var keys: [String] = []
            func walk(_ value: Any) {
                if let d = value as? [String: Any] { for (k, v) in d { keys.append(k); walk(v) } }
                if let a = value as? [Any] { a.forEach(walk) }
            }
            walk(object)
            #expect(!keys.isEmpty, "\(command)")
            let camel = keys.filter { $0.range(of: "^[a-z0-9_]+$", options: .regularExpression) == nil }
            #expect(camel.isEmpty, "\(command.joined(separator: " ")): \(Set(camel).sorted())")
            // Times: ISO 8601 with an offset (or Z).
            for case let text as String in Self.strings(object) where text.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d"#, options: .regularExpression) != nil {
                #expect(text.range(of: #"(Z|[+-]\d\d:\d\d)$"#, options: .regularExpression) != nil, "\(command): \(text)")
            }
        }
    }

    static func strings(_ value: Any) -> [Any] {
        if let d = value as? [String: Any] { return d.values.flatMap(strings) }
        if let a = value as? [Any] { return a.flatMap(strings) }
        return [value]
    }

    /// A backup taken while `passerelle run` works, restored into a new folder: same status,
    /// same report; every file 0600 and folder 0700 under umask 022.
    @Test func backupWhileRunningThenRestoreIntoANewFolder() async throws {
        let previous = umask(0o022)
        defer { umask(previous) }
        let h = try Harness()
        defer { h.cleanUp() }
        let log = try FileHandle(forWritingTo: {
            let url = h.root.appendingPathComponent("run.log")
            FileManager.default.createFile(atPath: url.path, contents: nil)
            return url
        }())
        let process = try CrashTests.start(h, log: log)
        defer { if process.isRunning { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() } }
        let journal = try h.journal()
        for n in 1...3 {
            try h.drop("d\(n).json", sidecar: Documents.metadata())
            try h.drop("d\(n).pdf", Documents.pdf("Compte rendu \(n)"))
        }
        #expect(try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 3
        })
        // The journal the gateway created, under umask 022.
        for file in [h.journalPath, h.journalPath + "-wal", h.journalPath + "-shm"] {
            #expect(Self.mode(file) == 0o600, "\(file): \(String(Self.mode(file) ?? 0, radix: 8))")
        }
        let liveBlobs = Journals.blobFolder(forDatabase: h.journalPath)
        #expect(Self.mode(liveBlobs.path) == 0o700)

        // While it runs (and takes a fourth document).
        try h.drop("d4.json", sidecar: Documents.metadata())
        try h.drop("d4.pdf", Documents.pdf("Compte rendu 4"))
        let backups = h.root.appendingPathComponent("backups")
        let file = backups.appendingPathComponent("journal-backup.sqlite").path
        let backup = try await passerelle(h, ["backup", file])
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stdout.contains("Backed up"), "\(backup.stdout)")
        #expect(try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 4
        })
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()

        let backupBlobs = backups.appendingPathComponent("journal-backup.blobs")
        #expect(Self.mode(file) == 0o600 && Self.mode(backups.path) == 0o700 && Self.mode(backupBlobs.path) == 0o700)
        #expect(Self.mode(backups.appendingPathComponent("journal-backup.patient-key").path) == 0o600)
        let copied = FileManager.default.enumerator(atPath: backupBlobs.path)?.allObjects as? [String] ?? []
        #expect(copied.filter { $0.count > 2 }.count >= 3, "3 documents' CDAs at least, in their folders (records are in the database): \(copied)")
        for name in copied {
            let mode = Self.mode(backupBlobs.appendingPathComponent(name).path)
            #expect(mode == (name.count == 2 ? 0o700 : 0o600), "\(name): \(String(mode ?? 0, radix: 8))")
        }
        let again = try await passerelle(h, ["backup", file])
        #expect(again.status == 1 && again.stderr.contains("exists"), "never overwritten: \(again.stderr)")

        // The state the backup saw, to compare with: the live journal now has the fourth
        // document too, so compare the restored journal with the backup file itself.
        let restoredConfig = h.root.appendingPathComponent("restored.toml").path
        let text = try String(contentsOfFile: h.configPath, encoding: .utf8)
        let moved = text.replacingOccurrences(of: "path = \"journal.sqlite\"", with: "path = \"restored/journal.sqlite\"")
        #expect(moved != text)
        try moved.write(toFile: restoredConfig, atomically: true, encoding: .utf8)
        let restore = try await passerelle(h, ["restore", file], config: restoredConfig)
        #expect(restore.status == 0, "\(restore.stdout)\(restore.stderr)")
        let restoredPath = h.root.appendingPathComponent("restored/journal.sqlite").path
        #expect(Self.mode(restoredPath) == 0o600)
        #expect(Self.mode(Journals.blobFolder(forDatabase: restoredPath).path) == 0o700)
        let twice = try await passerelle(h, ["restore", file], config: restoredConfig)
        #expect(twice.status == 1 && twice.stderr.contains("never overwrites"), "\(twice.stderr)")

        // The backup as a journal of its own (a third configuration pointing at the file).
        let asJournal = h.root.appendingPathComponent("backup-as-journal.toml").path
        try text.replacingOccurrences(of: "path = \"journal.sqlite\"", with: "path = \"backups/journal-backup.sqlite\"")
            .write(toFile: asJournal, atomically: true, encoding: .utf8)
        // JSON: the table's ages ("3 s") move with the clock between two runs.
        let restoredStatus = try await passerelle(h, ["status", "--json"], config: restoredConfig)
        let backupStatus = try await passerelle(h, ["status", "--json"], config: asJournal)
        #expect(restoredStatus.status == 0 && restoredStatus.stdout == backupStatus.stdout, "\(restoredStatus.stdout)\n---\n\(backupStatus.stdout)")
        #expect(restoredStatus.stdout.contains("\"acknowledged\""))
        #expect(try await report(h, config: restoredConfig) == (try await report(h, config: asJournal)))
        // Every document of the restored journal can be read back (its blobs came along).
        let restored = try SQLiteJournalStore(path: restoredPath, blobs: Journals.sqliteBlobs(forDatabase: restoredPath))
        let documents = try await restored.documents(in: .queued)
        #expect(documents.count >= 3)
        for d in documents {
            _ = try restored.blobs.get(d.blobSHA256)
            _ = try restored.blobs.get(try #require(d.builtSHA256))
        }
        // And `resend --patient` still finds the patient: the patient key came along.
        let patient = try await passerelle(h, ["resend", "--patient", "-", "--include-sent", "--dry-run"], config: restoredConfig,
                                           stdin: Data("279035121518989\n".utf8))
        #expect(patient.stdout.contains("would send again"), "\(patient.stdout)\(patient.stderr)")
    }

    /// `[journal] retention_days` makes `passerelle run` purge by itself: the schedule the
    /// service is assembled with, and its loop (with a clock 31 days ahead) purging once, audited.
    @Test func theServicePurgesOnItsOwnWhenRetentionIsSet() async throws {
        let h = try Harness(journal: "backend = \"sqlite\"\npath = \"journal.sqlite\"\nretention_days = 30")
        defer { h.cleanUp() }
        let service = try h.service()
        let schedule = try #require(service.retention, "retention_days set: the service has a schedule")
        #expect(schedule.days == 30 && schedule.interval == .seconds(86_400) && schedule.firstDelay == .seconds(300))
        let journal = try h.journal()
        do {
            let running = Task { try await service.run() }
            try h.drop("a.json", sidecar: Documents.metadata())
            try h.drop("a.pdf", Documents.pdf())
            #expect(try await Harness.waitUntil(timeout: 20) {
                try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 1
            })
            service.stop()
            try await running.value
        }
        let logger = Logger(label: "test.retention")
        // Today nothing is 30 days old.
        #expect(await schedule.purgeOnce(logger: logger)?.sets == 0)
        let later = RetentionSchedule(journal: schedule.journal, days: 30, firstDelay: .milliseconds(10), interval: .seconds(3600),
                                      clock: { Date().addingTimeInterval(31 * 86_400) })
        let loop = Task { await later.run(logger: logger) }
        defer { loop.cancel() }
        #expect(try await Harness.waitUntil(timeout: 10) {
            try await journal.documents(in: .queued).allSatisfy { $0.purgedAt != nil }
        })
        let trail = try await journal.operatorActions(OperatorActionQuery(actions: [.purge]))
        #expect(trail.count == 1 && trail[0].selection.contains("automatic retention_days=30") && trail[0].user == OperatorRequest.currentUser(),
                "\(trail)")
        // Without the key: no schedule.
        let plain = try Harness()
        defer { plain.cleanUp() }
        #expect(try plain.service().retention == nil)
    }

    @Test func aPostgreSQLJournalIsBackedUpWithPgDump() async throws {
        let h = try Harness(journal: "backend = \"postgresql\"\nurl = \"postgresql://passerelle@127.0.0.1:1/passerelle\"")
        defer { h.cleanUp() }
        let r = try await passerelle(h, ["backup", h.root.appendingPathComponent("dump").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("pg_dump --format=custom") && r.stderr.contains("pg_restore"), "\(r.stderr)")
    }
}
