import Foundation
import Testing
@testable import Intake

@Suite struct HL7MessageTests {
    static let sample = [
        "MSH|^~\\&|SIL|CHU_X|PFI|CHU_X|202310030830||ORU^R01^ORU_R01|12345|P|2.5|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
        "PID|1||123456^^^HOP&1.2.250.1.999.1&ISO^PI~279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||DUPONT^JEAN&PAUL",
        "NTE|1||A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F\\.br\\G\\X41C3A9\\",
    ]

    @Test func structureAndPaths() throws {
        let m = try HL7Message(text: Self.sample.joined(separator: "\r"))
        #expect(m.segments.map(\.id) == ["MSH", "PID", "NTE"])
        #expect(m["MSH-1"] == "|")
        #expect(m["MSH-2"] == "^~\\&")
        #expect(m["MSH-9.2"] == "R01")
        #expect(m.messageType == ("ORU", "R01"))
        #expect(m.controlID == "12345")
        #expect(m.version == "2.5")
        #expect(m["PID-3"] == "123456")
        #expect(m["PID-3.4.2"] == "1.2.250.1.999.1")
        #expect(m["PID-3[2].5"] == "INS")
        #expect(m["PID-3[3]"] == nil)
        #expect(m["PID-5.2.2"] == "PAUL")
        #expect(m["PID-99"] == nil)
        #expect(m["ZZZ-1"] == nil)
        let pid = try #require(m.segment("PID"))
        #expect(pid.field(3).repetitions.count == 2)
        #expect(pid.field(3).repetitions[1].subcomponent(4, 3) == "ISO")
        #expect(pid[1] == "1")
        #expect(pid.field(2).isEmpty)
    }

    @Test func escapes() throws {
        let m = try HL7Message(text: Self.sample.joined(separator: "\r"))
        #expect(m["NTE-3"] == "A|B^C&D~E\\F\nGAé")
    }

    @Test(arguments: ["\r", "\n", "\r\n"]) func segmentSeparators(_ sep: String) throws {
        let m = try HL7Message(data: Data((Self.sample.joined(separator: sep) + sep).utf8))
        #expect(m.segments.map(\.id) == ["MSH", "PID", "NTE"])
        #expect(m["PID-5"] == "DUPONT")
    }

    @Test func mllpFramingIsStripped() throws {
        var data = Data([0x0B])
        data += Data(Self.sample.joined(separator: "\r").utf8)
        data += Data([0x1C, 0x0D])
        let m = try HL7Message(data: data)
        #expect(m.segments.count == 3)
        #expect(m["NTE-3"]?.hasSuffix("GAé") == true)
    }

    @Test func customDelimiters() throws {
        let m = try HL7Message(text: "MSH#@!$%#A#B\rPID#1##X@Y!Z%V")
        #expect(m.encoding.component == "@")
        #expect(m["PID-3"] == "X")
        #expect(m["PID-3.2"] == "Y")
        #expect(m["PID-3[2]"] == "Z")
        #expect(m["PID-3[2].1.2"] == "V")
    }

    @Test func latin1AndLatin9() throws {
        func message(_ charset: String, _ body: [UInt8]) -> Data {
            Data("MSH|^~\\&|A|B|C|D|20231003||ORU^R01|1|P|2.5|||||FRA|\(charset)\rNTE|1||".utf8) + Data(body)
        }
        // 0xE9 = é in both; 0xA4 = ¤ in 8859-1 but € in 8859-15.
        #expect(try HL7Message(data: message("8859/1", [0xE9, 0xA4]))["NTE-3"] == "é¤")
        #expect(try HL7Message(data: message("8859/15", [0xE9, 0xA4]))["NTE-3"] == "é€")
        #expect(try HL7Message(data: message("UNICODE UTF-8", Array("é€".utf8)))["NTE-3"] == "é€")
        // Undeclared: UTF-8 when valid, else ISO 8859-1.
        #expect(try HL7Message(data: message("", [0xE9]))["NTE-3"] == "é")
        #expect(throws: HL7ParseError.undecodable(characterSet: "UNICODE UTF-8")) {
            try HL7Message(data: message("UNICODE UTF-8", [0xE9, 0x41]))
        }
        #expect(throws: HL7ParseError.unsupportedCharacterSet("EBCDIC")) {
            try HL7Message(data: message("EBCDIC", [0x41]))
        }
    }

    @Test func errorsNameTheProblemNotTheValue() throws {
        #expect(throws: HL7ParseError.empty) { try HL7Message(data: Data([0x0B, 0x1C, 0x0D])) }
        #expect(throws: HL7ParseError.missingMSH) { try HL7Message(text: "PID|1||SECRET") }
        #expect(throws: HL7ParseError.invalidEncodingCharacters) { try HL7Message(text: "MSH|^^\\&|A") }
        // A letter as field separator (found by the fuzzer: the ACK's "MSA" then split on it).
        #expect(throws: HL7ParseError.invalidEncodingCharacters) { try HL7Message(text: "MSHA^~\\&AGAMAPAS") }
        #expect(throws: HL7ParseError.invalidEncodingCharacters) { try HL7Message(text: "MSH1^~\\&1GAM") }
        do {
            _ = try HL7Message(text: "MSH|^~\\&|A\r\nPID|1\r\nDUPONT JEAN 19790315|x")
            Issue.record("expected an error")
        } catch {
            #expect(error == .invalidSegmentID(segmentNumber: 3))
            #expect(!error.description.contains("DUPONT"))
        }
    }

    @Test func escapingRoundTrip() throws {
        let value = "a|b^c&d~e\\f\ng"
        let escaped = HL7Encoding.standard.escaped(value)
        let m = try HL7Message(text: "MSH|^~\\&|A\rNTE|1||\(escaped)")
        #expect(m["NTE-3"] == value)
    }

    /// CR LF is one Character in Swift: it must be escaped like CR and LF alone (fuzzing found a
    /// sending facility carrying "\X0D\" then "\.br\", which decode to CR then LF, written
    /// raw into the ACK's MSH, which then did not parse).
    @Test(arguments: ["a\r\nb", "a\rb", "a\nb", "a\r\n\r\nb", "\r\n"])
    func lineBreaksAreEscaped(_ value: String) throws {
        let escaped = HL7Encoding.standard.escaped(value)
        #expect(!escaped.unicodeScalars.contains { $0 == "\r" || $0 == "\n" })
        let m = try HL7Message(text: "MSH|^~\\&|A\rNTE|1||\(escaped)|end")
        #expect(m["NTE-4"] == "end")
    }
}
