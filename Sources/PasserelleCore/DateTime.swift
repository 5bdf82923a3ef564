import Foundation

/// A point in time together with the UTC offset it was given with.
///
/// Sidecar dates are ISO 8601 with an offset (`2026-11-20T14:30:00+01:00`); the offset is
/// kept because CDA and XDS timestamps carry the local time zone.
public struct ZonedDateTime: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The instant.
    public var date: Date
    /// Offset from UTC in seconds (e.g. 3600 for +01:00).
    public var utcOffsetSeconds: Int

    public init(date: Date, utcOffsetSeconds: Int) {
        self.date = date
        self.utcOffsetSeconds = utcOffsetSeconds
    }

    /// Parses `YYYY-MM-DDTHH:MM[:SS[.fraction]]` followed by `Z`, `±HH:MM` or `±HHMM`.
    /// Returns nil when the offset is missing: a local time without a zone is ambiguous.
    public init?(iso text: String) {
        let s = Array(text.trimmingCharacters(in: .whitespaces))
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= s.count else { return nil }
            let part = s[from..<(from + count)]
            guard part.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(String(part))
        }
        guard s.count >= 17, s[4] == "-", s[7] == "-", s[10] == "T" || s[10] == " ", s[13] == ":",
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2),
              CalendarDate(year: year, month: month, day: day) != nil, hour < 24, minute < 60 else { return nil }
        var i = 16
        var second = 0
        var fraction = 0.0
        if i < s.count, s[i] == ":" {
            guard let sec = number(i + 1, 2), sec < 61 else { return nil }
            second = sec
            i += 3
            if i < s.count, s[i] == "." || s[i] == "," {
                var j = i + 1
                var digits = ""
                while j < s.count, s[j].isASCII, s[j].isNumber { digits.append(s[j]); j += 1 }
                guard !digits.isEmpty else { return nil }
                fraction = Double("0." + digits) ?? 0
                i = j
            }
        }
        guard i < s.count else { return nil }
        var offset = 0
        if s[i] == "Z" || s[i] == "z" {
            guard i + 1 == s.count else { return nil }
        } else if s[i] == "+" || s[i] == "-" {
            let sign = s[i] == "-" ? -1 : 1
            guard let oh = number(i + 1, 2), oh <= 14 else { return nil }
            var om: Int?
            if i + 3 < s.count, s[i + 3] == ":" { om = number(i + 4, 2); guard i + 6 == s.count else { return nil } }
            else { om = number(i + 3, 2); guard i + 5 == s.count else { return nil } }
            guard let minutes = om, minutes < 60 else { return nil }
            offset = sign * (oh * 3600 + minutes * 60)
        } else {
            return nil
        }
        var components = DateComponents()
        components.year = year; components.month = month; components.day = day
        components.hour = hour; components.minute = minute; components.second = second
        var calendar = Calendar(identifier: .gregorian)
        guard let zone = TimeZone(secondsFromGMT: offset) else { return nil }
        calendar.timeZone = zone
        guard let date = calendar.date(from: components) else { return nil }
        self.init(date: date.addingTimeInterval(fraction), utcOffsetSeconds: offset)
    }

    /// Local wall-clock components in the stored offset.
    private var local: DateComponents {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: utcOffsetSeconds)!
        return calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    }

    private var offsetText: (sign: String, hours: Int, minutes: Int) {
        let magnitude = abs(utcOffsetSeconds)
        return (utcOffsetSeconds < 0 ? "-" : "+", magnitude / 3600, (magnitude % 3600) / 60)
    }

    /// ISO 8601 with offset, second precision: `2026-11-20T14:30:00+01:00`.
    public var iso: String {
        let c = local, o = offsetText
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d%@%02d:%02d",
                      c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!, o.sign, o.hours, o.minutes)
    }

    /// HL7 TS with offset: `20261120143000+0100` (CDA effectiveTime, XDS creationTime uses UTC — see ``hl7UTC``).
    public var hl7: String {
        let c = local, o = offsetText
        return String(format: "%04d%02d%02d%02d%02d%02d%@%02d%02d",
                      c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!, o.sign, o.hours, o.minutes)
    }

    /// HL7 TS in UTC without offset: `20261120133000` (XDS DocumentEntry times).
    public var hl7UTC: String {
        ZonedDateTime(date: date, utcOffsetSeconds: 0).hl7.dropLast(5).description
    }

    /// The local calendar day.
    public var calendarDate: CalendarDate {
        let c = local
        return CalendarDate(year: c.year!, month: c.month!, day: c.day!)!
    }

    public var description: String { iso }

    public static func < (a: ZonedDateTime, b: ZonedDateTime) -> Bool { a.date < b.date }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = ZonedDateTime(iso: text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "expected an ISO 8601 date-time with a UTC offset, e.g. 2026-11-20T14:30:00+01:00")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(iso)
    }
}
