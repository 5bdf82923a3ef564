import Foundation
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

/// The structure's signing key and certificate, plus the trust anchors (and CRL) used to
/// refuse signing with a certificate that is expired, not yet valid, untrusted or revoked.
public struct SigningCredentials: Sendable {
    let key: XMLSecSigningKey
    let trustStore: XMLSecTrustStore?
    /// Parsed chain (leaf first), parsed once: certificate parsing is slow under OpenSSL 3.
    let chain: [X509CertificateInfo]
    private let lastChainCheck = ChainCheckCache()

    /// Subject DN of the signing certificate (RFC 2253).
    public var certificateSubject: String { key.certificate.subjectRFC2253 }
    /// Validity period of the signing certificate.
    public var certificateValidity: ClosedRange<Date> { key.certificate.notBefore...key.certificate.notAfter }

    /// Loads the PKCS#12 with its passphrase; `trustAnchors` are PEM files holding the CA
    /// certificates and, when revocation must be checked, the CRLs.
    public init(pkcs12: Data, passphrase: String, trustAnchorsPEM: [Data] = []) throws(SigningError) {
        do {
            key = try XMLSecSigningKey(pkcs12: pkcs12, passphrase: passphrase)
            trustStore = trustAnchorsPEM.isEmpty ? nil : try XMLSecTrustStore(pem: trustAnchorsPEM)
            chain = key.chainDER.compactMap { X509CertificateInfo(der: $0) }
        } catch {
            throw .xmlsec(error)
        }
    }

    /// Reads the PKCS#12, a passphrase file (trailing newline ignored) and PEM trust anchors / CRLs.
    public init(pkcs12File: URL, passphraseFile: URL, trustAnchorFiles: [URL] = []) throws(SigningError) {
        let bundle: Data, passphrase: String, anchors: [Data]
        do {
            bundle = try Data(contentsOf: pkcs12File)
            passphrase = try String(contentsOf: passphraseFile, encoding: .utf8)
                .trimmingCharacters(in: .newlines)
            anchors = try trustAnchorFiles.map { try Data(contentsOf: $0) }
        } catch {
            throw .credentials("cannot read \(error.localizedDescription)")
        }
        try self.init(pkcs12: bundle, passphrase: passphrase, trustAnchorsPEM: anchors)
    }

    /// Throws unless the certificate may sign at `time`: within its validity period and,
    /// when trust anchors were given, chaining to them and not revoked by their CRLs.
    public func checkUsable(at time: Date) throws(SigningError) {
        let certificate = key.certificate
        guard certificate.notBefore <= time, time <= certificate.notAfter else {
            throw .certificateNotValidAt(subject: certificate.subjectRFC2253, notBefore: certificate.notBefore,
                                         notAfter: certificate.notAfter, time: time)
        }
        guard let trustStore else { return }
        // The anchors and CRLs are fixed for the life of these credentials, so a chain verdict
        // stays true for a short while; re-verified at most once a minute (and for any time
        // outside that window, e.g. back-dated signatures).
        let recent = lastChainCheck.withLock { last in last.map { abs(time.timeIntervalSince($0)) < 60 } ?? false }
        if recent { return }
        if let reason = trustStore.verificationFailure(chainDER: key.chainDER, at: time) {
            throw .certificateRejected(subject: certificate.subjectRFC2253, reason: reason)
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

extension String {
    /// Escaped for XML text and attribute values.
    var xmlEscaped: String {
        var out = ""
        out.reserveCapacity(count)
        for character in self {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\r": out += "&#13;"
            default: out.append(character)
            }
        }
        return out
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
        value.unicodeScalars.allSatisfy { scalar in
            switch scalar.value {
            case 0x9, 0xA, 0xD, 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: true
            default: false
            }
        }
    }

    static func xmlDateTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
