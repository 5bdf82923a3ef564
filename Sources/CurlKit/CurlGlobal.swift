import CCurl
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Process-wide libcurl state.
enum CurlGlobal {
    /// `curl_global_init` is not thread-safe in libcurl 7.88; a Swift `static let` runs its
    /// initializer exactly once (swift_once), so every entry point touches this first.
    static let initialized: Void = {
        // Transfers run with CURLOPT_NOSIGNAL (required with threads), so libcurl no longer
        // masks SIGPIPE itself: a peer closing mid-upload must not kill the daemon.
        signal(SIGPIPE, SIG_IGN)
        let code = curl_global_init(Int(CURL_GLOBAL_ALL))
        precondition(code == CURLE_OK, "curl_global_init failed: \(String(cString: curl_easy_strerror(code)))")
    }()

    /// The libcurl version string, e.g. "libcurl/7.88.1 OpenSSL/3.0.x …".
    static var version: String {
        _ = initialized
        return String(cString: curl_version())
    }
}

/// Versions of the libraries behind CurlKit, for `passerelle --version` and diagnostics.
public enum CurlLibrary {
    /// libcurl's own version string, including its TLS backend.
    public static var version: String { CurlGlobal.version }
}
