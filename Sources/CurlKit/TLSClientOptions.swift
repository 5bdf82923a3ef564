import Foundation

/// A passphrase (PKCS#12 or key file) kept out of logs: its description is redacted.
public struct TLSPassphrase: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    let value: String

    /// Wraps a passphrase already in memory.
    public init(_ value: String) { self.value = value }

    /// Reads a passphrase file; one trailing line break (as editors write) is dropped.
    public init(contentsOf file: URL) throws(CurlError) {
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw CurlError.configuration("cannot read the passphrase file \(file.path): \(error.localizedDescription)")
        }
        var trimmed = Substring(text)
        if trimmed.hasSuffix("\r\n") { trimmed = trimmed.dropLast(2) } else if trimmed.hasSuffix("\n") { trimmed = trimmed.dropLast() }
        self.value = String(trimmed)
    }

    /// Reads a passphrase from an environment variable.
    public init(environmentVariable name: String) throws(CurlError) {
        guard let value = ProcessInfo.processInfo.environment[name] else {
            throw CurlError.configuration("the environment variable \(name) that should hold the passphrase is not set")
        }
        self.value = value
    }

    public var description: String { "<redacted passphrase>" }
    public var debugDescription: String { description }
}

/// A TLS protocol version bound.
public enum TLSVersion: Int, Sendable, Hashable, Comparable, CustomStringConvertible {
    case v1_2 = 12
    case v1_3 = 13

    public static func < (lhs: TLSVersion, rhs: TLSVersion) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { self == .v1_2 ? "TLS 1.2" : "TLS 1.3" }
}

/// How the client proves its identity (mutual TLS).
public enum TLSClientIdentity: Sendable, Hashable {
    /// A PKCS#12 bundle (key + certificate, typically an IGC-Santé ORG_AUTH_CLI `.p12`).
    case pkcs12(URL, passphrase: TLSPassphrase)
    /// A PEM certificate (optionally followed by its chain) and a PEM private key.
    case pem(certificate: URL, privateKey: URL, keyPassphrase: TLSPassphrase? = nil)
}

/// TLS settings shared by every connection of a client.
///
/// Server verification is always on (peer certificate against `caBundle` only — the system
/// store is never consulted — and host name check); there is deliberately no switch to
/// turn it off.
public struct TLSClientOptions: Sendable, Hashable {
    /// TLS 1.2 suites allowed by the MSSanté/DMP security rules (ANS ECO.1.1.3), in OpenSSL names.
    public static let defaultTLS12Ciphers =
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256"
    /// TLS 1.3 suites: AES-GCM only.
    public static let defaultTLS13CipherSuites = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"

    /// PEM file of the trust anchors (e.g. the IGC-Santé chain); the only CAs trusted.
    public var caBundle: URL
    /// The client certificate, or nil for servers that do not ask for one.
    public var clientIdentity: TLSClientIdentity?
    /// Lowest protocol version offered (default TLS 1.2).
    public var minimumVersion: TLSVersion
    /// Highest protocol version offered; nil means the highest libcurl supports.
    public var maximumVersion: TLSVersion?
    /// OpenSSL cipher list used for TLS 1.2.
    public var tls12Ciphers: String
    /// TLS 1.3 cipher suites.
    public var tls13CipherSuites: String
    /// Optional PEM CRL file; when set, the server certificate's revocation status is checked.
    public var crlFile: URL?

    public init(
        caBundle: URL,
        clientIdentity: TLSClientIdentity? = nil,
        minimumVersion: TLSVersion = .v1_2,
        maximumVersion: TLSVersion? = nil,
        tls12Ciphers: String = TLSClientOptions.defaultTLS12Ciphers,
        tls13CipherSuites: String = TLSClientOptions.defaultTLS13CipherSuites,
        crlFile: URL? = nil
    ) {
        self.caBundle = caBundle
        self.clientIdentity = clientIdentity
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.tls12Ciphers = tls12Ciphers
        self.tls13CipherSuites = tls13CipherSuites
        self.crlFile = crlFile
    }

    /// Checks what can be checked before connecting, so a wrong path is reported as such
    /// rather than as a handshake failure.
    public func validate() throws(CurlError) {
        func readable(_ url: URL, _ role: String) throws(CurlError) {
            guard FileManager.default.isReadableFile(atPath: url.path) else {
                throw CurlError.configuration("the \(role) \(url.path) does not exist or is not readable")
            }
        }
        try readable(caBundle, "CA bundle")
        if let crlFile { try readable(crlFile, "CRL file") }
        switch clientIdentity {
        case .pkcs12(let file, _):
            try readable(file, "client PKCS#12 file")
        case .pem(let certificate, let key, _):
            try readable(certificate, "client certificate")
            try readable(key, "client private key")
        case nil:
            break
        }
        if let maximumVersion, maximumVersion < minimumVersion {
            throw CurlError.configuration("maximum TLS version \(maximumVersion) is below the minimum \(minimumVersion)")
        }
    }
}
