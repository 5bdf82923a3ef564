import Foundation
import Testing
import PasserelleCore
import TestSupport
@testable import Intake

@Suite struct IntakeFileTests {
    func inbox() throws -> URL { try TestPaths.temporaryDirectory("intake-classify") }

    func write(_ dir: URL, _ name: String, _ text: String = "x") throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    @Test func pairsAndMessages() throws {
        let dir = try inbox()
        let pdf = try write(dir, "cr1.pdf"), json = try write(dir, "cr1.json")
        let xml = try write(dir, "cda2.XML"), json2 = try write(dir, "cda2.json")
        let hl7 = try write(dir, "m.hl7"), er7 = try write(dir, "n.ER7")
        #expect(IntakeFile.classify(pdf) == .pdf(document: pdf, sidecar: json))
        #expect(IntakeFile.classify(xml) == .cda(document: xml, sidecar: json2))
        #expect(IntakeFile.classify(json) == .ignored(json, .pairedSidecar))
        #expect(IntakeFile.classify(hl7) == .hl7(hl7))
        #expect(IntakeFile.classify(er7) == .hl7(er7))
    }

    @Test func incompleteAndRefused() throws {
        let dir = try inbox()
        let lone = try write(dir, "alone.pdf")
        let orphan = try write(dir, "orphan.json")
        let docx = try write(dir, "letter.docx")
        let empty = try write(dir, "empty.hl7", "")
        _ = try write(dir, "both.pdf"); _ = try write(dir, "both.xml")
        let both = try write(dir, "both.json")
        #expect(IntakeFile.classify(lone) == .incomplete(lone, refusal: .missingSidecar(document: "alone.pdf", expected: "alone.json")))
        #expect(IntakeFile.classify(orphan) == .incomplete(orphan, refusal: .orphanSidecar(sidecar: "orphan.json")))
        #expect(IntakeFile.classify(docx) == .refused(docx, .unsupportedFileType(name: "letter.docx")))
        #expect(IntakeFile.classify(empty) == .refused(empty, .emptyFile(name: "empty.hl7")))
        #expect(IntakeFile.classify(both) == .refused(both, .ambiguousSidecar(sidecar: "both.json")))
    }

    @Test func ignored() throws {
        let dir = try inbox()
        let hidden = try write(dir, ".cr.pdf")
        let part = try write(dir, "cr.pdf.part"), tmp = try write(dir, "cr.tmp"), tilde = try write(dir, "cr.hl7~")
        let winscp = try write(dir, "cr.hl7.filepart")
        #expect(IntakeFile.classify(winscp) == .ignored(winscp, .partial))
        let marker = try write(dir, "cr.pdf.done")
        let sub = dir.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: false)
        let target = try write(dir, "real.hl7")
        let link = dir.appendingPathComponent("link.hl7")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        #expect(IntakeFile.classify(hidden) == .ignored(hidden, .hidden))
        for p in [part, tmp, tilde] { #expect(IntakeFile.classify(p) == .ignored(p, .partial)) }
        #expect(IntakeFile.classify(marker) == .ignored(marker, .marker))
        #expect(IntakeFile.classify(sub) == .ignored(sub, .directory))
        // Links are never followed: the link itself is refused (moved to error/ with its reason).
        #expect(IntakeFile.classify(link) == .refused(link, .symbolicLink(name: "link.hl7")))
        #expect(IntakeFile.classify(dir.appendingPathComponent("gone.hl7")) == .ignored(dir.appendingPathComponent("gone.hl7"), .missing))
    }

    @Test func pairWithALinkOrASpecialFileIsRefusedWhole() throws {
        let dir = try inbox()
        let outside = try write(try inbox(), "secret.json", "{}")
        // A regular PDF whose sidecar is a link to a file outside the inbox.
        let pdf = try write(dir, "a.pdf")
        let sidecarLink = dir.appendingPathComponent("a.json")
        try FileManager.default.createSymbolicLink(at: sidecarLink, withDestinationURL: outside)
        #expect(IntakeFile.classify(pdf) == .refusedPair([pdf, sidecarLink], .symbolicLink(name: "a.json")))
        #expect(IntakeFile.classify(sidecarLink) == .ignored(sidecarLink, .pairedSidecar))  // refused with its document
        // A linked PDF with a regular sidecar: the pair goes, not only the link.
        let pdfLink = dir.appendingPathComponent("b.pdf")
        try FileManager.default.createSymbolicLink(at: pdfLink, withDestinationURL: outside)
        let json = try write(dir, "b.json")
        #expect(IntakeFile.classify(pdfLink) == .refusedPair([pdfLink, json], .symbolicLink(name: "b.pdf")))
        #expect(IntakeFile.classify(json) == .ignored(json, .pairedSidecar))
        // A dangling link without a pair is refused itself.
        let dangling = dir.appendingPathComponent("c.pdf")
        try FileManager.default.createSymbolicLink(atPath: dangling.path, withDestinationPath: "/nonexistent/x.pdf")
        #expect(IntakeFile.classify(dangling) == .refusedPair([dangling], .symbolicLink(name: "c.pdf")))
        // A FIFO as sidecar.
        let xml = try write(dir, "d.xml")
        let fifo = dir.appendingPathComponent("d.json")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        #expect(IntakeFile.classify(xml) == .refusedPair([xml, fifo], .notRegularFile(name: "d.json")))
        #expect(RefusalReason.symbolicLink(name: "a.json").description
                == "a.json is a symbolic link: links are not followed; drop the file itself.")
    }

    @Test func scannerMovesTheLinkNotItsTarget() async throws {
        let root = try inbox()
        let inboxDir = root.appendingPathComponent("inbox"), work = root.appendingPathComponent("work")
        let error = root.appendingPathComponent("error")
        try FileManager.default.createDirectory(at: inboxDir, withIntermediateDirectories: true)
        let outside = try write(root, "target.json", "{\"unique\": \"outside\"}")
        let pdf = try write(inboxDir, "r.pdf", "%PDF-1.4")
        try FileManager.default.createSymbolicLink(at: inboxDir.appendingPathComponent("r.json"), withDestinationURL: outside)
        let scanner = InboxScanner(inbox: inboxDir, work: work, error: error, quietPeriod: 0, language: .en)
        #expect(try await scanner.scan(now: 0).isEmpty)
        #expect(try await scanner.scan(now: 1).isEmpty)
        #expect(FileManager.default.fileExists(atPath: outside.path), "the target stays where it is")
        let refused = try FileManager.default.contentsOfDirectory(atPath: error.path).sorted()
        #expect(refused == ["r.json", "r.json.error.txt", "r.pdf", "r.pdf.error.txt"])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: error.appendingPathComponent("r.json").path) == outside.path)
        let reason = try String(contentsOf: error.appendingPathComponent("r.pdf.error.txt"), encoding: .utf8)
        #expect(reason.contains("r.json is a symbolic link: links are not followed; drop the file itself."))
        #expect(!FileManager.default.fileExists(atPath: pdf.path))
    }

    @Test func refusalReports() {
        let reason = RefusalReason.invalidSidecar(.invalid([MetadataProblem("patient.ins.value", "wrong key")]))
        let report = reason.report(for: "cr1.pdf", at: Date(timeIntervalSince1970: 0), language: .en)
        #expect(report.hasPrefix("Passerelle refused cr1.pdf on 19"))
        #expect(report.contains("patient.ins.value: wrong key"))
        let french = reason.report(for: "cr1.pdf", at: Date(timeIntervalSince1970: 0))
        #expect(french.hasPrefix("Passerelle a refusé cr1.pdf le 19"))
        #expect(french.contains("patient.ins.value : (en anglais) wrong key"))
        #expect(RefusalReason.reportFileName(for: "cr1.pdf") == "cr1.pdf.error.txt")
        #expect(RefusalReason.invalidMessage(.unknownDocumentKind("1-1")).description.contains("not supported"))
    }

    @Test func stabilityBySizeAndTime() throws {
        let dir = try inbox()
        let file = try write(dir, "grow.hl7", "MSH")
        var tracker = StabilityTracker(quietPeriod: 2)
        func stable(_ now: TimeInterval) -> Bool { tracker.isStable(file, now: now) }
        #expect(!stable(100))
        #expect(!stable(101))
        // Growing restarts the quiet period.
        let handle = try FileHandle(forWritingTo: file)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("|^~".utf8))
        try handle.close()
        #expect(!stable(102.5))
        #expect(!stable(104))
        #expect(stable(104.5))
        tracker.forget(file)
        #expect(!stable(105))
    }

    @Test func stabilityByMarker() throws {
        let dir = try inbox()
        let file = try write(dir, "cr.pdf", "%PDF-")
        var tracker = StabilityTracker(quietPeriod: 3600)
        func stable(_ now: TimeInterval) -> Bool { tracker.isStable(file, now: now) }
        #expect(!stable(0))
        _ = try write(dir, "cr.done", "")
        #expect(stable(0))
        #expect(StabilityTracker.markers(for: file).map(\.lastPathComponent) == ["cr.pdf.done", "cr.done"])
    }

    /// The scan splits names without URLs (see `IntakeFile.nameParts`): it must pair files exactly
    /// as Foundation's URL did before.
    @Test func namePartsAgreeWithFoundation() {
        var names = ["cr1.pdf", "cr1.json", "a.b.pdf", ".hidden", ".hidden.pdf", "name.", "a..", "..", "...", "..pdf",
                     "NAME.PDF", "x", "x.y.", "compte rendu.pdf", "fichier .pdf", "f.pdf ", "f. pdf", "é.json", "a.tar.gz",
                     "f.pdf.done", "CR.Json", "a .b", "a. ", ". ", "-.pdf", "a.é", "a.p df"]
        var generator = SeededRandom(seed: 17)
        let alphabet: [Character] = ["a", "B", ".", ".", " ", "-", "_", "é", "1", "~", "p", "d", "f"]
        for _ in 0..<20_000 {
            names.append(String((0..<Int.random(in: 1...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }))
        }
        for name in names {
            let url = URL(fileURLWithPath: "/inbox").appendingPathComponent(name, isDirectory: false)
            let parts = IntakeFile.nameParts(name)
            #expect(String(parts.stem) == url.deletingPathExtension().lastPathComponent, "\(name)")
            #expect(String(parts.ext) == url.pathExtension, "\(name)")
        }
    }
}
