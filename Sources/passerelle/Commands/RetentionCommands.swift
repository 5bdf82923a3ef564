import ArgumentParser
import Foundation
import Gateway
import Journal
import PasserelleCore

/// `passerelle purge` — retention of the documents' content.
struct PurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Delete the content of documents whose transmissions ended before the retention limit.",
        discussion: """
        A document set (all versions of a document) is purged when none of its transmissions \
        can still be sent (none queued, retry-wait, sending or held) and its last transmission \
        ended (acknowledged, sent, delivered, read, failed or discarded) before the cutoff: \
        [journal] retention_days ago, or --before. Its intake record and built CDA are \
        deleted, and so are its masked INS, patient hash and input file name. Transmission, \
        attempt and acknowledgement rows stay, so past usage reports are unchanged; `show` \
        then says when the content was purged and `resend` refuses it.

        `passerelle run` purges on its own every day when retention_days is set; this command \
        is for a first purge, a check (--dry-run) or an earlier cutoff. Recorded in the audit \
        trail (`passerelle audit --action purge`) with the OS user.

        Examples:
          passerelle purge --dry-run
          passerelle purge --before 2026-01-01

        Exit codes: 0 done (or nothing to purge), 1 no retention set and no --before, invalid \
        date, or journal error, 64 usage error.
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: JSONOutputOption

    @Flag(name: .long, help: "Count what would be purged; change nothing.")
    var dryRun = false

    @Option(name: .long, help: ArgumentHelp("Purge what ended before this date (YYYY-MM-DD in [report] time_zone, or ISO 8601) instead of retention_days ago.",
                                            valueName: "date"))
    var before: String?

    struct PurgeJSON: Encodable {
        var dryRun: Bool, endedBefore: String?, sets: Int, documents: Int, transmissions: Int, blobs: Int, bytesFreed: Int64
        var auditId: Int64?
    }

    func run() async throws {
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? .warning, format: c.logging.format)
        let out = QueueOutput(c)
        let now = Date()
        let cutoff: Date
        if let before {
            cutoff = try out.date(before, option: "--before")
            guard cutoff <= now else {
                printError("--before \(before) is in the future: only what has ended can be purged")
                throw ExitCode.failure
            }
        } else if let days = c.retentionDays {
            cutoff = now.addingTimeInterval(-Double(days) * 86_400)
        } else {
            printError("no [journal] retention_days in \(c.file) and no --before: nothing says what to purge")
            throw ExitCode.failure
        }
        guard let journal = try JournalAccess.journal(c) as? any JournalRetention else {
            printError("this journal backend has no retention")
            throw ExitCode.failure
        }
        let result: PurgeResult
        do {
            let selection = before.map { "before=\($0)" } ?? "retention_days=\(c.retentionDays ?? 0)"
            result = try await journal.purge(endedBefore: cutoff, dryRun: dryRun, OperatorRequest(selection: selection), now: now)
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        if output.json {
            try QueueOutput.print(json: PurgeJSON(dryRun: dryRun, endedBefore: out.iso(cutoff), sets: result.sets, documents: result.documents,
                                                  transmissions: result.transmissions, blobs: result.blobs, bytesFreed: result.bytes,
                                                  auditId: result.action?.id))
            return
        }
        let what = "\(result.sets) document set\(result.sets == 1 ? "" : "s") (\(result.documents) document\(result.documents == 1 ? "" : "s"), \(result.transmissions) transmission\(result.transmissions == 1 ? "" : "s")) ended before \(out.human(cutoff))"
        let freed = "\(result.blobs) blob\(result.blobs == 1 ? "" : "s"), \(Self.bytes(result.bytes))"
        if dryRun {
            print("Would purge the content of \(what): \(freed) would be freed (dry run: nothing changed).")
        } else if result.sets == 0 {
            print("Nothing to purge: no document set ended before \(out.human(cutoff)).")
        } else {
            print("Purged the content of \(what): \(freed) freed; recorded in the audit trail (`passerelle audit --action purge`).")
        }
    }

    static func bytes(_ n: Int64) -> String {
        if n < 10_000 { return "\(n) bytes" }
        if n < 10_000_000 { return "\(n / 1000) kB" }
        return "\(n / 1_000_000) MB"
    }
}

/// `passerelle backup FILE` — an online copy of an SQLite journal and its blobs.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the SQLite journal, its blob folder and patient key while the gateway runs.",
        discussion: """
        FILE receives the database, copied with SQLite's online backup API (one consistent \
        snapshot; the running gateway goes on writing). Beside it, FILE without its extension \
        plus `.blobs/` receives the blob files (intake records and built CDAs) and \
        `.patient-key` the key of the patient hashes: the same layout as the journal itself. \
        Blobs are written before the rows that point at them and never changed, so copying the \
        folder after the snapshot holds every blob the snapshot needs; the copy is checked \
        against the snapshot. Everything is written 0600 (folders 0700): it holds health data. \
        Restore with `passerelle restore FILE`.

        PostgreSQL: not done here; the command prints the pg_dump recipe (blobs are in the \
        database, the local cache needs no backup).

        Example:
          passerelle backup /var/backups/passerelle/journal-2026-12-05.sqlite

        Exit codes: 0 written, 1 FILE exists, journal error, a blob missing, or PostgreSQL.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The backup database file to create (must not exist).", valueName: "file"))
    var file: String

    func run() async throws {
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? .warning, format: c.logging.format)
        guard case .sqlite(let path) = c.journal else {
            printError("""
            a PostgreSQL journal is backed up with PostgreSQL's own tools (the blobs are in the database):
              pg_dump --format=custom --file=\(file) "<[journal] url>"
            and restored into an empty database with:
              pg_restore --no-owner --dbname="<new database url>" \(file)
            (see docs/operations.md, "Backup and restore").
            """)
            throw ExitCode.failure
        }
        do {
            let copy = try JournalBackup.backup(databasePath: path, patientKeyFile: GatewayService.patientKeyFile(c), to: file)
            print("Backed up \(path) to \(file) (\(copy.blobs) blob\(copy.blobs == 1 ? "" : "s") in \(copy.blobFolder.path)\(copy.patientKey ? ", patient key" : "")).")
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
    }
}

/// `passerelle restore FILE` — a backup made by `passerelle backup` back into place.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put a `passerelle backup` copy in place as the configured SQLite journal.",
        discussion: """
        Copies FILE to [journal] path, its `.blobs/` folder to the journal's blob folder and its \
        `.patient-key` to the patient key file, then opens the journal (integrity check, schema \
        upgrade if the backup is older). Refuses to overwrite: stop the gateway and move the \
        current journal (and its -wal, -shm, blobs) aside first, or point [journal] path at a \
        new folder. Then `passerelle status` and `passerelle report` read the restored journal.

        Example:
          passerelle restore /var/backups/passerelle/journal-2026-12-05.sqlite

        Exit codes: 0 restored, 1 the journal exists, the backup is unreadable or damaged, or PostgreSQL.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The backup database file written by `passerelle backup`.", valueName: "file"))
    var file: String

    func run() async throws {
        let c = try JournalAccess.configuration(global)
        LogSetup.bootstrap(level: global.logLevel ?? .warning, format: c.logging.format)
        guard case .sqlite(let path) = c.journal else {
            printError("a PostgreSQL journal is restored with pg_restore (see docs/operations.md, \"Backup and restore\")")
            throw ExitCode.failure
        }
        do {
            let restored = try JournalBackup.restore(from: file, databasePath: path, patientKeyFile: GatewayService.patientKeyFile(c))
            print("Restored \(file) to \(path) (\(restored.blobs) blob\(restored.blobs == 1 ? "" : "s")\(restored.patientKey ? ", patient key" : "")); schema version \(restored.schemaVersion).")
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
    }
}
