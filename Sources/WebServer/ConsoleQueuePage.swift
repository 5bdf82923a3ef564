import Foundation
import Hummingbird
import Journal
import PasserelleCore

/// File d'attente (`GET /console/file`): the transmissions, filtered by GET parameters (a plain
/// form), 50 per page by keyset on the id (`apres=<last id>`), so a page costs the same at the
/// millionth row as at the first.
struct QueueQuery: Equatable {
    static let pageSize = 50
    static let parameters: Set<String> = ["etat", "destination", "type", "du", "au", "document", "apres"]

    var state: TransmissionState?
    var target: Destination?
    var kind: DocumentKind?
    /// The days as given (`YYYY-MM-DD`), for the form and the links.
    var fromDay: String?
    var toDay: String?
    var from: Date?
    /// Midnight after `toDay`: the day is included.
    var until: Date?
    var documentID: String?
    var after: Int64?

    init(_ query: ConsoleQuery, timeZone: TimeZone) throws(ConsoleRefusal) {
        state = try query.choice("etat", TransmissionState.self, label: "l’état")
        target = try query.choice("destination", Destination.self, label: "la destination")
        if let text = query["type"] {
            guard let kind = DocumentKind.allCases.first(where: { $0.shortName == text }) else {
                throw .badRequest("Type de document inconnu (paramètre « type »).")
            }
            self.kind = kind
        }
        from = try query.day("du", timeZone: timeZone)
        fromDay = from == nil ? nil : query["du"]
        if let day = try query.day("au", timeZone: timeZone) {
            toDay = query["au"]
            until = Calendar.gregorian(timeZone).date(byAdding: .day, value: 1, to: day)
        }
        if let from, let until, from >= until { throw .badRequest("La date « du » est après la date « au ».") }
        if let text = query["document"] {
            guard let id = ConsoleInput.documentID(text) else {
                throw .badRequest("Identifiant de document invalide : lettres, chiffres et . ^ - _ : seulement, 128 caractères au plus.")
            }
            documentID = id
        }
        after = try query.id("apres")
    }

    /// One more row than a page: its presence says a next page exists.
    var filter: TransmissionFilter {
        TransmissionFilter(documentID: documentID, target: target, states: state.map { [$0] } ?? [], kind: kind, from: from,
                           until: until, afterID: after, order: .id, limit: Self.pageSize + 1)
    }

    /// The query string of these filters, on the page after `after` (nil: the first page).
    func link(after: Int64?) -> String {
        let query = ConsoleInput.queryString([
            ("etat", state?.rawValue), ("destination", target?.rawValue), ("type", kind?.shortName), ("du", fromDay),
            ("au", toDay), ("document", documentID), ("apres", after.map(String.init)),
        ])
        return ConsoleSection.queue.path + (query.isEmpty ? "" : "?" + query)
    }
}

extension Calendar {
    static func gregorian(_ timeZone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar
    }
}

extension Console {
    func addQueueRoutes(to router: Router<WebRequestContext>) {
        router.get("/console/file") { request, context in
            do throws(ConsoleRefusal) {
                let query = try QueueQuery(ConsoleQuery(request.uri.queryParameters, allowed: QueueQuery.parameters), timeZone: self.timeZone)
                return await self.queuePage(query, viewer: context.viewer)
            } catch {
                return error.response(section: .queue, viewer: context.viewer)
            }
        }
    }

    func queuePage(_ query: QueueQuery, viewer: ConsoleViewer?) async -> Response {
        let escape = ConsoleHTML.escape
        var html = "<h2>File d’attente</h2>\n" + Self.queueForm(query)
        do {
            let rows = try await journal.transmissions(matching: query.filter)
            let page = rows.prefix(QueueQuery.pageSize)
            let time = ConsoleInput.formatter(timeZone)
            html += "<section id=\"queue\">\n"
            if page.isEmpty {
                html += "<p id=\"queue-empty\">Aucune transmission ne correspond à ces critères.</p>\n"
            } else {
                html += "<table><thead><tr><th scope=\"col\">Transmission</th><th scope=\"col\">Document</th><th scope=\"col\">Destination</th>"
                    + "<th scope=\"col\">État</th><th scope=\"col\">Essais</th><th scope=\"col\">Prochain essai</th><th scope=\"col\">Dernière erreur</th></tr></thead><tbody>\n"
                for t in page {
                    let next = TransmissionState.waiting.contains(t.state) ? t.nextAttemptAt.map { time.string(from: $0) } ?? "" : ""
                    html += "<tr data-id=\"\(t.id)\" data-state=\"\(escape(t.state.rawValue))\"><td>\(t.id)</td>"
                        + "<td><a href=\"\(escape(Self.documentPath(t.documentID)))\">\(escape(t.documentID))</a>\(t.version > 1 ? " (v\(t.version))" : "")</td>"
                        + "<td>\(escape(ConsoleHTML.targetLabel(t.target.rawValue)))</td>"
                        + "<td class=\"\(t.state == .failed ? "bad" : "")\">\(escape(ConsoleHTML.stateLabel(t.state.rawValue)))</td>"
                        + "<td>\(t.attempts)</td><td>\(escape(next))</td>"
                        + "<td class=\"message\">\(escape(t.lastError.map(Self.redacted) ?? ""))</td></tr>\n"
                }
                html += "</tbody></table>\n"
            }
            html += "<nav class=\"paging\">"
            if query.after != nil { html += "<a id=\"first-page\" href=\"\(escape(query.link(after: nil)))\">Première page</a>" }
            if rows.count > QueueQuery.pageSize, let last = page.last {
                html += "<a id=\"next-page\" rel=\"next\" href=\"\(escape(query.link(after: last.id)))\">Page suivante</a>"
            }
            html += "</nav>\n</section>\n"
        } catch {
            html += "<p class=\"alert\" id=\"journal-error\">Journal illisible : \(escape(error.description))</p>\n"
        }
        return Self.secured(StatusServer.respond(.ok, "text/html; charset=utf-8",
                                                 ConsoleLayout.page(title: "File d’attente", section: .queue, viewer: viewer, body: html)))
    }

    /// The filters as a GET form: the page's URL is the query, so it can be bookmarked and shared.
    static func queueForm(_ q: QueueQuery) -> String {
        let escape = ConsoleHTML.escape
        func options<T: Equatable>(_ all: [T], _ selected: T?, value: (T) -> String, label: (T) -> String) -> String {
            "<option value=\"\">Tous</option>" + all.map {
                "<option value=\"\(escape(value($0)))\"\($0 == selected ? " selected" : "")>\(escape(label($0)))</option>"
            }.joined()
        }
        return """
        <form method="get" action="\(ConsoleSection.queue.path)" class="filters" id="queue-filters">
        <label>État <select name="etat">\(options(TransmissionState.allCases, q.state, value: \.rawValue, label: { ConsoleHTML.stateLabel($0.rawValue) }))</select></label>
        <label>Destination <select name="destination">\(options(Destination.allCases, q.target, value: \.rawValue, label: { ConsoleHTML.targetLabel($0.rawValue) }))</select></label>
        <label>Type <select name="type">\(options(DocumentKind.allCases, q.kind, value: \.shortName, label: \.displayName))</select></label>
        <label>Du <input type="date" name="du" value="\(escape(q.fromDay ?? ""))"></label>
        <label>Au <input type="date" name="au" value="\(escape(q.toDay ?? ""))"></label>
        <label>Document <input type="text" name="document" maxlength="\(ConsoleQuery.maxValueLength)" value="\(escape(q.documentID ?? ""))"></label>
        <button type="submit">Filtrer</button>
        </form>

        """
    }
}
