import Foundation
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
                findings.append(CheckFinding(severity: .ok, message: "\(key): \(report.file): valid, \(report.daysLeft ?? 0) days left"))
            case let .warning(days):
                findings.append(CheckFinding(severity: .warning, message: """
                    \(key): \(report.file) expires in \(days) day\(days == 1 ? "" : "s"): order its renewal \
                    (docs/operations.md, "Pre-flight and certificate renewal")
                    """))
            case let .error(result):
                findings.append(CheckFinding(severity: .error, message: "\(key): \(report.file): \(result): \(Self.fix(for: result))"))
            case let .unknown(reason):
                findings.append(CheckFinding(severity: .error, message: """
                    \(key): cannot open \(report.file): \(reason): check the file and certificates.passphrase_file / passphrase_env
                    """))
            }
            if let certificate = report.certificate, let problem = Self.finessProblem(certificate, expected: configuration.structure.finess) {
                findings.append(CheckFinding(severity: .warning, message: "\(key): \(problem)"))
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
    static func finessProblem(_ certificate: Certificate, expected: FINESS) -> String? {
        let units = certificate.subject.components.filter { $0.type == "OU" }.map(\.value)
        let identifiers = units.flatMap { unit in
            unit.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
                .filter { $0.count == 9 && $0.dropFirst(2).allSatisfy(\.isNumber) }
        }
        guard !identifiers.isEmpty, !identifiers.contains(expected.value) else { return nil }
        return """
            the certificate is for FINESS \(identifiers.joined(separator: ", ")) (subject OU) but structure.finess is \
            \(expected.value): use this structure's certificates or correct structure.finess
            """
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
                findings.append(CheckFinding(severity: .error, message: "folders.\(key): \(path): \(String(cString: strerror(code))): \(fix)"))
                continue
            }
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                findings.append(CheckFinding(severity: .error, message: "folders.\(key): \(path) is not a folder: point folders.\(key) at a folder"))
                continue
            }
            if access(path, W_OK | X_OK) != 0 {
                let code = errno
                let fix = code == EROFS ? "the file system is mounted read-only: remount it read-write or choose another folder"
                    : "make it writable by the service user (chown passerelle \(path))"
                findings.append(CheckFinding(severity: .error, message: """
                    folders.\(key): \(path) is not writable by uid \(getuid()): \(String(cString: strerror(code))): \(fix)
                    """))
                continue
            }
            if key != "done" { devices.append((key, path, UInt64(info.st_dev))) }
        }
        if let first = devices.first, devices.contains(where: { $0.2 != first.2 }) {
            let list = devices.map { "\($0.0) \($0.1) (device \($0.2))" }.joined(separator: ", ")
            findings.append(CheckFinding(severity: .error, message: """
                folders.inbox, folders.work and folders.error are on different file systems (\(list)): files move \
                between them by rename, put the three folders on one file system
                """))
        }
        if findings.isEmpty { findings.append(CheckFinding(severity: .ok, message: "inbox, work, error and done writable, inbox/work/error on one file system")) }
        return findings
    }
}
