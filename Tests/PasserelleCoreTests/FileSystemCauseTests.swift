import Foundation
import PasserelleCore
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `FileSystemCause`: errno → cause (only a full disk is waited for), and the probe that finds
/// the cause of a folder on real file systems: missing, read-only (a read-only tmpfs), full (a
/// filled tmpfs), not permitted (a child run as nobody, since root writes anywhere).
@Suite(.serialized) struct FileSystemCauseTests {
    @Test func errnoMapping() {
        #expect(FileSystemCause(errno: ENOSPC) == .noSpace)
        #expect(FileSystemCause(errno: EDQUOT) == .noSpace)
        #expect(FileSystemCause(errno: EROFS) == .readOnly)
        #expect(FileSystemCause(errno: EACCES) == .permissionDenied)
        #expect(FileSystemCause(errno: EPERM) == .permissionDenied)
        #expect(FileSystemCause(errno: ENOENT) == .missing)
        #expect(FileSystemCause(errno: ENOTDIR) == .missing)
        #expect(FileSystemCause(errno: EIO) == .other(EIO))
        #expect(FileSystemCause.noSpace.waitingHelps)
        for cause in [FileSystemCause.readOnly, .permissionDenied, .missing, .other(EIO)] {
            #expect(!cause.waitingHelps, "\(cause) must not be waited for")
        }
        #expect(FileSystemCause.readOnly.fix(folder: "/srv/j", key: "[journal] path").contains("remount it read-write"))
        #expect(FileSystemCause.permissionDenied.fix(folder: "/srv/j", key: "[journal] path").contains("chown passerelle /srv/j"))
        #expect(FileSystemCause.missing.fix(folder: "/srv/j", key: "[journal] path").contains("install -d -o passerelle -m 0700 /srv/j"))
        #expect(FileSystemCause.noSpace.fix(folder: "/srv/j", key: "[journal] path").contains("free space"))
    }

    @Test func probeOfAWritableAndOfAMissingFolder() throws {
        let dir = try TestPaths.temporaryDirectory("fs-cause")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(FileSystemCause.probe(folder: dir.path) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "the probe file is removed")
        #expect(FileSystemCause.probe(folder: dir.appendingPathComponent("absent").path) == .missing)
    }

    static let canMount: Bool = {
        guard getuid() == 0, let probe = try? TestPaths.temporaryDirectory("fs-cause-mount") else { return false }
        defer { try? FileManager.default.removeItem(at: probe) }
        guard (try? ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe.path]))?.status == 0 else { return false }
        _ = try? ProcessRunner.run("/bin/umount", [probe.path])
        return true
    }()

    @Test(.enabled(if: canMount, "needs root and tmpfs")) func probeOfAReadOnlyAndOfAFullFileSystem() throws {
        let dir = try TestPaths.temporaryDirectory("fs-cause")
        defer { try? FileManager.default.removeItem(at: dir) }
        let readOnly = dir.appendingPathComponent("ro"), full = dir.appendingPathComponent("full")
        for folder in [readOnly, full] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        #expect(try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", readOnly.path]).status == 0)
        defer { _ = try? ProcessRunner.run("/bin/umount", ["-l", readOnly.path]) }
        #expect(try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", full.path]).status == 0)
        defer { _ = try? ProcessRunner.run("/bin/umount", ["-l", full.path]) }

        #expect(FileSystemCause.probe(folder: readOnly.path) == .readOnly)
        #expect(FileSystemCause.probe(folder: full.path) == nil, "room left: nothing to report")
        // Fill it until not one byte fits.
        let fd = open(full.appendingPathComponent("filler").path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(fd >= 0)
        let chunk = [UInt8](repeating: 0xA5, count: 16 * 1024)
        var size = chunk.count
        while size > 0 {
            if chunk.withUnsafeBytes({ write(fd, $0.baseAddress, size) }) <= 0 { size /= 2 }
        }
        close(fd)
        #expect(FileSystemCause.probe(folder: full.path) == .noSpace)
    }
}
