import Foundation
@testable import PasserelleCore
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `DurableFiles.writeNew`: the `O_DIRECT` path writes exactly the bytes given (the padding to
/// the block size removed), mode 0600, and falls back to the page cache where the file system
/// refuses it.
@Suite struct DurableFilesTests {
    static func bytes(_ count: Int, seed: UInt8) -> Data { Data((0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) ^ seed }) }

    /// The file system type as coreutils names it (statfs is not exported to Swift's Glibc).
    static func isTmpfs(_ path: String) -> Bool {
        (try? ProcessRunner.run("/usr/bin/stat", ["-f", "-c", "%T", path]))?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "tmpfs"
    }

    @Test(arguments: [DurableFiles.directMinimum, DurableFiles.directMinimum + 1, 300_001, 1 << 20, (2 << 20) + 5])
    func directWriteKeepsExactlyTheBytes(size: Int) throws {
        let dir = try TestPaths.temporaryDirectory("durable")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Three parts with unaligned boundaries (a record header, a body, a trailer).
        let parts = [Self.bytes(1_000, seed: 1), Self.bytes(size - 1_007, seed: 2), Self.bytes(7, seed: 3)]
        let path = dir.appendingPathComponent("blob").path
        let result = DurableFiles.writeNewDirect(parts: parts, to: path, mode: 0o600)
        if Self.isTmpfs(dir.path) {
            #expect(result == .notPossible, "tmpfs has no O_DIRECT")
            #expect(!FileManager.default.fileExists(atPath: path), "nothing left behind for the buffered write")
            return
        }
        #expect(result == .done(failure: nil))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == parts.reduce(Data(), +))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect((attributes[.size] as? Int) == size)
        // A second write of another size reuses a kept buffer: no stale bytes of the first leak in.
        let smaller = [Self.bytes(DurableFiles.directMinimum + 3, seed: 9)]
        let second = dir.appendingPathComponent("second").path
        #expect(DurableFiles.writeNew(parts: smaller, to: second, direct: true) == nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: second)) == smaller[0])
    }

    @Test func smallFilesAndTmpfsGoThroughThePageCache() throws {
        let dir = try TestPaths.temporaryDirectory("durable")
        defer { try? FileManager.default.removeItem(at: dir) }
        let small = dir.appendingPathComponent("small").path
        #expect(DurableFiles.writeNewDirect(parts: [Data("record".utf8)], to: small, mode: 0o600) == .notPossible)
        #expect(DurableFiles.writeNew(parts: [Data("record".utf8)], to: small, direct: true) == nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: small)) == Data("record".utf8))
        // /dev/shm is tmpfs on Linux: O_DIRECT is refused there and the write still succeeds.
        let shm = "/dev/shm/passerelle-durable-\(getpid())"
        guard Self.isTmpfs("/dev/shm") else { return }
        defer { unlink(shm) }
        let big = Self.bytes(300_000, seed: 5)
        #expect(DurableFiles.writeNew(parts: [big], to: shm, direct: true) == nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: shm)) == big)
        // An existing name is refused, as the buffered create does (O_EXCL).
        #expect(DurableFiles.writeNew(parts: [big], to: shm, direct: true) != nil)
    }

    @Test func anExistingNameIsRefusedByTheDirectWrite() throws {
        let dir = try TestPaths.temporaryDirectory("durable")
        defer { try? FileManager.default.removeItem(at: dir) }
        guard !Self.isTmpfs(dir.path) else { return }
        let path = dir.appendingPathComponent("blob").path
        let data = Self.bytes(200_000, seed: 7)
        #expect(DurableFiles.writeNew(parts: [data], to: path, direct: true) == nil)
        #expect(DurableFiles.writeNew(parts: [Self.bytes(100_000, seed: 8)], to: path, direct: true) != nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == data, "the first file is untouched")
    }

    @Test("a published file appears whole, 0600, never over an existing one, and leaves no hidden copy")
    func publishedWhole() throws {
        let dir = try TestPaths.temporaryDirectory("durable")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("NAME.pdf.error.txt").path
        #expect(DurableFiles.publishNew(Data("motif\n".utf8), to: path) == nil)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "motif\n")
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600 && info.st_nlink == 1)
        #expect(DurableFiles.publishNew(Data("autre".utf8), to: path) != nil, "an existing reason is never replaced")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "motif\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["NAME.pdf.error.txt"])
    }

    @Test("a hidden publishing name leads back to the name it publishes; no other name does")
    func hiddenNames() {
        #expect(DurableFiles.publishedPath(ofHidden: "/j/.journal.patient-key.2905117836.tmp") == "/j/journal.patient-key")
        #expect(DurableFiles.publishedPath(ofHidden: "/e/.NAME.pdf.error.txt.7.tmp") == "/e/NAME.pdf.error.txt")
        for other in ["/j/journal.patient-key", "/j/.journal.tmp", "/j/.journal.x.tmp", "/j/..1.tmp", "/j/.a.1.tmpx", "/j/a.1.tmp"] {
            #expect(DurableFiles.publishedPath(ofHidden: other) == nil, "\(other)")
        }
    }
}
