import Foundation
import Hummingbird
import Indicators
import Journal
import PasserelleCore

/// Where the console's Rapport page reads the monthly usage report: the journal's counts and
/// the `[report]` settings, as `passerelle report` uses them.
public struct ConsoleReportSource: Sendable {
    public var store: any UsageCounting
    public var settings: PasserelleConfiguration.Report
    /// The structure's name, the report's title.
    public var title: String

    public init(store: any UsageCounting, settings: PasserelleConfiguration.Report, title: String) {
        self.store = store
        self.settings = settings
        self.title = title
    }
}

/// Rapport (`GET /console/rapport?mois=YYYY-MM&finess=…`): the monthly report's tables under the
/// console's frame, and the report itself to download as `passerelle report` writes it
/// (`/console/rapport/telechargement?…&format=csv|json|html`).
struct ReportQuery {
    static let parameters: Set<String> = ["mois", "finess"]
    static let downloadParameters = parameters.union(["format"])
    static let formats: [ReportFormat] = [.csv, .json, .html]

    var month: String
    var finess: String?
    var period: ReportPeriod

    init(_ query: ConsoleQuery, settings: PasserelleConfiguration.Report, now: Date = Date()) throws(ConsoleRefusal) {
        let zone = TimeZone(identifier: settings.timeZone) ?? .current
        month = query["mois"] ?? ConsoleInput.formatter(zone, "yyyy-MM").string(from: now)
        do { period = try ReportPeriod.month(month, timeZone: settings.timeZone) } catch {
            throw .badRequest("Mois invalide (paramètre « mois ») : attendu AAAA-MM, par exemple 2026-10.")
        }
        if let text = query["finess"] {
            do { finess = try FINESS(text.uppercased()).value } catch {
                throw .badRequest("FINESS invalide (paramètre « finess ») : 9 caractères avec sa clé.")
            }
        }
    }

    func link(_ path: String, format: ReportFormat? = nil) -> String {
        path + "?" + ConsoleInput.queryString([("mois", month), ("finess", finess), ("format", format?.rawValue)])
    }
}

extension Console {
    func addReportRoutes(to router: Router<WebRequestContext>) {
        router.get("/console/rapport") { request, context in
            guard let report = self.report else {
                return ConsoleRefusal.notFound("Le rapport n’est pas disponible sur cette console.").response(section: .report, viewer: context.viewer)
            }
            do throws(ConsoleRefusal) {
                let query = try ReportQuery(ConsoleQuery(request.uri.queryParameters, allowed: ReportQuery.parameters), settings: report.settings)
                return await self.reportPage(query, source: report, viewer: context.viewer)
            } catch {
                return error.response(section: .report, viewer: context.viewer)
            }
        }
        router.get("/console/rapport/telechargement") { request, context in
            guard let report = self.report else {
                return ConsoleRefusal.notFound("Le rapport n’est pas disponible sur cette console.").response(section: .report, viewer: context.viewer)
            }
            do throws(ConsoleRefusal) {
                let parameters = try ConsoleQuery(request.uri.queryParameters, allowed: ReportQuery.downloadParameters)
                let query = try ReportQuery(parameters, settings: report.settings)
                guard let format = try parameters.choice("format", ReportFormat.self, label: "le format"),
                      ReportQuery.formats.contains(format) else {
                    throw .badRequest("Format attendu (paramètre « format ») : csv, json ou html.")
                }
                return try await self.reportDownload(query, format: format, source: report)
            } catch {
                return error.response(section: .report, viewer: context.viewer)
            }
        }
        router.get("/console/static/rapport.css") { _, _ in
            // The report's own stylesheet, nested under .rapport so it styles only the report.
            Self.secured(StatusServer.respond(.ok, "text/css; charset=utf-8", ".rapport {\n\(UsageReporter.htmlStyle)\n}\n"))
        }
    }

    func reportPage(_ query: ReportQuery, source: ConsoleReportSource, viewer: ConsoleViewer?) async -> Response {
        let escape = ConsoleHTML.escape
        var html = """
        <h2>Rapport d’usage</h2>
        <form method="get" action="\(ConsoleSection.report.path)" class="filters" id="report-filters">
        <label>Mois <input type="month" name="mois" value="\(escape(query.month))" required></label>
        <label>FINESS <input type="text" name="finess" maxlength="9" value="\(escape(query.finess ?? ""))" placeholder="toute la structure"></label>
        <button type="submit">Afficher</button>
        </form>
        <p id="downloads">Télécharger : 
        """
        html += ReportQuery.formats.map {
            "<a download href=\"\(escape(query.link("/console/rapport/telechargement", format: $0)))\" id=\"download-\($0.rawValue)\">\($0.rawValue.uppercased())</a>"
        }.joined(separator: " · ") + " (le HTML ajoute l’évolution sur 12 mois)</p>\n"
        do {
            // No 12-month trend here: on a journal of a million rows it takes seconds (measured
            // 6 s against 0.8 s without, 500,000 documents); the HTML download has it.
            let report = try await UsageReporter.make(store: source.store, period: query.period, finess: query.finess.map { [$0] } ?? [],
                                                      settings: source.settings, trendMonths: 0, title: source.title)
            // The report's CSS is a file: the console's Content-Security-Policy allows no inline style.
            html += "<link rel=\"stylesheet\" href=\"/console/static/rapport.css\">\n<section class=\"rapport\" id=\"report\">\n"
                + UsageReporter.htmlFragment(report) + "</section>\n"
        } catch {
            html += "<p class=\"alert\" id=\"journal-error\">Rapport impossible : \(escape(error.description))</p>\n"
        }
        return Self.secured(StatusServer.respond(.ok, "text/html; charset=utf-8",
                                                 ConsoleLayout.page(title: "Rapport", section: .report, viewer: viewer, body: html)))
    }

    func reportDownload(_ query: ReportQuery, format: ReportFormat, source: ConsoleReportSource) async throws(ConsoleRefusal) -> Response {
        let text: String
        do {
            text = try await UsageReporter.rendered(store: source.store, period: query.period, finess: query.finess.map { [$0] } ?? [],
                                                    settings: source.settings, format: format, title: source.title)
        } catch {
            throw ConsoleRefusal(status: .serviceUnavailable, message: "Rapport impossible : \(error)")
        }
        let type = switch format {
        case .csv: "text/csv; charset=utf-8"
        case .json: "application/json"
        default: "text/html; charset=utf-8"
        }
        let name = "rapport-\(query.month)\(query.finess.map { "-\($0)" } ?? "").\(format.rawValue)"
        return Self.secured(StatusServer.respond(.ok, type, text, extra: [.contentDisposition: "attachment; filename=\"\(name)\""]))
    }
}
