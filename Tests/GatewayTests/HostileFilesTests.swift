import IHE
import DMP
import Foundation
import Intake
import Journal
import OpenSSLKit
import PasserelleCore
import Testing
import TestSupport

/// Hostile inbox files against the real `passerelle run` (a child process, as in CrashTests):
/// symbolic links, sizes far over the caps, overlong fields, file modes under umask 022, and an
/// input that kills the process each time it is taken.
@Suite(.serialized) struct HostileFilesTests {
    /// `passerelle run` on `h`, its output in `passerelle.log`.
    final class Run {
        let h: Harness
        let log: FileHandle
        var process: Process

        init(_ h: Harness, environment: [String: String] = [:]) throws {
            self.h = h
            let url = h.root.appendingPathComponent("passerelle.log")
            if !FileManager.default.fileExists(atPath: url.path) { FileManager.default.createFile(atPath: url.path, contents: nil) }
            log = try FileHandle(forWritingTo: url)
            log.seekToEndOfFile()
            process = try CrashTests.start(h, log: log, environment: environment)
        }

        /// Peak and current resident size of the child (kB), from /proc.
        func memory() -> (hwm: Int, rss: Int) {
            let text = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
            func value(_ key: String) -> Int {
                text.split(separator: "\n").first { $0.hasPrefix(key + ":") }
                    .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? 0
            }
            return (value("VmHWM"), value("VmRSS"))
        }

        var logText: String { (try? String(contentsOf: h.root.appendingPathComponent("passerelle.log"), encoding: .utf8)) ?? "" }

        func stop() {
            if process.isRunning {
                kill(process.processIdentifier, SIGTERM)
                process.waitUntilExit()
            }
            try? log.close()
        }
    }

    /// Drops a legitimate pair and returns its DMP uniqueId.
    static func dropLegitimate(_ h: Harness, _ name: String) throws -> String {
        let m = Documents.metadata()
        try h.drop("\(name).json", sidecar: m)
        try h.drop("\(name).pdf", Documents.pdf("Compte rendu \(name)"))
        return DocumentEntryMapper.uniqueId(m.id!)
    }

    static func reason(_ h: Harness, _ name: String) -> String {
        (try? String(contentsOf: h.error.appendingPathComponent(RefusalReason.reportFileName(for: name)), encoding: .utf8)) ?? ""
    }

    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o777
    }

    @Test(.timeLimit(.minutes(1)))
    func symbolicLinksAreRefusedWholeAndNeverFollowed() async throws {
        let h = try Harness(quiet: 1)
        defer { h.cleanUp() }
        // Outside the inbox: a valid sidecar with its own document id, and a PDF.
        let outside = h.root.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        let secret = Documents.metadata()
        let secretID = DocumentEntryMapper.uniqueId(secret.id!)
        try JSONEncoder().encode(secret).write(to: outside.appendingPathComponent("secret.json"))
        try Documents.pdf("outside").write(to: outside.appendingPathComponent("secret.pdf"))

        let run = try Run(h)
        defer { run.stop() }
        // A PDF whose sidecar links outside; a linked PDF with a regular sidecar; a link to /etc/passwd.
        try h.drop("a.pdf", Documents.pdf("a"))
        try FileManager.default.createSymbolicLink(at: h.inbox.appendingPathComponent("a.json"),
                                                   withDestinationURL: outside.appendingPathComponent("secret.json"))
        try FileManager.default.createSymbolicLink(at: h.inbox.appendingPathComponent("b.pdf"),
                                                   withDestinationURL: outside.appendingPathComponent("secret.pdf"))
        let linkedPDF = Documents.metadata()
        try h.drop("b.json", sidecar: linkedPDF)
        try FileManager.default.createSymbolicLink(atPath: h.inbox.appendingPathComponent("c.json").path, withDestinationPath: "/etc/passwd")
        try h.drop("c.pdf", Documents.pdf("c"))
        let legitimate = try Self.dropLegitimate(h, "ok")

        let settled = await Harness.waitUntil(timeout: 20) {
            h.endpoint.stored(legitimate) != nil && h.files(in: h.inbox).isEmpty && h.files(in: h.error).count == 12
        }
        #expect(settled, "inbox \(h.files(in: h.inbox)) error \(h.files(in: h.error)); log: \(run.logText.suffix(2000))")
        // Refused as pairs, with the link named; the links themselves moved, their targets untouched.
        #expect(Self.reason(h, "a.pdf").contains("a.json is a symbolic link: links are not followed; drop the file itself."))
        #expect(Self.reason(h, "a.json").contains("a.json is a symbolic link"))
        #expect(Self.reason(h, "b.pdf").contains("b.pdf is a symbolic link"))
        #expect(Self.reason(h, "b.json").contains("b.pdf is a symbolic link"))
        #expect(Self.reason(h, "c.pdf").contains("c.json is a symbolic link"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: h.error.appendingPathComponent("a.json").path)
                == outside.appendingPathComponent("secret.json").path)
        #expect(FileManager.default.fileExists(atPath: outside.appendingPathComponent("secret.json").path))
        #expect(FileManager.default.fileExists(atPath: "/etc/passwd"))
        // The outside sidecar's document never reached the DMP; only the legitimate one did.
        #expect(h.endpoint.stored(secretID) == nil)
        #expect(h.endpoint.stored(DocumentEntryMapper.uniqueId(linkedPDF.id!)) == nil)
        #expect(try await h.journal().transmissions(matching: TransmissionFilter()).count == 1, "only the legitimate document was journaled")
    }

    @Test(.timeLimit(.minutes(1)))
    func oversizedFilesAreRefusedFromTheirSizeWithoutBeingRead() async throws {
        let h = try Harness(quiet: 0)
        defer { h.cleanUp() }
        let run = try Run(h)
        defer { run.stop() }
        // Warm up: one legitimate document through the whole path, so the baseline includes it.
        let first = try Self.dropLegitimate(h, "warm")
        #expect(await Harness.waitUntil(timeout: 20) { h.endpoint.stored(first) != nil }, "log: \(run.logText.suffix(2000))")
        let before = run.memory()
        #expect(before.hwm > 0)

        // Sparse files: no disk or time cost, but 300 MB and 150 MB to whoever reads them.
        func sparse(_ name: String, _ size: UInt64, head: String) throws {
            let partial = h.inbox.appendingPathComponent(name + ".part")
            try Data(head.utf8).write(to: partial)
            let handle = try FileHandle(forWritingTo: partial)
            try handle.truncate(atOffset: size)
            try handle.close()
            try FileManager.default.moveItem(at: partial, to: h.inbox.appendingPathComponent(name))
        }
        try h.drop("big.json", sidecar: Documents.metadata())
        try sparse("big.pdf", 300 * 1024 * 1024, head: "%PDF-1.4\n")
        try sparse("big.hl7", 150 * 1024 * 1024, head: "MSH|^~\\&|")
        // An overlong sidecar: 2 MiB, over [folders] max_sidecar_bytes (1 MiB by default).
        try h.drop("fat.json", Data(repeating: 0x20, count: 2 * 1024 * 1024))
        try h.drop("fat.pdf", Documents.pdf("fat"))

        let refused = await Harness.waitUntil(timeout: 20) {
            ["big.pdf", "big.hl7", "fat.json"].allSatisfy { !Self.reason(h, $0).isEmpty }
        }
        #expect(refused, "error \(h.files(in: h.error)); log: \(run.logText.suffix(2000))")
        #expect(Self.reason(h, "big.pdf").contains("big.pdf is 314572800 bytes, more than the limit of 20971520 bytes ([cda] max_pdf_bytes)"))
        #expect(Self.reason(h, "big.hl7").contains("big.hl7 is 157286400 bytes, more than the limit of 33554432 bytes ([mllp] max_message_bytes)"))
        #expect(Self.reason(h, "fat.json").contains("fat.json is 2097152 bytes, more than the limit of 1048576 bytes ([folders] max_sidecar_bytes)"))
        // A legitimate document after them still flows.
        let after = try Self.dropLegitimate(h, "after")
        #expect(await Harness.waitUntil(timeout: 20) { h.endpoint.stored(after) != nil })
        let peak = run.memory()
        #expect(peak.hwm - before.hwm < 64 * 1024, "RSS peak grew by \(peak.hwm - before.hwm) kB")
    }

    @Test(.timeLimit(.minutes(1)))
    func overlongFieldIsRefusedAtIntakeWithItsLimit() async throws {
        let h = try Harness(quiet: 0)
        defer { h.cleanUp() }
        let run = try Run(h)
        defer { run.stop() }
        var m = Documents.metadata()
        m.patient.traits.birthName = String(repeating: "N", count: 1_000_000)
        try h.drop("long.json", sidecar: m)
        try h.drop("long.pdf", Documents.pdf("long"))
        // A producer CDA whose header (authoritative for the ids) carries an overlong id extension.
        let header = Documents.metadata(.biologyReport)
        let built = String(decoding: try Documents.builder.build(metadata: header, pdf: Documents.pdf("long id")).data, as: UTF8.self)
        let documentID = "<id root=\"\(header.id!.root)\""
        let range = try #require(built.range(of: documentID))
        let cda = built.replacingCharacters(in: range, with: documentID + " extension=\"" + String(repeating: "E", count: 300) + "\"")
        try h.drop("longid.json", sidecar: header)
        try h.drop("longid.xml", Data(cda.utf8))
        let legitimate = try Self.dropLegitimate(h, "z-ok")
        #expect(await Harness.waitUntil(timeout: 20) {
            h.endpoint.stored(legitimate) != nil && h.files(in: h.error).contains("long.pdf") && h.files(in: h.error).contains("longid.xml")
        },
                "log: \(run.logText.suffix(2000))")
        let reason = Self.reason(h, "long.pdf")
        #expect(reason.contains("patient.traits.birth_name: 1000000 characters, at most 256 (DMP XDS metadata: ebRIM LongName)"), "\(reason.prefix(600))")
        #expect(reason.count < 4000, "the value is not quoted back")
        #expect(h.endpoint.stored(DocumentEntryMapper.uniqueId(m.id!)) == nil, "nothing sent")
        #expect(Self.reason(h, "longid.xml").contains("the CDA header does not fit the DMP metadata: id.extension: 300 characters, at most 128"),
                "\(Self.reason(h, "longid.xml"))")
        #expect(h.endpoint.rejections.isEmpty, "the DMP never had to refuse it: \(h.endpoint.rejections.prefix(2))")
    }

    @Test(.timeLimit(.minutes(1)))
    func filesHoldingHealthDataAre0600AndFolders0700UnderUmask022() async throws {
        // The whole test (this producer and the child) under umask 022, as outside systemd.
        let previous = umask(0o022)
        defer { umask(previous) }
        let h = try Harness(quiet: 0)
        defer { h.cleanUp() }
        let run = try Run(h)
        defer { run.stop() }
        let legitimate = try Self.dropLegitimate(h, "ok")  // written 0644 by this (umask 022) producer
        try h.drop("bad.hl7", Data("not HL7".utf8))
        #expect(await Harness.waitUntil(timeout: 20) { h.endpoint.stored(legitimate) != nil && h.files(in: h.error).contains("bad.hl7") },
                "log: \(run.logText.suffix(2000))")
        #expect(Self.mode(h.inbox.path) == 0o755, "the producer side really runs under umask 022")
        for file in [h.journalPath, h.journalPath + "-wal", h.journalPath + "-shm"] {
            #expect(Self.mode(file) == 0o600, "\(file): \(String(Self.mode(file) ?? 0, radix: 8))")
        }
        for folder in [h.work, h.error, h.done, URL(fileURLWithPath: Journals.blobFolder(forDatabase: h.journalPath).path)] {
            #expect(Self.mode(folder.path) == 0o700, "\(folder.lastPathComponent): \(String(Self.mode(folder.path) ?? 0, radix: 8))")
        }
        for name in h.files(in: h.error) {
            #expect(Self.mode(h.error.appendingPathComponent(name).path) == 0o600, "error/\(name)")
        }
        let claims = h.files(in: h.done)
        #expect(!claims.isEmpty)
        for claim in claims {
            let dir = h.done.appendingPathComponent(claim)
            #expect(Self.mode(dir.path) == 0o700, "done/\(claim)")
            for name in h.files(in: dir) { #expect(Self.mode(dir.appendingPathComponent(name).path) == 0o600, "done/\(claim)/\(name)") }
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func aFileThatKillsTheProcessIsSetAsideAfterThreeAttempts() async throws {
        let h = try Harness(quiet: 0)
        defer { h.cleanUp() }
        let poison = Documents.metadata()
        try h.drop("poison.json", sidecar: poison)
        try h.drop("poison.pdf", Documents.pdf("poison"))
        // Three runs die while processing it: the first claims it, the next two take it again from work/.
        for attempt in 1...3 {
            let run = try Run(h, environment: ["PASSERELLE_CRASH_AT": "claimed"])
            let exited = await Harness.waitUntil(timeout: 20) { !run.process.isRunning }
            if !exited { kill(run.process.processIdentifier, SIGKILL) }
            run.process.waitUntilExit()
            run.stop()
            #expect(run.process.terminationStatus == 137, "attempt \(attempt): \(run.logText.suffix(1500))")
            #expect(h.files(in: h.work).filter { !$0.hasPrefix(".") }.count == 1, "attempt \(attempt): the claim stays in work/")
            // The first start writes no counter (the claim folder left in work/ is that start's
            // trace); the start-up pass counts it, so from the second start on the counter says N.
            let counters = h.work.appendingPathComponent(".claims-in-flight")
            let written = h.files(in: counters).map { (try? String(contentsOf: counters.appendingPathComponent($0), encoding: .utf8)) }
            #expect(written == (attempt == 1 ? [] : ["\(attempt)\n"]), "after start \(attempt) the claim's counter says \(written)")
        }
        #expect(h.files(in: h.inbox).isEmpty)
        // A fourth start, without the hook: the file is set aside, the intake goes on.
        let run = try Run(h)
        defer { run.stop() }
        // The reasons are written first, then the files moved: wait for both.
        #expect(await Harness.waitUntil(timeout: 20) { Set(h.files(in: h.error)).isSuperset(of: ["poison.json", "poison.pdf"])
            && h.files(in: h.work).filter { !$0.hasPrefix(".") }.isEmpty },
                "log: \(run.logText.suffix(2000))")
        #expect(Self.reason(h, "poison.pdf").contains("stopped (crash or kill) while processing this input 3 times"))
        #expect(Self.reason(h, "poison.pdf").contains("[folders] max_processing_attempts"))
        #expect(Set(h.files(in: h.error)).isSuperset(of: ["poison.json", "poison.pdf"]))
        let legitimate = try Self.dropLegitimate(h, "after")
        #expect(await Harness.waitUntil(timeout: 20) { h.endpoint.stored(legitimate) != nil }, "log: \(run.logText.suffix(2000))")
        #expect(h.endpoint.stored(DocumentEntryMapper.uniqueId(poison.id!)) == nil)
        #expect(h.files(in: h.work).filter { !$0.hasPrefix(".") }.isEmpty, "work/: \(h.files(in: h.work))")
        #expect(h.files(in: h.work.appendingPathComponent(".claims-in-flight")).isEmpty, "no counter left")
        #expect(run.process.isRunning)
    }

    /// A loopback TCP port free right now (the child binds it just after).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        return UInt16(bigEndian: address.sin_port)
    }

    /// Sends one MLLP frame; the ACK, or nil when the connection closed first (the process died).
    static func send(_ message: Data, port: UInt16) async throws -> String? {
        var connection: Socket?
        let deadline = Date().addingTimeInterval(15)
        while connection == nil && Date() < deadline {  // the child may still be starting
            connection = try? await Socket.connect(host: "127.0.0.1", port: port, timeout: 2)
            if connection == nil { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        let c = try #require(connection, "MLLP port \(port) never answered")
        defer { c.close() }
        try await c.write(MLLPFrame.wrap(message))
        return try? await MLLPServiceTests.readFrame(c)
    }

    @Test(.timeLimit(.minutes(2)))
    func anMLLPMessageThatKillsTheProcessIsAnsweredAEAfterThreeAttempts() async throws {
        let port = try Self.freePort()
        let h = try Harness(extra: "[mllp]\nenabled = true\nport = \(port)", quiet: 0)
        defer { h.cleanUp() }
        let example = try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex0-biology-new.hl7"))
        let (poison, poisonID) = try Documents.oru(example)
        for attempt in 1...3 {
            let run = try Run(h, environment: ["PASSERELLE_CRASH_AT": "mllp-received"])
            let ack = try await Self.send(poison, port: port)
            let exited = await Harness.waitUntil(timeout: 20) { !run.process.isRunning }
            if !exited { kill(run.process.processIdentifier, SIGKILL) }
            run.process.waitUntilExit()
            run.stop()
            #expect(ack == nil, "attempt \(attempt): no answer from a process that died")
            #expect(run.process.terminationStatus == 137, "attempt \(attempt): \(run.logText.suffix(1500))")
        }
        // A fourth start without the hook: the sender's resend is answered AE with the reason, kept in error/.
        let run = try Run(h)
        defer { run.stop() }
        let ack = try #require(try await Self.send(poison, port: port))
        #expect(MLLPServiceTests.fields(ack, "MSA")?[1] == "AE", "\(ack)")
        #expect(ack.contains("max_processing_attempts"), "\(ack)")
        let kept = h.files(in: h.error).filter { $0.hasPrefix("mllp-") && $0.hasSuffix(".hl7") }
        #expect(kept.count == 1, "error/: \(h.files(in: h.error))")
        if let name = kept.first {
            #expect(try Data(contentsOf: h.error.appendingPathComponent(name)) == poison)
            #expect(Self.reason(h, name).contains("while processing this input 3 times"))
        }
        #expect(h.endpoint.stored(DocumentEntryMapper.uniqueId(poisonID)) == nil)
        #expect(h.files(in: h.work.appendingPathComponent(".mllp-in-flight")).filter { !$0.hasPrefix("mllp-") }.isEmpty, "marker dropped")
        // Other messages still flow.
        let (other, otherID) = try Documents.oru(example)
        let accepted = try #require(try await Self.send(other, port: port))
        #expect(MLLPServiceTests.fields(accepted, "MSA")?[1] == "AA", "\(accepted)")
        #expect(await Harness.waitUntil(timeout: 20) { h.endpoint.stored(DocumentEntryMapper.uniqueId(otherID)) != nil })
    }
}
