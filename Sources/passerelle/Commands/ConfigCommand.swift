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

/// One finding of a configuration check beyond the file itself (files, certificates, …): what
/// was found, the key it concerns and the fix, printed as one line or as JSON (`--json`).
struct CheckFinding: Sendable {
    /// `note`: something the service will do by itself (e.g. migrate the journal), not a problem.
    enum Severity: String, Sendable, Encodable { case ok, note, warning, error }
    var severity: Severity
    /// The configuration key concerned (`certificates.signing`, `journal.path`…), nil when none.
    var key: String?
    /// What was found (without the key and the fix when those are given apart).
    var message: String
    /// What to do about it, nil when nothing is to be done.
    var fix: String?
    /// The printed line when it is not "key: message: fix".
    private var text: String?

    /// A finding whose message is the whole line.
    init(severity: Severity, message: String) {
        self.severity = severity
        self.message = message
    }

    init(severity: Severity, key: String?, message: String, fix: String? = nil, text: String? = nil) {
        self.severity = severity
        self.key = key
        self.message = message
        self.fix = fix
        self.text = text
    }

    /// The line printed after the severity.
    var line: String { text ?? [key, message, fix].compactMap { $0 }.joined(separator: ": ") }
}

/// A check that `passerelle config check` runs once the file has parsed. Add one by
/// conforming a type and listing it in ``ConfigCheckCommand/checks``.
protocol ConfigurationCheck: Sendable {
    /// Short name shown before each finding (e.g. "certificates").
    var name: String { get }
    /// True for checks that open what the service will open (certificates, folders): skipped
    /// by `--file-only`.
    var isPreflight: Bool { get }
    /// True for checks that connect to the peers (DMP, SMTP relay): run with `--connect` only.
    var needsConnect: Bool { get }
    func run(_ configuration: PasserelleConfiguration) async -> [CheckFinding]
}

extension ConfigurationCheck {
    var needsConnect: Bool { false }
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

        The journal opens and its schema version is known: SQLite read-only, PostgreSQL with a \
        5 s connection timeout (nothing is created or migrated); an older version is a note (the \
        service migrates it at start), a newer one an error.

        --connect also tries what the first send does, without sending anything: a TLS handshake \
        with the DMP endpoint (mutual TLS with certificates.authentication, the server verified \
        against dmp.ca) and with the SMTP relay (STARTTLS or implicit TLS as mssante.smtp_tls \
        says, EHLO over TLS, QUIT).

        --json prints {"file", "valid", "errors", "warnings", "findings": [{"check", "severity", \
        "key", "message", "fix"}]} instead of the table (severity: ok, note, warning, error).

        Exit codes: 0 the configuration is valid (warnings are printed), 1 it is not (or cannot be read).
        """
    )

    /// Checks run after the file parsed; an `.error` finding makes the command fail.
    static let checks: [any ConfigurationCheck] = [VIHFConfigurationCheck(), CertificatesConfigurationCheck(),
                                                    FoldersConfigurationCheck(), JournalConfigurationCheck(),
                                                    ConnectionConfigurationCheck(), ConsoleConfigurationCheck()]

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Check the file only (syntax, values, [vihf]); do not open the certificates, folders and journal it names.")
    var fileOnly = false

    @Flag(help: "Also try a TLS handshake with the DMP endpoint and the SMTP relay (mutual TLS, verification on).")
    var connect = false

    @Flag(help: "Print the findings as JSON (snake_case keys) instead of a table.")
    var json = false

    func validate() throws {
        if fileOnly && connect { throw ValidationError("--connect needs the certificates: it cannot go with --file-only") }
    }

    /// `--json` output.
    struct JSONOutput: Encodable {
        struct Finding: Encodable {
            var check: String
            var severity: CheckFinding.Severity
            var key: String?
            var message: String
            var fix: String?

            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(check, forKey: .check)
                try c.encode(severity, forKey: .severity)
                try c.encode(key, forKey: .key)  // null rather than absent: every finding has the same keys
                try c.encode(message, forKey: .message)
                try c.encode(fix, forKey: .fix)
            }

            enum CodingKeys: String, CodingKey { case check, severity, key, message, fix }
        }
        var file: String
        var valid: Bool
        var errors: Int
        var warnings: Int
        var findings: [Finding]
    }

    func run() async throws {
        let path = global.configPath
        let configuration: PasserelleConfiguration
        do {
            configuration = try PasserelleConfiguration.load(from: path)
        } catch {
            LogSetup.bootstrap(level: global.logLevel ?? .info)
            let problems = error.problems
            if json {
                let findings = problems.map { JSONOutput.Finding(check: "file", severity: .error, key: Self.key(of: $0), message: $0.description) }
                printJSON(JSONOutput(file: path, valid: false, errors: findings.count, warnings: 0, findings: findings))
                throw ExitCode(1)
            }
            printError("Configuration \(path) is invalid (\(problems.count) problem\(problems.count == 1 ? "" : "s")):")
            for problem in problems { printError("  \(problem)") }
            throw ExitCode(1)
        }
        LogSetup.bootstrap(level: global.logLevel ?? configuration.logging.level, format: configuration.logging.format)
        Logger(label: "passerelle.config").debug("configuration loaded", metadata: ["file": .string(configuration.file)])

        var findings: [(check: String, finding: CheckFinding)] = []
        for check in Self.checks where !(fileOnly && check.isPreflight) && (connect || !check.needsConnect) {
            for finding in await check.run(configuration) { findings.append((check.name, finding)) }
        }
        let failed = findings.contains { $0.finding.severity == .error }
        if json {
            printJSON(JSONOutput(
                file: configuration.file, valid: !failed,
                errors: findings.filter { $0.finding.severity == .error }.count,
                warnings: findings.filter { $0.finding.severity == .warning }.count,
                findings: findings.map { JSONOutput.Finding(check: $0.check, severity: $0.finding.severity, key: $0.finding.key,
                                                            message: $0.finding.message, fix: $0.finding.fix) }))
        } else {
            var lines = summary(configuration)
            lines += findings.map { ($0.check, "\($0.finding.severity.rawValue): \($0.finding.line)") }
            print("Configuration \(configuration.file) is \(failed ? "invalid" : "valid").")
            let width = lines.map(\.0.count).max() ?? 0
            for (key, value) in lines {
                print("  " + key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
            }
        }
        if failed { throw ExitCode(1) }
    }

    private func printJSON(_ output: JSONOutput) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if let data = try? encoder.encode(output) { print(String(decoding: data, as: UTF8.self)) }
    }

    /// The key a file problem names, if any.
    private static func key(of problem: ConfigurationError) -> String? {
        switch problem {
        case .missingKey(_, _, let key, _), .wrongType(_, _, let key, _, _), .invalidValue(_, _, let key, _), .unknownKey(_, _, let key, _):
            key
        case .missingTable(_, let table), .unknownTable(_, _, let table, _): table
        default: nil
        }
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
        case .postgresql(let url, _, _, _, let connections):
            lines.append(("journal", "postgresql \(redactedURL(url)), up to \(connections) session\(connections == 1 ? "" : "s")"))
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
