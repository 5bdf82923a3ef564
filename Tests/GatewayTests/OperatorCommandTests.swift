import DMP
import Foundation
import Gateway
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
