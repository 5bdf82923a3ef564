import CCurl
import Foundation

/// A failed transfer. HTTP status codes are never errors: a 503 comes back as a response.
///
/// `kind` is what callers branch on (retry or give up); `code`/`codeName`/`detail` are
/// libcurl's own diagnosis, kept for the operator.
public struct CurlError: Error, Sendable, Hashable, CustomStringConvertible, LocalizedError {
    /// What went wrong, at the level a retry policy needs.
    public enum Kind: String, Sendable, Hashable {
        /// DNS, TCP connect, connection reset or closed early. Usually transient.
        case connectionFailed
        /// Connect, total or low-speed timeout. Transient.
        case timeout
        /// TLS negotiation failed (no common protocol version or cipher, handshake aborted).
        case tlsHandshake
        /// The server certificate is not trusted (unknown issuer, expired, revoked, wrong host name).
        case peerCertificate
        /// Our client certificate is missing, unreadable, has a wrong passphrase, or the server rejected it.
        case clientCertificate
        /// The options are unusable (missing CA bundle or CRL file, bad cipher list, …).
        case configuration
        /// The request itself is unusable (malformed URL, scheme other than https/imaps, …).
        case invalidRequest
        /// The server refused the login (IMAP/SMTP).
        case loginDenied
        /// The response body exceeded the caller's size limit.
        case responseTooLarge
        /// The request body could not be read (file vanished, stream provider threw, cannot resend).
        case uploadFailed
        /// The response body could not be stored (disk full, sink threw).
        case downloadFailed
        /// The server answered something that is not valid for the protocol.
        case protocolError
        /// Anything else libcurl reports.
        case other
    }

    public var kind: Kind
    /// The CURLcode (0 when the problem was found before libcurl ran).
    public var code: Int32
    /// The CURLcode's symbolic name, e.g. "CURLE_PEER_FAILED_VERIFICATION".
    public var codeName: String
    /// libcurl's detailed message (its error buffer), e.g.
    /// "SSL certificate problem: unable to get local issuer certificate", or ours.
    public var detail: String
    /// Host of the failed transfer (never the path or query, which may carry identifiers).
    public var host: String?

    public init(kind: Kind, code: Int32, codeName: String, detail: String, host: String? = nil) {
        self.kind = kind
        self.code = code
        self.codeName = codeName
        self.detail = detail
        self.host = host
    }

    /// Worth retrying later as is (network trouble, timeouts); everything else needs a fix first.
    public var isTransient: Bool { kind == .connectionFailed || kind == .timeout }

    static func configuration(_ detail: String) -> CurlError {
        CurlError(kind: .configuration, code: 0, codeName: "none", detail: detail)
    }

    public var description: String {
        var text = "\(summary)"
        if let host { text += " (host \(host))" }
        text += ": \(detail)"
        if code != 0 { text += " [\(codeName) \(code)]" }
        if let hint { text += ". \(hint)" }
        return text
    }

    public var errorDescription: String? { description }

    private var summary: String {
        switch kind {
        case .connectionFailed: "connection failed"
        case .timeout: "transfer timed out"
        case .tlsHandshake: "TLS handshake failed"
        case .peerCertificate: "server certificate not trusted"
        case .clientCertificate: "client certificate problem"
        case .configuration: "invalid TLS/transfer configuration"
        case .invalidRequest: "invalid request"
        case .loginDenied: "login denied"
        case .responseTooLarge: "response too large"
        case .uploadFailed: "request body could not be sent"
        case .downloadFailed: "response body could not be stored"
        case .protocolError: "protocol error"
        case .other: "transfer failed"
        }
    }

    private var hint: String? {
        switch kind {
        case .peerCertificate:
            "Check that the CA bundle holds the server's issuing CA, that the server certificate is valid today and names this host, and the CRL if one is set"
        case .clientCertificate:
            "Check the client certificate file, its passphrase, its validity dates, and that the server trusts its issuer"
        case .tlsHandshake:
            "Check the TLS version bounds and cipher lists against what the server accepts"
        case .timeout:
            "The server was too slow or unreachable; it will be retried"
        case .connectionFailed where codeName == "CURLE_SEND_ERROR" || codeName == "CURLE_RECV_ERROR":
            // TLS 1.3 delivers a refusal of our certificate after the handshake, often seen only
            // as a broken write (EPIPE, ENOTCONN, "bad write retry") before the alert is read.
            "The connection broke after it was set up; over TLS 1.3 this is also how a server refusing our client certificate shows: "
                + "if it lasts, check that the server trusts the issuer of the [certificates] authentication certificate"
        default:
            nil
        }
    }
}

extension CurlError {
    /// Maps a libcurl failure to a classified error. `detail` is the error buffer (may be empty).
    init(code: CURLcode, detail: String, host: String?) {
        let raw = Int32(bitPattern: code.rawValue)
        let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        self.init(kind: Self.classify(code, message), code: raw, codeName: Self.name(of: raw), detail: message, host: host)
    }

    static func name(of code: Int32) -> String {
        code >= 0 && Int(code) < codeNames.count ? codeNames[Int(code)] : "CURLE_\(code)"
    }

    private static func classify(_ code: CURLcode, _ message: String) -> Kind {
        let lower = message.lowercased()
        // A TLS alert about certificates received from the server means it rejected ours; with
        // TLS 1.3 that alert only arrives after the handshake, as a send/receive error.
        let serverRejectedOurCertificate = lower.contains("alert") && (
            lower.contains("certificate") || lower.contains("unknown ca") || lower.contains("access denied"))
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT,
             CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_NO_CONNECTION_AVAILABLE, CURLE_AGAIN:
            return .connectionFailed
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR:
            return serverRejectedOurCertificate ? .clientCertificate : .connectionFailed
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS:
            return .peerCertificate
        case CURLE_SSL_CERTPROBLEM, CURLE_SSL_CLIENTCERT:
            return .clientCertificate
        case CURLE_SSL_CONNECT_ERROR:
            if serverRejectedOurCertificate { return .clientCertificate }
            // The peer vanished mid-handshake: a network problem, not a TLS disagreement.
            if lower.contains("ssl_error_syscall") || lower.contains("reset by peer") { return .connectionFailed }
            return .tlsHandshake
        case CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CRL_BADFILE, CURLE_SSL_CIPHER, CURLE_SSL_ENGINE_NOTFOUND,
             CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED, CURLE_NOT_BUILT_IN, CURLE_UNKNOWN_OPTION,
             CURLE_BAD_FUNCTION_ARGUMENT, CURLE_SETOPT_OPTION_SYNTAX, CURLE_FAILED_INIT:
            return .configuration
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT, CURLE_USE_SSL_FAILED:
            return .invalidRequest
        case CURLE_LOGIN_DENIED, CURLE_AUTH_ERROR, CURLE_REMOTE_ACCESS_DENIED:
            return .loginDenied
        case CURLE_READ_ERROR, CURLE_SEND_FAIL_REWIND, CURLE_UPLOAD_FAILED:
            return .uploadFailed
        case CURLE_WRITE_ERROR:
            return .downloadFailed
        case CURLE_WEIRD_SERVER_REPLY, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_BAD_CONTENT_ENCODING:
            return .protocolError
        default:
            return .other
        }
    }

    /// CURLcode names of libcurl 7.88, indexed by value (curl has no API for them).
    private static let codeNames: [String] = [
        "CURLE_OK",
        "CURLE_UNSUPPORTED_PROTOCOL", "CURLE_FAILED_INIT", "CURLE_URL_MALFORMAT", "CURLE_NOT_BUILT_IN",
        "CURLE_COULDNT_RESOLVE_PROXY", "CURLE_COULDNT_RESOLVE_HOST", "CURLE_COULDNT_CONNECT",
        "CURLE_WEIRD_SERVER_REPLY", "CURLE_REMOTE_ACCESS_DENIED", "CURLE_FTP_ACCEPT_FAILED",
        "CURLE_FTP_WEIRD_PASS_REPLY", "CURLE_FTP_ACCEPT_TIMEOUT", "CURLE_FTP_WEIRD_PASV_REPLY",
        "CURLE_FTP_WEIRD_227_FORMAT", "CURLE_FTP_CANT_GET_HOST", "CURLE_HTTP2", "CURLE_FTP_COULDNT_SET_TYPE",
        "CURLE_PARTIAL_FILE", "CURLE_FTP_COULDNT_RETR_FILE", "CURLE_OBSOLETE20", "CURLE_QUOTE_ERROR",
        "CURLE_HTTP_RETURNED_ERROR", "CURLE_WRITE_ERROR", "CURLE_OBSOLETE24", "CURLE_UPLOAD_FAILED",
        "CURLE_READ_ERROR", "CURLE_OUT_OF_MEMORY", "CURLE_OPERATION_TIMEDOUT", "CURLE_OBSOLETE29",
        "CURLE_FTP_PORT_FAILED", "CURLE_FTP_COULDNT_USE_REST", "CURLE_OBSOLETE32", "CURLE_RANGE_ERROR",
        "CURLE_HTTP_POST_ERROR", "CURLE_SSL_CONNECT_ERROR", "CURLE_BAD_DOWNLOAD_RESUME",
        "CURLE_FILE_COULDNT_READ_FILE", "CURLE_LDAP_CANNOT_BIND", "CURLE_LDAP_SEARCH_FAILED", "CURLE_OBSOLETE40",
        "CURLE_FUNCTION_NOT_FOUND", "CURLE_ABORTED_BY_CALLBACK", "CURLE_BAD_FUNCTION_ARGUMENT", "CURLE_OBSOLETE44",
        "CURLE_INTERFACE_FAILED", "CURLE_OBSOLETE46", "CURLE_TOO_MANY_REDIRECTS", "CURLE_UNKNOWN_OPTION",
        "CURLE_SETOPT_OPTION_SYNTAX", "CURLE_OBSOLETE50", "CURLE_OBSOLETE51", "CURLE_GOT_NOTHING",
        "CURLE_SSL_ENGINE_NOTFOUND", "CURLE_SSL_ENGINE_SETFAILED", "CURLE_SEND_ERROR", "CURLE_RECV_ERROR",
        "CURLE_OBSOLETE57", "CURLE_SSL_CERTPROBLEM", "CURLE_SSL_CIPHER", "CURLE_PEER_FAILED_VERIFICATION",
        "CURLE_BAD_CONTENT_ENCODING", "CURLE_OBSOLETE62", "CURLE_FILESIZE_EXCEEDED", "CURLE_USE_SSL_FAILED",
        "CURLE_SEND_FAIL_REWIND", "CURLE_SSL_ENGINE_INITFAILED", "CURLE_LOGIN_DENIED", "CURLE_TFTP_NOTFOUND",
        "CURLE_TFTP_PERM", "CURLE_REMOTE_DISK_FULL", "CURLE_TFTP_ILLEGAL", "CURLE_TFTP_UNKNOWNID",
        "CURLE_REMOTE_FILE_EXISTS", "CURLE_TFTP_NOSUCHUSER", "CURLE_OBSOLETE75", "CURLE_OBSOLETE76",
        "CURLE_SSL_CACERT_BADFILE", "CURLE_REMOTE_FILE_NOT_FOUND", "CURLE_SSH", "CURLE_SSL_SHUTDOWN_FAILED",
        "CURLE_AGAIN", "CURLE_SSL_CRL_BADFILE", "CURLE_SSL_ISSUER_ERROR", "CURLE_FTP_PRET_FAILED",
        "CURLE_RTSP_CSEQ_ERROR", "CURLE_RTSP_SESSION_ERROR", "CURLE_FTP_BAD_FILE_LIST", "CURLE_CHUNK_FAILED",
        "CURLE_NO_CONNECTION_AVAILABLE", "CURLE_SSL_PINNEDPUBKEYNOTMATCH", "CURLE_SSL_INVALIDCERTSTATUS",
        "CURLE_HTTP2_STREAM", "CURLE_RECURSIVE_API_CALL", "CURLE_AUTH_ERROR", "CURLE_HTTP3",
        "CURLE_QUIC_CONNECT_ERROR", "CURLE_PROXY", "CURLE_SSL_CLIENTCERT", "CURLE_UNRECOVERABLE_POLL",
    ]
}
