import Foundation
import OpenSSLKit
import PasserelleCore
import Synchronization
import XMLSecKit

/// Digest algorithm of the produced signatures.
public enum SignatureDigestAlgorithm: String, Sendable, CaseIterable, Codable {
    /// SHA-256 (default).
    case sha256
    /// SHA-1, only where a receiver still demands it.
    case sha1

    var xmlsec: XMLDigestAlgorithm {
        switch self {
        case .sha256: .sha256
        case .sha1: .sha1
        }
    }
}

/// The structure's signing key and certificate, plus the trust store (anchors and CRLs)
/// used to refuse signing with a certificate that is expired, not yet valid, untrusted,
/// revoked or not meant for signatures.
public struct SigningCredentials: Sendable {
    let key: XMLSecSigningKey
    let trustStore: TrustStore?
    private let lastChainCheck = ChainCheckCache()

    /// The signing certificate.
    public var certificate: Certificate { key.certificate }
    /// Subject DN of the signing certificate (RFC 2253).
    public var certificateSubject: String { key.certificate.subject.rfc2253 }
    /// Validity period of the signing certificate.
    public var certificateValidity: ClosedRange<Date> { key.certificate.notBefore...key.certificate.notAfter }
    /// The certificates of the PKCS#12, signing certificate first.
    var chain: [Certificate] { key.chain }

    /// Loads the PKCS#12 with its passphrase. Without a trust store only the validity dates
    /// are checked before signing.
    public init(pkcs12: Data, passphrase: Passphrase, trustStore: TrustStore?) throws(SigningError) {
        do {
            key = try XMLSecSigningKey(pkcs12: pkcs12, passphrase: passphrase)
        } catch {
            throw .xmlsec(error)
        }
        self.trustStore = trustStore
    }

    /// From a bundle already loaded (``KeyMaterial``): the .p12 is not read or parsed again.
    public init(bundle: PKCS12Bundle, trustStore: TrustStore?) throws(SigningError) {
        do { key = try XMLSecSigningKey(bundle: bundle) } catch { throw .xmlsec(error) }
        self.trustStore = trustStore
    }

    /// The signing bundle of loaded key material, checked against its trust store.
    public init(_ keys: KeyMaterial) throws(SigningError) {
        guard let bundle = keys.signing else { throw .credentials("no signing PKCS#12 configured ([certificates] signing)") }
        try self.init(bundle: bundle, trustStore: keys.trustStore)
    }

    /// The signing bundle of the configuration's `[certificates]` section, loaded on its own
    /// (tools such as `selfcheck`; the service builds its credentials from the ``KeyMaterial`` it loaded).
    public init(_ source: KeyMaterialSource, environment: [String: String] = ProcessInfo.processInfo.environment) throws(SigningError) {
        guard source.signing != nil else { throw .credentials("no signing PKCS#12 configured ([certificates] signing)") }
        var signingOnly = source
        signingOnly.authentication = nil
        signingOnly.serverIdentity = nil
        let keys: KeyMaterial
        do { keys = try KeyMaterial.load(signingOnly, environment: environment) } catch { throw .credentials("\(error)") }
        try self.init(keys)
    }

    /// Throws unless the certificate may sign at `time`: within its validity period and,
    /// with a trust store, chaining to its anchors, not revoked by its CRLs and with a key
    /// usage that allows signatures.
    public func checkUsable(at time: Date) throws(SigningError) {
        let certificate = key.certificate
        guard certificate.notBefore <= time, time <= certificate.notAfter else {
            throw .certificateNotValidAt(subject: certificateSubject, notBefore: certificate.notBefore,
                                         notAfter: certificate.notAfter, time: time)
        }
        guard let trustStore else { return }
        // The anchors and CRLs are fixed for the life of these credentials, so a chain verdict
        // stays true for a short while: re-verified at most once a minute (and for any time
        // outside that window, e.g. back-dated signatures).
        let recent = lastChainCheck.withLock { last in last.map { abs(time.timeIntervalSince($0)) < 60 } ?? false }
        if recent { return }
        let verdict = trustStore.verify(certificate, intermediates: Array(key.chain.dropFirst()), at: time, purpose: .signing)
        guard verdict.isValid else {
            throw .certificateRejected(subject: certificateSubject, reason: verdict.description)
        }
        lastChainCheck.withLock { $0 = time }
    }

    func sign(template: String, xmlDeclaration: Bool = true) throws(SigningError) -> Data {
        do {
            return try XMLSigner.sign(template: Data(template.utf8), key: key, xmlDeclaration: xmlDeclaration)
        } catch {
            throw .xmlsec(error)
        }
    }
}

/// When the signing chain last verified (see `SigningCredentials.checkUsable`).
final class ChainCheckCache: Sendable {
    private let last = Mutex<Date?>(nil)
    func withLock<T>(_ body: (inout Date?) -> T) -> T { last.withLock { body(&$0) } }
}

// MARK: - Shared helpers for the signature builders

/// XML escaping (and refusal of characters XML cannot carry) come from PasserelleCore's template
/// rules, the project's single implementation of them (no template rendered per value).
private func xmlValue(_ value: String) throws -> String {
    try Template.escapedXML(value, key: "v", template: "XML value")
}

extension String {
    /// Escaped for XML text and attribute values. Builder inputs are checked with
    /// `Identifiers.isXMLText` first; a character XML cannot carry that still gets here
    /// (from a certificate field) is replaced by U+FFFD rather than producing broken XML.
    var xmlEscaped: String {
        if let escaped = try? xmlValue(self) { return escaped }
        let cleaned = String(String.UnicodeScalarView(unicodeScalars.map { Identifiers.isXMLText(String($0)) ? $0 : "\u{FFFD}" }))
        return (try? xmlValue(cleaned)) ?? ""
    }
}

enum Identifiers {
    /// An ISO OID as XDS uniqueIds are on the DMP (`urn:oid:` references need one).
    static func isOID(_ value: String) -> Bool {
        guard !value.isEmpty, value.count <= 64 else { return false }
        let arcs = value.split(separator: ".", omittingEmptySubsequences: false)
        guard arcs.count >= 2, let first = arcs.first, ["0", "1", "2"].contains(first) else { return false }
        return arcs.allSatisfy { arc in
            !arc.isEmpty && arc.allSatisfy(\.isASCIIDigit) && (arc == "0" || arc.first != "0")
        }
    }

    /// An XML NCName usable as an `Id` attribute value (ASCII subset).
    static func isNCName(_ value: String) -> Bool {
        guard let first = value.first, first.isLetter || first == "_" else { return false }
        return value.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    /// True when every character is allowed in XML 1.0 text (no C0 controls but tab/LF/CR).
    static func isXMLText(_ value: String) -> Bool {
        (try? xmlValue(value)) != nil
    }

    /// xs:dateTime in UTC, whole seconds (`2026-11-23T10:00:00Z`). gmtime_r rather than
    /// Calendar: this runs for every signature and must not touch the time zone database.
    static func xmlDateTime(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var t = tm()
        gmtime_r(&seconds, &t)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(t.tm_year + 1900)-\(two(t.tm_mon + 1))-\(two(t.tm_mday))T\(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec))Z"
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
