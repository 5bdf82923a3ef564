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
        html += historyTable("attempts", "Essais", header: ["Début", "Fin", "Résultat", "Réponse"], entry.attempts.map {
            [at($0.startedAt), at($0.endedAt), escape(attemptLabel($0.outcome)), escape($0.response.map(Console.redacted) ?? "")]
        })
        html += historyTable("acknowledgements", "Accusés", header: ["Accusé", "Reçu le", "Détail"], entry.acknowledgements.map {
            [escape(stateLabel($0.kind.rawValue)), at($0.receivedAt), escape($0.detail.map(Console.redacted) ?? "")]
        })
        html += historyTable("operator-actions", "Actions des opérateurs", header: ["Action", "Le", "Par", "Motif"], entry.operatorActions.map {
            [escape($0.action.rawValue), at($0.at), escape($0.user), escape($0.reason.map(Console.redacted) ?? "")]
        })
        return html + "</article>\n"
    }

    /// One table of a transmission's history (none without rows); cells already escaped, the
    /// last one a peer's or an operator's text.
    static func historyTable(_ css: String, _ caption: String, header: [String], _ rows: [[String]]) -> String {
        guard !rows.isEmpty else { return "" }
        var html = "<table class=\"\(css)\"><caption>\(escape(caption))</caption><thead><tr>"
            + header.map { "<th scope=\"col\">\(escape($0))</th>" }.joined() + "</tr></thead><tbody>\n"
        for row in rows {
            html += "<tr>" + row.dropLast().map { "<td>\($0)</td>" }.joined() + "<td class=\"message\">\(row.last ?? "")</td></tr>\n"
        }
        return html + "</tbody></table>\n"
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
