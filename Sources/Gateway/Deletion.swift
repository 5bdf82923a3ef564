import CDA
import DMP
import Foundation
import Journal
import PasserelleCore

/// A deletion (action `delete`) carries no document: the DMP entry named by `parent_id` is set
/// to Deleted (TD3.3c, ITI-57). The journal still queues it like a document, so the deletion
/// gets a stand-in for the built CDA: its ids and INS, and a marker as its bytes.
enum Deletion {
    /// The bytes journaled as the "built CDA" of a deletion.
    static let marker = Data("passerelle-deletion/1\n".utf8)

    /// The stand-in CDA of a deletion request (ids assigned by the pipeline).
    static func placeholder(_ m: DocumentMetadata) -> CDADocument {
        let id = m.id ?? m.parentID ?? InstanceIdentifier(root: "0")
        return CDADocument(data: marker, origin: .built, kind: m.kind ?? .dischargeLetter, id: id,
                           setID: m.setID ?? m.parentID ?? id, versionNumber: m.versionNumber, replaces: nil,
                           effectiveTime: "", ins: m.patient.shareableINS)
    }
}

extension DMPSender {
    /// Deletes `metadata.parentID` from the DMP through the DMP stage's own TD3.3c request.
    func delete(_ metadata: DocumentMetadata) async -> TransmissionOutcome {
        let stage = DMP.DMPSender(client: client, mapper: mapper, requests: requests, vihf: vihf)
        return Self.outcome(await stage.delete(metadata))
    }
}
