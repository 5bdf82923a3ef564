import Foundation
import PasserelleCore

/// HL7 v2 TS/DTM values (`YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`).
enum HL7Timestamp {
    /// A timestamp with its offset. A value without an offset is read in `timeZone`
    /// (senders in French hospitals usually omit it and mean Europe/Paris time);
    /// a value with less than minute precision is taken at the start of the period.
    static func parse(_ text: String, timeZone: TimeZone) -> ZonedDateTime? {
        let t = text.trimmingWhitespace()
        var digits = ""
        var rest = Substring(t)
        while let c = rest.first, c.isASCII, c.isNumber { digits.append(c); rest.removeFirst() }
        if rest.first == "." {  // fraction of a second: ignored
            rest.removeFirst()
            while let c = rest.first, c.isASCII, c.isNumber { rest.removeFirst() }
        }
        guard [4, 6, 8, 10, 12, 14].contains(digits.count) else { return nil }
        let d = Array(digits)
        func n(_ i: Int, _ len: Int, _ fallback: Int) -> Int { i + len <= d.count ? Int(String(d[i..<(i + len)]))! : fallback }
        var c = DateComponents()
        c.year = n(0, 4, 0); c.month = n(4, 2, 1); c.day = n(6, 2, 1)
        c.hour = n(8, 2, 0); c.minute = n(10, 2, 0); c.second = n(12, 2, 0)
        guard CalendarDate(year: c.year!, month: c.month!, day: c.day!) != nil,
              c.hour! < 24, c.minute! < 60, c.second! < 61 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        if rest.isEmpty {
            calendar.timeZone = timeZone
            guard let date = calendar.date(from: c) else { return nil }
            return ZonedDateTime(date: date, utcOffsetSeconds: timeZone.secondsFromGMT(for: date))
        }
        let sign = rest.first == "-" ? -1 : (rest.first == "+" ? 1 : 0)
        let zone = rest.dropFirst()
        guard sign != 0, zone.count == 4, zone.allSatisfy({ $0.isASCII && $0.isNumber }),
              let hh = Int(zone.prefix(2)), let mm = Int(zone.suffix(2)), hh <= 14, mm < 60 else { return nil }
        let offset = sign * (hh * 3600 + mm * 60)
        guard let tz = TimeZone(secondsFromGMT: offset) else { return nil }
        calendar.timeZone = tz
        guard let date = calendar.date(from: c) else { return nil }
        return ZonedDateTime(date: date, utcOffsetSeconds: offset)
    }

    /// ``parse(_:timeZone:)`` for a message field: nil when empty, an ``IntakeError`` naming `path` when malformed.
    static func field(_ text: String, _ path: String, timeZone: TimeZone) throws(IntakeError) -> ZonedDateTime? {
        guard !text.isEmpty else { return nil }
        guard let t = parse(text, timeZone: timeZone) else {
            throw .invalidField(path, .timestamp)
        }
        return t
    }

    /// A date (first 8 digits of a TS), e.g. a birth date.
    static func date(_ text: String) -> CalendarDate? {
        let t = text.trimmingWhitespace()
        guard t.count >= 8, let y = Int(t.prefix(4)), let m = Int(t.dropFirst(4).prefix(2)), let d = Int(t.dropFirst(6).prefix(2)) else { return nil }
        return CalendarDate(year: y, month: m, day: d)
    }

    /// `YYYYMMDDHHMMSS+ZZZZ` for a message header.
    static func format(_ date: Date, timeZone: TimeZone) -> String {
        ZonedDateTime(date: date, utcOffsetSeconds: timeZone.secondsFromGMT(for: date)).hl7
    }
}
