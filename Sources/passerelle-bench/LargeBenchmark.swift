import IHE
import ArgumentParser
import DMP
import Foundation
import Journal
import PasserelleCore
import SampleDocuments
import TestEndpoints
import BenchSupport
#if canImport(Glibc)
import Glibc
#endif

/// One large PDF the whole way, in a separate `passerelle run` process: inbox (PDF + sidecar)
/// → journal → CDA build → XSD → signatures → DMP (ITI-41 MTOM, to the DMP-style endpoint
/// hosted here) and MSSanté (XDM in a MIME mail, to the local aiosmtpd relay). The endpoints
/// live in this process, so the gateway's peak RSS (VmHWM, sampled) is its own.
///
/// `--max-rss-mb N` / `--max-growth-mb N` make the command fail (exit 1) above N MB (peak, or
/// peak minus the idle gateway's): the regression test runs it so.
struct LargeBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "large", abstract: "Peak RSS of `passerelle run` for one large PDF sent to the DMP and over MSSanté.")

    @Option(help: "PDF size in MB.")
    var mb = 50
    @Option(help: "The passerelle executable (default: next to this one).")
    var passerelle: String?
    @Option(help: "Give up after this many seconds.")
    var timeout = 600
    @Option(help: "Fail (exit 1) when the gateway's peak RSS exceeds this many MB.")
    var maxRssMb: Int?
    @Option(help: "Fail (exit 1) when the peak RSS exceeds the idle gateway's by more than this many MB.")
    var maxGrowthMb: Int?
    @Flag(help: "Send to the DMP only (no MSSanté relay).")
    var dmpOnly = false

    func run() throws {
        let binary = passerelle ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("passerelle").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw ValidationError("no passerelle executable at \(binary): swift build --product passerelle, or give --passerelle") }
        let root = try TestPaths.temporaryDirectory("passerelle-large")
        defer { try? FileManager.default.removeItem(at: root) }
        let endpoint = try BenchDMP.endpoint()
        defer { endpoint.stop() }
        let relay = dmpOnly ? nil : try LargeRun.startRelay(root: root)
        defer { relay?.stop() }
        try LargeRun.configuration(root: root, endpoint: endpoint.url, smtpPort: relay?.port).text.write(
            to: root.appendingPathComponent("passerelle.toml"), atomically: true, encoding: .utf8)

        var metadata = SampleMetadata.document(kind: .imagingReport, id: SampleMetadata.oidDocumentID(), destinations: [.dmp])
        if !dmpOnly {
            metadata.destinations.append(.mssantePS)
            metadata.mssante = MSSanteMessage(recipients: ["dr.traitant@medecin.mssante.fr"], professionalSubject: "Passerelle large document")
        }
        let pdf = SamplePDF.make(text: "Passerelle large document", minimumBytes: mb << 20)
        let pdfBytes = pdf.count
        let inbox = root.appendingPathComponent("inbox")
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        let log = root.appendingPathComponent("passerelle.log")
        let child = try ChildProcess(binary, ["run", "--config", root.appendingPathComponent("passerelle.toml").path], log: log)
        // The idle gateway's figure first, then the document: the growth is the document's cost.
        let ready = Date().addingTimeInterval(60)
        while !((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("passerelle running"), child.exited == nil, Date() < ready {
            Thread.sleep(forTimeInterval: 0.05)
        }
        Thread.sleep(forTimeInterval: 0.3)
        let baseline = child.peakKB() / 1024
        // PDF first, sidecar last (the pair is complete when both are there).
        try pdf.write(to: root.appendingPathComponent("large.pdf"))
        try FileManager.default.moveItem(at: root.appendingPathComponent("large.pdf"), to: inbox.appendingPathComponent("large.pdf"))
        try JSONEncoder().encode(metadata).write(to: inbox.appendingPathComponent("large.json"))
        let clock = ContinuousClock()
        let start = clock.now
        let journalPath = root.appendingPathComponent("journal.sqlite").path
        let targets: Set<Destination> = dmpOnly ? [.dmp] : [.dmp, .mssantePS]
        var marks: [(String, Duration, Int)] = []
        var seen: Set<String> = []
        func mark(_ name: String) {
            guard seen.insert(name).inserted else { return }
            marks.append((name, clock.now - start, child.peakKB() / 1024))
        }
        var failure: String?
        // VmHWM of the child's own address space, sampled until it exits. (wait4's ru_maxrss is
        // no use here: posix_spawn's vfork-style child shares this process's memory until exec,
        // and Linux keeps that high-water mark in the child's figure.)
        var peak = 0
        let deadline = Date().addingTimeInterval(TimeInterval(timeout))
        while true {
            peak = max(peak, child.peakKB())
            if let status = child.exited {
                failure = "passerelle run exited early (status \(status)); see its log"
                break
            }
            if Date() > deadline { failure = "timed out after \(timeout) s"; break }
            if let refused = try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("error").path), !refused.isEmpty {
                failure = "the document was refused (error/: \(refused.sorted().joined(separator: ", ")))"
                break
            }
            if FileManager.default.fileExists(atPath: journalPath),
               let journal = try? SQLiteJournalStore(path: journalPath, blobs: BlobStore(root: Journals.blobFolder(forDatabase: journalPath))) {
                let all = (try? LargeRun.blocking { try await journal.transmissions(matching: TransmissionFilter()) }) ?? []
                if let documentID = metadata.id.map(DocumentEntryMapper.uniqueId),
                   (try? LargeRun.blocking { try await journal.documents(in: .received) + journal.documents(in: .built) })?.contains(where: { $0.id == documentID }) == true {
                    mark("journaled")
                }
                if !all.isEmpty { mark("built, validated, queued") }
                for t in all where [.acknowledged, .sent].contains(t.state) { mark("\(t.target.rawValue) \(t.state.rawValue)") }
                if let bad = all.first(where: { [.failed, .retryWait].contains($0.state) }) {
                    failure = "\(bad.target.rawValue): \(bad.state.rawValue) \(bad.lastError ?? "")"
                    break
                }
                if Set(all.filter { [.acknowledged, .sent].contains($0.state) }.map(\.target)) == targets { break }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        child.terminate()
        while child.exited == nil {
            peak = max(peak, child.peakKB())
            Thread.sleep(forTimeInterval: 0.02)
        }
        let status = child.exited ?? -1
        let maxRSSKB = peak
        let total = clock.now - start
        print("large      pdf=\(pdfBytes) bytes (\(mb) MB) targets=\(targets.map(\.rawValue).sorted().joined(separator: ",")) total=\(total)")
        for (name, at, peak) in marks {
            print("  " + name.padding(toLength: 28, withPad: " ", startingAt: 0) + String(format: "at %7.2f s   peak RSS so far %4d MB", LargeRun.seconds(at), peak))
        }
        let growth = maxRSSKB / 1024 - baseline
        print("large      passerelle run peak RSS: \(maxRSSKB / 1024) MB (VmHWM of the child; idle before the document: \(baseline) MB, growth \(growth) MB), exit \(status)")
        let json: [String: Int] = ["pdf_bytes": pdfBytes, "peak_rss_mb": maxRSSKB / 1024, "idle_rss_mb": baseline, "growth_mb": growth,
                                   "total_ms": Int(LargeRun.seconds(total) * 1000)]
        if let data = try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]) { print(String(decoding: data, as: UTF8.self)) }
        if let failure {
            let log = (try? String(contentsOf: root.appendingPathComponent("passerelle.log"), encoding: .utf8)) ?? ""
            print("large      FAILED: \(failure)\n--- passerelle log (end) ---\n\(log.suffix(3000))")
            throw ExitCode.failure
        }
        if let relay {
            failure = LargeRun.checkMail(relay: relay, root: root, pdf: pdf, journalPath: journalPath)
            print("large      mail at the relay: " + (failure == nil ? "PDF and XDM CDA identical to the sent document" : "WRONG"))
        }
        if let failure {
            print("large      FAILED: \(failure)")
            throw ExitCode.failure
        }
        if let maxRssMb, maxRSSKB / 1024 > maxRssMb {
            print("large      FAILED: peak RSS \(maxRSSKB / 1024) MB is above --max-rss-mb \(maxRssMb)")
            throw ExitCode.failure
        }
        if let maxGrowthMb, growth > maxGrowthMb {
            print("large      FAILED: the document made the peak RSS grow by \(growth) MB, above --max-growth-mb \(maxGrowthMb)")
            throw ExitCode.failure
        }
    }
}

enum LargeRun {
    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    /// Runs an async journal call from this synchronous command.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
            done.signal()
        }
        done.wait()
        return try box.result!.get()
    }

    final class ResultBox<T>: @unchecked Sendable { var result: Result<T, any Error>? }

    /// The local MSSanté-style relay, with room for the mail of a large PDF (base64 + XDM).
    static func startRelay(root: URL) throws -> LocalSMTPRelay {
        do {
            return try LocalSMTPRelay(python: TestPaths.testVenv.appendingPathComponent("bin/python"),
                                      script: TestPaths.repositoryRoot.appendingPathComponent("scripts/endpoints/smtp_server.py"),
                                      pki: TestPaths.testPKI, folder: root.appendingPathComponent("relay"),
                                      log: root.appendingPathComponent("relay.log"), maxMessageBytes: 1 << 30)
        } catch { throw ValidationError(error.description) }
    }

    /// Opens the stored mail with Python's email and zipfile modules (CRCs checked): the PDF
    /// attachment must be the dropped PDF and the XDM's CDA the journaled one, byte for byte.
    static func checkMail(relay: LocalSMTPRelay, root: URL, pdf: Data, journalPath: String) -> String? {
        let mails = ((try? FileManager.default.contentsOfDirectory(atPath: relay.folder.path)) ?? []).filter { $0.hasSuffix(".eml") }
        guard mails.count == 1 else { return "expected one mail at the relay, found \(mails.count)" }
        let script = """
        import email, email.policy, hashlib, io, sys, zipfile
        msg = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
        out = {}
        for part in msg.iter_attachments():
            data = part.get_payload(decode=True)
            if part.get_filename() == "IHE_XDM.zip":
                z = zipfile.ZipFile(io.BytesIO(data))
                assert z.testzip() is None, "bad CRC"
                data = z.read("IHE_XDM/SUBSET01/DOC00001.XML")
                out["cda"] = hashlib.sha256(data).hexdigest()
            else:
                out["pdf"] = hashlib.sha256(data).hexdigest()
        print(out.get("pdf", "-"), out.get("cda", "-"))
        """
        let python = TestPaths.testVenv.appendingPathComponent("bin/python").path
        guard let result = try? ProcessRunner.run(python, ["-c", script, relay.folder.appendingPathComponent(mails[0]).path]), result.succeeded else {
            return "the mail at the relay cannot be read as MIME + XDM zip"
        }
        let hashes = result.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard hashes.count == 2, hashes[0] == BlobStore.sha256Hex(pdf) else { return "the mailed PDF differs from the dropped PDF" }
        let document = try? blocking { () async throws -> JournalDocument? in
            let journal = try SQLiteJournalStore(path: journalPath, blobs: BlobStore(root: Journals.blobFolder(forDatabase: journalPath)))
            guard let t = try await journal.transmissions(matching: TransmissionFilter()).first else { return nil }
            return try await journal.document(id: t.documentID, version: t.version)
        }
        guard let builtSHA = (document ?? nil)?.builtSHA256, hashes[1] == builtSHA else { return "the CDA in the mailed XDM differs from the journaled CDA" }
        return nil
    }

    /// A gateway on the local endpoints that accepts a PDF of any size; no TD0.2 registry.
    static func configuration(root: URL, endpoint: URL, smtpPort: UInt16?) -> LocalGatewayConfiguration {
        var c = LocalGatewayConfiguration(writtenBy: "passerelle-bench large", pki: TestPaths.testPKI, root: root, dmpURL: endpoint,
                                          registryURL: nil, smtpPort: smtpPort,
                                          cdaSchema: TestPaths.shared.appendingPathComponent("conformance/cda/xsd/cda/CDA_extended.xsd"))
        c.dmpConnections = 1
        c.dmpTimeoutSeconds = 120
        c.leaseSeconds = 300
        c.maxPDFBytes = 1 << 30
        c.journalPath = root.appendingPathComponent("journal.sqlite").path
        return c
    }
}

/// A child started with posix_spawn, its output in a log file.
final class ChildProcess {
    let pid: pid_t
    private(set) var status: Int32?

    init(_ path: String, _ arguments: [String], log: URL) throws {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil, attributes: [.posixPermissions: 0o600])
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard rc == 0 else { throw ValidationError("cannot start \(path): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// The exit status if the child has exited (reaps it).
    var exited: Int32? {
        if let status { return status }
        reap(options: WNOHANG)
        return status
    }

    /// VmHWM of the running child, in KB (0 once it has exited).
    func peakKB() -> Int {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    func terminate() { if status == nil { kill(pid, SIGTERM) } }

    private func reap(options: Int32) {
        var raw: Int32 = 0
        guard waitpid(pid, &raw, options) == pid else { return }
        status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
    }
}
