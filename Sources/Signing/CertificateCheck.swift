import Foundation
import OpenSSLKit

/// Monitoring states in the Nagios plugin convention; the raw value is the exit code.
public enum MonitoringState: Int32, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    case ok = 0
    case warning = 1
    case critical = 2
    case unknown = 3

    public var description: String {
        switch self {
        case .ok: "OK"
        case .warning: "WARNING"
        case .critical: "CRITICAL"
        case .unknown: "UNKNOWN"
        }
    }

    /// Which state wins when several certificates are checked: a certificate that is known
    /// to be unusable beats one that could not be read, which beats one expiring soon.
    var rank: Int {
        switch self {
        case .ok: 0
        case .warning: 1
        case .unknown: 2
        case .critical: 3
        }
    }

    /// The worst of several states (OK for none).
    public static func worst(_ states: some Sequence<MonitoringState>) -> MonitoringState {
        states.max { $0.rank < $1.rank } ?? .ok
    }
}

/// The verdict on one certificate.
public enum CertificateStatus: Sendable, Hashable, CustomStringConvertible {
    /// Usable and not expiring within the warning window.
    case ok
    /// Usable, but expires within the warning window.
    case warning(daysLeft: Int)
    /// Not usable: expired, not yet valid, revoked, untrusted or wrong key usage.
    case error(VerificationResult)
    /// The certificate could not be read (missing file, wrong passphrase, corrupt bundle...).
    case unknown(String)

    public var state: MonitoringState {
        switch self {
        case .ok: .ok
        case .warning: .warning
        case .error: .critical
        case .unknown: .unknown
        }
    }

    public var description: String {
        switch self {
        case .ok: "ok"
        case let .warning(days): "expiring in \(days) day\(days == 1 ? "" : "s")"
        case let .error(result): "\(result)"
        case let .unknown(reason): "cannot read: \(reason)"
        }
    }
}

/// What `passerelle certs check` (and the running service, once a day) reports per certificate.
public struct CertificateReport: Sendable {
    /// "authentication", "signing", or the file name for a certificate given by path.
    public var label: String
    /// The PKCS#12 file checked.
    public var file: String
    public var purpose: CertificatePurpose
    /// Nil when the file could not be read.
    public var certificate: Certificate?
    /// Whole days until notAfter (negative once expired); nil when unreadable.
    public var daysLeft: Int?
    public var status: CertificateStatus

    public var state: MonitoringState { status.state }
}

/// The result of checking several certificates.
public struct CertificateCheckSummary: Sendable {
    public var reports: [CertificateReport]
    /// Remarks that are not about one certificate (e.g. a passphrase file readable by others).
    public var warnings: [String]
    /// The overall state, also the exit code of `passerelle certs check`.
    public var state: MonitoringState { MonitoringState.worst(reports.map(\.state)) }
}

/// Checks certificates against the trust anchors, CRLs, the validity period, the key usage
/// their role needs, and the expiry warning window.
public struct CertificateCheck: Sendable {
    public var trustStore: TrustStore
    /// Warn when a certificate expires within this many days.
    public var warningDays: Int

    public init(trustStore: TrustStore, warningDays: Int) {
        self.trustStore = trustStore
        self.warningDays = warningDays
    }

    /// Whole days from `date` to the certificate's notAfter, rounded down (negative once
    /// expired). This is the value to log daily and to expose as a gauge metric.
    public static func daysLeft(_ certificate: Certificate, at date: Date = Date()) -> Int {
        Int((certificate.notAfter.timeIntervalSince(date) / 86_400).rounded(.down))
    }

    /// Checks one certificate; `intermediates` help build the chain but are not trusted.
    public func check(_ certificate: Certificate, intermediates: [Certificate] = [], purpose: CertificatePurpose,
                      label: String, file: String, at date: Date = Date()) -> CertificateReport {
        let result = trustStore.verify(certificate, intermediates: intermediates, at: date, purpose: purpose)
        let days = Self.daysLeft(certificate, at: date)
        let status: CertificateStatus
        if result != .valid {
            status = .error(result)
        } else if certificate.notAfter.timeIntervalSince(date) <= Double(warningDays) * 86_400 {
            status = .warning(daysLeft: days)
        } else {
            status = .ok
        }
        return CertificateReport(label: label, file: file, purpose: purpose, certificate: certificate,
                                 daysLeft: days, status: status)
    }

    /// Checks the certificate of a loaded bundle, its own CA certificates serving as intermediates.
    public func check(_ bundle: PKCS12Bundle, role: CertificateRole, at date: Date = Date()) -> CertificateReport {
        check(bundle.certificate, intermediates: bundle.chain, purpose: role.purpose,
              label: role.rawValue, file: bundle.source, at: date)
    }

    /// Reads and checks every certificate the source names. Never throws: what cannot be
    /// read becomes an `.unknown` report, so one bad file does not hide the other certificate.
    public static func run(_ source: KeyMaterialSource, warningDays: Int, at date: Date = Date(),
                           environment: [String: String] = ProcessInfo.processInfo.environment) -> CertificateCheckSummary {
        let roles = CertificateRole.allCases.compactMap { role -> (CertificateRole, URL)? in
            let url = role == .authentication ? source.authentication : source.signing
            return url.map { (role, $0) }
        }
        func unreadable(_ reason: String) -> CertificateCheckSummary {
            CertificateCheckSummary(reports: roles.map { role, url in
                CertificateReport(label: role.rawValue, file: url.path, purpose: role.purpose, certificate: nil,
                                  daysLeft: nil, status: .unknown(reason))
            }, warnings: [])
        }
        let passphrase: Passphrase
        do { passphrase = try Passphrase.read(from: source.passphrase, environment: environment) } catch {
            return unreadable(KeyMaterialError.passphrase(error).description)
        }
        let trustStore: TrustStore
        do { trustStore = try KeyMaterial.loadTrustStore(source) } catch { return unreadable(error.description) }
        let checker = CertificateCheck(trustStore: trustStore, warningDays: warningDays)
        let reports = roles.map { role, url in
            do {
                return checker.check(try PKCS12Bundle.load(path: url, passphrase: passphrase), role: role, at: date)
            } catch {
                return CertificateReport(label: role.rawValue, file: url.path, purpose: role.purpose, certificate: nil,
                                         daysLeft: nil, status: .unknown(String(describing: error)))
            }
        }
        return CertificateCheckSummary(reports: reports, warnings: passphrase.warnings)
    }
}

extension KeyMaterial {
    /// Checks the loaded certificates without reading the files again: what the running
    /// service logs once a day (see ``DailySchedule``) and exports as days-left metrics.
    public func check(warningDays: Int, at date: Date = Date()) -> CertificateCheckSummary {
        let checker = CertificateCheck(trustStore: trustStore, warningDays: warningDays)
        let reports = CertificateRole.allCases.compactMap { role in
            bundle(role).map { checker.check($0, role: role, at: date) }
        }
        return CertificateCheckSummary(reports: reports, warnings: warnings)
    }
}

/// Tells a long-running service when a daily task (the certificate expiry log line) is due.
public struct DailySchedule: Sendable {
    public private(set) var lastRun: Date?
    public var interval: TimeInterval

    public init(interval: TimeInterval = 86_400) { self.interval = interval }

    /// True (and remembers `date`) when the task has never run or ran at least `interval` ago.
    public mutating func isDue(at date: Date = Date()) -> Bool {
        if let lastRun, date.timeIntervalSince(lastRun) < interval { return false }
        lastRun = date
        return true
    }
}
