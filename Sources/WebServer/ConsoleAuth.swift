import Foundation
import Hummingbird
import Journal
import Logging
import NIOCore
import Synchronization

/// The console's login settings (`[console]`), mapped by the executable.
public struct ConsoleSecurity: Sendable {
    /// `name:role:bcrypt-hash` lines; nil: no login (loopback only, every visitor may act).
    public var accountsFile: String?
    public var sessionIdle: Duration
    public var sessionMax: Duration
    /// Failures (per account and per address) within `lockout` that lock for `lockout`.
    public var lockoutAttempts: Int
    public var lockout: Duration
    /// A reverse proxy's address and the header in which it names the authenticated user.
    public var trustedProxy: String?
    public var userHeader: String?
    /// Served over TLS: the session cookie is `Secure`.
    public var secureCookies: Bool

    public init(accountsFile: String? = nil, sessionIdle: Duration = .seconds(30 * 60), sessionMax: Duration = .seconds(10 * 3600),
                lockoutAttempts: Int = 5, lockout: Duration = .seconds(15 * 60), trustedProxy: String? = nil, userHeader: String? = nil,
                secureCookies: Bool = false) {
        self.accountsFile = accountsFile
        self.sessionIdle = sessionIdle
        self.sessionMax = sessionMax
        self.lockoutAttempts = lockoutAttempts
        self.lockout = lockout
        self.trustedProxy = trustedProxy
        self.userHeader = userHeader
        self.secureCookies = secureCookies
    }

    var hasLogin: Bool { accountsFile != nil || proxyHeader != nil }
    /// The user header's name, lower-cased (HTTP field names are case-insensitive).
    var proxyHeader: String? { trustedProxy == nil ? nil : userHeader?.lowercased() }
}

/// A random 256-bit value as 64 hex digits (session ids and CSRF tokens; the system RNG is getrandom).
func randomToken() -> String {
    var rng = SystemRandomNumberGenerator()
    return (0..<4).map { _ in String(format: "%016llx", rng.next() as UInt64) }.joined()
}

/// Compares without stopping at the first difference: how long it takes says nothing of how
/// much of a guessed token was right.
func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var difference = UInt8(truncatingIfNeeded: x.count ^ y.count)
    for i in 0..<max(x.count, y.count) { difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
    return difference == 0 && x.count == y.count
}

/// Server-side sessions: the cookie holds only a random id; who, which role, the CSRF token and
/// both timeouts live here (lost at restart: everyone signs in again, which is the safe side).
final class ConsoleSessions: Sendable {
    struct Session: Sendable {
        var name: String
        var role: ConsoleRole
        var csrf: String
        var created: ContinuousClock.Instant
        var lastSeen: ContinuousClock.Instant
    }

    private let sessions = Mutex<[String: Session]>([:])
    let idle: Duration
    let maximum: Duration
    /// Bounds memory whatever happens: the oldest session goes first past this.
    static let capacity = 10_000

    init(idle: Duration, maximum: Duration) {
        self.idle = idle
        self.maximum = maximum
    }

    func open(name: String, role: ConsoleRole, now: ContinuousClock.Instant = .now) -> (id: String, session: Session) {
        let id = randomToken()
        let session = Session(name: name, role: role, csrf: randomToken(), created: now, lastSeen: now)
        sessions.withLock { all in
            all = all.filter { now - $0.value.lastSeen < idle && now - $0.value.created < maximum }
            if all.count >= Self.capacity, let oldest = all.min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key { all[oldest] = nil }
            all[id] = session
        }
        return (id, session)
    }

    /// The session if still valid (and touches it); an expired one is removed.
    func current(_ id: String, now: ContinuousClock.Instant = .now) -> Session? {
        sessions.withLock { all in
            guard var session = all[id] else { return nil }
            guard now - session.lastSeen < idle, now - session.created < maximum else {
                all[id] = nil
                return nil
            }
            session.lastSeen = now
            all[id] = session
            return session
        }
    }

    func close(_ id: String) { _ = sessions.withLock { $0.removeValue(forKey: id) } }

    /// Ends every session of an account (removed, or its role changed).
    func close(name: String) { sessions.withLock { $0 = $0.filter { $0.value.name != name } } }
}

/// Failed logins per account and per address: `attempts` failures within `window` lock that
/// account or address for `window`. Checks still running count too, so a burst of parallel
/// guesses cannot all pass the check before the first failure is counted. Bounded: at most
/// `capacity` keys are tracked.
final class LoginThrottle: Sendable {
    struct Entry: Sendable {
        var failures: [ContinuousClock.Instant] = []
        var lockedUntil: ContinuousClock.Instant?
        /// Password checks admitted and not finished yet.
        var pending = 0
    }

    enum Admission: Equatable { case admitted, locked(until: ContinuousClock.Instant), busy }

    private let entries = Mutex<[String: Entry]>([:])
    let attempts: Int
    let window: Duration
    static let capacity = 10_000

    init(attempts: Int, window: Duration) {
        self.attempts = attempts
        self.window = window
    }

    /// May a password be checked for all of `keys` (the account, the address)? When admitted,
    /// each key counts one check in flight until ``finish(_:failed:now:)``.
    func admit(_ keys: [String], now: ContinuousClock.Instant = .now) -> Admission {
        entries.withLock { all in
            for key in keys {
                guard var entry = all[key] else { continue }
                if let until = entry.lockedUntil {
                    if until > now { return .locked(until: until) }
                    entry.lockedUntil = nil
                }
                entry.failures = entry.failures.filter { now - $0 < window }
                all[key] = entry
                if entry.failures.count + entry.pending >= attempts { return .busy }
            }
            if all.count + keys.count > Self.capacity {
                all = all.filter { $0.value.pending > 0 || ($0.value.lockedUntil ?? now) > now || $0.value.failures.contains { now - $0 < window } }
                if all.count + keys.count > Self.capacity { all = all.filter { $0.value.pending > 0 } }  // a flood: forget rather than grow
            }
            for key in keys { all[key, default: Entry()].pending += 1 }
            return .admitted
        }
    }

    /// Ends an admitted check: a failure counts (the keys it locks are returned); a success
    /// clears the failures.
    @discardableResult
    func finish(_ keys: [String], failed: Bool, now: ContinuousClock.Instant = .now) -> [String] {
        entries.withLock { all in
            var locked: [String] = []
            for key in keys {
                var entry = all[key] ?? Entry()
                entry.pending = max(0, entry.pending - 1)
                if failed {
                    entry.failures = entry.failures.filter { now - $0 < window } + [now]
                    if entry.failures.count >= attempts && entry.lockedUntil == nil {
                        entry.failures = []
                        entry.lockedUntil = now + window
                        locked.append(key)
                    }
                } else {
                    entry.failures = []
                }
                all[key] = entry.pending == 0 && entry.failures.isEmpty && entry.lockedUntil == nil ? nil : entry
            }
            return locked
        }
    }
}

/// The console's login: accounts, sessions, lockout, CSRF tokens, and the middleware that puts
/// the viewer on each console request.
final class ConsoleAuth: Sendable {
    let security: ConsoleSecurity
    let sessions: ConsoleSessions
    let throttle: LoginThrottle
    /// The journal's login trail (issue 19: every login journaled); nil: log lines only.
    let events: (any ConsoleEventLog)?
    /// Without login (loopback, no accounts) forms still carry a token: another site the
    /// browser visits cannot read it, so it cannot forge a POST to the console on 127.0.0.1.
    let anonymousToken = randomToken()
    private let proxyTokens = Mutex<[String: String]>([:])
    private let cache = Mutex<(stamp: Date?, accounts: ConsoleAccounts)?>(nil)
    let logger = Logger(label: "passerelle.console")
    static let cookieName = "passerelle_console"
    /// Login and action forms are small: anything larger is refused before it is read (413).
    static let maxFormBytes = 32 << 10

    init(security: ConsoleSecurity, events: (any ConsoleEventLog)? = nil) {
        self.security = security
        self.events = events
        sessions = ConsoleSessions(idle: security.sessionIdle, maximum: security.sessionMax)
        throttle = LoginThrottle(attempts: security.lockoutAttempts, window: security.lockout)
    }

    /// The accounts file as it is now: read again when its modification time changed, so
    /// `passerelle console add-user` / `remove-user` apply without a restart.
    func accounts() throws(ConsoleAccountsError) -> ConsoleAccounts {
        guard let path = security.accountsFile else { return ConsoleAccounts() }
        let stamp = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        if let cached = cache.withLock({ $0 }), cached.stamp == stamp, stamp != nil { return cached.accounts }
        let loaded = try ConsoleAccounts.load(path: path)
        cache.withLock { $0 = (stamp, loaded) }
        return loaded
    }

    // MARK: - Who is there

    enum Identity { case anonymous, viewer(ConsoleViewer, sessionID: String?), nobody }

    func identify(_ request: Request, context: WebRequestContext) -> Identity {
        guard security.hasLogin else { return .anonymous }
        // A reverse proxy that authenticated the user names them in its header; believed only
        // from the proxy's own address (anyone else sending the header is ignored).
        if let header = security.proxyHeader, let proxy = security.trustedProxy, context.remoteIP == proxy,
           let name = request.headers.first(where: { $0.name.canonicalName == header })?.value, ConsoleAccounts.isValidName(name) {
            let role = (try? accounts())?.account(named: name)?.role ?? .lecteur
            let token = proxyTokens.withLock { tokens in
                if let t = tokens[name] { return t }
                let t = randomToken()
                tokens[name] = t
                return t
            }
            return .viewer(ConsoleViewer(name: name, role: role, csrfToken: token), sessionID: nil)
        }
        guard let id = request.cookies[Self.cookieName]?.value, let session = sessions.current(id) else { return .nobody }
        // The account may have been removed or changed since the login: the file decides.
        guard let account = (try? accounts())?.account(named: session.name), account.role == session.role else {
            sessions.close(id)
            return .nobody
        }
        return .viewer(ConsoleViewer(name: session.name, role: session.role, csrfToken: session.csrf), sessionID: id)
    }

    func cookie(_ id: String, clear: Bool = false) -> String {
        "\(Self.cookieName)=\(clear ? "" : id); Path=/console; HttpOnly; SameSite=Strict\(security.secureCookies ? "; Secure" : "")\(clear ? "; Max-Age=0" : "")"
    }

    /// One structured line per login, lockout and action (`event=console.*`): account names
    /// and addresses only, never a patient.
    func log(_ event: String, _ level: Logger.Level = .info, _ message: String, _ metadata: Logger.Metadata) {
        var meta = metadata
        meta["event"] = "console.\(event)"
        logger.log(level: level, "\(message)", metadata: meta)
    }

    /// One login event to both trails at once, so neither can be forgotten: the log line
    /// (`event=console.login`, `.lockout` or `.logout`, with user and address) and the journal's
    /// `console_events` row. Awaited (the journal works off the event loop) so the row is written
    /// when the answer leaves; a journal error is logged, never a refused login.
    func trail(_ kind: ConsoleEventKind, _ level: Logger.Level, _ message: String, user: String, address: String,
               _ extra: Logger.Metadata = [:]) async {
        let event = switch kind {
        case .login, .loginRefused: "login"
        case .lockout: "lockout"
        case .logout: "logout"
        }
        log(event, level, message, extra.merging(["user": "\(user)", "address": "\(address)"]) { given, _ in given })
        guard let events else { return }
        do { try await events.record(ConsoleEvent(at: Date(), user: user, address: address, kind: kind)) } catch {
            log("journal_error", .error, "console event not journaled: \(error)", ["kind": "\(kind.rawValue)", "user": "\(user)", "address": "\(address)"])
        }
    }
}

extension WebRequestContext {
    /// The peer's IP address (no port), for the lockout per address and the proxy check.
    var remoteIP: String { channel.remoteAddress?.ipAddress ?? "unknown" }
}

/// The form fields of an `application/x-www-form-urlencoded` body; a name may repeat (checkboxes).
struct ConsoleForm: Sendable {
    var fields: [(String, String)]

    init(_ text: String) {
        fields = text.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            guard let name = parts.first else { return nil }
            return (decode(name), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    subscript(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }
    func all(_ name: String) -> [String] { fields.filter { $0.0 == name }.map(\.1) }

    /// Reads the body (already bounded by the middleware).
    static func read(_ request: Request) async throws -> ConsoleForm {
        var request = request
        let buffer = try await request.collectBody(upTo: ConsoleAuth.maxFormBytes)
        return ConsoleForm(String(buffer: buffer))
    }
}

/// Before every console route: who the viewer is (`context.viewer`), the way to the login page
/// for anyone without a valid session, and on every POST a bounded form body whose `csrf` field
/// must be the session's token (403 otherwise).
struct ConsoleAuthMiddleware: RouterMiddleware {
    typealias Context = WebRequestContext
    let auth: ConsoleAuth

    /// Reachable without a session: the login page and what it loads.
    static func isPublic(_ path: String) -> Bool {
        path == "/console/connexion" || path.hasPrefix("/console/static/")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path == "/console" || path.hasPrefix("/console/") else { return try await next(request, context) }
        var context = context
        var request = request
        let identity = auth.identify(request, context: context)
        if case .viewer(let viewer, _) = identity { context.viewer = viewer }
        if case .nobody = identity, !Self.isPublic(path) {
            // The page asked for comes back after the login (a path of ours only: no open redirect).
            let next = request.method == .get && !path.hasPrefix("/console/api/") ? path : "/console/"
            return ConsoleLoginPages.redirect("/console/connexion?suite=" + (next.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["/"])) ?? ""))
        }
        guard request.method == .post else { return try await next(request, context) }

        // A POST: a small form, from our own pages, with this session's token.
        // Collected once here, bounded: the route reads the same buffer again, not the socket.
        let form: ConsoleForm
        do {
            form = ConsoleForm(String(buffer: try await request.collectBody(upTo: ConsoleAuth.maxFormBytes)))
        } catch {
            return Console.secured(StatusServer.respond(.contentTooLarge, "text/plain; charset=utf-8", "formulaire trop volumineux\n"))
        }
        // The login form has no session yet: it carries the process's token.
        let expected: String = switch identity {
        case .viewer(let viewer, _) where path != "/console/connexion": viewer.csrfToken
        default: auth.anonymousToken
        }
        // Another site's Origin is refused outright; "null" is what a browser sends under our own
        // `Referrer-Policy: no-referrer`, so there the token alone decides.
        let sameOrigin = request.headers[.origin].map { origin in
            origin == "null" || request.head.authority.map { origin.hasSuffix("://" + $0) } ?? false
        } ?? true
        guard sameOrigin, let given = form["csrf"], constantTimeEquals(given, expected) else {
            auth.log("csrf_refused", .warning, "console POST refused: missing or wrong CSRF token",
                     ["path": "\(path)", "address": "\(context.remoteIP)", "user": "\(context.viewer?.name ?? "-")"])
            return ConsoleLoginPages.forbidden(
                "Jeton de sécurité absent ou invalide : la demande ne vient pas d’une page de la console, ou la session a changé. "
                    + "Rechargez la page et recommencez.", viewer: context.viewer)
        }
        return try await next(request, context)
    }
}

/// Login, logout and the shared answers (redirect, 403 page).
enum ConsoleLoginPages {
    static func redirect(_ location: String, cookie: String? = nil) -> Response {
        var extra: HTTPFields = [.location: location]
        if let cookie { extra[.setCookie] = cookie }
        return Console.secured(StatusServer.respond(.seeOther, "text/plain; charset=utf-8", "voir \(location)\n", extra: extra))
    }

    static func forbidden(_ text: String, viewer: ConsoleViewer?) -> Response {
        ConsoleRefusal.forbidden(text).response(section: nil, viewer: viewer)
    }

    static func loginPage(auth: ConsoleAuth, status: HTTPResponse.Status = .ok, message: String? = nil, name: String = "", next: String) -> Response {
        let escape = ConsoleHTML.escape
        var body = "<h2>Connexion</h2>\n"
        if let message { body += "<p class=\"alert\" id=\"login-error\">\(escape(message))</p>\n" }
        body += """
        <form method="post" action="/console/connexion" class="login">
        <input type="hidden" name="csrf" value="\(escape(auth.anonymousToken))">
        <input type="hidden" name="suite" value="\(escape(next))">
        <p><label for="nom">Identifiant</label><input id="nom" name="nom" autocomplete="username" required value="\(escape(name))"></p>
        <p><label for="mot_de_passe">Mot de passe</label><input id="mot_de_passe" name="mot_de_passe" type="password" autocomplete="current-password" required></p>
        <p><button type="submit">Se connecter</button></p>
        </form>

        """
        return Console.secured(StatusServer.respond(status, "text/html; charset=utf-8",
                                                    ConsoleLayout.page(title: "Connexion", section: nil, viewer: nil, body: body)))
    }

    /// `/console/…` paths only, never `//host` nor a scheme: a login never sends anyone elsewhere.
    static func safeNext(_ text: String?) -> String {
        guard let text, text.hasPrefix("/console"), !text.contains("//"), !text.contains("\\"), !text.contains("..") else { return "/console/" }
        return text
    }

    static func addRoutes(to router: Router<WebRequestContext>, auth: ConsoleAuth) {
        router.get("/console/connexion") { request, context in
            let next = safeNext(request.uri.queryParameters["suite"].map(String.init))
            if !auth.security.hasLogin || context.viewer != nil { return redirect(next) }
            return loginPage(auth: auth, next: next)
        }
        router.post("/console/connexion") { request, context in
            guard auth.security.accountsFile != nil else { return redirect("/console/") }
            let form = try await ConsoleForm.read(request)
            let name = (form["nom"] ?? "").trimmingCharacters(in: .whitespaces)
            let password = form["mot_de_passe"] ?? ""
            let next = safeNext(form["suite"])
            let address = context.remoteIP
            let shownName = ConsoleAccounts.isValidName(name) ? name : "(invalide)"
            let keys = ["account:\(shownName)", "address:\(address)"]
            // Locked (this account or this address), or as many checks under way as failures
            // allowed: refused without looking at the password.
            switch auth.throttle.admit(keys) {
            case .admitted: break
            case .locked(let until):
                let minutes = max(1, Int(((until - .now).components.seconds + 59) / 60))
                await auth.trail(.loginRefused, .warning, "console login refused: locked", user: shownName, address: address, ["outcome": "locked"])
                return loginPage(auth: auth, status: .tooManyRequests, message:
                    "Trop d’échecs de connexion : nouvel essai possible dans \(minutes) min.", name: name, next: next)
            case .busy:
                await auth.trail(.loginRefused, .warning, "console login refused: too many attempts at once", user: shownName, address: address,
                                 ["outcome": "busy"])
                return loginPage(auth: auth, status: .tooManyRequests, message:
                    "Trop de tentatives de connexion en même temps : réessayez dans un instant.", name: name, next: next)
            }
            let accounts: ConsoleAccounts
            do { accounts = try auth.accounts() } catch {
                auth.throttle.finish(keys, failed: false)
                auth.log("login", .error, "console login impossible: \(error)", ["outcome": "error", "address": "\(address)"])
                return loginPage(auth: auth, status: .internalServerError, message: "Comptes illisibles : voir le journal du service.", next: next)
            }
            guard ConsoleAccounts.isValidName(name), password.utf8.count <= 1024,
                  let account = await accounts.verify(name: name, password: password) else {
                let locked = auth.throttle.finish(keys, failed: true)
                await auth.trail(.loginRefused, .warning, "console login failed", user: shownName, address: address, ["outcome": "failure"])
                if !locked.isEmpty {
                    await auth.trail(.lockout, .warning, "console login locked", user: shownName, address: address,
                                     ["locked": "\(locked.joined(separator: ","))", "minutes": "\(auth.security.lockout.components.seconds / 60)"])
                }
                return loginPage(auth: auth, status: .unauthorized, message: "Identifiant ou mot de passe incorrect.", name: name, next: next)
            }
            auth.throttle.finish(keys, failed: false)
            if let old = request.cookies[ConsoleAuth.cookieName]?.value { auth.sessions.close(old) }
            let (id, _) = auth.sessions.open(name: account.name, role: account.role)
            await auth.trail(.login, .info, "console login", user: account.name, address: address, ["outcome": "success", "role": "\(account.role.rawValue)"])
            return redirect(next, cookie: auth.cookie(id))
        }
        router.post("/console/deconnexion") { request, context in
            if let id = request.cookies[ConsoleAuth.cookieName]?.value { auth.sessions.close(id) }
            await auth.trail(.logout, .info, "console logout", user: context.viewer?.name ?? "-", address: context.remoteIP)
            return redirect(auth.security.hasLogin ? "/console/connexion" : "/console/", cookie: auth.cookie("", clear: true))
        }
    }
}

extension ConsoleAuth {
    /// Convenience for `log` without a level.
    func log(_ event: String, _ message: String, _ metadata: Logger.Metadata) { log(event, .info, message, metadata) }
}
