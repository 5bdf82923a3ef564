import CurlKit
import DMP
import Foundation
import Gateway
import Journal
import MSSante
import OpenSSLKit
import PasserelleCore
import Signing

/// `config check`: opens the PKCS#12 bundles the service will open (passphrase, chain to the
/// trust anchors, CRL, key usage, expiry) and compares the FINESS in their subject with
/// `[structure] finess`. Every certificate is reported, one bad file does not hide the other.
struct CertificatesConfigurationCheck: ConfigurationCheck {
    let name = "certificates"
    let isPreflight = true

    func run(_ configuration: PasserelleConfiguration) async -> [CheckFinding] {
        let certificates = configuration.certificates
        let summary = CertificateCheck.run(KeyMaterialSource(certificates), warningDays: certificates.expiryWarningDays)
        var findings = summary.warnings.map { CheckFinding(severity: .warning, message: $0) }
        for report in summary.reports {
            let key = "certificates.\(report.label)"
            switch report.status {
            case .ok:
                findings.append(CheckFinding(severity: .ok, key: key, message: "\(report.file): valid, \(report.daysLeft ?? 0) days left"))
            case let .warning(days):
                findings.append(CheckFinding(severity: .warning, key: key, message: "\(report.file) expires in \(days) day\(days == 1 ? "" : "s")",
                                             fix: "order its renewal (docs/operations.md, \"Pre-flight and certificate renewal\")"))
            case let .error(result):
                findings.append(CheckFinding(severity: .error, key: key, message: "\(report.file): \(result)", fix: Self.fix(for: result)))
            case let .unknown(reason):
                findings.append(CheckFinding(severity: .error, key: key, message: "cannot open \(report.file): \(reason)",
                                             fix: "check the file and certificates.passphrase_file / passphrase_env"))
            }
            if let certificate = report.certificate, let problem = Self.finessProblem(certificate, expected: configuration.structure.finess) {
                findings.append(CheckFinding(severity: .warning, key: key, message: problem.message, fix: problem.fix))
            }
        }
        return findings
    }

    static func fix(for result: VerificationResult) -> String {
        switch result {
        case .expired: "install the renewed certificate"
        case .notYetValid: "check the system clock or wait for the validity start"
        case .revoked: "order a new certificate from the ANS"
        case .untrusted: "certificates.trust_anchors must hold the CA that issued it (IGC-Santé roots in production)"
        case .wrongUsage: "use the certificate made for this use (ORG_AUTH_CLI for authentication, ORG_SIGN for signing)"
        case .other, .valid: "check certificates.trust_anchors and certificates.crl (a CRL past its nextUpdate must be refreshed)"
        }
    }

    /// ANS structure certificates carry the structure's identifier in the subject OU (the test PKI
    /// writes "FINESS 100000001"); nil when it matches or no OU holds a 9-character identifier.
    static func finessProblem(_ certificate: Certificate, expected: FINESS) -> (message: String, fix: String)? {
        let units = certificate.subject.components.filter { $0.type == "OU" }.map(\.value)
        let identifiers = units.flatMap { unit in
            unit.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
                .filter { $0.count == 9 && $0.dropFirst(2).allSatisfy(\.isNumber) }
        }
        guard !identifiers.isEmpty, !identifiers.contains(expected.value) else { return nil }
        return ("the certificate is for FINESS \(identifiers.joined(separator: ", ")) (subject OU) but structure.finess is \(expected.value)",
                "use this structure's certificates or correct structure.finess")
    }
}

/// `config check`: the folders exist, are directories writable by the user running the check
/// (the service user under ExecStartPre) and inbox/work/error share one file system, since a
/// claim is an atomic rename between them.
struct FoldersConfigurationCheck: ConfigurationCheck {
    let name = "folders"
    let isPreflight = true

    func run(_ configuration: PasserelleConfiguration) async -> [CheckFinding] {
        let f = configuration.folders
        let folders = [("inbox", f.inbox), ("work", f.work), ("error", f.error), ("done", f.done)]
        var findings: [CheckFinding] = []
        var devices: [(String, String, UInt64)] = []
        for (key, path) in folders {
            var info = stat()
            guard stat(path, &info) == 0 else {
                let code = errno
                let fix = code == ENOENT ? "create it (install -d -o passerelle -m 0700 \(path))" : "check its parent folders' permissions"
                findings.append(CheckFinding(severity: .error, key: "folders.\(key)", message: "\(path): \(String(cString: strerror(code)))", fix: fix))
                continue
            }
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                findings.append(CheckFinding(severity: .error, key: "folders.\(key)", message: "\(path) is not a folder", fix: "point folders.\(key) at a folder"))
                continue
            }
            if access(path, W_OK | X_OK) != 0 {
                let code = errno
                let fix = code == EROFS ? "the file system is mounted read-only: remount it read-write or choose another folder"
                    : "make it writable by the service user (chown passerelle \(path))"
                findings.append(CheckFinding(severity: .error, key: "folders.\(key)",
                                             message: "\(path) is not writable by uid \(getuid()): \(String(cString: strerror(code)))", fix: fix))
                continue
            }
            if key != "done" { devices.append((key, path, UInt64(info.st_dev))) }
        }
        if let first = devices.first, devices.contains(where: { $0.2 != first.2 }) {
            let list = devices.map { "\($0.0) \($0.1) (device \($0.2))" }.joined(separator: ", ")
            let message = "folders.inbox, folders.work and folders.error are on different file systems (\(list))"
            let fix = "files move between them by rename, put the three folders on one file system"
            findings.append(CheckFinding(severity: .error, key: "folders.work", message: message, fix: fix, text: "\(message): \(fix)"))
        }
        if findings.isEmpty { findings.append(CheckFinding(severity: .ok, message: "inbox, work, error and done writable, inbox/work/error on one file system")) }
        return findings
    }
}

/// `config check`: the journal opens and its schema version is one this binary knows — SQLite
/// opened read-only, PostgreSQL connected with a short timeout; nothing is created or migrated.
/// An older schema is a note (the service migrates it at start), a newer one an error.
struct JournalConfigurationCheck: ConfigurationCheck {
    let name = "journal"
    let isPreflight = true

    func run(_ configuration: PasserelleConfiguration) async -> [CheckFinding] {
        var findings: [CheckFinding] = []
        let key: String
        switch configuration.journal {
        case .sqlite(let path):
            key = "journal.path"
            // The service writes the database, its -wal/-shm and the blob folder beside it.
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var info = stat()
            if stat(folder, &info) != 0 || access(folder, W_OK | X_OK) != 0 {
                let code = errno
                let cause = FileSystemCause(errno: code)
                return [CheckFinding(severity: .error, key: key, message: "\(folder) (the journal's folder): \(String(cString: strerror(code)))",
                                     fix: cause.fix(folder: folder, key: key))]
            }
        case .postgresql:
            key = "journal.url"
        }
        let status: JournalSchemaStatus
        do { status = try Journals.schemaStatus(configuration.journal) } catch {
            switch configuration.journal {
            case .sqlite(let path):
                return [CheckFinding(severity: .error, key: key, message: "cannot open the journal \(path): \(error)",
                                     fix: "check that it is a passerelle journal readable by the service user, or restore it from a backup")]
            case .postgresql:
                return [CheckFinding(severity: .error, key: key, message: "cannot open the journal: \(error)",
                                     fix: "check that PostgreSQL runs and answers at journal.url (host, port, database, user) and the "
                                        + "password in journal.password_file (pg_isready -d URL tells whether it answers)")]
            }
        }
        let place: String = switch configuration.journal {
        case .sqlite(let path): "sqlite \(path)"
        case .postgresql(let url, _, _, _, _): "postgresql \(PostgresRedaction.redacted(url))"
        }
        if let found = status.found {
            if status.isTooNew {
                findings.append(CheckFinding(severity: .error, key: key, message: """
                    \(place): schema version \(found) is newer than this passerelle's (\(status.supported)): it was written by a newer passerelle
                    """, fix: "install that version of passerelle again, or restore a backup made with this one"))
            } else if status.needsMigration {
                findings.append(CheckFinding(severity: .note, key: key, message: found == 0
                    ? "\(place): no journal tables yet: created (schema version \(status.supported)) at start"
                    : "\(place): schema version \(found), will be migrated to \(status.supported) at start"))
            } else {
                findings.append(CheckFinding(severity: .ok, key: key, message: "\(place): opens, schema version \(found) (current)"))
            }
        } else {
            findings.append(CheckFinding(severity: .note, key: key, message: "\(place): no journal yet: created (schema version \(status.supported)) at start"))
        }
        return findings
    }
}

/// Hides a PostgreSQL password in a URL (the journal's own rule, for messages).
enum PostgresRedaction {
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }
}

/// `config check --connect`: what the first send will do, without sending anything — a TLS
/// handshake with the DMP endpoint (mutual TLS with the authentication certificate, the
/// server verified against `[dmp] ca`) and with the SMTP relay (STARTTLS or implicit TLS as
/// configured, EHLO over TLS, QUIT). Each peer is reported on its own.
struct ConnectionConfigurationCheck: ConfigurationCheck {
    let name = "connect"
    let isPreflight = true
    var needsConnect: Bool { true }

    func run(_ c: PasserelleConfiguration) async -> [CheckFinding] {
        guard c.dmp.enabled || c.mssante.enabled else {
            return [CheckFinding(severity: .ok, key: nil, message: "the DMP and MSSanté are disabled: nothing to connect to")]
        }
        let authentication: PKCS12Bundle
        do {
            guard let source = GatewayService.keyMaterialSource(c), let bundle = try KeyMaterial.load(source).authentication else {
                return [CheckFinding(severity: .error, key: "certificates.authentication", message: "no authentication certificate is configured",
                                     fix: "set certificates.authentication")]
            }
            authentication = bundle
        } catch {
            return [CheckFinding(severity: .error, key: "certificates.authentication",
                                 message: "cannot load the client certificate, no connection tried: \(error)",
                                 fix: "correct the certificates findings above first")]
        }
        var findings: [CheckFinding] = []
        if c.dmp.enabled { findings.append(await dmp(c, authentication)) }
        if c.mssante.enabled { findings.append(await smtp(c, authentication)) }
        return findings
    }

    /// A GET on the endpoint: any HTTP answer means TCP, the TLS handshake (both ways) and the
    /// server's certificate check went through; the answer itself does not matter.
    func dmp(_ c: PasserelleConfiguration, _ authentication: PKCS12Bundle) async -> CheckFinding {
        let key = "dmp.endpoint"
        do {
            let settings = try DMPClientSettings(c.dmp)
            let server = "\(settings.endpoint.host ?? "?"):\(settings.endpoint.port ?? 443)"
            do {
                let tls = TLSClientOptions(caBundle: settings.serverCA, clientIdentity: try .inMemory(authentication), crlFile: settings.crl)
                let client = try HTTPClient(tls: tls, timeouts: CurlTimeouts(connect: .seconds(10), total: .seconds(20)),
                                            maxConnectionsPerHost: 1, userAgent: "Passerelle-config-check")
                let response = try await client.send(HTTPRequest(method: "GET", url: settings.endpoint))
                return CheckFinding(severity: .ok, key: key, message: """
                    TLS handshake with \(server) done (client certificate sent, server verified against dmp.ca); it answered HTTP \(response.status)
                    """)
            } catch let error as CurlError {
                return CheckFinding(severity: .error, key: key, message: "TLS handshake with \(server) failed: \(error)", fix: Self.fix(error.kind))
            }
        } catch {
            return CheckFinding(severity: .error, key: key, message: "cannot connect: \(error)", fix: "check dmp.endpoint, dmp.ca and certificates.authentication")
        }
    }

    static func fix(_ kind: CurlError.Kind) -> String {
        switch kind {
        case .connectionFailed, .timeout:
            "check that dmp.endpoint is right and reachable from this host (DNS, firewall, proxy)"
        case .peerCertificate:
            "dmp.ca must hold the CA that issued the DMP server's certificate (and dmp.crl, when set, be current)"
        case .clientCertificate, .tlsHandshake:
            "the server refused the handshake: check certificates.authentication (its CA must be one the DMP trusts) and its validity"
        default:
            "check dmp.endpoint, dmp.ca and certificates.authentication"
        }
    }

    func smtp(_ c: PasserelleConfiguration, _ authentication: PKCS12Bundle) async -> CheckFinding {
        let m = c.mssante
        let key = "mssante.smtp_host"
        let mode = m.smtpTLS == .implicit ? "implicit TLS" : "STARTTLS"
        let server = "\(m.smtpHost):\(m.smtpPort)"
        guard (1...65535).contains(m.smtpPort), !m.smtpHost.isEmpty else {
            return CheckFinding(severity: .error, key: key, message: "no relay configured", fix: "set mssante.smtp_host and mssante.smtp_port")
        }
        var configuration = SMTPConfiguration(host: m.smtpHost, port: UInt16(m.smtpPort), security: m.smtpTLS == .implicit ? .implicitTLS : .startTLS,
                                              trustedCAFile: URL(fileURLWithPath: c.certificates.trustAnchors),
                                              clientCertificate: authentication, timeout: 10)
        configuration.tls.crlFiles = m.crl.map { [URL(fileURLWithPath: $0)] } ?? []
        do {
            let session = try await SMTPClient(configuration: configuration).checkConnection()
            return CheckFinding(severity: .ok, key: key, message: """
                \(mode) handshake with \(server) done (client certificate sent, server verified against certificates.trust_anchors), \
                \(session.tlsVersion) \(session.cipher), EHLO over TLS offers DSN
                """)
        } catch {
            return CheckFinding(severity: .error, key: key, message: "\(mode) handshake with \(server) failed: \(error)", fix: """
                check mssante.smtp_host, mssante.smtp_port and mssante.smtp_tls (starttls on 587, implicit on 465), that the relay \
                is reachable from this host, and that certificates.trust_anchors holds the CA of the relay's certificate
                """)
        }
    }
}
