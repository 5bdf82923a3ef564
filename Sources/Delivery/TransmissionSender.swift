import CDA
import CurlKit
import DMP
import Foundation
import Handoff
import IHE
import Journal
import MSSante
import OpenSSLKit
import PasserelleCore

/// One transport (DMP, MSSanté to professionals, MSSanté to the patient). The workers claim a
/// transmission, hand it here and record what comes back; a sender never touches the journal's
/// state itself and never throws: every failure is an outcome, transient or permanent.
public protocol TransmissionSender: Sendable {
    /// The target this sender serves.
    var target: Destination { get }
    /// Sends one document. `claim.transmission.needsRecheck` is set when an earlier attempt was
    /// interrupted (crash): the sender must make a resend harmless (DMP: the same uniqueId is
    /// recognised as already stored; SMTP: reuse `claim.transmission.messageID`).
    func send(_ claim: ClaimedTransmission, document: OutgoingDocument) async -> TransmissionOutcome
    /// Why no transmission of this target can be sent right now whatever the document (our own
    /// signing certificate expired or not yet valid), or nil. While it is non-nil the workers
    /// claim nothing for the target: transmissions stay queued, never attempted, so none can
    /// run out of attempts and fail for a fault of ours.
    func holdReason(at time: Date) -> String?
}

extension TransmissionSender {
    public func holdReason(at time: Date) -> String? { nil }
}

/// The DMP transport: ``DMP/DMPSender`` (ITI-41 for new documents and replacements, TD3.3c
/// for deletions, TD0.2 first when configured) with its decision mapped to the journal's outcome.
public struct DMPTransmissionSender: TransmissionSender {
    public let target = Destination.dmp
    public let sender: DMP.DMPSender

    public init(_ sender: DMP.DMPSender) { self.sender = sender }

    public func holdReason(at time: Date) -> String? {
        let credentials = sender.vihf.credentials
        do throws(DMPError) {
            try DMP.DMPSender.checkSigningCertificate(credentials, file: "[certificates] signing", at: time)
            return nil
        } catch {
            return error.description
        }
    }

    public func send(_ claim: ClaimedTransmission, document: OutgoingDocument) async -> TransmissionOutcome {
        // A resend after a crash needs no special path: the DMP recognises the uniqueId it holds.
        let events = StageClock.events
        let prepared = StageClock.measure(.sign, events) {
            document.metadata.action == .delete ? sender.prepareDeletion(document.metadata) : sender.prepare(document.cda, metadata: document.metadata)
        }
        let result = await StageClock.measure(.send, events) { await sender.submit(prepared) }
        return Self.outcome(result)
    }

    /// The journal's view of a DMP answer: transient causes are retried, the others are final.
    public static func outcome(_ result: SubmissionResult) -> TransmissionOutcome {
        let response = responseText(result)
        switch result.outcome {
        case .done(let alreadyPresent, let warnings):
            var text = alreadyPresent ? "already stored by the DMP (resend recognised)" : "stored by the DMP"
            if !warnings.isEmpty { text += "; warnings: " + warnings.map(\.description).joined(separator: "; ") }
            // A registration is final at once: no later acknowledgement to wait for.
            return .success(state: .acknowledged, response: text)
        case .retry(let after, let reason):
            let cause: FailureCause = if let status = result.httpStatus, status >= 500 { .httpServerError(status: status, reason) }
                else if result.httpStatus == nil { .network(reason) }
                else { .dmpServiceUnavailable(reason) }
            // The DMP's Retry-After (already capped by the client): the journal waits at least that long.
            guard let after, after > .zero else { return .failure(cause, response: response) }
            return .failure(.retryAfter(seconds: TimeInterval(after.components.seconds), cause), response: response)
        case .failed(let reason, let codes):
            // A TLS or certificate disagreement with the DMP is about the connection, not the
            // document: retried with backoff (and alerted once) until the operator fixes the
            // certificate or the TLS settings, instead of dead-lettering every document.
            if result.httpStatus == nil, codes.count == 1, connectionSecurityCodes.contains(codes[0]) {
                return .failure(.network(reason), response: response)
            }
            if codes.contains(where: { $0.hasPrefix("TD0.2") }) { return .failure(.identity(reason), response: response) }
            if codes == ["metadata"] || codes == ["signing"] { return .failure(.schema(reason), response: response) }
            return .failure(.dmpBusinessRefusal(code: codes.joined(separator: ","), reason), response: response)
        }
    }

    /// CurlError kinds of a refused TLS session: handshake, server or client certificate.
    static let connectionSecurityCodes: Set<String> = [CurlError.Kind.tlsHandshake.rawValue, CurlError.Kind.peerCertificate.rawValue,
                                                       CurlError.Kind.clientCertificate.rawValue]

    /// The server's answer for the attempt row: status and the start of the body.
    static func responseText(_ result: SubmissionResult) -> String? {
        guard result.httpStatus != nil || !result.rawResponse.isEmpty else { return nil }
        let body = String(decoding: result.rawResponse.prefix(4000), as: UTF8.self)
        return "HTTP \(result.httpStatus.map(String.init) ?? "-"): \(body)"
    }
}
