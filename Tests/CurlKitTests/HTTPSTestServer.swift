import Foundation
import TestSupport

/// The Python HTTPS server of `Resources/https_server.py`, on an ephemeral loopback port.
final class HTTPSTestServer: @unchecked Sendable {
    enum Protocols: String { case any, tls12 = "1.2", tls13 = "1.3" }

    let port: Int
    private let process: Process
    private let stderrPipe: Pipe
    private let stdinPipe = Pipe()

    /// Starts the server with `NAME.pem`/`NAME.key.pem` from the test PKI and waits for its port.
    init(certificate: String = "server-localhost", protocols: Protocols = .any) throws {
        let pki = TestPaths.testPKI
        guard FileManager.default.fileExists(atPath: pki.appendingPathComponent("ca.pem").path) else {
            throw TestServerError("test PKI missing: run Certificates/make-test-pki.sh")
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Resources/https_server.py")
        let venvPython = TestPaths.testVenv.appendingPathComponent("bin/python")
        let python = FileManager.default.isExecutableFile(atPath: venvPython.path) ? venvPython.path : "/usr/bin/python3"
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [
            "-u", script.path,
            "--cert", pki.appendingPathComponent("\(certificate).pem").path,
            "--key", pki.appendingPathComponent("\(certificate).key.pem").path,
            "--ca", pki.appendingPathComponent("ca.pem").path,
            "--tls", protocols.rawValue,
        ]
        let stdoutPipe = Pipe()
        stderrPipe = Pipe()
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = stdinPipe
        try process.run()

        // Read the "PORT n" line on another thread so a dead server cannot hang the test.
        let reader = stdoutPipe.fileHandleForReading
        let found = LockedValue<Int?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var line = Data()
            while true {
                let chunk = reader.readData(ofLength: 1)
                if chunk.isEmpty { break }
                if chunk.first == UInt8(ascii: "\n") { break }
                line.append(chunk)
            }
            let text = String(decoding: line, as: UTF8.self)
            if text.hasPrefix("PORT "), let port = Int(text.dropFirst(5)) { found.set(port) }
            done.signal()
        }
        if done.wait(timeout: .now() + 20) == .timedOut { kill(process.processIdentifier, SIGKILL) }
        guard let port = found.get() else {
            kill(process.processIdentifier, SIGKILL)
            let errors = String(decoding: stderrPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw TestServerError("HTTPS test server did not start: \(errors)")
        }
        self.port = port
    }

    func url(_ path: String) -> URL { URL(string: "https://127.0.0.1:\(port)\(path)")! }

    /// Closing its stdin makes the server exit; SIGKILL if it lingers.
    func stop() {
        try? stdinPipe.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    deinit { stop() }
}

struct TestServerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func get() -> T { lock.withLock { value } }
    func set(_ newValue: T) { lock.withLock { value = newValue } }
}
