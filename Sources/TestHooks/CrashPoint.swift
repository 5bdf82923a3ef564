import Foundation

/// TEST HOOK for the crash suite (Tests/GatewayTests/CrashTests.swift): named points where the
/// process may kill itself, so that every stage between two durable steps is hit by a crash.
///
/// Off unless the environment variable `PASSERELLE_CRASH_AT` is set when the process starts:
/// `PASSERELLE_CRASH_AT=after-send:0.2,ack-fetched:0.5` makes the process `_exit(137)` (no
/// cleanup, no flush: as a SIGKILL) at `after-send` with probability 0.2, and so on; `*:0.05`
/// arms every point. Never set it in production. Unset, ``reached(_:)`` is one load and a branch.
/// Its own target (`TestHooks`), outside the domain core: only the stages with crash points
/// (Gateway, MSSante) import it.
public enum CrashPoint: String, Sendable, CaseIterable {
    /// A dropped file was moved into work/ (claimed), before it is read.
    case claimed
    /// An MLLP message was received (its in-flight marker written), before it is parsed.
    case mllpReceived = "mllp-received"
    /// The journal holds the document, its CDA and its queued transmissions (one transaction),
    /// before the input is removed.
    case accepted
    /// A transmission was claimed (lease taken), before the sender starts.
    case beforeSend = "before-send"
    /// MSSanté: the Message-ID is in the journal, before the SMTP session starts.
    case messageIDRecorded = "message-id-recorded"
    /// The peer answered (DMP registry response, SMTP 250 to DATA), before the journal records it.
    case afterSend = "after-send"
    /// An acknowledgement (DSN, MDN) was fetched by IMAP, before the journal records it.
    case ackFetched = "ack-fetched"
    /// The journal recorded an acknowledgement, before the mail leaves the IMAP inbox.
    case ackRecorded = "ack-recorded"

    /// The armed points and their probabilities, read once from the environment.
    static let armed: [CrashPoint: Double] = parse(ProcessInfo.processInfo.environment["PASSERELLE_CRASH_AT"])

    /// `name:probability` pairs separated by commas; `*` names every point; no probability means 1.
    static func parse(_ text: String?) -> [CrashPoint: Double] {
        guard let text, !text.isEmpty else { return [:] }
        var points: [CrashPoint: Double] = [:]
        for item in text.split(separator: ",") {
            let parts = item.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let probability = parts.count > 1 ? Double(parts[1]) ?? 1 : 1
            if parts[0] == "*" {
                for point in allCases { points[point] = probability }
            } else if let point = CrashPoint(rawValue: parts[0]) {
                points[point] = probability
            }
        }
        return points
    }

    /// Dies here (as with SIGKILL) when this point is armed and the draw says so.
    @inline(__always)
    public static func reached(_ point: CrashPoint) {
        guard !armed.isEmpty, let p = armed[point], Double.random(in: 0..<1) < p else { return }
        // One write(2) to stderr, unbuffered: the suite reads which point fired from the log.
        let line = Array("PASSERELLE_CRASH_AT: crashing at \(point.rawValue)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        _exit(137)
    }
}
