import Foundation
import Testing
import TestSupport
@testable import PasserelleCore

@Suite("Configuration file")
struct ConfigurationTests {
    static let examplePath = TestPaths.repositoryRoot.appendingPathComponent("docs/passerelle.example.toml").path

    /// A minimal valid file (DMP and MSSanté disabled).
    static let minimal = """
    [structure]
    finess = "750803447"
    name = "H"
    oid = "1.2.250.1.999.1"

    [certificates]
    authentication = "a.p12"
    signing = "s.p12"
    passphrase_env = "P12_PASS"
    trust_anchors = "ca.pem"

    [folders]
    inbox = "in"
    work = "work"
    error = "err"
    done = "done"

    [journal]
    path = "journal.sqlite"
    """

    static func errors(_ text: String, file: String = "/etc/passerelle/test.toml") -> [ConfigurationError] {
        do {
            _ = try PasserelleConfiguration.parse(text, file: file)
            return []
        } catch {
            return error.problems
        }
    }

    /// Replaces the first line that starts with `prefix` by `replacement`.
    static func edit(_ prefix: String, _ replacement: String, in text: String = minimal) -> String {
        var lines = text.components(separatedBy: "\n")
        let i = lines.firstIndex { $0.hasPrefix(prefix) }!
        lines[i] = replacement
        return lines.joined(separator: "\n")
    }

    @Test("the documented example loads, with relative paths resolved against its folder")
    func example() throws {
        let c = try PasserelleConfiguration.load(from: Self.examplePath)
        let docs = TestPaths.repositoryRoot.appendingPathComponent("docs").standardizedFileURL.path
        #expect(c.structure.finess.value == "750803447")
        #expect(c.structure.oid == "1.2.250.1.999.1")
        #expect(c.certificates.authentication == docs + "/certs/org-auth.p12")
        #expect(c.certificates.passphrase == .file(docs + "/certs/passphrase.txt"))
        #expect(c.certificates.expiryWarningDays == 30)
        #expect(c.dmp.enabled && c.dmp.endpoint?.scheme == "https")
        #expect(c.dmp.ca == c.certificates.trustAnchors)
        #expect(c.mssante.smtpTLS == .starttls && c.mssante.smtpPort == 587)
        #expect(c.mssante.mailbox == "passerelle@hopital-demo.mssante.fr")
        #expect(c.folders.inbox == "/var/lib/passerelle/inbox")
        #expect(c.journal == .sqlite(path: "/var/lib/passerelle/journal/journal.sqlite"))
        #expect(c.cda.maxPDFBytes == 20_971_520 && c.cda.schema == nil)
        #expect(c.logging.level == .info && c.logging.format == .logfmt)
        #expect(c.http.metricsPort == 9464)
    }

    @Test("a minimal file gets the defaults")
    func minimal() throws {
        let c = try PasserelleConfiguration.parse(Self.minimal, file: "/etc/passerelle/p.toml")
        #expect(!c.dmp.enabled && !c.mssante.enabled)
        #expect(c.folders.work == "/etc/passerelle/work")
        #expect(c.journal == .sqlite(path: "/etc/passerelle/journal.sqlite"))
        #expect(c.certificates.passphrase == .environment("P12_PASS"))
        #expect(c.http.metricsPort == nil)
    }

    @Test("[folders] intake limits: defaults, values and ranges")
    func folderLimits() throws {
        let defaults = try PasserelleConfiguration.parse(Self.minimal, file: "/etc/passerelle/p.toml").folders
        #expect(defaults.maxSidecarBytes == 1_048_576 && defaults.maxProcessingAttempts == 3)
        let example = try PasserelleConfiguration.load(from: Self.examplePath).folders
        #expect(example.maxSidecarBytes == 1_048_576 && example.maxProcessingAttempts == 3)
        let set = Self.edit("done = ", "done = \"done\"\nmax_sidecar_bytes = 65536\nmax_processing_attempts = 5")
        let c = try PasserelleConfiguration.parse(set, file: "/etc/passerelle/p.toml").folders
        #expect(c.maxSidecarBytes == 65536 && c.maxProcessingAttempts == 5)
        #expect(!Self.errors(Self.edit("done = ", "done = \"done\"\nmax_processing_attempts = 0")).isEmpty)
        #expect(!Self.errors(Self.edit("done = ", "done = \"done\"\nmax_sidecar_bytes = 10")).isEmpty)
    }

    @Test("[folders] intake_concurrency: default 4, the example's value, range 1–64")
    func intakeConcurrency() throws {
        #expect(try PasserelleConfiguration.parse(Self.minimal, file: "/etc/passerelle/p.toml").folders.intakeConcurrency == 4)
        #expect(try PasserelleConfiguration.load(from: Self.examplePath).folders.intakeConcurrency == 4)
        let set = Self.edit("done = ", "done = \"done\"\nintake_concurrency = 8")
        #expect(try PasserelleConfiguration.parse(set, file: "/etc/passerelle/p.toml").folders.intakeConcurrency == 8)
        #expect(!Self.errors(Self.edit("done = ", "done = \"done\"\nintake_concurrency = 0")).isEmpty)
        #expect(!Self.errors(Self.edit("done = ", "done = \"done\"\nintake_concurrency = 65")).isEmpty)
    }

    @Test("[console]: off by default, loopback only, needs [http] metrics_port, unknown keys refused, commented in the example")
    func console() throws {
        let file = "/etc/passerelle/p.toml"
        let defaults = try PasserelleConfiguration.parse(Self.minimal, file: file).console
        #expect(!defaults.enabled && defaults.address == "127.0.0.1")
        #expect(try !PasserelleConfiguration.load(from: Self.examplePath).console.enabled)
        let example = try String(contentsOfFile: Self.examplePath, encoding: .utf8)
        #expect(example.contains("\n[console]\n") && example.contains("\n# enabled = true\n"))

        let on = try PasserelleConfiguration.parse(Self.minimal + "\n[http]\nmetrics_port = 9464\n\n[console]\nenabled = true\naddress = \"::1\"\n", file: file)
        #expect(on.console.enabled && on.console.address == "::1")

        let remote = Self.errors(Self.minimal + "\n[http]\nmetrics_port = 9464\n\n[console]\nenabled = true\naddress = \"0.0.0.0\"\n")
        #expect(remote.map(\.description).contains { $0.contains("console.address") && $0.contains("loopback only") && $0.contains("TLS and a login") },
                "\(remote)")
        // Off loopback with TLS and accounts: accepted, with the session and lockout settings.
        let secured = try PasserelleConfiguration.parse(Self.minimal + """

            [http]
            metrics_port = 9464

            [console]
            enabled = true
            address = "0.0.0.0"
            tls = true
            accounts_file = "accounts"
            session_idle_minutes = 5
            session_max_hours = 2
            lockout_attempts = 3
            lockout_minutes = 10

            """, file: file).console
        #expect(secured.address == "0.0.0.0" && secured.tls && secured.accountsFile == "/etc/passerelle/accounts", "\(secured)")
        #expect(secured.sessionIdleMinutes == 5 && secured.sessionMaxHours == 2 && secured.lockoutAttempts == 3 && secured.lockoutMinutes == 10)
        #expect(defaults.sessionIdleMinutes == 30 && defaults.lockoutAttempts == 5 && defaults.accountsFile == nil && !defaults.tls)
        let tlsOnly = Self.errors(Self.minimal + "\n[http]\nmetrics_port = 9464\n\n[console]\nenabled = true\naddress = \"0.0.0.0\"\ntls = true\n")
        #expect(tlsOnly.map(\.description).contains { $0.contains("console.address") && $0.contains("accounts_file") }, "\(tlsOnly)")
        let halfProxy = Self.errors(Self.minimal + "\n[console]\ntrusted_proxy = \"127.0.0.1\"\n")
        #expect(halfProxy.map(\.description).contains { $0.contains("console.trusted_proxy") && $0.contains("go together") }, "\(halfProxy)")
        let noPort = Self.errors(Self.minimal + "\n[console]\nenabled = true\n")
        #expect(noPort.map(\.description).contains { $0.contains("console.enabled") && $0.contains("needs [http] metrics_port") }, "\(noPort)")
        let typo = Self.errors(Self.minimal + "\n[console]\nenable = true\n")
        #expect(typo.contains { if case .unknownKey(_, _, "console.enable", _) = $0 { true } else { false } }, "\(typo)")
    }

    @Test("[journal] retention_days: none by default (kept for ever), 1–36500 days, commented in the example")
    func retentionDays() throws {
        #expect(try PasserelleConfiguration.parse(Self.minimal, file: "/etc/passerelle/p.toml").retentionDays == nil)
        #expect(try PasserelleConfiguration.load(from: Self.examplePath).retentionDays == nil)
        let example = try String(contentsOfFile: Self.examplePath, encoding: .utf8)
        #expect(example.contains("\n# retention_days = 90\n"))
        let set = Self.edit("path = \"journal.sqlite\"", "path = \"journal.sqlite\"\nretention_days = 90")
        #expect(try PasserelleConfiguration.parse(set, file: "/etc/passerelle/p.toml").retentionDays == 90)
        let zero = Self.errors(Self.edit("path = \"journal.sqlite\"", "path = \"journal.sqlite\"\nretention_days = 0"))
        #expect(zero.map(\.description).contains { $0.contains("journal.retention_days") && $0.contains("out of range") }, "\(zero)")
        #expect(!Self.errors(Self.edit("path = \"journal.sqlite\"", "path = \"journal.sqlite\"\nretention_days = \"90\"")).isEmpty)
    }

    @Test("the config path: --config, then PASSERELLE_CONFIG, then the default")
    func path() {
        #expect(PasserelleConfiguration.resolvePath(explicit: "/x.toml", environment: ["PASSERELLE_CONFIG": "/y.toml"]) == "/x.toml")
        #expect(PasserelleConfiguration.resolvePath(explicit: nil, environment: ["PASSERELLE_CONFIG": "/y.toml"]) == "/y.toml")
        #expect(PasserelleConfiguration.resolvePath(explicit: nil, environment: [:]) == "/etc/passerelle/passerelle.toml")
    }

    @Test("wrong type names key, file and line")
    func wrongType() {
        let errors = Self.errors(Self.edit("finess", "finess = 750803447"))
        #expect(errors == [.wrongType(file: "/etc/passerelle/test.toml", line: 2, key: "structure.finess",
                                      expected: "a string in quotes", found: "an integer")])
        #expect(errors[0].description == "/etc/passerelle/test.toml:2: structure.finess must be a string in quotes, found an integer")
    }

    @Test("bad URL")
    func badURL() {
        let text = Self.minimal + "\n[dmp]\nenabled = true\nendpoint = \"http://dmp.example\"\n"
        let errors = Self.errors(text)
        #expect(errors.count == 1)
        guard case .invalidValue(let file, let line, let key, let reason) = errors.first else { Issue.record("\(errors)"); return }
        #expect(file == "/etc/passerelle/test.toml" && line == 22 && key == "dmp.endpoint")
        #expect(reason.contains("https://"))
    }

    @Test("a bad database URL is not echoed (it may hold a password)")
    func databaseURL() {
        let text = Self.minimal.replacingOccurrences(of: "path = \"journal.sqlite\"", with: "backend = \"postgresql\"\nurl = \"mysql://u:secret@db/p\"")
        let errors = Self.errors(text)
        #expect(errors.count == 1)
        #expect(errors.first?.description.contains("journal.url") == true)
        #expect(errors.first?.description.contains("secret") == false)
        let ok = Self.minimal.replacingOccurrences(of: "path = \"journal.sqlite\"", with: "backend = \"postgresql\"\nurl = \"postgresql://u@db/p\"")
        #expect(Self.errors(ok).isEmpty)
    }

    @Test("[journal] prepared_statements: on by default, off on request, a boolean only")
    func preparedStatements() throws {
        func journal(_ extra: String) throws -> PasserelleConfiguration.Journal {
            let text = Self.minimal.replacingOccurrences(of: "path = \"journal.sqlite\"", with: "backend = \"postgresql\"\nurl = \"postgresql://u@db/p\"\(extra)")
            return try PasserelleConfiguration.parse(text, file: "/etc/passerelle/p.toml").journal
        }
        guard case .postgresql(_, _, _, let byDefault, _) = try journal("") else { Issue.record("not postgresql"); return }
        #expect(byDefault)
        guard case .postgresql(_, _, _, let off, _) = try journal("\nprepared_statements = false") else { Issue.record("not postgresql"); return }
        #expect(!off)
        let text = Self.minimal.replacingOccurrences(of: "path = \"journal.sqlite\"", with: "backend = \"postgresql\"\nurl = \"postgresql://u@db/p\"\nprepared_statements = \"no\"")
        #expect(Self.errors(text).first?.description.contains("journal.prepared_statements") == true)
    }

    @Test("[journal] connections: 4 by default, 1–64, an integer only")
    func postgresConnections() throws {
        func text(_ extra: String) -> String {
            Self.minimal.replacingOccurrences(of: "path = \"journal.sqlite\"", with: "backend = \"postgresql\"\nurl = \"postgresql://u@db/p\"\(extra)")
        }
        func connections(_ extra: String) throws -> Int? {
            guard case .postgresql(_, _, _, _, let n) = try PasserelleConfiguration.parse(text(extra), file: "/etc/passerelle/p.toml").journal else { return nil }
            return n
        }
        #expect(try connections("") == 4)
        #expect(try connections("\nconnections = 1") == 1)
        #expect(try connections("\nconnections = 16") == 16)
        for wrong in ["0", "65", "\"4\""] {
            #expect(Self.errors(text("\nconnections = \(wrong)")).first?.description.contains("journal.connections") == true, "connections = \(wrong)")
        }
    }

    @Test("[intake] language: French by default, the example's value, \"en\", nothing else")
    func intakeLanguage() throws {
        #expect(try PasserelleConfiguration.parse(Self.minimal, file: "/etc/passerelle/p.toml").intakeLanguage == .fr)
        #expect(try PasserelleConfiguration.load(from: Self.examplePath).intakeLanguage == .fr)
        let english = try PasserelleConfiguration.parse(Self.minimal + "\n[intake]\nlanguage = \"en\"\n", file: "/etc/passerelle/p.toml")
        #expect(english.intakeLanguage == .en)
        let errors = Self.errors(Self.minimal + "\n[intake]\nlanguage = \"de\"\n")
        guard case .invalidValue(_, _, let key, let reason) = errors.first, errors.count == 1 else { Issue.record("\(errors)"); return }
        #expect(key == "intake.language" && reason.contains("\"fr\", \"en\""))
    }

    @Test("unknown enum value lists the accepted ones")
    func unknownEnum() {
        let errors = Self.errors(Self.minimal + "\n[logging]\nformat = \"xml\"\n")
        guard case .invalidValue(_, let line, let key, let reason) = errors.first, errors.count == 1 else { Issue.record("\(errors)"); return }
        #expect(line == 21 && key == "logging.format")
        #expect(reason.contains("\"logfmt\", \"json\""))
    }

    @Test("missing required key names the table line")
    func missingKey() {
        let errors = Self.errors(Self.edit("oid", ""))
        guard case .missingKey(let file, let line, let key, _) = errors.first, errors.count == 1 else { Issue.record("\(errors)"); return }
        #expect(file == "/etc/passerelle/test.toml" && line == 1 && key == "structure.oid")
        let enabledWithoutEndpoint = Self.errors(Self.minimal + "\n[dmp]\nenabled = true\n")
        #expect(enabledWithoutEndpoint.map(\.description) == ["/etc/passerelle/test.toml:20: missing key dmp.endpoint"])
    }

    @Test("missing table")
    func missingTable() {
        let text = Self.minimal.replacingOccurrences(of: "[folders]", with: "[dossiers]")
        let errors = Self.errors(text)
        #expect(errors.contains(.missingTable(file: "/etc/passerelle/test.toml", table: "folders")))
        #expect(errors.contains(.unknownTable(file: "/etc/passerelle/test.toml", line: 12, table: "dossiers", suggestion: nil)))
    }

    @Test("unknown key is a probable typo, with a suggestion")
    func unknownKey() {
        let errors = Self.errors(Self.edit("trust_anchors", "trust_anchor = \"ca.pem\""))
        #expect(errors.contains(.unknownKey(file: "/etc/passerelle/test.toml", line: 10, key: "certificates.trust_anchor",
                                            suggestion: "certificates.trust_anchors")))
        #expect(errors.contains { if case .missingKey(_, 6, "certificates.trust_anchors", _) = $0 { true } else { false } })
        // Sorted by line: the missing key (table header, line 6) comes before the typo (line 10).
        #expect(errors.map(\.line) == [6, 10])
        #expect(errors[1].description == "/etc/passerelle/test.toml:10: unknown key certificates.trust_anchor (probably a typo; did you mean certificates.trust_anchors?)")
    }

    @Test("invalid values: FINESS key, OID, port range, mail address, both passphrase sources")
    func invalidValues() {
        var text = Self.edit("finess", "finess = \"750803448\"")
        text = Self.edit("oid", "oid = \"urn:oid:1.2\"", in: text)
        text = Self.edit("passphrase_env", "passphrase_env = \"P\"\npassphrase_file = \"p.txt\"", in: text)
        text += "\n[mssante]\nenabled = true\nsmtp_host = \"h\"\nsmtp_port = 70000\nmailbox = \"nobody\"\nproduct_reference = \"P\"\n"
        let errors = Self.errors(text)
        let keys = errors.map { e -> String in
            if case .invalidValue(_, _, let key, _) = e { return key }
            return "other: \(e)"
        }
        #expect(keys == ["structure.finess", "structure.oid", "certificates.passphrase_env", "mssante.smtp_port", "mssante.mailbox"])
        #expect(errors.map(\.line) == [2, 4, 9, 24, 25])
    }

    @Test("syntax errors carry the line", arguments: [
        ("[structure\nfiness = \"1\"", 1, "']'"),
        ("[structure]\nfiness = \"unterminated", 2, "not closed"),
        ("[structure]\nfiness = 1.5", 2, "floating-point"),
        ("[structure]\nfiness = bare", 2, "need quotes"),
        ("[structure]\nname = \"a\"\nname = \"b\"", 3, "twice"),
        ("[a]\n[a]", 2, "twice"),
        ("[structure]\nx.y = \"1\"", 2, "dotted keys"),
        ("[structure]\nname = \"a\" extra", 2, "unexpected"),
        ("[structure]\nname = \"bad \\q escape\"", 2, "unknown escape"),
        ("[[tables]]", 1, "not supported"),
        ("[s]\nlist = [\"a\",\n  1]", 3, "only hold strings"),
        ("[s]\nname = # nothing", 2, "missing value"),
    ])
    func syntax(_ text: String, _ line: Int, _ fragment: String) {
        let errors = Self.errors(text)
        guard case .syntax(let file, let l, let message) = errors.first, errors.count == 1 else { Issue.record("\(errors)"); return }
        #expect(file == "/etc/passerelle/test.toml")
        #expect(l == line)
        #expect(message.contains(fragment), "\(message)")
    }

    @Test("TOML subset: escapes, literal strings, multi-line arrays, comments, integers")
    func tomlSubset() throws {
        let text = """
        # comment
        [a.b]  # trailing comment
        s = "tab\\there \\"q\\" \\u00e9\\U0001F600"
        lit = 'C:\\path\\no\\escape'
        n = -1_000
        t = true
        list = [
          "x", # first
          'y',
        ]
        empty = []
        """
        let doc = try TOMLDocument(parsing: "\u{FEFF}" + text.replacingOccurrences(of: "\n", with: "\r\n"))
        let t = try #require(doc.table("a.b"))
        #expect(t.line == 2)
        #expect(t.entry("s")?.value == .string("tab\there \"q\" é😀"))
        #expect(t.entry("lit")?.value == .string("C:\\path\\no\\escape"))
        #expect(t.entry("n")?.value == .integer(-1000))
        #expect(t.entry("t")?.value == .boolean(true))
        #expect(t.entry("list")?.value == .strings(["x", "y"]))
        #expect(t.entry("list")?.line == 7)
        #expect(t.entry("empty")?.value == .strings([]))
    }

    @Test("an unreadable file names the file")
    func unreadable() {
        do {
            _ = try PasserelleConfiguration.load(from: "/nonexistent/passerelle.toml")
            Issue.record("should have thrown")
        } catch {
            guard case .unreadable(let file, _) = error else { Issue.record("\(error)"); return }
            #expect(file == "/nonexistent/passerelle.toml")
        }
    }
}
