import Foundation
import Journal

/// Failures of the service itself (not of one document). Messages carry document ids and
/// paths, never patient data.
public enum GatewayError: Error, Sendable, CustomStringConvertible, LocalizedError {
    /// The journal failed; the input stays where it is and is taken again later.
    case journal(JournalError)
    /// A journaled record cannot be read back.
    case record(String)
    /// The configuration cannot run the service (what to change).
    case configuration(String)
    /// A folder or file the service needs is unusable.
    case file(path: String, reason: String)
    /// The MLLP listener cannot start.
    case listener(String)

    public var description: String {
        switch self {
        case .journal(let e): e.description
        case .record(let m): "journal record: \(m)"
        case .configuration(let m): "configuration: \(m)"
        case .file(let path, let reason): "\(path): \(reason)"
        case .listener(let m): "MLLP listener: \(m)"
        }
    }

    public var errorDescription: String? { description }
}
