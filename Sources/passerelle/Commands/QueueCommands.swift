import ArgumentParser
import Foundation
import Gateway
import Journal
import PasserelleCore

/// The selection every queue command and `resend` take.
struct QueueFilterOptions: ParsableArguments {
    @Option(name: .customLong("id"), help: ArgumentHelp("Transmission id (repeatable).", valueName: "id"))
    var ids: [Int64] = []

    @Option(name: .long, help: ArgumentHelp("Document id.", valueName: "document-id"))
    var document: String?

    @Option(name: .long, help: ArgumentHelp("Patient INS (matricule), or - to read it from stdin.", valueName: "ins"))
    var patient: String?

    @Option(name: .long, help: ArgumentHelp("Target: dmp, mssante_ps or mssante_patient.", valueName: "target"))
    var target: Destination?

    @Option(name: .long, help: ArgumentHelp("Select transmissions in this state (repeatable; without it, the states the command acts on).", valueName: "state"))
    var status: [TransmissionState] = []

    @Option(name: .long, help: ArgumentHelp("Created on or after this date (YYYY-MM-DD: midnight in [report] time_zone; or ISO 8601).", valueName: "date"))
    var from: String?

    @Option(name: .long, help: ArgumentHelp("Created before this date (YYYY-MM-DD: midnight in [report] time_zone; or ISO 8601).", valueName: "date"))
    var until: String?

    /// The filter, with `defaultStates` when no --status is given; the patient's INS is hashed
    /// with the journal's patient key (never printed or stored).
    func filter(_ c: PasserelleConfiguration, defaultStates: Set<TransmissionState>) throws -> TransmissionFilter {
        var filter = TransmissionFilter(transmissionIDs: ids, documentID: document, target: target,
                                        states: status.isEmpty ? defaultStates : Set(status))
        filter.from = try from.map { try QueueOutput(c).date($0, option: "--from") }
        filter.until = try until.map { try QueueOutput(c).date($0, option: "--until") }
        if let patient { filter.patientKey = try JournalAccess.patientKey(patient, c) }
        return filter
    }
}

struct JSONOutputOption: ParsableArguments {
    @Flag(name: .long, help: "JSON output (snake_case keys, ISO 8601 times with their offset).")
    var json = false
}

/// Times and JSON for the queue commands' output.
struct QueueOutput {
    let zone: TimeZone

    init(_ c: PasserelleConfiguration) { zone = TimeZone(identifier: c.report.timeZone) ?? .current }

    /// `2026-11-23 11:15:00 +01:00`, in `[report] time_zone`.
    func human(_ date: Date?) -> String {
        guard let date else { return "-" }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = zone
        f.dateFormat = "yyyy-MM-dd HH:mm:ss xxx"
        return f.string(from: date)
    }

    /// `YYYY-MM-DD` (midnight in [report] time_zone) or ISO 8601 with its offset.
    func date(_ text: String, option: String) throws -> Date {
        if let d = try? Date.ISO8601FormatStyle().parse(text) { return d }
        var style = Date.ISO8601FormatStyle().year().month().day()
        style.timeZone = zone
        if let d = try? style.parse(text) { return d }
        printError("\(option): \"\(text)\" is not a date; use YYYY-MM-DD or 2026-11-23T10:00:00+01:00")
        throw ExitCode.failure
    }

    /// ISO 8601 with the zone's offset (`2026-11-23T11:15:00+01:00`).
    func iso(_ date: Date?) -> String? {
        guard let date else { return nil }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = zone
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ssxxx"
        return f.string(from: date)
    }

    struct TransmissionJSON: Encodable {
        var id: Int64, documentId: String, version: Int, target: String, state: String, attempts: Int
        var createdAt: String?, updatedAt: String?, nextAttemptAt: String?, lastError: String?, lastErrorAt: String?
    }

    struct ActionJSON: Encodable {
        var id: Int64, at: String?, user: String, action: String, selection: String, count: Int, reason: String?
    }

    func json(_ t: Transmission) -> TransmissionJSON {
        TransmissionJSON(id: t.id, documentId: t.documentID, version: t.version, target: t.target.rawValue, state: t.state.rawValue,
                         attempts: t.attempts, createdAt: iso(t.createdAt), updatedAt: iso(t.updatedAt),
                         nextAttemptAt: QueueOutput.waitsForAttempt(t) ? iso(t.nextAttemptAt) : nil,
                         lastError: t.lastError.map(QueueOutput.redacted), lastErrorAt: iso(t.lastErrorAt))
    }

    func json(_ a: OperatorAction) -> ActionJSON {
        ActionJSON(id: a.id, at: iso(a.at), user: a.user, action: a.action.rawValue, selection: a.selection, count: a.count,
                   reason: a.reason)
    }

    struct ConsoleEventJSON: Encodable { var id: Int64, at: String?, user: String, address: String, event: String }

    func json(_ e: ConsoleEvent) -> ConsoleEventJSON {
        ConsoleEventJSON(id: e.id, at: iso(e.at), user: e.user, address: e.address, event: e.kind.rawValue)
    }

    static func print(json value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        Swift.print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// A peer's error text as the logs show it (patient mailbox and NIR masked), on one line.
    static func redacted(_ text: String) -> String {
        LogRedaction.redact(text).replacingOccurrences(of: "\n", with: " ")
    }

    /// True when `next_attempt_at` means something: the transmission waits for a sender.
    static func waitsForAttempt(_ t: Transmission) -> Bool { TransmissionState.waiting.contains(t.state) }

    /// `passerelle queue`'s table.
    func table(_ transmissions: [Transmission]) -> [String] {
        let header = ["id", "state", "target", "created", "next attempt", "attempts", "document", "last error"]
        let rows = transmissions.map { t in
            [String(t.id), t.state.rawValue, t.target.rawValue, human(t.createdAt),
             Self.waitsForAttempt(t) ? human(t.nextAttemptAt) : "-", String(t.attempts), "\(t.documentID) v\(t.version)",
             t.lastError.map { String(Self.redacted($0).prefix(120)) } ?? "-"]
        }
        let widths = header.indices.dropLast().map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in i < widths.count ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) : cell }
                .joined(separator: "  ")
        }
        return [line(header)] + rows.map(line)
    }
}

/// What `flush`, `hold`, `release` and `discard` share: list what the selection holds, skip
/// what the action does not apply to, run the action (one audited transaction), report.
enum OperatorActionRunner {
    static func run(_ kind: OperatorActionKind, global: GlobalOptions, filters: QueueFilterOptions, json: Bool,
                    allowed: Set<TransmissionState>, reason: String? = nil, confirm: (yes: Bool, above: Int)? = nil,
                    perform: (any OperatorQueue, TransmissionFilter, OperatorRequest) async throws(JournalError) -> OperatorResult) async throws {
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? .warning, format: c.logging.format)
        // No --status: every state, so what the action leaves alone is listed and said why.
        let filter = try filters.filter(c, defaultStates: [])
        let journal = try JournalAccess.operatorQueue(c)
        let output = QueueOutput(c)
        do {
            // A broad selection with no --status would read the whole journal: read only what
            // the action can change unless ids, a document or a patient narrow it.
            var preview = filter
            if filter.states.isEmpty && filter.transmissionIDs.isEmpty && filter.documentID == nil && filter.patientKey == nil {
                preview.states = allowed
            }
            let selected = try await journal.transmissions(matching: preview)
            let eligible = selected.filter { allowed.contains($0.state) }
            if !json {
                for t in selected where !allowed.contains(t.state) {
                    print("skip \(t.id) \(t.target.rawValue) \(t.documentID): \(t.state.rawValue), not \(allowed.map(\.rawValue).sorted().joined(separator: " or "))")
                }
            }
            if let confirm, eligible.count > confirm.above, !confirm.yes {
                printError("\(eligible.count) transmissions selected (more than --confirm-above \(confirm.above)): add --yes to confirm")
                throw ExitCode.failure
            }
            let request = OperatorRequest(selection: filter.selectionText, reason: reason)
            let result = try await perform(journal, filter, request)
            if json {
                struct Out: Encodable { var action: String, count: Int, transmissions: [QueueOutput.TransmissionJSON] }
                try QueueOutput.print(json: Out(action: kind.rawValue, count: result.transmissions.count,
                                                transmissions: result.transmissions.map(output.json)))
                return
            }
            for t in result.transmissions { print("\(pastTense(kind)) \(t.id) \(t.target.rawValue) \(t.documentID) v\(t.version): now \(t.state.rawValue)") }
            let n = result.transmissions.count
            print(n == 0 ? "Nothing to \(kind.rawValue) (no transmission \(allowed.map(\.rawValue).sorted().joined(separator: " or ")) selected)."
                  : "\(n) transmission\(n == 1 ? "" : "s") \(pastTense(kind))\(followUp(kind)); recorded in the audit trail (`passerelle audit`).")
        } catch let error as JournalError {
            printError(error.description)
            throw ExitCode.failure
        }
    }

    static func pastTense(_ kind: OperatorActionKind) -> String {
        switch kind {
        case .flush: "flushed"
        case .hold: "held"
        case .release: "released"
        case .discard: "discarded"
        case .resend: "queued again"
        case .purge: "purged"
        }
    }

    static func followUp(_ kind: OperatorActionKind) -> String {
        switch kind {
        case .flush, .release: " (due now: `passerelle run` takes them within a second)"
        case .hold: " (never sent until `passerelle release`)"
        default: ""
        }
    }
}

private let exitCodes = "Exit codes: 0 done (or nothing to do), 1 invalid option or journal error, 64 usage error."

/// `passerelle queue` — Postfix's `mailq`.
struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "List transmissions not done yet (queued, sending, retry-wait, held, failed), oldest first.",
        discussion: """
        One line per transmission: id, state, target, when it was created, its next attempt \
        (queued and retry-wait), attempts so far, document and version, and its last error \
        (masked as in the logs). Times are in [report] time_zone. --status lists other states \
        (e.g. --status discarded, --status acknowledged). --patient takes the INS or - (stdin).

        Examples:
          passerelle queue
          passerelle queue --status retry-wait --target dmp --json

        \(exitCodes)
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var filters: QueueFilterOptions
    @OptionGroup var output: JSONOutputOption

    static let notDone: Set<TransmissionState> = [.queued, .sending, .retryWait, .held, .failed]

    func run() async throws {
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? .warning, format: c.logging.format)
        let filter = try filters.filter(c, defaultStates: Self.notDone)
        let journal = try JournalAccess.journal(c)
        let out = QueueOutput(c)
        let listed: [Transmission]
        do { listed = try await journal.transmissions(matching: filter) } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        if output.json {
            try QueueOutput.print(json: listed.map(out.json))
            return
        }
        if listed.isEmpty {
            print("Queue empty (no transmission \(filter.states.map(\.rawValue).sorted().joined(separator: ", ")) selected).")
            return
        }
        for line in out.table(listed) { print(line) }
        print("\(listed.count) transmission\(listed.count == 1 ? "" : "s").")
    }
}

/// `passerelle flush` — Postfix's `postqueue -f`.
struct FlushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flush",
        abstract: "Make retry-wait transmissions due now (after an outage), optionally for one --target.",
        discussion: """
        Their attempts and deadline are kept; the running service claims them at its next poll \
        of the journal (within a second). Other states are listed and left alone. Recorded in \
        the audit trail.

        Examples:
          passerelle flush
          passerelle flush --target dmp --json

        \(exitCodes)
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var filters: QueueFilterOptions
    @OptionGroup var output: JSONOutputOption

    func run() async throws {
        try await OperatorActionRunner.run(.flush, global: global, filters: filters, json: output.json, allowed: [.retryWait]) {
            (q, f, r) throws(JournalError) in try await q.flush(f, r, now: Date())
        }
    }
}

/// `passerelle hold` — Postfix's `postsuper -h`.
struct HoldCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold",
        abstract: "Keep queued or retry-wait transmissions out of sending until `passerelle release`.",
        discussion: """
        Held transmissions stay in the journal with their history; no sender claims them. A \
        transmission being sent cannot be held (wait for its outcome). Recorded in the audit trail.

        Example:
          passerelle hold --document 1.2.250.1.999.1.4.1732350000000.12345

        \(exitCodes)
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var filters: QueueFilterOptions
    @OptionGroup var output: JSONOutputOption

    func run() async throws {
        try await OperatorActionRunner.run(.hold, global: global, filters: filters, json: output.json,
                                           allowed: TransmissionState.holdable) {
            (q, f, r) throws(JournalError) in try await q.hold(f, r, now: Date())
        }
    }
}

/// `passerelle release` — Postfix's `postsuper -H`.
struct ReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Put held transmissions back in the queue, due now, with a fresh deadline.",
        discussion: """
        Example:
          passerelle release --target mssante_ps

        \(exitCodes)
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var filters: QueueFilterOptions
    @OptionGroup var output: JSONOutputOption

    func run() async throws {
        try await OperatorActionRunner.run(.release, global: global, filters: filters, json: output.json, allowed: [.held]) {
            (q, f, r) throws(JournalError) in try await q.release(f, r, now: Date())
        }
    }
}

/// `passerelle discard` — Postfix's `postsuper -d`, except nothing is deleted.
struct DiscardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discard",
        abstract: "Set failed or held transmissions aside for good (discarded), with a reason.",
        discussion: """
        For a transmission that will never go (a test document, a patient who refused the \
        DMP). It stays in the journal as `discarded`: `status` no longer counts it as failed \
        (exit 0), and the usage report counts it on its own line (Q-ECARTE), out of the \
        failure lines. Final: a discarded transmission is never sent again. The reason, the OS \
        user and the selection go to the audit trail. Above --confirm-above transmissions, \
        --yes is required.

        Example:
          passerelle discard --id 42 --reason "test document sent by mistake"

        \(exitCodes)
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var filters: QueueFilterOptions
    @OptionGroup var output: JSONOutputOption

    @Option(name: .long, help: ArgumentHelp("Why (kept in the audit trail; required).", valueName: "text"))
    var reason: String

    @Flag(name: .long, help: "Do not ask for confirmation.")
    var yes = false

    @Option(name: .long, help: ArgumentHelp("Require --yes above this many transmissions.", valueName: "count"))
    var confirmAbove = 20

    func validate() throws {
        guard !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ValidationError("--reason must say why (it is kept in the audit trail)")
        }
        guard reason.count <= 500, !reason.contains(where: \.isNewline) else {
            throw ValidationError("--reason: one line of at most 500 characters")
        }
    }

    func run() async throws {
        try await OperatorActionRunner.run(.discard, global: global, filters: filters, json: output.json,
                                           allowed: TransmissionState.discardable, reason: reason,
                                           confirm: (yes, confirmAbove)) {
            (q, f, r) throws(JournalError) in try await q.discard(f, r, now: Date())
        }
    }
}

/// `passerelle audit` — who did what to the queue.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "List operator actions (resend, flush, hold, release, discard): when, OS user, selection, count, reason.",
        discussion: """
        Oldest first; --limit keeps the most recent ones. Times are in [report] time_zone.
        --console lists the web console's logins instead: login, login-refused, lockout, logout,
        with the account name and the peer's address.

        Examples:
          passerelle audit
          passerelle audit --action discard --from 2026-11-01 --json
          passerelle audit --console --from 2026-11-01

        \(exitCodes)
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: JSONOutputOption

    @Option(name: .long, help: ArgumentHelp("Only this action (repeatable): resend, flush, hold, release, discard, purge.", valueName: "action"))
    var action: [OperatorActionKind] = []

    @Option(name: .long, help: ArgumentHelp("Actions on or after this date (YYYY-MM-DD: midnight in [report] time_zone; or ISO 8601).", valueName: "date"))
    var from: String?

    @Option(name: .long, help: ArgumentHelp("Actions before this date (YYYY-MM-DD: midnight in [report] time_zone; or ISO 8601).", valueName: "date"))
    var until: String?

    @Option(name: .long, help: ArgumentHelp("The most recent N actions.", valueName: "count"))
    var limit = 100

    @Flag(name: .long, help: "The web console's logins, refused logins, lockouts and logouts instead of the operator actions.")
    var console = false

    func validate() throws {
        if console && !action.isEmpty { throw ValidationError("--action selects operator actions: not with --console") }
    }

    func run() async throws {
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? .warning, format: c.logging.format)
        if console { return try await listConsoleEvents(c) }
        let query = OperatorActionQuery(from: try from.map { try QueueOutput(c).date($0, option: "--from") },
                                        until: try until.map { try QueueOutput(c).date($0, option: "--until") },
                                        actions: Set(action), limit: max(1, limit))
        let journal = try JournalAccess.operatorQueue(c)
        let out = QueueOutput(c)
        try await list({ () throws(JournalError) in try await journal.operatorActions(query) }, json: out.json,
                       none: "No operator action recorded.") { a in
            "\(out.human(a.at))  \(a.user)  \(a.action.rawValue) \(a.count) transmission\(a.count == 1 ? "" : "s")  [\(a.selection)]\(a.reason.map { "  reason: \($0)" } ?? "")"
        }
    }

    /// The rows as JSON or one line each; a journal error is said and exits 1.
    func list<Row, JSON: Encodable>(_ fetch: () async throws(JournalError) -> [Row], json: (Row) -> JSON, none: String,
                                    line: (Row) -> String) async throws {
        let rows: [Row]
        do { rows = try await fetch() } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        if output.json { return try QueueOutput.print(json: rows.map(json)) }
        if rows.isEmpty { print(none) }
        for row in rows { print(line(row)) }
    }
}

extension AuditCommand {
    /// `--console`: the same range and limit options, over `console_events`.
    func listConsoleEvents(_ c: PasserelleConfiguration) async throws {
        let out = QueueOutput(c)
        let since = try from.map { try out.date($0, option: "--from") }
        let before = try until.map { try out.date($0, option: "--until") }
        guard let log = try JournalAccess.journal(c) as? any ConsoleEventLog else {
            printError("this journal backend keeps no console events")
            throw ExitCode.failure
        }
        try await list({ () throws(JournalError) in try await log.consoleEvents(since: since, until: before, limit: max(1, limit)) },
                       json: out.json, none: "No console event recorded.") { e in
            "\(out.human(e.at))  \(e.user)  \(e.kind.rawValue)  from \(e.address)"
        }
    }
}

extension OperatorActionKind: ExpressibleByArgument {}
