import Foundation
import OpenSSLKit

extension TestPaths {
    /// The test PKI's passphrase, read with the gateway's one reader (OpenSSLKit's
    /// `Passphrase`), as text for wrappers that take a value (CurlKit's `TLSPassphrase`).
    public static func testPKIPassphrase() throws -> String {
        try Passphrase.read(file: testPKIPassphraseFile).reveal()
    }
}
