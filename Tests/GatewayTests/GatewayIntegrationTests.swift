import IHE
import CDA
import DMP
import Foundation
import Intake
import Journal
import PasserelleCore
import Testing
import TestSupport

/// The whole service in-process: real inbox, real journal, real DMP-style endpoint over mutual TLS.
@Suite(.serialized) struct GatewayIntegrationTests {
    @Test func everyInputTypeAndEveryBrokenFileHasItsOutcome() async throws {
        let schema = TestPaths.shared.appendingPathComponent("conformance/cda/xsd/cda/CDA_extended.xsd").path
        let h = try Harness(extra: "[cda]\nschema = \"\(schema)\"")
        defer { h.cleanUp() }
        let service = try h.service()
        let running = Task { try await service.run() }

        // Good inputs: PDF + sidecar, producer CDA + sidecar, ORU^R01 (CDA inside), ADT^A01.
        let pdfMeta = Documents.metadata()
        try h.drop("cr-sortie.json", sidecar: pdfMeta)
        try h.drop("cr-sortie.pdf", Documents.pdf())
        let cdaMeta = Documents.metadata(.biologyReport)
        let producerCDA = try Documents.builder.build(metadata: cdaMeta, pdf: Documents.pdf("Biologie"))
        try h.drop("bio.json", sidecar: cdaMeta)
        try h.drop("bio.xml", producerCDA.data)
        // The ANS example carries a placeholder instead of a CDA: refused. With a real CDA of the
        // same patient (and a valid RPPS, a qualified identity), it goes to the DMP.
        let example = try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex0-biology-new.hl7"))
        try h.drop("oru-example.hl7", example)
        let (oru, oruID) = try Documents.oru(example)
        try h.drop("oru.hl7", oru)
        try h.drop("adt.hl7", Data(Harness.adtA01.utf8))

        // Broken inputs.
        let pdf = Documents.pdf()
        try h.drop("truncated.json", sidecar: Documents.metadata())
        try h.drop("truncated.pdf", pdf.prefix(pdf.count / 2))
        try h.drop("badjson.json", Data("{ \"kind\": \"ldl\", ".utf8))
        try h.drop("badjson.pdf", Documents.pdf())
        try h.drop("wrongkey.hl7", Data(String(decoding: oru, as: UTF8.self).replacingOccurrences(of: "279035121518989", with: "279035121518988").utf8))
        var unknownKind = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Documents.metadata())) as! [String: Any]
        unknownKind["kind"] = "horoscope"
        try h.drop("unknown.json", JSONSerialization.data(withJSONObject: unknownKind))
        try h.drop("unknown.pdf", Documents.pdf())
        try h.drop("empty.hl7", Data())
        // A producer CDA whose header reads fine but which breaks the CDA schema.
        let offSchemaMeta = Documents.metadata(.prescription)
        let offSchema = String(decoding: try Documents.builder.build(metadata: offSchemaMeta, pdf: Documents.pdf()).data, as: UTF8.self)
            .replacingOccurrences(of: "</title>", with: "</title><unexpected/>")
        try h.drop("offschema.json", sidecar: offSchemaMeta)
        try h.drop("offschema.xml", Data(offSchema.utf8))

        // A file still being written straight into the inbox: never taken half-written.
        let growingMeta = Documents.metadata(.operativeReport)
        try h.drop("growing.json", sidecar: growingMeta)
        let growing = Documents.pdf("Compte rendu opératoire")
        let growingURL = h.inbox.appendingPathComponent("growing.pdf")
        try growing.prefix(200).write(to: growingURL)
        let handle = try FileHandle(forWritingTo: growingURL)
        var offset = 200
        while offset < growing.count {
            try await Task.sleep(nanoseconds: 300_000_000)
            try handle.seekToEnd()
            let next = min(growing.count, offset + max(1, growing.count / 8))
            try handle.write(contentsOf: growing[offset..<next])
            offset = next
            #expect(h.files(in: h.inbox).contains("growing.pdf"), "taken while still being written")
        }
        try handle.close()

        let refused = ["truncated.pdf", "badjson.json", "wrongkey.hl7", "unknown.json", "empty.hl7", "oru-example.hl7", "offschema.xml"]
        let expectedIDs = [pdfMeta.id!, cdaMeta.id!, growingMeta.id!, oruID].map(DocumentEntryMapper.uniqueId)
        let journal = try h.journal()
        let settled = try await Harness.waitUntil(timeout: 60) {
            let errors = h.files(in: h.error)
            let states = try await journal.transmissions(matching: TransmissionFilter()).map(\.state)
            return refused.allSatisfy { errors.contains($0) && errors.contains($0 + ".error.txt") }
                && states.count == 4 && states.allSatisfy { $0 == .acknowledged || $0 == .failed }
                && h.files(in: h.inbox).isEmpty
        }
        service.stop()
        try await running.value
        let unexpected = h.files(in: h.error).filter { $0.hasSuffix(".error.txt") && !refused.contains(String($0.dropLast(10))) && !$0.hasPrefix("truncated") && !$0.hasPrefix("badjson") && !$0.hasPrefix("unknown") && !$0.hasPrefix("offschema") }
        let reasons = unexpected.map { (try? String(contentsOf: h.error.appendingPathComponent($0), encoding: .utf8)) ?? $0 }
        #expect(settled, "inbox \(h.files(in: h.inbox)) error \(h.files(in: h.error)) rejections \(h.endpoint.rejections) \(reasons)")

        // Reasons say what to fix.
        func reason(_ name: String) throws -> String { try String(contentsOf: h.error.appendingPathComponent(name + ".error.txt"), encoding: .utf8) }
        #expect(try reason("truncated.pdf").contains("truncated"))
        #expect(try reason("wrongkey.hl7").contains("INS"))
        #expect(!(try reason("wrongkey.hl7")).contains("279035121518988"))
        #expect(try reason("unknown.json").contains("kind"))
        #expect(try reason("empty.hl7").contains("empty"))
        #expect(try reason("oru-example.hl7").contains("not an XML document"))
        #expect(try reason("offschema.xml").contains("CDA schema"))
        #expect(h.files(in: h.error).contains("truncated.json"), "the pair travels together")

        // Documents: every good one stored exactly once by the DMP, journaled as acknowledged.
        let transmissions = try await journal.transmissions(matching: TransmissionFilter())
        #expect(transmissions.count == 4)
        #expect(transmissions.allSatisfy { $0.target == .dmp && $0.state == .acknowledged }, "\(transmissions.map { "\($0.documentID) \($0.state) \($0.lastError ?? "")" })")
        let stored = Set(h.endpoint.storedDocuments.map(\.uniqueId))
        for id in expectedIDs { #expect(stored.contains(id), "\(id) not in the DMP") }
        #expect(h.endpoint.storedDocuments.count == 8, "4 documents + 4 signatures")
        let stay = try await journal.stay(finess: "750803447", stayID: "V100")
        #expect(stay?.admittedAt != nil, "ADT^A01 recorded as a stay")
        #expect(h.files(in: h.work).isEmpty)
        #expect(h.files(in: h.done).count == 5, "4 documents + the ADT message, kept in done/")

        // The same file dropped again is recognised and not sent again.
        try h.drop("again.hl7", oru)
        let again = try h.service()
        let rerun = Task { try await again.run() }
        let gone = await Harness.waitUntil(timeout: 20) { h.files(in: h.inbox).isEmpty }
        again.stop()
        try await rerun.value
        #expect(gone)
        #expect(try await journal.transmissions(matching: TransmissionFilter()).count == 4)
        #expect(h.endpoint.storedDocuments.count == 8)
    }

    @Test func transientFailuresAreRetriedAndBusinessRefusalsFail() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        h.endpoint.fail(.httpStatus(503, retryAfter: nil), .soapFault(code: "Receiver", reason: "busy"))
        let service = try h.service()
        let running = Task { try await service.run() }
        let first = Documents.metadata()
        try h.drop("a.json", sidecar: first)
        try h.drop("a.pdf", Documents.pdf())
        let journal = try h.journal()
        let sent = try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 1
        }
        #expect(sent)
        let t = try #require(try await journal.transmissions(matching: TransmissionFilter()).first)
        let attempts = try await journal.attempts(transmissionID: t.id)
        #expect(attempts.map(\.outcome) == ["transient", "transient", "sent"])

        h.endpoint.fail(.registryError(code: "XDSPatientIdDoesNotMatch"))
        let second = Documents.metadata(.biologyReport)
        try h.drop("b.json", sidecar: second)
        try h.drop("b.pdf", Documents.pdf())
        let failed = try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.failed])).count == 1
        }
        service.stop()
        try await running.value
        #expect(failed)
        let dead = try #require(try await journal.transmissions(matching: TransmissionFilter(states: [.failed])).first)
        #expect(dead.documentID == DocumentEntryMapper.uniqueId(second.id!))
        #expect(dead.lastError?.contains("XDSPatientIdDoesNotMatch") == true)
        #expect(try await journal.attempts(transmissionID: dead.id).count == 1, "a business refusal is not retried")
    }
}
