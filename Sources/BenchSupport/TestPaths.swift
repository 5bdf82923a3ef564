import Foundation

/// Paths and helpers shared by the test targets. Tests run from the package root
/// (`swift test`), but paths are derived from this file so they work from anywhere.
public enum TestPaths {
    /// The repository root (the folder that holds Package.swift).
    public static let repositoryRoot: URL = {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()   // TestSupport
            .deletingLastPathComponent()   // Tests
            .deletingLastPathComponent()   // root
    }()

    /// `../shared` beside the repository root: conformance kit and validation tools.
    public static var shared: URL {
        if let override = ProcessInfo.processInfo.environment["PASSERELLE_SHARED"] {
            return URL(fileURLWithPath: override)
        }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }

    /// The test PKI made by `Certificates/make-test-pki.sh` (generated, never committed).
    public static var testPKI: URL {
        if let override = ProcessInfo.processInfo.environment["PASSERELLE_TEST_PKI"] {
            return URL(fileURLWithPath: override)
        }
        return repositoryRoot.appendingPathComponent("Certificates/test-pki")
    }

    /// The passphrase file of every PKCS#12 in the test PKI.
    public static var testPKIPassphraseFile: URL { testPKI.appendingPathComponent("passphrase.txt") }

    public static var templates: URL { repositoryRoot.appendingPathComponent("Templates") }

    /// The Python venv of the test tools (made by `scripts/test.sh`).
    public static var testVenv: URL {
        if let override = ProcessInfo.processInfo.environment["PASSERELLE_TEST_VENV"] {
            return URL(fileURLWithPath: override)
        }
        return repositoryRoot.appendingPathComponent(".venv")
    }

    /// A fresh temporary directory, removed by the caller when done.
    public static func temporaryDirectory(_ prefix: String = "passerelle-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The result of running an external program from a test.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var succeeded: Bool { status == 0 }
}

public enum ProcessRunner {
    /// Runs `executable` with `arguments` to completion and captures its output.
    @discardableResult
    public static func run(
        _ executable: String,
        _ arguments: [String] = [],
        environment: [String: String]? = nil,
        currentDirectory: URL? = nil,
        stdin: Data? = nil
    ) throws -> ProcessResult {
        let process = Process()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
        }
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return ProcessResult(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self)
        )
    }
}
