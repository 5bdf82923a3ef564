import Foundation
import Testing
import TestSupport

/// `passerelle config check` pre-flight, through the real binary: each failure the operator
/// must see before the service starts, with its exit code and a message naming the key.
@Suite("config check: pre-flight")
struct PreflightTests {
    /// A test-PKI configuration whose folders are fresh folders of `directory` (each one
    /// replaceable), written to `directory/passerelle.toml`.
    func configuration(in directory: URL, authentication: String = "org-auth", signing: String = "org-sign",
                       passphraseEnv: String? = nil, folders: [String: String] = [:], journal: String? = nil,
                       extra: String = "") throws -> String {
        var text = TestConfiguration.withTestPKI(authentication: authentication, signing: signing, passphraseEnv: passphraseEnv)
        // The journal in the test's folder (or the given [journal] section); then the extra sections.
        let journalSection = journal ?? "[journal]\nbackend = \"sqlite\"\npath = \"\(directory.appendingPathComponent("journal.sqlite").path)\"\n"
        text = text.replacingOccurrences(of: "[journal]\nbackend = \"sqlite\"\npath = \"/tmp/passerelle-test/journal.sqlite\"\n", with: journalSection)
        for section in ["[dmp]\nenabled = false\n", "[mssante]\nenabled = false\n"] where extra.contains(section.prefix(6)) {
            text = text.replacingOccurrences(of: section, with: "")
        }
        text += extra
        for name in ["inbox", "work", "error", "done"] {
            let path = folders[name] ?? directory.appendingPathComponent(name).path
            if folders[name] == nil {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            }
            text = text.replacingOccurrences(of: "\"/tmp/passerelle-test/\(name)\"", with: "\"\(path)\"")
        }
        let file = directory.appendingPathComponent("passerelle.toml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    @Test("the test PKI and writable folders on one file system: valid (exit 0); the FINESS of the subject OU differs: a warning")
    func valid() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir)])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("is valid."))
        #expect(r.stdout.contains("ok: certificates.authentication:"))
        #expect(r.stdout.contains("ok: certificates.signing:"))
        #expect(r.stdout.contains("ok: inbox, work, error and done writable"))
        // The test PKI's certificates say "OU=FINESS 100000001"; the test configuration 750803447.
        #expect(r.stdout.contains("warning: certificates.authentication: the certificate is for FINESS 100000001 (subject OU) but structure.finess is 750803447"))
    }

    @Test("wrong passphrase: exit 1, both certificates named")
    func wrongPassphrase() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try configuration(in: dir, passphraseEnv: "PREFLIGHT_TEST_PASSPHRASE")
        let r = try CLI.run(["config", "check", "--config", config], environment: ["PREFLIGHT_TEST_PASSPHRASE": "not-the-passphrase"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("is invalid."))
        #expect(r.stdout.contains("error: certificates.authentication: cannot open"))
        #expect(r.stdout.contains("error: certificates.signing: cannot open"))
        #expect(r.stdout.lowercased().contains("passphrase"))
    }

    @Test("missing PKCS#12: exit 1 naming the key and the file; the other certificate is still checked")
    func missingFile() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir, authentication: "no-such-bundle")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("error: certificates.authentication: cannot open \(TestPaths.testPKI.path)/no-such-bundle.p12"))
        #expect(r.stdout.contains("ok: certificates.signing:"))
    }

    @Test("expired certificate: exit 1, 'has expired' and the fix")
    func expired() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir, signing: "expired-sign")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("error: certificates.signing:"))
        #expect(r.stdout.contains("certificate has expired"))
        #expect(r.stdout.contains("install the renewed certificate"))
    }

    @Test("certificate of an unknown CA: exit 1, 'does not chain to a trust anchor'")
    func unknownCA() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir, authentication: "unknown-auth")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("error: certificates.authentication:"))
        #expect(r.stdout.contains("does not chain to a trust anchor"))
        #expect(r.stdout.contains("certificates.trust_anchors must hold the CA"))
    }

    @Test("missing folder: exit 1, the key and how to create it")
    func missingFolder() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("absent-inbox").path
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir, folders: ["inbox": missing])])
        #expect(r.status == 1)
        #expect(r.stdout.contains("error: folders.inbox: \(missing): No such file or directory: create it"))
    }

    @Test("folder not writable by the user running the check: exit 1")
    func notWritable() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try configuration(in: dir)
        let error = dir.appendingPathComponent("error").path
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: error)
        let r: ProcessResult
        if getuid() == 0 {
            // root writes anywhere: run the check as nobody (as ExecStartPre runs it as the service
            // user). Everything it reads must then be readable by nobody.
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: config)
            let binary = try #require(CLI.binary)
            r = try ProcessRunner.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                             binary, "config", "check", "--config", config])
            #expect(r.stdout.contains("folders.inbox: \(dir.path)/inbox is not writable by uid 65534"), "\(r.stdout)\(r.stderr)")
        } else {
            r = try CLI.run(["config", "check", "--config", config])
        }
        #expect(r.status == 1)
        #expect(r.stdout.contains("error: folders.error: \(error) is not writable by uid"), "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("Permission denied"))
    }

    @Test("inbox and work on two file systems (/dev/shm and the temporary folder): exit 1")
    func twoFileSystems() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let shm = URL(fileURLWithPath: "/dev/shm/preflight-\(UUID().uuidString)")
        var a = stat(), b = stat()
        guard stat(dir.path, &a) == 0, stat("/dev/shm", &b) == 0, a.st_dev != b.st_dev else {
            print("skipped: /dev/shm and \(dir.path) are on one file system here, no second one to test with")
            return
        }
        try FileManager.default.createDirectory(at: shm, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: shm) }
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir, folders: ["work": shm.path])])
        #expect(r.status == 1)
        #expect(r.stdout.contains("folders.inbox, folders.work and folders.error are on different file systems"))
        #expect(r.stdout.contains("work \(shm.path)"))
    }

    // MARK: - Journal

    /// An SQLite journal whose schema_migrations holds `version` (made with the sqlite3 tool).
    func journalFile(in dir: URL, version: Int) throws -> URL {
        let file = dir.appendingPathComponent("journal.sqlite")
        let r = try ProcessRunner.run("/usr/bin/sqlite3", [file.path, """
            CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
            INSERT INTO schema_migrations VALUES (\(version), 0);
            """])
        try #require(r.status == 0, "\(r.stderr)")
        return file
    }

    @Test("no journal yet: a note (created at start), exit 0; a journal the service made: ok, its current version")
    func journalNewAndCurrent() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try configuration(in: dir)
        let r = try CLI.run(["config", "check", "--config", config])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("note: journal.path: sqlite \(dir.path)/journal.sqlite: no journal yet: created (schema version"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("journal.sqlite").path), "config check creates nothing")
        // The service's own journal: `passerelle status` opens (creates and migrates) it.
        _ = try CLI.run(["status", "--config", config])
        try #require(FileManager.default.fileExists(atPath: dir.appendingPathComponent("journal.sqlite").path))
        let again = try CLI.run(["config", "check", "--config", config])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(again.stdout.contains("ok: journal.path: sqlite \(dir.path)/journal.sqlite: opens, schema version"), "\(again.stdout)")
        #expect(again.stdout.contains("(current)"))
    }

    @Test("an older journal schema: a note (migrated at start), exit 0; a newer one: an error, exit 1")
    func journalSchemaVersions() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try journalFile(in: dir, version: 1)
        let config = try configuration(in: dir)
        let older = try CLI.run(["config", "check", "--config", config])
        #expect(older.status == 0, "\(older.stdout)\(older.stderr)")
        #expect(older.stdout.contains("note: journal.path:") && older.stdout.contains("schema version 1, will be migrated to"), "\(older.stdout)")
        try FileManager.default.removeItem(at: dir.appendingPathComponent("journal.sqlite"))
        _ = try journalFile(in: dir, version: 9999)
        let newer = try CLI.run(["config", "check", "--config", config])
        #expect(newer.status == 1, "\(newer.stdout)\(newer.stderr)")
        #expect(newer.stdout.contains("error: journal.path:") && newer.stdout.contains("schema version 9999 is newer than this passerelle's"),
                "\(newer.stdout)")
        #expect(newer.stdout.contains("restore a backup made with this one"))
    }

    @Test("the journal's folder is missing: exit 1 naming journal.path and how to create it")
    func journalFolderMissing() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("no-such-folder")
        let config = try configuration(in: dir, journal: "[journal]\nbackend = \"sqlite\"\npath = \"\(missing.path)/journal.sqlite\"\n")
        let r = try CLI.run(["config", "check", "--config", config])
        #expect(r.status == 1)
        #expect(r.stdout.contains("error: journal.path: \(missing.path) (the journal's folder): No such file or directory"), "\(r.stdout)")
        #expect(r.stdout.contains("install -d -o passerelle -m 0700 \(missing.path)"))
    }

    @Test("PostgreSQL that does not answer: exit 1 naming journal.url; the test cluster: a note (no tables yet), exit 0")
    func journalPostgreSQL() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Port 1 on loopback: nothing listens there.
        let down = try configuration(in: dir, journal: "[journal]\nbackend = \"postgresql\"\nurl = \"postgresql://passerelle@127.0.0.1:1/passerelle\"\n")
        let r = try CLI.run(["config", "check", "--config", down])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("error: journal.url: cannot open the journal:"), "\(r.stdout)")
        #expect(r.stdout.contains("check that PostgreSQL runs and answers at journal.url"))

        guard PostgresTestServer.binaries != nil else {
            print("skipped the PostgreSQL success case: no PostgreSQL server binaries installed")
            return
        }
        let url = try PostgresTestServer.createDatabase(prefix: "preflight")
        let up = try configuration(in: dir, journal: """
            [journal]
            backend = "postgresql"
            url = "\(url)"
            password_file = "\(try PostgresTestServer.shared().passwordFile.path)"
            blob_cache = "\(dir.appendingPathComponent("blob-cache").path)"
            connections = 2

            """)
        let ok = try CLI.run(["config", "check", "--config", up])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("note: journal.url: postgresql") && ok.stdout.contains("no journal tables yet"), "\(ok.stdout)")
        #expect(ok.stdout.contains(", up to 2 sessions"), "\(ok.stdout)")  // the summary says how many the node may open
    }

    // MARK: - JSON

    @Test("--json: snake_case keys, each finding with check, severity, key, message and fix; exit code as the table's")
    func json() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["config", "check", "--json", "--config", try configuration(in: dir, signing: "expired-sign")])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        #expect(Set(object.keys) == ["file", "valid", "errors", "warnings", "findings"])
        #expect(object["valid"] as? Bool == false)
        let findings = try #require(object["findings"] as? [[String: Any]])
        for finding in findings { #expect(Set(finding.keys) == ["check", "severity", "key", "message", "fix"], "\(finding)") }
        let expired = try #require(findings.first { $0["key"] as? String == "certificates.signing" && $0["severity"] as? String == "error" })
        #expect((expired["message"] as? String)?.contains("certificate has expired") == true)
        #expect(expired["fix"] as? String == "install the renewed certificate")
        #expect(findings.contains { $0["check"] as? String == "journal" && $0["severity"] as? String == "note" })
        #expect(object["errors"] as? Int == findings.filter { $0["severity"] as? String == "error" }.count)

        let broken = dir.appendingPathComponent("broken.toml")
        try "[structure]\nfiness = 12\n".write(to: broken, atomically: true, encoding: .utf8)
        let invalid = try CLI.run(["config", "check", "--json", "--config", broken.path])
        #expect(invalid.status == 1)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(invalid.stdout.utf8)) as? [String: Any], "\(invalid.stdout)")
        #expect(parsed["valid"] as? Bool == false && (parsed["findings"] as? [Any])?.isEmpty == false)
    }

    // MARK: - --connect

    /// `openssl s_server` on a free loopback port with `certificate` of the test PKI, demanding a
    /// client certificate of the test CA: a DMP-style TLS endpoint (any GET gets a status page).
    final class TLSServer: @unchecked Sendable {
        let process = Process()
        let port: Int

        init(certificate: String) throws {
            let pki = TestPaths.testPKI
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = ["s_server", "-accept", "127.0.0.1:0", "-cert", pki.appendingPathComponent("\(certificate)-chain.pem").path,
                                 "-key", pki.appendingPathComponent("\(certificate).key.pem").path, "-Verify", "2",
                                 "-CAfile", pki.appendingPathComponent("ca.pem").path, "-www"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            process.standardInput = Pipe()
            try process.run()
            var text = ""
            // "ACCEPT 127.0.0.1:PORT" follows a line or two about its parameters.
            while !(text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().contains { $0.hasPrefix("ACCEPT ") }) {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("ACCEPT ") }),
                  let port = Int(line.split(separator: ":").last ?? "") else {
                process.terminate()
                throw TestServerError("openssl s_server did not start: \(text)")
            }
            self.port = port
        }

        // s_server ignores SIGTERM while it waits on its socket.
        func stop() { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    static let vihf = """
        [vihf]
        identifiant_structure = "1750803447"
        secteur_activite = "SA01"
        lps_nom = "Passerelle"
        lps_version = "1.0.0"
        lps_homologation_dmp = "HOMOLOGATION-TEST-1"
        role = "10^1.2.250.1.71.1.2.7^Médecin"

        """

    func dmpSection(port: Int) -> String {
        "[dmp]\nenabled = true\nendpoint = \"https://localhost:\(port)/repository\"\ntimeout_seconds = 8\n\n" + Self.vihf
    }

    @Test("--connect, DMP: mutual TLS handshake with the test endpoint ok (exit 0); a server of an unknown CA: exit 1 naming dmp.endpoint and dmp.ca")
    func connectDMP() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try TLSServer(certificate: "server-localhost")
        defer { good.stop() }
        let ok = try CLI.run(["config", "check", "--connect", "--config", try configuration(in: dir, extra: dmpSection(port: good.port))])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("ok: dmp.endpoint: TLS handshake with localhost:\(good.port) done (client certificate sent"), "\(ok.stdout)")
        // Without --connect nothing is tried.
        let quiet = try CLI.run(["config", "check", "--config", try configuration(in: dir, extra: dmpSection(port: good.port))])
        #expect(quiet.status == 0 && !quiet.stdout.contains("dmp.endpoint: TLS handshake"), "\(quiet.stdout)")

        let wrong = try TLSServer(certificate: "unknown-server")
        defer { wrong.stop() }
        let r = try CLI.run(["config", "check", "--connect", "--config", try configuration(in: dir, extra: dmpSection(port: wrong.port))])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("error: dmp.endpoint: TLS handshake with localhost:\(wrong.port) failed"), "\(r.stdout)")
        #expect(r.stdout.contains("dmp.ca must hold the CA that issued the DMP server's certificate"))
    }

    @Test("--connect, SMTP relay: STARTTLS handshake with the test relay ok (exit 0); nothing listening: exit 1 naming mssante.smtp_host")
    func connectSMTP() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let smtp = try TestSMTPServer(mode: "starttls")
        defer { smtp.stop() }
        let section = TestConfiguration.mssanteSection(smtpPort: smtp.port, imapPort: 1, mailbox: "passerelle@hopital.mssante.fr")
        let ok = try CLI.run(["config", "check", "--connect", "--config", try configuration(in: dir, extra: section)])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("ok: mssante.smtp_host: STARTTLS handshake with 127.0.0.1:\(smtp.port) done"), "\(ok.stdout)")
        #expect(ok.stdout.contains("TLSv1.2"))
        #expect(try smtp.received().isEmpty, "nothing was sent")

        let closed = try RunStatusTests.freePort()
        let down = TestConfiguration.mssanteSection(smtpPort: UInt16(closed), imapPort: 1, mailbox: "passerelle@hopital.mssante.fr")
        let r = try CLI.run(["config", "check", "--connect", "--config", try configuration(in: dir, extra: down)])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("error: mssante.smtp_host: STARTTLS handshake with 127.0.0.1:\(closed) failed"), "\(r.stdout)")
        #expect(r.stdout.contains("that the relay is reachable from this host"))

        let wrongCA = try TestSMTPServer(mode: "starttls", serverCertificate: "unknown-server")
        defer { wrongCA.stop() }
        let untrusted = TestConfiguration.mssanteSection(smtpPort: wrongCA.port, imapPort: 1, mailbox: "passerelle@hopital.mssante.fr")
        let u = try CLI.run(["config", "check", "--connect", "--config", try configuration(in: dir, extra: untrusted)])
        #expect(u.status == 1, "\(u.stdout)\(u.stderr)")
        #expect(u.stdout.contains("error: mssante.smtp_host: STARTTLS handshake with 127.0.0.1:\(wrongCA.port) failed"), "\(u.stdout)")
    }

    @Test("--connect with --file-only is refused (exit 64)")
    func connectNeedsCertificates() throws {
        let r = try CLI.run(["config", "check", "--connect", "--file-only", "--config", CLITests.example])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--connect needs the certificates"))
    }
}
