import Foundation

/// The local MSSanté-style SMTP relay (scripts/endpoints/smtp_server.py, aiosmtpd) that
/// `passerelle demo` and `passerelle-bench e2e` mail to: loopback, STARTTLS, TLS 1.2, client
/// certificate from the test CA required. Each message it accepts is stored as `<n>.eml`
/// (0600) in `folder` before it answers 250.
public final class LocalSMTPRelay: @unchecked Sendable {
    public let port: UInt16
    public let folder: URL
    private let process = Process()
    /// Our end of the relay's stdin: it exits when this closes, even if the caller crashes.
    private let stdin = Pipe()

    /// Why the relay did not start, with what to do about it.
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// One stored message: its envelope recipients, Message-ID header and when it was stored.
    public struct Received: Sendable, Hashable {
        public var file: String
        public var recipients: [String]
        public var messageID: String?
        /// The file's modification time: the end of its write, just before the relay's 250.
        public var storedAt: Date
    }

    /// The relay's process id (its CPU time is in /proc/<pid>/stat).
    public var processID: Int32 { process.processIdentifier }

    /// Starts `script` with `python`, certificates from `pki` (the test PKI), messages to `folder`;
    /// `maxMessageBytes` raises aiosmtpd's 32 MiB limit (a 50 MB PDF makes a ~165 MB mail).
    public init(python: URL, script: URL, pki: URL, folder: URL, log: URL, maxMessageBytes: Int? = nil) throws(StartError) {
        let fm = FileManager.default
        guard fm.isExecutableFile(atPath: python.path) else {
            throw StartError("the Python of the test tools is not at \(python.path): run scripts/setup.sh from the repository root (it makes .venv with aiosmtpd), or give --python")
        }
        guard fm.fileExists(atPath: script.path) else {
            throw StartError("the local MSSanté relay script is not at \(script.path): run from the repository root, or give --smtp-relay")
        }
        self.folder = folder
        do {
            try fm.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch { throw StartError("cannot create \(folder.path): \(error.localizedDescription)") }
        _ = fm.createFile(atPath: log.path, contents: nil, attributes: [.posixPermissions: 0o600])
        process.executableURL = python
        process.arguments = [
            script.path, "--mode", "starttls", "--eml", "--out", folder.path,
            "--ca", pki.appendingPathComponent("ca.pem").path,
            "--cert", pki.appendingPathComponent("server-localhost-chain.pem").path,
            "--key", pki.appendingPathComponent("server-localhost.key.pem").path,
        ]
        if let maxMessageBytes { process.arguments! += ["--max-size", String(maxMessageBytes)] }
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardInput = stdin
        do {
            process.standardError = try FileHandle(forWritingTo: log)
            try process.run()
        } catch {
            throw StartError("cannot start \(python.path): \(error.localizedDescription); run scripts/setup.sh")
        }
        // The relay prints "PORT <n>" once listening, or dies (e.g. aiosmtpd missing).
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("PORT "), let port = UInt16(text.dropFirst(5)) else {
            process.waitUntilExit()
            let errors = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if errors.contains("aiosmtpd") {
                throw StartError("the local MSSanté relay needs aiosmtpd, missing from \(python.path): run scripts/setup.sh (installed: apt install python3-aiosmtpd)")
            }
            throw StartError("the local MSSanté relay did not start (exit \(process.terminationStatus)): \(errors.suffix(400)); see \(log.path)")
        }
        self.port = port
    }

    public func stop() {
        if process.isRunning { process.terminate() }
        try? stdin.fileHandleForWriting.close()
    }

    /// Every message stored so far.
    public func received() -> [Received] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".eml") }
        return names.sorted().compactMap(message(named:))
    }

    /// The stored message `name` (`<n>.eml`); only its header is read.
    public func message(named name: String) -> Received? {
        let url = folder.appendingPathComponent(name)
        guard let handle = try? FileHandle(forReadingFrom: url) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: 64 * 1024),
              let modified = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date else { return nil }
        let headers = Self.headers(data)
        return Received(file: name, recipients: headers.filter { $0.name == "delivered-to" }.map(\.value),
                        messageID: headers.first { $0.name == "message-id" }?.value, storedAt: modified)
    }

    /// The header fields (names lowercased, folded lines joined) up to the first empty line.
    public static func headers(_ data: Data) -> [(name: String, value: String)] {
        let text = String(decoding: data.prefix(64 * 1024), as: UTF8.self)
        var fields: [(name: String, value: String)] = []
        // CRLF is one Character in Swift: split on any newline.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if line.isEmpty { break }
            if line.first == " " || line.first == "\t", !fields.isEmpty {
                let previous = fields[fields.count - 1].value
                fields[fields.count - 1].value = (previous.isEmpty ? "" : previous + " ") + line.trimmingCharacters(in: .whitespaces)
            } else if let colon = line.firstIndex(of: ":") {
                fields.append((line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
        }
        return fields
    }
}
