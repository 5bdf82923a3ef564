import Foundation
import Intake
import Journal
import Logging
import OpenSSLKit
import PasserelleCore
import TestHooks
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The watched folder side of the service: each claimed file (already moved into
/// `work/<claim id>/`) is loaded and ingested; once the journal holds it, the claim folder moves
/// to `done/`; a refused one goes to `error/` with its reason; when the journal is unavailable
/// it stays in `work/` and is taken again by ``recoverWorkFolder()``.
public struct FolderIntake: Sendable {
    public let scanner: InboxScanner
    public let loader: IntakeLoader
    public let pipeline: Pipeline
    public let done: URL
    /// A claim that was being processed when the process died this many times goes to error/
    /// (`[folders] max_processing_attempts`): one poison file can never stop the intake.
    public let maxProcessingAttempts: Int
    let logger: Logger
    /// Claim folders this process left in work/ (journal unavailable, unreadable file): the
    /// ones a periodic recovery may take again. The others in work/ may still wait in the
    /// watcher's queue — taking them too would handle them twice.
    let leftBehind = LeftBehind()

    public init(scanner: InboxScanner, pipeline: Pipeline, done: URL, loader: IntakeLoader = IntakeLoader(),
                maxProcessingAttempts: Int = 3, logger: Logger = Logger(label: "passerelle.inbox")) {
        self.maxProcessingAttempts = maxProcessingAttempts
        self.scanner = scanner
        self.pipeline = pipeline
        self.done = done
        self.loader = loader
        self.logger = logger
    }

    /// Processes one claim. Returns the outcome, or nil when the file was refused or must wait.
    ///
    /// Each claim counts the starts that did not finish (``AttemptCounter``, in
    /// `work/.claims-in-flight/<claim id>`): raised here, put back when the claim stays in work/
    /// (journal outage), dropped when it left work/; a count left by a dead process is what
    /// ``recoverWorkFolder(leftBehindOnly:)`` checks.
    @discardableResult
    public func handle(_ claim: ClaimedFile) async -> IngestOutcome? {
        guard let dir = claim.files.first?.deletingLastPathComponent() else { return nil }
        let counter = AttemptCounter.forClaim(dir)
        let earlier = counter.read()
        counter.write(earlier + 1)
        CrashPoint.reached(.claimed)
        let outcome = await process(claim)
        if ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).isEmpty {
            counter.remove()  // done/ or error/
        } else {
            counter.write(earlier)  // still in work/, finished without dying: this pass does not count
        }
        return outcome
    }

    private func process(_ claim: ClaimedFile) async -> IngestOutcome? {
        let names = claim.files.map(\.lastPathComponent).joined(separator: " + ")
        let item: IntakeItem
        do { item = try StageClock.measure(.parse, pipeline.events) { () throws(RefusalReason) in try loader.load(claim) } } catch {
            await refuse(claim, error, names: names)
            return nil
        }
        let input: InputFile
        do { input = try StageClock.measure(.parse, pipeline.events) { try Self.inputFile(claim) } } catch {
            logger.error("cannot read a claimed file; left in work/", metadata: ["file": "\(names)", "error": "\(error)"])
            leftBehind.insert(claim)
            return nil
        }
        do {
            let outcome = try await pipeline.ingest(item, input: input)
            if case .accepted = outcome, case .document(let d) = item { pipeline.events.documentReceived(kind: d.metadata.kind, source: .inbox) }
            moveToDone(claim, names: names)
            return outcome
        } catch {
            switch error {
            case .refused(let reason): await refuse(claim, reason, names: names)
            case .unavailable(let failure):
                logger.error("journal unavailable; the file stays in work/ and is taken again later",
                             metadata: ["file": "\(names)", "error": "\(failure)"])
                leftBehind.insert(claim)
            }
            return nil
        }
    }

    /// Takes again the claims a crash or a journal failure left in `work/`; with
    /// `leftBehindOnly`, only those this process left there (the others may be queued).
    @discardableResult
    public func recoverWorkFolder(leftBehindOnly: Bool = false) async -> Int {
        let work = await scanner.work
        let fm = FileManager.default
        // Hidden entries (the in-flight counters) are not claims.
        guard var dirs = (try? fm.contentsOfDirectory(atPath: work.path))?.filter({ !$0.hasPrefix(".") }) else { return 0 }
        if !leftBehindOnly {
            // Counters of claims gone meanwhile (a crash between a claim's move and its counter's removal).
            let counters = work.appendingPathComponent(AttemptCounter.claimsFolderName)
            for name in (try? fm.contentsOfDirectory(atPath: counters.path)) ?? [] where !dirs.contains(name) {
                unlink(counters.appendingPathComponent(name).path)
            }
        }
        if leftBehindOnly { dirs = dirs.filter(leftBehind.take) }
        var count = 0
        for name in dirs.sorted() {
            let dir = work.appendingPathComponent(name)
            guard let files = try? fm.contentsOfDirectory(atPath: dir.path) else { continue }
            if files.isEmpty { try? fm.removeItem(at: dir); continue }
            let urls = files.sorted().map { dir.appendingPathComponent($0) }
            let counter = AttemptCounter.forClaim(dir)
            guard let claim = Self.claim(of: urls) else {
                counter.remove()
                await putBackOrRefuse(urls, dir: dir)
                continue
            }
            let interrupted = counter.read()
            if interrupted >= maxProcessingAttempts {
                // The process died that many times while handling this claim: taking it again would loop.
                logger.error("a file stopped the gateway repeatedly while being processed; moved to error/",
                             metadata: ["claim": "\(name)", "attempts": "\(interrupted)"])
                counter.remove()
                await refuse(claim, .interruptedTooOften(attempts: interrupted, key: "[folders] max_processing_attempts"),
                             names: claim.files.map(\.lastPathComponent).joined(separator: " + "))
                count += 1
                continue
            }
            logger.notice("taking again a file left in work/", metadata: ["claim": "\(name)"])
            await handle(claim)
            count += 1
        }
        return count
    }

    /// A claim interrupted half-way (one file of a pair moved, the process killed): the moved
    /// file goes back next to its other half in the inbox, to be claimed again as a pair.
    func putBackOrRefuse(_ urls: [URL], dir: URL) async {
        let inbox = await scanner.inbox
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

    /// The input's identity: SHA-256 of its bytes (of both files for a pair), so the same drop
    /// is recognised.
    static func inputFile(_ claim: ClaimedFile) throws -> InputFile {
        var combined = Data()
        // Streamed: a large PDF is not read into memory a second time for its digest.
        for file in claim.files { combined.append(Data(try Digest.hash(fileAt: file).hexString.utf8)) }
        let sha = claim.files.count == 1 ? String(decoding: combined, as: UTF8.self) : BlobStore.sha256Hex(combined)
        return InputFile(sha256: sha, fileName: claim.files[0].lastPathComponent)
    }

    func refuse(_ claim: ClaimedFile, _ reason: RefusalReason, names: String) async {
        pipeline.events.documentRefused(reason: reason.code, source: .inbox)
        logger.warning("file refused, moved to error/", metadata: ["file": "\(names)", "reason": "\(reason.description.prefix(300))"])
        do { try await scanner.refuse(claim.files, reason: reason) } catch {
            logger.error("cannot move a refused file to error/", metadata: ["file": "\(names)", "error": "\(error)"])
            leftBehind.insert(claim)
        }
    }

    /// The journal holds the document: the claim folder leaves work/ for done/ (one rename).
    func moveToDone(_ claim: ClaimedFile, names: String) {
        guard let dir = claim.files.first?.deletingLastPathComponent() else { return }
        let target = done.appendingPathComponent(dir.lastPathComponent)
        // Claimed files are made 0600 when claimed; one claimed by an older version may not be.
        // By path (lstat, chmod) rather than opened: work/ is private (0700), and opening the file
        // again would read as a use after the journal commit.
        for file in claim.files {
            var info = stat()
            if lstat(file.path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o777 != 0o600 { chmod(file.path, 0o600) }
        }
        do {
            try FileManager.default.createDirectory(at: done, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if rename(dir.path, target.path) != 0 {
                throw GatewayError.file(path: target.path, reason: String(cString: strerror(errno)))
            }
        } catch {
            // The journal already has it: a leftover in work/ is recognised as a duplicate later.
            logger.error("cannot move a journaled file to done/", metadata: ["file": "\(names)", "error": "\(error)"])
            leftBehind.insert(claim)
        }
    }
}

/// How many times an input was started without finishing: a small file holding a decimal
/// count, written before the input is processed. Not synced: a process crash keeps the page
/// cache, and a power cut is not a poison loop.
struct AttemptCounter: Sendable {
    /// The folder of the claims' counters in work/ (hidden: not a claim), one file per claim
    /// folder name; kept out of the claim folders, which hold the claimed files only.
    static let claimsFolderName = ".claims-in-flight"
    let file: URL

    static func forClaim(_ dir: URL) -> AttemptCounter {
        AttemptCounter(file: dir.deletingLastPathComponent().appendingPathComponent(claimsFolderName).appendingPathComponent(dir.lastPathComponent))
    }

    func read() -> Int {
        let fd = open(file.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = Glibc.read(fd, &buffer, buffer.count)
        guard n > 0 else { return 0 }
        return Int(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    func write(_ count: Int) {
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
    func remove() {
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
