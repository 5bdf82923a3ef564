import Journal
import PasserelleCore
import Synchronization

/// Documents just admitted, kept in memory until each of their targets' workers takes them:
/// the first send of a document needs no read-back, hash check or parse of what admission has
/// just built and written. Bounded in bytes (oldest dropped first); a document not found here
/// (a retry, a restart, another node's, evicted, a large file-backed CDA) is read from the
/// journal's blobs as before, so the cache changes speed, never behaviour.
public final class AdmittedDocuments: Sendable {
    struct Key: Hashable {
        var documentID: String
        var version: Int
    }

    private struct Entry {
        var document: OutgoingDocument
        var remaining: Set<Destination>
        var bytes: Int
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var order: [Key] = []
        var bytes = 0
    }

    /// The most CDA bytes held at once.
    public let maxBytes: Int
    private let state = Mutex(State())

    /// 64 MB: a few hundred ordinary documents waiting for a worker; beyond, they are read back.
    public init(maxBytes: Int = 64 << 20) {
        self.maxBytes = maxBytes
    }

    /// Keeps `document` for `targets` (a file-backed CDA is not kept: its file moved into the journal).
    package func insert(_ document: OutgoingDocument, targets: [Destination]) {
        guard document.cda.file == nil, !targets.isEmpty else { return }
        let bytes = document.cda.size
        guard bytes <= maxBytes else { return }
        let key = Key(documentID: document.journal.id, version: document.journal.version)
        state.withLock { state in
            if let old = state.entries.removeValue(forKey: key) {
                state.bytes -= old.bytes
                state.order.removeAll { $0 == key }
            }
            while state.bytes + bytes > maxBytes, !state.order.isEmpty {
                let oldest = state.order.removeFirst()
                state.bytes -= state.entries.removeValue(forKey: oldest)?.bytes ?? 0
            }
            state.entries[key] = Entry(document: document, remaining: Set(targets), bytes: bytes)
            state.order.append(key)
            state.bytes += bytes
        }
    }

    /// The document of `claim` for its target, if still held; forgotten once every target took it.
    package func take(_ claim: ClaimedTransmission) -> OutgoingDocument? {
        let t = claim.transmission
        let key = Key(documentID: t.documentID, version: t.version)
        let found: OutgoingDocument? = state.withLock { state in
            guard var entry = state.entries[key], entry.remaining.remove(t.target) != nil else { return nil }
            if entry.remaining.isEmpty {
                state.entries.removeValue(forKey: key)
                state.order.removeAll { $0 == key }
                state.bytes -= entry.bytes
            } else {
                state.entries[key] = entry
            }
            return entry.document
        }
        guard var document = found else { return nil }
        document.journal = claim.document  // the journal's current view (attempts, state)
        return document
    }
}
