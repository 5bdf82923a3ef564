import Foundation
import PasserelleCore

/// Everything the journal knows about one document: its versions, and per transmission its
/// attempts, acknowledgements and operator actions. What `passerelle show` prints and the
/// console's Document page shows, assembled once. Patient identity is the masked INS of each
/// version only.
public struct DocumentHistory: Sendable, Hashable {
    /// One transmission with what happened to it, oldest first.
    public struct TransmissionHistory: Sendable, Hashable {
        public var transmission: Transmission
        public var attempts: [Attempt]
        public var acknowledgements: [Acknowledgement]
        public var operatorActions: [OperatorAction]
    }

    /// One version with its transmissions.
    public struct Version: Sendable, Hashable {
        public var document: JournalDocument
        public var transmissions: [TransmissionHistory]
    }

    public var documentID: String
    /// Oldest first; never empty.
    public var versions: [Version]
}

extension JournalQueries {
    /// The history of document `id`; nil when the journal has no version of it.
    public func documentHistory(id: String) async throws(JournalError) -> DocumentHistory? {
        let documents = try await documentVersions(id: id)
        guard !documents.isEmpty else { return nil }
        let transmissions = try await transmissions(matching: TransmissionFilter(documentID: id))
        var versions: [DocumentHistory.Version] = []
        for document in documents {
            var entries: [DocumentHistory.TransmissionHistory] = []
            for t in transmissions where t.version == document.version {
                entries.append(.init(transmission: t, attempts: try await attempts(transmissionID: t.id),
                                     acknowledgements: try await acknowledgements(transmissionID: t.id),
                                     operatorActions: try await operatorActions(transmissionID: t.id)))
            }
            versions.append(.init(document: document, transmissions: entries))
        }
        return DocumentHistory(documentID: id, versions: versions)
    }
}
