import CDA
import Foundation
import OpenSSLKit
import PasserelleCore

/// A deletion (action `delete`): the DMP entry named by `parent_id` is set to Deleted (TD3.3c,
/// ITI-57), from the metadata alone. The journal still queues it like a document, so the
/// deletion gets a stand-in for the built CDA: its ids and INS, and a marker as its bytes —
/// unless it is also notified by MSSanté: its built blob is then the withdrawn document it
/// carried (the last version, HL7 OBX-5), from which the notice's XDM is built.
package enum Deletion {
    /// The bytes journaled as the "built CDA" of a deletion.
    package static let marker = Data("passerelle-deletion/1\n".utf8)
    /// SHA-256 (hex) of ``marker``: a journaled deletion whose built blob has it carries no document.
    package static let markerSHA256 = Digest.sha256(marker).hexString

    /// The stand-in CDA of a deletion request (ids assigned by the pipeline).
    package static func placeholder(_ m: DocumentMetadata) -> CDADocument {
        let id = m.id ?? m.parentID ?? InstanceIdentifier(root: "0")
        return CDADocument(data: marker, origin: .built, kind: m.kind ?? .dischargeLetter, id: id,
                           setID: m.setID ?? m.parentID ?? id, versionNumber: m.versionNumber, replaces: nil,
                           effectiveTime: "", ins: m.patient.shareableINS)
    }
}
