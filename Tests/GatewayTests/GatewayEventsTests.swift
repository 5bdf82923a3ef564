import Foundation
import Gateway
import Handoff
import Intake
import Journal
import PasserelleCore
import Synchronization
import Testing
import TestSupport

/// Records what the gateway reports, for the metrics wiring.
final class RecordingEvents: GatewayEvents {
    let log = Mutex<[String]>([])
    func documentReceived(kind: DocumentKind?, source: IntakeOrigin) { log.withLock { $0.append("received \(kind?.shortName ?? "-") \(source.rawValue)") } }
    func documentRefused(reason: String, source: IntakeOrigin) { log.withLock { $0.append("refused \(reason) \(source.rawValue)") } }
    func documentBuilt(kind: DocumentKind) { log.withLock { $0.append("built \(kind.shortName)") } }
    func sendFinished(target: Destination, kind: DocumentKind, result: SendResult, duration: Duration) {
        log.withLock { $0.append("\(result.rawValue) \(target.rawValue) \(kind.shortName)") }
    }
    var events: [String] { log.withLock { $0 } }
}

/// The observer hook sees each document move: received, built, retried, sent, failed, refused.
@Suite(.serialized) struct GatewayEventsTests {
    @Test func everyStepIsReportedOnce() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let events = RecordingEvents()
        let service = try GatewayService.make(configuration: try h.configuration(), templates: TestPaths.templates,
                                              pollInterval: 0.1, events: events)
        let running = Task { try await service.run() }

        // One temporary failure then success; then a business refusal; then a broken file.
        h.endpoint.fail(.httpStatus(503, retryAfter: nil))
        try h.drop("a.json", sidecar: Documents.metadata())
        try h.drop("a.pdf", Documents.pdf())
        let journal = try h.journal()
        #expect(try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 1
        })
        h.endpoint.fail(.registryError(code: "XDSPatientIdDoesNotMatch"))
        try h.drop("b.json", sidecar: Documents.metadata(.biologyReport))
        try h.drop("b.pdf", Documents.pdf())
        try h.drop("c.hl7", Data("not an HL7 message".utf8))
        let settled = await Harness.waitUntil(timeout: 30) { events.events.contains("failed dmp cr-bio") && events.events.contains { $0.hasPrefix("refused ") } }
        service.stop()
        try await running.value
        #expect(settled, "\(events.events)")

        let log = events.events
        #expect(log.filter { $0 == "received ldl inbox" }.count == 1, "\(log)")
        #expect(log.filter { $0 == "built ldl" }.count == 1)
        #expect(log.filter { $0 == "retry dmp ldl" }.count == 1)
        #expect(log.filter { $0 == "sent dmp ldl" }.count == 1)
        #expect(log.filter { $0 == "received cr-bio inbox" }.count == 1)
        #expect(log.filter { $0 == "failed dmp cr-bio" }.count == 1)
        #expect(log.contains("refused invalid_message inbox"), "\(log)")
        // The retry comes before the success of the same transmission.
        let sent = try #require(log.firstIndex(of: "sent dmp ldl")), retry = try #require(log.firstIndex(of: "retry dmp ldl"))
        #expect(retry < sent)
    }
}
