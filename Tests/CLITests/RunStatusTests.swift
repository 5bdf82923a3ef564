import Foundation
import Testing
import TestSupport

/// `passerelle run` with `[http] metrics_port`: the status endpoint follows the configuration's
/// certificates, and the daily certificate line is logged at start.
@Suite("passerelle run: status endpoint", .serialized)
struct RunStatusTests {
    /// A free loopback port (bound and released by Python: the test target has no socket API).
    static func freePort() throws -> Int {
        let r = try ProcessRunner.run("python3", ["-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"])
        return try #require(Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    func start(signing: String, in root: URL) throws -> (Background, String) {
        let port = try Self.freePort()
        var text = TestConfiguration.withTestPKI(signing: signing)
        text = text.replacingOccurrences(of: "/tmp/passerelle-test/journal.sqlite", with: root.appendingPathComponent("journal/journal.sqlite").path)
            .replacingOccurrences(of: "/tmp/passerelle-test", with: root.path)
        text += "\n[http]\nmetrics_port = \(port)\n"
        let config = root.appendingPathComponent("passerelle.toml")
        try text.write(to: config, atomically: true, encoding: .utf8)
        let binary = try #require(CLI.binary)
        let run = try Background(binary, ["run", "--config", config.path, "--log-level", "info"], directory: TestPaths.repositoryRoot, logs: root)
        return (run, "http://127.0.0.1:\(port)")
    }

    func waitForHealth(_ base: String, _ run: Background) async throws {
        for _ in 0..<100 {
            if (try? Curl.get("\(base)/health"))?.code == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("no /health: \(run.errors)")
    }

    @Test func readyWithValidCertificatesAndTheExpiryLineIsLogged() async throws {
        let root = try TestPaths.temporaryDirectory("run-status")
        defer { try? FileManager.default.removeItem(at: root) }
        let (run, base) = try start(signing: "org-sign", in: root)
        defer { run.kill() }
        try await waitForHealth(base, run)
        let ready = try Curl.get("\(base)/ready")
        #expect(ready.code == 200, "\(ready.body)")
        #expect(ready.body.contains("ok   journal") && ready.body.contains("ok   certificate signing"))
        let metrics = try Curl.get("\(base)/metrics").body
        #expect(Curl.sum(metrics, "passerelle_certificate_days_left{role=\"signing\"}") > 30, "\(metrics)")
        #expect(run.errors.contains("msg=\"certificate expiry\"") && run.errors.contains("role=signing"), "\(run.errors)")
        #expect(await run.terminate(timeout: 30) == 0)

        // The run is in the journal (issue 22, availability): started, then stopped on SIGTERM,
        // and the month's report counts it.
        let journal = root.appendingPathComponent("journal/journal.sqlite").path
        let rows = try ProcessRunner.run("python3", ["-c", """
            import sqlite3, sys
            for r in sqlite3.connect(sys.argv[1]).execute("SELECT started_at, last_seen_at, stopped_at FROM service_runs"):
                print(r[0] <= r[1] and r[2] is not None and r[2] >= r[0])
            """, journal])
        #expect(rows.stdout == "True\n", "\(rows.stdout) \(rows.stderr)")
        // Yesterday to tomorrow in Europe/Paris (the report's days), whatever the hour: UTC days
        // made this a two-day period between 23:00 and 24:00 UTC (00:00–01:00 in Paris).
        let paris = ISO8601DateFormatter()
        paris.timeZone = TimeZone(identifier: "Europe/Paris")
        paris.formatOptions = [.withFullDate]
        let day = { (offset: Double) in paris.string(from: Date().addingTimeInterval(offset * 86_400)) }
        let report = try CLI.run(["report", "--journal", journal, "--from", day(-1), "--to", day(1), "--format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        let availability = try #require(object["availability"] as? [String: Any], "\(report.stdout) \(report.stderr)")
        #expect(availability["runs"] as? Int == 1)
        // Counted over whole days: today's run shows from tomorrow (0 s of yesterday here).
        #expect(availability["running_rate"] as? Double == 0 && (82_800...90_000).contains(availability["period_seconds"] as? Int ?? 0))   // one local day (23–25 h)
    }

    @Test func anExpiredSigningCertificateMakesReady503() async throws {
        let root = try TestPaths.temporaryDirectory("run-expired")
        defer { try? FileManager.default.removeItem(at: root) }
        let (run, base) = try start(signing: "expired-sign", in: root)
        defer { run.kill() }
        try await waitForHealth(base, run)
        let ready = try Curl.get("\(base)/ready")
        #expect(ready.code == 503)
        #expect(ready.body.contains("FAIL certificate signing: certificate has expired"), "\(ready.body)")
        #expect(ready.body.contains("ok   certificate authentication"))
        #expect(run.errors.contains("level=error") && run.errors.contains("certificate expiry"), "\(run.errors)")
        #expect(await run.terminate(timeout: 30) == 0)
    }
    /// With the DMP enabled, a signing certificate that cannot sign stops `passerelle run`
    /// (exit 1) with the file, the dates and what to do, before anything is queued.
    @Test(arguments: ["expired-sign", "notyet-sign"])
    func runRefusesAnUnusableSigningCertificate(_ name: String) throws {
        let root = try TestPaths.temporaryDirectory("run-signing")
        defer { try? FileManager.default.removeItem(at: root) }
        var text = TestConfiguration.withTestPKI(signing: name)
            .replacingOccurrences(of: "/tmp/passerelle-test/journal.sqlite", with: root.appendingPathComponent("journal/journal.sqlite").path)
            .replacingOccurrences(of: "/tmp/passerelle-test", with: root.path)
            .replacingOccurrences(of: "[dmp]\nenabled = false", with: "[dmp]\nenabled = true\nendpoint = \"https://127.0.0.1:9/dmp\"")
        text += """

            [vihf]
            identifiant_structure = "1750803447"
            secteur_activite = "SA01"
            lps_nom = "Passerelle"
            lps_version = "1.0.0"
            lps_homologation_dmp = "HOMOLOGATION-TEST-1"
            role = "10^1.2.250.1.71.1.2.7^Médecin"

            """
        let config = root.appendingPathComponent("passerelle.toml")
        try text.write(to: config, atomically: true, encoding: .utf8)
        let binary = try #require(CLI.binary)
        let result = try ProcessRunner.run(binary, ["run", "--config", config.path], currentDirectory: TestPaths.repositoryRoot)
        #expect(result.status == 1, "\(result.stdout) \(result.stderr)")
        let output = result.stdout + result.stderr
        #expect(output.contains("\(name).p12") && output.contains("valid from") && output.contains("Install a valid signing certificate"), "\(output)")
    }
}
