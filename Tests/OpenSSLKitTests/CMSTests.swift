import Foundation
import OpenSSLKit
import Testing
import TestSupport

/// Detached CMS signatures (the usage report's evidence manifest), checked both ways against
/// the OpenSSL command line.
@Suite("CMS detached signatures")
struct CMSTests {
    @Test("sign, verify, and the openssl CLI agrees; one changed byte or a foreign signature fails")
    func roundTrip() throws {
        let bundle = try PKI.bundle("org-sign")
        let content = Data("abc123  V1-D1-SEJ.csv\n".utf8)
        let signature = try CMS.signDetached(content, certificate: bundle.certificate, key: bundle.privateKey, chain: bundle.chain)
        let signed = try CMS.verifyDetached(signature, content: content)
        #expect(signed.signer.der == bundle.certificate.der)
        #expect(try PKI.trustStore.verify(signed.signer, intermediates: signed.chain, purpose: .signing).isValid)

        var changed = content
        changed[0] ^= 0x01
        #expect(throws: OpenSSLError.self) { _ = try CMS.verifyDetached(signature, content: changed) }
        #expect(throws: OpenSSLError.self) { _ = try CMS.verifyDetached(Data("not a signature".utf8), content: content) }

        // The openssl CLI reads the same DER signature (what an auditor would run).
        let folder = try TestPaths.temporaryDirectory("cms")
        let sig = folder.appendingPathComponent("m.p7s"), data = folder.appendingPathComponent("m.txt")
        try signature.write(to: sig)
        try content.write(to: data)
        let cli = try opensslCLI(["cms", "-verify", "-binary", "-inform", "DER", "-in", sig.path, "-content", data.path,
                                  "-CAfile", PKI.url("ca.pem").path, "-purpose", "any", "-out", "/dev/null"])
        #expect(cli.succeeded, "\(cli.stderr)")
        try changed.write(to: data)
        #expect(try !opensslCLI(["cms", "-verify", "-binary", "-inform", "DER", "-in", sig.path, "-content", data.path,
                                  "-CAfile", PKI.url("ca.pem").path, "-purpose", "any", "-out", "/dev/null"]).succeeded)
    }
}
