import ArgumentParser
import Foundation
import Logging
import PasserelleCore

/// `passerelle config …`
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with the configuration file.",
        subcommands: [ConfigCheckCommand.self]
    )
}

/// One finding of a configuration check beyond the file itself (files, certificates, …).
struct CheckFinding: Sendable {
    enum Severity: String, Sendable { case ok, warning, error }
    var severity: Severity
    var message: String
}

/// A check that `passerelle config check` runs once the file has parsed. Add one by
/// conforming a type and listing it in ``ConfigCheckCommand/checks``.
protocol ConfigurationCheck: Sendable {
    /// Short name shown before each finding (e.g. "certificates").
    var name: String { get }
    /// True for checks that open what the service will open (certificates, folders): skipped
    /// by `--file-only`.
    var isPreflight: Bool { get }
    func run(_ configuration: PasserelleConfiguration) async -> [CheckFinding]
}

/// `passerelle config check [--config FILE]`
struct ConfigCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Load the configuration file, check every value and print a summary.",
        discussion: """
        Every problem is reported with the file, the line and the key, e.g.
          /etc/passerelle/passerelle.toml:12: dmp.endpoint: "http://x" is not a valid https:// URL with a host

        Then the pre-flight (what the service will open, skipped with --file-only): each PKCS#12 \
        with its passphrase, its chain to trust_anchors (and crl), key usage and expiry (a warning \
        within expiry_warning_days, an error once expired), the FINESS in the certificate's \
        subject OU against [structure] finess (a warning); the folders exist, are writable by the \
        user running the check, and inbox/work/error are on one file system. Every problem is \
        reported in one run, each with its key and the fix.

        Exit codes: 0 the configuration is valid (warnings are printed), 1 it is not (or cannot be read).
        """
    )

    /// Checks run after the file parsed; an `.error` finding makes the command fail.
    static let checks: [any ConfigurationCheck] = [VIHFConfigurationCheck(), CertificatesConfigurationCheck(),
                                                    FoldersConfigurationCheck()]

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Check the file only (syntax, values, [vihf]); do not open the certificates and folders it names.")
    var fileOnly = false

    func run() async throws {
        let path = global.configPath
        let configuration: PasserelleConfiguration
        do {
            configuration = try PasserelleConfiguration.load(from: path)
        } catch {
            LogSetup.bootstrap(level: global.logLevel ?? .info)
            let problems = error.problems
            printError("Configuration \(path) is invalid (\(problems.count) problem\(problems.count == 1 ? "" : "s")):")
            for problem in problems { printError("  \(problem)") }
            throw ExitCode(1)
        }
        LogSetup.bootstrap(level: global.logLevel ?? configuration.logging.level, format: configuration.logging.format)
        Logger(label: "passerelle.config").debug("configuration loaded", metadata: ["file": .string(configuration.file)])

        var failed = false
        var lines = summary(configuration)
        for check in Self.checks where !(fileOnly && check.isPreflight) {
            for finding in await check.run(configuration) {
                lines.append((check.name, "\(finding.severity.rawValue): \(finding.message)"))
                if finding.severity == .error { failed = true }
            }
        }
        print("Configuration \(configuration.file) is \(failed ? "invalid" : "valid").")
        let width = lines.map(\.0.count).max() ?? 0
        for (key, value) in lines {
            print("  " + key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
        }
        if failed { throw ExitCode(1) }
    }

    private func summary(_ c: PasserelleConfiguration) -> [(String, String)] {
        var lines: [(String, String)] = []
        lines.append(("structure", "\(c.structure.name) (FINESS \(c.structure.finess), OID \(c.structure.oid))"))
        let passphrase: String = switch c.certificates.passphrase {
        case .file(let path): "passphrase from file \(path)"
        case .environment(let name): "passphrase from $\(name)"
        }
        lines.append(("certificates", "auth \(c.certificates.authentication), signing \(c.certificates.signing), \(passphrase)"))
        lines.append(("trust", c.certificates.trustAnchors + (c.certificates.crl.map { ", CRL \($0)" } ?? "")))
        lines.append(("dmp", c.dmp.enabled
            ? "enabled → \(c.dmp.endpoint?.absoluteString ?? "?") (timeout \(c.dmp.timeoutSeconds)s, \(c.dmp.maxConnections) connections)"
            : "disabled"))
        lines.append(("mssante", c.mssante.enabled
            ? "enabled → \(c.mssante.smtpHost):\(c.mssante.smtpPort) (\(c.mssante.smtpTLS.rawValue)), mailbox \(c.mssante.mailbox)"
            : "disabled"))
        lines.append(("folders", "inbox \(c.folders.inbox), work \(c.folders.work), error \(c.folders.error), done \(c.folders.done)"))
        switch c.journal {
        case .sqlite(let path): lines.append(("journal", "sqlite \(path)"))
        case .postgresql(let url, _, _): lines.append(("journal", "postgresql \(redactedURL(url))"))
        }
        lines.append(("cda", "max PDF \(c.cda.maxPDFBytes) bytes" + (c.cda.schema.map { ", schema \($0)" } ?? ", no XSD schema configured")))
        lines.append(("logging", "\(c.logging.level.rawValue), \(c.logging.format.rawValue)"))
        lines.append(("metrics", c.http.metricsPort.map { "http://127.0.0.1:\($0)/metrics" } ?? "disabled"))
        return lines
    }

    /// Hides a password in a database URL before printing it.
    private func redactedURL(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? text
    }
}

/// Writes a line to stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
