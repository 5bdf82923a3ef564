import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes that survive a power cut: a file's bytes reach the disk with `fsync` on the file, its
/// name with `fsync` on the folder holding it. Without the second, a crash right after a create
/// or rename may leave the folder without the entry even though the bytes were synced.
public enum DurableFiles {
    /// `fsync` of a folder, so the entries created, renamed or removed in it are on disk.
    /// - Returns: nil, or why it failed (`strerror`), for the caller's typed error.
    public static func syncDirectory(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return "cannot open the folder to sync it: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        guard fsync(fd) == 0 else { return "fsync of the folder failed: \(String(cString: strerror(errno)))" }
        return nil
    }

    /// Creates `path` (which must not exist) with `data`, mode `mode`, and syncs it; on any
    /// failure (a full disk: ENOSPC) the partial file is removed, so no half-written file stays.
    /// The folder is not synced: callers do that once after their rename or last create.
    /// - Returns: nil, or why it failed.
    public static func writeNew(_ data: Data, to path: String, mode: mode_t = 0o600) -> String? {
        writeNew(parts: [data], to: path, mode: mode)
    }

    /// ``writeNew(_:to:mode:)`` of the concatenation of `parts`, without joining them in memory
    /// (a record header followed by a large PDF).
    public static func writeNew(parts: [Data], to path: String, mode: mode_t = 0o600) -> String? {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        var failure: String?
        for data in parts where failure == nil { failure = writeAll(data, to: fd) }
        if failure == nil && fsync(fd) != 0 { failure = "fsync failed: \(String(cString: strerror(errno)))" }
        if close(fd) != 0 && failure == nil { failure = "close failed: \(String(cString: strerror(errno)))" }
        if failure != nil { unlink(path) }
        return failure
    }

    /// Writes all of `data` to `fd` (short writes and EINTR handled).
    /// - Returns: nil, or why it failed.
    public static func writeAll(_ data: Data, to fd: Int32) -> String? {
        data.withUnsafeBytes { raw -> String? in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return "write failed: \(String(cString: strerror(errno)))"
                }
                offset += n
            }
            return nil
        }
    }

    /// Creates `url` and its missing parents (mode 0700), then syncs the folder holding each new
    /// one, so a folder created now (and what is later stored in it) is not lost in a power cut.
    /// - Returns: nil, or why it failed.
    public static func createDirectory(_ url: URL) -> String? {
        let fm = FileManager.default
        var created: [URL] = []
        var level = url.standardizedFileURL
        while !fm.fileExists(atPath: level.path), level.path != "/" {
            created.append(level)
            level = level.deletingLastPathComponent()
        }
        guard !created.isEmpty else { return nil }
        do {
            try fm.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            return "cannot create the folder: \((error as NSError).localizedDescription)"
        }
        for folder in created {
            if let failure = syncDirectory(folder.deletingLastPathComponent().path) { return failure }
        }
        return nil
    }
}
