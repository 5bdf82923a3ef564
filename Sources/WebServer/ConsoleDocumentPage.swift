import Foundation
import Hummingbird
import Journal
import PasserelleCore

/// Document (`GET /console/document/<id>`): one document's history as `passerelle show` prints
/// it (the same ``DocumentHistory``), with the masked INS only.
extension Console {
    func addDocumentRoutes(to router: Router<WebRequestContext>) {
        router.get("/console/document/:id") { _, context in
            // The router hands the segment as sent: `^` arrives as %5E.
            let raw = context.parameters.get("id") ?? ""
            guard let id = (raw.removingPercentEncoding).flatMap(ConsoleInput.documentID) else {
                return ConsoleRefusal.badRequest("Identifiant de document invalide : lettres, chiffres et . ^ - _ : seulement, 128 caractères au plus.")
                    .response(section: nil, viewer: context.viewer)
            }
            return await self.documentPage(id: id, viewer: context.viewer)
        }
    }

    static func documentPath(_ id: String) -> String {
        "/console/document/" + (id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/", "^"])) ?? id)
    }

    func documentPage(id: String, viewer: ConsoleViewer?) async -> Response {
        let history: DocumentHistory?
        do {
            history = try await journal.documentHistory(id: id)
        } catch {
            let body = "<h2>Document</h2>\n<p class=\"alert\" id=\"journal-error\">Journal illisible : \(ConsoleHTML.escape(error.description))</p>\n"
            return Self.secured(StatusServer.respond(.ok, "text/html; charset=utf-8",
                                                     ConsoleLayout.page(title: "Document", section: nil, viewer: viewer, body: body)))
        }
        guard let history else {
            return ConsoleRefusal.notFound("Aucun document « \(id) » dans le journal.").response(section: .queue, viewer: viewer)
        }
        return Self.secured(StatusServer.respond(.ok, "text/html; charset=utf-8",
                                                 ConsoleLayout.page(title: "Document", section: nil, viewer: viewer,
                                                                    body: ConsoleHTML.document(history, timeZone: timeZone))))
    }
}

extension ConsoleHTML {
    static func document(_ h: DocumentHistory, timeZone: TimeZone) -> String {
        let time = ConsoleInput.formatter(timeZone)
        func at(_ date: Date?) -> String { date.map { escape(time.string(from: $0)) } ?? "—" }
        var html = "<h2>Document <span id=\"document-id\">\(escape(h.documentID))</span></h2>\n"
        for version in h.versions {
            let d = version.document
            html += "<section class=\"version\" id=\"version-\(d.version)\"><h3>Version \(d.version)</h3>\n<table class=\"facts\"><tbody>\n"
            let facts: [(String, String)] = [
                ("Lot (setId)", d.setID), ("Type", "\(d.kind.displayName) (\(d.kind.loincCode))"),
                ("État", documentStateLabel(d.state)), ("Reçu le", d.receivedAt.description),
                ("INS (masqué)", d.maskedINS ?? "aucun"), ("Statut d’identité", d.identityStatus ?? "—"),
                ("FINESS", d.finess), ("Séjour", d.stayID ?? "—"),
            ]
            for (label, value) in facts {
                let shown = label == "Reçu le" ? at(d.receivedAt) : escape(value)
                html += "<tr><th scope=\"row\">\(escape(label))</th><td\(label == "INS (masqué)" ? " id=\"masked-ins-\(d.version)\"" : "")>\(shown)</td></tr>\n"
            }
            if let purged = d.purgedAt {
                html += "<tr><th scope=\"row\">Contenu</th><td>Purgé le \(at(purged)) (rétention) : il ne peut plus être envoyé</td></tr>\n"
            }
            html += "</tbody></table>\n"
            if version.transmissions.isEmpty { html += "<p>Aucune transmission pour cette version.</p>\n" }
            for entry in version.transmissions {
                html += transmission(entry, at: at)
            }
            html += "</section>\n"
        }
        return html
    }

    static func transmission(_ entry: DocumentHistory.TransmissionHistory, at: (Date?) -> String) -> String {
        let t = entry.transmission
        var html = "<article class=\"transmission\" id=\"transmission-\(t.id)\" data-state=\"\(escape(t.state.rawValue))\">"
            + "<h4>Transmission \(t.id) → \(escape(targetLabel(t.target.rawValue))) : \(escape(stateLabel(t.state.rawValue)))</h4>\n<ul>\n"
            + "<li>\(t.attempts) essai\(t.attempts > 1 ? "s" : ""), créée le \(at(t.createdAt)), mise à jour le \(at(t.updatedAt))</li>\n"
        if TransmissionState.waiting.contains(t.state), let next = t.nextAttemptAt { html += "<li>Prochain essai le \(at(next))</li>\n" }
        if let owner = t.leaseOwner { html += "<li>En cours par \(escape(owner)) jusqu’au \(at(t.leaseExpiresAt))</li>\n" }
        if t.needsRecheck { html += "<li>Envoi interrompu : le prochain envoi vérifie auprès du destinataire</li>\n" }
        if let error = t.lastError {
            html += "<li>Dernière erreur le \(at(t.lastErrorAt)) : <span class=\"message\">\(escape(Console.redacted(error)))</span></li>\n"
        }
        html += "</ul>\n"
        if !entry.attempts.isEmpty {
            html += "<table class=\"attempts\"><caption>Essais</caption><thead><tr><th scope=\"col\">Début</th><th scope=\"col\">Fin</th>"
                + "<th scope=\"col\">Résultat</th><th scope=\"col\">Réponse</th></tr></thead><tbody>\n"
            for a in entry.attempts {
                html += "<tr><td>\(at(a.startedAt))</td><td>\(at(a.endedAt))</td><td>\(escape(attemptLabel(a.outcome)))</td>"
                    + "<td class=\"message\">\(escape(a.response.map(Console.redacted) ?? ""))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }
        if !entry.acknowledgements.isEmpty {
            html += "<table class=\"acknowledgements\"><caption>Accusés</caption><tbody>\n"
            for k in entry.acknowledgements {
                html += "<tr><td>\(escape(stateLabel(k.kind.rawValue)))</td><td>\(at(k.receivedAt))</td>"
                    + "<td class=\"message\">\(escape(k.detail.map(Console.redacted) ?? ""))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }
        if !entry.operatorActions.isEmpty {
            html += "<table class=\"operator-actions\"><caption>Actions des opérateurs</caption><tbody>\n"
            for a in entry.operatorActions {
                html += "<tr><td>\(escape(a.action.rawValue))</td><td>\(at(a.at))</td><td>\(escape(a.user))</td>"
                    + "<td class=\"message\">\(escape(a.reason.map(Console.redacted) ?? ""))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }
        return html + "</article>\n"
    }

    static func documentStateLabel(_ state: DocumentState) -> String {
        switch state {
        case .received: "Reçu"
        case .built: "Construit"
        case .queued: "En file"
        }
    }

    static func attemptLabel(_ outcome: String?) -> String {
        switch outcome {
        case nil: "En cours"
        case "sent": "Envoyé"
        case "transient": "Erreur temporaire"
        case "permanent": "Erreur définitive"
        case "interrupted": "Interrompu"
        case let other?: other
        }
    }
}
