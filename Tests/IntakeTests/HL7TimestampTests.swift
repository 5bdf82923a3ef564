import Foundation
import Testing
import PasserelleCore
@testable import Intake

@Suite struct HL7TimestampTests {
    let paris = TimeZone(identifier: "Europe/Paris")!

    @Test func precisionsAndOffsets() {
        #expect(HL7Timestamp.parse("20240110163000+0100", timeZone: paris) == ZonedDateTime(iso: "2024-01-10T16:30:00+01:00"))
        #expect(HL7Timestamp.parse("20240110163000.1234-0500", timeZone: paris) == ZonedDateTime(iso: "2024-01-10T16:30:00-05:00"))
        // No offset: local time in the given zone, winter and summer.
        #expect(HL7Timestamp.parse("202401101630", timeZone: paris)?.iso == "2024-01-10T16:30:00+01:00")
        #expect(HL7Timestamp.parse("202307141200", timeZone: paris)?.iso == "2023-07-14T12:00:00+02:00")
        #expect(HL7Timestamp.parse("20230714", timeZone: paris)?.iso == "2023-07-14T00:00:00+02:00")
        #expect(HL7Timestamp.parse("2023", timeZone: paris)?.iso == "2023-01-01T00:00:00+01:00")
        for bad in ["", "2023-07-14", "20231345", "202307141", "20230714120000+01", "20230230"] {
            #expect(HL7Timestamp.parse(bad, timeZone: paris) == nil, "\(bad)")
        }
        #expect(HL7Timestamp.date("19790315") == CalendarDate(year: 1979, month: 3, day: 15))
        #expect(HL7Timestamp.date("1979") == nil)
    }
}
