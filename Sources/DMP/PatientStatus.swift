import Foundation

/// What the TD0.2 check says about a patient's DMP. Only ``active`` lets a document through;
/// the others are final for this document (sending again will not help until the patient
/// or an operator acts), so they end as a failure with a `TD0.2:` code, never as a retry.
public enum DMPPatientStatus: Sendable, Hashable, CustomStringConvertible {
    /// An active DMP that accepts documents.
    case active
    /// The patient has no DMP.
    case noDMP
    /// The DMP exists but is closed.
    case closed
    /// The DMP refuses access for this patient (opposition to its feeding, or the structure
    /// is blocked); the DMP's own explanation.
    case refused(String)

    /// The failure code journalled for a status that stops the document.
    public var code: String {
        switch self {
        case .active: "TD0.2:active"
        case .noDMP: "TD0.2:noDMP"
        case .closed: "TD0.2:closed"
        case .refused: "TD0.2:refused"
        }
    }

    public var description: String {
        switch self {
        case .active: "active DMP"
        case .noDMP: "the patient has no DMP"
        case .closed: "the patient's DMP is closed"
        case .refused(let reason): "the DMP refuses access for this patient (\(reason))"
        }
    }

    /// The outcome of a document stopped by this status (nil for ``active``).
    public var stopOutcome: SubmissionOutcome? {
        self == .active ? nil : .failed(reason: "TD0.2: \(description); not sent to the DMP", codes: [code])
    }

    /// Reads a TD0.2 answer (FHIR searchset Bundle of Patient, or an OperationOutcome).
    /// `outcome` is `.done` when a status was read, else how to treat the failed question.
    static func decide(status: Int, retryAfter: String?, body: Data) -> (status: DMPPatientStatus?, outcome: SubmissionOutcome) {
        let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        let readable = SubmissionOutcome.done(alreadyPresent: false, warnings: [])
        if status == 403 {
            let issues = json?["issue"] as? [[String: Any]] ?? []
            let text = issues.compactMap { ($0["diagnostics"] as? String) ?? (($0["details"] as? [String: Any])?["text"] as? String) }
                .joined(separator: "; ")
            return (.refused(text.isEmpty ? "HTTP 403" : text), readable)
        }
        guard (200...299).contains(status) else {
            let after = RetryAfter.parse(retryAfter)
            switch status {
            case 408, 429, 500...599: return (nil, .retry(after: after, reason: "TD0.2: HTTP \(status)"))
            default: return (nil, .failed(reason: "TD0.2: HTTP \(status)", codes: ["HTTP\(status)"]))
            }
        }
        guard let json, json["resourceType"] as? String == "Bundle" else {
            return (nil, .retry(after: nil, reason: "TD0.2: HTTP \(status) but the body is not a FHIR Bundle"))
        }
        let patients = (json["entry"] as? [[String: Any]] ?? []).compactMap { $0["resource"] as? [String: Any] }
            .filter { $0["resourceType"] as? String == "Patient" }
        guard let patient = patients.first else { return (.noDMP, readable) }
        return ((patient["active"] as? Bool) == false ? .closed : .active, readable)
    }
}
