import Foundation
import Indicators
import Journal
import PasserelleCore
import Testing
import TestSupport

@Suite("[report] configuration")
struct ReportConfigurationTests {
    static func parse(_ extra: String) throws(ConfigurationError) -> PasserelleConfiguration {
        try PasserelleConfiguration.parse(TestConfiguration.withTestPKI() + extra, file: "/etc/passerelle/passerelle.toml")
    }

    @Test("absent: the built-in definitions")
    func defaults() throws {
        let report = try Self.parse("").report
        #expect(report == .default)
        #expect(report.timeZone == "Europe/Paris")
        #expect(report.domainKinds[.d1] == [.dischargeLetter, .prescription, .operativeReport])
        #expect(report.denominators == [.d1: .stays, .d2: .documents, .d3: .documents])
        #expect(report.qualifiedStatuses == ["QUAL"])
    }

    @Test("every key read; a targets table replaces the default targets")
    func custom() throws {
        let report = try Self.parse("""
            [report]
            time_zone = "America/Cayenne"
            d1_kinds = ["ldl", "cro"]
            d2_kinds = ["11502-2"]
            d1_denominator = "documents"
            discharge_letter_kinds = ["ldl", "ordonnance"]
            qualified_statuses = ["QUAL", "VALI"]

            [report.targets]
            V1-D1-DOC = 65
            V2-PS = 20

            [report.thresholds]
            Q-INS = 5

            """).report
        #expect(report.timeZone == "America/Cayenne")
        #expect(report.domainKinds == [.d1: [.dischargeLetter, .operativeReport], .d2: [.biologyReport], .d3: [.imagingReport]])
        #expect(report.denominators[.d1] == .documents)
        #expect(report.dischargeLetterKinds == [.dischargeLetter, .prescription])
        #expect(report.qualifiedStatuses == ["QUAL", "VALI"])
        #expect(report.targets == ["V1-D1-DOC": 65, "V2-PS": 20])
        #expect(report.thresholds == ["Q-INS": 5])

        // The settings drive the lines: V1-D1-DOC is now the headline and carries the target.
        var counts = UsageCountsFixture.sample
        counts.staysDischarged = 10
        let lines = IndicatorCalculator.lines(counts, settings: report)
        let doc = try #require(lines.first { $0.code == "V1-D1-DOC" })
        #expect(doc.headline && doc.numerator == 2 && doc.denominator == 3 && doc.target == 65 && doc.reached == true)
        #expect(lines.first { $0.code == "V1-D1-SEJ" }?.headline == false)
        #expect(lines.first { $0.code == "V1-D1-SEJ" }?.target == nil)
    }

    @Test("mistakes are reported with file, line and key")
    func mistakes() {
        #expect(throws: ConfigurationError.self) { try Self.parse("[report]\ntime_zone = \"Europe/Pariss\"\n") }
        do {
            _ = try Self.parse("""
                [report]
                d1_kinds = ["ldl", "lettre"]
                d2_denominator = "sejours"

                [report.targets]
                V1-D1-SEQ = 50
                """)
            Issue.record("accepted a wrong [report]")
        } catch {
            let text = error.problems.map(\.description)
            let base = TestConfiguration.withTestPKI().split(separator: "\n", omittingEmptySubsequences: false).count
            #expect(text.count == 3)
            #expect(text.contains { $0.contains(":\(base + 1): report.d1_kinds: unknown document kind \"lettre\"") })
            #expect(text.contains { $0.contains(":\(base + 2): report.d2_denominator: unknown value \"sejours\"") })
            #expect(text.contains { $0.contains(":\(base + 5): unknown key report.targets.V1-D1-SEQ") && $0.contains("V1-D1-SEJ") })
        }
    }
}

enum UsageCountsFixture {
    /// 2 of 3 D1 documents accepted (ldl 1/2, cro 1/1).
    static var sample: UsageCounts {
        var c = UsageCounts(period: 0, finess: "750712184")
        c.kinds[.dischargeLetter] = .init(produced: 2, dmpAccepted: 1)
        c.kinds[.operativeReport] = .init(produced: 1, dmpAccepted: 1)
        return c
    }
}
