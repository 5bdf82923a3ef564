import Foundation
import Testing
import TestSupport
@testable import WebServer

/// The console's security on a real `passerelle run` (real HTTP and TLS on loopback, the real
/// curl with a cookie jar, a real SQLite journal): accounts made by `passerelle console
/// add-user`, login, lockout, CSRF, roles, TLS with the test PKI, the configurations refused at
/// start, and the Échecs page's resend in a real browser.
@Suite("passerelle console: accounts, login, TLS, Échecs", .serialized)
struct ConsoleAuthTests {
    static let operatorPassword = "correct horse battery staple"
    static let readerPassword = "lecteur-mot-de-passe-42"

    /// curl with a cookie jar: each call sends and keeps the session cookie, as a browser does.
    struct Client {
        let jar: URL
        var extra: [String] = []

        func request(_ url: String, form: [(String, String)]? = nil, rawBody: String? = nil) throws -> (code: Int, headers: [String: String], body: String) {
            var arguments = ["-s", "-i", "--max-time", "30", "-c", jar.path, "-b", jar.path] + extra
            if let form { for (name, value) in form { arguments += ["--data-urlencode", "\(name)=\(value)"] } }
            if let rawBody { arguments += ["--data-binary", rawBody] }
            let r = try ProcessRunner.run("curl", arguments + [url])
            return ConsoleTests.parse(r.stdout.isEmpty ? r.stderr : r.stdout)
        }

        /// The CSRF token of the first form on the page.
        static func token(_ body: String) -> String? {
            guard let range = body.range(of: #"name="csrf" value="[0-9a-f]{64}""#, options: .regularExpression) else { return nil }
            return String(body[range].dropLast().suffix(64))
        }

        /// Logs in through the login page's own form (its token included).
        func login(_ base: String, _ name: String, _ password: String) throws -> (code: Int, headers: [String: String], body: String) {
            let page = try request(base + "/console/connexion")
            let token = Self.token(page.body) ?? "none"
            return try request(base + "/console/connexion", form: [("csrf", token), ("nom", name), ("mot_de_passe", password), ("suite", "/console/")])
        }
    }

    static func addUser(_ config: URL, _ name: String, _ role: String, _ password: String) throws -> ProcessResult {
        try ProcessRunner.run(try #require(CLI.binary), ["console", "add-user", name, "--role", role, "--config", config.path],
                              currentDirectory: TestPaths.repositoryRoot, stdin: Data((password + "\n").utf8))
    }

    /// A test configuration with the console on, accounts in `root`, `extra` appended to `[console]`.
    static func configuration(_ root: URL, port: Int, console extra: String = "") throws -> URL {
        var text = TestConfiguration.withTestPKI(signing: "org-sign")
        text = text.replacingOccurrences(of: "/tmp/passerelle-test/journal.sqlite", with: root.appendingPathComponent("journal/journal.sqlite").path)
            .replacingOccurrences(of: "/tmp/passerelle-test", with: root.path)
        text += "\n[http]\nmetrics_port = \(port)\n\n[console]\nenabled = true\naccounts_file = \"\(root.appendingPathComponent("console-accounts").path)\"\n\(extra)\n"
        let config = root.appendingPathComponent("passerelle.toml")
        try text.write(to: config, atomically: true, encoding: .utf8)
        return config
    }

    /// `passerelle demo --keep-running` against a DMP endpoint that refuses every request (the
    /// response schema in place of the request one): settled, with its 9 DMP transmissions
    /// failed; the demo process and its console's URL.
    static func demoRefusedByTheDMP(_ folder: URL, logs: URL) async throws -> (Background, String) {
        var arguments = DemoTests.arguments(folder, ["--keep-running", "--timeout", "60"])
        arguments[arguments.firstIndex(of: "--xds-schema")! + 1] = TestPaths.shared.appendingPathComponent("conformance/xds/rs.xsd").path
        let demo = try Background(try #require(CLI.binary), arguments, directory: TestPaths.repositoryRoot, logs: logs)
        let line = try #require(await demo.waitFor("/console/", timeout: 60), "no console line:\n\(demo.output)")
        let url = try #require(line.split(separator: " ").first { $0.hasSuffix("/console/") }.map(String.init))
        _ = try #require(await demo.waitFor("Running until Ctrl-C", timeout: 120), "demo did not settle:\n\(demo.output)")
        return (demo, url)
    }

    // MARK: - Accounts

    /// `console add-user` writes `name:role:bcrypt` lines 0600 (cost 12, the password nowhere);
    /// takes the password from stdin, never argv; refuses a short one; `config check` reads it;
    /// `list-users` and `remove-user` do what they say (the rewritten file 0600 again).
    @Test func accountsFileThroughTheCLI() throws {
        let root = try TestPaths.temporaryDirectory("console-accounts")
        defer { try? FileManager.default.removeItem(at: root) }
        let config = try Self.configuration(root, port: 9)
        let file = root.appendingPathComponent("console-accounts")

        let added = try Self.addUser(config, "alice", "opérateur", Self.operatorPassword)
        #expect(added.status == 0, "\(added.stdout)\(added.stderr)")
        #expect(try Self.addUser(config, "bob", "lecteur", Self.readerPassword).status == 0)
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let text = try String(contentsOf: file, encoding: .utf8)
        let lines = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(lines.count == 2, "\(text)")
        #expect(lines[0].hasPrefix("alice:opérateur:$2b$12$") && lines[0].count == "alice:opérateur:".count + 60, "\(text)")
        #expect(lines[1].hasPrefix("bob:lecteur:$2b$12$"), "\(text)")
        #expect(!text.contains(Self.operatorPassword) && !text.contains(Self.readerPassword))
        // The hash checks with bcrypt itself (the library the server uses).
        let hash = String(lines[0].split(separator: ":", maxSplits: 2)[2])
        #expect(HummingbirdBcryptCheck.verify(Self.operatorPassword, hash) && !HummingbirdBcryptCheck.verify("wrong", hash))

        let short = try Self.addUser(config, "carol", "lecteur", "court")
        #expect(short.status == 1 && short.stderr.contains("at least 12 characters"), "\(short.stderr)")
        let argv = try ProcessRunner.run(try #require(CLI.binary), ["console", "add-user", "carol", "--role", "lecteur", "--password", "x", "--config", config.path])
        #expect(argv.status != 0, "a password on the command line must be refused")
        let list = try ProcessRunner.run(try #require(CLI.binary), ["console", "list-users", "--config", config.path])
        #expect(list.stdout.contains("alice  opérateur") && list.stdout.contains("bob  lecteur") && !list.stdout.contains("$2b$"), "\(list.stdout)")
        // `config check` reads the file as the service will, and says when it is readable by others.
        let check = try ProcessRunner.run(try #require(CLI.binary), ["config", "check", "--config", config.path])
        #expect(check.stdout.contains("console       ok: console.accounts_file: 2 accounts") && !check.stdout.contains("readable by others"), "\(check.stdout)")
        chmod(file.path, 0o644)
        let loose = try ProcessRunner.run(try #require(CLI.binary), ["config", "check", "--config", config.path])
        #expect(loose.stdout.contains("console.accounts_file: \(file.path) is readable by others (mode 644): chmod 600"), "\(loose.stdout)")

        let removed = try ProcessRunner.run(try #require(CLI.binary), ["console", "remove-user", "bob", "--config", config.path])
        #expect(removed.status == 0)
        #expect(!(try String(contentsOf: file, encoding: .utf8)).contains("bob:"))
        #expect((try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int) == 0o600)
    }

    /// An accounts file the service cannot read would lock everyone out silently: `run` stops at
    /// start and says how to make one.
    @Test func aMissingAccountsFileIsSaidAtStart() throws {
        let root = try TestPaths.temporaryDirectory("console-no-accounts")
        defer { try? FileManager.default.removeItem(at: root) }
        let config = try Self.configuration(root, port: try RunStatusTests.freePort())
        let run = try ProcessRunner.run(try #require(CLI.binary), ["run", "--config", config.path], currentDirectory: TestPaths.repositoryRoot)
        let output = run.stdout + run.stderr
        #expect(run.status == 1 && output.contains("[console] accounts_file") && output.contains("passerelle console add-user"), "\(output)")
    }

    // MARK: - Login, roles, CSRF, lockout

    /// A running service with accounts: the login is asked for, a wrong password refused, the
    /// session cookie is HttpOnly/SameSite=Strict on /console, a reader cannot act, a POST
    /// without the session's token is refused, bodies are bounded, logout ends the session, and
    /// repeated failures lock the account and the address. Every login is logged (event=console.*).
    @Test func loginRolesCSRFAndLockout() async throws {
        let root = try TestPaths.temporaryDirectory("console-login")
        defer { try? FileManager.default.removeItem(at: root) }
        let port = try RunStatusTests.freePort()
        let config = try Self.configuration(root, port: port, console: "lockout_attempts = 3\nlockout_minutes = 1")
        #expect(try Self.addUser(config, "alice", "opérateur", Self.operatorPassword).status == 0)
        #expect(try Self.addUser(config, "bob", "lecteur", Self.readerPassword).status == 0)
        let run = try Background(try #require(CLI.binary), ["run", "--config", config.path, "--log-level", "info"],
                                 directory: TestPaths.repositoryRoot, logs: root)
        defer { run.kill() }
        let base = "http://127.0.0.1:\(port)"
        try await RunStatusTests().waitForHealth(base, run)
        let browser = Client(jar: root.appendingPathComponent("jar-1"))

        // Not signed in: every console page sends to the login page; the status endpoints do not.
        let first = try browser.request(base + "/console/")
        #expect(first.code == 303 && first.headers["location"] == "/console/connexion?suite=/console/", "\(first)")
        #expect(try browser.request(base + "/console/api/overview").code == 303)
        for path in ["/console/file", "/console/file?etat=failed", "/console/document/DOC-1", "/console/echecs",
                     "/console/rapport", "/console/rapport/telechargement?format=csv"] {
            #expect(try browser.request(base + path).code == 303, "\(path) must ask for the login")
        }
        #expect(try browser.request(base + "/health").code == 200)
        let loginPage = try browser.request(base + "/console/connexion")
        #expect(loginPage.code == 200 && loginPage.body.contains("<h2>Connexion</h2>") && Client.token(loginPage.body) != nil)
        #expect(loginPage.headers["content-security-policy"]?.hasPrefix("default-src 'self'") == true)
        #expect(try browser.request(base + "/console/static/console.css").code == 200)

        let wrong = try browser.login(base, "bob", "not the password")
        #expect(wrong.code == 401 && wrong.body.contains("Identifiant ou mot de passe incorrect."), "\(wrong.code)")
        let nobody = try browser.login(base, "mallory", "whatever-password")
        #expect(nobody.code == 401, "an unknown name answers as a wrong password")

        // The reader: signed in, reads, cannot act even with a valid token.
        let reader = try browser.login(base, "bob", Self.readerPassword)
        #expect(reader.code == 303 && reader.headers["location"] == "/console/", "\(reader)")
        let cookie = try #require(reader.headers["set-cookie"])
        #expect(cookie.hasPrefix("passerelle_console=") && cookie.contains("Path=/console") && cookie.contains("HttpOnly")
                    && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"), "\(cookie)")
        let overview = try browser.request(base + "/console/")
        #expect(overview.code == 200 && overview.body.contains("bob (lecteur)"), "\(overview.code)")
        let failures = try browser.request(base + "/console/echecs")
        #expect(failures.code == 200 && failures.body.contains("<h2>Échecs</h2>") && !failures.body.contains("name=\"action\""))
        for path in ["/console/file", "/console/rapport"] {
            let read = try browser.request(base + path)
            #expect(read.code == 200 && read.body.contains("bob (lecteur)"), "\(path): \(read.code)")
        }
        let token = try #require(Client.token(overview.body))
        let refused = try browser.request(base + "/console/echecs/confirmer", form: [("csrf", token), ("action", "retenir"), ("id", "1")])
        #expect(refused.code == 403 && refused.body.contains("lecteur"), "\(refused.code) \(refused.body)")

        // Sign out: the session is gone on the server, not only in the browser.
        let stolen = cookie.split(separator: ";")[0].split(separator: "=")[1]
        let out = try browser.request(base + "/console/deconnexion", form: [("csrf", token)])
        #expect(out.code == 303 && out.headers["set-cookie"]?.contains("Max-Age=0") == true, "\(out)")
        let replay = try ProcessRunner.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-b", "passerelle_console=\(stolen)", base + "/console/"])
        #expect(replay.stdout == "303", "a session id used after logout must not work")

        // The operator: the actions are there; a POST without or with a wrong token is refused.
        let op = Client(jar: root.appendingPathComponent("jar-2"))
        #expect(try op.login(base, "alice", Self.operatorPassword).code == 303)
        let page = try op.request(base + "/console/echecs")
        #expect(page.code == 200 && page.body.contains("alice (opérateur)"))
        let opToken = try #require(Client.token(page.body))
        let noToken = try op.request(base + "/console/echecs/confirmer", form: [("action", "retenir"), ("id", "1")])
        #expect(noToken.code == 403 && noToken.body.contains("Jeton de sécurité"), "\(noToken.code)")
        let otherToken = try op.request(base + "/console/echecs/confirmer", form: [("csrf", token), ("action", "retenir"), ("id", "1")])
        #expect(otherToken.code == 403, "another session's token")
        var crossSite = op
        crossSite.extra = ["-H", "Origin: https://evil.example"]
        #expect(try crossSite.request(base + "/console/echecs/confirmer", form: [("csrf", opToken), ("action", "retenir"), ("id", "1")]).code == 403)
        let empty = try op.request(base + "/console/echecs/confirmer", form: [("csrf", opToken), ("action", "retenir")])
        #expect(empty.code == 400 && empty.body.contains("Aucune transmission choisie"), "\(empty.code)")
        let big = try op.request(base + "/console/echecs/confirmer", rawBody: "csrf=\(opToken)&x=" + String(repeating: "a", count: 40 << 10))
        #expect(big.code == 413, "\(big.code)")
        #expect(try op.request(base + "/console/", form: [("csrf", opToken)]).code == 405, "POST only where a form posts")

        // Lockout: a burst of 6 parallel guesses gets 3 password checks (401), the rest is
        // refused at once (429); the 3 failures lock this address, even for the right password.
        let stranger = Client(jar: root.appendingPathComponent("jar-3"))
        let loginToken = try #require(Client.token(try stranger.request(base + "/console/connexion").body))
        let burst = try ProcessRunner.run("bash", ["-c", """
            for i in 1 2 3 4 5 6; do
              curl -s -o /dev/null -w '%{http_code}\\n' --max-time 30 --data-urlencode csrf=\(loginToken) --data-urlencode nom=dave$i \\
                   --data-urlencode mot_de_passe=guess$i \(base)/console/connexion &
            done; wait
            """])
        let codes = burst.stdout.split(separator: "\n").map(String.init).sorted()
        #expect(codes == ["401", "401", "401", "429", "429", "429"], "\(codes)")
        let locked = try stranger.login(base, "bob", Self.readerPassword)
        #expect(locked.code == 429 && locked.body.contains("Trop d’échecs de connexion"), "\(locked.code)")

        #expect(await run.terminate(timeout: 30) == 0)
        let logs = run.errors
        #expect(logs.contains("event=console.login") && logs.contains("outcome=success") && logs.contains("outcome=failure")
                    && logs.contains("outcome=locked"), "\(logs)")
        #expect(logs.contains("event=console.lockout") && logs.contains("event=console.csrf_refused")
                    && logs.contains("event=console.action_refused") && logs.contains("event=console.logout"), "\(logs)")
        #expect(!logs.contains(Self.readerPassword) && !logs.contains(Self.operatorPassword) && !logs.contains("not the password"))

        // The same logins in the journal (migration 8), as `passerelle audit --console` lists them:
        // the wrong password, the unknown name, the good login, the logout, each with its address.
        let audit = try CLI.run(["audit", "--console", "--json", "--config", config.path])
        #expect(audit.status == 0, "\(audit.stdout)\(audit.stderr)")
        let events = try #require(try JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]], "\(audit.stdout)")
        let trail = events.map { "\($0["user"] as? String ?? "?")/\($0["address"] as? String ?? "?")/\($0["event"] as? String ?? "?")" }
        #expect(Array(trail.prefix(5)) == ["bob/127.0.0.1/login-refused", "mallory/127.0.0.1/login-refused", "bob/127.0.0.1/login",
                                           "bob/127.0.0.1/logout", "alice/127.0.0.1/login"], "\(trail)")
        // The burst: 6 refused (3 wrong passwords, 3 turned away), the address locked once; then bob refused while locked.
        let burstEvents = trail.dropFirst(5).dropLast()
        #expect(burstEvents.filter { $0.hasSuffix("/login-refused") }.count == 6 && burstEvents.filter { $0.hasSuffix("/lockout") }.count == 1,
                "\(trail)")
        #expect(trail.count == 13 && trail.last == "bob/127.0.0.1/login-refused", "\(trail)")
        #expect(events.allSatisfy { ($0["at"] as? String)?.isEmpty == false && ($0["id"] as? Int ?? 0) > 0 }, "\(audit.stdout)")
        let human = try CLI.run(["audit", "--console", "--limit", "1", "--config", config.path])
        #expect(human.status == 0 && human.stdout.contains("  bob  login-refused  from 127.0.0.1")
                    && human.stdout.split(separator: "\n").count == 1, "\(human.stdout)\(human.stderr)")
        #expect(!audit.stdout.contains(Self.readerPassword) && !audit.stdout.contains("not the password") && !audit.stdout.contains("guess"))
    }

    // MARK: - Behind a reverse proxy

    /// `trusted_proxy` + `user_header`: the header names the user only on connections from the
    /// proxy's address (role from the accounts file, else lecteur); from anyone else it is
    /// ignored and the login is asked for.
    @Test func aTrustedProxyNamesTheUserAndNoOneElseDoes() async throws {
        let root = try TestPaths.temporaryDirectory("console-proxy")
        defer { try? FileManager.default.removeItem(at: root) }
        for proxy in ["127.0.0.1", "127.0.0.9"] {
            let port = try RunStatusTests.freePort()
            let config = try Self.configuration(root, port: port, console: "trusted_proxy = \"\(proxy)\"\nuser_header = \"X-Remote-User\"")
            #expect(try Self.addUser(config, "alice", "opérateur", Self.operatorPassword).status == 0)
            let run = try Background(try #require(CLI.binary), ["run", "--config", config.path], directory: TestPaths.repositoryRoot, logs: root)
            defer { run.kill() }
            let base = "http://127.0.0.1:\(port)"
            try await RunStatusTests().waitForHealth(base, run)
            func client(_ user: String?) -> Client {
                var client = Client(jar: root.appendingPathComponent("jar-\(proxy)-\(user ?? "none")"))
                if let user { client.extra = ["-H", "X-Remote-User: \(user)"] }
                return client
            }
            if proxy == "127.0.0.1" {
                // The role shows in the header, and decides on a POST: an empty selection is a 400 for
                // who may act, a 403 for a reader (each with the token of its own page).
                for (user, role, code) in [("alice", "opérateur", 400), ("zoe", "lecteur", 403)] {
                    let page = try client(user).request(base + "/console/echecs")
                    #expect(page.code == 200 && page.body.contains("\(user) (\(role))"), "\(user): \(page.code)")
                    let token = try #require(Client.token(page.body))
                    let post = try client(user).request(base + "/console/echecs/confirmer", form: [("csrf", token), ("action", "retenir")])
                    #expect(post.code == code, "\(user): \(post.code)")
                }
                #expect(try client(nil).request(base + "/console/echecs").code == 303, "no header: the login")
            } else {
                #expect(try client("alice").request(base + "/console/echecs").code == 303, "a header from another address than the proxy's is ignored")
            }
            #expect(await run.terminate(timeout: 30) == 0)
        }
    }

    // MARK: - TLS and the address rule

    /// `tls = true` with the test PKI's server certificate: the console (and the status
    /// endpoints) over HTTPS on a non-loopback-named address, the cookie `Secure`; plain HTTP
    /// gets nothing. Off loopback without TLS or without accounts: refused at start, saying why.
    @Test func tlsWithTheTestPKIAndTheAddressRule() async throws {
        let root = try TestPaths.temporaryDirectory("console-tls")
        defer { try? FileManager.default.removeItem(at: root) }
        let port = try RunStatusTests.freePort()
        let pki = TestPaths.testPKI.path
        // 127.0.0.2: loopback for the kernel, but not one of the names the console takes as loopback.
        let config = try Self.configuration(root, port: port, console: """
            address = "127.0.0.2"
            tls = true
            tls_identity = "\(pki)/server-localhost.p12"
            """)
        #expect(try Self.addUser(config, "alice", "opérateur", Self.operatorPassword).status == 0)
        let run = try Background(try #require(CLI.binary), ["run", "--config", config.path, "--log-level", "info"],
                                 directory: TestPaths.repositoryRoot, logs: root)
        defer { run.kill() }
        let https = Client(jar: root.appendingPathComponent("jar"), extra: ["--cacert", "\(pki)/ca.pem", "--resolve", "localhost:\(port):127.0.0.2"])
        let base = "https://localhost:\(port)"
        var health: (code: Int, headers: [String: String], body: String) = (-1, [:], "")
        for _ in 0..<100 {
            health = try https.request(base + "/health")
            if health.code == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(health.code == 200, "\(health) \(run.errors)")
        #expect(run.errors.contains("url=https://127.0.0.2:\(port)/console/"), "\(run.errors)")
        let login = try https.login(base, "alice", Self.operatorPassword)
        #expect(login.code == 303)
        #expect(login.headers["set-cookie"]?.contains("; Secure") == true, "\(login.headers)")
        let page = try https.request(base + "/console/echecs")
        #expect(page.code == 200 && page.body.contains("alice (opérateur)"))
        let plain = try ProcessRunner.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "http://127.0.0.2:\(port)/health"])
        #expect(plain.stdout != "200", "plain HTTP must not be served: \(plain.stdout)")
        #expect(await run.terminate(timeout: 30) == 0)

        // The rule, at start: off loopback needs TLS and accounts.
        let text = try String(contentsOf: config, encoding: .utf8)
        for (name, edited) in [("no TLS", text.replacingOccurrences(of: "tls = true\n", with: "")),
                               ("no accounts", text.replacingOccurrences(of: #"accounts_file = "[^"]*"\n"#, with: "", options: .regularExpression))] {
            try edited.write(to: config, atomically: true, encoding: .utf8)
            let refused = try ProcessRunner.run(try #require(CLI.binary), ["run", "--config", config.path], currentDirectory: TestPaths.repositoryRoot)
            let output = refused.stdout + refused.stderr
            #expect(refused.status == 1, "\(name): \(output)")
            #expect(output.contains("console.address") && output.contains("TLS and a login") && output.contains("accounts_file"), "\(name): \(output)")
        }
    }

    // MARK: - Sessions and lockout in time (the server's own types, with a clock we move)

    @Test func sessionsExpireWhenIdleAndAtTheirMaximum() {
        let sessions = ConsoleSessions(idle: .seconds(60), maximum: .seconds(300))
        let start = ContinuousClock.Instant.now
        let (id, session) = sessions.open(name: "alice", role: .operateur, now: start)
        #expect(id.count == 64 && session.csrf.count == 64 && id != session.csrf, "256-bit random ids")
        #expect(sessions.current(id, now: start + .seconds(59)) != nil)
        #expect(sessions.current(id, now: start + .seconds(118)) != nil, "each request moves the idle timeout")
        #expect(sessions.current(id, now: start + .seconds(179)) == nil, "idle 61 s")
        #expect(sessions.current(id, now: start + .seconds(60)) == nil, "an expired session is gone for good")

        let (busy, _) = sessions.open(name: "bob", role: .lecteur, now: start)
        for minute in 1...4 { #expect(sessions.current(busy, now: start + .seconds(minute * 59)) != nil) }
        #expect(sessions.current(busy, now: start + .seconds(300)) == nil, "absolute maximum, however busy")
        #expect(sessions.open(name: "x", role: .lecteur).id != sessions.open(name: "x", role: .lecteur).id)
    }

    @Test func lockoutCountsWithinItsWindowAndEnds() {
        let throttle = LoginThrottle(attempts: 3, window: .seconds(60))
        let start = ContinuousClock.Instant.now
        let bob = ["account:bob", "address:10.0.0.1"]
        func attempt(_ keys: [String], at seconds: Int) -> [String] {
            #expect(throttle.admit(keys, now: start + .seconds(seconds)) == .admitted, "at \(seconds) s")
            return throttle.finish(keys, failed: true, now: start + .seconds(seconds))
        }
        #expect(attempt(bob, at: 0).isEmpty)
        #expect(attempt(bob, at: 61).isEmpty, "the first failure is out of the window")
        #expect(attempt(bob, at: 62).isEmpty)
        #expect(attempt(bob, at: 63) == bob, "third within the window: both the account and the address locked")
        guard case .locked = throttle.admit(["account:bob"], now: start + .seconds(100)) else { Issue.record("not locked"); return }
        guard case .locked = throttle.admit(["account:alice", "address:10.0.0.1"], now: start + .seconds(100)) else { Issue.record("address"); return }
        #expect(throttle.admit(["account:alice", "address:10.0.0.2"], now: start + .seconds(100)) == .admitted, "per account and address")
        throttle.finish(["account:alice", "address:10.0.0.2"], failed: false, now: start + .seconds(100))
        #expect(throttle.admit(bob, now: start + .seconds(124)) == .admitted, "the lockout ends")
        throttle.finish(bob, failed: false, now: start + .seconds(124))

        // Checks in flight count: a burst of parallel guesses cannot all pass before the first fails.
        let burst = ["account:carol", "address:10.0.0.3"]
        for _ in 0..<3 { #expect(throttle.admit(burst, now: start) == .admitted) }
        #expect(throttle.admit(burst, now: start) == .busy)
        throttle.finish(burst, failed: false, now: start)
        #expect(throttle.admit(burst, now: start) == .admitted, "a success frees its place and clears the failures")
        #expect(constantTimeEquals("abc", "abc") && !constantTimeEquals("abc", "abd") && !constantTimeEquals("abc", "abcd"))
    }

    // MARK: - The Échecs page on loopback without accounts

    /// Loopback, no accounts: no login, the actions are open (as the CLI on the host), still
    /// behind the page's CSRF token. The 9 failed DMP transmissions are grouped by cause;
    /// Retenir on a failed one only says it does not apply; Abandonner needs a reason, then sets
    /// the chosen one aside through the journal's discard (audit user `console: loopback`).
    @Test func actionsOnALoopbackConsoleWithoutAccounts() async throws {
        let binary = try #require(CLI.binary)
        let root = try TestPaths.temporaryDirectory("console-actions")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("demo-run")
        let (demo, url) = try await Self.demoRefusedByTheDMP(folder, logs: root)
        defer { demo.kill() }
        let client = Client(jar: root.appendingPathComponent("jar"))

        let page = try client.request(url + "echecs")
        #expect(page.code == 200 && page.body.contains("9 transmissions en") && !page.body.contains("id=\"viewer\""), "\(page.code)")
        #expect(page.body.contains("XDSRepositoryMetadataError") && page.body.contains("name=\"action\" value=\"abandonner\""))
        let token = try #require(Client.token(page.body))
        let ids = page.body.matches(of: /name="id" value="(\d+)"/).map { String($0.1) }
        #expect(ids.count == 9, "\(ids)")
        let id = try #require(ids.first)
        #expect(try client.request(url + "echecs/confirmer", form: [("action", "abandonner"), ("id", id)]).code == 403, "no token")

        // A whole group at once: its box names the cause; the confirmation lists every member.
        let groupValue = try #require(page.body.firstMatch(of: /name="groupe" value="([^"]*)"/)?.1).description
        let cause = [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&amp;", "&")]
            .reduce(groupValue) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
        let group = try client.request(url + "echecs/confirmer", form: [("csrf", token), ("action", "abandonner"), ("groupe", cause)])
        #expect(group.code == 200 && group.body.contains("8 transmissions sur 8 seront traitées"), "\(group.body)")
        #expect(group.body.matches(of: /<tr data-transmission="\d+">/).count == 8)

        let hold = try client.request(url + "echecs/confirmer", form: [("csrf", token), ("action", "retenir"), ("id", id)])
        #expect(hold.code == 200 && hold.body.contains("0 transmission sur 1") && hold.body.contains("ignorée : en échec")
                    && !hold.body.contains("id=\"confirm-form\""), "\(hold.body)")
        let discard = try client.request(url + "echecs/confirmer", form: [("csrf", token), ("action", "abandonner"), ("id", id)])
        #expect(discard.code == 200 && discard.body.contains("abandonnée : définitif") && discard.body.contains("name=\"motif\""), "\(discard.body)")
        let noReason = try client.request(url + "echecs/executer", form: [("csrf", token), ("action", "abandonner"), ("id", id), ("motif", " ")])
        #expect(noReason.code == 400 && noReason.body.contains("motif"), "\(noReason.code)")
        let done = try client.request(url + "echecs/executer", form: [("csrf", token), ("action", "abandonner"), ("id", id), ("motif", "document de test")])
        #expect(done.code == 303 && done.headers["location"] == "/console/echecs?fait=abandonner&nombre=1", "\(done)")
        let after = try client.request(url + "echecs?fait=abandonner&nombre=1")
        #expect(after.body.contains("Abandonner : 1 transmission traitée") && after.body.contains("8 transmissions en"), "\(after.body)")

        let config = folder.appendingPathComponent("passerelle.toml").path
        let audit = try ProcessRunner.run(binary, ["audit", "--config", config, "--json"])
        #expect(audit.stdout.contains("\"user\" : \"console: loopback\"") && audit.stdout.contains("\"action\" : \"discard\"")
                    && audit.stdout.contains("\"reason\" : \"document de test\""), "\(audit.stdout)")
        let discarded = try ProcessRunner.run(binary, ["queue", "--config", config, "--status", "discarded", "--json"])
        #expect(discarded.stdout.contains("\"id\" : \(id),"), "\(discarded.stdout)")
        _ = await demo.terminate(timeout: 30)
    }

    // MARK: - The Échecs page in a real browser

    /// The demo against an endpoint that refuses everything leaves 9 failed DMP transmissions;
    /// the gateway is then started again on that journal with accounts, against the endpoint
    /// with the right schema. In Chromium: the reader is refused, a forged POST too, the
    /// operator resends one failed transmission through the confirmation page, and the local
    /// endpoint acknowledges it; the audit trail names `console: alice`.
    @Test(.enabled(if: ConsoleTests.browserAvailable, "needs /usr/bin/chromium and playwright in .venv"))
    func aBrowserResendsAFailedTransmission() async throws {
        let binary = try #require(CLI.binary)
        let testbed = URL(fileURLWithPath: binary).deletingLastPathComponent().appendingPathComponent("passerelle-testbed").path
        let root = try TestPaths.temporaryDirectory("console-failures")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("demo-run")
        let demoLogs = root.appendingPathComponent("demo-logs")
        try FileManager.default.createDirectory(at: demoLogs, withIntermediateDirectories: true)
        let (demo, _) = try await Self.demoRefusedByTheDMP(folder, logs: demoLogs)
        defer { demo.kill() }
        _ = await demo.terminate(timeout: 30)

        // The demo's gateway configuration, with accounts, against a fresh endpoint on the same port.
        let config = folder.appendingPathComponent("passerelle.toml")
        var text = try String(contentsOf: config, encoding: .utf8)
        let endpoint = try #require(text.firstMatch(of: /endpoint = "https:\/\/localhost:(\d+)\//)?.1).description
        let metrics = try #require(text.firstMatch(of: /metrics_port = (\d+)/)?.1).description
        text = text.replacingOccurrences(of: "[console]\nenabled = true\n",
                                         with: "[console]\nenabled = true\naccounts_file = \"\(root.appendingPathComponent("accounts").path)\"\n")
        try text.write(to: config, atomically: true, encoding: .utf8)
        #expect(try Self.addUser(config, "alice", "opérateur", Self.operatorPassword).status == 0)
        #expect(try Self.addUser(config, "bob", "lecteur", Self.readerPassword).status == 0)
        let endpointLogs = root.appendingPathComponent("endpoint-logs")
        try FileManager.default.createDirectory(at: endpointLogs, withIntermediateDirectories: true)
        let dmp = try Background(testbed, ["dmp-endpoint", "--port", endpoint, "--pki", TestPaths.testPKI.path, "--xds-schema",
                                           TestPaths.shared.appendingPathComponent("conformance/xds/XDS.b_DocumentRepository.xsd").path],
                                 directory: TestPaths.repositoryRoot, logs: endpointLogs)
        defer { dmp.kill() }
        _ = try #require(await dmp.waitFor("endpoint", timeout: 30), "\(dmp.output)\(dmp.errors)")
        let runLogs = root.appendingPathComponent("run-logs")
        try FileManager.default.createDirectory(at: runLogs, withIntermediateDirectories: true)
        let run = try Background(binary, ["run", "--config", config.path, "--log-level", "info"], directory: TestPaths.repositoryRoot, logs: runLogs)
        defer { run.kill() }
        let base = "http://127.0.0.1:\(metrics)"
        try await RunStatusTests().waitForHealth(base, run)

        let queue = try ProcessRunner.run(binary, ["queue", "--config", config.path, "--status", "failed", "--target", "dmp", "--json"])
        let failed = try #require(try JSONSerialization.jsonObject(with: Data(queue.stdout.utf8)) as? [[String: Any]], "\(queue.stdout)\(queue.stderr)")
        #expect(failed.count == 9, "\(queue.stdout)")
        let id = try #require(failed.first?["id"] as? Int)

        let screenshots = ProcessInfo.processInfo.environment["PASSERELLE_SCREENSHOTS"].map { TestPaths.repositoryRoot.appendingPathComponent($0).path }
        let browser = try ProcessRunner.run(
            TestPaths.repositoryRoot.appendingPathComponent(".venv/bin/python").path,
            [TestPaths.repositoryRoot.appendingPathComponent("Tests/Browser/console_failures.py").path, base + "/console/",
             "--transmission", String(id), "--operator", "alice:\(Self.operatorPassword)", "--reader", "bob:\(Self.readerPassword)",
             "--chromium", ConsoleTests.chromium] + (screenshots.map { ["--screenshots", $0] } ?? []))
        #expect(browser.status == 0, "\(browser.stdout)\n\(browser.stderr)")
        let json = try #require(browser.stdout.split(separator: "\n").last { $0.hasPrefix("{") }, "\(browser.stdout)\n\(browser.stderr)")
        let r = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(r["redirected_to_login"] as? Bool == true, "\(json)")
        #expect(r["bad_password_message"] as? String == "Identifiant ou mot de passe incorrect.", "\(json)")
        #expect(r["reader_viewer"] as? String == "bob (lecteur)" && r["reader_rows"] as? Int == 9, "\(json)")
        #expect(r["reader_action_buttons"] as? Int == 0 && r["reader_post_status"] as? Int == 403, "\(json)")
        #expect(r["after_logout_asks_login"] as? Bool == true, "\(json)")
        #expect(r["operator_viewer"] as? String == "alice (opérateur)" && r["operator_rows"] as? Int == 9, "\(json)")
        #expect(r["failed_before"] as? String == "failed", "\(json)")
        #expect(r["forged_post_status"] as? Int == 403 && r["state_after_forged_post"] as? String == "failed", "\(json)")
        #expect(r["confirmation_heading"] as? String == "Confirmer : Renvoyer" && r["confirmation_rows"] as? Int == 1, "\(json)")
        #expect((r["done"] as? String)?.hasPrefix("Renvoyer : 1 transmission traitée") == true, "\(json)")
        #expect(r["operator_logged_out"] as? Bool == true, "\(json)")
        #expect(r["header_background"] as? String == "rgb(0, 0, 145)", "the stylesheet did not apply: \(json)")
        // The refused login (401) and the refused POSTs (403) are logged by Chromium as failed
        // loads; anything else (a CSP violation, a missing file) is a fault.
        let messages = (r["console"] as? [String] ?? []).filter { !$0.contains("the server responded with a status of 401") && !$0.contains("status of 403") }
        // A load the next navigation cancels (the favicon, when a form is sent at once) is no fault either.
        let failedLoads = (r["failed_requests"] as? [String] ?? []).filter { !$0.hasSuffix("net::ERR_ABORTED") }
        #expect(messages.isEmpty && failedLoads.isEmpty, "\(json)")

        // The endpoint acknowledges the resent transmission; the 8 others stay failed.
        var state = ""
        for _ in 0..<120 {
            let shown = try ProcessRunner.run(binary, ["queue", "--config", config.path, "--id", String(id), "--status", "acknowledged", "--json"])
            if shown.stdout.contains("\"acknowledged\"") { state = "acknowledged"; break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(state == "acknowledged", "\(run.errors.suffix(3000))")
        let still = try ProcessRunner.run(binary, ["queue", "--config", config.path, "--status", "failed", "--target", "dmp", "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(still.stdout.utf8)) as? [[String: Any]])?.count == 8, "\(still.stdout)")
        let audit = try ProcessRunner.run(binary, ["audit", "--config", config.path, "--json"])
        #expect(audit.stdout.contains("\"user\" : \"console: alice\"") && audit.stdout.contains("\"action\" : \"resend\""), "\(audit.stdout)")
        #expect(await run.terminate(timeout: 30) == 0)
        #expect(run.errors.contains("event=console.action") && run.errors.contains("user=\"console: alice\""), "\(run.errors.suffix(3000))")
        for secret in ["279035121518989", "PAT-TROIS", "DOMINIQUE"] { #expect(!browser.stdout.contains(secret)) }
    }
}

/// bcrypt as the server checks it (HummingbirdBcrypt, through the console's accounts type).
enum HummingbirdBcryptCheck {
    static func verify(_ password: String, _ hash: String) -> Bool { ConsoleAccounts.check(password, hash: hash) }
}
