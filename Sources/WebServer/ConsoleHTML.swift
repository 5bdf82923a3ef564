import Foundation
import Journal
import PasserelleCore

/// The console's pages as text: every value from the journal or a probe goes through
/// ``escape(_:)``; labels are French (the people who run it read the ANS guides in French).
enum ConsoleHTML {
    /// The five predefined characters as entities, as the report's HTML does (`&#39;` for HTML parsers).
    static func escape(_ text: String) -> String { XMLText.escape(text, apostrophe: "&#39;") }

    static func stateLabel(_ raw: String) -> String {
        switch TransmissionState(rawValue: raw) {
        case .queued: "En file"
        case .sending: "En cours d’envoi"
        case .retryWait: "Nouvel essai prévu"
        case .sent: "Envoyé"
        case .acknowledged: "Accusé reçu"
        case .delivered: "Distribué"
        case .read: "Lu"
        case .failed: "En échec"
        case .held: "Retenu"
        case .discarded: "Abandonné"
        case nil: raw
        }
    }

    static func targetLabel(_ raw: String) -> String {
        switch Destination(rawValue: raw) {
        case .dmp: "DMP"
        case .mssantePS: "MSSanté (professionnels)"
        case .mssantePatient: "MSSanté (patient)"
        case nil: raw
        }
    }

    static func roleLabel(_ raw: String) -> String {
        switch raw {
        case "authentication": "Authentification"
        case "signing": "Signature"
        default: raw
        }
    }

    static func age(_ seconds: Int) -> String {
        switch seconds {
        case ..<60: "\(seconds) s"
        case ..<3600: "\(seconds / 60) min"
        case ..<86_400: "\(seconds / 3600) h \(seconds % 3600 / 60) min"
        default: "\(seconds / 86_400) j \(seconds % 86_400 / 3600) h"
        }
    }

    static func overview(_ o: Console.Overview, console: Console, viewer: ConsoleViewer?) -> String {
        let time = ConsoleInput.formatter(console.timeZone)
        let day = ConsoleInput.formatter(console.timeZone, "dd/MM/yyyy")

        var html = """
        <h2>Vue d’ensemble</h2>
        <p class="generated">Mis à jour le <time id="generated-at">\(escape(time.string(from: o.generatedAt)))</time> (actualisation toutes les \(console.refreshSeconds) s)</p>

        """
        if let error = o.journalError {
            html += "<p class=\"alert\" id=\"journal-error\">Journal illisible : \(escape(error))</p>\n"
        }

        // Transmissions per state × target.
        html += "<section id=\"transmissions\"><h3>Transmissions par état et destination</h3>\n"
        if o.targets.isEmpty {
            html += "<p>Aucune transmission dans le journal et aucune destination activée.</p>\n"
        } else {
            html += "<table><thead><tr><th scope=\"col\">État</th>"
            for t in o.targets { html += "<th scope=\"col\">\(escape(targetLabel(t)))</th>" }
            html += "</tr></thead><tbody>\n"
            for state in TransmissionState.allCases {
                html += "<tr><th scope=\"row\">\(escape(stateLabel(state.rawValue)))</th>"
                for t in o.targets {
                    let n = o.counts.first { $0.target == t && $0.state == state.rawValue }?.count ?? 0
                    html += "<td data-target=\"\(escape(t))\" data-state=\"\(escape(state.rawValue))\"\(n == 0 ? " class=\"zero\"" : (state == .failed ? " class=\"bad\"" : ""))>\(n)</td>"
                }
                html += "</tr>\n"
            }
            html += "</tbody></table>\n"
        }
        html += "</section>\n"

        if let chart = o.activity { html += activity(chart, timeZone: console.timeZone) }

        // The oldest waiting transmission per target.
        html += "<section id=\"oldest\"><h3>Plus ancienne transmission en attente</h3>\n<table><tbody>\n"
        for oldest in o.oldestWaiting {
            let text = oldest.since.map { "depuis le \(time.string(from: $0)) (\(age(oldest.ageSeconds ?? 0)))" } ?? "aucune"
            html += "<tr><th scope=\"row\">\(escape(targetLabel(oldest.target)))</th><td data-target=\"\(escape(oldest.target))\">\(escape(text))</td></tr>\n"
        }
        html += "</tbody></table></section>\n"

        // The last error per target.
        html += "<section id=\"errors\"><h3>Dernière erreur par destination</h3>\n"
        if o.lastErrors.isEmpty {
            html += "<p>Aucune erreur enregistrée.</p>\n"
        } else {
            html += "<table><thead><tr><th scope=\"col\">Destination</th><th scope=\"col\">Date</th><th scope=\"col\">Transmission</th><th scope=\"col\">Document</th><th scope=\"col\">Erreur</th></tr></thead><tbody>\n"
            for e in o.lastErrors {
                html += "<tr data-target=\"\(escape(e.target))\"><td>\(escape(targetLabel(e.target)))</td><td>\(escape(time.string(from: e.at)))</td>"
                    + "<td>\(e.transmissionId)</td><td><a href=\"\(escape(Console.documentPath(e.documentId)))\">\(escape(e.documentId))</a></td>"
                    + "<td class=\"message\">\(escape(e.message))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }
        html += "</section>\n"

        // Journal and readiness: the /ready probes.
        html += "<section id=\"readiness\"><h3>Journal et disponibilité</h3>\n"
        html += "<p id=\"ready\" class=\"\(o.readiness.ready ? "ok" : "bad")\">\(o.readiness.ready ? "Prête" : "Pas prête")</p>\n<table><tbody>\n"
        for check in o.readiness.checks {
            html += "<tr><th scope=\"row\">\(escape(check.name))</th><td class=\"\(check.ready ? "ok" : "bad")\">\(check.ready ? "OK" : "Échec")</td>"
                + "<td>\(escape(check.detail))</td></tr>\n"
        }
        html += "</tbody></table></section>\n"

        // Certificate expiry.
        html += "<section id=\"certificates\"><h3>Certificats</h3>\n"
        if o.certificates.isEmpty {
            html += "<p>Aucun certificat lu.</p>\n"
        } else {
            html += "<table><thead><tr><th scope=\"col\">Rôle</th><th scope=\"col\">Expire le</th><th scope=\"col\">Jours restants</th><th scope=\"col\">État</th></tr></thead><tbody>\n"
            for c in o.certificates {
                let css = c.state == "OK" ? "ok" : (c.state == "WARNING" ? "warn" : "bad")
                html += "<tr><th scope=\"row\">\(escape(roleLabel(c.role)))</th><td>\(escape(c.notAfter.map { day.string(from: $0) } ?? "—"))</td>"
                    + "<td>\(c.daysLeft.map(String.init) ?? "—")</td><td class=\"\(css)\">\(escape(c.state))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }
        html += "</section>\n"
        return ConsoleLayout.page(title: "Vue d’ensemble", section: .overview, viewer: viewer,
                                  refreshSeconds: console.refreshSeconds, body: html)
    }

    /// Else the browser asks for /favicon.ico and logs a 404 on every refresh.
    static let favicon = """
    <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#000091"/>\
    <path d="M3 11h10M5 11V6h6v5" stroke="#fff" stroke-width="1.5" fill="none"/></svg>

    """

    static let stylesheet = """
    body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #f6f6f6; }
    header { display: flex; gap: 2rem; align-items: baseline; background: #000091; color: #fff; padding: .5rem 1.5rem; }
    header h1 { font-size: 1.2rem; margin: 0; }
    header a { color: #fff; }
    header nav { display: flex; gap: 1rem; }
    header nav a[aria-current] { font-weight: 700; text-decoration: none; border-bottom: 2px solid #fff; }
    header .viewer { margin-left: auto; display: flex; gap: .75rem; align-items: baseline; }
    header .viewer form { margin: 0; }
    main { padding: 1rem 1.5rem; }
    section { background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: .5rem 1rem 1rem; margin-bottom: 1rem; }
    table { border-collapse: collapse; }
    th, td { text-align: left; padding: .25rem .75rem; border-bottom: 1px solid #eee; }
    td[data-state] { text-align: right; font-variant-numeric: tabular-nums; }
    .zero { color: #999; }
    .ok { color: #18753c; font-weight: 600; }
    .warn { color: #b34000; font-weight: 600; }
    .bad { color: #ce0500; font-weight: 600; }
    .alert { background: #ffe9e9; border: 1px solid #ce0500; padding: .5rem; }
    .message { max-width: 40rem; overflow-wrap: anywhere; }
    .generated { color: #666; font-size: .9rem; }
    .filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; margin-bottom: 1rem; }
    .filters label { display: flex; flex-direction: column; font-size: .9rem; }
    .paging { display: flex; gap: 1.5rem; margin-top: .75rem; }
    .transmission { border-top: 1px solid #ddd; padding-top: .5rem; margin-top: .5rem; }
    caption { text-align: left; font-weight: 600; padding: .25rem 0; }
    svg.chart { max-width: 100%; height: auto; background: #fafafa; border: 1px solid #eee; }
    svg.chart text { font-size: 10px; fill: #555; }
    svg.chart line.axis { stroke: #999; }
    rect.bar.received, .key.received { fill: #000091; background: #000091; }
    rect.bar.acknowledged, .key.acknowledged { fill: #18753c; background: #18753c; }
    .key { display: inline-block; width: .8rem; height: .8rem; vertical-align: middle; }
    .notice { background: #e8f5ec; border: 1px solid #18753c; padding: .5rem; }
    form.login { background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: 1rem; max-width: 24rem; }
    form.login label { display: block; font-weight: 600; margin-bottom: .25rem; }
    form.login input { width: 100%; box-sizing: border-box; padding: .35rem; }
    .failure-group h3 { font-size: 1rem; }
    .failure-group .cause { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
    .actions button, #confirm { margin-right: .5rem; padding: .35rem .9rem; }

    """
}
