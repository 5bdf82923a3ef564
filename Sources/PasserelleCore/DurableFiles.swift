import Foundation
import Synchronization
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

    /// ``writeNew(_:to:mode:)``, but the file appears under `path` only once it is whole (written
    /// and fsynced under a hidden name, then linked in place): whoever watches the folder (a
    /// person, a script collecting refusals) never reads it half-written. Never replaces an
    /// existing `path`. The caller syncs the folder.
    public static func publishNew(_ data: Data, to path: String, mode: mode_t = 0o600) -> String? {
        let url = URL(fileURLWithPath: path)
        let hidden = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UInt32.random(in: 0...UInt32.max))\(hiddenSuffix)").path
        if let failure = writeNew(data, to: hidden, mode: mode) { return failure }
        defer { unlink(hidden) }
        return link(hidden, path) == 0 ? nil : String(cString: strerror(errno))
    }

    private static let hiddenSuffix = ".tmp"

    /// The path ``publishNew(_:to:mode:)`` publishes under, when `path` is one of its hidden
    /// names (`.NAME.N.tmp` beside `NAME`); nil for any other path.
    public static func publishedPath(ofHidden path: String) -> String? {
        let url = URL(fileURLWithPath: path)
        let name = url.lastPathComponent
        guard name.hasPrefix("."), name.hasSuffix(hiddenSuffix) else { return nil }
        let inner = name.dropFirst().dropLast(hiddenSuffix.count)
        guard let dot = inner.lastIndex(of: "."), !inner[..<dot].isEmpty,
              UInt32(inner[inner.index(after: dot)...]) != nil else { return nil }
        return url.deletingLastPathComponent().appendingPathComponent(String(inner[..<dot])).path
    }

    /// ``writeNew(_:to:mode:)`` of the concatenation of `parts`, without joining them in memory
    /// (a record header followed by a large PDF).
    ///
    /// With `direct`, a file of ``directMinimum`` bytes or more is written with `O_DIRECT` (the
    /// bytes go from one reused aligned buffer to the disk, not through the page cache): on this
    /// project's machines a 380 KB blob then costs 0.2–0.3 ms of CPU instead of 0.75–1 ms, as
    /// copying into fresh page-cache pages is most of a buffered write. A file system that refuses
    /// `O_DIRECT` (tmpfs, some network ones) gets the buffered write.
    ///
    /// `sync: false` leaves out the `fsync`, for a file that is only a cache of a durable copy
    /// kept elsewhere (a PostgreSQL node's blob folder): its reader checks it and fetches again.
    public static func writeNew(parts: [Data], to path: String, mode: mode_t = 0o600, direct: Bool = false, sync: Bool = true) -> String? {
        if direct, case .done(let failure) = writeNewDirect(parts: parts, to: path, mode: mode, sync: sync) { return failure }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        var failure: String?
        for data in parts where failure == nil { failure = writeAll(data, to: fd) }
        if failure == nil && sync && fsync(fd) != 0 { failure = "fsync failed: \(String(cString: strerror(errno)))" }
        if close(fd) != 0 && failure == nil { failure = "close failed: \(String(cString: strerror(errno)))" }
        if failure != nil { unlink(path) }
        return failure
    }

    /// Smallest file written with `O_DIRECT` (below it the copy is cheap and the padding is not).
    public static let directMinimum = 64 << 10
    /// `O_DIRECT` needs the buffer, the file offset and the length aligned to the device's
    /// logical block; 4 KiB covers every disk in use.
    static let directAlignment = 4096
    /// `O_DIRECT` from <fcntl.h> (x86_64 and arm64 Linux values; not exported to Swift).
    #if arch(arm64)
    static let oDirect: Int32 = 0o200000
    #else
    static let oDirect: Int32 = 0o40000
    #endif

    enum DirectWrite: Equatable {
        /// Written (failure nil) or failed, the partial file removed.
        case done(failure: String?)
        /// The file system or the size does not allow it: nothing was left behind, write buffered.
        case notPossible
    }

    /// The `O_DIRECT` write of ``writeNew(parts:to:mode:direct:)``.
    static func writeNewDirect(parts: [Data], to path: String, mode: mode_t, sync: Bool = true) -> DirectWrite {
        #if os(Linux)
        let size = parts.reduce(0) { $0 + $1.count }
        guard size >= directMinimum, size <= AlignedBuffers.largestKept else { return .notPossible }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | oDirect, mode)
        if fd < 0 {
            if errno == EINVAL { return .notPossible }  // no O_DIRECT on this file system
            return .done(failure: String(cString: strerror(errno)))
        }
        let padded = (size + directAlignment - 1) / directAlignment * directAlignment
        let buffer = AlignedBuffers.take(padded)
        defer { AlignedBuffers.give(buffer) }
        var offset = 0
        for part in parts {
            part.withUnsafeBytes { raw in
                if raw.count > 0 { (buffer.pointer + offset).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
            }
            offset += part.count
        }
        (buffer.pointer + size).initializeMemory(as: UInt8.self, repeating: 0, count: padded - size)
        var failure: String?
        var written = 0
        while written < padded, failure == nil {
            let n = write(fd, buffer.pointer + written, padded - written)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EINVAL, written == 0 {  // alignment refused by this device: buffered
                    close(fd)
                    unlink(path)
                    return .notPossible
                }
                failure = "write failed: \(String(cString: strerror(errno)))"
            } else if n == 0 || n % directAlignment != 0 && written + n < padded {
                failure = "short direct write (\(written + n) of \(padded) bytes)"
            } else {
                written += n
            }
        }
        // The padding goes: the file holds exactly the bytes given. fsync then makes both the
        // data and the size durable.
        if failure == nil && ftruncate(fd, off_t(size)) != 0 { failure = "ftruncate failed: \(String(cString: strerror(errno)))" }
        if failure == nil && sync && fsync(fd) != 0 { failure = "fsync failed: \(String(cString: strerror(errno)))" }
        if close(fd) != 0 && failure == nil { failure = "close failed: \(String(cString: strerror(errno)))" }
        if failure != nil { unlink(path) }
        return .done(failure: failure)
        #else
        return .notPossible
        #endif
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

/// Page-aligned buffers for `O_DIRECT` writes, kept and reused: a fresh buffer would fault in
/// every page again on each write (the cost the direct write avoids).
enum AlignedBuffers {
    struct Buffer: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
        let capacity: Int
    }
    /// Larger files go through the page cache (a buffer of their size is not kept).
    static let largestKept = 16 << 20
    /// One per blob thread is enough; more are freed when given back.
    static let kept = 4
    private static let pool = Mutex<[Buffer]>([])

    static func take(_ size: Int) -> Buffer {
        if let buffer = pool.withLock({ buffers -> Buffer? in
            guard let index = buffers.firstIndex(where: { $0.capacity >= size }) else { return buffers.popLast() }
            return buffers.remove(at: index)
        }) {
            if buffer.capacity >= size { return buffer }
            buffer.pointer.deallocate()
        }
        // Rounded up to 1 MiB so a few sizes serve every document.
        let capacity = ((size + (1 << 20) - 1) >> 20) << 20
        return Buffer(pointer: .allocate(byteCount: capacity, alignment: DurableFiles.directAlignment), capacity: capacity)
    }

    static func give(_ buffer: Buffer) {
        let kept = pool.withLock { buffers -> Bool in
            guard buffers.count < Self.kept else { return false }
            buffers.append(buffer)
            return true
        }
        if !kept { buffer.pointer.deallocate() }
    }
}
