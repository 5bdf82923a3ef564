import Foundation
import BlockingIO
import OpenSSLKit
import PasserelleCore
import Synchronization
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
    /// True when a blob read from here is worth a file in the folder (PostgreSQL: another
    /// node's, over the network); false when it lives in the database for good (SQLite's small
    /// intake records: a copy would be the file its inlining saved).
    var cachesInFolder: Bool { get }
}

extension BlobSource {
    public var cachesInFolder: Bool { true }
}

/// Content-addressed files: `<root>/<first 2 hex>/<sha256 hex>`, mode 0600, fsynced (file and
/// folder) before ``put(_:)`` returns, so a journal row never points at a blob a crash could lose.
///
/// When the folder only caches a ``source`` that keeps every blob for good (PostgreSQL), the
/// files are not fsynced: the database row is the durable copy, and a file a power cut left
/// short or empty fails its digest check on reading, is removed and fetched again.
public struct BlobStore: Sendable {
    public let root: URL
    /// Read when a blob is not in the folder (nil: the folder is the only copy).
    public let source: (any BlobSource)?
    /// Sub-folders whose entry in the root this process has already synced (shared by copies).
    private let syncedFolders = SyncedFolders()

    /// True when the files are a cache of ``source`` (PostgreSQL), false when the folder holds
    /// the only copy of at least some blobs (SQLite's built CDAs): then every write is fsynced.
    public var isCache: Bool { source?.cachesInFolder ?? false }

    /// Creates the folder (0700) if needed.
    public init(root: URL, source: (any BlobSource)? = nil) throws(JournalError) {
        self.root = root
        self.source = source
        // Synced into its parent: a blob fsynced into a folder whose own entry a power cut
        // loses would be lost with it.
        if let failure = DurableFiles.createDirectory(root) {
            throw .blobStore(path: root.path, reason: failure, cause: FileSystemCause.probe(folder: root.deletingLastPathComponent().path))
        }
    }

    /// The lowercase hex SHA-256 of `data`.
    public static func sha256Hex(_ data: Data) -> String {
        Digest.sha256(data).hexString
    }

    /// The lowercase hex SHA-256 of the concatenation of `parts`, without joining them.
    static func sha256Hex(parts: [Data]) -> String {
        let context = DigestContext(.sha256)
        for part in parts { context.update(part) }
        return context.finalize().hexString
    }

    /// Where the blob with this digest lives.
    public func url(for sha256: String) -> URL {
        root.appendingPathComponent(String(sha256.prefix(2)), isDirectory: true).appendingPathComponent(sha256, isDirectory: false)
    }

    /// Stores `data` and returns its SHA-256. Storing the same bytes again is a no-op.
    @discardableResult
    public func put(_ data: Data) throws(JournalError) -> String {
        try put(parts: [data])
    }

    /// Stores the concatenation of `parts` without building it in memory (a record header
    /// followed by a large PDF) and returns its SHA-256. `sha256`, when given, is the digest the
    /// caller computed from these very bytes (it names the file; it is not checked again).
    @discardableResult
    public func put(parts: [Data], sha256 known: String? = nil) throws(JournalError) -> String {
        let digest = known ?? Self.sha256Hex(parts: parts)
        let final = url(for: digest)
        let folder = final.deletingLastPathComponent()
        if FileManager.default.fileExists(atPath: final.path) {
            // Stored by an earlier call, maybe of a process killed before its folder sync: sync
            // again, as the new journal row that will point at it must not outlive it.
            try syncFolders(folder)
            return digest
        }
        try createFolder(folder)  // its entry in root is synced below, after the rename
        // Write a temporary name then rename: a reader never sees a half-written blob.
        let temporary = folder.appendingPathComponent(".\(digest).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp", isDirectory: false)
        // A failed write (a full disk) removes the temporary file: no half-written blob stays.
        if let failure = DurableFiles.writeNew(parts: parts, to: temporary.path, direct: true, sync: !isCache) {
            // Why, from the folder's state: only a full disk is worth waiting for.
            throw .blobStore(path: temporary.path, reason: failure, cause: FileSystemCause.probe(folder: folder.path))
        }
        try moveIntoPlace(temporary, final)
        return digest
    }

    /// An admission's two blobs (intake record, built CDA), written and fsynced on the blob
    /// threads: file writes and fsyncs never hold a thread of Swift's cooperative pool.
    /// `recordInJournal`: the record goes into the journal's transaction, not a file; only its
    /// digest is computed here. A cache (``isCache``) gets both files, unsynced (PostgreSQL skips
    /// this for a CDA whose first sends take it from memory: see ``Admission/firstSendFromMemory``).
    public func store(_ admission: Admission, recordInJournal: Bool = false) async throws(JournalError) -> (record: String, built: String) {
        let record = admission.record, built = admission.built, store = self
        do {
            let digests: [String] = try await Self.threads.run {
                let recordSHA = recordInJournal ? Self.sha256Hex(parts: record) : try store.put(parts: record)
                switch built {
                case .data(let data, let sha256): return [recordSHA, try store.put(parts: [data], sha256: sha256)]
                case .file(let url, let sha256): return [recordSHA, try store.put(file: url, sha256: sha256)]
                }
            }
            return (digests[0], digests[1])
        } catch let error as JournalError {
            throw error
        } catch {
            throw .blobStore(path: root.path, reason: "\(error)")
        }
    }

    /// Runs blocking blob work of the caller's (reading a journaled document back to send it)
    /// on the blob threads, off Swift's cooperative pool.
    public func onBlobThreads<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await Self.threads.run(body)
    }

    /// Threads for blob files: as many as documents admitted at once by default
    /// (`[folders] intake_concurrency`), each mostly waiting on its fsync.
    static let threads = BlockingExecutor(name: "passerelle.blobs", threads: 4, idleTimeout: .seconds(30))

    /// Renames a written, fsynced file to its blob name and syncs both folders (the file is
    /// removed if that fails).
    private func moveIntoPlace(_ file: URL, _ final: URL) throws(JournalError) {
        guard rename(file.path, final.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(file.path)
            throw .blobStore(path: final.path, reason: "rename failed: \(reason)")
        }
        try syncFolders(final.deletingLastPathComponent())
    }

    /// Creates a blob sub-folder (0700) unless this process already synced it into the root (it
    /// exists then: blobs are never removed with their folder), saving a mkdir per blob. A cache
    /// syncs nothing: the folder is remembered as soon as it exists.
    private func createFolder(_ folder: URL) throws(JournalError) {
        guard !syncedFolders.contains(folder.lastPathComponent) else { return }
        guard mkdir(folder.path, 0o700) == 0 || errno == EEXIST else {
            throw .blobStore(path: folder.path, reason: "cannot create the folder: \(String(cString: strerror(errno)))",
                             cause: FileSystemCause.probe(folder: root.path))
        }
        if isCache { syncedFolders.insert(folder.lastPathComponent) }
    }

    /// The blob's entry in its folder, and the folder's entry in the root. The root is synced
    /// once per sub-folder and process: after that sync the entry is durable (256 sub-folders,
    /// so one directory fsync per blob instead of two in steady state).
    private func syncFolders(_ folder: URL) throws(JournalError) {
        guard !isCache else { return }
        if let failure = DurableFiles.syncDirectory(folder.path) { throw .blobStore(path: folder.path, reason: failure) }
        guard !syncedFolders.contains(folder.lastPathComponent) else { return }
        if let failure = DurableFiles.syncDirectory(root.path) { throw .blobStore(path: root.path, reason: failure) }
        syncedFolders.insert(folder.lastPathComponent)
    }

    /// A new file name for ``put(file:sha256:)``, in the blob folder (same file system, so the
    /// blob is moved in by a rename, never copied).
    public func temporaryURL() -> URL {
        root.appendingPathComponent(".incoming.\(getpid()).\(UInt64.random(in: 0...UInt64.max)).tmp", isDirectory: false)
    }

    /// Removes ``temporaryURL()`` files older than `age` seconds: a large CDA being built when
    /// the process died (it holds patient data; the document is built again on resume).
    public func removeStaleTemporaryFiles(olderThan age: TimeInterval = 3600, now: Date = Date()) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        for name in names where name.hasPrefix(".incoming.") && name.hasSuffix(".tmp") {
            let url = root.appendingPathComponent(name)
            let modified = (try? FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate] as? Date) ?? nil
            if let modified, now.timeIntervalSince(modified) > age { unlink(url.path) }
        }
    }

    /// Takes the file at `file` (written 0600 by the caller, e.g. in ``temporaryURL()``), whose
    /// SHA-256 the caller computed while writing it: fsyncs it and renames it into place, so a
    /// large blob is stored without being read into memory. The file is gone afterwards.
    @discardableResult
    public func put(file: URL, sha256 digest: String) throws(JournalError) -> String {
        let final = url(for: digest)
        let folder = final.deletingLastPathComponent()
        do { try createFolder(folder) } catch {
            unlink(file.path)
            throw error
        }
        if FileManager.default.fileExists(atPath: final.path) {
            unlink(file.path)
            try syncFolders(folder)  // as in put(parts:): the row that will point at it must not outlive it
            return digest
        }
        if !isCache {
            let fd = open(file.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .blobStore(path: file.path, reason: String(cString: strerror(errno))) }
            let synced = fsync(fd) == 0
            let reason = String(cString: strerror(errno))
            close(fd)
            guard synced else {
                unlink(file.path)
                throw .blobStore(path: file.path, reason: "fsync failed: \(reason)")
            }
        }
        try moveIntoPlace(file, final)
        return digest
    }

    /// The file of blob `sha256`, checked against the digest in one streaming pass (a large
    /// blob is not read into memory). A blob missing from the folder, or a damaged cached copy,
    /// is fetched from ``source``.
    public func verifiedFile(_ sha256: String) throws(JournalError) -> URL {
        let file = url(for: sha256)
        if !FileManager.default.fileExists(atPath: file.path) { _ = try get(sha256) }
        let digest = try? Digest.hash(fileAt: file)
        if digest?.hexString == sha256 { return file }
        if dropDamagedCopy(sha256) {
            _ = try get(sha256)
            if (try? Digest.hash(fileAt: file))?.hexString == sha256 { return file }
        }
        guard digest != nil else { throw .blobStore(path: file.path, reason: "blob missing or unreadable") }
        throw .blobStore(path: file.path, reason: "content does not match its SHA-256 (disk corruption?)")
    }

    /// Removes blob `sha256`'s file when the folder is a cache (``isCache``), after its reader
    /// found it damaged, so that the next read fetches it from ``source``. Returns false, and
    /// keeps the file, when the folder holds the only copy: that damage is the operator's to see.
    @discardableResult
    public func dropDamagedCopy(_ sha256: String) -> Bool {
        guard isCache else { return false }
        unlink(url(for: sha256).path)
        return true
    }

    /// The first bytes of blob `sha256`, at most `count`, the whole blob checked against its
    /// digest first (streaming, for a file). A blob its ``source`` keeps for good and the folder
    /// does not hold (an SQLite journal's small intake record) is read from there, whole.
    public func verifiedPrefix(_ sha256: String, upTo count: Int) throws(JournalError) -> Data {
        if size(sha256) == nil, let source, !source.cachesInFolder { return try get(sha256).prefix(count) }
        _ = try verifiedFile(sha256)
        return try prefix(sha256, upTo: count)
    }

    /// The first bytes of blob `sha256` (unchecked: for reading a record's header).
    public func prefix(_ sha256: String, upTo count: Int) throws(JournalError) -> Data {
        let file = url(for: sha256)
        if !FileManager.default.fileExists(atPath: file.path) { _ = try get(sha256) }
        do {
            let handle = try FileHandle(forReadingFrom: file)
            defer { try? handle.close() }
            return try handle.read(upToCount: count) ?? Data()
        } catch {
            throw .blobStore(path: file.path, reason: "blob missing or unreadable: \(error.localizedDescription)")
        }
    }

    /// The size of blob `sha256`'s file, nil when the folder has none.
    public func size(_ sha256: String) -> Int64? {
        var info = stat()
        guard lstat(url(for: sha256).path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    /// Deletes blob `sha256`'s file (retention); a missing file is not an error.
    public func remove(_ sha256: String) {
        unlink(url(for: sha256).path)
    }

    /// The bytes of blob `sha256`, checked against the digest (a corrupted file is an error,
    /// unless the folder is a cache: then the file is replaced from ``source``). A blob missing
    /// from the folder is read from ``source`` and kept in the folder.
    public func get(_ sha256: String) throws(JournalError) -> Data {
        let path = url(for: sha256).path
        var cached = FileManager.default.contents(atPath: path)
        if let data = cached, BlobStore.sha256Hex(data) != sha256 {
            guard dropDamagedCopy(sha256) else {
                throw .blobStore(path: path, reason: "content does not match its SHA-256 (disk corruption?)")
            }
            cached = nil
        }
        guard let data = cached else {
            if let source, let data = try source.blob(sha256: sha256) {
                guard BlobStore.sha256Hex(data) == sha256 else {
                    throw .blobStore(path: path, reason: "the database copy does not match its SHA-256")
                }
                if source.cachesInFolder { try put(data) }
                return data
            }
            throw .blobStore(path: path, reason: "blob missing or unreadable")
        }
        return data
    }
}

/// Keyed hash of an INS (HMAC-SHA-256, hex), so `passerelle resend --patient` can find a
/// patient's documents without the journal holding the INS itself. The key is a local secret.
public enum PatientKey {
    /// HMAC-SHA-256(secret, matricule) in lowercase hex.
    public static func derive(matricule: String, secret: Data) -> String {
        hmacSHA256(key: secret, message: Data(matricule.utf8)).hexString
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

/// The names of the blob sub-folders whose entry in the root is known durable (a cache: that exist).
private final class SyncedFolders: Sendable {
    private let names = Mutex<Set<String>>([])
    func contains(_ name: String) -> Bool { names.withLock { $0.contains(name) } }
    func insert(_ name: String) { _ = names.withLock { $0.insert(name) } }
}
