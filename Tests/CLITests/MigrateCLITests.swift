import Foundation
import Testing
import TestSupport

/// `passerelle migrate`, what the Debian postinst runs on an upgrade: an older journal is
/// brought to the current schema with every row kept; a newer one is refused untouched; no
/// journal yet is left uncreated.
@Suite("passerelle migrate")
struct MigrateCLITests {
    func configuration(in dir: URL) throws -> String {
        let text = TestConfiguration.withTestPKI().replacingOccurrences(
            of: "/tmp/passerelle-test/journal.sqlite", with: dir.appendingPathComponent("journal.sqlite").path)
        let file = dir.appendingPathComponent("passerelle.toml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    func sqlite(_ file: URL, _ sql: String) throws -> String {
        let r = try ProcessRunner.run("/usr/bin/sqlite3", [file.path, sql])
        try #require(r.status == 0, "sqlite3: \(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func sha256(_ file: URL) throws -> String {
        try ProcessRunner.run("/usr/bin/sha256sum", [file.path]).stdout.split(separator: " ").first.map(String.init) ?? ""
    }

    @Test("schema 4 with rows → migrated to the latest (9), rows kept; again: current; schema 99 → refused, file untouched")
    func olderMigratedNewerRefused() throws {
        let dir = try TestPaths.temporaryDirectory("migrate")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try configuration(in: dir)
        let journal = dir.appendingPathComponent("journal.sqlite")

        // No journal yet: nothing to do, nothing created.
        let none = try CLI.run(["migrate", "--config", config])
        #expect(none.status == 0, "\(none.stdout)\(none.stderr)")
        #expect(none.stdout.contains("journal: none yet"))
        #expect(!FileManager.default.fileExists(atPath: journal.path))

        // A journal as the service makes it (status opens, creates, migrates), with rows, then
        // rewound to schema 4: migrations 9 (blobs), 8 (console_events), 7 (three indexes), 6 (service_runs,
        // an index) and 5 (purged_at and three indexes) undone.
        _ = try CLI.run(["status", "--config", config])
        try #require(try sqlite(journal, "SELECT max(version) FROM schema_migrations") == "9",
                     "this test undoes migrations 9, 8, 7, 6 and 5, the newest when it was written: make it undo the newer ones too")
        _ = try sqlite(journal, """
            INSERT INTO inputs (sha256, file_name, received_at) VALUES ('a', 'a.pdf', 1), ('b', 'b.pdf', 2);
            INSERT INTO stays (finess, stay_id, admitted_at) VALUES ('750803447', 'S1', 3);
            DROP TABLE blobs; DROP TABLE console_events;
            DROP INDEX transmissions_waiting; DROP INDEX transmissions_last_error; DROP INDEX transmissions_state_id;
            DROP INDEX attempts_started; DROP TABLE service_runs;
            DROP INDEX documents_purged; DROP INDEX documents_blob; DROP INDEX documents_built;
            ALTER TABLE documents DROP COLUMN purged_at;
            DELETE FROM schema_migrations WHERE version IN (5, 6, 7, 8, 9);
            """)
        #expect(try sqlite(journal, "SELECT max(version) FROM schema_migrations") == "4")

        let migrated = try CLI.run(["migrate", "--config", config])
        #expect(migrated.status == 0, "\(migrated.stdout)\(migrated.stderr)")
        #expect(migrated.stdout.contains("journal: schema version 4 migrated to 9"), "\(migrated.stdout)")
        #expect(try sqlite(journal, "SELECT max(version) FROM schema_migrations") == "9")
        #expect(try sqlite(journal, "SELECT count(*) FROM sqlite_master WHERE name IN ('console_events', 'console_events_time')") == "2")
        #expect(try sqlite(journal, "SELECT count(*) FROM sqlite_master WHERE name = 'blobs'") == "1")
        #expect(try sqlite(journal, "SELECT count(*) FROM sqlite_master WHERE name IN ('transmissions_waiting', 'transmissions_last_error', 'transmissions_state_id')") == "3")
        #expect(try sqlite(journal, "SELECT count(*) FROM pragma_table_info('documents') WHERE name = 'purged_at'") == "1")
        #expect(try sqlite(journal, "SELECT count(*) FROM sqlite_master WHERE name = 'service_runs'") == "1")
        #expect(try sqlite(journal, "SELECT group_concat(file_name) FROM (SELECT file_name FROM inputs ORDER BY sha256)") == "a.pdf,b.pdf")
        #expect(try sqlite(journal, "SELECT stay_id FROM stays") == "S1")

        let again = try CLI.run(["migrate", "--config", config])
        #expect(again.status == 0)
        #expect(again.stdout.contains("journal: schema version 9, current"), "\(again.stdout)")

        // A downgrade: the journal of a newer passerelle is refused and left as it was.
        _ = try sqlite(journal, "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
        let before = try sha256(journal)
        let newer = try CLI.run(["migrate", "--config", config])
        #expect(newer.status == 1, "\(newer.stdout)\(newer.stderr)")
        #expect(newer.stderr.contains("schema version 99 is newer than this passerelle's (9)"), "\(newer.stderr)")
        #expect(newer.stderr.contains("nothing was changed"))
        #expect(try sha256(journal) == before)
    }
}
