import Foundation
import Dispatch
import PasserelleCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A file (or pair) claimed from the inbox: already moved into its own directory under work/.
public enum ClaimedFile: Sendable, Hashable {
    case pdf(document: URL, sidecar: URL)
    case cda(document: URL, sidecar: URL)
    case hl7(URL)

    /// Every file of the claim.
    public var files: [URL] {
        switch self {
        case .pdf(let d, let s), .cda(let d, let s): [d, s]
        case .hl7(let u): [u]
        }
    }
}

/// Why the watcher itself failed (folders unusable).
public enum InboxError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// A folder cannot be listed or written; `cause` (from the folder's state, see
    /// ``FileSystemCause``) says whether it is full, read-only, not permitted or missing.
    case folderUnusable(path: String, reason: String, cause: FileSystemCause? = nil, key: String = "[folders]")
    /// Moving a file failed (e.g. inbox and work on different file systems: rename is not atomic there).
    /// `cause` is set where the errno names the folder's state (read-only, not permitted, full, missing).
    case moveFailed(from: String, to: String, reason: String, cause: FileSystemCause? = nil)
    /// A refused file's `NAME.error.txt` cannot be written (a full disk): the file stays where it
    /// is and its refusal is tried again on a later pass.
    case reasonUnwritable(file: String, path: String, reason: String, cause: FileSystemCause? = nil)

    public var description: String {
        switch self {
        case .folderUnusable(let path, let reason, let cause?, let key):
            "folder \(path) is unusable: \(reason): \(cause): \(cause.fix(folder: path, key: key))."
        case .folderUnusable(let path, let reason, nil, _):
            "folder \(path) is unusable: \(reason). Create it and give the passerelle user read/write access."
        case .moveFailed(let from, let to, let reason, let cause?):
            "cannot move \(from) to \(to): \(reason): \(cause): "
            + cause.fix(folder: URL(fileURLWithPath: to).deletingLastPathComponent().path, key: "[folders]") + "."
        case .moveFailed(let from, let to, let reason, nil):
            "cannot move \(from) to \(to): \(reason). Keep [folders] inbox, work and error on the same file system."
        case .reasonUnwritable(let file, let path, let reason, let cause):
            "cannot write \(path) (\(reason)): the refused file \(file) stays where it is until its reason can be written. "
            + Self.advice(cause, folder: URL(fileURLWithPath: path).deletingLastPathComponent().path)
        }
    }

    public var errorDescription: String? { description }

    /// A full disk (or no cause found) is waited for: the refusal is tried again on a later pass.
    /// The other causes will not pass by themselves: say which, and the fix.
    static func advice(_ cause: FileSystemCause?, folder: String) -> String {
        guard let cause, !cause.waitingHelps else { return "Free space in the error folder ([folders] error)." }
        return "\(cause): \(cause.fix(folder: folder, key: "[folders] error"))."
    }
}

/// One pass over the inbox at a time: classify, wait for stability, claim by atomic rename
/// into `work/<claim id>/`, move refused files to `error/` with a `NAME.error.txt` reason.
///
/// Kept as an actor so that the inotify wake-ups and the periodic rescan never claim twice.
public actor InboxScanner {
    public let inbox: URL
    public let work: URL
    public let error: URL
    /// Seconds a half pair (PDF without sidecar, sidecar without document) may wait before refusal.
    public let incompleteGrace: TimeInterval
    /// The language of the reason files (`[intake] language`); the MLLP ACKs use it too.
    public nonisolated let language: IntakeLanguage
    private var stability: StabilityTracker
    private var incompleteSince: [String: TimeInterval] = [:]
    /// Until the first pass has listed the inbox: what it finds settled is the backlog left
    /// while the gateway was down, taken without waiting a quiet period.
    private var firstPass = true

    public init(inbox: URL, work: URL, error: URL, quietPeriod: TimeInterval = 5, incompleteGrace: TimeInterval = 300,
                language: IntakeLanguage = .default) {
        self.language = language
        self.inbox = inbox
        self.work = work
        self.error = error
        self.incompleteGrace = incompleteGrace
        self.stability = StabilityTracker(quietPeriod: quietPeriod)
    }

    /// Scans once. `now` is a monotonic time in seconds (``InboxWatcher`` uses the system uptime).
    /// - Returns: the files claimed during this pass, in name order.
    public func scan(now: TimeInterval) throws(InboxError) -> [ClaimedFile] {
        let claimed = Mutex<[ClaimedFile]>([])
        try scan(now: now) { claim in claimed.withLock { $0.append(claim) } }
        return claimed.withLock { $0 }
    }

    /// Scans once, handing each claim to `onClaim` as soon as it is made: with a large backlog the
    /// first claims are processed while the pass goes on claiming the others.
    /// - Returns: how many files (or pairs) were claimed.
    @discardableResult
    public func scan(now: TimeInterval, onClaim: @Sendable (ClaimedFile) -> Void) throws(InboxError) -> Int {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: inbox.path).sorted() } catch {
            throw .folderUnusable(path: inbox.path, reason: (error as NSError).localizedDescription,
                                  cause: FileSystemCause.probe(folder: inbox.path), key: "[folders] inbox")
        }
        var claimed = 0
        var present = Set<String>()
        let settledAt: TimeInterval? = firstPass ? Date().timeIntervalSince1970 : nil
        firstPass = false
        // Pairs are found by stem: group the listing once rather than list it again per file.
        let stems = names.map { String(IntakeFile.nameParts($0).stem) }
        var namesakes: [String: [String]] = [:]
        for (name, stem) in zip(names, stems) { namesakes[stem, default: []].append(name) }
        // A refusal that cannot be completed (full disk) must not hold up the other files.
        var refusalFailure: InboxError?
        func refuseLater(_ url: URL, _ reason: RefusalReason) {
            do { try refuse([url], reason: reason) } catch { refusalFailure = refusalFailure ?? error }
        }
        for (name, stem) in zip(names, stems) {
            let url = inbox.appendingPathComponent(name, isDirectory: false)
            present.insert(url.path)
            switch IntakeFile.classify(url, namesakes: namesakes[stem] ?? []) {
            case .ignored:
                continue
            case .refused(let url, let reason):
                guard stability.isStable(url, now: now, settledAt: settledAt) else { continue }
                refuseLater(url, reason)
            case .refusedPair(let urls, let reason):
                // Both halves settled (each starts its quiet period now), then refused together.
                let stable = urls.map { stability.isStable($0, now: now, settledAt: settledAt) }
                guard !stable.contains(false) else { continue }
                for url in urls { incompleteSince[url.path] = nil }
                do { try refuse(urls, reason: reason) } catch { refusalFailure = refusalFailure ?? error }
            case .incomplete(let url, let reason):
                let since = incompleteSince[url.path] ?? now
                incompleteSince[url.path] = since
                let stable = stability.isStable(url, now: now, settledAt: settledAt)  // tracked on every pass, like the others
                if now - since >= incompleteGrace && stable {
                    refuseLater(url, reason)
                }
            case .hl7(let url):
                guard stability.isStable(url, now: now, settledAt: settledAt) else { continue }
                if let c = try claim([url]) { onClaim(.hl7(c[0])); claimed += 1 }
            case .pdf(let d, let s), .cda(let d, let s):
                // Both halves must be stable; evaluate both so each starts its quiet period.
                let documentStable = stability.isStable(d, now: now, settledAt: settledAt)
                let sidecarStable = stability.isStable(s, now: now, settledAt: settledAt)
                guard documentStable && sidecarStable else { continue }
                incompleteSince[s.path] = nil
                guard let c = try claim([d, s]) else { continue }
                onClaim(d.pathExtension.lowercased() == "pdf" ? .pdf(document: c[0], sidecar: c[1]) : .cda(document: c[0], sidecar: c[1]))
                claimed += 1
            }
        }
        // Forget files that left the inbox by other means.
        incompleteSince = incompleteSince.filter { present.contains($0.key) }
        // Reported when nothing else came of this pass; the file is still there, so the next
        // pass meets (and reports) it again.
        if let refusalFailure, claimed == 0 { throw refusalFailure }
        return claimed
    }

    /// Moves `files` into a fresh `work/<id>/` directory. Returns nil when one of them vanished
    /// meanwhile (another claimer won); already moved files are put back.
    private func claim(_ files: [URL]) throws(InboxError) -> [URL]? {
        let dir = work.appendingPathComponent(Self.claimID(), isDirectory: true)
        // mkdir alone in the common case (FileManager's way stats and chmods too); work/ itself
        // gone (removed by hand) is made again as before.
        if mkdir(dir.path, 0o700) != 0 {
            do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
                throw .folderUnusable(path: work.path, reason: (error as NSError).localizedDescription,
                                      cause: FileSystemCause.probe(folder: work.path), key: "[folders] work")
            }
        }
        var moved: [(URL, URL)] = []
        for file in files {
            let target = dir.appendingPathComponent(file.lastPathComponent, isDirectory: false)
            if rename(file.path, target.path) != 0 {
                let code = errno
                for (from, to) in moved.reversed() { _ = rename(to.path, from.path) }
                try? FileManager.default.removeItem(at: dir)
                if code == ENOENT { return nil }
                throw .moveFailed(from: file.path, to: target.path, reason: String(cString: strerror(code)),
                                  cause: code == EXDEV ? nil : FileSystemCause(errno: code))
            }
            moved.append((file, target))
        }
        for file in files {
            stability.forget(file)
            incompleteSince[file.path] = nil
            for marker in StabilityTracker.markers(for: file) { unlink(marker.path) }  // usually absent: no error built
        }
        // Health data: 0600 from here on (work/, then done/ or error/), whatever the producer's umask.
        for (_, target) in moved { Self.restrictMode(target) }
        return moved.map(\.1)
    }

    /// Moves files (from the inbox or a claim directory) to error/, each with its reason file
    /// (0600). The reason is written (and synced) first: when it cannot be (a full disk), the
    /// file stays where it is, so every file in error/ has its reason. The error folder is
    /// synced at the end, so a refusal is not undone by a power cut.
    public func refuse(_ files: [URL], reason: RefusalReason, at date: Date = Date()) throws(InboxError) {
        if let failure = DurableFiles.createDirectory(error) {
            throw .folderUnusable(path: error.path, reason: failure, cause: FileSystemCause.probe(folder: error.path), key: "[folders] error")
        }
        // Every reason first, then the moves: a pair is refused whole or stays whole where it is.
        var moves: [(file: URL, target: URL, report: URL)] = []
        // lstat, not fileExists (which follows links): a link, even dangling, is moved itself.
        for file in files where IntakeFile.entryKind(file) != nil {  // one taken meanwhile is skipped
            var name = file.lastPathComponent
            if IntakeFile.entryKind(error.appendingPathComponent(name)) != nil
                || IntakeFile.entryKind(error.appendingPathComponent(RefusalReason.reportFileName(for: name))) != nil {
                // Keep earlier refusals: a producer often resends the same name.
                name = "\(Self.claimID())-\(name)"
            }
            let report = error.appendingPathComponent(RefusalReason.reportFileName(for: name))
            if let failure = DurableFiles.publishNew(Data(reason.report(for: file.lastPathComponent, at: date, language: language).utf8), to: report.path) {
                for written in moves { unlink(written.report.path) }
                throw .reasonUnwritable(file: file.lastPathComponent, path: report.path, reason: failure,
                                        cause: FileSystemCause.probe(folder: error.path))
            }
            moves.append((file, error.appendingPathComponent(name), report))
        }
        for (file, target, report) in moves {
            if rename(file.path, target.path) != 0 {
                let code = errno
                unlink(report.path)
                if code == ENOENT { continue }
                throw .moveFailed(from: file.path, to: target.path, reason: String(cString: strerror(code)),
                                  cause: code == EXDEV ? nil : FileSystemCause(errno: code))
            }
            Self.restrictMode(target)
            stability.forget(file)
            incompleteSince[file.path] = nil
            // A marker left behind would sit in the inbox forever (and mark the next file of that name ready).
            if file.deletingLastPathComponent().standardizedFileURL.path == inbox.standardizedFileURL.path {
                for marker in StabilityTracker.markers(for: file) { try? FileManager.default.removeItem(at: marker) }
            }
        }
        if let failure = DurableFiles.syncDirectory(error.path) {
            throw .folderUnusable(path: error.path, reason: failure, cause: FileSystemCause.probe(folder: error.path), key: "[folders] error")
        }
        // A claim directory emptied by the refusal goes away.
        let parent = files.first?.deletingLastPathComponent()
        // Compare paths: a directory URL may or may not end with a slash, and URL equality sees that.
        if let parent, parent.deletingLastPathComponent().standardizedFileURL.path == work.standardizedFileURL.path,
           (try? FileManager.default.contentsOfDirectory(atPath: parent.path))?.isEmpty == true {
            try? FileManager.default.removeItem(at: parent)
        }
    }

    /// Writes the reason file of an input accepted in part (it went to done/, its accepted parts
    /// are sent): `error/NAME.error.txt`, where refusals are looked for, saying what goes and
    /// what is refused. Synced like a refusal's.
    public func notePartialRefusal(_ fileName: String, accepted: [Destination], reason: RefusalReason,
                                   at date: Date = Date()) throws(InboxError) {
        if let failure = DurableFiles.createDirectory(error) {
            throw .folderUnusable(path: error.path, reason: failure, cause: FileSystemCause.probe(folder: error.path), key: "[folders] error")
        }
        var name = RefusalReason.reportFileName(for: fileName)
        if IntakeFile.entryKind(error.appendingPathComponent(name)) != nil { name = "\(Self.claimID())-\(name)" }
        let report = error.appendingPathComponent(name)
        let text = reason.partialReport(for: fileName, accepted: accepted, at: date, language: language)
        if let failure = DurableFiles.publishNew(Data(text.utf8), to: report.path) {
            throw .reasonUnwritable(file: fileName, path: report.path, reason: failure, cause: FileSystemCause.probe(folder: error.path))
        }
        if let failure = DurableFiles.syncDirectory(error.path) {
            throw .folderUnusable(path: error.path, reason: failure, cause: FileSystemCause.probe(folder: error.path), key: "[folders] error")
        }
    }

    /// Makes a regular file 0600 (a link is left as is: its mode means nothing and chmod would
    /// reach its target). Opened with O_NOFOLLOW so a link swapped in is never followed. A file
    /// owned by another user (the producer's) cannot be re-moded: the 0700 folders still protect it.
    public static func restrictMode(_ url: URL) {
        let fd = open(url.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o7777 != 0o600 else { return }
        _ = fchmod(fd, 0o600)
    }

    /// Sortable and unique: time then random.
    private static func claimID() -> String {
        let ms = UInt64(Date().timeIntervalSince1970 * 1000)
        let digits = String(ms)  // zero-padded to 13 (sorts by time), without String(format:)
        return String(repeating: "0", count: max(0, 13 - digits.count)) + digits + "-" + UUID.random().uuidString.prefix(8).lowercased()
    }
}

/// Watches the inbox: inotify (Linux) wakes a scan as soon as a file is closed or moved in,
/// and a periodic rescan catches what inotify cannot see (network file systems, overflow,
/// files waiting for their quiet period).
public struct InboxWatcher: Sendable {
    public let scanner: InboxScanner
    /// Seconds between rescans when nothing wakes the watcher.
    public var rescanInterval: TimeInterval

    public init(scanner: InboxScanner, rescanInterval: TimeInterval = 1) {
        self.scanner = scanner
        self.rescanInterval = rescanInterval
    }

    /// Claimed files, until the consuming task is cancelled. Folder errors end the stream with the error.
    public func claims() -> AsyncThrowingStream<ClaimedFile, any Error> {
        let scanner = self.scanner
        let interval = rescanInterval
        return AsyncThrowingStream { continuation in
            let wakeups = InotifyWakeups(path: scanner.inbox.path)
            let task = Task {
                defer { wakeups?.close() }
                do {
                    while !Task.isCancelled {
                        try await scanner.scan(now: ProcessInfo.processInfo.systemUptime) { continuation.yield($0) }
                        if let wakeups { await wakeups.wait(timeout: interval) }
                        else { try? await Task.sleep(nanoseconds: UInt64(interval * 1e9)) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// Wake-ups from inotify on one directory, read through a dispatch source (no blocked threads).
final class InotifyWakeups: @unchecked Sendable {
    private let fd: Int32
    private let source: DispatchSourceRead
    private let lock = NSLock()
    private var pending = false
    private var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
    private var nextID: UInt64 = 0

    init?(path: String) {
        #if os(Linux)
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB)
        guard inotify_add_watch(fd, path, mask) >= 0 else { Glibc.close(fd); return nil }
        self.fd = fd
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: DispatchQueue(label: "passerelle.inbox.inotify"))
        source.setEventHandler { [unowned self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while read(self.fd, &buffer, buffer.count) > 0 {}  // drain: any event means "rescan"
            self.signal()
        }
        source.setCancelHandler { Glibc.close(fd) }
        source.resume()
        #else
        return nil
        #endif
    }

    private func signal() {
        lock.lock()
        if let w = waiter { waiter = nil; lock.unlock(); w.continuation.resume(); return }
        pending = true
        lock.unlock()
    }

    /// Returns at the next inotify event or after `timeout` seconds, whichever comes first.
    func wait(timeout: TimeInterval) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            lock.lock()
            if pending { pending = false; lock.unlock(); c.resume(); return }
            nextID += 1
            let id = nextID
            waiter = (id, c)
            lock.unlock()
            // The timeout resumes only its own wait: a wake-up may already have resumed it.
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [self] in
                lock.lock()
                if let w = waiter, w.id == id { waiter = nil; lock.unlock(); w.continuation.resume() } else { lock.unlock() }
            }
        }
    }

    /// Stops watching (the descriptor is closed by the source's cancel handler).
    func close() { source.cancel() }
}
