import Foundation
import Testing
@testable import PasserelleCore

@Suite("INS matricule")
struct INSTests {
    @Test("ANS test INS is valid and decomposes as documented")
    func ansTestINS() throws {
        let ins = try INS("279035121518989", kind: .nirTest)
        #expect(ins.sexDigit == "2")
        #expect(ins.birthYearDigits == "79")
        #expect(ins.birthMonthDigits == "03")
        #expect(ins.birthDepartement == "51")
        #expect(ins.key == "89")
        #expect(ins.oid == "1.2.250.1.213.1.4.10")
        #expect(ins.display == "2 79 03 51 215 189 89")
        #expect(ins.masked == "2***********989")
        #expect("\(ins)" == ins.masked)
    }

    @Test("spaces are ignored", arguments: ["2 79 03 51 215 189 89", " 279035121518989 "])
    func spaces(_ text: String) throws {
        #expect(try INS(text).value == "279035121518989")
    }

    @Test("Corsica 2A and 2B keys count 19 and 18",
          arguments: ["185062A12345649", "285062B12345626", "253072B07300470", "253072A07300443"])
    func corsica(_ text: String) throws {
        let ins = try INS(text)
        #expect(ins.birthDepartement == String(Array(text)[5...6]))
    }

    @Test("overseas and foreign-born numbers", arguments: ["201019741112324", "190079913501272", "295109912611193"])
    func otherPlaces(_ text: String) throws {
        _ = try INS(text)
    }

    @Test("wrong keys are rejected with the expected key")
    func wrongKey() {
        #expect(throws: INSError.wrongKey(masked: "2***********988", given: "88", expected: "89")) {
            try INS("279035121518988")
        }
        #expect(throws: INSError.wrongKey(masked: "1***********648", given: "48", expected: "49")) {
            try INS("185062A12345648")
        }
        // 2A key used for a 2B number
        #expect(throws: INSError.self) { try INS("285062B12345649") }
    }

    @Test("format errors each have their own error")
    func formatErrors() {
        #expect(throws: INSError.wrongLength(actual: 14)) { try INS("27903512151898") }
        #expect(throws: INSError.wrongLength(actual: 16)) { try INS("2790351215189890") }
        #expect(throws: INSError.notADigit(position: 4)) { try INS("279X35121518989") }
        #expect(throws: INSError.notADigit(position: 7)) { try INS("279035C21518989") }
        #expect(throws: INSError.notADigit(position: 6)) { try INS("27903A121518989") }   // 'A' only after a 2
        #expect(throws: INSError.notADigit(position: 9)) { try INS("27903512A518989") }
        #expect(throws: INSError.invalidSexDigit) { try INS("579035121518989") }
        #expect(throws: INSError.unknownOID("1.2.3")) { try INS("279035121518989", oid: "1.2.3") }
    }

    @Test("error messages never contain the full number")
    func messagesAreMasked() {
        do {
            _ = try INS("279035121518988")
            Issue.record("should have thrown")
        } catch {
            #expect(!error.description.contains("279035121518988"))
            #expect(error.description.contains("2***********988"))
        }
    }

    @Test("OIDs map to kinds")
    func kinds() {
        #expect(INSKind(oid: "1.2.250.1.213.1.4.8") == .nir)
        #expect(INSKind(oid: "1.2.250.1.213.1.4.9") == .nia)
        #expect(INSKind(oid: "1.2.250.1.213.1.4.10") == .nirTest)
        #expect(INSKind(oid: "1.2.250.1.213.1.4.11") == .nirDemo)
        #expect(INSKind(oid: "1.2.250.1.213.1.4.12") == nil)
        #expect(INSKind.nir.isProduction && INSKind.nia.isProduction && !INSKind.nirTest.isProduction)
    }

    @Test("Codable validates on decode")
    func codable() throws {
        let good = Data(#"{"value":"279035121518989","oid":"1.2.250.1.213.1.4.10"}"#.utf8)
        let ins = try JSONDecoder().decode(INS.self, from: good)
        #expect(ins.kind == .nirTest)
        let bad = Data(#"{"value":"279035121518988","oid":"1.2.250.1.213.1.4.10"}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(INS.self, from: bad) }
    }
}

@Suite("Identity traits versus NIR")
struct IdentityTests {
    let ins = try! INS("279035121518989", kind: .nirTest)
    let traits = IdentityTraits(
        birthName: "DUPONT", firstBirthGivenName: "MARIE", birthGivenNames: "MARIE CLAIRE",
        birthDate: CalendarDate(year: 1979, month: 3, day: 28), sex: .female, birthPlace: "51215")

    @Test("consistent traits pass")
    func consistent() throws {
        try traits.checkConsistency(with: ins)
        try traits.checkQualified(with: ins)
    }

    @Test("sex mismatch")
    func sex() {
        var t = traits
        t.sex = .male
        #expect(throws: IdentityError.traitMismatch(trait: .sex, maskedINS: ins.masked)) { try t.checkConsistency(with: ins) }
    }

    @Test("year mismatch")
    func year() {
        var t = traits
        t.birthDate = CalendarDate(year: 1980, month: 3, day: 28)
        #expect(throws: IdentityError.traitMismatch(trait: .birthYear, maskedINS: ins.masked)) { try t.checkConsistency(with: ins) }
    }

    @Test("month mismatch, but not when the NIR month is outside 01–12")
    func month() throws {
        var t = traits
        t.birthDate = CalendarDate(year: 1979, month: 4, day: 28)
        #expect(throws: IdentityError.traitMismatch(trait: .birthMonth, maskedINS: ins.masked)) { try t.checkConsistency(with: ins) }
        // NIR with month 20 (unknown month): any birth month is accepted.
        let first13 = "2792051215189"
        let odd = try INS(first13 + INS.key(forFirst13: first13)!)
        try t.checkConsistency(with: odd)
    }

    @Test("département mismatch")
    func departement() {
        var t = traits
        t.birthPlace = "75056"
        #expect(throws: IdentityError.traitMismatch(trait: .birthPlace, maskedINS: ins.masked)) { try t.checkConsistency(with: ins) }
    }

    @Test("Corsica: 2A birth place matches a 2A NIR and a pre-1976 NIR with 20")
    func corsica() throws {
        let t = IdentityTraits(birthDate: CalendarDate(year: 1985, month: 6, day: 1), sex: .male, birthPlace: "2A004")
        try t.checkConsistency(with: try INS("185062A12345649"))
        #expect(throws: IdentityError.self) { try t.checkConsistency(with: try INS("285062B12345626")) }
        let old13 = "1850620123456"
        try t.checkConsistency(with: try INS(old13 + INS.key(forFirst13: old13)!))
    }

    @Test("overseas: 3-digit département")
    func overseas() throws {
        let t = IdentityTraits(birthDate: CalendarDate(year: 2001, month: 1, day: 5), sex: .female, birthPlace: "97411")
        try t.checkConsistency(with: try INS("201019741112324"))
        var wrong = t
        wrong.birthPlace = "97311"
        #expect(throws: IdentityError.traitMismatch(trait: .birthPlace, maskedINS: "2***********324")) {
            try wrong.checkConsistency(with: try INS("201019741112324"))
        }
    }

    @Test("foreign-born: 99xxx needs NIR département 99")
    func foreignBorn() throws {
        let t = IdentityTraits(birthDate: CalendarDate(year: 1990, month: 7, day: 14), sex: .male, birthPlace: "99135")
        try t.checkConsistency(with: try INS("190079913501272"))
        // Born abroad according to the traits, but the NIR says département 51.
        var french = t
        french.birthPlace = "51215"
        #expect(throws: IdentityError.self) { try french.checkConsistency(with: try INS("190079913501272")) }
        let t2 = IdentityTraits(birthDate: CalendarDate(year: 1979, month: 3, day: 2), sex: .female, birthPlace: "99135")
        #expect(throws: IdentityError.traitMismatch(trait: .birthPlace, maskedINS: ins.masked)) { try t2.checkConsistency(with: ins) }
    }

    @Test("QUAL without the mandatory traits is an error listing them")
    func qualifiedMissing() {
        var t = traits
        t.birthGivenNames = nil
        t.birthPlace = "  "
        #expect(throws: IdentityError.missingTraitsForQualifiedIdentity([.birthGivenNames, .birthPlace])) {
            try t.checkQualified(with: ins)
        }
    }

    @Test("statuses and labels")
    func statuses() {
        #expect(IdentityStatus.allCases.map(\.rawValue) == ["PROV", "RECUP", "VALI", "QUAL"])
        #expect(IdentityStatus.allCases.map(\.label) == ["provisoire", "récupérée", "validée", "qualifiée"])
        #expect(IdentityStatus.allCases.filter(\.mayCarryINS) == [.qualified])
        #expect(IdentityStatus(code: "qual") == .qualified)
    }
}
