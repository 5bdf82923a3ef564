import BenchSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The minimal acknowledging DMP endpoint of `passerelle-bench e2e --endpoint minimal`: nginx,
/// a separate process (its CPU is not the gateway's), configured here in a folder of the run:
/// TLS with the test PKI's `server-localhost`, client certificate from the test CA required
/// (`ssl_verify_client on`, CRL checked), keep-alive, and every POST answered with a canned
/// SOAP 1.2 RegistryResponse Success in the content type the strict endpoint uses. No XSD, no
/// signature check: what is measured is the gateway's side.
///
/// TLS session caches and tickets are off, so every TCP connection is one full handshake; the
/// access log records per request `$connection` (the connection's serial number),
/// `$connection_requests`, `$ssl_session_reused`, so handshakes per document are counted from it.
final class MinimalEndpoint {
    let folder: URL
    let port: Int
    private let process = Process()
    var accessLog: URL { folder.appendingPathComponent("access.log") }
    var errorLog: URL { folder.appendingPathComponent("error.log") }
    var url: URL { URL(string: "https://localhost:\(port)/dmp/repository")! }

    /// What the strict endpoint answers to a stored submission (Sources/TestEndpoints/DMPTestEndpoint.swift).
    static let contentType = "application/soap+xml; charset=UTF-8; action=\"urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse\""
    static let body = """
        <soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing">\
        <soap:Header><wsa:Action>urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse</wsa:Action></soap:Header>\
        <soap:Body><rs:RegistryResponse xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" \
        status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"></rs:RegistryResponse></soap:Body></soap:Envelope>
        """

    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    /// The nginx executable: `PASSERELLE_NGINX`, else /usr/sbin/nginx (Debian's nginx-light, installed by scripts/setup.sh).
    static var executable: String {
        ProcessInfo.processInfo.environment["PASSERELLE_NGINX"] ?? "/usr/sbin/nginx"
    }

    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: executable) }

    init(folder: URL, pki: URL, workers: Int = 1) throws {
        guard Self.isInstalled else {
            throw StartError(description: "nginx is not at \(Self.executable): run scripts/setup.sh (it installs nginx-light), or set PASSERELLE_NGINX")
        }
        self.folder = folder
        let fm = FileManager.default
        try fm.createDirectory(at: folder.appendingPathComponent("temp"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        port = try PostgresTestServer.freePort()
        let p = folder.path, k = pki.path
        // As root the workers would switch to nobody, who cannot read the run's 0700 folder.
        let user = getuid() == 0 ? "user root;" : ""
        let escapedBody = Self.body.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
        let conf = """
            # Written by passerelle-bench e2e --endpoint minimal.
            \(user)
            worker_processes \(workers);
            daemon off;
            master_process on;
            pid \(p)/nginx.pid;
            error_log \(p)/error.log warn;
            events { worker_connections 512; }
            http {
                log_format bench '$msec $connection $connection_requests $ssl_session_reused $status $content_length $request_time';
                access_log \(p)/access.log bench;
                client_body_temp_path \(p)/temp/body;
                proxy_temp_path \(p)/temp/proxy;
                fastcgi_temp_path \(p)/temp/fastcgi;
                uwsgi_temp_path \(p)/temp/uwsgi;
                scgi_temp_path \(p)/temp/scgi;
                # Bodies stay in memory (a 500 KB PDF makes a ~0.7 MB request).
                client_max_body_size 64m;
                client_body_buffer_size 4m;
                keepalive_requests 1000000;
                keepalive_timeout 300s;
                server {
                    listen 127.0.0.1:\(port) ssl;
                    ssl_certificate \(k)/server-localhost-chain.pem;
                    ssl_certificate_key \(k)/server-localhost.key.pem;
                    ssl_client_certificate \(k)/ca.pem;
                    ssl_crl \(k)/ca.crl.pem;
                    ssl_verify_client on;
                    ssl_verify_depth 3;
                    ssl_protocols TLSv1.2 TLSv1.3;
                    # No resumption: one TCP connection = one full handshake.
                    ssl_session_cache off;
                    ssl_session_tickets off;
                    location / {
                        if ($request_method != POST) { return 405; }
                        default_type '\(Self.contentType)';
                        return 200 '\(escapedBody)';
                    }
                }
            }

            """
        let file = folder.appendingPathComponent("nginx.conf")
        try conf.write(to: file, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = ["-p", p, "-c", file.path, "-e", "\(p)/error.log"]
        process.standardOutput = FileHandle.nullDevice
        _ = fm.createFile(atPath: folder.appendingPathComponent("nginx.out").path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: folder.appendingPathComponent("nginx.out"))
        try process.run()
        // Listening once a TCP connect succeeds (or nginx died: configuration, port taken).
        let deadline = Date().addingTimeInterval(10)
        while !Self.accepts(port: port) {
            if !process.isRunning || Date() > deadline {
                stop()
                let errors = ((try? String(contentsOf: errorLog, encoding: .utf8)) ?? "")
                    + ((try? String(contentsOf: folder.appendingPathComponent("nginx.out"), encoding: .utf8)) ?? "")
                throw StartError(description: "nginx did not start: \(errors.suffix(600)) (configuration: \(file.path))")
            }
            usleep(20_000)
        }
    }

    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// The master's and workers' CPU seconds (utime + stime from /proc).
    var cpuSeconds: Double {
        let master = process.processIdentifier
        // The workers: processes whose parent is the master (field 4 of /proc/<pid>/stat).
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { pid in
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else { return false }
            let fields = text[text.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == master
        }
        return ([master] + children).reduce(0) { $0 + ResourceSample.processCPU($1) }
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGQUIT)  // graceful: the access log is complete
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    /// One access-log line.
    struct Request {
        var time: Double
        var connection: Int
        var connectionRequests: Int
        var reused: Bool
        var status: Int
        /// The request's Content-Length (the MTOM body).
        var bytes: Int
    }

    func requests() -> [Request] {
        let text = (try? String(contentsOf: accessLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count >= 6, let time = Double(f[0]), let connection = Int(f[1]), let n = Int(f[2]), let status = Int(f[4]) else { return nil }
            return Request(time: time, connection: connection, connectionRequests: n, reused: f[3] == "r", status: status, bytes: Int(f[5]) ?? 0)
        }
    }

    /// Lines of the access log counted so far, and where the count stopped.
    private var counted = (lines: 0, offset: UInt64(0))

    /// Lines in the access log so far: only what was appended since the last call is read (the
    /// benchmark asks every 20 ms; reading a 100,000-line log whole each time took a quarter of
    /// a core from the gateway under test).
    func requestCount() -> Int {
        guard let handle = try? FileHandle(forReadingFrom: accessLog) else { return counted.lines }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: counted.offset)) != nil, let data = try? handle.readToEnd() else { return counted.lines }
        // Up to the last complete line: a line being written is counted on the next call.
        guard let last = data.lastIndex(of: 10) else { return counted.lines }
        let lines = data[...last].withUnsafeBytes { bytes in bytes.reduce(0) { $0 + ($1 == 10 ? 1 : 0) } }
        counted = (counted.lines + lines, counted.offset + UInt64(last - data.startIndex + 1))
        return counted.lines
    }
}

import ArgumentParser

/// `passerelle-bench minimal-endpoint --folder DIR`: the minimal endpoint alone, for other
/// clients (scripts/bench/compare.sh runs the Python reference against it). Prints `URL <url>`,
/// serves until its standard input closes, then prints the access log's figures as one JSON line.
struct MinimalEndpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minimal-endpoint",
        abstract: "nginx answering every POST with a canned RegistryResponse over mutual TLS (test PKI), until stdin closes.")

    @Option(help: "Folder for nginx's configuration and logs (created).")
    var folder: String

    func run() throws {
        let endpoint = try MinimalEndpoint(folder: URL(fileURLWithPath: folder), pki: TestPaths.testPKI)
        FileHandle.standardOutput.write(Data("URL \(endpoint.url.absoluteString)\n".utf8))
        while let _ = readLine() {}
        let cpu = endpoint.cpuSeconds
        endpoint.stop()
        let requests = endpoint.requests()
        let summary: [String: Any] = [
            "requests": requests.count, "requests_not_ok": requests.filter { $0.status != 200 }.count,
            "connections": Set(requests.map(\.connection)).count, "resumed_sessions": Set(requests.filter(\.reused).map(\.connection)).count,
            "endpoint_cpu_seconds": cpu,
        ]
        let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
