import CDA
import Foundation
import PasserelleCore
import TestSupport

enum Fixtures {
    static let structureOID = "1.2.250.1.999.1"

    /// The shared sample (ANS test patient, discharge letter) with this suite's id, identity
    /// status, MetaDMPMSS flags and MSSanté recipients.
    static func metadata(status: IdentityStatus? = .qualified, flags: [MetaDMPMSSFlag] = [.destMSSantePS],
                         recipients: [String] = ["dr.martin@hopital.mssante.fr"]) -> DocumentMetadata {
        var metadata = SampleMetadata.document(kind: .dischargeLetter, id: InstanceIdentifier(root: structureOID, extension: "DOC-1"),
                                               flags: flags, destinations: [])
        metadata.patient.identityStatus = status
        metadata.mssante = MSSanteMessage(recipients: recipients)
        return metadata
    }
}
