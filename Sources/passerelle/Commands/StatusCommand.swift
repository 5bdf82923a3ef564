import ArgumentParser
import Foundation
import Journal
import PasserelleCore

/// `passerelle status` — the queue at a glance.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show transmissions per state and target, the oldest waiting one and the last error per target.",
        discussion: """
        States: queued (waiting for a sender), sending (a sender holds it; after a crash it is \
        taken back when its lease expires), retry-wait (a transient failure; retried \
        automatically), sent (MSSanté mail accepted by the relay), acknowledged (DMP: stored; \
        mail: receipt), delivered, read, failed (dead letter: fix the cause, then \
        `passerelle resend`).

        Example:
          passerelle status --config /etc/passerelle/passerelle.toml

        Exit codes: 0 nothing failed, 3 at least one transmission is failed, 1 cannot read the journal.
        """
    )

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? .warning, format: c.logging.format)
        let journal = try JournalAccess.journal(c)
        let counts: [StateCount]
        let errors: [TargetError]
        do {
            counts = try await journal.stateCounts()
            errors = try await journal.lastErrors()
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        let targets = Destination.allCases.filter { t in counts.contains { $0.target == t } }
        if targets.isEmpty { print("No transmissions in the journal.") }
        let states = TransmissionState.allCases
        let width = max(12, states.map(\.rawValue.count).max() ?? 0)
        if !targets.isEmpty {
            print("state".padding(toLength: width, withPad: " ", startingAt: 0) + targets.map { $0.rawValue.leftPadded(16) }.joined())
            for state in states {
                let row = targets.map { t in counts.first { $0.target == t && $0.state == state }?.count ?? 0 }
                guard row.contains(where: { $0 > 0 }) else { continue }
                print(state.rawValue.padding(toLength: width, withPad: " ", startingAt: 0) + row.map { String($0).leftPadded(16) }.joined())
            }
            print("")
        }
        for t in targets {
            let oldest = try? await journal.oldestWaiting(target: t)
            print("\(t.rawValue): oldest waiting \(oldest.map { "since \(JournalAccess.stamp($0)) (\(JournalAccess.age(since: $0)))" } ?? "none")")
        }
        for e in errors {
            print("\(e.target.rawValue): last error \(JournalAccess.stamp(e.at)) transmission \(e.transmissionID) document \(e.documentID): \(e.message)")
        }
        if counts.contains(where: { $0.state == .failed && $0.count > 0 }) { throw ExitCode(3) }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? " " + self : String(repeating: " ", count: width - count) + self }
}
