import Foundation
import PasserelleCore

/// Where an input came from (logs and metrics labels).
public enum IntakeOrigin: String, Sendable, Hashable {
    case inbox
    case mllp
}

/// What became of one claim, as its source must act on it. Intake-level on purpose: the
/// gateway maps its ingest results to it, so the sources know nothing of the journal.
public enum IntakeOutcome: Sendable {
    /// The journal holds it (a new document or stay): the folder moves it to done/, MLLP answers AA.
    case accepted
    /// The journal holds it for the destinations `accepted` only; the other parts are refused for
    /// `refused` (a ``RefusalReason/routing(_:)``): the folder moves it to done/ and writes the
    /// reason file in error/, MLLP answers AE with one ERR per refused part (never AA followed by
    /// a certain failure). Only what is accepted is sent.
    case acceptedInPart(accepted: [Destination], refused: RefusalReason)
    /// The same bytes were journaled before: handled as accepted (done/, AA); nothing new is sent.
    case duplicate
    /// It cannot be used as it is: the folder moves it to error/ with `NAME.error.txt`, MLLP answers AE with the reason.
    case refused(RefusalReason)
    /// The journal (or the claim's own files) cannot be used now: the folder leaves it in work/
    /// for the retry pass, MLLP answers AR (the sender resends later).
    case unavailable
}

/// A claim read and parsed, ready for the pipeline.
public struct LoadedClaim: Sendable {
    public var item: IntakeItem
    /// SHA-256 (hex) of the input's bytes: the same drop or message arriving again is recognised.
    public var sha256: String
    /// For operators: the file's base name, or `mllp:<control id>`.
    public var name: String

    public init(item: IntakeItem, sha256: String, name: String) {
        self.item = item
        self.sha256 = sha256
        self.name = name
    }
}

/// Why a claim could not be loaded.
public enum ClaimLoadFailure: Error, Sendable {
    /// Its content cannot be used: refuse it with this reason.
    case refused(RefusalReason)
    /// It cannot be read now (an I/O error): kept for a later try, like a journal outage.
    case unreadable(String)
}

/// Something inputs arrive through (the watched folder, the MLLP listener): claims come as an
/// `AsyncSequence`; each one is started (``begin(_:)``, the poison guard), loaded, handed to the
/// pipeline by the gateway's one adapter, then settled with ``acknowledge(_:_:)``.
///
/// A source may see several of its claims in flight at once (the gateway runs up to
/// `[folders] intake_concurrency`), so every requirement must be safe to call concurrently for
/// different claims; one claim is never handled twice at the same time.
public protocol IntakeSource: Sendable {
    associatedtype Claim: Sendable
    var origin: IntakeOrigin { get }
    /// The claims, until the consuming task is cancelled.
    func claims() -> AsyncStream<Claim>
    /// Names the claim in logs (file names, an MLLP control id or digest): never patient data.
    func label(_ claim: Claim) -> String
    /// Marks the claim as being processed (its interrupted-attempts count). Returns a reason when
    /// earlier processes died on it too often: it is then not loaded, only acknowledged
    /// `.refused(reason)`.
    func begin(_ claim: Claim) async -> RefusalReason?
    /// Reads and parses the claim (no journal, no network).
    func load(_ claim: Claim) throws(ClaimLoadFailure) -> LoadedClaim
    /// Settles the claim; called exactly once per claim, after ``begin(_:)``.
    func acknowledge(_ claim: Claim, _ outcome: IntakeOutcome) async
}
