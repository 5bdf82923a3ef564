import Foundation
import Hummingbird
import Journal
import PasserelleCore

/// The Échecs page (`/console/echecs`): failed, held and retrying transmissions grouped by
/// cause, and the operator's actions on one or many — Renvoyer (resend a failed one, release a
/// held one), Retenir (hold), Abandonner (discard, with a reason) — each shown for confirmation
/// first, then run through the same ``OperatorQueue`` operations as `passerelle resend`, `release`,
/// `hold` and `discard` (one audited transaction each, user `console: NAME`).
extension Console {
    /// What the page lists: dead letters, held ones, and those waiting for another try after an error.
    static let failureStates: Set<TransmissionState> = [.failed, .held, .retryWait]
    /// A page shows at most this many; the rest is said, and `passerelle queue` lists them all.
    static let failureLimit = 500

    enum FailureAction: String, CaseIterable {
        case renvoyer, retenir, abandonner

        var label: String {
            switch self {
            case .renvoyer: "Renvoyer"
            case .retenir: "Retenir"
            case .abandonner: "Abandonner"
            }
        }

        /// What happens to a transmission in `state`; nil: left alone (and why, for the page).
        func effect(_ state: TransmissionState) -> (applies: Bool, text: String) {
            switch (self, state) {
            case (.renvoyer, .failed): (true, "remise en file : nouvel envoi avec un nouveau délai")
            case (.renvoyer, .held): (true, "libérée : remise en file, envoyée tout de suite")
            case (.retenir, .queued), (.retenir, .retryWait): (true, "retenue : plus aucun envoi jusqu’à sa libération")
            case (.abandonner, .failed), (.abandonner, .held): (true, "abandonnée : définitif, jamais renvoyée")
            default: (false, "ignorée : \(ConsoleHTML.stateLabel(state.rawValue).lowercased()), action sans objet")
            }
        }
    }

    /// A peer's error text with what varies from one document to the next (numbers, ids,
    /// dates) made uniform, so the same cause groups together; masked as everywhere else.
    static func cause(_ error: String?) -> String {
        guard let error, !error.isEmpty else { return "(sans message d’erreur)" }
        var text = redacted(error)
        for pattern in [#"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"#, #"\d+(\.\d+)+"#, #"\d+"#] {
            text = text.replacingOccurrences(of: pattern, with: "#", options: .regularExpression)
        }
        return text.count > 160 ? String(text.prefix(160)) + "…" : text
    }

    /// French plural: 0 and 1 are singular.
    static func plural(_ n: Int) -> String { n > 1 ? "s" : "" }

    struct FailureGroup {
        var cause: String
        var transmissions: [Transmission]
    }

    func failureGroups() async throws(JournalError) -> (groups: [FailureGroup], truncated: Bool) {
        let listed = try await journal.transmissions(matching: TransmissionFilter(states: Self.failureStates, limit: Self.failureLimit + 1))
        // A transmission waiting its first try is no failure: retry-wait ones only once they erred.
        let failures = listed.prefix(Self.failureLimit).filter { $0.state != .retryWait || $0.lastError != nil }
        var order: [String] = []
        var byCause: [String: [Transmission]] = [:]
        for t in failures {
            let cause = Self.cause(t.lastError)
            if byCause[cause] == nil { order.append(cause) }
            byCause[cause, default: []].append(t)
        }
        let groups = order.map { FailureGroup(cause: $0, transmissions: byCause[$0]!.sorted { $0.id < $1.id }) }.sorted { $0.transmissions.count > $1.transmissions.count }
        return (groups, listed.count > Self.failureLimit)
    }

    /// May this viewer act? nil: yes; else the 403 page (a `lecteur` reads only).
    func refuseReader(_ context: WebRequestContext, _ path: String) -> Response? {
        guard let viewer = context.viewer, !viewer.role.canAct else { return nil }
        auth.log("action_refused", .warning, "console action refused: role lecteur", ["user": "\(viewer.name)", "path": "\(path)", "address": "\(context.remoteIP)"])
        return ConsoleLoginPages.forbidden("Votre rôle (lecteur) permet de consulter, pas d’agir : demandez un compte opérateur.", viewer: viewer)
    }

    func csrfToken(_ context: WebRequestContext) -> String { context.viewer?.csrfToken ?? auth.anonymousToken }

    func html(_ status: HTTPResponse.Status = .ok, title: String, _ body: String, _ context: WebRequestContext) -> Response {
        Self.secured(StatusServer.respond(status, "text/html; charset=utf-8",
                                          ConsoleLayout.page(title: title, section: .failures, viewer: context.viewer, body: body)))
    }

    func addFailuresRoutes(to router: Router<WebRequestContext>) {
        router.get("/console/echecs") { request, context in try await self.failuresPage(request, context) }
        router.post("/console/echecs/confirmer") { request, context in try await self.confirmPage(request, context) }
        router.post("/console/echecs/executer") { request, context in try await self.execute(request, context) }
    }

    // MARK: - The list

    func failuresPage(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let escape = ConsoleHTML.escape
        let canAct = operations != nil && (context.viewer?.role.canAct ?? true)
        var body = "<h2>Échecs</h2>\n"
        if let done = request.uri.queryParameters["fait"].flatMap({ FailureAction(rawValue: String($0)) }),
           let count = request.uri.queryParameters["nombre"].flatMap({ Int($0) }) {
            let s = Self.plural(count)
            body += "<p class=\"notice\" id=\"done\">\(escape(done.label)) : \(count) transmission\(s) traitée\(s), consignée\(s) dans le journal des actions.</p>\n"
        }
        let groups: [FailureGroup], truncated: Bool
        do { (groups, truncated) = try await failureGroups() } catch {
            return html(.serviceUnavailable, title: "Échecs", body + "<p class=\"alert\">Journal illisible : \(escape(error.description))</p>\n", context)
        }
        if groups.isEmpty {
            return html(title: "Échecs", body + "<p id=\"no-failures\">Aucune transmission en échec, retenue ou en attente d’un nouvel essai.</p>\n", context)
        }
        let total = groups.reduce(0) { $0 + $1.transmissions.count }
        body += "<p>\(total) transmission\(Self.plural(total)) en \(groups.count) cause\(Self.plural(groups.count))\(truncated ? " (les \(Self.failureLimit) plus anciennes ; <code>passerelle queue</code> les liste toutes)" : "").</p>\n"
        if canAct {
            body += "<form method=\"post\" action=\"/console/echecs/confirmer\" id=\"failures-form\">\n<input type=\"hidden\" name=\"csrf\" value=\"\(escape(csrfToken(context)))\">\n"
        }
        let time = ConsoleInput.formatter(timeZone, "dd/MM/yyyy HH:mm")
        for (index, group) in groups.enumerated() {
            body += "<section class=\"failure-group\" id=\"groupe-\(index + 1)\"><h3>"
            if canAct {
                body += "<label><input type=\"checkbox\" name=\"groupe\" value=\"\(escape(group.cause))\"> </label>"
            }
            body += "<span class=\"cause\">\(escape(group.cause))</span> <span class=\"count\">(\(group.transmissions.count))</span></h3>\n"
            body += "<table><thead><tr>\(canAct ? "<th scope=\"col\">Choisir</th>" : "")<th scope=\"col\">Transmission</th><th scope=\"col\">État</th><th scope=\"col\">Destination</th>"
                + "<th scope=\"col\">Document</th><th scope=\"col\">Essais</th><th scope=\"col\">Dernière erreur</th></tr></thead><tbody>\n"
            for t in group.transmissions {
                body += "<tr data-transmission=\"\(t.id)\" data-state=\"\(escape(t.state.rawValue))\">"
                if canAct { body += "<td><input type=\"checkbox\" name=\"id\" value=\"\(t.id)\" aria-label=\"transmission \(t.id)\"></td>" }
                body += "<td>\(t.id)</td><td>\(escape(ConsoleHTML.stateLabel(t.state.rawValue)))</td><td>\(escape(ConsoleHTML.targetLabel(t.target.rawValue)))</td>"
                    + "<td>\(escape(t.documentID)) v\(t.version)</td><td>\(t.attempts)</td><td>\(escape(t.lastErrorAt.map { time.string(from: $0) } ?? "—"))</td></tr>\n"
            }
            body += "</tbody></table></section>\n"
        }
        if canAct {
            body += "<p class=\"actions\">"
            for action in FailureAction.allCases {
                body += "<button type=\"submit\" name=\"action\" value=\"\(action.rawValue)\">\(action.label)</button> "
            }
            body += "</p>\n</form>\n"
        }
        return html(title: "Échecs", body, context)
    }

    // MARK: - Confirmation and execution

    /// The transmissions a form names: its `id` boxes and every member of its `groupe` boxes.
    func selection(_ form: ConsoleForm) async throws(JournalError) -> [Transmission] {
        var ids = Set(form.all("id").prefix(Self.failureLimit).compactMap(Int64.init))
        let causes = Set(form.all("groupe"))
        if !causes.isEmpty {
            for group in try await failureGroups().groups where causes.contains(group.cause) { ids.formUnion(group.transmissions.map(\.id)) }
        }
        guard !ids.isEmpty else { return [] }
        return try await journal.transmissions(matching: TransmissionFilter(transmissionIDs: ids.sorted()))
    }

    func confirmPage(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        if let refused = refuseReader(context, "/console/echecs/confirmer") { return refused }
        let escape = ConsoleHTML.escape
        let form = try await ConsoleForm.read(request)
        guard let action = form["action"].flatMap(FailureAction.init(rawValue:)) else {
            return html(.badRequest, title: "Échecs", "<h2>Échecs</h2>\n<p class=\"alert\">Action inconnue : choisissez Renvoyer, Retenir ou Abandonner.</p>\n", context)
        }
        let selected: [Transmission]
        do { selected = try await selection(form) } catch {
            return html(.serviceUnavailable, title: "Échecs", "<p class=\"alert\">Journal illisible : \(escape(error.description))</p>\n", context)
        }
        var body = "<h2>Confirmer : \(escape(action.label))</h2>\n"
        guard !selected.isEmpty else {
            return html(.badRequest, title: "Confirmation", body + "<p class=\"alert\" id=\"nothing-selected\">Aucune transmission choisie : cochez-en au moins une.</p>\n<p><a href=\"/console/echecs\">Retour aux échecs</a></p>\n", context)
        }
        let applying = selected.filter { action.effect($0.state).applies }
        body += "<p id=\"summary\">\(applying.count) transmission\(Self.plural(applying.count)) sur \(selected.count) \(applying.count > 1 ? "seront traitées" : "sera traitée") ; l’action est consignée dans le journal des actions\(context.viewer == nil ? "" : " à votre nom").</p>\n"
        body += "<table id=\"effects\"><thead><tr><th scope=\"col\">Transmission</th><th scope=\"col\">Destination</th><th scope=\"col\">Document</th><th scope=\"col\">État</th><th scope=\"col\">Ce qui sera fait</th></tr></thead><tbody>\n"
        for t in selected {
            let effect = action.effect(t.state)
            body += "<tr data-transmission=\"\(t.id)\"><td>\(t.id)</td><td>\(escape(ConsoleHTML.targetLabel(t.target.rawValue)))</td><td>\(escape(t.documentID)) v\(t.version)</td>"
                + "<td>\(escape(ConsoleHTML.stateLabel(t.state.rawValue)))</td><td class=\"\(effect.applies ? "ok" : "zero")\">\(escape(effect.text))</td></tr>\n"
        }
        body += "</tbody></table>\n"
        if applying.isEmpty {
            return html(title: "Confirmation", body + "<p><a href=\"/console/echecs\">Retour aux échecs</a></p>\n", context)
        }
        body += "<form method=\"post\" action=\"/console/echecs/executer\" id=\"confirm-form\">\n<input type=\"hidden\" name=\"csrf\" value=\"\(escape(csrfToken(context)))\">\n"
            + "<input type=\"hidden\" name=\"action\" value=\"\(action.rawValue)\">\n"
        for t in applying { body += "<input type=\"hidden\" name=\"id\" value=\"\(t.id)\">\n" }
        if action == .abandonner {
            body += "<p><label for=\"motif\">Motif (obligatoire, conservé dans le journal des actions)</label> "
                + "<input id=\"motif\" name=\"motif\" required maxlength=\"500\" size=\"60\"></p>\n"
        }
        body += "<p><button type=\"submit\" id=\"confirm\">Confirmer : \(escape(action.label))</button> <a href=\"/console/echecs\">Annuler</a></p>\n</form>\n"
        return html(title: "Confirmation", body, context)
    }

    func execute(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        if let refused = refuseReader(context, "/console/echecs/executer") { return refused }
        let escape = ConsoleHTML.escape
        guard let operations else {
            return html(.serviceUnavailable, title: "Échecs", "<p class=\"alert\">Actions indisponibles : journal ouvert en lecture seule.</p>\n", context)
        }
        let form = try await ConsoleForm.read(request)
        guard let action = form["action"].flatMap(FailureAction.init(rawValue:)) else {
            return html(.badRequest, title: "Échecs", "<p class=\"alert\">Action inconnue.</p>\n", context)
        }
        let ids = Array(Set(form.all("id").prefix(Self.failureLimit).compactMap(Int64.init))).sorted()
        let reason = (form["motif"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !ids.isEmpty else {
            return html(.badRequest, title: "Échecs", "<p class=\"alert\">Aucune transmission choisie.</p>\n<p><a href=\"/console/echecs\">Retour aux échecs</a></p>\n", context)
        }
        if action == .abandonner && (reason.isEmpty || reason.count > 500 || reason.contains(where: \.isNewline)) {
            return html(.badRequest, title: "Échecs", "<p class=\"alert\" id=\"reason-required\">Un abandon demande un motif (une ligne, 500 caractères au plus).</p>\n<p><a href=\"/console/echecs\">Retour aux échecs</a></p>\n", context)
        }
        let user = "console: \(context.viewer?.name ?? "loopback")"
        let filter = TransmissionFilter(transmissionIDs: ids)
        let request = OperatorRequest(user: user, selection: filter.selectionText, reason: action == .abandonner ? reason : nil)
        let now = Date()
        var changed: [Transmission] = []
        do {
            switch action {
            case .renvoyer:
                // The journal's resend leaves alone, in its own transaction, a dead letter whose
                // content retention purged (as for `passerelle resend`), and audits nothing when
                // nothing changed.
                changed += try await operations.resend(TransmissionFilter(transmissionIDs: ids, states: [.failed]),
                                                       includingSucceeded: false, request, now: now).transmissions
                changed += try await operations.release(TransmissionFilter(transmissionIDs: ids, states: [.held]), request, now: now).transmissions
            case .retenir:
                changed = try await operations.hold(filter, request, now: now).transmissions
            case .abandonner:
                changed = try await operations.discard(filter, request, now: now).transmissions
            }
        } catch {
            auth.log("action", .error, "console action failed", ["user": "\(user)", "action": "\(action.rawValue)", "error": "\(error)"])
            return html(.serviceUnavailable, title: "Échecs", "<p class=\"alert\">L’action n’a pas pu être faite : \(escape(error.description))</p>\n", context)
        }
        auth.log("action", "console action", ["user": "\(user)", "action": "\(action.rawValue)", "count": "\(changed.count)",
                                              "transmissions": "\(changed.map { String($0.id) }.joined(separator: ","))",
                                              "address": "\(context.remoteIP)"])
        // Post/redirect/get: a reload of the result page does not act twice.
        return ConsoleLoginPages.redirect("/console/echecs?fait=\(action.rawValue)&nombre=\(changed.count)")
    }
}
