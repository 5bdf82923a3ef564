import Foundation

/// The console's sections, in the order of the navigation bar.
public enum ConsoleSection: String, Sendable, CaseIterable {
    case overview, queue, failures, report

    var label: String {
        switch self {
        case .overview: "Vue d’ensemble"
        case .queue: "File d’attente"
        case .failures: "Échecs"
        case .report: "Rapport"
        }
    }

    var path: String {
        switch self {
        case .overview: "/console/"
        case .queue: "/console/file"
        case .failures: "/console/echecs"
        case .report: "/console/rapport"
        }
    }
}

/// What a console account may do: `lecteur` reads, `opérateur` also acts (resend, hold, discard).
public enum ConsoleRole: String, Sendable, CaseIterable, Codable {
    case lecteur
    case operateur = "opérateur"

    public var canAct: Bool { self == .operateur }
}

/// Who is looking at a page: set on the request context by the login middleware; nil on a
/// loopback console without accounts (then every action is allowed, as the CLI on the host).
public struct ConsoleViewer: Sendable, Hashable {
    public var name: String
    public var role: ConsoleRole
    /// The session's CSRF token, put in every form this viewer is shown.
    public var csrfToken: String

    public init(name: String, role: ConsoleRole, csrfToken: String) {
        self.name = name
        self.role = role
        self.csrfToken = csrfToken
    }
}

/// The frame every console page shares: head, header with the navigation and the signed-in
/// user, then the page's own `<main>` content. One place, so the pages cannot drift apart.
enum ConsoleLayout {
    static func page(title: String, section: ConsoleSection?, viewer: ConsoleViewer?,
                     refreshSeconds: Int? = nil, body: String) -> String {
        let escape = ConsoleHTML.escape
        var html = """
        <!DOCTYPE html>
        <html lang="fr">
        <head>
        <meta charset="utf-8">

        """
        if let refreshSeconds { html += "<meta http-equiv=\"refresh\" content=\"\(refreshSeconds)\">\n" }
        html += """
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Passerelle — \(escape(title))</title>
        <link rel="stylesheet" href="/console/static/console.css">
        <link rel="icon" href="/console/static/favicon.svg" type="image/svg+xml">
        </head>
        <body>
        <header><h1>Passerelle</h1><nav>
        """
        for s in ConsoleSection.allCases {
            html += "<a href=\"\(s.path)\"\(s == section ? " aria-current=\"page\"" : "")>\(escape(s.label))</a>"
        }
        html += "</nav>"
        if let viewer {
            html += "<div class=\"viewer\"><span id=\"viewer\">\(escape(viewer.name)) (\(escape(viewer.role.rawValue)))</span>"
                + "<form method=\"post\" action=\"/console/deconnexion\"><input type=\"hidden\" name=\"csrf\" value=\"\(escape(viewer.csrfToken))\">"
                + "<button type=\"submit\">Se déconnecter</button></form></div>"
        }
        html += "</header>\n<main>\n" + body + "</main>\n</body>\n</html>\n"
        return html
    }
}
