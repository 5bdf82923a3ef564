import Foundation
import Testing
import PasserelleCore
import TestSupport
@testable import Intake

@Suite struct InboxWatcherTests {
    struct Folders {
        let root: URL
        var inbox: URL { root.appendingPathComponent("inbox") }
        var work: URL { root.appendingPathComponent("work") }
        var error: URL { root.appendingPathComponent("error") }
        init() throws {
            root = try TestPaths.temporaryDirectory("intake-watch")
            for d in [inbox, work, error] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        }
        @discardableResult func drop(_ name: String, _ text: String = "data") throws -> URL {
            let url = inbox.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            return url
        }
        func list(_ dir: URL) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() }
    }

    @Test func claimsStableFilesByRenameIntoWork() async throws {
        let f = try Folders()
        try f.drop("cr1.pdf", "%PDF-1.4"); try f.drop("cr1.json", "{}"); try f.drop("m.hl7", "MSH|^~\\&|")
        try f.drop("upload.pdf.part"); try f.drop(".hidden.hl7")
        let scanner = InboxScanner(inbox: f.inbox, work: f.work, error: f.error, quietPeriod: 2)
        #expect(try await scanner.scan(now: 0).isEmpty)  // quiet period starts
        #expect(try await scanner.scan(now: 1).isEmpty)
        let claims = try await scanner.scan(now: 2.5)
        #expect(claims.count == 2)
        #expect(f.list(f.inbox) == [".hidden.hl7", "upload.pdf.part"])
        let pdf = try #require(claims.first { if case .pdf = $0 { true } else { false } })
        guard case .pdf(let document, let sidecar) = pdf else { return }
        #expect(document.lastPathComponent == "cr1.pdf")
        #expect(sidecar.lastPathComponent == "cr1.json")
        #expect(document.deletingLastPathComponent() == sidecar.deletingLastPathComponent())
        #expect(document.deletingLastPathComponent().deletingLastPathComponent().standardizedFileURL == f.work.standardizedFileURL)
        #expect(try Data(contentsOf: document) == Data("%PDF-1.4".utf8))
        #expect(f.list(f.work).count == 2)  // one directory per claim
        #expect(try await scanner.scan(now: 10).isEmpty)  // nothing claimed twice
    }

    @Test func markerMakesAFileReadyAtOnce() async throws {
        let f = try Folders()
        try f.drop("m.hl7", "MSH|^~\\&|"); try f.drop("m.hl7.done", "")
        let scanner = InboxScanner(inbox: f.inbox, work: f.work, error: f.error, quietPeriod: 3600)
        let claims = try await scanner.scan(now: 0)
        #expect(claims.map { $0.files.map(\.lastPathComponent) } == [["m.hl7"]])
        #expect(f.list(f.inbox).isEmpty)  // the marker is consumed with its file
    }

    @Test func refusedFilesGoToErrorWithTheirReason() async throws {
        let f = try Folders()
        try f.drop("letter.docx")
        let scanner = InboxScanner(inbox: f.inbox, work: f.work, error: f.error, quietPeriod: 1)
        _ = try await scanner.scan(now: 0)
        #expect(f.list(f.error).isEmpty)  // not before it is stable
        _ = try await scanner.scan(now: 1.5)
        #expect(f.list(f.error) == ["letter.docx", "letter.docx.error.txt"])
        let reportURL = f.error.appendingPathComponent("letter.docx.error.txt")
        let report = try String(contentsOf: reportURL, encoding: .utf8)
        // French by default ([intake] language).
        #expect(report.contains("letter.docx : type de fichier non pris en charge."))
        let mode = try FileManager.default.attributesOfItem(atPath: reportURL.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // A refused file's marker goes too: left behind, it would mark the next file of that name ready.
        try f.drop("slides.pptx"); try f.drop("slides.pptx.done", "")
        _ = try await scanner.scan(now: 1.6)
        #expect(f.list(f.inbox).isEmpty, "\(f.list(f.inbox))")
        #expect(f.list(f.error).contains("slides.pptx.error.txt"))
        for name in ["slides.pptx", "slides.pptx.error.txt"] { try FileManager.default.removeItem(at: f.error.appendingPathComponent(name)) }
        // The same name refused again keeps the first one.
        try f.drop("letter.docx")
        _ = try await scanner.scan(now: 2); _ = try await scanner.scan(now: 4)
        #expect(f.list(f.error).count == 4)
    }

    @Test func halfPairWaitsThenIsRefused() async throws {
        let f = try Folders()
        try f.drop("late.pdf", "%PDF-"); try f.drop("alone.pdf", "%PDF-")
        let scanner = InboxScanner(inbox: f.inbox, work: f.work, error: f.error, quietPeriod: 1, incompleteGrace: 10, language: .en)
        _ = try await scanner.scan(now: 0)
        try f.drop("late.json", "{}")  // the sidecar arrives within the grace period
        _ = try await scanner.scan(now: 5)
        let claims = try await scanner.scan(now: 6.5)
        #expect(claims.map { $0.files.map(\.lastPathComponent) } == [["late.pdf", "late.json"]])
        #expect(f.list(f.inbox) == ["alone.pdf"])
        _ = try await scanner.scan(now: 11)
        #expect(f.list(f.inbox).isEmpty)
        let report = try String(contentsOf: f.error.appendingPathComponent("alone.pdf.error.txt"), encoding: .utf8)
        #expect(report.contains("drop alone.json"))
    }

    @Test func claimedFilesCanBeRefusedLater() async throws {
        let f = try Folders()
        try f.drop("bad.pdf", "%PDF-"); try f.drop("bad.json", "not json"); try f.drop("bad.done", "")
        let scanner = InboxScanner(inbox: f.inbox, work: f.work, error: f.error, quietPeriod: 3600)
        let claim = try #require(try await scanner.scan(now: 0).first)
        try await scanner.refuse(claim.files, reason: .invalidSidecar(.malformedJSON("unexpected character")))
        #expect(f.list(f.error) == ["bad.json", "bad.json.error.txt", "bad.pdf", "bad.pdf.error.txt"])
        #expect(f.list(f.work).isEmpty)  // the claim directory is removed
    }

    @Test func watcherWakesOnInotify() async throws {
        let f = try Folders()
        // A long rescan interval: only an inotify wake-up can claim the file quickly.
        let watcher = InboxWatcher(scanner: InboxScanner(inbox: f.inbox, work: f.work, error: f.error, quietPeriod: 3600),
                                   rescanInterval: 60)
        let first = Task { () -> ClaimedFile? in
            for try await claim in watcher.claims() { return claim }
            return nil
        }
        try await Task.sleep(nanoseconds: 300_000_000)
        let started = Date()
        // Written elsewhere then renamed in, as producers should.
        let tmp = f.root.appendingPathComponent("x.hl7")
        try Data("MSH|^~\\&|".utf8).write(to: tmp)
        try FileManager.default.moveItem(at: tmp, to: f.inbox.appendingPathComponent("x.hl7"))
        try Data().write(to: f.inbox.appendingPathComponent("x.hl7.done"))
        let timeout = Task { try await Task.sleep(nanoseconds: 10_000_000_000); first.cancel() }
        let claim = try await first.value
        timeout.cancel()
        #expect(claim?.files.map(\.lastPathComponent) == ["x.hl7"])
        #expect(Date().timeIntervalSince(started) < 5)
    }

    @Test func watcherRescansForTheQuietPeriod() async throws {
        let f = try Folders()
        let watcher = InboxWatcher(scanner: InboxScanner(inbox: f.inbox, work: f.work, error: f.error, quietPeriod: 0.3),
                                   rescanInterval: 0.1)
        try f.drop("y.hl7", "MSH|^~\\&|")
        let first = Task { () -> ClaimedFile? in
            for try await claim in watcher.claims() { return claim }
            return nil
        }
        let timeout = Task { try await Task.sleep(nanoseconds: 10_000_000_000); first.cancel() }
        let claim = try await first.value
        timeout.cancel()
        #expect(claim?.files.map(\.lastPathComponent) == ["y.hl7"])
    }
}

/// The start-up backlog: what waited in the inbox while the gateway was down is taken on the
/// first pass, without a quiet period; a file changed recently is still waited for.
@Suite struct StartupBacklogTests {
    static func age(_ url: URL, seconds: TimeInterval) throws {
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-seconds)], ofItemAtPath: url.path)
    }

    @Test func settledFilesAreClaimedOnTheFirstPassOnly() async throws {
        let f = try InboxWatcherTests.Folders()
        // A pair and a message left long ago; a pair whose PDF was written just now (maybe still growing).
        for url in [try f.drop("old.pdf", "%PDF-1.4"), try f.drop("old.json", "{}"), try f.drop("m.hl7", "MSH|^~\\&|"),
                    try f.drop("fresh.json", "{}")] {
            try Self.age(url, seconds: 120)
        }
        try f.drop("fresh.pdf", "%PDF-1.4")
        let scanner = InboxScanner(inbox: f.inbox, work: f.work, error: f.error, quietPeriod: 60)
        let first = try await scanner.scan(now: 0)
        #expect(Set(first.map { $0.files.map(\.lastPathComponent) }) == [["old.pdf", "old.json"], ["m.hl7"]])
        #expect(f.list(f.inbox) == ["fresh.json", "fresh.pdf"], "a half-settled pair waits for its quiet period")

        // After start-up, an old file dropped in (renamed from elsewhere) waits like any other.
        try Self.age(try f.drop("later.hl7", "MSH|^~\\&|"), seconds: 120)
        #expect(try await scanner.scan(now: 1).isEmpty)
        #expect(try await scanner.scan(now: 30).isEmpty)
        let settled = try await scanner.scan(now: 62)
        #expect(Set(settled.map { $0.files.map(\.lastPathComponent) }) == [["fresh.pdf", "fresh.json"], ["later.hl7"]])
    }

    /// Issue 21 item 5: through the folder source `passerelle run` uses, a backlog present at
    /// start-up is taken within 100 ms, however long the quiet period.
    @Test func aBacklogPresentAtStartUpIsTakenWithin100ms() async throws {
        let f = try InboxWatcherTests.Folders()
        let done = f.root.appendingPathComponent("done")
        for i in 0..<20 {
            for url in [try f.drop("cr\(i).pdf", "%PDF-1.4"), try f.drop("cr\(i).json", "{}"), try f.drop("adt\(i).hl7", "MSH|^~\\&|")] {
                try Self.age(url, seconds: 600)
            }
        }
        let source = FolderSource(scanner: InboxScanner(inbox: f.inbox, work: f.work, error: f.error, quietPeriod: 30), done: done)
        let start = ContinuousClock.now
        var claimed = 0
        var firstAfter: Duration?
        for await claim in source.claims() {
            if firstAfter == nil { firstAfter = ContinuousClock.now - start }
            claimed += claim.files.count
            if claimed == 60 { break }
        }
        let allAfter = ContinuousClock.now - start
        #expect(claimed == 60)
        #expect(try #require(firstAfter) < .milliseconds(100), "first claim \(firstAfter!) after the start (quiet period 30 s)")
        #expect(allAfter < .milliseconds(100), "the whole backlog (40 claims) \(allAfter) after the start")
        #expect(f.list(f.inbox).isEmpty)
    }

    @Test func aFileJustWrittenIsNotTakenOnFirstSightEvenWithoutQuietPeriod() async throws {
        let f = try InboxWatcherTests.Folders()
        try f.drop("m.hl7", "MSH|^~\\&|")
        let scanner = InboxScanner(inbox: f.inbox, work: f.work, error: f.error, quietPeriod: 0)
        #expect(try await scanner.scan(now: 0).isEmpty, "its size is checked twice first")
        #expect(try await scanner.scan(now: 0.5).count == 1)
    }
}

/// A failed move says what the folder's state is and what to do, not only the errno text;
/// across file systems (EXDEV) it keeps the "same file system" advice.
@Suite struct MoveFailureCauseTests {
    @Test func readOnlyAndPermissionNameTheirFix() {
        let readOnly = InboxError.moveFailed(from: "/srv/in/a.pdf", to: "/srv/work/x/a.pdf", reason: "Read-only file system", cause: .readOnly)
        #expect(readOnly.description.contains("read-only file system: the file system of /srv/work/x is mounted read-only"))
        #expect(readOnly.description.contains("remount it read-write"))
        let denied = InboxError.moveFailed(from: "/srv/in/a.pdf", to: "/srv/error/a.pdf", reason: "Permission denied", cause: .permissionDenied)
        #expect(denied.description.contains("give the passerelle user write access to /srv/error"))
        let acrossFileSystems = InboxError.moveFailed(from: "/srv/in/a.pdf", to: "/mnt/work/a.pdf", reason: "Invalid cross-device link")
        #expect(acrossFileSystems.description.contains("Keep [folders] inbox, work and error on the same file system"))
    }
}
