import ArgumentParser
import Foundation
import Gateway
import Journal
import PasserelleCore

extension Destination: ExpressibleByArgument {}
extension TransmissionState: ExpressibleByArgument {}

/// `passerelle resend` — puts dead letters back in the queue.
struct ResendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resend",
        abstract: "Queue failed (or, with --include-sent, any) transmissions again (by id, document, patient, target, status, dates).",
        discussion: """
        Selects transmissions with every filter given (none = all failed ones), then puts the \
        failed ones back to queued with a fresh retry budget; the running service sends them. \
        Transmissions in another state are listed and left alone: they are waiting, in \
        progress, or already done.

        --include-sent also queues again transmissions that succeeded (sent, acknowledged, \
        delivered, read; without --status, all of them are selected with the failed ones). \
        That is a new attempt, appended to the history: for the DMP the registry recognises \
        the document it already holds and the attempt ends as done (nothing is stored twice); \
        for MSSanté the mail is sent again, with a new Message-ID. --dry-run lists them as \
        "send again", and the command always asks for confirmation (or --yes) when it includes any.

        --patient takes the patient's INS (matricule, 15 characters), or - to read it from \
        stdin so it stays out of shell history and process lists; it is hashed with the \
        journal's patient key, never printed or stored.

        Above --confirm-above transmissions the command asks for confirmation on a terminal \
        and refuses otherwise, unless --yes is given. The change is one transaction, recorded \
        in the audit trail with the OS user and the selection (`passerelle audit`).

        Examples:
          passerelle resend --target dmp --from 2026-11-01 --dry-run
          passerelle resend --id 42 --id 43
          passerelle resend --document 1.2.250.1.999.1.4.1732350000000.12345
          passerelle resend --document 1.2.250.1.999.1.4.1732350000000.12345 --target mssante_ps --include-sent --dry-run
          echo 279035121518989 | passerelle resend --patient - --yes

        Exit codes: 0 done (or nothing to do), 1 invalid option, journal error, confirmation refused, \
        or nothing to resend because the selected content was purged (retention).
        """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var filters: QueueFilterOptions

    @Flag(name: .long, help: "Also queue again transmissions already sent, acknowledged, delivered or read (a new attempt: MSSanté mails are sent again).")
    var includeSent = false

    @Flag(name: .long, help: "List what would be queued again; change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Do not ask for confirmation.")
    var yes = false

    @Option(name: .long, help: ArgumentHelp("Ask for confirmation above this many transmissions.", valueName: "count"))
    var confirmAbove = 20

    func run() async throws {
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? .warning, format: c.logging.format)
        let eligible: Set<TransmissionState> = includeSent ? TransmissionState.succeeded.union([.failed]) : [.failed]
        // Without --status: the failed ones, and the sent ones with --include-sent.
        let filter = try filters.filter(c, defaultStates: eligible)
        let journal = try JournalAccess.operatorQueue(c)
        let selected: [Transmission]
        do { selected = try await journal.transmissions(matching: filter) } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        // Retention deleted the content of some: nothing to send, said with the purge date.
        var purged: [Int64: Date] = [:]
        do {
            for t in selected where eligible.contains(t.state) {
                if let date = try await journal.document(id: t.documentID, version: t.version)?.purgedAt { purged[t.id] = date }
            }
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        let human = QueueOutput(c)
        for t in selected where purged[t.id] != nil {
            print("skip \(t.id) \(t.target.rawValue) \(t.documentID): its content was purged on \(human.human(purged[t.id])) (retention); it cannot be sent again")
        }
        let failed = selected.filter { eligible.contains($0.state) && purged[$0.id] == nil }
        let alreadySent = failed.filter { $0.state != .failed }
        for t in selected where !eligible.contains(t.state) {
            let why = TransmissionState.succeeded.contains(t.state)
                ? "already \(t.state.rawValue); add --include-sent to send it again" : "\(t.state.rawValue), not a dead letter"
            print("skip \(t.id) \(t.target.rawValue) \(t.documentID): \(why)")
        }
        if failed.isEmpty && !purged.isEmpty {
            printError("Nothing to resend: the content of the selected document\(purged.count == 1 ? " was" : "s was") purged (retention).")
            throw ExitCode.failure
        }
        if failed.isEmpty {
            print("Nothing to resend (\(selected.count) transmission\(selected.count == 1 ? "" : "s") selected, none \(includeSent ? "failed or sent" : "failed")).")
            return
        }
        if dryRun {
            for t in failed {
                if t.state == .failed {
                    print("would resend \(t.id) \(t.target.rawValue) \(t.documentID) v\(t.version): \(t.lastError ?? "")")
                } else {
                    print("would send again \(t.id) \(t.target.rawValue) \(t.documentID) v\(t.version): already \(t.state.rawValue); \(Self.effect(t.target))")
                }
            }
            print("\(failed.count) transmission\(failed.count == 1 ? "" : "s") would be queued again\(Self.sentNote(alreadySent.count)) (dry run: nothing changed).")
            return
        }
        // Sending a success again is never a side effect of a broad filter: always confirmed.
        if (failed.count > confirmAbove || !alreadySent.isEmpty) && !yes {
            let why = alreadySent.isEmpty ? "more than --confirm-above \(confirmAbove)" : "\(alreadySent.count) already sent, to be sent again"
            guard isatty(STDIN_FILENO) == 1 else {
                printError("\(failed.count) transmission\(failed.count == 1 ? "" : "s") selected (\(why)): add --yes to confirm")
                throw ExitCode.failure
            }
            print("Queue \(failed.count) transmission\(failed.count == 1 ? "" : "s") again\(Self.sentNote(alreadySent.count))? [y/N] ", terminator: "")
            guard let answer = readLine(), ["y", "yes", "o", "oui"].contains(answer.lowercased()) else {
                printError("cancelled")
                throw ExitCode.failure
            }
        }
        // One transaction with its audit row (the OS user, the selection, the count): the
        // trail can neither miss a resend nor record one that did not happen.
        let done: Int
        do {
            var ids = TransmissionFilter(transmissionIDs: failed.map(\.id))
            ids.states = Set(failed.map(\.state))
            done = try await journal.resend(ids, includingSucceeded: includeSent,
                                            OperatorRequest(selection: filter.selectionText), now: Date()).transmissions.count
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        print("\(done) transmission\(done == 1 ? "" : "s") queued again; `passerelle run` sends them (see `passerelle status`).")
    }

    /// What sending a success again does, per target.
    static func effect(_ target: Destination) -> String {
        target == .dmp ? "the DMP recognises the document it holds (nothing stored twice)" : "the mail is sent again (new Message-ID)"
    }

    static func sentNote(_ count: Int) -> String {
        count == 0 ? "" : ", \(count) of them already sent (sent again: MSSanté mails go out again)"
    }

}
