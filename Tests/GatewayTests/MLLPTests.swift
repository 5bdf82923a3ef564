import IHE
import DMP
import Foundation
import Intake
import Journal
import OpenSSLKit
import PasserelleCore
import Testing
import TestSupport

@Suite struct MLLPFrameTests {
    @Test func framesAreFoundAcrossNoiseAndPartialReads() {
        let message = Data("MSH|^~\\&|A\rPID|1".utf8)
        var buffer = Data("noise".utf8) + MLLPFrame.wrap(message)
        #expect(MLLPFrame.scan(buffer.prefix(10), maxMessageBytes: 1000) == .incomplete(discard: 5))
        #expect(MLLPFrame.scan(buffer, maxMessageBytes: 1000) == .message(message, consumed: buffer.count))
        // A lone 0x1C inside the payload is not an end.
        buffer = MLLPFrame.wrap(Data([0x41, 0x1C, 0x42]))
        #expect(MLLPFrame.scan(buffer, maxMessageBytes: 1000) == .message(Data([0x41, 0x1C, 0x42]), consumed: buffer.count))
        #expect(MLLPFrame.scan(MLLPFrame.wrap(Data(count: 50)), maxMessageBytes: 10) == .tooLarge)
        #expect(MLLPFrame.scan(Data([0x0B]) + Data(count: 50), maxMessageBytes: 10) == .tooLarge)
    }
}

/// The MLLP listener of the running service, with a real client (python-hl7's mllp_send).
@Suite(.serialized) struct MLLPServiceTests {
    static let mllpSend = TestPaths.testVenv.appendingPathComponent("bin/mllp_send").path

    static func fields(_ ack: String, _ segment: String) -> [String]? {
        ack.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).map(String.init).first { $0.hasPrefix(segment + "|") }?
            .split(separator: "|", omittingEmptySubsequences: false).map(String.init)
    }

    @Test func acknowledgesOnlyJournaledMessagesWithConcurrentClients() async throws {
        let h = try Harness(extra: """
            [mllp]
            enabled = true
            port = 0
            max_message_bytes = 400000
            """)
        defer { h.cleanUp() }
        let service = try h.service()
        let running = Task { try await service.run() }
        defer { service.stop() }
        #expect(await Harness.waitUntil(timeout: 10) { service.mllpPort != nil })
        let port = try #require(service.mllpPort)
        let example = try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex0-biology-new.hl7"))

        // Four clients at once, each with its own message.
        var messages: [(String, Data, InstanceIdentifier?)] = []
        for i in 0..<3 {
            let (oru, id) = try Documents.oru(example)
            messages.append(("oru\(i)", Data(String(decoding: oru, as: UTF8.self).replacingOccurrences(of: "|12345|P|", with: "|ORU\(i)|P|").utf8), id))
        }
        messages.append(("adt", Data(Harness.adtA01.utf8), nil))
        let journal = try h.journal()
        let results = try await withThrowingTaskGroup(of: (String, ProcessResult).self) { group in
            for (name, data, _) in messages {
                let file = h.root.appendingPathComponent("\(name).hl7")
                try data.write(to: file)
                group.addTask { (name, try await Harness.runOffPool(Self.mllpSend, ["--port", "\(port)", "--file", file.path, "--loose", "127.0.0.1"])) }
            }
            var out: [String: ProcessResult] = [:]
            for try await (name, r) in group { out[name] = r }
            return out
        }
        for (name, _, id) in messages {
            let r = try #require(results[name])
            #expect(r.succeeded, "\(name): \(r.stderr)")
            #expect(Self.fields(r.stdout, "MSA")?[1] == "AA", "\(name): \(r.stdout)")
            // AA means journaled: the document is in the journal the moment the ACK arrives.
            if let id {
                #expect(Self.fields(r.stdout, "MSA")?[2] == "ORU\(name.last!)")
                #expect(try await journal.document(id: DocumentEntryMapper.uniqueId(id), version: 1) != nil)
            }
        }
        #expect(try await journal.stay(finess: "750803447", stayID: "V100") != nil)

        // A wrong INS key: AE with an ERR that names PID-3 and never quotes the number.
        let wrong = Data(String(decoding: example, as: UTF8.self).replacingOccurrences(of: "279035121518989", with: "279035121518988").utf8)
        let wrongFile = h.root.appendingPathComponent("wrong.hl7")
        try wrong.write(to: wrongFile)
        let ae = try await Harness.runOffPool(Self.mllpSend, ["--port", "\(port)", "--file", wrongFile.path, "--loose", "127.0.0.1"])
        #expect(Self.fields(ae.stdout, "MSA")?[1] == "AE", "\(ae.stdout)")
        let err = try #require(Self.fields(ae.stdout, "ERR"))
        #expect(err[2].hasPrefix("PID^1^3"))
        #expect(!ae.stdout.contains("279035121518988"))

        // Two messages on one connection, then an oversize frame: AE and the connection closes.
        let socket = try await Socket.connect(host: "127.0.0.1", port: port, timeout: 10)
        defer { socket.close() }
        for _ in 0..<2 {
            try await socket.write(MLLPFrame.wrap(Data(Harness.adtA01.utf8)))
            let ack = try await Self.readFrame(socket)
            #expect(Self.fields(ack, "MSA")?[1] == "AA")
        }
        try await socket.write(MLLPFrame.wrap(Data(count: 500_000)))
        let big = try await Self.readFrame(socket)
        #expect(Self.fields(big, "MSA")?[1] == "AE")
        #expect(big.contains("max_message_bytes"))
        #expect(try await socket.read(maxLength: 10).isEmpty, "closed after an oversize message")

        // Everything that was accepted goes on to the DMP.
        let sent = try await Harness.waitUntil(timeout: 30) {
            try await journal.transmissions(matching: TransmissionFilter(states: [.acknowledged])).count == 3
        }
        #expect(sent)
        service.stop()
        try await running.value
    }

    @Test func tlsListenerRequiresAClientCertificate() async throws {
        let pki = TestPaths.testPKI
        let h = try Harness(extra: """
            [mllp]
            enabled = true
            port = 0
            tls_identity = "\(pki.appendingPathComponent("server-localhost.p12").path)"
            tls_client_ca = "\(pki.appendingPathComponent("ca.pem").path)"
            """)
        defer { h.cleanUp() }
        let service = try h.service()
        let running = Task { try await service.run() }
        #expect(await Harness.waitUntil(timeout: 10) { service.mllpPort != nil })
        let port = try #require(service.mllpPort)
        let passphrase = try Passphrase.read(file: TestPaths.testPKIPassphraseFile)
        let client = TLSConfiguration(trustedCAFile: pki.appendingPathComponent("ca.pem"),
                                      identity: try PKCS12Bundle.load(path: pki.appendingPathComponent("org-auth.p12"), passphrase: passphrase), timeout: 10)
        let stream = try await TLSStream.connect(host: "localhost", port: port, configuration: client)
        try await stream.write(MLLPFrame.wrap(Data(Harness.adtA01.utf8)))
        let ack = try await Self.readFrame(stream)
        #expect(Self.fields(ack, "MSA")?[1] == "AA")
        stream.close()

        // Without a client certificate the handshake (or the first read under TLS 1.3) fails.
        let anonymous = TLSConfiguration(trustedCAFile: pki.appendingPathComponent("ca.pem"), timeout: 5)
        var refused = false
        do {
            let s = try await TLSStream.connect(host: "localhost", port: port, configuration: anonymous)
            try await s.write(MLLPFrame.wrap(Data(Harness.adtA01.utf8)))
            refused = (try? await s.read(maxLength: 100))?.isEmpty ?? true
            s.close()
        } catch { refused = true }
        #expect(refused)
        service.stop()
        try await running.value
    }

    static func readFrame(_ connection: any Connection) async throws -> String {
        var buffer = Data()
        while true {
            if case .message(let m, _) = MLLPFrame.scan(buffer, maxMessageBytes: 1 << 20) { return String(decoding: m, as: UTF8.self) }
            let chunk = try await connection.read(maxLength: 65_536)
            if chunk.isEmpty { throw SocketError.closed }
            buffer.append(chunk)
        }
    }
}
