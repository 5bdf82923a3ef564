import Foundation
import Testing
import TestSupport
@testable import PasserelleCore

@Suite("CI-SIS value sets and [cda] defaults")
struct ValueSetTests {
    @Test("the shipped JDV_J02 and JDV_J04 are the ANS files", arguments: [
        (CISISValueSets.facilityType, "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS"),
        (CISISValueSets.practiceSetting, "JDV_J04_XdsPracticeSettingCode_CISIS"),
    ])
    func matchesANSFiles(_ set: CISISValueSet, _ file: String) throws {
        let jdv = try DocumentKindTests.jdv(file)
        #expect(set.name == file)
        #expect(set.concepts.count == jdv.count)
        for concept in set.concepts {
            let entry = try #require(jdv[concept.code], "\(concept.code) is not in \(file)")
            #expect(entry.system == concept.codeSystem)
            #expect(entry.display == concept.displayName)
        }
    }

    @Test("codes are checked against the value set; a missing display name is filled in")
    func check() throws {
        let j02 = CISISValueSets.facilityType
        #expect(try j02.check(CodedValue(code: "SA01", codeSystem: OID.facilityType, displayName: "")).get().displayName
                == "Etablissement public de santé")
        #expect(throws: CodedValueProblem.self) { try j02.check(CodedValue(code: "SA99", codeSystem: OID.facilityType, displayName: "")).get() }
        #expect(throws: CodedValueProblem.self) { try j02.check(CodedValue(code: "SA01", codeSystem: OID.practiceSetting, displayName: "")).get() }
        #expect(throws: CodedValueProblem.self) { try j02.check(CodedValue(code: "SA01", codeSystem: OID.facilityType, displayName: "Hôpital")).get() }
        #expect(try CodedValue.parse(caretSeparated: "HAD ^ 1.2.250.1.213.1.1.4.9").get() == CodedValue(code: "HAD", codeSystem: OID.practiceSetting, displayName: ""))
        #expect(throws: CodedValueProblem.self) { try CodedValue.parse(caretSeparated: "SA01").get() }
        #expect(throws: CodedValueProblem.self) { try CodedValue.parse(caretSeparated: "SA01^TRE_R02^Etablissement public de santé").get() }
        #expect(throws: CodedValueProblem.self) { try CodedValue(code: "SM26", codeSystem: OID.authorSpecialty, displayName: "x").checkedAuthorSpecialty().get() }
        #expect(throws: CodedValueProblem.self) { try CodedValue(code: "G15_10", codeSystem: OID.authorSpecialty, displayName: "").checkedAuthorSpecialty().get() }
    }

    @Test("[cda] default_* are read, checked, and errors name file, line and key")
    func configuration() throws {
        let good = ConfigurationTests.minimal + """

            [cda]
            default_author_specialty = "G15_10/SM26^1.2.250.1.213.1.1.4.5^Médecin - Qualifié en médecine générale (SM)"
            default_facility_type = "SA01^1.2.250.1.71.4.2.4^Etablissement public de santé"
            default_practice_setting = "ETABLISSEMENT^1.2.250.1.213.1.1.4.9"
            """
        let c = try PasserelleConfiguration.parse(good, file: "/etc/passerelle/p.toml")
        #expect(c.cda.defaults.authorSpecialty?.code == "G15_10/SM26")
        #expect(c.cda.defaults.facilityType == CodedValue(code: "SA01", codeSystem: OID.facilityType, displayName: "Etablissement public de santé"))
        #expect(c.cda.defaults.practiceSetting?.displayName == "Etablissement de santé")
        #expect(try PasserelleConfiguration.parse(ConfigurationTests.minimal, file: "/p.toml").cda.defaults == DocumentDefaults())

        let bad = ConfigurationTests.minimal + """

            [cda]
            default_author_specialty = "SM26^1.2.250.1.213.1.1.4.5^Médecine générale"
            default_facility_type = "SA99^1.2.250.1.71.4.2.4"
            default_practice_setting = "ETABLISSEMENT"
            """
        let errors = ConfigurationTests.errors(bad)
        #expect(errors.map(\.line) == [21, 22, 23])
        let keys = errors.map { e -> String in
            if case .invalidValue(let file, _, let key, _) = e, file == "/etc/passerelle/test.toml" { return key }
            return "other: \(e)"
        }
        #expect(keys == ["cda.default_author_specialty", "cda.default_facility_type", "cda.default_practice_setting"])
        #expect(errors[1].description.contains("\"SA99\" is not in JDV_J02_XdsHealthcareFacilityTypeCode_CISIS"))
        #expect(errors[2].description.contains("code^codeSystemOID^displayName"))
    }

    @Test("defaults fill only what is missing and never invent a stay")
    func defaults() {
        let specialty = CodedValue(code: "G15_10", codeSystem: OID.authorSpecialty, displayName: "Médecin")
        let own = CodedValue(code: "G15_10/SM27", codeSystem: OID.authorSpecialty, displayName: "Médecin - Médecine interne (SM)")
        let facility = CodedValue(code: "SA01", codeSystem: OID.facilityType, displayName: "Etablissement public de santé")
        let defaults = DocumentDefaults(authorSpecialty: specialty, facilityType: facility, practiceSetting: nil)
        var metadata = DocumentMetadata(kind: .biologyReport, effectiveTime: nil, patient: PatientInfo(),
                                        author: HealthProfessional(rpps: "10001234567"), destinations: [.dmp])
        #expect(defaults.apply(to: metadata).author?.specialty == specialty)
        #expect(defaults.apply(to: metadata).stay == nil)
        metadata.author?.specialty = own
        metadata.stay = Stay()
        let applied = defaults.apply(to: metadata)
        #expect(applied.author?.specialty == own)
        #expect(applied.stay?.facilityType == facility)
        #expect(applied.stay?.practiceSetting == nil)
    }
}
