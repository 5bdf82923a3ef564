import COpenSSL
import Foundation

/// What a certificate is checked for.
public enum CertificatePurpose: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    /// TLS client authentication: extendedKeyUsage must list clientAuth, keyUsage (if
    /// present) digitalSignature or keyAgreement.
    case tlsClient
    /// TLS server: extendedKeyUsage must list serverAuth.
    case tlsServer
    /// Document/XML signatures: keyUsage must include nonRepudiation (the signing
    /// certificates of IGC-Santé carry nonRepudiation + digitalSignature).
    case signing

    public var description: String {
        switch self {
        case .tlsClient: "TLS client authentication"
        case .tlsServer: "TLS server"
        case .signing: "signing (nonRepudiation)"
        }
    }

    /// Checks keyUsage/extendedKeyUsage; OpenSSL's own purpose check accepts a certificate
    /// without extendedKeyUsage for TLS, which would let a signing certificate authenticate.
    public func allows(_ certificate: Certificate) -> Bool {
        let usage = certificate.keyUsage
        let extended = certificate.extendedKeyUsage
        switch self {
        case .tlsClient:
            guard extended?.contains(.clientAuth) == true else { return false }
            return usage.map { !$0.isDisjoint(with: [.digitalSignature, .keyAgreement]) } ?? true
        case .tlsServer:
            guard extended?.contains(.serverAuth) == true else { return false }
            return usage.map { !$0.isDisjoint(with: [.digitalSignature, .keyEncipherment, .keyAgreement]) } ?? true
        case .signing:
            return usage?.contains(.nonRepudiation) == true
        }
    }

    var opensslPurpose: Int32? {
        switch self {
        case .tlsClient: X509_PURPOSE_SSL_CLIENT
        case .tlsServer: X509_PURPOSE_SSL_SERVER
        case .signing: nil
        }
    }
}

/// Revocation reasons (RFC 5280 CRLReason).
public enum RevocationReason: Int, Sendable, Hashable, CustomStringConvertible {
    case unspecified = 0, keyCompromise = 1, cACompromise = 2, affiliationChanged = 3, superseded = 4
    case cessationOfOperation = 5, certificateHold = 6, removeFromCRL = 8, privilegeWithdrawn = 9, aACompromise = 10

    public var description: String {
        switch self {
        case .unspecified: "unspecified"
        case .keyCompromise: "keyCompromise"
        case .cACompromise: "cACompromise"
        case .affiliationChanged: "affiliationChanged"
        case .superseded: "superseded"
        case .cessationOfOperation: "cessationOfOperation"
        case .certificateHold: "certificateHold"
        case .removeFromCRL: "removeFromCRL"
        case .privilegeWithdrawn: "privilegeWithdrawn"
        case .aACompromise: "aACompromise"
        }
    }
}

/// The outcome of a chain verification.
public enum VerificationResult: Sendable, Hashable, CustomStringConvertible {
    case valid
    case expired(notAfter: Date)
    case notYetValid(notBefore: Date)
    /// Revoked per a CRL; the reason is nil when the CRL entry states none.
    case revoked(date: Date, reason: RevocationReason?)
    /// No path to a trust anchor; `issuer` is the DN of the certificate's issuer that could not be found/trusted.
    case untrusted(issuer: String)
    /// Chains fine but its key usage does not allow the purpose.
    case wrongUsage(expected: CertificatePurpose)
    /// Any other failure, with OpenSSL's verify message.
    case other(String)

    public var isValid: Bool { self == .valid }

    public var description: String {
        let format = ISO8601DateFormatter()
        switch self {
        case .valid: return "valid"
        case let .expired(date): return "certificate has expired (notAfter \(format.string(from: date)))"
        case let .notYetValid(date): return "certificate is not yet valid (notBefore \(format.string(from: date)))"
        case let .revoked(date, reason):
            return "certificate revoked on \(format.string(from: date))" + (reason.map { " (\($0))" } ?? "")
        case let .untrusted(issuer): return "certificate does not chain to a trust anchor (issuer \(issuer))"
        case let .wrongUsage(expected): return "key usage does not allow \(expected)"
        case let .other(message): return message
        }
    }
}

/// Owns an X509_STORE and X509_CRLs (reference counted, internally locked by OpenSSL).
final class StoreHandle: @unchecked Sendable {
    let store: OpaquePointer
    let crls: [OpaquePointer]
    init(store: OpaquePointer, crls: [OpaquePointer]) {
        self.store = store
        self.crls = crls
    }
    deinit {
        crls.forEach { X509_CRL_free($0) }
        X509_STORE_free(store)
    }
}

/// Trust anchors (the IGC-Santé roots in production, the test CA in tests) and optional CRLs.
public struct TrustStore: Sendable {
    let handle: StoreHandle
    /// The anchor certificates.
    public let anchors: [Certificate]
    /// True when CRLs were given: verification then requires the leaf to be covered by a CRL.
    public var checksRevocation: Bool { !handle.crls.isEmpty }

    /// Builds a store from anchor certificates and DER/PEM CRLs.
    public init(anchors: [Certificate], crls: [Data] = [], crlSource: String = "CRL data") throws(OpenSSLError) {
        ErrorQueue.clear()
        guard !anchors.isEmpty else { throw .invalidCertificate(source: "trust anchors", detail: "no trust anchor given") }
        guard let store = X509_STORE_new() else {
            throw .operationFailed(operation: "X509_STORE_new", detail: ErrorQueue.drain())
        }
        var parsedCRLs: [OpaquePointer] = []
        for data in crls {
            do { parsedCRLs += try Self.parseCRLs(data, source: crlSource) } catch {
                parsedCRLs.forEach { X509_CRL_free($0) }
                X509_STORE_free(store)
                throw error
            }
        }
        handle = StoreHandle(store: store, crls: parsedCRLs)
        for anchor in anchors { X509_STORE_add_cert(store, anchor.handle.pointer) }
        for crl in parsedCRLs { X509_STORE_add_crl(store, crl) }
        ErrorQueue.clear()  // duplicate anchors leave a harmless "cert already in hash table"
        self.anchors = anchors
    }

    /// Loads anchors from a PEM file and CRLs from PEM/DER files. A CRL file may also be the
    /// anchors file itself when it holds both (like `ca-with-crl.pem`).
    public init(anchorsFile: URL, crlFiles: [URL] = []) throws(OpenSSLError) {
        let anchors = try Certificate.load(contentsOf: anchorsFile)
        var crlData: [Data] = []
        for file in crlFiles { crlData.append(try readFile(file)) }
        try self.init(anchors: anchors, crls: crlData,
                      crlSource: crlFiles.map(\.path).joined(separator: ", "))
    }

    static func parseCRLs(_ data: Data, source: String) throws(OpenSSLError) -> [OpaquePointer] {
        ErrorQueue.clear()
        if !PEM.looksLikePEM(data) {
            let bytes = [UInt8](data)
            let crl: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
                var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
                return d2i_X509_CRL(nil, &cursor, buffer.count)
            }
            guard let crl else { throw .invalidCRL(source: source, detail: ErrorQueue.drain()) }
            return [crl]
        }
        let found: [OpaquePointer] = try withReadBIO(data) { bio in
            var crls: [OpaquePointer] = []
            // PEM_read_bio_X509_CRL skips blocks of other types (certificates) on its way.
            while let crl = PEM_read_bio_X509_CRL(bio, nil, nil, nil) { crls.append(crl) }
            return crls
        }
        let detail = ErrorQueue.drain(fallback: "no CRL found")
        guard !found.isEmpty else { throw .invalidCRL(source: source, detail: detail) }
        return found
    }

    /// Verifies `certificate` up to the anchors at time `date` for `purpose`. Validity dates
    /// are checked against `date`, and so are the CRLs when given.
    public func verify(_ certificate: Certificate, intermediates: [Certificate] = [],
                       at date: Date = Date(), purpose: CertificatePurpose) -> VerificationResult {
        ErrorQueue.clear()
        defer { ErrorQueue.clear() }
        guard let context = X509_STORE_CTX_new() else { return .other(ErrorQueue.drain()) }
        defer { X509_STORE_CTX_free(context) }
        guard let untrusted = copenssl_sk_x509_new_null() else { return .other(ErrorQueue.drain()) }
        defer { copenssl_sk_x509_pop_free(untrusted) }
        for intermediate in intermediates {
            X509_up_ref(intermediate.handle.pointer)
            _ = copenssl_sk_x509_push(untrusted, intermediate.handle.pointer)
        }
        guard X509_STORE_CTX_init(context, handle.store, certificate.handle.pointer, untrusted) == 1 else {
            return .other(ErrorQueue.drain())
        }
        let parameters = X509_STORE_CTX_get0_param(context)
        X509_VERIFY_PARAM_set_time(parameters, time_t(date.timeIntervalSince1970.rounded(.down)))
        if checksRevocation { X509_STORE_CTX_set_flags(context, UInt(X509_V_FLAG_CRL_CHECK)) }
        if let opensslPurpose = purpose.opensslPurpose { X509_STORE_CTX_set_purpose(context, opensslPurpose) }

        if X509_verify_cert(context) == 1 {
            return purpose.allows(certificate) ? .valid : .wrongUsage(expected: purpose)
        }
        let code = X509_STORE_CTX_get_error(context)
        let failing = X509_STORE_CTX_get_current_cert(context).map { Certificate(handle: X509Handle(retaining: $0)) } ?? certificate
        switch code {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return .expired(notAfter: failing.notAfter)
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return .notYetValid(notBefore: failing.notBefore)
        case X509_V_ERR_CERT_REVOKED:
            return revocation(of: failing) ?? .revoked(date: date, reason: nil)
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
             X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
             X509_V_ERR_CERT_UNTRUSTED, X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            return .untrusted(issuer: failing.issuer.rfc2253)
        case X509_V_ERR_INVALID_PURPOSE:
            return .wrongUsage(expected: purpose)
        default:
            let message = X509_verify_cert_error_string(Int(code)).map { String(cString: $0) } ?? "error \(code)"
            return .other("certificate verify failed: \(message)")
        }
    }

    /// The CRL entry revoking `certificate`, if one of the CRLs has it.
    func revocation(of certificate: Certificate) -> VerificationResult? {
        for crl in handle.crls {
            var entry: OpaquePointer?
            if X509_CRL_get0_by_cert(crl, &entry, certificate.handle.pointer) == 1, let entry {
                let date = Certificate.date(X509_REVOKED_get0_revocationDate(entry))
                let code = copenssl_revoked_reason(entry)
                return .revoked(date: date, reason: code >= 0 ? RevocationReason(rawValue: Int(code)) : nil)
            }
        }
        return nil
    }
}
