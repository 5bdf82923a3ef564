import CurlKit
import Foundation
import OpenSSLKit
import PasserelleCore

/// `[certificates] passphrase_file` / `passphrase_env`, read into the form each wrapper takes.
/// One place, so every key the service opens (TLS for the DMP and IMAP, PKCS#12 for SMTP and
/// MLLP) reads the passphrase the same way.
extension PasserelleConfiguration.PassphraseSource {
    /// For OpenSSLKit (PKCS#12 bundles: SMTP, MLLP).
    func openSSLPassphrase() throws -> Passphrase {
        switch self {
        case .file(let path): try Passphrase.read(file: URL(fileURLWithPath: path))
        case .environment(let name): try Passphrase.read(environmentVariable: name)
        }
    }

    /// For CurlKit (client certificates of HTTPS and IMAPS transfers).
    func curlPassphrase() throws -> TLSPassphrase {
        switch self {
        case .file(let path): try TLSPassphrase(contentsOf: URL(fileURLWithPath: path))
        case .environment(let name): try TLSPassphrase(environmentVariable: name)
        }
    }
}
