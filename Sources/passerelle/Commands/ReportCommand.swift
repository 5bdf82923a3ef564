import ArgumentParser
import Foundation
import Indicators
import Journal
import OpenSSLKit
import PasserelleCore
import Signing

extension ReportFormat: ExpressibleByArgument {}

/// `passerelle report --month 2026-10 [--finess …] --format table|csv|json|html [-o FILE]`
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Usage-rate report (SUN-ES, HOP'EN, quality lines) from the journal.",
        discussion: """
        Counts, for a calendar month or a range of days (boundaries at midnight in [report] \
        time_zone, Europe/Paris by default), the documents sent to the DMP with a qualified INS \
        per discharged stay and per document produced (SUN-ES volet 1, D1/D2/D3), the MSSanté \
        sendings to patients and professionals with their delivery and read notifications \
        (volet 2), the share of stays with a discharge letter in the DMP (HOP'EN) and the \
        quality lines that explain a low rate. Which kinds count where, the denominators and the \
        targets come from the [report] tables of the configuration (docs/report.md).

        Formats: table (terminal), csv (';'-separated UTF-8, columns \
        Programme;Code;Indicateur;Période;Numérateur;Dénominateur;Taux;Cible;Atteint), json \
        (documented in docs/report.md), html (one self-contained page with 12-month trend charts).

        --evidence DIR also writes the audit evidence (docs/report.md, "Evidence"): one CSV per \
        indicator line listing the document sets and stays of its numerator and denominator, \
        rapport.json, manifest.txt (SHA-256 of every file) and manifest.txt.p7s (detached CMS \
        signature by the [certificates] signing certificate). Check it with \
        `passerelle verify-evidence DIR`.

        --from-month YYYY-MM --to-month YYYY-MM compares the months of a range side by side, for \
        the whole structure and each FINESS (every format; the CSV has one row per line and month).

        Exit codes: 0 report written, 1 configuration, journal, certificate or output problem, 64 usage error.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Calendar month to report.", valueName: "YYYY-MM"))
    var month: String?

    @Option(help: ArgumentHelp("First day of a range (with --to).", valueName: "YYYY-MM-DD"))
    var from: String?

    @Option(help: ArgumentHelp("Last day of a range, included (with --from).", valueName: "YYYY-MM-DD"))
    var to: String?

    @Option(help: ArgumentHelp("Only this FINESS (repeat for several). Default: the whole structure.", valueName: "finess"))
    var finess: [String] = []

    @Option(help: "Output format: table, csv, json or html.")
    var format: ReportFormat = .table

    @Option(name: [.customShort("o"), .long], help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
    var output: String?

    @Option(help: ArgumentHelp("SQLite journal to read instead of the configuration's [journal] (then the configuration is optional).",
                               valueName: "file"))
    var journal: String?

    @Option(help: ArgumentHelp("Months of trend to compute (default 12 for html, 0 otherwise).", valueName: "n"))
    var trendMonths: Int?

    @Option(help: ArgumentHelp("First month of a comparison across months and FINESS (with --to-month).", valueName: "YYYY-MM"))
    var fromMonth: String?

    @Option(help: ArgumentHelp("Last month of the comparison, included (with --from-month).", valueName: "YYYY-MM"))
    var toMonth: String?

    @Option(help: ArgumentHelp("Also write the signed evidence package (one CSV per line, manifest, signature) into this folder.",
                               valueName: "dir"))
    var evidence: String?

    func validate() throws {
        if fromMonth != nil || toMonth != nil {
            guard fromMonth != nil, toMonth != nil else { throw ValidationError("--from-month and --to-month go together") }
            guard month == nil, from == nil, to == nil else {
                throw ValidationError("a comparison (--from-month/--to-month) takes no --month, --from or --to")
            }
            guard evidence == nil else { throw ValidationError("--evidence goes with one period (--month or --from/--to), not a comparison") }
            return
        }
        switch (month, from, to) {
        case (_?, nil, nil), (nil, _?, _?): break
        case (nil, nil, nil): throw ValidationError("give --month YYYY-MM, or --from YYYY-MM-DD and --to YYYY-MM-DD")
        case (_?, _, _): throw ValidationError("give either --month or --from/--to, not both")
        default: throw ValidationError("--from and --to go together")
        }
        if let n = trendMonths, !(0...120).contains(n) { throw ValidationError("--trend-months must be between 0 and 120") }
    }

    func run() async throws {
        LogSetup.bootstrap(level: global.logLevel ?? .warning)
        // With --journal, a configuration is read only when one is named explicitly.
        var configuration: PasserelleConfiguration?
        if journal == nil || global.config != nil || ProcessInfo.processInfo.environment[PasserelleConfiguration.environmentVariable] != nil {
            do { configuration = try PasserelleConfiguration.load(from: global.configPath) } catch {
                printError("Configuration \(global.configPath) is invalid:")
                for problem in error.problems { printError("  \(problem)") }
                throw ExitCode(1)
            }
        }
        let settings = configuration?.report ?? .default
        do {
            let store: any JournalStore
            if let journal {
                guard FileManager.default.fileExists(atPath: journal) else {
                    printError("passerelle report: no journal at \(journal)")
                    throw ExitCode(1)
                }
                store = try Journals.open(.sqlite(path: journal))
            } else {
                store = try Journals.open(configuration!.journal)
            }
            if let fromMonth, let toMonth {
                let comparison = try await ComparisonReport.make(store: store, from: fromMonth, to: toMonth, finess: finess, settings: settings,
                                                                 title: configuration?.structure.name ?? "Passerelle")
                try emit(try comparison.render(format))
                return
            }
            let period = try month.map { m throws(ReportError) in try ReportPeriod.month(m, timeZone: settings.timeZone) }
                ?? ReportPeriod.days(from: from!, to: to!, timeZone: settings.timeZone)
            let report = try await UsageReporter.make(
                store: store, period: period, finess: finess, settings: settings,
                trendMonths: trendMonths ?? UsageReporter.trendMonths(for: format),
                title: configuration?.structure.name ?? "Passerelle")
            if let evidence {
                try await writeEvidence(evidence, store: store, report: report, settings: settings, configuration: configuration)
            }
            try emit(try format.render(report))
        } catch let error as ExitCode {
            throw error
        } catch let error as KeyMaterialError {
            printError("passerelle report: the evidence is signed with [certificates] signing: \(error)")
            throw ExitCode(1)
        } catch {
            printError("passerelle report: \(error)")
            throw ExitCode(1)
        }
    }
}

extension ReportCommand {
    func emit(_ text: String) throws {
        if let output {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } else {
            print(text, terminator: "")
        }
    }

    /// The evidence of the main period (the trend is not part of it), signed with the signing
    /// certificate loaded as everywhere else (``KeyMaterial``).
    func writeEvidence(_ directory: String, store: any JournalStore, report: UsageReport,
                       settings: PasserelleConfiguration.Report, configuration: PasserelleConfiguration?) async throws {
        guard let configuration else {
            printError("passerelle report: --evidence signs the package with [certificates] signing: give --config")
            throw ExitCode(1)
        }
        var source = KeyMaterialSource(configuration.certificates)
        source.authentication = nil
        let keys = try KeyMaterial.load(source)
        let rows = try await store.usageEvidence(UsageQuery(boundaries: [report.period.start, report.period.end], finess: finess,
                                                            qualifiedStatuses: settings.qualifiedStatuses,
                                                            dischargeLetterKinds: settings.dischargeLetterKinds))
        try EvidencePackage.write(to: URL(fileURLWithPath: directory), report: report, evidence: rows, settings: settings,
                                  sha256: { Digest.sha256($0).hexString }, sign: { try DetachedSignature.sign($0, keys: keys) })
    }
}

/// `passerelle verify-evidence DIR`
struct VerifyEvidenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-evidence",
        abstract: "Check a usage report's evidence package: signature, hashes, every figure recounted.",
        discussion: """
        Checks manifest.txt.p7s (detached CMS) over manifest.txt and its signer against the \
        trust anchors ([certificates] trust_anchors and crl of the configuration, or \
        --trust-anchors), the SHA-256 of every file listed in the manifest (and that no other \
        file is there), then recounts each line of rapport.json, for the whole structure and \
        for each FINESS, from the Numérateur and Dénominateur columns of its CSV.

        Exit codes: 0 the package holds, 1 unreadable package or configuration, 2 tampered \
        (signature or a hash does not hold), 3 a figure differs from its evidence, 64 usage error.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The folder written by report --evidence.", valueName: "dir"))
    var directory: String

    @Option(help: ArgumentHelp("PEM trust anchors to check the signer against, instead of the configuration's.", valueName: "file"))
    var trustAnchors: String?

    func run() throws {
        LogSetup.bootstrap(level: global.logLevel ?? .warning)
        let store: TrustStore
        do {
            if let trustAnchors {
                store = try TrustStore(anchorsFile: URL(fileURLWithPath: trustAnchors))
            } else {
                let configuration = try PasserelleConfiguration.load(from: global.configPath)
                store = try TrustStore(anchorsFile: URL(fileURLWithPath: configuration.certificates.trustAnchors),
                                       crlFiles: configuration.certificates.crl.map { [URL(fileURLWithPath: $0)] } ?? [])
            }
        } catch let error as ConfigurationError {
            printError("Configuration \(global.configPath) is invalid (or give --trust-anchors):")
            for problem in error.problems { printError("  \(problem)") }
            throw ExitCode(1)
        } catch {
            printError("passerelle verify-evidence: trust anchors: \(error)")
            throw ExitCode(1)
        }
        var signer = ""
        let result = EvidenceCheck.verify(URL(fileURLWithPath: directory), sha256: { Digest.sha256($0).hexString }) { manifest, signature, at in
            signer = try DetachedSignature.verify(signature, content: manifest, trustStore: store, at: at)
        }
        for problem in result.problems { printError("passerelle verify-evidence: \(problem)") }
        guard let worst = result.problems.map(\.exitCode).max() else {
            print("evidence holds: signed by \(signer), every file matches the manifest, \(result.linesChecked) lines recounted")
            return
        }
        // Tampering outranks a count difference, an unreadable file outranks nothing it could hide.
        throw ExitCode(result.problems.contains { $0.exitCode == 2 } ? 2 : worst)
    }
}
