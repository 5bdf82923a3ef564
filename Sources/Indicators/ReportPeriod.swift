import Foundation
import Journal

/// Why a report could not be made. Messages say what to fix.
public enum ReportError: Error, Sendable, CustomStringConvertible, LocalizedError {
    case invalidMonth(String)
    case invalidDate(String)
    /// `--from` is after `--to`.
    case emptyRange(from: String, to: String)
    case unknownTimeZone(String)
    /// A comparison over more than 120 months.
    case tooManyMonths(from: String, to: String)
    case journal(JournalError)

    public var description: String {
        switch self {
        case .invalidMonth(let s): "'\(s)' is not a month; write it YYYY-MM, e.g. 2026-10"
        case .invalidDate(let s): "'\(s)' is not a date; write it YYYY-MM-DD, e.g. 2026-10-01"
        case .emptyRange(let from, let to): "the period \(from) … \(to) is empty: --from must not be after --to"
        case .unknownTimeZone(let z): "'\(z)' is not a time zone; set [report] time_zone to an IANA name such as \"Europe/Paris\""
        case .tooManyMonths(let from, let to): "\(from) … \(to) is more than 120 months: compare at most ten years at once"
        case .journal(let e): e.description
        }
    }

    public var errorDescription: String? { description }
}

/// The measured period: local midnight to local midnight in the report's time zone.
public struct ReportPeriod: Sendable, Hashable, Codable {
    /// `2026-10` for a calendar month, `2026-10-01..2026-10-15` for a range of days.
    public var label: String
    /// First instant included.
    public var start: Date
    /// First instant after the period.
    public var end: Date
    /// IANA time zone of the boundaries.
    public var timeZone: String

    static func calendar(_ zone: String) throws(ReportError) -> Calendar {
        guard let tz = TimeZone(identifier: zone) else { throw .unknownTimeZone(zone) }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = tz
        return calendar
    }

    static func numbers(_ text: String, count: Int) -> [Int]? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == count, parts[0].count == 4, parts.dropFirst().allSatisfy({ $0.count == 2 }) else { return nil }
        let values = parts.compactMap { Int($0) }
        return values.count == count && parts.allSatisfy({ $0.allSatisfy(\.isASCII) }) ? values : nil
    }

    /// The calendar month `YYYY-MM`.
    public static func month(_ text: String, timeZone: String) throws(ReportError) -> ReportPeriod {
        let calendar = try calendar(timeZone)
        guard let v = numbers(text, count: 2), (1...12).contains(v[1]),
              let start = calendar.date(from: DateComponents(year: v[0], month: v[1], day: 1)),
              let end = calendar.date(byAdding: .month, value: 1, to: start) else { throw .invalidMonth(text) }
        return ReportPeriod(label: text, start: start, end: end, timeZone: timeZone)
    }

    /// The days `from` … `to` (`YYYY-MM-DD`, both included).
    public static func days(from: String, to: String, timeZone: String) throws(ReportError) -> ReportPeriod {
        let calendar = try calendar(timeZone)
        func day(_ text: String) throws(ReportError) -> Date {
            guard let v = numbers(text, count: 3), (1...12).contains(v[1]), (1...31).contains(v[2]) else { throw .invalidDate(text) }
            let components = DateComponents(year: v[0], month: v[1], day: v[2])
            // Foundation rolls 2026-02-30 over to March: refuse it instead.
            guard components.isValidDate(in: calendar), let date = calendar.date(from: components) else { throw .invalidDate(text) }
            return date
        }
        let start = try day(from)
        let last = try day(to)
        guard start <= last, let end = calendar.date(byAdding: .day, value: 1, to: last) else { throw .emptyRange(from: from, to: to) }
        return ReportPeriod(label: "\(from)..\(to)", start: start, end: end, timeZone: timeZone)
    }

    /// The `count` calendar months ending with the month that holds the last day of this period.
    public func trailingMonths(_ count: Int) throws(ReportError) -> [ReportPeriod] {
        let calendar = try Self.calendar(timeZone)
        let last = calendar.dateComponents([.year, .month], from: end.addingTimeInterval(-1))
        guard let lastStart = calendar.date(from: DateComponents(year: last.year, month: last.month, day: 1)) else { return [] }
        var months: [ReportPeriod] = []
        for offset in stride(from: count - 1, through: 0, by: -1) {
            guard let start = calendar.date(byAdding: .month, value: -offset, to: lastStart),
                  let end = calendar.date(byAdding: .month, value: 1, to: start) else { continue }
            let c = calendar.dateComponents([.year, .month], from: start)
            months.append(ReportPeriod(label: String(format: "%04d-%02d", c.year!, c.month!), start: start, end: end, timeZone: timeZone))
        }
        return months
    }
}

/// French calendar words for the human formats (the JSON and CSV keep `2026-10`).
public enum FrenchCalendar {
    public static let months = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                                "octobre", "novembre", "décembre"]
    static let short = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."]

    /// `2026-12` → `décembre 2026`; anything else unchanged.
    public static func month(_ label: String) -> String {
        guard let v = ReportPeriod.numbers(label, count: 2), (1...12).contains(v[1]) else { return label }
        return "\(months[v[1] - 1]) \(v[0])"
    }

    /// `2026-12` → `déc.` (chart axes).
    public static func shortMonth(_ label: String) -> String {
        guard let v = ReportPeriod.numbers(label, count: 2), (1...12).contains(v[1]) else { return label }
        return short[v[1] - 1]
    }

    /// `2026-10-01` → `1er octobre 2026`.
    public static func day(_ label: String) -> String {
        guard let v = ReportPeriod.numbers(label, count: 3), (1...12).contains(v[1]) else { return label }
        return "\(v[2] == 1 ? "1er" : String(v[2])) \(months[v[1] - 1]) \(v[0])"
    }
}

extension ReportPeriod {
    /// `octobre 2026`, or `du 1er octobre 2026 au 15 octobre 2026`.
    public var displayName: String {
        let parts = label.components(separatedBy: "..")
        if parts.count == 2 { return "du \(FrenchCalendar.day(parts[0])) au \(FrenchCalendar.day(parts[1]))" }
        return FrenchCalendar.month(label)
    }
}
