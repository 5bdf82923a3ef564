import Foundation
import Testing
import TestSupport

/// The read-only console (`[console] enabled`) of a real `passerelle run`, on the status port:
/// the overview page and its JSON against the demo's journal (known contents: the demo's table
/// checks each outcome), its security headers, and the configurations that must not serve it.
@Suite("passerelle run: console", .serialized)
struct ConsoleTests {
    /// Status code, lower-cased header names → values, body (the real curl, headers included).
    static func fetch(_ url: String) throws -> (code: Int, headers: [String: String], body: String) {
        parse(try ProcessRunner.run("curl", ["-s", "-i", "--max-time", "15", url]).stdout)
    }

    /// What `curl -i` printed, as status code, headers and body.
    static func parse(_ output: String) -> (code: Int, headers: [String: String], body: String) {
        guard let split = output.range(of: "\r\n\r\n") else { return (-1, [:], output) }
        let head = output[..<split.lowerBound].split(separator: "\r\n")
        let code = head.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? -1
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (code, headers, String(output[split.upperBound...]))
    }

    /// The demo (`--keep-running`) enables the console and prints its address; once the demo has
    /// settled, the overview shows what the journal holds: 9 DMP transmissions, 3 to the
    /// doctor's mailbox, 1 to the patient's, nothing waiting, the /ready checks, the two
    /// certificates; never a NIR, a name or even the masked INS.
    @Test func overviewOfTheDemoJournal() async throws {
        let binary = try #require(CLI.binary)
        let root = try TestPaths.temporaryDirectory("console-demo")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("demo-run")
        let demo = try Background(binary, DemoTests.arguments(folder, ["--keep-running"]), directory: TestPaths.repositoryRoot, logs: root)
        defer { demo.kill() }
        let line = try #require(await demo.waitFor("/console/", timeout: 60), "no console line:\n\(demo.output)")
        let url = try #require(line.split(separator: " ").first { $0.hasPrefix("http://127.0.0.1:") && $0.hasSuffix("/console/") }.map(String.init),
                               "\(line)")
        _ = try #require(await demo.waitFor("Running until Ctrl-C", timeout: 120), "demo did not settle:\n\(demo.output)")
        #expect(demo.output.contains("15 of 15 outcomes as expected"), "\(demo.output)")

        // The JSON: counts per (target, state) as the journal holds them.
        let api = try Self.fetch(url + "api/overview")
        #expect(api.code == 200)
        #expect(api.headers["content-type"] == "application/json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(api.body.utf8)) as? [String: Any], "\(api.body)")
        let counts = try #require(json["counts"] as? [[String: Any]])
        func count(_ target: String, _ state: String? = nil) -> Int {
            counts.filter { $0["target"] as? String == target && (state == nil || $0["state"] as? String == state) }
                .reduce(0) { $0 + ($1["count"] as? Int ?? 0) }
        }
        #expect(count("dmp") == 9, "\(api.body)")
        #expect(count("dmp", "failed") == 0 && count("dmp", "queued") == 0, "\(api.body)")
        #expect(count("mssante_ps", "sent") == 3, "\(api.body)")
        #expect(count("mssante_patient", "sent") == 1, "\(api.body)")
        let oldest = try #require(json["oldest_waiting"] as? [[String: Any]])
        #expect(Set(oldest.compactMap { $0["target"] as? String }) == ["dmp", "mssante_ps", "mssante_patient"], "\(api.body)")
        #expect(oldest.allSatisfy { $0["since"] == nil }, "nothing waits once the demo has settled: \(api.body)")
        let readiness = try #require(json["readiness"] as? [String: Any])
        #expect(readiness["ready"] as? Bool == true, "\(api.body)")
        let checks = try #require(readiness["checks"] as? [[String: Any]]).compactMap { $0["name"] as? String }
        #expect(checks.contains("journal") && checks.contains("certificate signing") && checks.contains("dmp endpoint"), "\(checks)")
        let certificates = try #require(json["certificates"] as? [[String: Any]])
        #expect(Set(certificates.compactMap { $0["role"] as? String }) == ["authentication", "signing"], "\(api.body)")
        #expect(certificates.allSatisfy { ($0["days_left"] as? Int ?? 0) > 30 && $0["state"] as? String == "OK" }, "\(api.body)")

        // The page: the same numbers in the cells, French labels, the security headers.
        let page = try Self.fetch(url)
        #expect(page.code == 200)
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        let csp = try #require(page.headers["content-security-policy"], "\(page.headers)")
        #expect(csp.hasPrefix("default-src 'self'") && !csp.contains("unsafe"), "\(csp)")
        #expect(page.headers["x-content-type-options"] == "nosniff")
        #expect(page.headers["cache-control"] == "no-store")
        #expect(!page.body.contains("<script") && !page.body.contains("style="), "no inline script or style")
        #expect(page.body.contains("<h2>Vue d’ensemble</h2>") && page.body.contains("Transmissions par état et destination"))
        #expect(page.body.contains("<th scope=\"row\">Accusé reçu</th>") && page.body.contains("MSSanté (patient)"))
        for (target, state) in [("dmp", "acknowledged"), ("mssante_ps", "sent"), ("mssante_patient", "sent"), ("dmp", "failed")] {
            #expect(page.body.contains("data-target=\"\(target)\" data-state=\"\(state)\"") , "\(target) \(state)")
            let cell = "data-target=\"\(target)\" data-state=\"\(state)\""
            let after = page.body.range(of: cell).map { page.body[$0.upperBound...] } ?? ""
            let value = after.drop { $0 != ">" }.dropFirst().prefix { $0 != "<" }
            #expect(Int(value) == count(target, state), "\(target) \(state): \(value)")
        }
        #expect(page.body.contains("id=\"ready\" class=\"ok\">Prête"))
        #expect(try Self.fetch(url.replacingOccurrences(of: "/console/", with: "/console/static/console.css")).code == 200)
        for secret in ["279035121518989", "PAT-TROIS", "DOMINIQUE", "2***********989"] {
            #expect(!page.body.contains(secret) && !api.body.contains(secret), "\(secret) shown")
        }
        // The other pages of the same run (ServiceMonitor wires the journal and the report in).
        let queue = try Self.fetch(url + "file?etat=acknowledged&destination=dmp")
        #expect(queue.code == 200 && queue.body.contains("<h2>File d’attente</h2>"))
        #expect(queue.body.components(separatedBy: "<tr data-id=").count - 1 == count("dmp", "acknowledged"), "\(queue.body)")
        let href = try #require(queue.body.components(separatedBy: "href=\"/console/document/").dropFirst().first?.prefix { $0 != "\"" },
                                "\(queue.body)")
        let document = try Self.fetch(url + "document/" + href)
        #expect(document.code == 200 && document.body.contains("INS (masqué)") && document.body.contains("Accusé reçu"), "\(document.body)")
        #expect(try Self.fetch(url + "document/1.2.250.1.999.404").code == 404)
        #expect(try Self.fetch(url + "file?etat=nope").code == 400)
        let report = try Self.fetch(url + "rapport")
        #expect(report.code == 200 && report.body.contains("Rapport d&#39;usage du numérique"), "\(report.body)")
        let month = try #require(report.body.components(separatedBy: "name=\"mois\" value=\"").dropFirst().first?.prefix(7))
        let csv = try Self.fetch(url + "rapport/telechargement?mois=\(month)&format=csv")
        #expect(csv.code == 200 && csv.headers["content-disposition"] == "attachment; filename=\"rapport-\(month).csv\"", "\(csv.headers)")
        #expect(csv.body.hasPrefix("\u{FEFF}Programme;Code;Indicateur"), "\(csv.body.prefix(200))")
        for secret in ["279035121518989", "PAT-TROIS", "DOMINIQUE"] {
            #expect(![queue.body, document.body, report.body, csv.body].contains { $0.contains(secret) }, "\(secret) shown")
        }
        #expect(!queue.body.contains("2***********989"), "the queue shows no INS, even masked")

        // Read-only: anything but GET and HEAD is refused.
        let post = try ProcessRunner.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--max-time", "15", url])
        #expect(post.stdout == "405")
        #expect(await demo.terminate(timeout: 30) == 0, "\(demo.output)")
    }

    /// The system Chromium (Debian's package) and Playwright in .venv (scripts/requirements-test.txt).
    static let chromium = "/usr/bin/chromium"
    static var browserAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: chromium)
            && (try? ProcessRunner.run(TestPaths.repositoryRoot.appendingPathComponent(".venv/bin/python").path, ["-c", "import playwright"]))?.status == 0
    }

    /// In a real browser (Chromium driven by Playwright): the overview of the demo's journal
    /// loads under its Content-Security-Policy with nothing refused or missing (no console
    /// message, no failed request), the stylesheet applies, and the DMP's "Accusé reçu" cell
    /// reads 9, as the journal holds. Skipped, and said so, without Chromium (`apt-get install
    /// chromium`) or Playwright (scripts/setup.sh).
    @Test(.enabled(if: browserAvailable, "needs /usr/bin/chromium and playwright in .venv"))
    func aBrowserReadsTheOverview() async throws {
        let binary = try #require(CLI.binary)
        let root = try TestPaths.temporaryDirectory("console-browser")
        defer { try? FileManager.default.removeItem(at: root) }
        let demo = try Background(binary, DemoTests.arguments(root.appendingPathComponent("demo-run"), ["--keep-running"]),
                                  directory: TestPaths.repositoryRoot, logs: root)
        defer { demo.kill() }
        let line = try #require(await demo.waitFor("/console/", timeout: 60), "no console line:\n\(demo.output)")
        let url = try #require(line.split(separator: " ").first { $0.hasSuffix("/console/") }.map(String.init))
        _ = try #require(await demo.waitFor("Running until Ctrl-C", timeout: 120), "demo did not settle:\n\(demo.output)")

        let screenshot = root.appendingPathComponent("overview.png")
        let run = try ProcessRunner.run(TestPaths.repositoryRoot.appendingPathComponent(".venv/bin/python").path,
                                        [TestPaths.repositoryRoot.appendingPathComponent("Tests/Browser/console_overview.py").path, url,
                                         "--screenshot", screenshot.path, "--chromium", Self.chromium])
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        let json = try #require(run.stdout.split(separator: "\n").last { $0.hasPrefix("{") }, "\(run.stdout)\n\(run.stderr)")
        let page = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(page["heading"] as? String == "Vue d’ensemble")
        let cells = try #require(page["cells"] as? [String: Int])
        #expect(cells["dmp/acknowledged"] == 9, "\(cells)")
        #expect(cells["mssante_patient/sent"] == 1, "\(cells)")
        #expect(page["ready"] as? String == "Prête")
        #expect(page["header_background"] as? String == "rgb(0, 0, 145)", "the stylesheet did not apply: \(json)")
        #expect((page["console"] as? [String])?.isEmpty == true, "\(json)")
        #expect((page["failed_requests"] as? [String])?.isEmpty == true, "\(json)")
        #expect(FileManager.default.fileExists(atPath: screenshot.path))
        _ = await demo.terminate(timeout: 30)
    }

    /// A DMP endpoint that refuses every request (the demo's endpoint checking against the wrong
    /// schema): the overview counts the failed DMP transmissions and shows the DMP's last error,
    /// its text as the journal holds it (no patient data in a registry error).
    @Test func failedTransmissionsAndTheLastError() async throws {
        let root = try TestPaths.temporaryDirectory("console-failed")
        defer { try? FileManager.default.removeItem(at: root) }
        let (demo, url) = try await ConsoleAuthTests.demoRefusedByTheDMP(root.appendingPathComponent("demo-run"), logs: root)
        defer { demo.kill() }
        #expect(demo.output.contains("6 of 15 outcomes as expected"), "\(demo.output)")

        let api = try Self.fetch(url + "api/overview")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(api.body.utf8)) as? [String: Any], "\(api.body)")
        let counts = try #require(json["counts"] as? [[String: Any]])
        let failed = counts.filter { $0["target"] as? String == "dmp" && $0["state"] as? String == "failed" }.compactMap { $0["count"] as? Int }.first
        #expect(failed == 9, "\(api.body)")
        let errors = try #require(json["last_errors"] as? [[String: Any]])
        let dmp = try #require(errors.first { $0["target"] as? String == "dmp" }, "\(api.body)")
        let message = try #require(dmp["message"] as? String)
        #expect(message.contains("XDSRepositoryMetadataError"), "\(message)")
        #expect(errors.allSatisfy { $0["target"] as? String == "dmp" }, "the relay accepted every mail: \(api.body)")

        let page = try Self.fetch(url)
        #expect(page.body.contains("data-target=\"dmp\" data-state=\"failed\" class=\"bad\">9<"), "\(page.body)")
        #expect(page.body.contains("<tr data-target=\"dmp\"><td>DMP</td>") && page.body.contains("XDSRepositoryMetadataError"))
        #expect(page.body.contains("\(dmp["transmission_id"] as? Int ?? -1)") && page.body.contains(dmp["document_id"] as? String ?? "?"))
        for secret in ["279035121518989", "PAT-TROIS", "DOMINIQUE", "2***********989"] {
            #expect(!page.body.contains(secret) && !api.body.contains(secret), "\(secret) shown")
        }
        _ = await demo.terminate(timeout: 30)
    }

    /// Without `[console] enabled` the status port serves no console; a console address off
    /// loopback is refused at start, saying why and what comes next.
    @Test func notServedWhenDisabledAndLoopbackOnly() async throws {
        let root = try TestPaths.temporaryDirectory("console-off")
        defer { try? FileManager.default.removeItem(at: root) }
        let (run, base) = try RunStatusTests().start(signing: "org-sign", in: root)
        defer { run.kill() }
        try await RunStatusTests().waitForHealth(base, run)
        #expect(try Self.fetch("\(base)/console/").code == 404)
        #expect(try Self.fetch("\(base)/console/api/overview").code == 404)
        #expect(await run.terminate(timeout: 30) == 0)

        let config = root.appendingPathComponent("passerelle.toml")
        let text = try String(contentsOf: config, encoding: .utf8) + "\n[console]\nenabled = true\naddress = \"0.0.0.0\"\n"
        try text.write(to: config, atomically: true, encoding: .utf8)
        let binary = try #require(CLI.binary)
        let refused = try ProcessRunner.run(binary, ["run", "--config", config.path], currentDirectory: TestPaths.repositoryRoot)
        #expect(refused.status == 1)
        let output = refused.stdout + refused.stderr
        #expect(output.contains("console.address") && output.contains("loopback only") && output.contains("TLS and a login"), "\(output)")

        // And without [http] metrics_port there is no port to serve it on: said at start too.
        let noPort = text.replacingOccurrences(of: "address = \"0.0.0.0\"\n", with: "")
            .replacingOccurrences(of: #"\[http\]\nmetrics_port = \d+\n"#, with: "", options: .regularExpression)
        try noPort.write(to: config, atomically: true, encoding: .utf8)
        let missing = try ProcessRunner.run(binary, ["run", "--config", config.path], currentDirectory: TestPaths.repositoryRoot)
        #expect(missing.status == 1)
        #expect((missing.stdout + missing.stderr).contains("needs [http] metrics_port"), "\(missing.stdout)\(missing.stderr)")
    }
}
