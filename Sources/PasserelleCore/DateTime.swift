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
        // ASCII bytes, not Characters: grapheme breaking, Unicode digit properties and a String
        // per number were ~60,000 instructions a time, and every CDA, XDS and VIHF time comes here.
        // Every position is checked against an ASCII byte, so any other character refuses the text.
        let s = Array(text.trimmingWhitespace().utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= s.count else { return nil }
            var value = 0
            for k in from..<(from + count) {
                guard let digit = Self.digit(s[k]) else { return nil }
                value = value * 10 + digit
            }
            return value
        }
        func at(_ k: Int, _ c: Unicode.Scalar) -> Bool { k < s.count && s[k] == UInt8(ascii: c) }
        guard s.count >= 17, at(4, "-"), at(7, "-"), at(10, "T") || at(10, " "), at(13, ":"),
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2),
              CalendarDate(year: year, month: month, day: day) != nil, hour < 24, minute < 60 else { return nil }
        var i = 16
        var second = 0
        var fraction = 0.0
        if at(i, ":") {
            guard let sec = number(i + 1, 2), sec < 61 else { return nil }
            second = sec
            i += 3
            if at(i, ".") || at(i, ",") {
                var j = i + 1
                while j < s.count, Self.digit(s[j]) != nil { j += 1 }
                guard j > i + 1 else { return nil }
                fraction = Double("0." + String(decoding: s[(i + 1)..<j], as: UTF8.self)) ?? 0
                i = j
            }
        }
        guard i < s.count else { return nil }
        var offset = 0
        if at(i, "Z") || at(i, "z") {
            guard i + 1 == s.count else { return nil }
        } else if at(i, "+") || at(i, "-") {
            let sign = at(i, "-") ? -1 : 1
            guard let oh = number(i + 1, 2), oh <= 14 else { return nil }
            var om: Int?
            if at(i + 3, ":") { om = number(i + 4, 2); guard i + 6 == s.count else { return nil } }
            else { om = number(i + 3, 2); guard i + 5 == s.count else { return nil } }
            guard let minutes = om, minutes < 60 else { return nil }
            offset = sign * (oh * 3600 + minutes * 60)
        } else {
            return nil
        }
        // Arithmetic, not Calendar: a Calendar and its time zone per call were a visible share of
        // a document's CPU (every CDA, XDS and VIHF time goes through here). Before the Gregorian
        // reform Foundation's calendar is Julian: keep its answer there.
        if year < CivilTime.gregorianFrom {
            var components = DateComponents()
            components.year = year; components.month = month; components.day = day
            components.hour = hour; components.minute = minute; components.second = second
            var calendar = Calendar(identifier: .gregorian)
            guard let zone = TimeZone(secondsFromGMT: offset) else { return nil }
            calendar.timeZone = zone
            guard let date = calendar.date(from: components) else { return nil }
            self.init(date: date.addingTimeInterval(fraction), utcOffsetSeconds: offset)
            return
        }
        let local = CivilTime.daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
        self.init(date: Date(timeIntervalSince1970: Double(local - offset) + fraction), utcOffsetSeconds: offset)
    }

    /// The value of an ASCII digit byte.
    private static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }

    /// Local wall-clock fields in the stored offset (seconds truncated, as Calendar does).
    private var local: CivilTime {
        let seconds = date.timeIntervalSince1970
        let whole = Int(seconds.rounded(.down)) + utcOffsetSeconds
        let civil = CivilTime(secondsSinceEpoch: whole)
        if civil.year >= CivilTime.gregorianFrom { return civil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: utcOffsetSeconds)!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return CivilTime(year: c.year!, month: c.month!, day: c.day!, hour: c.hour!, minute: c.minute!, second: c.second!)
    }

    /// ISO 8601 with offset, second precision: `2026-11-20T14:30:00+01:00`.
    public var iso: String {
        let c = local
        var out = DigitWriter(capacity: 25)
        out.digits(c.year, 4); out.byte(UInt8(ascii: "-")); out.digits(c.month, 2); out.byte(UInt8(ascii: "-")); out.digits(c.day, 2)
        out.byte(UInt8(ascii: "T")); out.digits(c.hour, 2); out.byte(UInt8(ascii: ":")); out.digits(c.minute, 2)
        out.byte(UInt8(ascii: ":")); out.digits(c.second, 2)
        out.offset(utcOffsetSeconds, separator: true)
        return out.string
    }

    /// HL7 TS with offset: `20261120143000+0100` (CDA effectiveTime, XDS creationTime uses UTC — see ``hl7UTC``).
    public var hl7: String {
        var out = DigitWriter(capacity: 19)
        local.hl7Digits(into: &out)
        out.offset(utcOffsetSeconds, separator: false)
        return out.string
    }

    /// HL7 TS in UTC without offset: `20261120133000` (XDS DocumentEntry times).
    public var hl7UTC: String {
        var out = DigitWriter(capacity: 14)
        ZonedDateTime(date: date, utcOffsetSeconds: 0).local.hl7Digits(into: &out)
        return out.string
    }

    /// The local calendar day.
    public var calendarDate: CalendarDate {
        let c = local
        return CalendarDate(year: c.year, month: c.month, day: c.day)!
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

/// Wall-clock fields of a proleptic Gregorian date-time, computed without Calendar
/// (days ↔ civil date after H. Hinnant's public-domain algorithms).
struct CivilTime: Equatable {
    /// From this year on, Foundation's Gregorian calendar and the proleptic one agree.
    static let gregorianFrom = 1600

    var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int

    init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (year, month, day, hour, minute, second)
    }

    init(secondsSinceEpoch s: Int) {
        let days = s >= 0 ? s / 86_400 : (s - 86_399) / 86_400
        let rest = s - days * 86_400
        let (y, m, d) = Self.civil(fromDays: days)
        self.init(year: y, month: m, day: d, hour: rest / 3600, minute: rest % 3600 / 60, second: rest % 60)
    }

    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    func hl7Digits(into out: inout DigitWriter) {
        out.digits(year, 4); out.digits(month, 2); out.digits(day, 2)
        out.digits(hour, 2); out.digits(minute, 2); out.digits(second, 2)
    }
}

/// Zero-padded ASCII digits into a small buffer (String(format:) goes through CFString).
struct DigitWriter {
    private var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ b: UInt8) { bytes.append(b) }

    mutating func digits(_ value: Int, _ width: Int) {
        var v = abs(value)
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (48, 48, 48, 48, 48, 48, 48, 48)
        var n = 0
        withUnsafeMutableBytes(of: &tmp) { buffer in
            repeat { buffer[7 - n] = UInt8(48 + v % 10); v /= 10; n += 1 } while v > 0 && n < 8
            let count = max(n, min(width, 8))
            if value < 0 { bytes.append(UInt8(ascii: "-")) }
            bytes.append(contentsOf: buffer[(8 - count)...])
        }
    }

    /// `+01:00` (separator) or `+0100`.
    mutating func offset(_ seconds: Int, separator: Bool) {
        let magnitude = abs(seconds)
        byte(seconds < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
        digits(magnitude / 3600, 2)
        if separator { byte(UInt8(ascii: ":")) }
        digits(magnitude % 3600 / 60, 2)
    }

    var string: String { String(decoding: bytes, as: UTF8.self) }
}
