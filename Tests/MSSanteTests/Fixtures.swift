import CDA
import Foundation
import PasserelleCore
import TestSupport

enum Fixtures {
    static let structureOID = "1.2.250.1.999.1"

    static func date(_ text: String) -> ZonedDateTime { ZonedDateTime(iso: text)! }

    static func coded(_ code: String, _ system: String, _ display: String) -> CodedValue {
        CodedValue(code: code, codeSystem: system, displayName: display)
    }

    /// The ANS test patient (INS-NIR de test 279035121518989).
    static func patient(status: IdentityStatus? = .qualified) -> PatientInfo {
        PatientInfo(
            ipp: LocalIdentifier(value: "IPP-000123", authority: "1.2.250.1.999.1.2"),
            ins: INSReference(value: "279035121518989", oid: "1.2.250.1.213.1.4.10"),
            identityStatus: status,
            traits: IdentityTraits(
                birthName: "PAT-TROIS", firstBirthGivenName: "DOMINIQUE", birthGivenNames: "DOMINIQUE MARIE-LOUISE",
                usedName: "PAT-TROIS", usedGivenName: "DOMINIQUE", birthDate: CalendarDate(year: 1979, month: 3, day: 28),
                sex: .female, birthPlace: "51215"))
    }

    static let author = HealthProfessional(
        rpps: "01234567897", familyName: "MEDECIN", givenName: "Jean", prefix: "Dr",
        specialty: coded("G15_10/SM26", "1.2.250.1.213.1.1.4.5", "Qualifié en médecine générale (SM)"))

    static let structure = HealthStructure(finess: "750803447", name: "Hôpital de démonstration")

    static func metadata(status: IdentityStatus? = .qualified, flags: [MetaDMPMSSFlag] = [.destMSSantePS],
                         recipients: [String] = ["dr.martin@hopital.mssante.fr"]) -> DocumentMetadata {
        DocumentMetadata(
            kind: .dischargeLetter,
            id: InstanceIdentifier(root: structureOID, extension: "DOC-1"),
            effectiveTime: date("2026-11-20T14:30:00+01:00"),
            patient: patient(status: status),
            author: author,
            structure: structure,
            stay: Stay(
                id: LocalIdentifier(value: "S2026-0042", authority: "1.2.250.1.999.1.3"),
                admission: date("2026-11-15T09:00:00+01:00"),
                discharge: date("2026-11-20T11:00:00+01:00"),
                facilityType: coded("SA01", "1.2.250.1.71.4.2.4", "Etablissement public de santé"),
                practiceSetting: coded("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement de santé")),
            serviceEvent: ServiceEvent(
                code: coded("IMP", "2.16.840.1.113883.5.4", "Hospitalisation (établissement, y compris HAD)"),
                start: date("2026-11-15T09:00:00+01:00"), end: date("2026-11-20T11:00:00+01:00")),
            flags: flags,
            destinations: [],
            mssante: MSSanteMessage(recipients: recipients))
    }
}
