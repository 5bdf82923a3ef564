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
