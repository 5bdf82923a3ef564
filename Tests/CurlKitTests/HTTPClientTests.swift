import CurlKit
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

private func pki(_ file: String) -> URL { TestPaths.testPKI.appendingPathComponent(file) }

private func passphrase() throws -> TLSPassphrase { TLSPassphrase(try TestPaths.testPKIPassphrase()) }

private func p12(_ name: String) throws -> TLSClientIdentity { .pkcs12(pki("\(name).p12"), passphrase: try passphrase()) }

private func client(
    _ identity: TLSClientIdentity?,
    maximumVersion: TLSVersion? = nil,
    crl: URL? = nil,
    timeouts: CurlTimeouts = CurlTimeouts(connect: .seconds(10), total: .seconds(30))
) throws -> HTTPClient {
    try HTTPClient(
        tls: TLSClientOptions(caBundle: pki("ca.pem"), clientIdentity: identity, maximumVersion: maximumVersion, crlFile: crl),
        timeouts: timeouts)
}

/// Runs `body` against a fresh server and always stops it.
private func withServer<T>(
    certificate: String = "server-localhost", protocols: HTTPSTestServer.Protocols = .any,
    _ body: (HTTPSTestServer) async throws -> T
) async throws -> T {
    let server = try HTTPSTestServer(certificate: certificate, protocols: protocols)
    defer { server.stop() }
    return try await body(server)
}

private struct Echo: Decodable {
    var method: String
    var size: Int
    var sha256: String
    var clientPort: Int
    var connectionRequests: Int
    var peerCn: String?
    var tlsVersion: String?
    var transferEncoding: String?
}

private func echo(_ response: HTTPResponse) throws -> Echo {
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return try decoder.decode(Echo.self, from: response.body)
}

private func sha256Hex(_ data: Data) throws -> String {
    try ProcessRunner.run("sha256sum", stdin: data).stdout.split(separator: " ").first.map(String.init) ?? ""
}

/// Expects `body` to throw a `CurlError` and returns it.
private func curlError(_ body: () async throws -> Void) async -> CurlError? {
    do {
        try await body()
        Issue.record("expected a CurlError, got success")
        return nil
    } catch let error as CurlError {
        if ProcessInfo.processInfo.environment["CURLKIT_PRINT_ERRORS"] != nil { print("CurlError: \(error)") }
        return error
    } catch {
        Issue.record("expected a CurlError, got \(error)")
        return nil
    }
}

@Suite("HTTPClient over real mutual TLS")
struct HTTPClientTests {
    @Test func getAndPostWithPKCS12ClientCertificate() async throws {
        try await withServer { server in
            let http = try client(try p12("org-auth"))
            let get = try await http.send(HTTPRequest(url: server.url("/echo")))
            #expect(get.status == 200)
            let got = try echo(get)
            #expect(got.method == "GET")
            #expect(got.peerCn?.contains("ORG_AUTH_CLI") == true)
            #expect(get.headers["content-type"] == "application/json")
            #expect(get.timing.newConnections == 1)
            #expect(get.timing.tlsEstablished > .zero)
            #expect(get.timing.total >= get.timing.tlsEstablished)

            let payload = Data("<soap:Envelope>bonjour</soap:Envelope>".utf8)
            var headers = HTTPHeaders()
            headers.add("Content-Type", "application/soap+xml")
            let post = try await http.send(HTTPRequest(method: "POST", url: server.url("/echo"), headers: headers, body: .data(payload)))
            let posted = try echo(post)
            #expect(post.status == 200)
            #expect(posted.method == "POST")
            #expect(posted.size == payload.count)
            #expect(posted.sha256 == (try sha256Hex(payload)))
        }
    }

    @Test func pemCertificateAndKey() async throws {
        try await withServer { server in
            let http = try client(.pem(certificate: pki("org-auth.pem"), privateKey: pki("org-auth.key.pem")))
            let response = try await http.send(HTTPRequest(method: "POST", url: server.url("/echo"), body: .data(Data("x".utf8))))
            #expect(response.status == 200)
            #expect(try echo(response).size == 1)
        }
    }

    /// The service's form: certificate chain and key handed to libcurl from memory
    /// (CURLOPT_SSLCERT_BLOB / CURLOPT_SSLKEY_BLOB), no file named to libcurl.
    @Test func inMemoryCertificateAndKey() async throws {
        let chain = try Data(contentsOf: pki("org-auth-chain.pem"))
        let key = try [UInt8](Data(contentsOf: pki("org-auth.key.pem")))
        let blob = key.withUnsafeBytes { TLSKeyBlob(pem: $0) }
        try await withServer { server in
            let http = try client(.memory(certificateChainPEM: chain, privateKeyPEM: blob))
            for _ in 0..<2 {  // the second request reuses the connection made with the blobs
                let response = try await http.send(HTTPRequest(method: "POST", url: server.url("/echo"), body: .data(Data("x".utf8))))
                #expect(response.status == 200)
                #expect(try echo(response).peerCn?.contains("ORG_AUTH_CLI") == true)
            }
            // A key that is not the certificate's: refused on our side, as a client certificate problem.
            let other = try [UInt8](Data(contentsOf: pki("org-sign.key.pem")))
            let wrong = try client(.memory(certificateChainPEM: chain, privateKeyPEM: other.withUnsafeBytes { TLSKeyBlob(pem: $0) }))
            let error = await curlError { _ = try await wrong.send(HTTPRequest(url: server.url("/echo"))) }
            #expect(error?.kind == .clientCertificate, "\(String(describing: error))")
        }
        // The key never shows in a description, and an empty identity is refused before connecting.
        let keyText = String(decoding: key, as: UTF8.self)
        #expect("\(blob)" == "<redacted private key>" && !String(reflecting: blob).contains("PRIVATE KEY"))
        var dumped = ""
        dump(TLSClientIdentity.memory(certificateChainPEM: chain, privateKeyPEM: blob), to: &dumped)
        #expect(!dumped.contains(String(keyText.dropFirst(40).prefix(40))))
        #expect(throws: CurlError.self) {
            try TLSClientOptions(caBundle: pki("ca.pem"), clientIdentity: .memory(certificateChainPEM: Data(),
                                                                                  privateKeyPEM: blob)).validate()
        }
    }

    @Test func serverRejectsMissingClientCertificate() async throws {
        try await withServer { server in
            let http = try client(nil)
            let error = await curlError { _ = try await http.send(HTTPRequest(url: server.url("/echo"))) }
            #expect(error?.kind == .clientCertificate, "\(String(describing: error))")
            #expect(error?.detail.contains("certificate required") == true, "\(String(describing: error))")
        }
    }

    @Test func serverRejectsClientCertificateFromUnknownCA() async throws {
        try await withServer { server in
            let http = try client(try p12("unknown-auth"))
            let error = await curlError { _ = try await http.send(HTTPRequest(url: server.url("/echo"))) }
            #expect(error?.kind == .clientCertificate, "\(String(describing: error))")
            #expect(error?.isTransient == false)
        }
    }

    @Test func clientRefusesServerFromUnknownCA() async throws {
        try await withServer(certificate: "unknown-server") { server in
            let http = try client(try p12("org-auth"))
            let error = await curlError { _ = try await http.send(HTTPRequest(url: server.url("/echo"))) }
            #expect(error?.kind == .peerCertificate, "\(String(describing: error))")
            #expect(error?.codeName == "CURLE_PEER_FAILED_VERIFICATION")
            #expect(error?.detail.contains("unable to get local issuer certificate") == true, "\(String(describing: error))")
            #expect(error?.description.contains("127.0.0.1") == true)
        }
    }

    @Test func clientRefusesExpiredServerCertificate() async throws {
        try await withServer(certificate: "expired-server") { server in
            let http = try client(try p12("org-auth"))
            let error = await curlError { _ = try await http.send(HTTPRequest(url: server.url("/echo"))) }
            #expect(error?.kind == .peerCertificate, "\(String(describing: error))")
            #expect(error?.detail.contains("expired") == true, "\(String(describing: error))")
        }
    }

    @Test func wrongPKCS12PassphraseIsAClientCertificateError() async throws {
        try await withServer { server in
            let http = try client(.pkcs12(pki("org-auth.p12"), passphrase: TLSPassphrase("not the passphrase")))
            let error = await curlError { _ = try await http.send(HTTPRequest(url: server.url("/echo"))) }
            #expect(error?.kind == .clientCertificate, "\(String(describing: error))")
            #expect(error?.codeName == "CURLE_SSL_CERTPROBLEM")
            #expect(error?.description.contains("not the passphrase") == false)
        }
    }

    @Test func slowServerTimesOut() async throws {
        try await withServer { server in
            let http = try client(try p12("org-auth"), timeouts: CurlTimeouts(connect: .seconds(10), total: .seconds(1)))
            let start = ContinuousClock.now
            let error = await curlError { _ = try await http.send(HTTPRequest(url: server.url("/sleep?s=6"))) }
            #expect(error?.kind == .timeout, "\(String(describing: error))")
            #expect(error?.isTransient == true)
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    // Resident-set growth is process-wide, so it means something only when no other test
    // runs at the same time: scripts/test.sh runs the suite serially and sets the variable.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["PASSERELLE_TESTS_SERIAL"] == "1",
                   "peak RSS is process-wide: measured only when tests run one at a time (scripts/test.sh)"))
    func largeFileBodyIsStreamedPeakMemory() async throws {
        let directory = try TestPaths.temporaryDirectory("curlkit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("body.bin")
        // Written 1 MB at a time so the test itself never holds the whole body either.
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        var block = Data(count: 1 << 20)
        for index in 0..<20 {
            block.withUnsafeMutableBytes { bytes in
                for offset in stride(from: 0, to: bytes.count, by: 4096) { bytes[offset] = UInt8(truncatingIfNeeded: index &* 31 &+ offset / 4096) }
            }
            try handle.write(contentsOf: block)
        }
        try handle.close()
        let expectedSHA = try #require(ProcessRunner.run("sha256sum", [file.path]).stdout.split(separator: " ").first.map(String.init))

        try await withServer { server in
            let http = try client(try p12("org-auth"))
            let sampler = ResidentMemorySampler()
            let response = try await http.send(HTTPRequest(method: "POST", url: server.url("/echo"), body: .file(file)))
            let growth = sampler.stop()
            let got = try echo(response)
            #expect(response.status == 200)
            #expect(got.size == 20 << 20)
            #expect(got.sha256 == expectedSHA)
            // A copy of the body would add 20 MB to the resident set; streaming keeps it to buffers.
            #expect(growth < 12 << 20, "peak RSS grew by \(growth) bytes")
            if ProcessInfo.processInfo.environment["CURLKIT_PRINT_ERRORS"] != nil {
                print("20 MB upload: \(response.timing.total), peak RSS growth \(growth) bytes")
            }
        }
    }

    @Test func streamedBodiesOfUnknownAndKnownLength() async throws {
        // Chunks of uneven sizes (not multiples of curl's read buffer) and distinct contents,
        // so a read that skipped, repeated or reordered bytes within a chunk changes the digest.
        let count = 32
        let chunks = (0..<count).map { index in
            Data((0..<(50_000 + index * 1_237)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index &* 7 &+ $0 >> 9) })
        }
        let whole = chunks.reduce(into: Data()) { $0.append($1) }
        let expectedSHA = try sha256Hex(whole)

        try await withServer { server in
            let http = try client(try p12("org-auth"))
            // An async sequence, length unknown: sent with chunked transfer encoding.
            let sequence = AsyncStream<Data> { continuation in
                for chunk in chunks { continuation.yield(chunk) }
                continuation.finish()
            }
            let chunked = try echo(try await http.send(HTTPRequest(
                method: "POST", url: server.url("/echo"), body: .stream(ChunkStream(sequence)))))
            #expect(chunked.size == whole.count)
            #expect(chunked.sha256 == expectedSHA)
            #expect(chunked.transferEncoding == "chunked")

            // A synchronous provider with a known length: sent with Content-Length.
            let queue = LockedQueue(chunks)
            let provider = ChunkStream { queue.next() }
            let sized = try echo(try await http.send(HTTPRequest(
                method: "POST", url: server.url("/echo"), body: .stream(provider, length: Int64(whole.count)))))
            #expect(sized.size == whole.count)
            #expect(sized.sha256 == expectedSHA)
            #expect(sized.transferEncoding == nil)
        }
    }

    @Test func connectionIsReused() async throws {
        try await withServer { server in
            let http = try client(try p12("org-auth"))
            let first = try await http.send(HTTPRequest(url: server.url("/echo")))
            let second = try await http.send(HTTPRequest(method: "POST", url: server.url("/echo"), body: .data(Data("2".utf8))))
            let (a, b) = (try echo(first), try echo(second))
            #expect(a.clientPort == b.clientPort)
            #expect(b.connectionRequests == 2)
            #expect(second.timing.connectionReused)
            #expect(first.timing.newConnections == 1)
        }
    }

    @Test func concurrentRequestsAreBoundedByMaxConnections() async throws {
        try await withServer { server in
            let http = try HTTPClient(
                tls: TLSClientOptions(caBundle: pki("ca.pem"), clientIdentity: try p12("org-auth")),
                maxConnectionsPerHost: 2)
            let ports = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<6 {
                    group.addTask {
                        let response = try await http.send(HTTPRequest(
                            method: "POST", url: server.url("/echo"), body: .data(Data("request \(index)".utf8))))
                        #expect(response.status == 200)
                        return try echo(response).clientPort
                    }
                }
                return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
            }
            #expect(ports.count >= 1 && ports.count <= 2, "ports \(ports)")
        }
    }

    @Test func tls12OnlyClientFailsAgainstTLS13OnlyServer() async throws {
        try await withServer(protocols: .tls13) { server in
            let http = try client(try p12("org-auth"), maximumVersion: .v1_2)
            let error = await curlError { _ = try await http.send(HTTPRequest(url: server.url("/echo"))) }
            #expect(error?.kind == .tlsHandshake, "\(String(describing: error))")
            #expect(error?.detail.contains("protocol version") == true, "\(String(describing: error))")
        }
    }

    @Test func defaultCiphersNegotiateTLS12() async throws {
        try await withServer(protocols: .tls12) { server in
            let http = try client(try p12("org-auth"), crl: pki("ca.crl.pem"))
            let response = try await http.send(HTTPRequest(url: server.url("/echo")))
            #expect(try echo(response).tlsVersion == "TLSv1.2")
        }
    }

    @Test func httpErrorStatusIsAResponse() async throws {
        try await withServer { server in
            let http = try client(try p12("org-auth"))
            let response = try await http.send(HTTPRequest(url: server.url("/status?code=503")))
            #expect(response.status == 503)
            #expect(response.reason == "Service Unavailable")
            #expect(response.headers["retry-after"] == "30")
            #expect(String(decoding: response.body, as: UTF8.self) == "status 503")
        }
    }

    @Test func multiValuedHeadersAndHead() async throws {
        try await withServer { server in
            let http = try client(try p12("org-auth"))
            let response = try await http.send(HTTPRequest(url: server.url("/headers")))
            #expect(response.headers.values(for: "SET-COOKIE") == ["a=1", "b=2"])
            #expect(response.headers.values(for: "x-multi") == ["one", "two"])
            let head = try await http.send(HTTPRequest(method: "HEAD", url: server.url("/headers")))
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
        }
    }

    @Test func responseSizeLimitAndFileDestination() async throws {
        let directory = try TestPaths.temporaryDirectory("curlkit")
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withServer { server in
            let http = try client(try p12("org-auth"))
            let error = await curlError {
                _ = try await http.send(HTTPRequest(url: server.url("/bytes?n=100000"), responseBody: .collect(limit: 1000)))
            }
            #expect(error?.kind == .responseTooLarge, "\(String(describing: error))")

            let file = directory.appendingPathComponent("response.bin")
            let response = try await http.send(HTTPRequest(url: server.url("/bytes?n=300000"), responseBody: .file(file)))
            #expect(response.body.isEmpty)
            let stored = try Data(contentsOf: file)
            #expect(stored.count == 300_000)
            #expect(try sha256Hex(stored) == response.headers["x-sha256"])
            let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    @Test func cancellationStopsTheTransfer() async throws {
        try await withServer { server in
            let http = try client(try p12("org-auth"))
            let start = ContinuousClock.now
            let task = Task { try await http.send(HTTPRequest(url: server.url("/sleep?s=8"))) }
            try await Task.sleep(for: .milliseconds(500))
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    @Test func plainHTTPAndMissingFilesAreRefused() async throws {
        let http = try client(try p12("org-auth"))
        let error = await curlError { _ = try await http.send(HTTPRequest(url: URL(string: "http://127.0.0.1:9/")!)) }
        #expect(error?.kind == .invalidRequest)

        #expect(throws: CurlError.self) {
            _ = try HTTPClient(tls: TLSClientOptions(caBundle: URL(fileURLWithPath: "/nonexistent/ca.pem")))
        }
        #expect("\(try passphrase())".contains("redacted"))
    }
}

private final class LockedQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var items: ArraySlice<Data>
    init(_ items: [Data]) { self.items = items[...] }
    func next() -> Data? { lock.withLock { items.popFirst() } }
}

/// Samples this process's resident set size every 2 ms (ru_maxrss is a lifetime high-water
/// mark, too coarse when earlier activity already peaked higher) and reports the largest
/// growth over the starting value.
private final class ResidentMemorySampler: @unchecked Sendable {
    private let baseline = ResidentMemorySampler.current()
    private let maximum = LockedValue(0)
    private let running = LockedValue(true)
    private let finished = DispatchSemaphore(value: 0)

    init() {
        Thread.detachNewThread { [self] in
            while running.get() {
                maximum.set(max(maximum.get(), Self.current()))
                usleep(2_000)
            }
            finished.signal()
        }
    }

    func stop() -> Int {
        running.set(false)
        finished.wait()
        return max(0, maximum.get() - baseline)
    }

    static func current() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
