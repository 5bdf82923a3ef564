import Foundation
import Journal

/// The overview's activity: documents received and acknowledged per hour over the last 24 h,
/// with the totals of the last hour and the last day, drawn as a server-side SVG (no script;
/// colours from the stylesheet's classes, the CSP allowing no inline style).
public struct ConsoleActivity: Sendable, Codable {
    public struct Totals: Sendable, Codable { public var received: Int, acknowledged: Int }

    /// The 24 hours before now, oldest first, the last one ending now.
    public var hours: [HourlyActivity]
    public var lastHour: Totals
    public var lastDay: Totals

    /// One indexed range query: hours are counted back from `now`, so the last one is the last hour.
    static func load(_ journal: any JournalQueries, now: Date) async throws(JournalError) -> ConsoleActivity {
        let found = try await journal.hourlyActivity(from: now.addingTimeInterval(-24 * 3600), until: now)
        let hours = (0..<24).map { index in
            let start = now.addingTimeInterval(-3600 * Double(24 - index))
            return found.first { $0.hour == start } ?? HourlyActivity(hour: start, received: 0, acknowledged: 0)
        }
        let last = hours[23]
        return ConsoleActivity(hours: hours, lastHour: Totals(received: last.received, acknowledged: last.acknowledged),
                               lastDay: Totals(received: hours.reduce(0) { $0 + $1.received }, acknowledged: hours.reduce(0) { $0 + $1.acknowledged }))
    }
}

extension ConsoleHTML {
    static func activity(_ a: ConsoleActivity, timeZone: TimeZone) -> String {
        var html = "<section id=\"activity\"><h3>Activité des dernières 24 heures</h3>\n"
            + "<table class=\"totals\"><thead><tr><th></th><th scope=\"col\">Dernière heure</th><th scope=\"col\">Dernières 24 h</th></tr></thead><tbody>\n"
            + "<tr><th scope=\"row\">Documents reçus</th><td id=\"received-hour\">\(a.lastHour.received)</td><td id=\"received-day\">\(a.lastDay.received)</td></tr>\n"
            + "<tr><th scope=\"row\">Transmissions acquittées</th><td id=\"acknowledged-hour\">\(a.lastHour.acknowledged)</td><td id=\"acknowledged-day\">\(a.lastDay.acknowledged)</td></tr>\n"
            + "</tbody></table>\n"
        html += chart(a.hours, timeZone: timeZone)
        return html + "<p class=\"legend\"><span class=\"key received\"></span> reçus <span class=\"key acknowledged\"></span> acquittés (réponse du DMP, accusé de distribution MSSanté)</p>\n</section>\n"
    }

    /// Two bars per hour, scaled to the busiest hour; each bar's `<title>` gives its number.
    static func chart(_ hours: [HourlyActivity], timeZone: TimeZone) -> String {
        let width = 720, height = 160, top = 10, bottom = 20, slot = width / max(1, hours.count)
        let peak = max(1, hours.map { max($0.received, $0.acknowledged) }.max() ?? 1)
        let label = ConsoleInput.formatter(timeZone, "HH:mm")
        var svg = "<svg id=\"activity-chart\" class=\"chart\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" "
            + "aria-label=\"Documents reçus et acquittés par heure\" xmlns=\"http://www.w3.org/2000/svg\">\n"
        svg += "<line class=\"axis\" x1=\"0\" y1=\"\(height - bottom)\" x2=\"\(width)\" y2=\"\(height - bottom)\"/>\n"
        for (index, h) in hours.enumerated() {
            let x = index * slot
            for (offset, value, css, noun) in [(2, h.received, "received", "reçus"), (slot / 2, h.acknowledged, "acknowledged", "acquittés")] {
                let barHeight = value * (height - top - bottom) / peak
                svg += "<rect class=\"bar \(css)\" data-hour=\"\(escape(label.string(from: h.hour)))\" data-value=\"\(value)\" x=\"\(x + offset)\" "
                    + "y=\"\(height - bottom - barHeight)\" width=\"\(slot / 2 - 3)\" height=\"\(barHeight)\">"
                    + "<title>de \(escape(label.string(from: h.hour))) à \(escape(label.string(from: h.hour.addingTimeInterval(3600)))) : \(value) \(noun)</title></rect>\n"
            }
            if index % 3 == 0 {
                svg += "<text x=\"\(x + 2)\" y=\"\(height - 5)\">\(escape(label.string(from: h.hour)))</text>\n"
            }
        }
        return svg + "</svg>\n"
    }
}
