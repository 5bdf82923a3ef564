import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A passphrase (PKCS#12 or key file) or password kept out of logs: its description is
/// redacted. CurlKit never reads one from a file or the environment: the service reads
/// every secret once with OpenSSLKit's `Passphrase` and hands the value in here.
public struct TLSPassphrase: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let value: String

    /// Wraps a passphrase already in memory.
    public init(_ value: String) { self.value = value }

    public var description: String { "<redacted passphrase>" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["value": "<redacted>"]) }
}

/// A client private key in memory (unencrypted PEM), handed to libcurl as
/// `CURLOPT_SSLKEY_BLOB`. Redacted in descriptions; the bytes are zeroed when released
/// (libcurl's own per-transfer copy is freed by libcurl).
public final class TLSKeyBlob: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    // Written once in init, read only afterwards; zeroed in deinit.
    private nonisolated(unsafe) let storage: UnsafeMutableRawBufferPointer
    let count: Int

    public init(pem bytes: UnsafeRawBufferPointer) {
        count = bytes.count
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 1)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        if let base = bytes.baseAddress, count > 0 { storage.baseAddress!.copyMemory(from: base, byteCount: count) }
    }

    deinit {
        explicit_bzero(storage.baseAddress!, storage.count)
        storage.deallocate()
    }

    func withBytes<T, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
        try body(UnsafeRawBufferPointer(rebasing: storage[..<count]))
    }

    public static func == (lhs: TLSKeyBlob, rhs: TLSKeyBlob) -> Bool {
        lhs === rhs || lhs.withBytes { a in rhs.withBytes { b in a.elementsEqual(b) } }
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(count) }  // never the key bytes

    public var description: String { "<redacted private key>" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["key": "<redacted>"]) }
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
    /// The certificate (then its chain) and the unencrypted private key, PEM, in memory
    /// (`CURLOPT_SSLCERT_BLOB` / `CURLOPT_SSLKEY_BLOB`): what the service uses, so that the
    /// .p12 is parsed once at start (the gateway's `KeyMaterial`) and libcurl never opens it.
    case memory(certificateChainPEM: Data, privateKeyPEM: TLSKeyBlob)
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
        case .memory(let chain, let key):
            guard !chain.isEmpty, key.count > 0 else { throw CurlError.configuration("the in-memory client certificate or key is empty") }
        case nil:
            break
        }
        if let maximumVersion, maximumVersion < minimumVersion {
            throw CurlError.configuration("maximum TLS version \(maximumVersion) is below the minimum \(minimumVersion)")
        }
    }
}
