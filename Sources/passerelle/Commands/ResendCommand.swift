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
        abstract: "Queue failed transmissions again (by id, document, patient, target, status, dates).",
        discussion: """
        Selects transmissions with every filter given (none = all failed ones), then puts the \
        failed ones back to queued with a fresh retry budget; the running service sends them. \
        Transmissions in another state are listed and left alone: they are waiting, in \
        progress, or already done (a DMP document already stored is never sent twice).

        --patient takes the patient's INS (matricule, 15 characters), or - to read it from \
        stdin so it stays out of shell history and process lists; it is hashed with the \
        journal's patient key, never printed or stored.

        Above --confirm-above transmissions the command asks for confirmation on a terminal \
        and refuses otherwise, unless --yes is given. On a terminal a progress bar shows \
        counts and the time left; otherwise one line per batch.

        Examples:
          passerelle resend --target dmp --from 2026-11-01 --dry-run
          passerelle resend --id 42 --id 43
          passerelle resend --document 1.2.250.1.999.1.4.1732350000000.12345
          echo 279035121518989 | passerelle resend --patient - --yes

        Exit codes: 0 done (or nothing to do), 1 invalid option, journal error or confirmation refused.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("id"), help: ArgumentHelp("Transmission id (repeatable).", valueName: "id"))
    var ids: [Int64] = []

    @Option(name: .long, help: ArgumentHelp("Document id.", valueName: "document-id"))
    var document: String?

    @Option(name: .long, help: ArgumentHelp("Patient INS (matricule), or - to read it from stdin.", valueName: "ins"))
    var patient: String?

    @Option(name: .long, help: ArgumentHelp("Target: dmp, mssante_ps or mssante_patient.", valueName: "target"))
    var target: Destination?

    @Option(name: .long, help: ArgumentHelp("Select transmissions in this state (repeatable; default failed). Only failed ones are queued again.", valueName: "state"))
    var status: [TransmissionState] = []

    @Option(name: .long, help: ArgumentHelp("Created on or after this date (YYYY-MM-DD, UTC, or ISO 8601).", valueName: "date"))
    var from: String?

    @Option(name: .long, help: ArgumentHelp("Created before this date (YYYY-MM-DD, UTC, or ISO 8601).", valueName: "date"))
    var until: String?

    @Flag(name: .long, help: "List what would be queued again; change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Do not ask for confirmation.")
    var yes = false

    @Option(name: .long, help: ArgumentHelp("Ask for confirmation above this many transmissions.", valueName: "count"))
    var confirmAbove = 20

    func run() async throws {
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? .warning, format: c.logging.format)
        var filter = TransmissionFilter(transmissionIDs: ids, documentID: document, target: target,
                                        states: Set(status.isEmpty ? [.failed] : status))
        filter.from = try from.map { try Self.date($0, option: "--from") }
        filter.until = try until.map { try Self.date($0, option: "--until") }
        if let patient {
            var value = patient
            if patient == "-" { value = readLine(strippingNewline: true) ?? "" }
            value = value.trimmingCharacters(in: .whitespaces)
            guard value.count == 15, value.allSatisfy(\.isASCII) else {
                printError("--patient: an INS matricule has 15 characters (NIR or NIA)")
                throw ExitCode.failure
            }
            let secret: Data
            do { secret = try PatientKeySecret.load(GatewayService.patientKeyFile(c)) } catch {
                printError(error.description)
                throw ExitCode.failure
            }
            filter.patientKey = PatientKey.derive(matricule: value, secret: secret)
        }
        let journal = try JournalAccess.journal(c)
        let selected: [Transmission]
        do { selected = try await journal.transmissions(matching: filter) } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        let failed = selected.filter { $0.state == .failed }
        for t in selected where t.state != .failed {
            print("skip \(t.id) \(t.target.rawValue) \(t.documentID): \(t.state.rawValue), not a dead letter")
        }
        if failed.isEmpty {
            print("Nothing to resend (\(selected.count) transmission\(selected.count == 1 ? "" : "s") selected, none failed).")
            return
        }
        if dryRun {
            for t in failed {
                print("would resend \(t.id) \(t.target.rawValue) \(t.documentID) v\(t.version): \(t.lastError ?? "")")
            }
            print("\(failed.count) transmission\(failed.count == 1 ? "" : "s") would be queued again (dry run: nothing changed).")
            return
        }
        let tty = isatty(STDOUT_FILENO) == 1
        if failed.count > confirmAbove && !yes {
            guard isatty(STDIN_FILENO) == 1 else {
                printError("\(failed.count) transmissions selected (more than --confirm-above \(confirmAbove)): add --yes to confirm")
                throw ExitCode.failure
            }
            print("Queue \(failed.count) failed transmissions again? [y/N] ", terminator: "")
            guard let answer = readLine(), ["y", "yes", "o", "oui"].contains(answer.lowercased()) else {
                printError("cancelled")
                throw ExitCode.failure
            }
        }
        let started = Date()
        var done = 0
        var progress = Progress(total: failed.count, tty: tty)
        for batch in stride(from: 0, to: failed.count, by: 50).map({ Array(failed[$0..<min($0 + 50, failed.count)]) }) {
            do {
                done += try await journal.requeue(TransmissionFilter(transmissionIDs: batch.map(\.id)), now: Date()).count
            } catch {
                progress.finish()
                printError(error.description)
                throw ExitCode.failure
            }
            progress.update(done: done, started: started)
        }
        progress.finish()
        print("\(done) transmission\(done == 1 ? "" : "s") queued again; `passerelle run` sends them (see `passerelle status`).")
    }

    static func date(_ text: String, option: String) throws -> Date {
        if let d = try? Date.ISO8601FormatStyle().parse(text) { return d }
        if let d = try? Date.ISO8601FormatStyle().year().month().day().parse(text) { return d }
        printError("\(option): \"\(text)\" is not a date; use YYYY-MM-DD or 2026-11-23T10:00:00Z")
        throw ExitCode.failure
    }

    /// A progress bar with counts and time left on a terminal; plain lines elsewhere.
    struct Progress {
        let total: Int
        let tty: Bool

        mutating func update(done: Int, started: Date) {
            let elapsed = Date().timeIntervalSince(started)
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            if tty {
                let width = 30
                let filled = total == 0 ? width : width * done / total
                let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
                print("\r[\(bar)] \(done)/\(total) ETA \(Int(eta.rounded())) s", terminator: "")
                fflush(nil)  // all output streams: `stdout` itself is not concurrency-safe to name
            } else {
                print("requeued \(done)/\(total)")
            }
        }

        func finish() { if tty { print("") } }
    }
}
