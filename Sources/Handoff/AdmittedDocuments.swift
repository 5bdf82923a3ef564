import Journal
import OpenSSLKit
import PasserelleCore
import Synchronization

/// Documents just admitted, kept in memory until each of their targets' workers takes them:
/// the first send of a document needs no read-back, hash check or parse of what admission has
/// just built and written. Bounded in bytes; a document not found here (a retry, a restart,
/// another node's, not kept, a large file-backed CDA) is read from the journal's blobs as
/// before, so the cache changes speed, never behaviour.
///
/// Admission holds a document *before* the transaction that queues it commits: a worker may
/// claim it the moment it does, before admission's task resumes (with PostgreSQL, a worker
/// just finishing a send often did, and read the document back from the database). Until then
/// the entry is only a candidate: ``take(_:)`` hands it out only when its CDA's digest is the
/// built CDA the journal recorded, and admission ``remove(documentID:version:)``s it when the
/// journal does not admit it (a duplicate, a failure).
///
/// When full, a new document is not kept, rather than the oldest dropped: workers take the
/// queue oldest first, so the oldest held documents are the next ones sent, and dropping them
/// made every document of a backlog larger than the cache read back. Only documents held
/// longer than `staleAfter` (a target whose workers stopped taking) make room.
///
/// Admission waits for room (``waitForRoom(_:for:)``) while workers are freeing it: in a
/// backlog, intake would otherwise run ahead of delivery and leave every document beyond the
/// 64 MB to be read back (on PostgreSQL, about a third of a 1,000-document backlog). Only when
/// every held document waits for that one same target, the new document's only one: then the
/// wait costs nothing, intake simply follows that target's pace. With several targets a wait
/// would pace every target by the slowest (a slow relay holding mixed documents would hold
/// DMP-only ones back), so admission goes on and the excess is read back. It never waits on
/// workers that stopped taking either.
public final class AdmittedDocuments: Sendable {
    struct Key: Hashable {
        var documentID: String
        var version: Int
    }

    private struct Entry {
        var document: OutgoingDocument
        var remaining: Set<Destination>
        var bytes: Int
        var admittedAt: ContinuousClock.Instant
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var order: [Key] = []
        var bytes = 0
        /// When a held document last left (every target took it, or it was removed).
        var lastFreed: ContinuousClock.Instant?

        /// Whether every held document waits for `target` alone.
        func onlyAwaits(_ target: Destination) -> Bool {
            entries.values.allSatisfy { $0.remaining.count == 1 && $0.remaining.first == target }
        }

        /// Whether `insert` would find room: free bytes, or a stale oldest entry it may drop.
        func fits(_ needed: Int, maxBytes: Int, staleAfter: Duration, now: ContinuousClock.Instant) -> Bool {
            if bytes + needed <= maxBytes { return true }
            guard let oldest = order.first, let entry = entries[oldest] else { return false }
            return now - entry.admittedAt > staleAfter
        }
    }

    /// The most CDA bytes held at once.
    public let maxBytes: Int
    /// How long a held document may keep its place against a new one.
    public let staleAfter: Duration
    /// How long admission keeps waiting for room after the last document left: beyond it, the
    /// workers are taken to have stopped (a target down, failing sends).
    public let patience: Duration
    private let state = Mutex(State())
    private let freed = WakeSignal()

    /// 64 MB: a few hundred ordinary documents waiting for a worker; beyond, they are read back.
    public init(maxBytes: Int = 64 << 20, staleAfter: Duration = .seconds(60), patience: Duration = .milliseconds(250)) {
        self.maxBytes = maxBytes
        self.staleAfter = staleAfter
        self.patience = patience
    }

    /// Returns when a CDA of `bytes` for `targets` would be kept by ``insert(_:targets:now:)``;
    /// at once when it never could, when it has several targets or the held documents wait for
    /// another target than its one (see the type), or when no document left for ``patience``
    /// (workers not taking: admission must go on; its documents are read back later).
    /// Cancellation ends the wait.
    package func waitForRoom(_ bytes: Int, for targets: [Destination]) async {
        guard bytes <= maxBytes, targets.count == 1, let target = targets.first else { return }
        while !Task.isCancelled {
            let (fits, lastFreed) = state.withLock { state in
                (state.fits(bytes, maxBytes: maxBytes, staleAfter: staleAfter, now: .now) || !state.onlyAwaits(target), state.lastFreed)
            }
            guard !fits, let lastFreed else { return }
            let left = patience - (ContinuousClock.now - lastFreed)
            guard left > .zero else { return }
            let seconds = Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18
            await freed.wait(timeout: seconds) { self.state.withLock { $0.lastFreed != lastFreed } }
        }
    }

    /// Keeps `document` for `targets` (a file-backed CDA is not kept: its file moved into the
    /// journal), if it fits and no document of the same id and version is held (that one may be
    /// journaled; this one is a candidate the journal may refuse). Returns whether it was kept.
    @discardableResult
    package func insert(_ document: OutgoingDocument, targets: [Destination], now: ContinuousClock.Instant = .now) -> Bool {
        guard document.cda.file == nil, !targets.isEmpty else { return false }
        let bytes = document.cda.size
        guard bytes <= maxBytes else { return false }
        let key = Key(documentID: document.journal.id, version: document.journal.version)
        return state.withLock { state in
            guard state.entries[key] == nil else { return false }
            // `order` is by admission: the stale ones are at its front.
            while state.bytes + bytes > maxBytes, let oldest = state.order.first,
                  let entry = state.entries[oldest], now - entry.admittedAt > staleAfter {
                state.order.removeFirst()
                state.entries.removeValue(forKey: oldest)
                state.bytes -= entry.bytes
            }
            guard state.bytes + bytes <= maxBytes else { return false }
            state.entries[key] = Entry(document: document, remaining: Set(targets), bytes: bytes, admittedAt: now)
            state.order.append(key)
            state.bytes += bytes
            return true
        }
    }

    /// The document of `claim` for its target, if still held and its CDA is the one the journal
    /// recorded for it; forgotten once every target took it (or when it is not that CDA).
    package func take(_ claim: ClaimedTransmission) -> OutgoingDocument? {
        let t = claim.transmission
        let key = Key(documentID: t.documentID, version: t.version)
        let found: OutgoingDocument? = state.withLock { state in
            guard var entry = state.entries[key] else { return nil }
            guard entry.document.cda.sha256.hexString == claim.document.builtSHA256 else {
                Self.forget(key, in: &state)
                return nil
            }
            guard entry.remaining.remove(t.target) != nil else { return nil }
            if entry.remaining.isEmpty {
                Self.forget(key, in: &state)
            } else {
                state.entries[key] = entry
            }
            return entry.document
        }
        freed.signal()  // a waiting admission re-checks its room (cheap when none waits)
        guard var document = found else { return nil }
        document.journal = claim.document  // the journal's current view (attempts, state)
        return document
    }

    /// Forgets a candidate the journal did not admit (see ``insert(_:targets:now:)``); call it
    /// only for a document this caller's `insert` kept.
    package func remove(documentID: String, version: Int) {
        state.withLock { Self.forget(Key(documentID: documentID, version: version), in: &$0) }
        freed.signal()
    }

    private static func forget(_ key: Key, in state: inout State) {
        guard let entry = state.entries.removeValue(forKey: key) else { return }
        state.order.removeAll { $0 == key }
        state.bytes -= entry.bytes
        state.lastFreed = .now
    }
}
