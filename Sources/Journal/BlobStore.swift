import Foundation
import OpenSSLKit
import PasserelleCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where blobs missing from a ``BlobStore`` folder can be read: the PostgreSQL journal keeps
/// them in the database, shared by every node, and the folder is then a local cache.
public protocol BlobSource: Sendable {
    /// The bytes stored under `sha256`, or nil if there are none.
    func blob(sha256: String) throws(JournalError) -> Data?
}

/// Content-addressed files: `<root>/<first 2 hex>/<sha256 hex>`, mode 0600, fsynced (file and
/// folder) before ``put(_:)`` returns, so a journal row never points at a blob a crash could lose.
public struct BlobStore: Sendable {
    public let root: URL
    /// Read when a blob is not in the folder (nil: the folder is the only copy).
    public let source: (any BlobSource)?

    /// Creates the folder (0700) if needed.
    public init(root: URL, source: (any BlobSource)? = nil) throws(JournalError) {
        self.root = root
        self.source = source
        // Synced into its parent: a blob fsynced into a folder whose own entry a power cut
        // loses would be lost with it.
        if let failure = DurableFiles.createDirectory(root) { throw .blobStore(path: root.path, reason: failure) }
    }

    /// The lowercase hex SHA-256 of `data`.
    public static func sha256Hex(_ data: Data) -> String {
        Digest.sha256(data).map { String(format: "%02x", $0) }.joined()
    }

    /// Where the blob with this digest lives.
    public func url(for sha256: String) -> URL {
        root.appendingPathComponent(String(sha256.prefix(2)), isDirectory: true).appendingPathComponent(sha256)
    }

    /// Stores `data` and returns its SHA-256. Storing the same bytes again is a no-op.
    @discardableResult
    public func put(_ data: Data) throws(JournalError) -> String {
        let digest = BlobStore.sha256Hex(data)
        let final = url(for: digest)
        let folder = final.deletingLastPathComponent()
        if FileManager.default.fileExists(atPath: final.path) {
            // Stored by an earlier call, maybe of a process killed before its folder sync: sync
            // again, as the new journal row that will point at it must not outlive it.
            try syncFolders(folder)
            return digest
        }
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw .blobStore(path: folder.path, reason: "cannot create the folder: \(error.localizedDescription)")
        }  // its entry in root is synced below, after the rename
        // Write a temporary name then rename: a reader never sees a half-written blob.
        let temporary = folder.appendingPathComponent(".\(digest).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        // A failed write (a full disk) removes the temporary file: no half-written blob stays.
        if let failure = DurableFiles.writeNew(data, to: temporary.path) { throw .blobStore(path: temporary.path, reason: failure) }
        guard rename(temporary.path, final.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw .blobStore(path: final.path, reason: "rename failed: \(reason)")
        }
        try syncFolders(folder)
        return digest
    }

    /// The blob's entry in its folder, and the folder's entry in the root.
    private func syncFolders(_ folder: URL) throws(JournalError) {
        for dir in [folder.path, root.path] {
            if let failure = DurableFiles.syncDirectory(dir) { throw .blobStore(path: dir, reason: failure) }
        }
    }

    /// The bytes of blob `sha256`, checked against the digest (a corrupted file is an error).
    /// A blob missing from the folder is read from ``source`` and kept in the folder.
    public func get(_ sha256: String) throws(JournalError) -> Data {
        let path = url(for: sha256).path
        guard let data = FileManager.default.contents(atPath: path) else {
            if let source, let data = try source.blob(sha256: sha256) {
                guard BlobStore.sha256Hex(data) == sha256 else {
                    throw .blobStore(path: path, reason: "the database copy does not match its SHA-256")
                }
                try put(data)
                return data
            }
            throw .blobStore(path: path, reason: "blob missing or unreadable")
        }
        guard BlobStore.sha256Hex(data) == sha256 else {
            throw .blobStore(path: path, reason: "content does not match its SHA-256 (disk corruption?)")
        }
        return data
    }
}

/// Keyed hash of an INS (HMAC-SHA-256, hex), so `passerelle resend --patient` can find a
/// patient's documents without the journal holding the INS itself. The key is a local secret.
public enum PatientKey {
    /// HMAC-SHA-256(secret, matricule) in lowercase hex.
    public static func derive(matricule: String, secret: Data) -> String {
        hmacSHA256(key: secret, message: Data(matricule.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// RFC 2104 HMAC over OpenSSLKit's SHA-256.
    static func hmacSHA256(key: Data, message: Data) -> Data {
        let blockSize = 64
        var k = key.count > blockSize ? Digest.sha256(key) : key
        k.append(contentsOf: [UInt8](repeating: 0, count: blockSize - k.count))
        let inner = Data(k.map { $0 ^ 0x36 }) + message
        let outer = Data(k.map { $0 ^ 0x5c }) + Digest.sha256(inner)
        return Digest.sha256(outer)
    }
}
