import Foundation
import PasserelleCore
import Testing
import TestSupport

/// The real `passerelle run` binary as a child process, fed hostile producer CDAs (billion
/// laughs, quadratic blow-up, external DTD, parameter entity, deep nesting) in its inbox, in an
/// HL7 file and over MLLP: each refused with its reason while the child's peak memory stays
/// bounded, and a legitimate document dropped after them is still taken.
@Suite("passerelle run: hostile XML", .serialized)
struct HostileXMLRunTests {
    typealias Attack = HostileXML.Attack
    static let mllpSend = TestPaths.testVenv.appendingPathComponent("bin/mllp_send").path
    static let validCDA = TestPaths.repositoryRoot.appendingPathComponent("Fuzz/Corpus/cda/ldl-qualified.xml")
    static let oruExample = TestPaths.repositoryRoot.appendingPathComponent("Tests/IntakeTests/Fixtures/oru-ex0-biology-new.hl7")

    /// The example sidecar (the patient of `validCDA`), for the DMP only.
    static func sidecar(id: String? = nil) throws -> Data {
        var json = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/examples/sidecar-ldl.json"))) as? [String: Any])
        json["destinations"] = ["dmp"]
        json.removeValue(forKey: "mssante")
        if let id { json["id"] = ["root": id] } else { json.removeValue(forKey: "id") }
        return try JSONSerialization.data(withJSONObject: json)
    }

    /// The ANS ORU^R01 example with `cda` in OBX-5, a qualified identity and a valid RPPS.
    static func oru(_ cda: Data, control: String) throws -> Data {
        var text = String(decoding: try Data(contentsOf: oruExample), as: UTF8.self)
            .replacingOccurrences(of: "^TEXT^XML^Base64^RG9jdW1lbnQgbcOpZGljYWwgYXUgZm 9ybWF0IENEQQ", with: "^TEXT^XML^Base64^" + cda.base64EncodedString())
            .replacingOccurrences(of: "801234567866", with: "801234567897")
            .replacingOccurrences(of: "|12345|P|", with: "|\(control)|P|")
        var segments = text.split(separator: "\r", omittingEmptySubsequences: true).map(String.init)
        for i in segments.indices where segments[i].hasPrefix("PID|") {
            var fields = segments[i].split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            while fields.count <= 32 { fields.append("") }
            fields[32] = "QUAL"
            segments[i] = fields.joined(separator: "|")
        }
        text = segments.joined(separator: "\r")
        return Data(text.utf8)
    }

    @Test func hostileCDAsAreRefusedByTheRunningBinaryInBoundedMemory() async throws {
        let root = try TestPaths.temporaryDirectory("run-hostile-xml")
        defer { try? FileManager.default.removeItem(at: root) }
        let httpPort = try RunStatusTests.freePort(), mllpPort = try RunStatusTests.freePort()
        var text = TestConfiguration.withTestPKI()
            .replacingOccurrences(of: "/tmp/passerelle-test/journal.sqlite", with: root.appendingPathComponent("journal/journal.sqlite").path)
            .replacingOccurrences(of: "/tmp/passerelle-test", with: root.path)
            // A DMP nobody answers: what is accepted waits in the journal, nothing is sent.
            .replacingOccurrences(of: "[dmp]\nenabled = false", with: """
                [dmp]
                enabled = true
                endpoint = "https://127.0.0.1:9/dmp"

                [vihf]
                identifiant_structure = "1750803447"
                secteur_activite = "SA01"
                lps_nom = "Passerelle"
                lps_version = "1.0.0"
                lps_homologation_dmp = "HOMOLOGATION-TEST-1"
                role = "10^1.2.250.1.71.1.2.7^Médecin"
                """)
        text += "\n[http]\nmetrics_port = \(httpPort)\n\n[mllp]\nenabled = true\nport = \(mllpPort)\nmax_message_bytes = 4000000\n"
        // The expected reasons are the English texts (the French ones: Tests/GatewayTests/RefusalLanguageTests.swift).
        text += "\n[intake]\nlanguage = \"en\"\n"
        let config = root.appendingPathComponent("passerelle.toml")
        try text.write(to: config, atomically: true, encoding: .utf8)
        let inbox = root.appendingPathComponent("inbox"), errors = root.appendingPathComponent("error")
        let done = root.appendingPathComponent("done")
        let binary = try #require(CLI.binary)
        let run = try Background(binary, ["run", "--config", config.path, "--log-level", "info"], directory: TestPaths.repositoryRoot, logs: root)
        defer { run.kill() }
        try await RunStatusTests().waitForHealth("http://127.0.0.1:\(httpPort)", run)
        let pid = run.process.processIdentifier

        // Inputs made before measuring; then the child's peak is reset to its current size.
        let valid = try Data(contentsOf: Self.validCDA)
        func drop(_ name: String, _ data: Data) throws {
            let partial = inbox.appendingPathComponent(name + ".part")
            try data.write(to: partial)
            try FileManager.default.moveItem(at: partial, to: inbox.appendingPathComponent(name))
        }
        let hl7Attacks: [Attack] = [.billionLaughs, .quadraticBlowup, .parameterEntity]
        let messages = try hl7Attacks.enumerated().map { try Self.oru($0.element.inserted(into: valid), control: "M\($0.offset)") }
        let files = try hl7Attacks.enumerated().map { try Self.oru($0.element.inserted(into: valid), control: "F\($0.offset)") }
        let sidecar = try Self.sidecar()
        #expect(ProcessMemory.resetPeak(pid: pid), "cannot reset the child's VmHWM")
        let before = try #require(ProcessMemory.resident(pid: pid))

        for attack in Attack.allCases {
            try drop("\(attack.rawValue).json", sidecar)
            try drop("\(attack.rawValue).xml", attack.inserted(into: valid))
        }
        for (attack, file) in zip(hl7Attacks, files) { try drop("hl7-\(attack.rawValue).hl7", file) }
        for (attack, message) in zip(hl7Attacks, messages) {
            let file = root.appendingPathComponent("mllp-\(attack.rawValue).hl7")
            try message.write(to: file)
            let sent = try ProcessRunner.run(Self.mllpSend, ["--port", "\(mllpPort)", "--file", file.path, "--loose", "127.0.0.1"])
            #expect(sent.succeeded, "\(sent.stderr)")
            let msa = sent.stdout.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).first { $0.hasPrefix("MSA|") } ?? ""
            #expect(msa.hasPrefix("MSA|AE|"), "\(attack): \(sent.stdout)")
            for expected in attack.expectedReason { #expect(sent.stdout.contains(expected), "\(attack): \(sent.stdout)") }
        }
        let names = Attack.allCases.map { "\($0.rawValue).xml" } + hl7Attacks.map { "hl7-\($0.rawValue).hl7" }
        var refused = false
        for _ in 0..<300 {
            let present = Set((try? FileManager.default.contentsOfDirectory(atPath: errors.path)) ?? [])
            // The files move in after every reason is written: then the reasons are complete.
            let expected = names.flatMap { [$0, $0 + ".error.txt"] } + Attack.allCases.map { "\($0.rawValue).json" }
            if expected.allSatisfy({ present.contains($0) }) { refused = true; break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let growth = try #require(ProcessMemory.peakResident(pid: pid)) - before
        #expect(refused, "error/: \((try? FileManager.default.contentsOfDirectory(atPath: errors.path)) ?? []) log: \(run.errors.suffix(2000))")
        #expect(growth < 64 << 20, "passerelle run's peak memory grew by \(growth >> 20) MB")
        for attack in Attack.allCases {
            let reason = (try? String(contentsOf: errors.appendingPathComponent("\(attack.rawValue).xml.error.txt"), encoding: .utf8)) ?? ""
            for expected in attack.expectedReason { #expect(reason.contains(expected), "\(attack): \(reason)") }
            #expect(!reason.contains("root:x:0"), "\(attack): /etc/passwd was read: \(reason)")
        }
        for attack in hl7Attacks {
            let reason = (try? String(contentsOf: errors.appendingPathComponent("hl7-\(attack.rawValue).hl7.error.txt"), encoding: .utf8)) ?? ""
            for expected in attack.expectedReason { #expect(reason.contains(expected), "\(attack): \(reason)") }
        }

        // A legitimate document after them is taken (journaled, then moved to done/).
        try drop("good.json", try Self.sidecar(id: "1.2.250.1.999.1.4.\(UInt32.random(in: 1...UInt32.max))"))
        try drop("good.pdf", TestPDF.make(text: "Lettre de liaison"))
        var taken = false
        for _ in 0..<300 {
            let inDone = (FileManager.default.enumerator(atPath: done.path)?.allObjects as? [String]) ?? []
            if inDone.contains(where: { $0.hasSuffix("good.pdf") }) { taken = true; break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(taken, "error/: \((try? FileManager.default.contentsOfDirectory(atPath: errors.path)) ?? []) log: \(run.errors.suffix(2000))")
        let goodRefusal = (try? String(contentsOf: errors.appendingPathComponent("good.pdf.error.txt"), encoding: .utf8)) ?? ""
        #expect(goodRefusal.isEmpty, "\(goodRefusal)")
        #expect(run.process.isRunning)
        #expect(await run.terminate(timeout: 30) == 0)
    }
}
