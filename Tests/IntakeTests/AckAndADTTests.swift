import Foundation
import Testing
import PasserelleCore
@testable import Intake

@Suite struct AcknowledgementTests {
    let builder = HL7AcknowledgementBuilder(timeZone: TimeZone(identifier: "Europe/Paris")!)
    let now = ZonedDateTime(iso: "2023-10-03T08:31:00+02:00")!.date

    @Test func positiveAckMirrorsTheHeader() throws {
        // The guide's own example header.
        let original = try HL7Message(text: "MSH|^~\\&|SIL|CHU_X|PFI|CHU_X|202310030830||ORU^R01^ORU_R01|12345|P|2.5|||||FRA|8859/15|||2.1^CISIS_CDA_HL7_V2")
        let ack = builder.acknowledgement(for: original, code: .accept, controlID: "12346", now: now)
        #expect(ack == "MSH|^~\\&|PFI|CHU_X|SIL|CHU_X|20231003083100+0200||ACK^R01^ACK|12346|P|2.5|||||FRA|UNICODE UTF-8\rMSA|AA|12345\r")
        let parsed = try HL7Message(text: ack)
        #expect(parsed["MSA-2"] == original.controlID)
    }

    @Test func errorAckCarriesERR() throws {
        let original = try HL7Message(text: "MSH|^~\\&|SIL|CHU_X^1.2.250.1.999^ISO|PFI|CHU_Y|202310030830||MDM^T02^MDM_T02|M1|T|2.6")
        let error = IntakeError.missingField("OBX[1]-11", .action)
        let ack = builder.acknowledgement(for: original, code: .error, errors: [HL7ErrorDetail(error)], controlID: "A1", now: now)
        let parsed = try HL7Message(text: ack)
        #expect(parsed["MSH-3"] == "PFI")
        #expect(parsed["MSH-5"] == "SIL")
        #expect(parsed["MSH-6.2"] == "1.2.250.1.999")
        #expect(parsed["MSH-9"] == "ACK")
        #expect(parsed["MSH-9.2"] == "T02")
        #expect(parsed["MSH-11"] == "T")
        #expect(parsed["MSH-12"] == "2.6")
        #expect(parsed["MSA-1"] == "AE")
        #expect(parsed["MSA-2"] == "M1")
        let err = try #require(parsed.segment("ERR"))
        #expect(err.field(2).first.components.map { $0[0] } == ["OBX", "1", "11"])
        #expect(err.field(3).component(1) == "101")
        #expect(err.field(3).component(3) == "HL70357")
        #expect(err[4] == "E")
        // French by default ([intake] language), English on request.
        #expect(err[8] == "OBX[1]-11 est vide : il doit contenir F (nouveau document), C (remplacement) ou D (suppression)")
        let english = try HL7Message(text: builder.acknowledgement(for: original, code: .error, errors: [HL7ErrorDetail(error, language: .en)],
                                                                   controlID: "A2", now: now))
        #expect(english["ERR-8"] == "OBX[1]-11 is empty: F (new document), C (replacement) or D (deletion)")
        #expect(english["ERR-8"] == error.description)
    }

    /// The fuzzer's find (7 Dec): a message declaring "A" as its field separator got an ACK in
    /// those delimiters, whose "MSA" segment then did not parse. It is refused now, and its ACK
    /// (standard delimiters) parses.
    @Test func letterAsFieldSeparatorGetsAParsableRefusal() throws {
        let input = Data("MSHA^~\\&|GAM|750RP3447|PA&SERELLE|CHU_X|20231003083000||ADT^A03^ADT_A03|ADT1|P\\X0D8859/1\\|2.5|Unsa00||ADT^A03^ADT_A03|ADT1|P\\ID|1||123456110000\r".utf8)
        #expect(throws: HL7ParseError.invalidEncodingCharacters) { try HL7Message(data: input) }
        var errors: [HL7ErrorDetail] = []
        do { _ = try IntakeLoader().loadMessage(input) } catch {
            if case .invalidMessage(let e) = error { errors = [HL7ErrorDetail(e)] }
        }
        #expect(errors.count == 1)
        let ack = builder.acknowledgement(for: try? HL7Message(data: input), code: .error, errors: errors, controlID: "F1", now: now)
        let parsed = try HL7Message(text: ack)
        #expect(parsed["MSA-1"] == "AE")
        #expect(parsed["ERR-2"] == "MSH")
    }

    @Test func delimitersInTextAreEscaped() throws {
        let detail = HL7ErrorDetail(condition: .applicationInternalError, location: HL7ErrorLocation(path: "OBX[2]-5[1].5"),
                                    text: "bad | value ^ here & there ~ \\ end\nline 2")
        let ack = builder.acknowledgement(for: nil, code: .reject, errors: [detail], controlID: "X", now: now)
        let parsed = try HL7Message(text: ack)
        #expect(parsed["ERR-8"] == detail.text)
        #expect(parsed["MSA-1"] == "AR")
        #expect(parsed["MSA-2"] == nil)
        #expect(parsed.segment("ERR")?.field(2).first.components.map { $0[0] } == ["OBX", "2", "5", "1", "5"])
    }

    /// Fuzzing found it (Fuzz/Corpus/hl7/crlf-in-sending-facility.hl7): MSH-4 holding "\X0D\"
    /// then "\.br\" decodes to CR LF, which the ACK (whose MSH-6 repeats it) wrote raw.
    @Test func lineBreaksDecodedFromTheMessageAreEscapedInTheACK() throws {
        let input = Data("MSH|^~\\&|SIL|CHU_X;\\X0D\\\\.br\\102024|PFI|CHU|20260101||ORU^R01|C1|P|2.5\rPID|1\r".utf8)
        let original = try HL7Message(data: input)
        let ack = builder.acknowledgement(for: original, code: .error, controlID: "F1", now: now)
        let parsed = try HL7Message(text: ack)
        #expect(parsed.segments.count == 2)
        #expect(parsed["MSA-2"] == "C1")
        // CR LF went out as one line break, read back as LF.
        #expect(original.segment("MSH")?.field(4).value == "CHU_X;\r\n102024")
        #expect(parsed.segment("MSH")?.field(6).value == "CHU_X;\n102024")
    }

    @Test func locationsFromPaths() {
        #expect(HL7ErrorLocation(path: "PID-3")?.erl == "PID^1^3")
        #expect(HL7ErrorLocation(path: "PID-3[2].4.2")?.erl == "PID^1^3^2^4^2")
        #expect(HL7ErrorLocation(path: "OBX[12]-11")?.erl == "OBX^12^11")
        #expect(HL7ErrorLocation(path: "TXA")?.erl == "TXA^1")
        #expect(HL7ErrorLocation(path: "nonsense") == nil)
        #expect(HL7ErrorDetail(.unknownDocumentKind("1-1")).condition == .tableValueNotFound)
        #expect(HL7ErrorDetail(.unsupportedMessageType("ADT^A08")).location?.erl == "MSH^1^9")
    }
}

@Suite struct StayEventTests {
    static let a01 = [
        "MSH|^~\\&|GAM|750803447|PASSERELLE|CHU_X|20231003083000||ADT^A01^ADT_A01|ADT1|P|2.5|||||FRA|8859/15",
        "EVN||20231003083000",
        "PID|1||123456^^^CHU_X&1.2.250.1.999.1.1&ISO^PI||TESTINS^MARIE^^^^^L||19790315|F||||||||||AN1^^^CHU_X&1.2.250.1.999.1.3&ISO^AN",
        "PV1|1|I|CARDIO^^^750803447||||||||||||||||V100^^^CHU_X&1.2.250.1.999.1.2&ISO^VN|||||||||||||||||||||||||20231003081500",
    ]

    @Test func admission() throws {
        let e = try StayEvent(message: try HL7Message(text: Self.a01.joined(separator: "\r")))
        #expect(e.kind == .admission)
        #expect(e.stayID == LocalIdentifier(value: "V100", authority: "1.2.250.1.999.1.2"))
        #expect(e.patientClass == "I")
        #expect(e.admission == ZonedDateTime(iso: "2023-10-03T08:15:00+02:00"))
        #expect(e.discharge == nil)
        #expect(e.patientIPP == LocalIdentifier(value: "123456", authority: "1.2.250.1.999.1.1"))
        #expect(e.finess == "750803447")
        #expect(e.controlID == "ADT1")
    }

    @Test func dischargeFallsBackToEventTimeAndPID18() throws {
        var lines = Self.a01
        lines[0] = lines[0].replacingOccurrences(of: "ADT^A01^ADT_A01", with: "ADT^A03^ADT_A03").replacingOccurrences(of: "|750803447|", with: "|CHU|")
        lines[1] = "EVN||20240110170000||||20240110163000+0100"
        lines[3] = "PV1|1|I"
        let e = try StayEvent(message: try HL7Message(text: lines.joined(separator: "\n")))
        #expect(e.kind == .discharge)
        #expect(e.stayID == LocalIdentifier(value: "AN1", authority: "1.2.250.1.999.1.3"))
        #expect(e.discharge == ZonedDateTime(iso: "2024-01-10T16:30:00+01:00"))
        #expect(e.admission == nil)
        #expect(e.finess == nil)
    }

    @Test func refusals() throws {
        var lines = Self.a01
        lines[0] = lines[0].replacingOccurrences(of: "ADT^A01^ADT_A01", with: "ADT^A08^ADT_A01")
        #expect(throws: IntakeError.unsupportedMessageType("ADT^A08")) { try StayEvent(message: try HL7Message(text: lines.joined(separator: "\r"))) }
        lines = Self.a01
        lines[2] = "PID|1||123456^^^CHU_X&1.2.250.1.999.1.1&ISO^PI"
        lines[3] = "PV1|1|I"
        #expect(throws: IntakeError.self) { try StayEvent(message: try HL7Message(text: lines.joined(separator: "\r"))) }
        lines[3] = Self.a01[3].replacingOccurrences(of: "20231003081500", with: "2023-10-03")
        #expect(throws: IntakeError.invalidField("PV1-44", .timestamp)) {
            try StayEvent(message: try HL7Message(text: lines.joined(separator: "\r")))
        }
    }
}
