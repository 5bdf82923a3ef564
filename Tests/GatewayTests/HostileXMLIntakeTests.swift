import IHE
import CDA
import DMP
import Foundation
import Intake
import Journal
import OpenSSLKit
import PasserelleCore
import Testing
import TestSupport

/// Hostile XML (entity expansion, external DTDs, parameter entities, deep nesting) in a
/// producer CDA, on every intake path of the running service: inbox NAME.xml + NAME.json, an
/// HL7 file with the CDA in OBX-5, and over MLLP. Each is refused with its reason, in bounded
/// memory, nothing of it reaches the journal or the DMP, and legitimate documents after them
/// still go through.
@Suite(.serialized) struct HostileXMLIntakeTests {
    typealias Attack = HostileXML.Attack

    /// The ANS example with its control id made unique (MSH-10 "12345" in the fixture).
    static func withControlID(_ message: Data, _ id: String) -> Data {
        Data(String(decoding: message, as: UTF8.self).replacingOccurrences(of: "|12345|P|", with: "|\(id)|P|").utf8)
    }

    @Test func hostileCDAsAreRefusedOnEveryIntakePathInBoundedMemory() async throws {
        let h = try Harness(extra: """
            [mllp]
            enabled = true
            port = 0
            max_message_bytes = 4000000
            """)
        defer { h.cleanUp() }
        let service = try h.service()
        let running = Task { try await service.run() }
        defer { service.stop() }
        #expect(await Harness.waitUntil(timeout: 10) { service.mllpPort != nil })
        let port = try #require(service.mllpPort)
        let example = try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex0-biology-new.hl7"))
        let journal = try h.journal()

        // Every input is made before measuring: building them costs memory of its own. Each
        // hostile CDA is a valid one (it would be accepted) with the attack spliced in.
        var hostileIDs: [InstanceIdentifier] = []
        var inbox: [(name: String, metadata: DocumentMetadata, cda: Data, attack: Attack)] = []
        var files: [(name: String, message: Data, attack: Attack)] = []
        var frames: [(message: Data, attack: Attack)] = []
        for (i, attack) in Attack.allCases.enumerated() {
            let metadata = Documents.metadata(.biologyReport)
            let cda = try Documents.builder.build(metadata: metadata, pdf: Documents.pdf("Hostile \(i)"))
            inbox.append(("inbox-\(attack.rawValue)", metadata, attack.inserted(into: cda.data), attack))
            let (file, fileID) = try Documents.oru(example, transform: attack.inserted(into:))
            files.append(("hl7-\(attack.rawValue)", Self.withControlID(file, "H\(i)"), attack))
            let (frame, frameID) = try Documents.oru(example, transform: attack.inserted(into:))
            frames.append((Self.withControlID(frame, "M\(i)"), attack))
            hostileIDs += [try #require(metadata.id), fileID, frameID]
        }

        // The service runs in this process: its peak resident set is this process's (VmHWM,
        // reset to the current size first).
        #expect(ProcessMemory.resetPeak(), "cannot reset VmHWM: the memory bound would not be measured")
        let before = try #require(ProcessMemory.resident())

        for item in inbox {
            try h.drop(item.name + ".json", sidecar: item.metadata)
            try h.drop(item.name + ".xml", item.cda)
        }
        for item in files { try h.drop(item.name + ".hl7", item.message) }
        // MLLP: one connection, message after message; each is answered AE with the reason.
        let socket = try await Socket.connect(host: "127.0.0.1", port: port, timeout: 10)
        defer { socket.close() }
        for item in frames {
            try await socket.write(MLLPFrame.wrap(item.message))
            let ack = try await MLLPServiceTests.readFrame(socket)
            #expect(MLLPServiceTests.fields(ack, "MSA")?[1] == "AE", "\(item.attack): \(ack)")
            let err = MLLPServiceTests.fields(ack, "ERR")?.joined(separator: "|") ?? ""
            for expected in item.attack.expectedReason {
                #expect(err.contains(expected), "\(item.attack): ERR does not say '\(expected)': \(ack)")
            }
        }
        let refusedNames = inbox.map { $0.name + ".xml" } + files.map { $0.name + ".hl7" }
        // The pair travels together: the sidecar lands in error/ too (after the reason file).
        let expectedFiles = refusedNames.flatMap { [$0, $0 + ".error.txt"] } + inbox.map { $0.name + ".json" }
        let refused = await Harness.waitUntil(timeout: 60) {
            let present = Set(h.files(in: h.error))
            return expectedFiles.allSatisfy { present.contains($0) }
        }
        let growth = try #require(ProcessMemory.peakResident()) - before
        #expect(refused, "error/: \(h.files(in: h.error)) inbox: \(h.files(in: h.inbox))")
        #expect(growth < 64 << 20, "the gateway's peak memory grew by \(growth >> 20) MB for \(refusedNames.count + frames.count) hostile inputs")

        // Each reason file names the problem.
        func reason(_ name: String) throws -> String {
            try String(contentsOf: h.error.appendingPathComponent(name + ".error.txt"), encoding: .utf8)
        }
        for (name, attack) in inbox.map({ ($0.name + ".xml", $0.attack) }) + files.map({ ($0.name + ".hl7", $0.attack) }) {
            let text = try reason(name)
            for expected in attack.expectedReason { #expect(text.contains(expected), "\(name): \(text)") }
            #expect(!text.contains("lollol"), "\(name): an entity was expanded into the reason")
        }

        // Legitimate documents after them, on each path, still go to the DMP.
        let goodMeta = Documents.metadata(.biologyReport)
        let goodCDA = try Documents.builder.build(metadata: goodMeta, pdf: Documents.pdf("Biologie après"))
        try h.drop("good.json", sidecar: goodMeta)
        try h.drop("good.xml", goodCDA.data)
        let (goodFile, goodFileID) = try Documents.oru(example)
        try h.drop("good.hl7", Self.withControlID(goodFile, "GOODFILE"))
        let (goodFrame, goodFrameID) = try Documents.oru(example)
        try await socket.write(MLLPFrame.wrap(Self.withControlID(goodFrame, "GOODMLLP")))
        let ack = try await MLLPServiceTests.readFrame(socket)
        #expect(MLLPServiceTests.fields(ack, "MSA")?[1] == "AA", "\(ack)")
        let good = try [#require(goodMeta.id), goodFileID, goodFrameID].map(DocumentEntryMapper.uniqueId)
        let sent = try await Harness.waitUntil(timeout: 60) {
            let t = try await journal.transmissions(matching: TransmissionFilter())
            return t.count == 3 && t.allSatisfy { $0.state == .acknowledged }
        }
        service.stop()
        try await running.value
        let transmissions = try await journal.transmissions(matching: TransmissionFilter())
        #expect(sent, "\(transmissions.map { "\($0.documentID) \($0.state) \($0.lastError ?? "")" }) error/: \(h.files(in: h.error))")
        #expect(Set(transmissions.map(\.documentID)) == Set(good))

        // Nothing of the hostile documents in the journal or at the DMP.
        for id in hostileIDs.map(DocumentEntryMapper.uniqueId) {
            #expect(try await journal.document(id: id, version: 1) == nil, "\(id) journaled")
        }
        let stored = Set(h.endpoint.storedDocuments.map(\.uniqueId))
        #expect(stored.isDisjoint(with: hostileIDs.map(DocumentEntryMapper.uniqueId)))
        #expect(h.endpoint.storedDocuments.count == 6, "3 documents + 3 signatures")
    }
}
