import ArgumentParser
import Foundation
import Journal
import PasserelleCore

/// `passerelle show <document id | transmission id>` — everything the journal knows about one document.
struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show the full history of one document: versions, transmissions, attempts, acknowledgements, operator actions.",
        discussion: """
        The document id is the CDA ClinicalDocument/id as the journal and the DMP know it \
        (`root^extension`, or the OID alone), as printed in logs and by `passerelle status`. \
        A transmission id (digits only, as listed by `passerelle queue`) shows the document \
        it belongs to. Patient identity is shown as the masked INS only. Times are in \
        [report] time_zone with their offset.

        Examples:
          passerelle show 1.2.250.1.999.1.4.1732350000000.12345
          passerelle show 42

        Exit codes: 0 shown, 1 unknown document or transmission, or unreadable journal.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Document id, or transmission id.", valueName: "id"))
    var documentID: String

    func run() async throws {
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? .warning, format: c.logging.format)
        let journal = try JournalAccess.operatorQueue(c)
        let out = QueueOutput(c)
        var documentID = self.documentID
        do {
            // Document ids are OIDs (with dots); digits alone name a transmission.
            if !documentID.isEmpty, documentID.allSatisfy(\.isASCII), documentID.allSatisfy(\.isNumber), let id = Int64(documentID) {
                guard let t = try await journal.transmission(id: id) else {
                    printError("no transmission \(id) in the journal (ids are listed by `passerelle queue`)")
                    throw ExitCode.failure
                }
                print("transmission \(id) belongs to document \(t.documentID) version \(t.version)")
                documentID = t.documentID
            }
            guard let history = try await journal.documentHistory(id: documentID) else {
                printError("no document \(documentID) in the journal (ids are printed by `passerelle status` and in the logs)")
                throw ExitCode.failure
            }
            for version in history.versions {
                let d = version.document
                print("document \(d.id) version \(d.version) (set \(d.setID))")
                print("  kind \(d.kind.shortName) (\(d.kind.loincCode)), state \(d.state.rawValue), received \(out.human(d.receivedAt))")
                print("  patient INS \(d.maskedINS ?? "none") identity \(d.identityStatus ?? "-"), structure \(d.finess), stay \(d.stayID ?? "-")")
                if let purged = d.purgedAt {
                    // Retention deleted the content: say so rather than point at blobs that are gone.
                    print("  content purged on \(out.human(purged)) (retention): intake record, CDA, INS and patient hash deleted; it can no longer be sent")
                } else {
                    print("  input blob \(d.blobSHA256.prefix(16))…, CDA blob \(d.builtSHA256.map { "\($0.prefix(16))…" } ?? "not built")")
                }
                for entry in version.transmissions {
                    let t = entry.transmission
                    print("  transmission \(t.id) → \(t.target.rawValue): \(t.state.rawValue), \(t.attempts) attempt\(t.attempts == 1 ? "" : "s"), created \(out.human(t.createdAt)), updated \(out.human(t.updatedAt))")
                    if let next = t.nextAttemptAt, TransmissionState.waiting.contains(t.state) { print("    next attempt \(out.human(next))") }
                    if let owner = t.leaseOwner { print("    held by \(owner) until \(out.human(t.leaseExpiresAt))") }
                    if t.needsRecheck { print("    interrupted earlier: the next send checks with the peer (resend recognised)") }
                    if let m = t.messageID { print("    Message-ID \(m)") }
                    if let e = t.lastError { print("    last error \(out.human(t.lastErrorAt)): \(QueueOutput.redacted(e))") }
                    for a in entry.attempts {
                        let response = a.response.map { " — " + QueueOutput.redacted($0).prefix(300) } ?? ""
                        print("    attempt \(a.id) \(out.human(a.startedAt)) → \(out.human(a.endedAt)): \(a.outcome ?? "running")\(response)")
                    }
                    for k in entry.acknowledgements {
                        print("    acknowledgement \(k.kind.rawValue) \(out.human(k.receivedAt))\(k.detail.map { ": \(QueueOutput.redacted($0))" } ?? "")")
                    }
                    for a in entry.operatorActions {
                        print("    operator \(a.action.rawValue) \(out.human(a.at)) by \(a.user) [\(a.selection)]\(a.reason.map { ": \($0)" } ?? "")")
                    }
                }
            }
        } catch let error as JournalError {
            printError(error.description)
            throw ExitCode.failure
        }
    }
}
