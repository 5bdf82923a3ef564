import Foundation

/// Why a folder or file cannot be written, told apart by the errno the system gave: only a full
/// disk gets better by waiting; a read-only mount, a permission or a missing folder needs an
/// operator, so the service says which and where rather than "disk full".
public enum FileSystemCause: Sendable, Hashable, CustomStringConvertible {
    /// ENOSPC, EDQUOT: no room left (or the user's quota is used up).
    case noSpace
    /// EROFS: the file system is mounted read-only (a remount after disk errors, a read-only volume).
    case readOnly
    /// EACCES, EPERM: the user running passerelle may not write there.
    case permissionDenied
    /// ENOENT, ENOTDIR: the folder (or one of its parents) is not there (an unmounted volume).
    case missing
    /// Anything else (an I/O error…), with its errno.
    case other(Int32)

    public init(errno code: Int32) {
        switch code {
        case ENOSPC, EDQUOT: self = .noSpace
        case EROFS: self = .readOnly
        case EACCES, EPERM: self = .permissionDenied
        case ENOENT, ENOTDIR: self = .missing
        default: self = .other(code)
        }
    }

    /// Waiting can only help when space may come back (logs rotated, a purge, a bigger volume):
    /// the other causes need an operator, and waiting would only hide them.
    public var waitingHelps: Bool { self == .noSpace }

    public var description: String {
        switch self {
        case .noSpace: "disk full"
        case .readOnly: "read-only file system"
        case .permissionDenied: "permission denied"
        case .missing: "folder missing"
        case .other(let code): String(cString: strerror(code))
        }
    }

    /// What the operator does about it, for `folder` (named by its configuration key, e.g. `[journal] path`).
    public func fix(folder: String, key: String) -> String {
        switch self {
        case .noSpace:
            "free space on the file system of \(folder) (\(key)); passerelle waits and goes on by itself once there is room"
        case .readOnly:
            "the file system of \(folder) is mounted read-only: check the disk (dmesg), remount it read-write, or point \(key) at a writable folder; then restart passerelle"
        case .permissionDenied:
            "give the passerelle user write access to \(folder) (chown passerelle \(folder); chmod 0700 \(folder)) or point \(key) elsewhere; then restart passerelle"
        case .missing:
            "\(folder) does not exist: mount its volume or create it (install -d -o passerelle -m 0700 \(folder)), or correct \(key); then restart passerelle"
        case .other:
            "check the disk holding \(folder) (\(key)) and the system log; then restart passerelle"
        }
    }

    /// One line for errors and logs: "read-only file system at /var/lib/passerelle ([journal] path): …fix".
    public func explanation(folder: String, key: String) -> String {
        "\(description) at \(folder): \(fix(folder: folder, key: key))"
    }

    /// Finds out why `folder` cannot take a new file by trying: the folder is there, writable by
    /// this user, and a small file can be created, written and synced in it (the page a full disk
    /// refuses). Nil when it can (then the failure was elsewhere). The probe file is removed.
    public static func probe(folder: String) -> FileSystemCause? {
        var info = stat()
        if stat(folder, &info) != 0 { return FileSystemCause(errno: errno) }
        if (info.st_mode & S_IFMT) != S_IFDIR { return .missing }
        let file = (folder as NSString).appendingPathComponent(".passerelle-probe-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { return FileSystemCause(errno: errno) }
        defer {
            close(fd)
            unlink(file)
        }
        let page = [UInt8](repeating: 0, count: 4096)
        let written = page.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written < 0 { return FileSystemCause(errno: errno) }
        if written < page.count { return .noSpace }
        if fsync(fd) != 0 { return FileSystemCause(errno: errno) }
        return nil
    }
}
