import Foundation
import Testing
import TestSupport

/// `passerelle demo` end to end, as `scripts/run.sh` runs it: `passerelle` hands over to the
/// demo-only `passerelle-testbed demo`, which holds a real local DMP endpoint over mutual TLS,
/// starts the real aiosmtpd relay (scripts/endpoints/smtp_server.py, STARTTLS, client
/// certificate) and the production gateway — `passerelle run`, a child process — with its
/// journal; the status endpoint (that of `passerelle run`) is scraped with the real curl.
@Suite("passerelle demo", .serialized)
struct DemoTests {
    static let labels = [
        "ldl (PDF + sidecar)", "ordonnance (PDF + sidecar)", "cro (PDF + sidecar)", "cr-bio (PDF + sidecar)",
        "cr-imagerie (PDF + sidecar)", "unqualified identity", "broken PDF (truncated)", "ORU^R01 (cr-bio, CDA)",
        "MDM^T02 (cr-imagerie, CDA)", "ADT^A03 (discharge)", "ldl replacement (v2)", "ordonnance deletion",
    ]

    static func arguments(_ folder: URL, _ extra: [String] = []) -> [String] {
        ["demo", "--folder", folder.path, "--pki", TestPaths.testPKI.path,
         "--xds-schema", TestPaths.shared.appendingPathComponent("conformance/xds/XDS.b_DocumentRepository.xsd").path] + extra
    }

    @Test func everySampleEndsAsExpectedAndTheTableSaysSo() throws {
        let binary = try #require(CLI.binary, "passerelle binary not found: run `swift build` (or set PASSERELLE_BIN)")
        let root = try TestPaths.temporaryDirectory("demo")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("demo-run")
        let started = Date()
        let result = try ProcessRunner.run(binary, Self.arguments(folder), currentDirectory: TestPaths.repositoryRoot)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 30)

        let out = result.stdout
        // The gateway is the production executable, a child process stopped with the demo.
        #expect(out.contains("/passerelle run --config \(folder.path)/passerelle.toml"), "\(out)")
        let statusLine = try #require(out.split(separator: "\n").first { $0.contains("/health, /ready, /metrics") }, "\(out)")
        let statusPort = try #require(statusLine.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) })
        #expect(try Curl.get("http://127.0.0.1:\(statusPort)/health").code != 200, "passerelle run still answers after the demo")
        #expect(out.contains("SAMPLE") && out.contains("DOCUMENT") && out.contains("KIND") && out.contains("INS") && out.contains("STATE"))
        #expect(out.contains("15 of 15 outcomes as expected"), "\(out)")
        let lines = out.split(separator: "\n").map(String.init)
        for label in Self.labels {
            let line = try #require(lines.first { $0.hasPrefix(label + " ") }, "no row for \(label) in:\n\(out)")
            #expect(line.hasSuffix("  ok"), "\(line)")
        }
        #expect(lines.filter { $0.hasSuffix("  ok") }.count == 15)
        /// The row of `label` for `target` (one row per document and target).
        func row(_ label: String, _ target: String = "dmp") -> String {
            lines.first { $0.hasPrefix(label + " ") && $0.contains("  \(target)  ") } ?? ""
        }
        #expect(row("ldl (PDF + sidecar)").contains("acknowledged") && row("ldl (PDF + sidecar)").contains("Deprecated"))
        #expect(row("ordonnance (PDF + sidecar)").contains("Deleted"))
        #expect(row("ADT^A03 (discharge)", "-").contains("stay discharged"))
        #expect(row("broken PDF (truncated)").contains("refused → error/"))
        #expect(row("ldl (PDF + sidecar)").contains("2***********989"), "masked INS")
        // MSSanté: the letter to the doctor, the prescription to the doctor and to the patient
        // (masked address), the unqualified identity to the doctor only — sent, not refused.
        let doctor = "dr.traitant@medecin.mssante.fr"
        for (label, target, recipient) in [("ldl (PDF + sidecar)", "mssante_ps", doctor), ("ordonnance (PDF + sidecar)", "mssante_ps", doctor),
                                           ("ordonnance (PDF + sidecar)", "mssante_patient", "2***********989@patient.mssante.fr"),
                                           ("unqualified identity", "mssante_ps", doctor)] {
            let line = row(label, target)
            #expect(line.contains("  sent  ") && line.contains("→ \(recipient)") && line.hasSuffix("  ok"), "\(label) → \(target): \(line)")
        }
        #expect(!lines.contains { $0.hasPrefix("unqualified identity ") && $0.contains("  dmp  ") })

        // The relay side: four messages, owner-only, three for the doctor and one for the
        // patient; the unqualified identity's carries no INS.
        let sent = folder.appendingPathComponent("mssante-sent")
        let emls = try FileManager.default.contentsOfDirectory(atPath: sent.path).filter { $0.hasSuffix(".eml") }.sorted()
        #expect(emls.count == 4, "\(emls)")
        var deliveredTo: [String: Int] = [:]
        for name in emls {
            let file = sent.appendingPathComponent(name)
            #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int == 0o600, "\(name)")
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(text.contains("Content-Type: multipart/mixed") && text.contains("IHE_XDM.zip"), "\(name)")
            for line in text.split(separator: "\r\n") where line.hasPrefix("Delivered-To: ") { deliveredTo[String(line.dropFirst(14)), default: 0] += 1 }
        }
        #expect(deliveredTo == [doctor: 3, "279035121518989@patient.mssante.fr": 1], "\(deliveredTo)")
        let vali = row("unqualified identity", "mssante_ps")
        let valiFile = try #require(vali.split(separator: " ").first { $0.hasPrefix("mssante-sent/") }.map { String($0.dropFirst(13)) })
        let valiMail = try String(contentsOf: sent.appendingPathComponent(valiFile), encoding: .utf8)
        #expect(valiMail.contains("X-MSS-INS: N") && !valiMail.contains("279035121518989"))

        // The usage report and where things are.
        #expect(out.contains("Rapport d'usage"))
        #expect(out.contains("V1-D1-SEJ"))
        for place in ["journal/journal.sqlite", "endpoint/requests/", "endpoint/stored.tsv", "report.html", "error/", "mssante-sent/"] {
            #expect(out.contains(folder.appendingPathComponent(place).path) || out.contains(place), "\(place) not named")
        }
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("report.html").path))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("journal/journal.sqlite").path))
        let mode = try FileManager.default.attributesOfItem(atPath: folder.path)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        let stored = try String(contentsOf: folder.appendingPathComponent("endpoint/stored.tsv"), encoding: .utf8)
        #expect(stored.contains("\tDeleted\t") && stored.contains("\tDeprecated\t"))

        // Never a name or a full NIR on the terminal.
        for secret in ["279035121518989", "PAT-TROIS", "DOMINIQUE"] {
            #expect(!out.contains(secret) && !result.stderr.contains(secret), "\(secret) printed")
        }
        #expect(!stored.contains("279035121518989"))

        // A second run replaces the demo folder and passes again.
        let again = try ProcessRunner.run(binary, Self.arguments(folder), currentDirectory: TestPaths.repositoryRoot)
        #expect(again.status == 0, "\(again.stdout)\n\(again.stderr)")
    }

    /// On a fresh machine the test PKI is missing: the demo makes it, then runs.
    @Test func makesTheTestPKIWhenMissing() throws {
        let binary = try #require(CLI.binary)
        let root = try TestPaths.temporaryDirectory("demo-pki")
        defer { try? FileManager.default.removeItem(at: root) }
        let pki = root.appendingPathComponent("pki")
        var arguments = Self.arguments(root.appendingPathComponent("demo-run"))
        arguments[arguments.firstIndex(of: "--pki")! + 1] = pki.path
        let result = try ProcessRunner.run(binary, arguments, currentDirectory: TestPaths.repositoryRoot)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("Making the test PKI"))
        #expect(result.stdout.contains("15 of 15 outcomes as expected"))
        #expect(FileManager.default.fileExists(atPath: pki.appendingPathComponent("server-localhost.p12").path))
    }

    @Test func refusesAFolderThatIsNotADemoFolder() throws {
        let binary = try #require(CLI.binary)
        let root = try TestPaths.temporaryDirectory("demo-foreign")
        defer { try? FileManager.default.removeItem(at: root) }
        try Data("keep me".utf8).write(to: root.appendingPathComponent("precious.txt"))
        let result = try ProcessRunner.run(binary, Self.arguments(root), currentDirectory: TestPaths.repositoryRoot)
        #expect(result.status == 1)
        #expect(result.stderr.contains("is not a demo folder"))
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("precious.txt").path))
    }

    /// A DMP endpoint that refuses every request (it checks against the wrong schema): the DMP
    /// rows say WRONG with the DMP's reason, the MSSanté rows stay ok, and the exit status is 1.
    @Test func exitsNonZeroWhenOutcomesAreWrong() throws {
        let binary = try #require(CLI.binary)
        let root = try TestPaths.temporaryDirectory("demo-wrong")
        defer { try? FileManager.default.removeItem(at: root) }
        var arguments = Self.arguments(root.appendingPathComponent("demo-run"), ["--timeout", "60"])
        arguments[arguments.firstIndex(of: "--xds-schema")! + 1] = TestPaths.shared.appendingPathComponent("conformance/xds/rs.xsd").path
        let result = try ProcessRunner.run(binary, arguments, currentDirectory: TestPaths.repositoryRoot)
        #expect(result.status == 1, "\(result.stdout)")
        #expect(result.stdout.contains("6 of 15 outcomes as expected"), "\(result.stdout)")
        #expect(result.stdout.contains("✗ ldl (PDF + sidecar) → dmp: journal state failed: DMP refusal XDSRepositoryMetadataError"))
        let wrong = result.stdout.split(separator: "\n").filter { $0.hasSuffix("  WRONG") }
        #expect(wrong.count == 9)
        #expect(!wrong.contains { $0.contains("mssante") }, "\(wrong)")
    }

    /// Without the test tools' Python (scripts/setup.sh not run), or with a Python that lacks
    /// aiosmtpd, the demo says what to run instead of failing obscurely.
    @Test func saysToRunSetupWhenTheRelayCannotStart() throws {
        let binary = try #require(CLI.binary)
        let root = try TestPaths.temporaryDirectory("demo-novenv")
        defer { try? FileManager.default.removeItem(at: root) }
        let missing = try ProcessRunner.run(binary, Self.arguments(root.appendingPathComponent("demo-run"), ["--python", root.appendingPathComponent("no/bin/python").path]),
                                            currentDirectory: TestPaths.repositoryRoot)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("run scripts/setup.sh"), "\(missing.stderr)")

        // The system Python, when it has no aiosmtpd (it is installed only into .venv).
        let system = "/usr/bin/python3"
        guard FileManager.default.isExecutableFile(atPath: system),
              try ProcessRunner.run(system, ["-c", "import aiosmtpd"]).status != 0 else { return }
        let bare = try ProcessRunner.run(binary, Self.arguments(root.appendingPathComponent("demo-run"), ["--python", system]),
                                         currentDirectory: TestPaths.repositoryRoot)
        #expect(bare.status == 1)
        #expect(bare.stderr.contains("needs aiosmtpd") && bare.stderr.contains("run scripts/setup.sh"), "\(bare.stderr)")
    }

    /// During a run: /metrics counters move (scraped with curl), /ready is 200, turns 503 when
    /// the journal folder goes away and 200 again when it is back; SIGTERM stops cleanly.
    @Test func statusEndpointDuringTheDemo() async throws {
        let binary = try #require(CLI.binary)
        let root = try TestPaths.temporaryDirectory("demo-metrics")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("demo-run")
        let demo = try Background(binary, Self.arguments(folder, ["--keep-running", "--log-level", "debug"]), directory: TestPaths.repositoryRoot, logs: root)
        defer { demo.kill() }

        let statusLine = try #require(await demo.waitFor("/health, /ready, /metrics", timeout: 60), "no status line:\n\(demo.output)")
        let port = try #require(statusLine.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) })
        let base = "http://127.0.0.1:\(port)"
        let early = try Curl.get("\(base)/metrics")
        #expect(early.code == 200)
        let sentEarly = Curl.sum(early.body, "passerelle_transmissions_sent_total")
        #expect(try Curl.get("\(base)/health").code == 200)

        _ = try #require(await demo.waitFor("Running until Ctrl-C", timeout: 120), "demo did not settle:\n\(demo.output)")
        #expect(demo.output.contains("15 of 15 outcomes as expected"), "\(demo.output)")
        // The queue gauges are sampled every second.
        try await Task.sleep(for: .milliseconds(1500))
        let late = try Curl.get("\(base)/metrics").body
        #expect(sentEarly < Curl.sum(late, "passerelle_transmissions_sent_total"), "counters did not move")
        // 9 to the DMP, 3 to the doctor's mailbox, 1 to the patient's; 10 documents (the
        // unqualified identity is one now), only the truncated PDF refused.
        #expect(Curl.sum(late, "passerelle_transmissions_sent_total") == 13, "\(late)")
        #expect(Curl.sum(late, "passerelle_documents_received_total") == 10)
        #expect(Curl.sum(late, "passerelle_documents_built_total") == 10)
        #expect(!late.contains(#"passerelle_documents_refused_total{reason="invalid_sidecar"}"#), "\(late)")
        #expect(late.contains(#"passerelle_documents_refused_total{reason="invalid_content"} 1"#))
        #expect(late.contains(#"passerelle_send_duration_seconds_count{target="dmp"} 9"#))
        #expect(late.contains(#"passerelle_send_duration_seconds_count{target="mssante_ps"} 3"#))
        #expect(late.contains(#"passerelle_send_duration_seconds_count{target="mssante_patient"} 1"#))
        #expect(late.contains(#"passerelle_queue_depth{target="dmp"} 0"#))
        #expect(late.contains(#"passerelle_queue_depth{target="mssante_ps"} 0"#))
        #expect(Curl.sum(late, "passerelle_certificate_days_left{role=\"authentication\"}") > 30)
        for secret in ["279035121518989", "PAT-TROIS", "DOMINIQUE", "2***********989"] { #expect(!late.contains(secret)) }

        var ready = try Curl.get("\(base)/ready")
        #expect(ready.code == 200, "\(ready.body)")
        for check in ["ok   journal", "ok   certificate authentication", "ok   certificate signing", "ok   dmp endpoint"] {
            #expect(ready.body.contains(check), "\(ready.body)")
        }
        let journal = folder.appendingPathComponent("journal"), moved = folder.appendingPathComponent("journal.moved")
        try FileManager.default.moveItem(at: journal, to: moved)
        ready = try Curl.get("\(base)/ready")
        #expect(ready.code == 503)
        #expect(ready.body.contains("FAIL journal"), "\(ready.body)")
        try FileManager.default.moveItem(at: moved, to: journal)
        #expect(try Curl.get("\(base)/ready").code == 200)

        let status = try #require(await demo.terminate(timeout: 30), "did not stop on SIGTERM")
        #expect(status == 0, "\(demo.output)")
        // Every log line of the run, at debug level: ids and masked INS only.
        let logs = demo.errors
        #expect(logs.contains("msg=sent") && logs.contains("ins=2***********989"), "\(logs)")
        for secret in ["279035121518989", "PAT-TROIS", "DOMINIQUE", "1979-03-28", "19790328"] { #expect(!logs.contains(secret), "\(secret) logged") }
    }
}

/// The real curl CLI.
enum Curl {
    static func get(_ url: String) throws -> (code: Int, body: String) {
        let r = try ProcessRunner.run("curl", ["-s", "--max-time", "15", "-w", "\n%{http_code}", url])
        let code = Int(r.stdout.split(separator: "\n").last ?? "") ?? -1
        let body = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().joined(separator: "\n")
        return (code, body)
    }

    /// The sum of every sample of `metric` (all label sets), 0 when absent.
    static func sum(_ exposition: String, _ metric: String) -> Double {
        exposition.split(separator: "\n").filter { !$0.hasPrefix("#") && ($0.hasPrefix(metric + "{") || $0.hasPrefix(metric + " ")) }
            .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
    }
}

/// A process left running while the test talks to it; its output goes to files.
final class Background: @unchecked Sendable {
    let process = Process()
    let stdout: URL
    let stderr: URL

    init(_ executable: String, _ arguments: [String], directory: URL, logs: URL) throws {
        stdout = logs.appendingPathComponent("stdout.txt")
        stderr = logs.appendingPathComponent("stderr.txt")
        FileManager.default.createFile(atPath: stdout.path, contents: nil)
        FileManager.default.createFile(atPath: stderr.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = try FileHandle(forWritingTo: stdout)
        process.standardError = try FileHandle(forWritingTo: stderr)
        try process.run()
    }

    var output: String { (try? String(contentsOf: stdout, encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOf: stderr, encoding: .utf8)) ?? "" }

    /// The first output line containing `text`, polling until `timeout`.
    func waitFor(_ text: String, timeout: TimeInterval) async -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = output.split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
            if !process.isRunning { return nil }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    /// SIGTERM, then the exit status (nil when it did not exit in time).
    func terminate(timeout: TimeInterval) async -> Int32? {
        process.terminate()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(100)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func kill() { if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) } }
}
