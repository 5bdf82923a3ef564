import ArgumentParser
import Foundation
import OpenSSLKit
import PasserelleCore
import Signing

/// `passerelle certs …`
struct CertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Check the structure's certificates.",
        subcommands: [CertsCheckCommand.self]
    )
}

/// What a certificate given with `--p12` is for.
enum CertificateUse: String, CaseIterable, ExpressibleByArgument {
    case signing
    case tlsClient = "tls-client"

    var role: CertificateRole { self == .signing ? .signing : .authentication }
}

enum OutputFormat: String, CaseIterable, ExpressibleByArgument {
    case text, json
}

/// `passerelle certs check [--config FILE] [--p12 FILE --use signing|tls-client] [--warn-days N] [--format text|json]`
struct CertsCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the authentication and signing certificates (chain, validity, revocation, key usage, expiry).",
        discussion: """
        Without --p12, checks the two PKCS#12 bundles of the [certificates] section: the \
        authentication certificate must be usable as a TLS client (extendedKeyUsage \
        clientAuth), the signing certificate for signatures (keyUsage nonRepudiation). Each \
        must chain to trust_anchors, be within its validity period and, when crl is set, not \
        be revoked. A certificate expiring within expiry_warning_days (or --warn-days) is a \
        warning. The passphrase comes from passphrase_file or passphrase_env, never from the \
        command line, and is never printed.

        With --p12 FILE --use signing|tls-client, checks that one bundle; the passphrase and \
        trust anchors come from the configuration unless --passphrase-file/--passphrase-env \
        and --trust-anchors are given.

        The first line of the text output is a monitoring status line \
        ("CERTIFICATES WARNING - signing: expiring in 9 days").

        Exit codes (Nagios plugin convention):
          0  OK        every certificate is valid and not expiring soon
          1  WARNING   a certificate expires within the warning window
          2  CRITICAL  a certificate is expired, not yet valid, revoked, untrusted
                       (does not chain to the trust anchors) or has the wrong key usage
          3  UNKNOWN   a certificate cannot be read: missing file, wrong passphrase,
                       corrupt bundle, unreadable configuration or trust anchors
          64 command-line usage error
        When several certificates are checked the worst state wins (CRITICAL, then UNKNOWN, \
        then WARNING).
        """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Check this PKCS#12 file instead of the configured ones (requires --use).", valueName: "file"))
    var p12: String?

    @Option(help: ArgumentHelp("What the --p12 certificate is for: signing or tls-client.", valueName: "use"))
    var use: CertificateUse?

    @Option(help: ArgumentHelp("Warn when a certificate expires within this many days (default: expiry_warning_days, else 30).",
                               valueName: "days"))
    var warnDays: Int?

    @Option(help: ArgumentHelp("Output format: text or json.", valueName: "format"))
    var format: OutputFormat = .text

    @Option(help: ArgumentHelp("PEM file of the trust anchors (overrides trust_anchors).", valueName: "file"))
    var trustAnchors: String?

    @Option(help: ArgumentHelp("CRL file, repeatable (overrides crl).", valueName: "file"))
    var crl: [String] = []

    @Option(help: ArgumentHelp("File holding the PKCS#12 passphrase (overrides passphrase_file/passphrase_env).", valueName: "file"))
    var passphraseFile: String?

    @Option(help: ArgumentHelp("Environment variable holding the PKCS#12 passphrase.", valueName: "name"))
    var passphraseEnv: String?

    func validate() throws {
        if p12 != nil && use == nil { throw ValidationError("--p12 needs --use signing or --use tls-client") }
        if p12 == nil && use != nil { throw ValidationError("--use only applies with --p12") }
        if passphraseFile != nil && passphraseEnv != nil { throw ValidationError("give --passphrase-file or --passphrase-env, not both") }
        if let warnDays, !(0...3650).contains(warnDays) { throw ValidationError("--warn-days must be between 0 and 3650") }
    }

    func run() async throws {
        LogSetup.bootstrap(level: global.logLevel ?? .warning)
        let now = Date()
        let source: KeyMaterialSource
        let warningDays: Int
        do {
            (source, warningDays) = try resolveSource()
        } catch {
            emit(unknown: error.description, at: now)
        }
        let summary = CertificateCheck.run(source, warningDays: warningDays, at: now)
        for warning in summary.warnings { printError("warning: \(warning)") }
        switch format {
        case .text: print(Self.text(summary))
        case .json: print(Self.json(summary, warningDays: warningDays, at: now))
        }
        if summary.state != .ok { throw ExitCode(summary.state.rawValue) }
    }

    /// Options first, the configuration for whatever they leave out.
    private func resolveSource() throws(ConfigurationError) -> (KeyMaterialSource, Int) {
        let explicitPassphrase: Passphrase.Source? = passphraseFile.map { .file(URL(fileURLWithPath: $0)) }
            ?? passphraseEnv.map { .environment($0) }
        let explicitCRLs = crl.map { URL(fileURLWithPath: $0) }
        if let p12, let use, let explicitPassphrase, let trustAnchors {
            let file = URL(fileURLWithPath: p12)
            return (KeyMaterialSource(authentication: use == .tlsClient ? file : nil, signing: use == .signing ? file : nil,
                                      passphrase: explicitPassphrase, trustAnchors: URL(fileURLWithPath: trustAnchors),
                                      crls: explicitCRLs),
                    warnDays ?? 30)
        }
        let configuration = try PasserelleConfiguration.load(from: global.configPath)
        var source = KeyMaterialSource(configuration.certificates)
        if let p12, let use {
            let file = URL(fileURLWithPath: p12)
            source.authentication = use == .tlsClient ? file : nil
            source.signing = use == .signing ? file : nil
        }
        if let explicitPassphrase { source.passphrase = explicitPassphrase }
        if let trustAnchors { source.trustAnchors = URL(fileURLWithPath: trustAnchors) }
        if !explicitCRLs.isEmpty { source.crls = explicitCRLs }
        return (source, warnDays ?? configuration.certificates.expiryWarningDays)
    }

    /// Reports UNKNOWN (exit 3) when not even the configuration could be read.
    private func emit(unknown reason: String, at date: Date) -> Never {
        switch format {
        case .text:
            print("CERTIFICATES UNKNOWN - \(reason)")
        case .json:
            let report = JSONReport(state: MonitoringState.unknown.description, exitCode: MonitoringState.unknown.rawValue,
                                    checkedAt: date, warningDays: nil, message: reason, warnings: [], certificates: [])
            print(Self.encode(report))
        }
        Foundation.exit(MonitoringState.unknown.rawValue)
    }

    // MARK: Text

    static func text(_ summary: CertificateCheckSummary) -> String {
        let problems = summary.reports.filter { $0.state != .ok }
        let headline = problems.isEmpty
            ? summary.reports.map { "\($0.label): \($0.daysLeft.map { "\($0) days left" } ?? "ok")" }.joined(separator: "; ")
            : problems.map { "\($0.label): \($0.status)" }.joined(separator: "; ")
        var lines = ["CERTIFICATES \(summary.state) - \(headline)"]
        let dates = ISO8601DateFormatter()
        for report in summary.reports {
            lines.append("")
            lines.append("[\(report.state)] \(report.label) (\(report.purpose))")
            lines.append("  file:     \(report.file)")
            if let certificate = report.certificate {
                lines.append("  subject:  \(certificate.subject.rfc2253)")
                lines.append("  issuer:   \(certificate.issuer.rfc2253)")
                lines.append("  serial:   \(certificate.serialNumber)")
                lines.append("  validity: \(dates.string(from: certificate.notBefore)) to \(dates.string(from: certificate.notAfter))"
                    + (report.daysLeft.map { " (\($0) days left)" } ?? ""))
                lines.append("  key usage: \(certificate.keyUsage?.description ?? "(none)")"
                    + (certificate.extendedKeyUsage.map { "; extended: \($0.map(\.name).joined(separator: ", "))" } ?? ""))
                lines.append("  sha256:   \(Certificate.colonHex(certificate.sha256Fingerprint))")
            }
            lines.append("  status:   \(report.status)")
        }
        return lines.joined(separator: "\n")
    }

    // MARK: JSON

    struct JSONCertificate: Encodable {
        var label: String
        var file: String
        var use: String
        var state: String
        var status: String
        var subject: String?
        var issuer: String?
        var serial: String?
        var notBefore: Date?
        var notAfter: Date?
        var daysLeft: Int?
        var keyUsage: [String]?
        var extendedKeyUsage: [String]?
        var sha256Fingerprint: String?
    }

    struct JSONReport: Encodable {
        var state: String
        var exitCode: Int32
        var checkedAt: Date
        var warningDays: Int?
        var message: String?
        var warnings: [String]
        var certificates: [JSONCertificate]
    }

    static func json(_ summary: CertificateCheckSummary, warningDays: Int, at date: Date) -> String {
        let certificates = summary.reports.map { report in
            let certificate = report.certificate
            return JSONCertificate(
                label: report.label, file: report.file,
                use: report.purpose == .signing ? CertificateUse.signing.rawValue : CertificateUse.tlsClient.rawValue,
                state: report.state.description, status: report.status.description,
                subject: certificate?.subject.rfc2253, issuer: certificate?.issuer.rfc2253,
                serial: certificate?.serialNumber, notBefore: certificate?.notBefore, notAfter: certificate?.notAfter,
                daysLeft: report.daysLeft, keyUsage: certificate.map { $0.keyUsage?.names ?? [] },
                extendedKeyUsage: certificate?.extendedKeyUsage?.map(\.name),
                sha256Fingerprint: certificate?.sha256Fingerprint.hexString)
        }
        return encode(JSONReport(state: summary.state.description, exitCode: summary.state.rawValue, checkedAt: date,
                                 warningDays: warningDays, message: nil, warnings: summary.warnings,
                                 certificates: certificates))
    }

    static func encode(_ report: JSONReport) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        // Encoding plain strings, numbers and dates cannot fail.
        return String(decoding: (try? encoder.encode(report)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
