import Foundation
import Testing
import TestSupport
@testable import PasserelleCore

@Suite("Sidecar metadata")
struct MetadataTests {
    static func example() throws -> Data {
        try Data(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/examples/sidecar-ldl.json"))
    }

    static func problems(_ json: String) throws -> [MetadataProblem] {
        try DocumentMetadata.decode(sidecar: Data(json.utf8)).validate()
    }

    @Test("the documented example is valid and decodes every field")
    func example() throws {
        let m = try DocumentMetadata.decodeValidated(sidecar: Self.example())
        #expect(m.kind == .dischargeLetter)
        #expect(m.effectiveTime?.utcOffsetSeconds == 3600)
        #expect(m.effectiveTime?.hl7 == "20261120143000+0100")
        #expect(m.effectiveTime?.hl7UTC == "20261120133000")
        #expect(m.patient.shareableINS?.value == "279035121518989")
        #expect(m.patient.traits.birthDate == CalendarDate(year: 1979, month: 3, day: 28))
        #expect(try m.author?.identifier()?.nationalID == "801234567897")
        #expect(m.effectiveLegalAuthenticator == m.author)
        #expect(m.effectiveTitle == "Lettre de liaison de sortie")
        #expect(m.effectiveSetID == m.id)
        #expect(m.flags == [.ackReception])
        #expect(m.destinations == [.dmp, .mssantePS])
        #expect(m.stay?.facilityType?.code == "SA01")
        #expect(m.mssante?.recipients == ["dr.traitant@medecin.mssante.fr"])
    }

    @Test("JSON round-trip keeps every field, including the time zone")
    func roundTrip() throws {
        let m = try DocumentMetadata.decodeValidated(sidecar: Self.example())
        let encoded = try m.sidecarJSON()
        let again = try DocumentMetadata.decodeValidated(sidecar: encoded)
        #expect(again == m)
        let text = String(decoding: encoded, as: UTF8.self)
        #expect(text.contains("\"effective_time\" : \"2026-11-20T14:30:00+01:00\""))
        #expect(text.contains("\"identity_status\" : \"QUAL\""))
        #expect(text.contains("\"kind\" : \"ldl\""))
    }

    @Test("an empty sidecar lists every missing required field")
    func everythingMissing() throws {
        let paths = Set(try Self.problems("{}").map(\.path))
        #expect(paths == [
            "kind", "effective_time", "patient.ipp", "patient.identity_status",
            "patient.traits.birth_name", "patient.traits.first_birth_given_name",
            "patient.traits.birth_date", "patient.traits.sex", "author", "destinations",
        ])
    }

    @Test("a QUAL identity going to the DMP needs INS, all traits, and a stay for an LDL")
    func qualifiedMissing() throws {
        let json = #"""
        {"kind": "ldl", "effective_time": "2026-11-20T14:30:00Z", "destinations": ["dmp"],
         "patient": {"ipp": {"value": "1", "authority": "1.2.3"}, "identity_status": "QUAL",
                     "traits": {"birth_name": "X", "first_birth_given_name": "Y", "birth_date": "1979-03-28", "sex": "F"}},
         "author": {"rpps": "01234567897", "family_name": "M", "specialty": {"code": "G15_10/SM26", "code_system": "1.2.250.1.213.1.1.4.5", "display_name": "MG"}}}
        """#
        let paths = Set(try Self.problems(json).map(\.path))
        #expect(paths == ["patient.ins", "patient.traits.birth_given_names", "patient.traits.birth_place", "stay", "service_event"])
    }

    @Test("bad values are reported with their path, all at once")
    func badValues() throws {
        let json = #"""
        {"kind": "lettre", "effective_time": "2026-11-20T14:30:00", "destinations": ["dmp", "fax"],
         "action": "replace", "version_number": 1,
         "patient": {"ipp": {"value": "1", "authority": "not-an-oid"}, "identity_status": "QUAL",
                     "ins": {"value": "279035121518988", "oid": "1.2.250.1.213.1.4.10"},
                     "traits": {"birth_name": "X", "first_birth_given_name": "Y", "birth_given_names": "Y",
                                "birth_date": "28/03/1979", "sex": "X", "birth_place": "51215"},
                     "telecom": ["0600000000"], "adress": {}},
         "author": {"rpps": "01234567898", "family_name": "M"},
         "flags": ["DESTDMP", "NOPE"],
         "mssante": {"recipients": ["not an address"]}}
        """#
        let problems = try Self.problems(json)
        let byPath = Dictionary(grouping: problems, by: \.path)
        for path in ["kind", "effective_time", "destinations[1]", "patient.ipp.authority", "patient.ins.value",
                     "patient.traits.birth_date", "patient.traits.sex", "patient.telecom[0]", "patient.adress",
                     "author.rpps", "author.specialty", "flags[1]", "mssante.recipients[0]", "parent_id", "version_number"] {
            #expect(byPath[path] != nil, "expected a problem at \(path); got \(problems)")
        }
        #expect(byPath["patient.adress"]?.first?.message.contains("did you mean 'address'") == true)
        #expect(byPath["patient.traits.sex"]?.first?.message.contains("F, M, U") == true)
        #expect(byPath["effective_time"]?.first?.message.contains("UTC offset") == true)
        // No patient data in messages: the INS only appears masked, names never.
        for p in problems {
            #expect(!p.description.contains("279035121518988"))
        }
    }

    @Test("traits that contradict the INS are errors naming the trait")
    func mismatch() throws {
        var m = try DocumentMetadata.decodeValidated(sidecar: Self.example())
        m.patient.traits.sex = .male
        m.patient.traits.birthPlace = "75056"
        let problems = m.validate()
        // The first mismatch found is reported (sex is checked before the birth place).
        #expect(problems.map(\.path) == ["patient.traits.sex"])
        #expect(problems[0].message.contains("2***********989"))
    }

    @Test("identity not qualified cannot go to the DMP, and never exposes the INS")
    func notQualified() throws {
        var m = try DocumentMetadata.decodeValidated(sidecar: Self.example())
        m.patient.identityStatus = .recovered
        #expect(m.validate().map(\.path) == ["patient.identity_status"])
        #expect(m.patient.shareableINS == nil)
        m.destinations = [.mssantePS]
        #expect(m.validate().isEmpty)
    }

    @Test("configured defaults: generated id under the structure OID, set id, structure")
    func defaults() throws {
        var m = try DocumentMetadata.decodeValidated(sidecar: Self.example())
        m.id = nil
        m.structure = nil
        let structure = PasserelleConfiguration.Structure(finess: try FINESS("750803447"), name: "H", oid: "1.2.250.1.999.1")
        let d = m.withDefaults(from: structure)
        #expect(d.id?.root == "1.2.250.1.999.1")
        #expect(d.id?.extension?.count == 36)
        #expect(d.setID == d.id)
        #expect(d.structure == HealthStructure(finess: "750803447", name: "H"))
        #expect(d.validate().isEmpty)
        // A sidecar id is kept.
        let kept = try DocumentMetadata.decodeValidated(sidecar: Self.example()).withDefaults(from: structure)
        #expect(kept.id?.extension == "LDL-2026-000123")
    }

    @Test("malformed JSON is one clear error")
    func malformed() {
        #expect(throws: MetadataError.self) { try DocumentMetadata.decode(sidecar: Data("{".utf8)) }
        #expect(throws: MetadataError.self) { try DocumentMetadata.decode(sidecar: Data("[]".utf8)) }
    }

    @Test("date-times keep their offset", arguments: [
        ("2026-11-20T14:30:00+01:00", 3600, "2026-11-20T14:30:00+01:00"),
        ("2026-11-20T14:30+0200", 7200, "2026-11-20T14:30:00+02:00"),
        ("2026-07-01T00:00:00.250Z", 0, "2026-07-01T00:00:00+00:00"),
        ("2026-11-20T14:30:00-03:30", -12600, "2026-11-20T14:30:00-03:30"),
    ])
    func dateTimes(_ input: String, _ offset: Int, _ iso: String) throws {
        let t = try #require(ZonedDateTime(iso: input))
        #expect(t.utcOffsetSeconds == offset)
        #expect(t.iso == iso)
    }

    @Test("date-times without offset or impossible are refused",
          arguments: ["2026-11-20T14:30:00", "2026-02-30T10:00:00Z", "2026-11-20", "2026-11-20T25:00:00Z", "2026-11-20T10:00:00+1",
                      // Digits of other scripts, a combining mark on a digit, an empty fraction, trailing text.
                      "\u{FF12}026-11-20T14:30:00Z", "2026-11-20T14:30:00+01:0\u{0660}", "2026-11-20T14:30:00\u{301}Z",
                      "2026-11-20T14:30:00.Z", "2026-11-20T14:30:00Zé", "2026-11-20T14:30:00 Z", "2026-11-2\u{0660}T14:30:00Z"])
    func badDateTimes(_ input: String) {
        #expect(ZonedDateTime(iso: input) == nil)
    }
}
