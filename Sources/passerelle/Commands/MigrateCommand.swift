import ArgumentParser
import Foundation
import Journal
import PasserelleCore

/// `passerelle migrate` — brings the journal to this version's schema, as `run` does at start,
/// without starting the service: what the Debian package's postinst runs on an upgrade, with
/// the service stopped, so that a migration problem is reported by the upgrade itself.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Migrate the journal to this version's schema (run does it at start); refuses a journal written by a newer passerelle.",
        discussion: """
        Reads the journal's schema version without changing anything, then: nothing to do when \
        it is current or when there is no journal yet (the service creates it at its first \
        start); the numbered migrations it lacks, each in its own transaction, when it is older; \
        an error when it is newer (a downgrade: install that version of passerelle again, or \
        restore a backup made with this one). Every row is kept.

        Examples:
          passerelle migrate --config /etc/passerelle/passerelle.toml
          sudo -u passerelle passerelle migrate

        Exit codes: 0 the journal is current (or absent), 1 it is newer than this passerelle or \
        cannot be opened or migrated (the message says why).
        """
    )

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let c = try JournalAccess.configuration(global)
        let status: JournalSchemaStatus
        do { status = try Journals.schemaStatus(c.journal) } catch {
            printError("passerelle migrate: cannot read the journal's schema version: \(error)")
            throw ExitCode.failure
        }
        guard let found = status.found, found > 0 else {
            print("journal: none yet; the service creates it (schema version \(status.supported)) at its first start")
            return
        }
        if status.isTooNew {
            printError("""
                passerelle migrate: the journal's schema version \(found) is newer than this passerelle's (\(status.supported)): \
                it was written by a newer passerelle; nothing was changed. Install that version of passerelle again, \
                or restore a backup made with this one.
                """)
            throw ExitCode.failure
        }
        guard status.needsMigration else {
            print("journal: schema version \(found), current")
            return
        }
        _ = try JournalAccess.journal(c)  // opening migrates (numbered, transactional migrations)
        let after: JournalSchemaStatus
        do { after = try Journals.schemaStatus(c.journal) } catch {
            printError("passerelle migrate: cannot read the journal's schema version after the migration: \(error)")
            throw ExitCode.failure
        }
        guard after.found == status.supported else {
            printError("passerelle migrate: the journal is at schema version \(after.found ?? 0) after the migration, expected \(status.supported)")
            throw ExitCode.failure
        }
        print("journal: schema version \(found) migrated to \(status.supported)")
    }
}
