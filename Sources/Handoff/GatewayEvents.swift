import Foundation
import Intake
import Journal
import PasserelleCore

/// How one send ended, as the journal recorded it.
public enum SendResult: String, Sendable, Hashable {
    /// Accepted by the peer (sent, acknowledged…).
    case sent
    /// A temporary failure: the transmission waits for its next attempt.
    case retry
    /// Failed for good (business refusal, or retries exhausted).
    case failed
}

/// What the gateway tells an observer (metrics) as documents move. Called inline by the
/// pipeline, the intake paths and the workers: implementations must be quick and must not
/// throw. Arguments carry kinds, targets and reason codes only — never patient data.
public protocol GatewayEvents: Sendable {
    /// A document was journaled (not a duplicate input, not a stay). `kind` is nil for a
    /// producer CDA whose sidecar leaves the kind to the CDA header.
    func documentReceived(kind: DocumentKind?, source: IntakeOrigin)
    /// An input was refused (moved to error/ or answered AE); `reason` is a stable code.
    func documentRefused(reason: String, source: IntakeOrigin)
    /// A journaled document's CDA was built (or the producer's CDA checked) and recorded.
    func documentBuilt(kind: DocumentKind)
    /// A send finished and its outcome was recorded.
    func sendFinished(target: Destination, kind: DocumentKind, result: SendResult, duration: Duration)
    /// One pass over the MSSanté acknowledgement mailbox matched these DSN/MDN.
    func acknowledgementsRead(delivered: Int, read: Int, failed: Int)
    /// A peer (`dmp`, `mssante_ps`, `mssante_patient`, `mssante_imap`) became unavailable
    /// (`active`) or available again; see ``FaultAlerts``.
    func targetFault(target: String, active: Bool)
    /// One stage of one document took this long (benchmarks, profiling; see ``GatewayStage``).
    func stageFinished(_ stage: GatewayStage, timing: StageTiming)
}

extension GatewayEvents {
    public func acknowledgementsRead(delivered: Int, read: Int, failed: Int) {}
    public func targetFault(target: String, active: Bool) {}
    public func stageFinished(_ stage: GatewayStage, timing: StageTiming) {}
}

/// The default observer: ignores everything.
public struct NoGatewayEvents: GatewayEvents {
    public init() {}
    public func documentReceived(kind: DocumentKind?, source: IntakeOrigin) {}
    public func documentRefused(reason: String, source: IntakeOrigin) {}
    public func documentBuilt(kind: DocumentKind) {}
    public func sendFinished(target: Destination, kind: DocumentKind, result: SendResult, duration: Duration) {}
}

extension RefusalReason {
    /// A short stable code for metrics labels (the description may quote file names).
    public var code: String {
        switch self {
        case .unsupportedFileType: "unsupported_file_type"
        case .emptyFile: "empty_file"
        case .missingSidecar: "missing_sidecar"
        case .orphanSidecar: "orphan_sidecar"
        case .ambiguousSidecar: "ambiguous_sidecar"
        case .invalidSidecar: "invalid_sidecar"
        case .invalidMessage: "invalid_message"
        case .invalidContent: "invalid_content"
        case .symbolicLink: "symbolic_link"
        case .notRegularFile: "not_regular_file"
        case .tooLarge: "too_large"
        case .interruptedTooOften: "interrupted_too_often"
        case .routing: "routing"
        }
    }
}

extension SendResult {
    /// The result of a transmission that just left `sending` for `state`.
    package init(_ state: TransmissionState) {
        if TransmissionState.succeeded.contains(state) { self = .sent } else if state == .failed { self = .failed } else { self = .retry }
    }
}
