import CDA
import Foundation
import PasserelleCore

/// A deletion (action `delete`) carries no document: the DMP entry named by `parent_id` is set
/// to Deleted (TD3.3c, ITI-57). The journal still queues it like a document, so the deletion
/// gets a stand-in for the built CDA: its ids and INS, and a marker as its bytes.
package enum Deletion {
    /// The bytes journaled as the "built CDA" of a deletion.
    package static let marker = Data("passerelle-deletion/1\n".utf8)

    /// The stand-in CDA of a deletion request (ids assigned by the pipeline).
    package static func placeholder(_ m: DocumentMetadata) -> CDADocument {
        let id = m.id ?? m.parentID ?? InstanceIdentifier(root: "0")
        return CDADocument(data: marker, origin: .built, kind: m.kind ?? .dischargeLetter, id: id,
                           setID: m.setID ?? m.parentID ?? id, versionNumber: m.versionNumber, replaces: nil,
                           effectiveTime: "", ins: m.patient.shareableINS)
    }
}
