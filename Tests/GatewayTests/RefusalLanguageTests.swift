import Foundation
import Intake
import OpenSSLKit
import PasserelleCore
import Testing
import TestSupport

/// Issue 21 item 4: the service as `run` assembles it writes its refusal reasons (`NAME.error.txt`)
/// and the ERR-8 of its ACKs in French by default, in English with `[intake] language = "en"`.
@Suite(.serialized) struct RefusalLanguageTests {
    /// What each refused input's reason must say, per language (file, then expected fragments).
    static let expected: [String: [(file: String, fragments: [String])]] = [
        "fr": [
            ("notes.docx", ["notes.docx : type de fichier non pris en charge. Déposez NOM.pdf avec NOM.json"]),
            ("broken.pdf", ["le fichier de métadonnées (JSON) est inutilisable. Corrigez-le et déposez à nouveau la paire.",
                            "le fichier de métadonnées n'est pas un objet JSON valide"]),
            ("fake.pdf", ["le contenu du document est inutilisable : fake.pdf n'est pas un PDF (il ne commence pas par %PDF-)"]),
            ("wrong.hl7", ["le message HL7 v2 est inutilisable : INS en PID-3 : l'INS ", "le numéro a été mal saisi",
                           "Corrigez-le et renvoyez-le."]),
            ("cut.hl7", ["OBX[13]-5.5 : CORPSMAIL_PS est tronqué : son base64 compte "]),
            ("nodest.pdf", ["le fichier de métadonnées comporte 1 problème",
                            "  - destinations : obligatoire : au moins un destinataire parmi dmp, mssante_ps, mssante_patient"]),
        ],
        "en": [
            ("notes.docx", ["notes.docx: unsupported file type. Drop NAME.pdf + NAME.json"]),
            ("broken.pdf", ["the sidecar cannot be used. Fix it and drop the pair again.", "sidecar is not a valid JSON object"]),
            ("fake.pdf", ["the document content is not usable: fake.pdf is not a PDF (it does not start with %PDF-)"]),
            ("wrong.hl7", ["the HL7 v2 message cannot be used: PID-3 INS: INS ", "the number was mistyped", "Fix it and resend it."]),
            ("cut.hl7", ["OBX[13]-5.5: CORPSMAIL_PS is truncated: its base64 has "]),
            ("nodest.pdf", ["sidecar has 1 problem(s):", "  - destinations: required: at least one of dmp, mssante_ps, mssante_patient"]),
        ],
    ]

    /// The ANS example ORU with its CORPSMAIL_PS base64 cut to a length no encoding has.
    static func cutMessage() throws -> Data {
        let text = String(decoding: try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex0-biology-new.hl7")), as: UTF8.self)
        let body = "Q2hlciBjb25mcsOocmUsIHZvdXMgdHJvdXZlcmV6IGNpLWpvaW50IGxlIENSIGTigJlpbWFnZXJpZSBkZSBNLkR1cG9udA=="
        #expect(text.contains(body))
        return Data(text.replacingOccurrences(of: body, with: String(body.dropLast(2).prefix(89))).utf8)  // 89 ≡ 1 (mod 4)
    }

    @Test(arguments: [nil, "en"] as [String?])
    func refusalsAndAcknowledgementsSpeakTheConfiguredLanguage(language: String?) async throws {
        let h = try Harness(extra: "[mllp]\nenabled = true\nport = 0", quiet: 0, language: language)
        defer { h.cleanUp() }
        let service = try h.service()
        let running = Task { try await service.run() }
        defer { service.stop() }
        #expect(await Harness.waitUntil(timeout: 10) { service.mllpPort != nil })
        let port = try #require(service.mllpPort)

        let example = try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex0-biology-new.hl7"))
        var noDestination = Documents.metadata()
        noDestination.destinations = []
        try h.drop("notes.docx", Data("notes".utf8))
        try h.drop("broken.json", Data("not json".utf8))
        try h.drop("broken.pdf", Documents.pdf())
        try h.drop("fake.json", sidecar: Documents.metadata())
        try h.drop("fake.pdf", Data("hello".utf8))
        try h.drop("nodest.json", sidecar: noDestination)
        try h.drop("nodest.pdf", Documents.pdf())
        try h.drop("wrong.hl7", Data(String(decoding: example, as: UTF8.self)
            .replacingOccurrences(of: "279035121518989", with: "279035121518988").utf8))
        try h.drop("cut.hl7", try Self.cutMessage())

        // The same cut message over MLLP: AE, and ERR-8 is the reason file's text.
        let socket = try await Socket.connect(host: "127.0.0.1", port: port, timeout: 10)
        defer { socket.close() }
        try await socket.write(MLLPFrame.wrap(try Self.cutMessage()))
        let ack = try await MLLPServiceTests.readFrame(socket)
        #expect(MLLPServiceTests.fields(ack, "MSA")?[1] == "AE", "\(ack)")
        let err = try #require(MLLPServiceTests.fields(ack, "ERR"))
        #expect(err[2].hasPrefix("OBX^13^5"), "the location of the cut field: \(err[2])")
        let ackText = err[8].replacingOccurrences(of: "\\.br\\", with: "\n").replacingOccurrences(of: "\\F\\", with: "|")
            .replacingOccurrences(of: "\\S\\", with: "^").replacingOccurrences(of: "\\T\\", with: "&")
            .replacingOccurrences(of: "\\R\\", with: "~").replacingOccurrences(of: "\\E\\", with: "\\")

        let cases = try #require(Self.expected[language ?? "fr"])
        let settled = await Harness.waitUntil(timeout: 30) {
            cases.allSatisfy { h.files(in: h.error).contains($0.file + ".error.txt") }
        }
        #expect(settled, "error/: \(h.files(in: h.error))")
        for (file, fragments) in cases {
            let report = try String(contentsOf: h.error.appendingPathComponent(file + ".error.txt"), encoding: .utf8)
            #expect(report.hasPrefix(language == "en" ? "Passerelle refused \(file) on " : "Passerelle a refusé \(file) le "), "\(report)")
            for fragment in fragments { #expect(report.contains(fragment), "\(file): «\(report)» lacks «\(fragment)»") }
            #expect(!report.contains("279035121518988") && !report.contains("TESTINS"), "no patient data: \(report)")
        }
        let cutReport = try String(contentsOf: h.error.appendingPathComponent("cut.hl7.error.txt"), encoding: .utf8)
        let reason = try #require(cutReport.components(separatedBy: "\n\n").dropFirst().first).trimmingCharacters(in: .newlines)
        #expect(ackText == reason, "ACK: \(ackText)\nfile: \(reason)")
        service.stop()
        try await running.value
    }
}
