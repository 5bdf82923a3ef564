import Foundation
import Hummingbird
import HummingbirdCore
import PasserelleCore

/// A request the console cannot answer as asked: a 400 (bad parameter) or 404 (unknown id)
/// page in French, never a 500. The message names the parameter, never echoes patient data.
struct ConsoleRefusal: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String

    static func badRequest(_ message: String) -> ConsoleRefusal { .init(status: .badRequest, message: message) }
    static func notFound(_ message: String) -> ConsoleRefusal { .init(status: .notFound, message: message) }
    static func forbidden(_ message: String) -> ConsoleRefusal { .init(status: .forbidden, message: message) }

    func response(section: ConsoleSection?, viewer: ConsoleViewer?) -> Response {
        let title = switch status {
        case .notFound: "Introuvable"
        case .forbidden: "Accès refusé"
        default: "Requête refusée"
        }
        let body = "<h2>\(ConsoleHTML.escape(title))</h2>\n<p class=\"alert\" id=\"refusal\">\(ConsoleHTML.escape(message))</p>\n"
            + "<p><a href=\"\(section?.path ?? ConsoleSection.overview.path)\">Retour</a></p>\n"
        return Console.secured(StatusServer.respond(status, "text/html; charset=utf-8",
                                                    ConsoleLayout.page(title: title, section: section, viewer: viewer, body: body)))
    }
}

/// The console's query parameters, checked before anything reaches the journal: known names
/// only, each at most once, bounded lengths, values from closed sets or strict formats.
struct ConsoleQuery {
    private var values: [String: String] = [:]

    /// At most this many characters per value (a document id is far shorter).
    static let maxValueLength = 128

    init(_ parameters: FlatDictionary<Substring, Substring>, allowed: Set<String>) throws(ConsoleRefusal) {
        for (key, value) in parameters {
            let name = String(key)
            guard allowed.contains(name) else {
                throw .badRequest("Paramètre inconnu « \(String(name.prefix(32))) » (attendus : \(allowed.sorted().joined(separator: ", "))).")
            }
            guard values[name] == nil else { throw .badRequest("Le paramètre « \(name) » est donné plusieurs fois.") }
            guard value.count <= Self.maxValueLength else {
                throw .badRequest("Le paramètre « \(name) » dépasse \(Self.maxValueLength) caractères.")
            }
            values[name] = String(value).trimmingCharacters(in: .whitespaces)
        }
    }

    /// The value, nil when absent or empty (a form sends its empty fields).
    subscript(_ name: String) -> String? { values[name].flatMap { $0.isEmpty ? nil : $0 } }

    /// One of `cases`, by its raw value.
    func choice<T: RawRepresentable>(_ name: String, _ type: T.Type, label: String) throws(ConsoleRefusal) -> T? where T.RawValue == String {
        guard let raw = self[name] else { return nil }
        guard let value = T(rawValue: raw) else { throw .badRequest("Valeur inconnue pour \(label) (paramètre « \(name) »).") }
        return value
    }

    /// A day `YYYY-MM-DD`, as its midnight in `timeZone`.
    func day(_ name: String, timeZone: TimeZone) throws(ConsoleRefusal) -> Date? {
        guard let text = self[name] else { return nil }
        guard let date = ConsoleInput.day(text, timeZone: timeZone) else {
            throw .badRequest("Date invalide pour « \(name) » : attendu AAAA-MM-JJ.")
        }
        return date
    }

    /// A positive integer (an id).
    func id(_ name: String) throws(ConsoleRefusal) -> Int64? {
        guard let text = self[name] else { return nil }
        guard text.count <= 19, text.allSatisfy({ $0.isASCII && $0.isNumber }), let id = Int64(text), id > 0 else {
            throw .badRequest("« \(name) » doit être un identifiant numérique positif.")
        }
        return id
    }
}

enum ConsoleInput {
    /// A document id as the journal keeps it (`root^extension` or an OID): ASCII letters, digits
    /// and `. ^ - _ :` only, 1 to 128 characters. Anything else cannot be an id of ours.
    static func documentID(_ text: String) -> String? {
        guard (1...ConsoleQuery.maxValueLength).contains(text.count),
              text.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || ".^-_:".unicodeScalars.contains($0)) })
        else { return nil }
        return text
    }

    /// `YYYY-MM-DD` as its midnight in `timeZone`; nil unless it is a real day.
    static func day(_ text: String, timeZone: TimeZone) -> Date? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]) else { return nil }
        let calendar = Calendar.gregorian(timeZone)
        guard let date = calendar.date(from: DateComponents(year: y, month: m, day: d)),
              calendar.dateComponents([.year, .month, .day], from: date) == DateComponents(year: y, month: m, day: d)
        else { return nil }
        return date
    }

    /// `name=value&…` of the non-nil pairs, each value percent-encoded for a query string.
    static func queryString(_ pairs: [(String, String?)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return pairs.compactMap { name, value in
            value.map { "\(name)=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
        }.joined(separator: "&")
    }

    /// A date and time for people, in the console's time zone.
    static func formatter(_ timeZone: TimeZone, _ format: String = "dd/MM/yyyy HH:mm:ss") -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "fr_FR")
        formatter.timeZone = timeZone
        formatter.dateFormat = format
        return formatter
    }
}
