import CDA
import DMP
import Foundation
import IHE
import Indicators
import Journal
import OpenSSLKit
import PasserelleCore
import TestEndpoints

/// Where the demo finds its material and puts its run.
struct DemoSettings: Sendable {
    var folder: URL
    var pki: URL
    var pkiScript: URL
    var templates: URL
    /// The sample sidecar; nil: the built-in one.
    var sidecar: URL?
    var xdsSchema: URL
    /// The Python of `.venv` (scripts/setup.sh) and the relay script it runs.
    var python: URL
    var smtpRelay: URL
    /// The CDA XSD every document must pass before it is journaled (`[cda] schema`), when present.
    var cdaSchema: URL?
    var timeout: TimeInterval
    /// The status endpoint's port (0: a free one).
    var metricsPort: UInt16
    /// The production executable the demo runs (`passerelle run`), and its log level.
    var passerelle: URL
    var logLevel: String
}

/// Why the demo cannot run at all (as opposed to a sample ending wrong).
struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// What one (sample, target) became.
struct DemoResult: Sendable {
    var sample: DemoSample
    var check: DemoCheck
    /// Journal state, `refused`, `stay discharged`, or `pending` when the time ran out.
    var state: String
    /// What the endpoint holds: the DMP entry's status, or the mail at the relay.
    var entry: String
    var ok: Bool
    /// Why it is not what was expected.
    var problem: String?
}

/// The demo folder, a local DMP-style endpoint (in this process), a local MSSanté-style SMTP
/// relay (a child Python process) and the gateway: the production `passerelle run` executable
/// (a child process), whose journal the demo reads to check the outcomes.
final class DemoEnvironment: @unchecked Sendable {
    let settings: DemoSettings
    let endpoint: DMPTestEndpoint
    let relay: LocalSMTPRelay
    let configuration: PasserelleConfiguration
    /// `[http] metrics_port` of the gateway: /health, /ready, /metrics.
    let statusPort: UInt16
    private var gateway: GatewayProcess?
    private var openJournal: (any JournalStore)?

    var inbox: URL { settings.folder.appendingPathComponent("inbox") }
    var errorFolder: URL { settings.folder.appendingPathComponent("error") }
    var doneFolder: URL { settings.folder.appendingPathComponent("done") }
    var journalPath: String { settings.folder.appendingPathComponent("journal/journal.sqlite").path }
    var endpointFolder: URL { settings.folder.appendingPathComponent("endpoint") }
    var reportPath: URL { settings.folder.appendingPathComponent("report.html") }
    var sentFolder: URL { settings.folder.appendingPathComponent("mssante-sent") }
    /// The gateway's journal, opened by ``start()`` once `passerelle run` has made it.
    var journal: any JournalStore {
        guard let openJournal else { preconditionFailure("the demo journal is read after start()") }
        return openJournal
    }

    /// Makes the test PKI if missing, a fresh demo folder (0700), starts the endpoint and the
    /// relay, and writes the gateway's configuration (the gateway is not yet running).
    init(_ settings: DemoSettings) throws {
        self.settings = settings
        // The folder first: an installed demo makes its test PKI inside it.
        try Self.prepareFolder(settings.folder)
        try Self.ensurePKI(settings)
        let fm = FileManager.default
        guard fm.fileExists(atPath: settings.xdsSchema.path) else {
            throw DemoError("the IHE XDS.b schema the local DMP endpoint checks requests with is not at \(settings.xdsSchema.path): give --xds-schema (conformance/xds/XDS.b_DocumentRepository.xsd of the shared kit)")
        }
        let requests = settings.folder.appendingPathComponent("endpoint/requests")
        try fm.createDirectory(at: requests, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        endpoint = try DMPTestEndpoint(DMPTestEndpoint.Configuration(
            serverIdentity: settings.pki.appendingPathComponent("server-localhost.p12"),
            passphrase: Passphrase.read(file: settings.pki.appendingPathComponent("passphrase.txt")),
            clientCA: settings.pki.appendingPathComponent("ca.pem"), schema: settings.xdsSchema, dumpDirectory: requests))
        do {
            relay = try LocalSMTPRelay(python: settings.python, script: settings.smtpRelay, pki: settings.pki,
                                      folder: settings.folder.appendingPathComponent("mssante-sent"),
                                      log: settings.folder.appendingPathComponent("mssante-relay.log"))
        } catch {
            endpoint.stop()
            throw error
        }
        do {
            statusPort = settings.metricsPort != 0 ? settings.metricsPort : try GatewayProcess.freePort()
            let file = settings.folder.appendingPathComponent("passerelle.toml")
            try Self.configurationText(settings, endpoint: endpoint, smtpPort: relay.port, statusPort: statusPort)
                .write(to: file, atomically: true, encoding: .utf8)
            chmod(file.path, 0o600)
            do { configuration = try PasserelleConfiguration.load(from: file.path) } catch {
                throw DemoError("the demo configuration \(file.path) is invalid: \(error.problems.map(\.description).joined(separator: "; "))")
            }
        } catch {
            endpoint.stop()
            relay.stop()
            throw error
        }
    }

    var configurationFile: URL { settings.folder.appendingPathComponent("passerelle.toml") }

    /// Starts `passerelle run` on the demo configuration, waits until it is ready and opens its journal.
    func start() throws {
        gateway = try GatewayProcess(executable: settings.passerelle, configuration: configurationFile,
                                     templates: settings.templates.standardizedFileURL, logLevel: settings.logLevel, statusPort: statusPort)
        do { openJournal = try Journals.open(configuration.journal) } catch {
            throw DemoError("cannot open the gateway's journal: \(error)")
        }
    }

    /// Whether `passerelle run` is still running (it stops only when told to, or on a fatal error).
    var gatewayRunning: Bool { gateway?.isRunning ?? false }

    func stop() {
        gateway?.stop()
        endpoint.stop()
        relay.stop()
    }

    /// Writes each file under a partial name, then renames it in (what producers should do).
    func drop(_ sample: DemoSample) throws {
        for (name, data) in sample.files {
            let partial = inbox.appendingPathComponent(name + ".part")
            try data.write(to: partial)
            chmod(partial.path, 0o600)
            try FileManager.default.moveItem(at: partial, to: inbox.appendingPathComponent(name))
        }
    }

    // MARK: Set-up

    static func ensurePKI(_ s: DemoSettings) throws {
        if FileManager.default.fileExists(atPath: s.pki.appendingPathComponent("server-localhost.p12").path) { return }
        print("Making the test PKI (\(s.pkiScript.path))…")
        let process = Process()
        process.executableURL = s.pkiScript
        process.arguments = [s.pki.path]
        process.standardOutput = FileHandle.standardError
        do { try process.run() } catch { throw DemoError("cannot run \(s.pkiScript.path): \(error.localizedDescription); run it from the repository root, or install passerelle (it ships the script in share/passerelle), or give --pki-script") }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw DemoError("\(s.pkiScript.path) failed (exit \(process.terminationStatus))") }
    }

    /// The demo owns its folder: a previous run (marked) is replaced, anything else is refused.
    static func prepareFolder(_ folder: URL) throws {
        let fm = FileManager.default
        let marker = folder.appendingPathComponent(".passerelle-demo")
        if fm.fileExists(atPath: folder.path) {
            let content = (try? fm.contentsOfDirectory(atPath: folder.path)) ?? []
            guard content.isEmpty || fm.fileExists(atPath: marker.path) else {
                throw DemoError("\(folder.path) exists and is not a demo folder: give another --folder (the demo replaces its folder on each run)")
            }
            try fm.removeItem(at: folder)
        }
        try fm.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try fm.createDirectory(at: folder.appendingPathComponent("journal"), withIntermediateDirectories: true,
                               attributes: [.posixPermissions: 0o700])
        try Data("passerelle demo folder: replaced by each `passerelle demo` run\n".utf8).write(to: marker)
    }

    static func configurationText(_ s: DemoSettings, endpoint: DMPTestEndpoint, smtpPort: UInt16, statusPort: UInt16) -> String {
        var c = LocalGatewayConfiguration(writtenBy: "passerelle demo", pki: s.pki, root: s.folder, dmpURL: endpoint.url,
                                          registryURL: endpoint.registryURL, smtpPort: smtpPort, cdaSchema: s.cdaSchema)
        c.metricsPort = statusPort
        c.console = true  // the read-only overview of the demo's journal, on the status port
        return c.text
    }

    // MARK: Outcomes

    /// What `check` of `sample` has become so far; `final` once it will not change any more.
    /// `mail` is what the relay holds, `mailsExpected` how many messages each recipient
    /// must have got in all.
    func result(of sample: DemoSample, _ check: DemoCheck, mail: [LocalSMTPRelay.Received],
                mailsExpected: [String: Int]) async throws -> (result: DemoResult, final: Bool) {
        func result(_ state: String, entry: String = "-", ok: Bool, problem: String? = nil) -> DemoResult {
            DemoResult(sample: sample, check: check, state: state, entry: entry, ok: ok, problem: problem)
        }
        let errors = (try? FileManager.default.contentsOfDirectory(atPath: errorFolder.path)) ?? []
        let names = sample.files.map(\.name)
        let refusal = errors.first { file in file.hasSuffix(".error.txt") && names.contains { file.hasSuffix($0 + ".error.txt") } }
        if let refusal {
            let reason = (try? String(contentsOf: errorFolder.appendingPathComponent(refusal), encoding: .utf8)) ?? ""
            guard case .refused(let expected) = check.expected else {
                return (result("refused", ok: false, problem: "refused: \(reason.prefix(300))"), true)
            }
            let ok = reason.contains(expected)
            return (result("refused → error/", ok: ok, problem: ok ? nil : "reason does not mention \(expected): \(reason.prefix(300))"), true)
        }
        switch check.expected {
        case .refused:
            return (result("pending", ok: false, problem: "not refused"), false)
        case .discharge(let stayID):
            let stay = try await journal.stay(finess: configuration.structure.finess.value, stayID: stayID)
            guard stay?.dischargedAt != nil else { return (result("pending", ok: false, problem: "no discharge recorded"), false) }
            return (result("stay discharged", ok: true), true)
        case .stored(let entry):
            return try await transmission(sample, check, entry: sample.documentID, expectedEntry: entry)
        case .deletion(let parent):
            return try await transmission(sample, check, entry: parent, expectedEntry: .deleted)
        case .mailed(let recipient):
            return try await mailing(sample, check, recipient: recipient, mail: mail, expectedCount: mailsExpected[recipient] ?? 0)
        }
    }

    private func journaled(_ sample: DemoSample, _ check: DemoCheck) async throws -> Transmission? {
        guard let id = sample.documentID, let target = check.target else { return nil }
        return try await journal.transmissions(matching: TransmissionFilter(documentID: id, target: target)).first
    }

    private static func isFinal(_ t: Transmission) -> Bool {
        !([.queued, .sending, .retryWait] as Set<TransmissionState>).contains(t.state)
    }

    private static func stateProblem(_ t: Transmission, expected: TransmissionState) -> String? {
        t.state == expected ? nil : "journal state \(t.state.rawValue)\(t.lastError.map { ": \($0.prefix(300))" } ?? "")"
    }

    private func transmission(_ sample: DemoSample, _ check: DemoCheck, entry: String?,
                              expectedEntry: AvailabilityStatus) async throws -> (result: DemoResult, final: Bool) {
        guard let t = try await journaled(sample, check) else {
            return (DemoResult(sample: sample, check: check, state: "pending", entry: "-", ok: false, problem: "not journaled"), false)
        }
        let status = entry.flatMap { endpoint.stored($0)?.status }
        let entryText = status?.shortName ?? "-"
        var problems = [Self.stateProblem(t, expected: .acknowledged)].compactMap { $0 }
        if status != expectedEntry { problems.append("DMP entry \(entryText), expected \(expectedEntry.shortName)") }
        return (DemoResult(sample: sample, check: check, state: t.state.rawValue, entry: entryText, ok: problems.isEmpty,
                           problem: problems.isEmpty ? nil : problems.joined(separator: "; ")), Self.isFinal(t))
    }

    /// Sent, and the relay holds exactly that message (by Message-ID) for `recipient`, and
    /// as many messages for `recipient` as the demo sent it.
    private func mailing(_ sample: DemoSample, _ check: DemoCheck, recipient: String, mail: [LocalSMTPRelay.Received],
                         expectedCount: Int) async throws -> (result: DemoResult, final: Bool) {
        guard let t = try await journaled(sample, check) else {
            return (DemoResult(sample: sample, check: check, state: "pending", entry: "-", ok: false, problem: "not journaled"), false)
        }
        let shown = check.shownRecipient ?? "the recipient"
        let forRecipient = mail.filter { $0.recipients.contains { $0.caseInsensitiveCompare(recipient) == .orderedSame } }
        let this = forRecipient.filter { $0.messageID != nil && $0.messageID == t.messageID }
        var problems = [Self.stateProblem(t, expected: .sent)].compactMap { $0 }
        if this.count != 1 { problems.append("the relay holds \(this.count) copies of this message for \(shown), expected 1") }
        if forRecipient.count != expectedCount {
            problems.append("the relay holds \(forRecipient.count) messages for \(shown), expected \(expectedCount)")
        }
        let entry = this.first.map { "mssante-sent/\($0.file) → \(shown)" } ?? "-"
        return (DemoResult(sample: sample, check: check, state: t.state.rawValue, entry: entry, ok: problems.isEmpty,
                           problem: problems.isEmpty ? nil : problems.joined(separator: "; ")), Self.isFinal(t))
    }

    /// Polls until every check of `samples` is final or `deadline` passes; returns the latest
    /// results, one per (sample, target).
    func settle(_ samples: [DemoSample], until deadline: Date) async throws -> [DemoResult] {
        var mailsExpected: [String: Int] = [:]
        for sample in samples { for check in sample.checks { if case .mailed(let r) = check.expected { mailsExpected[r, default: 0] += 1 } } }
        var finalBefore = false
        while true {
            let mail = relay.received()
            var results: [DemoResult] = []
            var allFinal = true
            for sample in samples {
                for check in sample.checks {
                    let (r, final) = try await result(of: sample, check, mail: mail, mailsExpected: mailsExpected)
                    results.append(r)
                    allFinal = allFinal && final
                }
            }
            // The relay stores a message before it answers 250: `sent` implies the file is there.
            // One more pass once all are final: an earlier row of the pass that saw the last one
            // final (an original whose deletion was still in flight) may have been read too early.
            if (allFinal && finalBefore) || Date() >= deadline { return results }
            guard gatewayRunning else { throw DemoError("passerelle run stopped during the demo (its log is above)") }
            if !allFinal { try await Task.sleep(for: .milliseconds(200)) }
            finalBefore = allFinal
        }
    }

    /// The month's usage report as a table (printed) and as HTML (written to report.html).
    func usageReport() async throws -> String {
        let settings = configuration.report
        let month = DemoEnvironment.month(Date(), timeZone: settings.timeZone)
        let period = try ReportPeriod.month(month, timeZone: settings.timeZone)
        let title = configuration.structure.name
        let table = try ReportFormat.table.render(try await UsageReporter.make(store: journal, period: period, settings: settings, title: title))
        let html = try ReportFormat.html.render(try await UsageReporter.make(store: journal, period: period, settings: settings, trendMonths: 12, title: title))
        try Data(html.utf8).write(to: reportPath, options: .atomic)
        return table
    }

    /// `YYYY-MM` of `date` in `timeZone`.
    static func month(_ date: Date, timeZone: String) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timeZone) ?? .current
        let c = calendar.dateComponents([.year, .month], from: date)
        return String(format: "%04d-%02d", c.year!, c.month!)
    }

    /// The endpoint's stored entries (no patient id: it carries the INS), one per line.
    func writeStoredList() throws -> URL {
        let file = endpointFolder.appendingPathComponent("stored.tsv")
        try Data(endpoint.storedTable.utf8).write(to: file, options: .atomic)
        return file
    }
}
