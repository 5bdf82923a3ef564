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
        #expect(IntakeFile.classify(link) == .ignored(link, .symbolicLink))
        #expect(IntakeFile.classify(dir.appendingPathComponent("gone.hl7")) == .ignored(dir.appendingPathComponent("gone.hl7"), .missing))
    }

    @Test func refusalReports() {
        let reason = RefusalReason.invalidSidecar(.invalid([MetadataProblem("patient.ins.value", "wrong key")]))
        let report = reason.report(for: "cr1.pdf", at: Date(timeIntervalSince1970: 0))
        #expect(report.hasPrefix("Passerelle refused cr1.pdf on 19"))
        #expect(report.contains("patient.ins.value: wrong key"))
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
}
