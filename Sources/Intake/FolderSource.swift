import Foundation
import Logging
import OpenSSLKit
import PasserelleCore
import Synchronization
import TestHooks
#if canImport(Glibc)
import Glibc
#endif

/// The watched folder as an ``IntakeSource``. Its claims (already moved into `work/<claim id>/`)
/// are, in order: what a previous process left in work/ (taken again at start), then the inbox
/// as ``InboxWatcher`` claims it, and every ``workRetryInterval`` the claims this process left in
/// work/ (journal outage, unreadable file). Settling a claim: accepted or duplicate → the claim
/// folder moves to `done/` (one rename, once the journal holds it); refused → `error/` with its
/// reason file; unavailable → it stays in work/ for the retry pass.
public struct FolderSource: IntakeSource {
    public let scanner: InboxScanner
    public let loader: IntakeLoader
    public let done: URL
    /// A claim that was being processed when the process died this many times goes to error/
    /// (`[folders] max_processing_attempts`): one poison file can never stop the intake.
    public let maxProcessingAttempts: Int
    /// Seconds between two inbox rescans when nothing wakes the watcher.
    public let rescanInterval: TimeInterval
    /// Seconds between two passes over work/ for the claims a journal failure left there.
    public let workRetryInterval: TimeInterval
    let logger: Logger
    /// Claim folders this process left in work/ (journal unavailable, unreadable file): the
    /// ones the retry pass may take again. The others in work/ may still wait in the claims'
    /// queue or be in flight — taking them too would handle them twice.
    let leftBehind = LeftBehind()

    public var origin: IntakeOrigin { .inbox }

    public init(scanner: InboxScanner, done: URL, loader: IntakeLoader = IntakeLoader(), maxProcessingAttempts: Int = 3,
                rescanInterval: TimeInterval = 1, workRetryInterval: TimeInterval = 60,
                logger: Logger = Logger(label: "passerelle.inbox")) {
        self.scanner = scanner
        self.done = done
        self.loader = loader
        self.maxProcessingAttempts = maxProcessingAttempts
        self.rescanInterval = rescanInterval
        self.workRetryInterval = workRetryInterval
        self.logger = logger
    }

    public func claims() -> AsyncStream<ClaimedFile> {
        let (stream, feed) = AsyncStream.makeStream(of: ClaimedFile.self)
        let task = Task { [self] in
            for claim in await workClaims(leftBehindOnly: false) { feed.yield(claim) }
            let watcher = InboxWatcher(scanner: scanner, rescanInterval: rescanInterval)
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    // A folder failure (full disk, folder gone) is logged and the inbox watched
                    // again a little later: intake never stops for good while the service runs.
                    while !Task.isCancelled {
                        do {
                            for try await claim in watcher.claims() { feed.yield(claim) }
                        } catch {
                            logger.error("cannot scan the inbox; trying again", metadata: ["error": "\(error)"])
                        }
                        try? await Task.sleep(nanoseconds: UInt64(max(rescanInterval, 5) * 1e9))
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(nanoseconds: UInt64(workRetryInterval * 1e9))
                        if Task.isCancelled { break }
                        for claim in await workClaims(leftBehindOnly: true) { feed.yield(claim) }
                    }
                }
            }
            feed.finish()
        }
        feed.onTermination = { _ in task.cancel() }
        return stream
    }

    public func label(_ claim: ClaimedFile) -> String { claim.files.map(\.lastPathComponent).joined(separator: " + ") }

    /// Raises the claim's count of starts that did not finish (``AttemptCounter``, in
    /// `work/.claims-in-flight/<claim id>`); a count left by dead processes that reached
    /// ``maxProcessingAttempts`` sets the claim aside instead. A claim this process made has no
    /// counter: if the process dies, the start-up pass over work/ counts that start
    /// (``workClaims(leftBehindOnly:)``), so the common case writes no file at all.
    public func begin(_ claim: ClaimedFile) async -> RefusalReason? {
        guard let dir = claim.files.first?.deletingLastPathComponent() else { return nil }
        let counter = AttemptCounter.forClaim(dir)
        let interrupted = counter.read()
        if interrupted == 0 {
            CrashPoint.reached(.claimed)
            return nil
        }
        if interrupted >= maxProcessingAttempts {
            // The process died that many times while handling this claim: taking it again would loop.
            logger.error("a file stopped the gateway repeatedly while being processed; moved to error/",
                         metadata: ["claim": "\(dir.lastPathComponent)", "attempts": "\(interrupted)"])
            counter.remove()
            return .interruptedTooOften(attempts: interrupted, key: "[folders] max_processing_attempts")
        }
        counter.write(interrupted + 1)
        CrashPoint.reached(.claimed)
        return nil
    }

    public func load(_ claim: ClaimedFile) throws(ClaimLoadFailure) -> LoadedClaim {
        do {
            let loaded = try loader.loadWithDigest(claim)
            return LoadedClaim(item: loaded.item, sha256: loaded.sha256, name: claim.files[0].lastPathComponent)
        } catch { throw .refused(error) }
    }

    public func acknowledge(_ claim: ClaimedFile, _ outcome: IntakeOutcome) async {
        guard let dir = claim.files.first?.deletingLastPathComponent() else { return }
        switch outcome {
        case .accepted, .duplicate: moveToDone(claim)
        case .acceptedInPart(let accepted, let reason):
            moveToDone(claim)
            // The journal holds the accepted part: a reason file that cannot be written is logged, not retried.
            do { try await scanner.notePartialRefusal(claim.files[0].lastPathComponent, accepted: accepted, reason: reason) } catch {
                logger.error("cannot write the reason file of a file accepted in part", metadata: ["file": "\(label(claim))", "error": "\(error)"])
            }
        case .refused(let reason):
            do { try await scanner.refuse(claim.files, reason: reason) } catch {
                logger.error("cannot move a refused file to error/", metadata: ["file": "\(label(claim))", "error": "\(error)"])
                leftBehind.insert(claim)
            }
        case .unavailable: leftBehind.insert(claim)
        }
        let counter = AttemptCounter.forClaim(dir)
        let count = counter.read()
        guard count > 0 else { return }  // a claim of this process's: no counter to settle
        if ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).isEmpty {
            counter.remove()  // done/ or error/
        } else {
            counter.write(count - 1)  // still in work/, finished without dying: this pass does not count
        }
    }

    /// The claims a crash or a journal failure left in `work/`; with `leftBehindOnly`, only
    /// those this process left there (the others may be queued or in flight). Half-claimed
    /// pairs are put back into the inbox; the poison check is ``begin(_:)``'s.
    func workClaims(leftBehindOnly: Bool) async -> [ClaimedFile] {
        let work = scanner.work
        let fm = FileManager.default
        // Hidden entries (the in-flight counters) are not claims.
        guard var dirs = (try? fm.contentsOfDirectory(atPath: work.path))?.filter({ !$0.hasPrefix(".") }) else { return [] }
        if !leftBehindOnly {
            // Counters of claims gone meanwhile (a crash between a claim's move and its counter's removal).
            let counters = work.appendingPathComponent(AttemptCounter.claimsFolderName)
            for name in (try? fm.contentsOfDirectory(atPath: counters.path)) ?? [] where !dirs.contains(name) {
                unlink(counters.appendingPathComponent(name).path)
            }
        }
        if leftBehindOnly { dirs = dirs.filter(leftBehind.take) }
        var claims: [ClaimedFile] = []
        for name in dirs.sorted() {
            let dir = work.appendingPathComponent(name)
            guard let files = try? fm.contentsOfDirectory(atPath: dir.path) else { continue }
            if files.isEmpty { try? fm.removeItem(at: dir); continue }
            let urls = files.sorted().map { dir.appendingPathComponent($0) }
            guard let claim = Self.claim(of: urls) else {
                AttemptCounter.forClaim(dir).remove()
                await putBackOrRefuse(urls, dir: dir)
                continue
            }
            // Left by a process that died while handling it: that start counts (see begin(_:)).
            if !leftBehindOnly {
                let counter = AttemptCounter.forClaim(dir)
                if counter.read() == 0 { counter.write(1) }
            }
            logger.notice("taking again a file left in work/", metadata: ["claim": "\(name)"])
            claims.append(claim)
        }
        return claims
    }

    /// A claim interrupted half-way (one file of a pair moved, the process killed): the moved
    /// file goes back next to its other half in the inbox, to be claimed again as a pair.
    func putBackOrRefuse(_ urls: [URL], dir: URL) async {
        let inbox = scanner.inbox
        let waiting = (try? FileManager.default.contentsOfDirectory(atPath: inbox.path)) ?? []
        for url in urls {
            let stem = url.deletingPathExtension().lastPathComponent
            let target = inbox.appendingPathComponent(url.lastPathComponent)
            if waiting.contains(where: { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent == stem }),
               !FileManager.default.fileExists(atPath: target.path), rename(url.path, target.path) == 0 {
                logger.notice("half-claimed pair put back into the inbox", metadata: ["file": "\(url.lastPathComponent)"])
                continue
            }
            try? await scanner.refuse([url], reason: .unsupportedFileType(name: url.lastPathComponent))
        }
        if (try? FileManager.default.contentsOfDirectory(atPath: dir.path))?.isEmpty == true {
            try? FileManager.default.removeItem(at: dir)
        }
    }

    /// Rebuilds a claim from the files of one work/ folder.
    static func claim(of urls: [URL]) -> ClaimedFile? {
        func ext(_ e: String) -> URL? { urls.first { $0.pathExtension.lowercased() == e } }
        if urls.count == 1, let m = ext("hl7") ?? ext("er7") { return .hl7(m) }
        guard urls.count == 2, let sidecar = ext("json") else { return nil }
        if let pdf = ext("pdf") { return .pdf(document: pdf, sidecar: sidecar) }
        if let xml = ext("xml") { return .cda(document: xml, sidecar: sidecar) }
        return nil
    }

    /// The journal holds the document: the claim folder leaves work/ for done/ (one rename).
    func moveToDone(_ claim: ClaimedFile) {
        guard let dir = claim.files.first?.deletingLastPathComponent() else { return }
        let target = done.appendingPathComponent(dir.lastPathComponent, isDirectory: true)
        // Claimed files are made 0600 when claimed; one claimed by an older version may not be.
        // By path (lstat, chmod) rather than opened: work/ is private (0700), and opening the file
        // again would read as a use after the journal commit.
        for file in claim.files {
            var info = stat()
            if lstat(file.path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o777 != 0o600 { chmod(file.path, 0o600) }
        }
        var failure: String?
        // done/ exists but for the first document (or after an operator removed it): made only
        // when the rename says it is missing, not probed for every document.
        var code = rename(dir.path, target.path) == 0 ? 0 : errno
        if code == ENOENT, IntakeFile.entryKind(done) == nil {
            do {
                try FileManager.default.createDirectory(at: done, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                code = rename(dir.path, target.path) == 0 ? 0 : errno
            } catch {
                failure = "\(error)"
            }
        }
        if failure == nil, code != 0 { failure = "\(target.path): \(String(cString: strerror(code)))" }
        if let failure {
            // The journal already has it: a leftover in work/ is recognised as a duplicate later.
            logger.error("cannot move a journaled file to done/", metadata: ["file": "\(label(claim))", "error": "\(failure)"])
            leftBehind.insert(claim)
        }
    }
}

/// How many times an input was started without finishing: a small file holding a decimal
/// count, written before the input is processed. Not synced: a process crash keeps the page
/// cache, and a power cut is not a poison loop.
public struct AttemptCounter: Sendable {
    /// The folder of the claims' counters in work/ (hidden: not a claim), one file per claim
    /// folder name; kept out of the claim folders, which hold the claimed files only.
    public static let claimsFolderName = ".claims-in-flight"
    public let file: URL

    public init(file: URL) { self.file = file }

    public static func forClaim(_ dir: URL) -> AttemptCounter {
        AttemptCounter(file: dir.deletingLastPathComponent().appendingPathComponent(claimsFolderName, isDirectory: true).appendingPathComponent(dir.lastPathComponent, isDirectory: false))
    }

    public func read() -> Int {
        let fd = open(file.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = Glibc.read(fd, &buffer, buffer.count)
        guard n > 0 else { return 0 }
        return Int(String(decoding: buffer[0..<n], as: UTF8.self).trimmingWhitespaceAndNewlines()) ?? 0
    }

    public func write(_ count: Int) {
        if count <= 0 { remove(); return }
        // The folder exists only while something is in flight (work/ stays empty when idle):
        // made again when a concurrent remove() took it away meanwhile.
        var fd: Int32 = -1
        for _ in 0..<3 {
            fd = open(file.path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 || errno != ENOENT { break }
            mkdir(file.deletingLastPathComponent().path, 0o700)
        }
        guard fd >= 0 else { return }
        _ = DurableFiles.writeAll(Data("\(count)\n".utf8), to: fd)
        close(fd)
    }

    /// Drops the count, and its folder when it was the last one.
    public func remove() {
        unlink(file.path)
        rmdir(file.deletingLastPathComponent().path)  // fails (ENOTEMPTY) while others are in flight
    }
}

/// The names of claim folders left in work/ by this process.
final class LeftBehind: Sendable {
    private let names = Mutex(Set<String>())

    func insert(_ claim: ClaimedFile) {
        guard let dir = claim.files.first?.deletingLastPathComponent().lastPathComponent else { return }
        names.withLock { _ = $0.insert(dir) }
    }

    /// True (and forgotten) when `name` was left behind.
    func take(_ name: String) -> Bool { names.withLock { $0.remove(name) != nil } }
}
