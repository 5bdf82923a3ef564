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
        `passerelle resend`), held (kept out of sending by an operator: `passerelle release`), \
        discarded (set aside by an operator: final, not counted as failed).

        --json prints the same as one object: counts (target, state, count), oldest_waiting \
        per target, last_errors, and failed (the total behind exit code 3); times in ISO 8601 \
        with their offset ([report] time_zone).

        Examples:
          passerelle status --config /etc/passerelle/passerelle.toml
          passerelle status --json

        Exit codes: 0 nothing failed, 3 at least one transmission is failed, 1 cannot read the journal.
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: JSONOutputOption

    struct StatusJSON: Encodable {
        struct Count: Encodable { var target: String, state: String, count: Int }
        struct Oldest: Encodable { var target: String, since: String? }
        struct LastError: Encodable { var target: String, at: String?, transmissionId: Int64, documentId: String, message: String }
        var counts: [Count], oldestWaiting: [Oldest], lastErrors: [LastError], failed: Int
    }

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
        let failed = counts.filter { $0.state == .failed }.reduce(0) { $0 + $1.count }
        if output.json {
            let out = QueueOutput(c)
            var oldest: [StatusJSON.Oldest] = []
            for t in targets { oldest.append(.init(target: t.rawValue, since: out.iso((try? await journal.oldestWaiting(target: t)) ?? nil))) }
            try QueueOutput.print(json: StatusJSON(
                counts: counts.map { .init(target: $0.target.rawValue, state: $0.state.rawValue, count: $0.count) },
                oldestWaiting: oldest,
                lastErrors: errors.map { .init(target: $0.target.rawValue, at: out.iso($0.at), transmissionId: $0.transmissionID,
                                               documentId: $0.documentID, message: QueueOutput.redacted($0.message)) },
                failed: failed))
            if failed > 0 { throw ExitCode(3) }
            return
        }
        let human = QueueOutput(c)
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
            print("\(t.rawValue): oldest waiting \(oldest.map { "since \(human.human($0)) (\(JournalAccess.age(since: $0)))" } ?? "none")")
        }
        for e in errors {
            print("\(e.target.rawValue): last error \(human.human(e.at)) transmission \(e.transmissionID) document \(e.documentID): \(QueueOutput.redacted(e.message))")
        }
        if counts.contains(where: { $0.state == .failed && $0.count > 0 }) { throw ExitCode(3) }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? " " + self : String(repeating: " ", count: width - count) + self }
}
