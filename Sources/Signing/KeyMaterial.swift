import Foundation
import OpenSSLKit
import PasserelleCore

/// Which of the structure's certificates, and what it is for.
public enum CertificateRole: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    /// The authentication certificate (IGC-Santé ORG AUTH_CLI): TLS client to the DMP.
    case authentication
    /// The signing certificate (IGC-Santé ORG SIGN): XAdES / VIHF signatures.
    case signing

    /// What the certificate's key usage must allow.
    public var purpose: CertificatePurpose { self == .authentication ? .tlsClient : .signing }
    public var description: String { rawValue }
}

/// Why key material could not be loaded. Messages never contain the passphrase.
public enum KeyMaterialError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The passphrase file or environment variable is missing, unreadable or empty.
    case passphrase(OpenSSLError)
    /// A PKCS#12 bundle could not be read (missing, wrong passphrase, corrupt).
    case bundle(role: CertificateRole, OpenSSLError)
    /// The trust anchors or the CRL could not be read.
    case trust(OpenSSLError)
    /// The TLS server identity (`[mllp] tls_identity`) could not be read.
    case serverIdentity(OpenSSLError)

    public var description: String {
        switch self {
        case let .passphrase(error): "certificates: \(error)"
        case let .bundle(role, error): "\(role) certificate: \(error)"
        case let .trust(error): "trust anchors / CRL: \(error)"
        case let .serverIdentity(error): "[mllp] tls_identity: \(error)"
        }
    }

    public var errorDescription: String? { description }
}

/// Where the key material lives: the `[certificates]` section of the configuration, or
/// the same information given piecemeal (e.g. `passerelle certs check --p12`).
public struct KeyMaterialSource: Sendable, Hashable {
    public var authentication: URL?
    public var signing: URL?
    public var passphrase: Passphrase.Source
    public var trustAnchors: URL
    public var crls: [URL]
    /// PKCS#12 of a TLS server identity (the MLLP listener's `[mllp] tls_identity`), same passphrase.
    public var serverIdentity: URL?

    public init(authentication: URL?, signing: URL?, passphrase: Passphrase.Source, trustAnchors: URL, crls: [URL] = [],
                serverIdentity: URL? = nil) {
        self.authentication = authentication
        self.signing = signing
        self.passphrase = passphrase
        self.trustAnchors = trustAnchors
        self.crls = crls
        self.serverIdentity = serverIdentity
    }

    /// The `[certificates]` section (paths there are already absolute).
    public init(_ certificates: PasserelleConfiguration.Certificates) {
        let passphrase: Passphrase.Source = switch certificates.passphrase {
        case let .file(path): .file(URL(fileURLWithPath: path))
        case let .environment(name): .environment(name)
        }
        self.init(authentication: URL(fileURLWithPath: certificates.authentication),
                  signing: URL(fileURLWithPath: certificates.signing),
                  passphrase: passphrase,
                  trustAnchors: URL(fileURLWithPath: certificates.trustAnchors),
                  crls: certificates.crl.map { [URL(fileURLWithPath: $0)] } ?? [])
    }
}

/// The structure's certificates and keys, loaded from PKCS#12, with the trust store they
/// are checked against.
///
/// `passerelle run` loads this once (``load(_:environment:)``: one passphrase read, each
/// .p12 file opened and parsed once) and hands each part what it needs: the DMP client and
/// the IMAP poller the authentication key as PEM in memory, the SMTP client and the MLLP
/// listener the parsed bundles, the signers ``SigningCredentials`` built from the signing
/// bundle. Nothing else in the service opens a .p12.
public struct KeyMaterial: Sendable {
    /// TLS client certificate and key (nil when the source names none).
    public let authentication: PKCS12Bundle?
    /// Signing certificate and key (nil when the source names none).
    public let signing: PKCS12Bundle?
    /// TLS server identity (nil when the source names none).
    public let serverIdentity: PKCS12Bundle?
    public let trustStore: TrustStore
    /// Remarks for the log (e.g. a passphrase file readable by others); never secret.
    public let warnings: [String]

    /// Loads every bundle the source names; fails on the first unreadable one.
    public static func load(_ source: KeyMaterialSource,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(KeyMaterialError) -> KeyMaterial {
        let passphrase: Passphrase
        do { passphrase = try Passphrase.read(from: source.passphrase, environment: environment) } catch {
            throw .passphrase(error)
        }
        let trustStore = try loadTrustStore(source)
        func bundle(_ url: URL?, _ role: CertificateRole) throws(KeyMaterialError) -> PKCS12Bundle? {
            guard let url else { return nil }
            do { return try PKCS12Bundle.load(path: url, passphrase: passphrase) } catch { throw .bundle(role: role, error) }
        }
        var server: PKCS12Bundle?
        if let url = source.serverIdentity {
            do { server = try PKCS12Bundle.load(path: url, passphrase: passphrase) } catch { throw .serverIdentity(error) }
        }
        return KeyMaterial(authentication: try bundle(source.authentication, .authentication),
                           signing: try bundle(source.signing, .signing), serverIdentity: server,
                           trustStore: trustStore, warnings: passphrase.warnings)
    }

    /// The bundle of `role`, or an error naming the missing `[certificates]` key.
    public func required(_ role: CertificateRole) throws(KeyMaterialError) -> PKCS12Bundle {
        guard let bundle = bundle(role) else {
            throw .bundle(role: role, .fileUnreadable(file: "[certificates] \(role.rawValue)", reason: "not configured"))
        }
        return bundle
    }

    /// Loads the key material of a configuration.
    public static func load(_ configuration: PasserelleConfiguration,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(KeyMaterialError) -> KeyMaterial {
        try load(KeyMaterialSource(configuration.certificates), environment: environment)
    }

    static func loadTrustStore(_ source: KeyMaterialSource) throws(KeyMaterialError) -> TrustStore {
        do { return try TrustStore(anchorsFile: source.trustAnchors, crlFiles: source.crls) } catch { throw .trust(error) }
    }

    /// The bundle of a role.
    public func bundle(_ role: CertificateRole) -> PKCS12Bundle? {
        role == .authentication ? authentication : signing
    }
}
