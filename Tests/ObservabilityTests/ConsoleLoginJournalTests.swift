import Foundation
import Journal
import Observability
import Testing
import TestSupport
import WebServer

/// The console's logins in the journal (migration 8) on a real server over loopback and a real
/// SQLite journal: a login and a logout are rows; a journal that cannot write them (its table
/// gone) costs the trail, never the login.
@Suite("console: logins journaled", .serialized)
struct ConsoleLoginJournalTests {
    static let password = "correct horse battery staple"

    /// curl with a cookie jar, as a browser keeps the session.
    static func curl(_ jar: URL, _ url: String, form: [(String, String)]? = nil) throws -> String {
        var arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", "-c", jar.path, "-b", jar.path]
        for (name, value) in form ?? [] { arguments += ["--data-urlencode", "\(name)=\(value)"] }
        return try ProcessRunner.run("curl", arguments + [url]).stdout
    }

    /// The CSRF token of the first form of a page (the login form, or the logout's once signed in).
    static func token(_ jar: URL, _ base: String, page path: String = "/console/connexion") throws -> String {
        let page = try ProcessRunner.run("curl", ["-s", "-c", jar.path, "-b", jar.path, base + path]).stdout
        let range = try #require(page.range(of: #"name="csrf" value="[0-9a-f]{64}""#, options: .regularExpression), "\(page)")
        return String(page[range].dropLast().suffix(64))
    }

    @Test("login and logout are journaled; with the journal failing the login still works")
    func loginsJournaledAndAJournalErrorDoesNotRefuseTheLogin() async throws {
        let folder = try TestPaths.temporaryDirectory("console-login-journal")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("journal.sqlite").path
        let journal = try Journals.open(.sqlite(path: path))
        let log = try #require(journal as? any ConsoleEventLog)
        let accountsFile = folder.appendingPathComponent("console-accounts").path
        var accounts = ConsoleAccounts()
        try accounts.set(name: "alice", role: .operateur, password: Self.password)
        try accounts.write(path: accountsFile)
        let console = Console(journal: journal, targets: [.dmp], security: ConsoleSecurity(accountsFile: accountsFile),
                              events: log, certificates: { [] })
        let server = try await StatusServer.start(metrics: MetricsRegistry(), probes: [], console: console)
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let jar = folder.appendingPathComponent("jar")

        let login = [("nom", "alice"), ("mot_de_passe", Self.password), ("suite", "/console/")]
        #expect(try Self.curl(jar, base + "/console/connexion", form: [("csrf", try Self.token(jar, base))] + login) == "303")
        #expect(try Self.curl(jar, base + "/console/") == "200", "signed in")
        #expect(try Self.curl(jar, base + "/console/deconnexion", form: [("csrf", try Self.token(jar, base, page: "/console/"))]) == "303")
        let events = try await log.consoleEvents(since: nil, until: nil, limit: 10)
        #expect(events.map { "\($0.user)/\($0.address)/\($0.kind.rawValue)" } == ["alice/127.0.0.1/login", "alice/127.0.0.1/logout"])

        // The journal can no longer write the trail: the login and the logout go on regardless.
        let dropped = try ProcessRunner.run("sqlite3", [path, "DROP TABLE console_events"])
        #expect(dropped.succeeded, "\(dropped.stderr)")
        let other = folder.appendingPathComponent("jar-2")
        #expect(try Self.curl(other, base + "/console/connexion", form: [("csrf", try Self.token(other, base))] + login) == "303")
        #expect(try Self.curl(other, base + "/console/") == "200", "signed in although the journal refused the event")
        #expect(try Self.curl(other, base + "/console/deconnexion", form: [("csrf", try Self.token(other, base, page: "/console/"))]) == "303")
        #expect(try Self.curl(other, base + "/console/") == "303", "signed out")
        await #expect(throws: JournalError.self) { _ = try await log.consoleEvents(since: nil, until: nil, limit: 10) }
    }
}
