import CDA
import Foundation
import IHE
@testable import MSSante
import PasserelleCore
import TestSupport
import Testing

/// Large documents over MSSanté: attachments and XDM entries read from files while the mail
/// is produced give the same bytes as the in-memory path.
@Suite struct StreamingMailTests {
    /// Boundaries are random per rendering: compare with them blanked.
    static func normalised(_ data: Data) -> String {
        String(decoding: data, as: UTF8.self).replacingOccurrences(of: #"=_passerelle_[0-9A-F]{32}"#, with: "=_B", options: .regularExpression)
    }

    /// Around the 57-byte line and the 57 × 2048-byte encoding block.
    @Test(arguments: [0, 1, 2, 56, 57, 58, 57 * 2048 - 1, 57 * 2048, 57 * 2048 + 1, 300_001])
    func streamedAttachmentRendersTheSameBytes(_ size: Int) throws {
        let dir = try TestPaths.temporaryDirectory("mail-stream")
        defer { try? FileManager.default.removeItem(at: dir) }
        let content = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) })
        // The attachment is a slice in the middle of a file (as the PDF inside a journaled record).
        let file = dir.appendingPathComponent("record")
        try (Data("header\n".utf8) + content + Data("trailer".utf8)).write(to: file)
        let date = Date(timeIntervalSince1970: 1_790_000_000)
        func message(_ attachment: MailAttachment) -> MailMessage {
            MailMessage(from: "a@b.fr", to: ["c@d.fr"], subject: "s", body: "corps\n",
                        attachments: [attachment, MailAttachment(fileName: "x.txt", contentType: "text/plain", data: Data("x".utf8))],
                        messageID: "<id@b.fr>", date: date)
        }
        let inMemory = try message(MailAttachment(fileName: "d.pdf", contentType: "application/pdf", data: content)).rendered()
        let streamed = message(MailAttachment(fileName: "d.pdf", contentType: "application/pdf",
                                              file: FileSlice(url: file, offset: 7, length: size)))
        let body = try streamed.renderedBody()
        let joined = try body.joined()
        #expect(Self.normalised(joined) == Self.normalised(inMemory))
        #expect(body.count == joined.count)
        #expect(Self.normalised(try streamed.rendered()) == Self.normalised(inMemory))
    }

    @Test func streamedAttachmentOfAFileThatShrankFails() throws {
        let dir = try TestPaths.temporaryDirectory("mail-stream")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("short")
        try Data(count: 10).write(to: file)
        let message = MailMessage(from: "a@b.fr", to: ["c@d.fr"], subject: "s", body: "b",
                                  attachments: [MailAttachment(fileName: "d.pdf", contentType: "application/pdf",
                                                               file: FileSlice(url: file, length: 100))])
        #expect(throws: (any Error).self) { try message.renderedBody().joined() }
    }

    /// A file-backed CDA in the XDM archive: the entry is read from its file, the CRC computed
    /// by streaming, and Python's zipfile finds the same document (CRC checked).
    @Test func fileBackedDocumentInTheXDMArchive() throws {
        let dir = try TestPaths.temporaryDirectory("xdm-stream")
        defer { try? FileManager.default.removeItem(at: dir) }
        var metadata = Fixtures.metadata()
        metadata.setID = metadata.id  // fixed: both builds must give the same document
        let pdf = TestPDF.make(text: "Lettre", minimumBytes: 2 << 20)
        let url = dir.appendingPathComponent("cda.xml")
        let document = try XDMTests.cdaBuilder.build(metadata: metadata, pdf: pdf, to: url)
        let package = try XDMTests.builder.build(document: document, metadata: metadata)
        #expect(package.isFileBacked)
        let inMemory = try XDMTests.builder.build(document: try XDMTests.cdaBuilder.build(metadata: metadata, pdf: pdf), metadata: metadata)
        #expect(!inMemory.isFileBacked)
        #expect(package.documentSHA1 == inMemory.documentSHA1 && package.documentSize == inMemory.documentSize)
        let zip = package.zip
        #expect(zip.count == package.zipSize)
        let seen = try XDMTests.unpack(zip, into: dir)
        #expect(seen.badCRC == nil)
        #expect(seen.documentSHA1 == package.documentSHA1 && seen.documentSize == document.size)
        #expect(seen.slots["hash"] == [package.documentSHA1])
    }
}
