import Foundation
import Testing
import TestSupport

/// `passerelle config check` pre-flight, through the real binary: each failure the operator
/// must see before the service starts, with its exit code and a message naming the key.
@Suite("config check: pre-flight")
struct PreflightTests {
    /// A test-PKI configuration whose folders are fresh folders of `directory` (each one
    /// replaceable), written to `directory/passerelle.toml`.
    func configuration(in directory: URL, authentication: String = "org-auth", signing: String = "org-sign",
                       passphraseEnv: String? = nil, folders: [String: String] = [:]) throws -> String {
        var text = TestConfiguration.withTestPKI(authentication: authentication, signing: signing, passphraseEnv: passphraseEnv)
        for name in ["inbox", "work", "error", "done"] {
            let path = folders[name] ?? directory.appendingPathComponent(name).path
            if folders[name] == nil {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            }
            text = text.replacingOccurrences(of: "\"/tmp/passerelle-test/\(name)\"", with: "\"\(path)\"")
        }
        let file = directory.appendingPathComponent("passerelle.toml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    @Test("the test PKI and writable folders on one file system: valid (exit 0); the FINESS of the subject OU differs: a warning")
    func valid() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir)])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("is valid."))
        #expect(r.stdout.contains("ok: certificates.authentication:"))
        #expect(r.stdout.contains("ok: certificates.signing:"))
        #expect(r.stdout.contains("ok: inbox, work, error and done writable"))
        // The test PKI's certificates say "OU=FINESS 100000001"; the test configuration 750803447.
        #expect(r.stdout.contains("warning: certificates.authentication: the certificate is for FINESS 100000001 (subject OU) but structure.finess is 750803447"))
    }

    @Test("wrong passphrase: exit 1, both certificates named")
    func wrongPassphrase() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try configuration(in: dir, passphraseEnv: "PREFLIGHT_TEST_PASSPHRASE")
        let r = try CLI.run(["config", "check", "--config", config], environment: ["PREFLIGHT_TEST_PASSPHRASE": "not-the-passphrase"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("is invalid."))
        #expect(r.stdout.contains("error: certificates.authentication: cannot open"))
        #expect(r.stdout.contains("error: certificates.signing: cannot open"))
        #expect(r.stdout.lowercased().contains("passphrase"))
    }

    @Test("missing PKCS#12: exit 1 naming the key and the file; the other certificate is still checked")
    func missingFile() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir, authentication: "no-such-bundle")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("error: certificates.authentication: cannot open \(TestPaths.testPKI.path)/no-such-bundle.p12"))
        #expect(r.stdout.contains("ok: certificates.signing:"))
    }

    @Test("expired certificate: exit 1, 'has expired' and the fix")
    func expired() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir, signing: "expired-sign")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("error: certificates.signing:"))
        #expect(r.stdout.contains("certificate has expired"))
        #expect(r.stdout.contains("install the renewed certificate"))
    }

    @Test("certificate of an unknown CA: exit 1, 'does not chain to a trust anchor'")
    func unknownCA() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir, authentication: "unknown-auth")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("error: certificates.authentication:"))
        #expect(r.stdout.contains("does not chain to a trust anchor"))
        #expect(r.stdout.contains("certificates.trust_anchors must hold the CA"))
    }

    @Test("missing folder: exit 1, the key and how to create it")
    func missingFolder() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("absent-inbox").path
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir, folders: ["inbox": missing])])
        #expect(r.status == 1)
        #expect(r.stdout.contains("error: folders.inbox: \(missing): No such file or directory: create it"))
    }

    @Test("folder not writable by the user running the check: exit 1")
    func notWritable() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try configuration(in: dir)
        let error = dir.appendingPathComponent("error").path
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: error)
        let r: ProcessResult
        if getuid() == 0 {
            // root writes anywhere: run the check as nobody (as ExecStartPre runs it as the service
            // user). Everything it reads must then be readable by nobody.
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: config)
            let binary = try #require(CLI.binary)
            r = try ProcessRunner.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                             binary, "config", "check", "--config", config])
            #expect(r.stdout.contains("folders.inbox: \(dir.path)/inbox is not writable by uid 65534"), "\(r.stdout)\(r.stderr)")
        } else {
            r = try CLI.run(["config", "check", "--config", config])
        }
        #expect(r.status == 1)
        #expect(r.stdout.contains("error: folders.error: \(error) is not writable by uid"), "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("Permission denied"))
    }

    @Test("inbox and work on two file systems (/dev/shm and the temporary folder): exit 1")
    func twoFileSystems() throws {
        let dir = try TestPaths.temporaryDirectory("preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let shm = URL(fileURLWithPath: "/dev/shm/preflight-\(UUID().uuidString)")
        var a = stat(), b = stat()
        guard stat(dir.path, &a) == 0, stat("/dev/shm", &b) == 0, a.st_dev != b.st_dev else {
            print("skipped: /dev/shm and \(dir.path) are on one file system here, no second one to test with")
            return
        }
        try FileManager.default.createDirectory(at: shm, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: shm) }
        let r = try CLI.run(["config", "check", "--config", try configuration(in: dir, folders: ["work": shm.path])])
        #expect(r.status == 1)
        #expect(r.stdout.contains("folders.inbox, folders.work and folders.error are on different file systems"))
        #expect(r.stdout.contains("work \(shm.path)"))
    }
}
