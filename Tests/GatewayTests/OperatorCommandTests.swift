import IHE
import DMP
import Foundation
import Journal
import PasserelleCore
import Testing
import TestSupport

/// `passerelle status`, `show` and `resend` on a journal filled by the running service.
@Suite(.serialized) struct OperatorCommandTests {
    func passerelle(_ h: Harness, _ arguments: [String], stdin: Data? = nil) async throws -> ProcessResult {
        let binary = try #require(CrashTests.binary, "passerelle binary not found")
        return try await Harness.runOffPool(binary, arguments + ["--config", h.configPath], stdin: stdin)
    }

    @Test func statusShowAndResendOfADeadLetter() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        h.endpoint.fail(.registryError(code: "XDSPatientIdDoesNotMatch"))
        let refusedDoc = Documents.metadata()
        let okDoc = Documents.metadata(.biologyReport)
        let journal = try h.journal()
        do {
            let service = try h.service()
            let running = Task { try await service.run() }
            try h.drop("refused.json", sidecar: refusedDoc)
            try h.drop("refused.pdf", Documents.pdf())
            #expect(try await Harness.waitUntil(timeout: 20) {
                try await journal.transmissions(matching: TransmissionFilter(states: [.failed])).count == 1
            })
            try h.drop("ok.json", sidecar: okDoc)
            try h.drop("ok.pdf", Documents.pdf())
            #expect(try await Harness.waitUntil(timeout: 20) {
                try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 1
            })
            service.stop()
            try await running.value
        }
        let failedID = DocumentEntryMapper.uniqueId(refusedDoc.id!)

        let status = try await passerelle(h, ["status"])
        #expect(status.status == 3, "a dead letter is worth an exit code: \(status.stdout)\(status.stderr)")
        #expect(status.stdout.contains("failed"))
        #expect(status.stdout.contains("acknowledged"))
        #expect(status.stdout.contains("XDSPatientIdDoesNotMatch"))

        let show = try await passerelle(h, ["show", failedID])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("→ dmp: failed"))
        #expect(show.stdout.contains("attempt"))
        #expect(show.stdout.contains("2***********989"))
        #expect(!show.stdout.contains("279035121518989"), "never the full INS")
        #expect(!show.stdout.contains("PAT-TROIS"), "never a name")
        #expect(try await passerelle(h, ["show", "1.2.3.4.5"]).status == 1)

        let dry = try await passerelle(h, ["resend", "--target", "dmp", "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("would resend"))
        #expect(dry.stdout.contains(failedID))
        #expect(try await journal.transmissions(matching: TransmissionFilter(states: [.failed])).count == 1, "a dry run changes nothing")

        let unconfirmed = try await passerelle(h, ["resend", "--confirm-above", "0"])
        #expect(unconfirmed.status == 1)
        #expect(unconfirmed.stderr.contains("--yes"))

        let other = try await passerelle(h, ["resend", "--patient", "-", "--yes"], stdin: Data("248039999999926\n".utf8))
        #expect(other.stdout.contains("Nothing to resend"), "another patient's key selects nothing: \(other.stdout)")

        let resend = try await passerelle(h, ["resend", "--patient", "-", "--yes"], stdin: Data("279035121518989\n".utf8))
        #expect(resend.status == 0, "\(resend.stderr)")
        #expect(resend.stdout.contains("1 transmission queued again"))
        #expect(resend.stdout.contains("skip") == false)
        #expect(!resend.stdout.contains("279035121518989"))

        // The next run sends it; status is clean again.
        let service = try h.service()
        let running = Task { try await service.run() }
        #expect(try await Harness.waitUntil(timeout: 20) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 2
        })
        service.stop()
        try await running.value
        #expect(try await passerelle(h, ["status"]).status == 0)
    }

    /// `resend --include-sent`: an acknowledged DMP transmission is attempted again on the
    /// operator's explicit request; the DMP recognises the document and the history grows.
    @Test func resendIncludeSentAttemptsAnAcknowledgedTransmissionAgain() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let doc = Documents.metadata()
        let id = DocumentEntryMapper.uniqueId(doc.id!)
        let journal = try h.journal()
        func runUntilAcknowledged() async throws {
            let service = try h.service()
            let running = Task { try await service.run() }
            #expect(try await Harness.waitUntil(timeout: 20) {
                try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 1
            })
            service.stop()
            try await running.value
        }
        try h.drop("a.json", sidecar: doc)
        try h.drop("a.pdf", Documents.pdf())
        try await runUntilAcknowledged()
        let t = try #require(try await journal.transmissions(matching: TransmissionFilter(documentID: id)).first)
        #expect(h.endpoint.storedDocuments.count == 2)

        let plain = try await passerelle(h, ["resend", "--document", id])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stdout.contains("Nothing to resend"), "\(plain.stdout)")
        let narrowed = try await passerelle(h, ["resend", "--document", id, "--status", "acknowledged"])
        #expect(narrowed.stdout.contains("already acknowledged; add --include-sent"), "\(narrowed.stdout)")

        let dry = try await passerelle(h, ["resend", "--document", id, "--include-sent", "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("would send again \(t.id) dmp \(id) v1: already acknowledged"), "\(dry.stdout)")
        #expect(dry.stdout.contains("1 of them already sent"))
        #expect(try await journal.transmission(id: t.id)?.state == .acknowledged, "a dry run changes nothing")

        // Even one transmission: sending a success again is always confirmed.
        let unconfirmed = try await passerelle(h, ["resend", "--document", id, "--include-sent"])
        #expect(unconfirmed.status == 1)
        #expect(unconfirmed.stderr.contains("already sent") && unconfirmed.stderr.contains("--yes"), "\(unconfirmed.stderr)")
        #expect(try await journal.transmission(id: t.id)?.state == .acknowledged)

        let resend = try await passerelle(h, ["resend", "--document", id, "--include-sent", "--yes"])
        #expect(resend.status == 0, "\(resend.stderr)")
        #expect(resend.stdout.contains("1 transmission queued again"), "\(resend.stdout)")
        #expect(try await journal.transmission(id: t.id)?.state == .queued)

        try await runUntilAcknowledged()
        let attempts = try await journal.attempts(transmissionID: t.id)
        #expect(attempts.count == 2, "the new attempt is appended: \(attempts)")
        #expect(attempts.allSatisfy { $0.outcome == "sent" })
        #expect(attempts.last?.response?.contains("already stored by the DMP") == true, "\(attempts.last?.response ?? "")")
        #expect(h.endpoint.storedDocuments.count == 2, "nothing stored twice")
        let show = try await passerelle(h, ["show", id])
        #expect(show.stdout.components(separatedBy: "attempt ").count - 1 == 2, "\(show.stdout)")
    }

    /// The operator scenario of issue 18: endpoint down → retry-wait → `queue` shows them with
    /// their next attempt → endpoint back → `flush` → acknowledged within seconds (one held
    /// meanwhile, sent only once released); a refused test document → `discard --reason` →
    /// `status` exits 0 and the report counts it on its own line; `audit` lists every action
    /// with the OS user, and `show` (by transmission id) lists them in the document's history.
    @Test func outageFlushHoldDiscardAndTheAuditTrail() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        // Retries ten minutes apart: within the test, only `flush` can make them due.
        let text = try String(contentsOfFile: h.configPath, encoding: .utf8)
        let slow = text.replacingOccurrences(of: "retry_initial_seconds = 1\nretry_max_seconds = 2",
                                             with: "retry_initial_seconds = 600\nretry_max_seconds = 1200")
        #expect(slow != text)
        try slow.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        let journal = try h.journal()
        let service = try h.service()
        let running = Task { try await service.run() }

        // The DMP is down (stopped before anything is sent: a kept-alive connection could
        // otherwise still take a request): three documents wait.
        let port = h.endpoint.port
        h.endpoint.stop()
        for n in 1...3 {
            try h.drop("d\(n).json", sidecar: Documents.metadata())
            try h.drop("d\(n).pdf", Documents.pdf("Compte rendu \(n)"))
        }
        let allWait = try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.retryWait])).count == 3
        }
        let states = try await journal.transmissions(matching: TransmissionFilter()).map { "\($0.id) \($0.state.rawValue) \($0.lastError ?? "")" }
        #expect(allWait, "refused: \(h.files(in: h.error)); states: \(states)")
        let waiting = try await journal.transmissions(matching: TransmissionFilter(states: [.retryWait]))
        let queue = try await passerelle(h, ["queue"])
        #expect(queue.status == 0, "\(queue.stderr)")
        let lines = queue.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("id") == true && lines.first?.contains("next attempt") == true, "\(queue.stdout)")
        for t in waiting {
            let line = try #require(lines.first { $0.hasPrefix("\(t.id) ") }, "\(queue.stdout)")
            #expect(line.contains("retry-wait") && line.contains("network:"), "\(line)")
            // The next attempt, in [report] time_zone with its offset: ten minutes or more ahead.
            #expect(line.range(of: #"retry-wait +dmp +\S+ \S+ [+-]\d\d:\d\d +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d"#,
                               options: .regularExpression) != nil, "\(line)")
        }
        let json = try await passerelle(h, ["queue", "--status", "retry-wait", "--json"])
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]], "\(json.stdout)")
        #expect(listed.map { $0["id"] as? Int } == waiting.map { Int($0.id) }, "oldest first")
        for item in listed {
            let next = try #require(item["next_attempt_at"] as? String)
            #expect(next.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$"#, options: .regularExpression) != nil, "\(next)")
            let date = try #require(try? Date.ISO8601FormatStyle().parse(next))
            #expect(date > Date().addingTimeInterval(300), "not due before ten minutes: \(next)")
            #expect(item["document_id"] is String && item["last_error"] is String)
        }

        // One is held through the outage; the endpoint comes back; flush.
        let held = waiting[0]
        let hold = try await passerelle(h, ["hold", "--id", "\(held.id)"])
        #expect(hold.status == 0 && hold.stdout.contains("1 transmission held"), "\(hold.stdout)\(hold.stderr)")
        let back = try Harness.endpoint(port: port)
        defer { back.stop() }
        let flushedAt = Date()
        let flush = try await passerelle(h, ["flush", "--target", "dmp"])
        #expect(flush.status == 0, "\(flush.stderr)")
        #expect(flush.stdout.contains("2 transmissions flushed"), "\(flush.stdout)")
        #expect(try await Harness.waitUntil(timeout: 10) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 2
        }, "acknowledged within seconds of the flush")
        #expect(Date().timeIntervalSince(flushedAt) < 10)
        #expect(try await journal.transmission(id: held.id)?.state == .held, "a held transmission is not sent")
        let release = try await passerelle(h, ["release", "--id", "\(held.id)"])
        #expect(release.status == 0 && release.stdout.contains("1 transmission released"), "\(release.stdout)\(release.stderr)")
        #expect(try await Harness.waitUntil(timeout: 10) { try await journal.transmission(id: held.id)?.state == .acknowledged })

        // A test document the DMP refuses: a dead letter, listed by `queue`.
        back.fail(.registryError(code: "XDSPatientIdDoesNotMatch"))
        try h.drop("test.json", sidecar: Documents.metadata())
        try h.drop("test.pdf", Documents.pdf("Document de test"))
        #expect(try await Harness.waitUntil(timeout: 20) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.failed])).count == 1
        })
        let dead = try #require(try await journal.transmissions(matching: TransmissionFilter(states: [.failed])).first)
        let failedQueue = try await passerelle(h, ["queue"])
        #expect(failedQueue.stdout.split(separator: "\n").contains { $0.hasPrefix("\(dead.id) ") && $0.contains("failed") }, "\(failedQueue.stdout)")

        // The dead letter keeps `status` at 3 until it is set aside.
        #expect(try await passerelle(h, ["status"]).status == 3)
        let noReason = try await passerelle(h, ["discard", "--id", "\(dead.id)", "--reason", " "])
        #expect(noReason.status != 0 && noReason.stderr.contains("--reason"), "\(noReason.stderr)")
        let discard = try await passerelle(h, ["discard", "--id", "\(dead.id)", "--reason", "test document"])
        #expect(discard.status == 0 && discard.stdout.contains("1 transmission discarded"), "\(discard.stdout)\(discard.stderr)")
        let status = try await passerelle(h, ["status"])
        #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
        #expect(status.stdout.contains("discarded"))
        let statusJSON = try await passerelle(h, ["status", "--json"])
        #expect(statusJSON.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(statusJSON.stdout.utf8)) as? [String: Any])
        #expect(object["failed"] as? Int == 0)
        let counts = try #require(object["counts"] as? [[String: Any]])
        #expect(counts.contains { $0["state"] as? String == "discarded" && $0["count"] as? Int == 1 })
        #expect(counts.contains { $0["state"] as? String == "acknowledged" && $0["count"] as? Int == 3 })

        // The report: on its own line, out of the refusal and failure lines.
        let day = 86_400.0
        let f = Date.ISO8601FormatStyle().year().month().day()
        let report = try await passerelle(h, ["report", "--from", f.format(Date().addingTimeInterval(-day)),
                                              "--to", f.format(Date().addingTimeInterval(day)), "--format", "csv"])
        #expect(report.status == 0, "\(report.stderr)")
        let rows = report.stdout.components(separatedBy: "\r\n").map { $0.components(separatedBy: ";") }
        func numerator(_ code: String) -> String? { rows.first { $0.count > 4 && $0[1] == code }?[4] }
        #expect(numerator("Q-ECARTE") == "1", "\(report.stdout)")
        #expect(numerator("Q-REFUS-DMP") == "0" && numerator("Q-ECHEC-DEF") == "0")

        // The audit trail: every action, with the OS user; show lists them in the history.
        let user = OperatorRequest.currentUser()
        let audit = try await passerelle(h, ["audit", "--json"])
        #expect(audit.status == 0, "\(audit.stderr)")
        let actions = try #require(try JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]], "\(audit.stdout)")
        #expect(actions.map { $0["action"] as? String } == ["hold", "flush", "release", "discard"])
        #expect(actions.allSatisfy { $0["user"] as? String == user })
        #expect(actions.map { $0["count"] as? Int } == [1, 2, 1, 1])
        #expect(actions[1]["selection"] as? String == "target=dmp")
        #expect(actions[3]["reason"] as? String == "test document")
        let table = try await passerelle(h, ["audit"])
        #expect(table.stdout.contains("\(user)  flush 2 transmissions") && table.stdout.contains("reason: test document"), "\(table.stdout)")
        let show = try await passerelle(h, ["show", "\(dead.id)"])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("transmission \(dead.id) belongs to document \(dead.documentID)"))
        #expect(show.stdout.contains("operator discard") && show.stdout.contains("by \(user)") && show.stdout.contains(": test document"), "\(show.stdout)")
        #expect(try await passerelle(h, ["show", "999999"]).status == 1)

        service.stop()
        try await running.value
    }

    @Test func sigtermStopsTheServiceCleanly() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let log = h.root.appendingPathComponent("run.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let process = try CrashTests.start(h, log: handle)
        try h.drop("a.json", sidecar: Documents.metadata())
        try h.drop("a.pdf", Documents.pdf())
        let journal = try h.journal()
        #expect(try await Harness.waitUntil(timeout: 20) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 1
        })
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        try handle.close()
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(process.terminationStatus == 0, "\(text.suffix(2000))")
        #expect(text.contains("stopped cleanly"))
        #expect(!text.contains("279035121518989"), "logs carry the masked INS only")
        #expect(!text.contains("PAT-TROIS"), "logs carry no names")
    }
}
