import Foundation
import Hummingbird
import Indicators
import Journal
import Observability
import PasserelleCore

/// One certificate's expiry as the console shows it (mapped by the executable from the key
/// material the service loaded, so this target needs no Signing import).
public struct ConsoleCertificate: Sendable, Hashable, Codable {
    public var role: String
    public var notAfter: Date?
    public var daysLeft: Int?
    /// OK, WARNING, CRITICAL, UNKNOWN (the `certs check` states).
    public var state: String

    public init(role: String, notAfter: Date?, daysLeft: Int?, state: String) {
        self.role = role
        self.notAfter = notAfter
        self.daysLeft = daysLeft
        self.state = state
    }
}

/// The console under `/console/` (`[console] enabled`): the overview page (server-rendered
/// HTML, French labels, refreshed by `<meta http-equiv=refresh>`: no script at all), the same
/// data as JSON at `/console/api/overview`, the login (ConsoleAuth.swift) and the Échecs page
/// with its actions (ConsoleFailuresPage.swift).
public struct Console: Sendable {
    let journal: any JournalQueries
    /// The targets switched on: shown even with no transmission yet.
    let targets: [Destination]
    let certificates: @Sendable () -> [ConsoleCertificate]
    let timeZone: TimeZone
    /// Seconds between two refreshes of the overview page.
    let refreshSeconds: Int
    /// The Rapport page's source (nil: the page says it is not available).
    let report: ConsoleReportSource?
    /// Login, sessions, lockout, CSRF (ConsoleAuth.swift).
    let auth: ConsoleAuth
    /// The CLI's queue operations (resend, release, hold, discard) for the Échecs page's actions; nil: read-only.
    let operations: (any OperatorQueue)?

    public init(journal: any JournalQueries, targets: [Destination], timeZone: TimeZone = .current, refreshSeconds: Int = 15,
                report: ConsoleReportSource? = nil, security: ConsoleSecurity = ConsoleSecurity(), operations: (any OperatorQueue)? = nil,
                events: (any ConsoleEventLog)? = nil, certificates: @escaping @Sendable () -> [ConsoleCertificate]) {
        self.journal = journal
        self.report = report
        self.targets = targets
        self.certificates = certificates
        self.timeZone = timeZone
        self.refreshSeconds = refreshSeconds
        self.auth = ConsoleAuth(security: security, events: events)
        self.operations = operations
    }

    /// The console's POST routes: the only paths where the status server takes a body.
    static let formPaths: Set<String> = ["/console/connexion", "/console/deconnexion", "/console/echecs/confirmer", "/console/echecs/executer"]

    /// No script, no inline style, no frame, no form to another site: a page injected with markup
    /// could load nothing. (`default-src 'self'` is what the issue asks; the rest narrows it.)
    static let contentSecurityPolicy = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    func addRoutes(to router: Router<WebRequestContext>, probes: [any ReadinessProbe], probeTimeout: Duration) {
        router.add(middleware: ConsoleAuthMiddleware(auth: auth))  // every console route below: viewer, login, CSRF
        ConsoleLoginPages.addRoutes(to: router, auth: auth)
        addFailuresRoutes(to: router)
        // Every page and API call of the same second shares one computation (one set of
        // journal queries and probes): many open consoles cost what one does.
        let overviews = SharedRefresh { await self.overview(probes: probes, probeTimeout: probeTimeout) }
        let page: @Sendable (Request, WebRequestContext) async throws -> Response = { _, context in
            let overview = await overviews.value()
            return Self.secured(StatusServer.respond(.ok, "text/html; charset=utf-8",
                                                     ConsoleHTML.overview(overview, console: self, viewer: context.viewer)))
        }
        router.get("/console", use: page)  // the router takes "/console/" as the same path
        router.get("/console/api/overview") { _, _ in
            let overview = await overviews.value()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            encoder.keyEncodingStrategy = .convertToSnakeCase
            let body = (try? encoder.encode(overview)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return Self.secured(StatusServer.respond(.ok, "application/json", body))
        }
        router.get("/console/static/console.css") { _, _ in
            Self.secured(StatusServer.respond(.ok, "text/css; charset=utf-8", ConsoleHTML.stylesheet))
        }
        router.get("/console/static/favicon.svg") { _, _ in
            Self.secured(StatusServer.respond(.ok, "image/svg+xml", ConsoleHTML.favicon))
        }
        addQueueRoutes(to: router)
        addDocumentRoutes(to: router)
        addReportRoutes(to: router)
    }

    static func secured(_ response: Response) -> Response {
        var response = response
        response.headers[.contentSecurityPolicy] = contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        response.headers[.init("X-Frame-Options")!] = "DENY"
        return response
    }

    // MARK: - The overview's data

    public struct Overview: Sendable, Codable {
        public struct Count: Sendable, Codable { public var target: String, state: String, count: Int }
        public struct Oldest: Sendable, Codable { public var target: String, since: Date?, ageSeconds: Int? }
        public struct LastError: Sendable, Codable {
            public var target: String, at: Date, transmissionId: Int64, documentId: String, message: String
        }
        public struct Readiness: Sendable, Codable { public var ready: Bool, checks: [ReadinessCheck] }

        public var generatedAt: Date
        public var targets: [String]
        public var counts: [Count]
        public var oldestWaiting: [Oldest]
        public var lastErrors: [LastError]
        public var readiness: Readiness
        public var certificates: [ConsoleCertificate]
        /// Documents in and acknowledged per hour (nil when the journal could not be read).
        public var activity: ConsoleActivity?
        /// Set when the journal could not be read (the rest of the page still shows).
        public var journalError: String?
    }

    func overview(probes: [any ReadinessProbe], probeTimeout: Duration) async -> Overview {
        let now = Date()
        async let checks = StatusServer.readiness(probes, timeout: probeTimeout)
        var counts: [StateCount] = [], errors: [TargetError] = [], oldest: [Overview.Oldest] = []
        var journalError: String?
        var activity: ConsoleActivity?
        do {
            counts = try await journal.stateCounts()
            errors = try await journal.lastErrors()
            activity = try await ConsoleActivity.load(journal, now: now)
        } catch {
            journalError = error.description
        }
        let shown = Destination.allCases.filter { t in targets.contains(t) || counts.contains { $0.target == t } }
        if journalError == nil {
            for target in shown {
                let since = (try? await journal.oldestWaiting(target: target)) ?? nil
                oldest.append(.init(target: target.rawValue, since: since, ageSeconds: since.map { max(0, Int(now.timeIntervalSince($0))) }))
            }
        }
        let results = await checks
        return Overview(
            generatedAt: now, targets: shown.map(\.rawValue),
            counts: counts.map { .init(target: $0.target.rawValue, state: $0.state.rawValue, count: $0.count) },
            oldestWaiting: oldest,
            lastErrors: errors.map { .init(target: $0.target.rawValue, at: $0.at, transmissionId: $0.transmissionID,
                                           documentId: $0.documentID, message: Self.redacted($0.message)) },
            readiness: .init(ready: results.allSatisfy(\.ready), checks: results),
            certificates: certificates(), activity: activity, journalError: journalError)
    }

    /// A peer's error text as `passerelle status` shows it (patient mailbox and NIR masked, one
    /// line), cut short: the journal keeps the full text for `passerelle show`.
    static func redacted(_ text: String) -> String {
        let line = LogRedaction.redact(text).replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        return line.count > 300 ? String(line.prefix(300)) + "…" : line
    }
}
