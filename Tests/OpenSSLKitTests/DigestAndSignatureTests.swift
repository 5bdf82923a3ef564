import Foundation
import OpenSSLKit
import Testing
import TestSupport

@Suite struct DigestTests {
    @Test func knownAnswers() {
        #expect(Digest.sha256(Data("abc".utf8)).hexString
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.sha1(Data("abc".utf8)).hexString == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(Digest.sha256(Data()).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Data(hexString: "BA:78:16") == Data([0xBA, 0x78, 0x16]))
        #expect(Data(hexString: "abc") == nil)
    }

    @Test func streamingEqualsOneShot() {
        let data = RandomBytes.generate(count: 100_000)
        let context = DigestContext(.sha256)
        var offset = 0
        for size in [1, 7, 4096, 33, 100_000] where offset < data.count {
            let end = min(offset + size, data.count)
            context.update(data[offset..<end])
            offset = end
        }
        #expect(context.finalize() == Digest.sha256(data))
        #expect(RandomBytes.generate(count: 32) != RandomBytes.generate(count: 32))
    }

    @Test(arguments: DigestAlgorithm.allCases)
    func fileDigestMatchesOpenSSLDgst(algorithm: DigestAlgorithm) throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("big.bin")
        // 50 MB file, digested in 64 KiB chunks.
        let block = RandomBytes.generate(count: 1 << 20)
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        for _ in 0..<50 { handle.write(block) }
        try handle.close()
        let ours = try Digest.hash(fileAt: file, algorithm: algorithm)
        let cli = try opensslCLI(["dgst", "-\(algorithm.rawValue)", "-r", file.path])
        #expect(cli.succeeded)
        #expect(cli.stdout.hasPrefix(ours.hexString + " "))
        #expect(ours.count == algorithm.length)
    }

    @Test func missingFile() {
        #expect(throws: OpenSSLError.fileUnreadable(file: "/nonexistent/x", reason: "no such file")) {
            try Digest.hash(fileAt: URL(fileURLWithPath: "/nonexistent/x"))
        }
    }
}

@Suite struct SignatureTests {
    @Test(arguments: DigestAlgorithm.allCases)
    func ourSignatureVerifiesWithOpenSSLDgst(algorithm: DigestAlgorithm) throws {
        let bundle = try PKI.bundle("org-sign")
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let message = Data("Passerelle signature test \(algorithm)".utf8)
        let signature = try bundle.privateKey.sign(message, digest: algorithm)
        #expect(signature.count == 256)
        let files = (directory.appendingPathComponent("msg"), directory.appendingPathComponent("sig"),
                     directory.appendingPathComponent("pub.pem"))
        try message.write(to: files.0)
        try signature.write(to: files.1)
        try Data(bundle.certificate.publicKey.pem.utf8).write(to: files.2)
        let cli = try opensslCLI(["dgst", "-\(algorithm.rawValue)", "-verify", files.2.path, "-signature", files.1.path, files.0.path])
        #expect(cli.succeeded, "\(cli.stdout)\(cli.stderr)")
        #expect(cli.stdout.contains("Verified OK"))
        // And the CLI rejects it against another message.
        try Data("other".utf8).write(to: files.0)
        #expect(try opensslCLI(["dgst", "-\(algorithm.rawValue)", "-verify", files.2.path, "-signature", files.1.path, files.0.path]).status != 0)
    }

    @Test(arguments: DigestAlgorithm.allCases)
    func openSSLDgstSignatureVerifiesHere(algorithm: DigestAlgorithm) throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let message = Data("signed by the openssl CLI".utf8)
        let messageFile = directory.appendingPathComponent("msg"), signatureFile = directory.appendingPathComponent("sig")
        try message.write(to: messageFile)
        let cli = try opensslCLI(["dgst", "-\(algorithm.rawValue)", "-sign", PKI.url("org-sign.key.pem").path,
                                  "-out", signatureFile.path, messageFile.path])
        #expect(cli.succeeded, "\(cli.stderr)")
        let signature = try Data(contentsOf: signatureFile)
        let key = try PKI.certificate("org-sign").publicKey
        #expect(try key.verify(signature: signature, for: message, digest: algorithm))
        #expect(try !key.verify(signature: signature, for: Data("tampered".utf8), digest: algorithm))
        var flipped = signature
        flipped[10] ^= 0x01
        #expect(try !key.verify(signature: flipped, for: message, digest: algorithm))
        // The other algorithm does not verify it either.
        let other: DigestAlgorithm = algorithm == .sha1 ? .sha256 : .sha1
        #expect(try !key.verify(signature: signature, for: message, digest: other))
        // Another certificate's key does not verify it.
        #expect(try !PKI.certificate("org-auth").publicKey.verify(signature: signature, for: message, digest: algorithm))
        // The same key loaded from PEM signs identically (PKCS#1 v1.5 is deterministic).
        let pemKey = try PrivateKey(pemFile: PKI.url("org-sign.key.pem"))
        #expect(try pemKey.sign(message, digest: algorithm) == signature)
        #expect(pemKey.publicKey.der == key.der)
    }
}
