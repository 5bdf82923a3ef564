import Foundation
import Testing
import TestSupport

/// `passerelle run` on a journal folder it cannot write: a permission or a read-only file
/// system is not a full disk. The service says the real cause, the folder and the fix, and
/// exits (systemd shows it) instead of waiting for space that would never help.
/// (A full disk, which is waited for, is GatewayTests/DiskFullTests.)
@Suite("passerelle run: the real cause of an unusable journal folder", .serialized)
struct RunFileSystemTests {
    /// A configuration with everything in `root` and the journal in `journalFolder`, readable by all.
    func configuration(root: URL, journalFolder: URL) throws -> URL {
        var text = TestConfiguration.withTestPKI()
        text = text.replacingOccurrences(of: "/tmp/passerelle-test/journal.sqlite", with: journalFolder.appendingPathComponent("journal.sqlite").path)
            .replacingOccurrences(of: "/tmp/passerelle-test", with: root.path)
        let file = root.appendingPathComponent("passerelle.toml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        return file
    }

    /// Runs until it exits (nil: still running after `timeout`, then killed).
    func runUntilExit(_ executable: String, _ arguments: [String], logs: URL, timeout: TimeInterval = 30) async throws -> (Int32?, String) {
        let run = try Background(executable, arguments, directory: TestPaths.repositoryRoot, logs: logs)
        let deadline = Date().addingTimeInterval(timeout)
        while run.process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        defer { run.kill() }
        return (run.process.isRunning ? nil : run.process.terminationStatus, run.errors)
    }

    @Test("permission denied on the journal folder: exit 1 at once, 'permission denied', the folder and the fix; no 'disk full'")
    func permissionDenied() async throws {
        let root = try TestPaths.temporaryDirectory("run-eacces")
        defer { try? FileManager.default.removeItem(at: root) }
        let logs = try TestPaths.temporaryDirectory("run-eacces-logs")
        defer { try? FileManager.default.removeItem(at: logs) }
        let journal = root.appendingPathComponent("journal")
        try FileManager.default.createDirectory(at: journal, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root.path)
        let config = try configuration(root: root, journalFolder: journal)
        let binary = try #require(CLI.binary)
        let status: Int32?, errors: String
        if getuid() == 0 {
            // root writes anywhere: run the service as nobody on a folder owned by root (0755),
            // as a unit with the wrong User= would.
            try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: logs.path)
            (status, errors) = try await runUntilExit("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                                           binary, "run", "--config", config.path], logs: logs)
        } else {
            try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: journal.path)
            (status, errors) = try await runUntilExit(binary, ["run", "--config", config.path], logs: logs)
        }
        #expect(status == 1, "\(errors)")
        #expect(errors.contains("\(journal.path): cannot open the journal: permission denied: give the passerelle user write access to \(journal.path)"),
                "\(errors)")
        #expect(errors.contains("msg=\"cannot open the journal: permission denied\""), "the log line: \(errors)")
        #expect(!errors.contains("disk is full"), "\(errors)")
    }

    static let canMount: Bool = {
        guard getuid() == 0, let probe = try? TestPaths.temporaryDirectory("run-erofs-probe") else { return false }
        defer { try? FileManager.default.removeItem(at: probe) }
        guard (try? ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe.path]))?.status == 0 else { return false }
        _ = try? ProcessRunner.run("/bin/umount", [probe.path])
        return true
    }()

    @Test("read-only file system under the journal: exit 1 at once, 'read-only file system' and 'remount it read-write'",
          .enabled(if: canMount, "needs root and tmpfs to mount a read-only file system"))
    func readOnly() async throws {
        let root = try TestPaths.temporaryDirectory("run-erofs")
        defer { try? FileManager.default.removeItem(at: root) }
        let journal = root.appendingPathComponent("journal")
        try FileManager.default.createDirectory(at: journal, withIntermediateDirectories: true)
        #expect(try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", journal.path]).status == 0)
        defer { _ = try? ProcessRunner.run("/bin/umount", ["-l", journal.path]) }
        let logs = try TestPaths.temporaryDirectory("run-erofs-logs")
        defer { try? FileManager.default.removeItem(at: logs) }
        let config = try configuration(root: root, journalFolder: journal)
        let (status, errors) = try await runUntilExit(try #require(CLI.binary), ["run", "--config", config.path], logs: logs)
        #expect(status == 1, "\(errors)")
        #expect(errors.contains("\(journal.path): cannot open the journal: read-only file system: the file system of \(journal.path) is mounted read-only"),
                "\(errors)")
        #expect(errors.contains("remount it read-write"))
        #expect(!errors.contains("disk is full"), "\(errors)")
    }
}
