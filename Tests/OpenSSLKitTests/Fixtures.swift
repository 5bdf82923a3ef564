import Foundation
import OpenSSLKit
import TestSupport

/// Test PKI files and the shared passphrase.
enum PKI {
    static func url(_ name: String) -> URL { TestPaths.testPKI.appendingPathComponent(name) }
    static var passphrase: Passphrase { get throws { try Passphrase.read(file: TestPaths.testPKIPassphraseFile) } }
    static func bundle(_ name: String) throws -> PKCS12Bundle {
        try PKCS12Bundle.load(path: url("\(name).p12"), passphrase: passphrase)
    }
    static func certificate(_ name: String) throws -> Certificate { try Certificate(contentsOf: url("\(name).pem")) }
    static var trustStore: TrustStore { get throws { try TrustStore(anchorsFile: url("ca.pem"), crlFiles: [url("ca.crl.pem")]) } }
}

/// Runs the openssl CLI, failing the test when it cannot be started.
func opensslCLI(_ arguments: [String], stdin: Data? = nil) throws -> ProcessResult {
    try ProcessRunner.run("openssl", arguments, stdin: stdin)
}
