import Foundation
import Testing
@testable import PasserelleCore

/// ZonedDateTime computes civil dates by arithmetic; Foundation's Calendar is the reference.
@Suite("Zoned date-times against Foundation's calendar")
struct DateTimeTests {
    static func calendarFields(_ date: Date, offset: Int) -> DateComponents {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: offset)!
        return calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    }

    static func expectedISO(_ date: Date, offset: Int) -> String {
        let c = calendarFields(date, offset: offset), m = abs(offset)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d%@%02d:%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!,
                      offset < 0 ? "-" : "+", m / 3600, m % 3600 / 60)
    }

    @Test("formatting agrees with Calendar over 20,000 instants from 1600 to 9999, every offset sign, fractions and pre-1970")
    func formattingAgrees() {
        var rng = SystemRandomNumberGenerator()
        let lower = -11_676_096_000.0  // 1600-01-01T00:00:00Z
        let upper = 253_402_300_799.0  // 9999-12-31T23:59:59Z
        let offsets = [0, 3600, 7200, -18_000, 19_800, 50_400, -43_200, 20_700]
        for i in 0..<20_000 {
            let seconds = Double.random(in: (lower + 86_400)...(upper - 86_400), using: &rng)
            let value = i % 3 == 0 ? seconds.rounded(.down) : seconds
            let offset = offsets[i % offsets.count]
            let z = ZonedDateTime(date: Date(timeIntervalSince1970: value), utcOffsetSeconds: offset)
            let expected = Self.expectedISO(z.date, offset: offset)
            #expect(z.iso == expected, "instant \(value) offset \(offset)")
            let digits = expected.filter(\.isNumber)
            #expect(z.hl7 == String(digits.prefix(14)) + (offset < 0 ? "-" : "+") + String(digits.suffix(4)))
            if z.iso != expected { return }
        }
    }

    @Test("parsing agrees with Calendar, and formatting gives the text back")
    func parsingRoundTrips() throws {
        let texts = ["2026-11-20T14:30:00+01:00", "2026-03-29T02:30:00+02:00", "2024-02-29T23:59:59-05:00", "1970-01-01T00:00:00Z",
                     "1969-12-31T23:59:59+00:00", "2000-02-29T12:00:00+14:00", "1600-03-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00",
                     "1899-12-31T23:00:00-10:30"]
        for text in texts {
            let z = try #require(ZonedDateTime(iso: text))
            #expect(z.iso == text.replacingOccurrences(of: "Z", with: "+00:00"))
            #expect(z.iso == Self.expectedISO(z.date, offset: z.utcOffsetSeconds))
        }
        // Leap second, fraction and the compact offset form.
        #expect(ZonedDateTime(iso: "2016-12-31T23:59:60Z")?.iso == "2017-01-01T00:00:00+00:00")
        #expect(ZonedDateTime(iso: "2026-11-20T14:30:00.750+0100")?.date.timeIntervalSince1970 == 1_795_181_400.75)
        #expect(ZonedDateTime(iso: "2026-11-20T14:30:00.750+0100")?.iso == "2026-11-20T14:30:00+01:00")
        #expect(ZonedDateTime(iso: "2026-11-20T13:30:00Z")?.hl7UTC == "20261120133000")
        #expect(ZonedDateTime(iso: "2026-11-20T14:30:00+01:00")?.hl7UTC == "20261120133000")
        #expect(ZonedDateTime(iso: "2026-11-20T14:30:00+01:00")?.calendarDate == CalendarDate(year: 2026, month: 11, day: 20))
        // Before the Gregorian reform Foundation's calendar is Julian: the same answer as before.
        let old = try #require(ZonedDateTime(iso: "1500-06-01T12:00:00+00:00"))
        #expect(old.iso == "1500-06-01T12:00:00+00:00")
        #expect(old.iso == Self.expectedISO(old.date, offset: 0))
    }

    @Test("calendar dates print zero-padded")
    func calendarDates() {
        #expect(CalendarDate(year: 987, month: 3, day: 4)?.iso == "0987-03-04")
        #expect(CalendarDate(year: 2026, month: 12, day: 31)?.hl7 == "20261231")
    }
}
