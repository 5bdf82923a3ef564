import Foundation
import PasserelleCore

/// Why a document may not be mailed as asked. Raised before anything is sent.
public enum MSSanteRoutingError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// Neither DESTMSSANTEPS nor DESTMSSANTEPAT is requested.
    case noMSSanteDestination(documentID: String)
    /// The restriction flags forbid the requested destinations (ANS MSSanté routing matrix).
    case forbiddenCombination(documentID: String, destinations: [Destination], flags: [MetaDMPMSSFlag], rule: String)
    /// A patient address needs a qualified identity (QUAL) with a valid INS.
    case patientRequiresQualifiedINS(documentID: String, status: IdentityStatus?)
    /// Professionals are requested but no professional address is given.
    case noProfessionalRecipient(documentID: String)
    /// A recipient is not a plausible mail address.
    case invalidAddress(documentID: String, position: Int)
    /// A patient-domain address is listed among the professional recipients: the patient is
    /// reached only through DESTMSSANTEPAT, where the matrix is applied.
    case patientAddressAmongProfessionals(documentID: String, position: Int)

    public var description: String {
        switch self {
        case let .noMSSanteDestination(id):
            "document \(id): no MSSanté destination (DESTMSSANTEPS or DESTMSSANTEPAT) is requested"
        case let .forbiddenCombination(id, destinations, flags, rule):
            "document \(id): sending to \(destinations.map(\.rawValue).joined(separator: " + ")) is forbidden with flags "
                + "[\(flags.map(\.rawValue).joined(separator: ", "))]: \(rule); fix the restriction or destination flags"
        case let .patientRequiresQualifiedINS(id, status):
            "document \(id): the patient can be mailed only for a qualified identity (QUAL) with a valid INS; "
                + "identity status is \(status?.rawValue ?? "missing")"
        case let .noProfessionalRecipient(id):
            "document \(id): DESTMSSANTEPS is requested but no professional MSSanté address is given"
        case let .invalidAddress(id, position):
            "document \(id): recipient #\(position + 1) is not a valid mail address"
        case let .patientAddressAmongProfessionals(id, position):
            "document \(id): recipient #\(position + 1) is a patient address (@\(MSSanteRouting.patientDomain)); "
                + "use DESTMSSANTEPAT to reach the patient"
        }
    }

    public var errorDescription: String? { description }
}

/// The recipients a document may go to, once the routing matrix has been applied.
public struct MSSanteRecipients: Sendable, Hashable {
    /// Professional, organisation or application mailboxes.
    public var professionals: [String]
    /// `<INS matricule>@patient.mssante.fr`, when the patient is a recipient.
    public var patient: String?

    public init(professionals: [String], patient: String?) {
        self.professionals = professionals
        self.patient = patient
    }

    /// Every address, professionals first.
    public var all: [String] { professionals + (patient.map { [$0] } ?? []) }
}

/// The MSSanté recipients of a document: the ANS routing matrix (``PasserelleCore/RoutingMatrix``,
/// already applied at intake: here it is a defensive check, the same function), the patient's
/// address for a qualified identity, and the professional addresses.
public enum MSSanteRouting {
    /// The domain of patients' mailboxes (Mon espace santé).
    public static let patientDomain = "patient.mssante.fr"

    /// The patient's MSSanté address, only for a qualified identity with a valid INS.
    public static func patientAddress(for patient: PatientInfo) -> String? {
        patient.shareableINS.map { "\($0.value)@\(patientDomain)" }
    }

    /// Applies the matrix to `metadata` (flags, destinations, patient identity and
    /// `mssante.recipients`). Destinations come from the DEST* flags and `destinations`.
    public static func recipients(for metadata: DocumentMetadata) throws(MSSanteRoutingError) -> MSSanteRecipients {
        let id = metadata.id?.description ?? "(no id)"
        let flags = Set(metadata.flags)
        var destinations = Set(metadata.destinations)
        for flag in flags { if let d = flag.destination { destinations.insert(d) } }
        let toPS = destinations.contains(.mssantePS)
        let toPatient = destinations.contains(.mssantePatient)
        guard toPS || toPatient else { throw .noMSSanteDestination(documentID: id) }

        let requested = [Destination.mssantePS, .mssantePatient].filter(destinations.contains)
        let sortedFlags = MetaDMPMSSFlag.allCases.filter(flags.contains)
        if let rule = RoutingMatrix.violation(destinations: destinations, flags: flags) {
            throw .forbiddenCombination(documentID: id, destinations: requested, flags: sortedFlags, rule: rule.text(.en))
        }

        var professionals: [String] = []
        if toPS {
            let given = metadata.mssante?.recipients ?? []
            for (index, raw) in given.enumerated() {
                let address = raw.trimmingWhitespace()
                guard isMailAddress(address) else { throw .invalidAddress(documentID: id, position: index) }
                if address.lowercased().hasSuffix("@" + patientDomain) {
                    throw .patientAddressAmongProfessionals(documentID: id, position: index)
                }
                if !professionals.contains(where: { $0.caseInsensitiveCompare(address) == .orderedSame }) {
                    professionals.append(address)
                }
            }
            guard !professionals.isEmpty else { throw .noProfessionalRecipient(documentID: id) }
        }
        var patient: String?
        if toPatient {
            guard let address = patientAddress(for: metadata.patient) else {
                throw .patientRequiresQualifiedINS(documentID: id, status: metadata.patient.identityStatus)
            }
            patient = address
        }
        return MSSanteRecipients(professionals: professionals, patient: patient)
    }

    /// A deliberately simple check (one `@`, non-empty local part and dotted domain, no
    /// spaces or angle brackets) — enough to keep header and SMTP command injection out.
    static func isMailAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."),
              !parts[1].hasSuffix(".") else { return false }
        return text.unicodeScalars.allSatisfy { $0.value > 32 && $0.value < 127 && !"<>()[],;:\"\\".unicodeScalars.contains($0) }
    }
}
