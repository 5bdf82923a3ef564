import Foundation
#if canImport(Glibc)
import Glibc
#endif
import OpenSSLKit
import Synchronization
import Testing
import TestSupport

/// Collects what server threads report, for the test to look at.
final class Recorder: Sendable {
    private let items = Mutex<[String]>([])
    func add(_ item: String) { items.withLock { $0.append(item) } }
    var all: [String] { items.withLock { $0 } }

    /// Waits (up to 20 s: the machine may be busy) for the server thread to report something.
    func first(timeout: TimeInterval = 20) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let item = all.first { return item }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return nil
    }
}

enum TLSFixtures {
    static var ca: URL { PKI.url("ca.pem") }

    static func server(_ name: String = "server-localhost", requireClientCertificate: Bool = true,
                       crl: Bool = false, minimum: TLSConfiguration.ProtocolVersion = .tls1_2,
                       maximum: TLSConfiguration.ProtocolVersion = .tls1_3, cipherList: String? = nil) throws -> TLSConfiguration {
        TLSConfiguration(trustedCAFile: ca, identity: try PKI.bundle(name), crlFiles: crl ? [PKI.url("ca.crl.pem")] : [],
                         requireClientCertificate: requireClientCertificate, minimumVersion: minimum,
                         maximumVersion: maximum, cipherList: cipherList, timeout: 20)
    }

    static func client(_ name: String? = "org-auth", minimum: TLSConfiguration.ProtocolVersion = .tls1_2,
                       maximum: TLSConfiguration.ProtocolVersion = .tls1_3, cipherList: String? = nil) throws -> TLSConfiguration {
        TLSConfiguration(trustedCAFile: ca, identity: try name.map(PKI.bundle), minimumVersion: minimum,
                         maximumVersion: maximum, cipherList: cipherList, timeout: 20)
    }

    /// An echo server: answers each line with "echo: LINE" and records the client certificate's CN.
    static func echoServer(_ configuration: TLSConfiguration, errors: Recorder, clients: Recorder) throws -> TLSServer {
        try TLSServer(configuration: configuration, onError: { errors.add($0.description) }) { stream in
            clients.add(stream.peerCertificate?.subject.commonName ?? "(no certificate)")
            while let line = try? stream.readLine(maxLength: 1 << 20) {
                if line == "QUIT" { break }
                try? stream.write("echo: \(line)\r\n")
            }
        }
    }

    /// Connects, sends a line and reads the answer; the error text if any step fails.
    static func exchange(port: UInt16, host: String = "localhost", _ configuration: TLSConfiguration) -> Result<String, TLSError> {
        do throws(TLSError) {
            let stream = try TLSStream.connect(host: host, port: port, configuration: configuration)
            defer { stream.close() }
            try stream.write("ping\r\n")
            guard let answer = try stream.readLine() else { return .failure(.socket(.closedByPeer(peer: stream.peer))) }
            return .success(answer)
        } catch {
            return .failure(error)
        }
    }
}

@Suite struct TLSTests {
    @Test func mutualTLSRoundTrip() throws {
        let errors = Recorder(), clients = Recorder()
        let server = try TLSFixtures.echoServer(TLSFixtures.server(), errors: errors, clients: clients)
        defer { server.stop() }
        let stream = try TLSStream.connect(host: "localhost", port: server.port, configuration: TLSFixtures.client())
        defer { stream.close() }
        #expect(stream.protocolVersion == "TLSv1.3")
        #expect(!stream.cipher.isEmpty)
        #expect(stream.peerCertificate?.subject.commonName == "localhost")
        try stream.write("hello\r\n")
        #expect(try stream.readLine() == "echo: hello")
        // A long line split over many TLS records comes back whole.
        let long = String(repeating: "x", count: 100_000)
        try stream.write(long + "\n")
        #expect(try stream.readLine(maxLength: 200_000) == "echo: " + long)
        #expect(clients.first() == "passerelle.ch-test.fr (ORG_AUTH_CLI)")
        #expect(errors.all.isEmpty)
    }

    @Test func asyncAPIAndIPAddressVerification() async throws {
        let errors = Recorder(), clients = Recorder()
        let server = try TLSFixtures.echoServer(TLSFixtures.server(), errors: errors, clients: clients)
        defer { server.stop() }
        // The certificate names IP:127.0.0.1 too.
        let stream = try await TLSStream.connect(host: "127.0.0.1", port: server.port, configuration: TLSFixtures.client())
        try await stream.write("async\r\n")
        let answer = try await stream.readLine()
        #expect(answer == "echo: async")
        stream.close()
    }

    @Test func tls12CanBeForced() throws {
        let errors = Recorder(), clients = Recorder()
        let server = try TLSFixtures.echoServer(TLSFixtures.server(), errors: errors, clients: clients)
        defer { server.stop() }
        let stream = try TLSStream.connect(host: "localhost", port: server.port,
                                           configuration: TLSFixtures.client(maximum: .tls1_2))
        defer { stream.close() }
        #expect(stream.protocolVersion == "TLSv1.2")
        try stream.write("v12\n")
        #expect(try stream.readLine() == "echo: v12")
    }

    /// A refused client certificate: in TLS 1.3 the client learns it on its first read.
    @Test(arguments: [
        (nil, "peer did not return a certificate", "certificate required"),
        ("unknown-auth", "certificate verify failed: unable to get local issuer certificate", "unknown ca"),
        ("expired-auth", "certificate verify failed: certificate has expired", "certificate expired"),
    ] as [(String?, String, String)])
    func serverRefusesClient(identity: String?, serverReason: String, clientReason: String) throws {
        let errors = Recorder(), clients = Recorder()
        let server = try TLSFixtures.echoServer(TLSFixtures.server(), errors: errors, clients: clients)
        defer { server.stop() }
        let result = TLSFixtures.exchange(port: server.port, try TLSFixtures.client(identity))
        guard case let .failure(error) = result else {
            Issue.record("the exchange succeeded: \(result)")
            return
        }
        #expect(error.description.contains(clientReason), "\(error)")
        let reported = try #require(errors.first())
        #expect(reported.contains(serverReason), "\(reported)")
        #expect(reported.hasPrefix("TLS handshake with 127.0.0.1:"))
        #expect(clients.all.isEmpty)
    }

    @Test func revokedClientRefusedWithTheCRL() throws {
        let errors = Recorder(), clients = Recorder()
        let server = try TLSFixtures.echoServer(TLSFixtures.server(crl: true), errors: errors, clients: clients)
        defer { server.stop() }
        #expect(TLSFixtures.exchange(port: server.port, try TLSFixtures.client("revoked-auth")).isFailure)
        #expect(errors.first()?.contains("certificate verify failed: certificate revoked") == true)
        // The same server still accepts a good client.
        #expect(TLSFixtures.exchange(port: server.port, try TLSFixtures.client()) == .success("echo: ping"))
    }

    @Test(arguments: [
        ("unknown-server", "certificate verify failed: unable to get local issuer certificate"),
        ("expired-server", "certificate verify failed: certificate has expired"),
    ])
    func clientRefusesServer(name: String, reason: String) throws {
        let errors = Recorder(), clients = Recorder()
        let server = try TLSFixtures.echoServer(TLSFixtures.server(name), errors: errors, clients: clients)
        defer { server.stop() }
        let result = TLSFixtures.exchange(port: server.port, try TLSFixtures.client())
        let expected = TLSError.handshakeFailed(peer: "localhost:\(server.port)", reason: reason)
        #expect(result == .failure(expected))
        #expect(expected.description == "TLS handshake with localhost:\(server.port) failed: \(reason)")
        #expect(clients.all.isEmpty)
    }

    @Test func clientVerifiesTheHostName() throws {
        let errors = Recorder(), clients = Recorder()
        let server = try TLSFixtures.echoServer(TLSFixtures.server(), errors: errors, clients: clients)
        defer { server.stop() }
        let socket = try Socket.connect(host: "127.0.0.1", port: server.port)
        let context = try TLSContext(role: .client, configuration: TLSFixtures.client())
        #expect(throws: TLSError.handshakeFailed(peer: "127.0.0.1:\(server.port)",
                                                 reason: "certificate verify failed: hostname mismatch")) {
            try TLSStream.upgrade(socket, context: context, serverName: "dmp.example.org")
        }
    }

    @Test func protocolMismatch() throws {
        let errors = Recorder(), clients = Recorder()
        let server = try TLSFixtures.echoServer(TLSFixtures.server(minimum: .tls1_3), errors: errors, clients: clients)
        defer { server.stop() }
        let result = TLSFixtures.exchange(port: server.port, try TLSFixtures.client(maximum: .tls1_2))
        #expect(result == .failure(.handshakeFailed(peer: "localhost:\(server.port)", reason: "tlsv1 alert protocol version")))
        #expect(errors.first()?.contains("unsupported protocol") == true)
    }

    @Test func cipherMismatch() throws {
        let errors = Recorder(), clients = Recorder()
        let server = try TLSFixtures.echoServer(
            TLSFixtures.server(maximum: .tls1_2, cipherList: "ECDHE-RSA-AES128-GCM-SHA256"), errors: errors, clients: clients)
        defer { server.stop() }
        let result = TLSFixtures.exchange(port: server.port,
                                          try TLSFixtures.client(maximum: .tls1_2, cipherList: "ECDHE-RSA-AES256-GCM-SHA384"))
        #expect(result == .failure(.handshakeFailed(peer: "localhost:\(server.port)", reason: "sslv3 alert handshake failure")))
        #expect(errors.first()?.contains("no shared cipher") == true)
        // The matching suite works.
        let good = TLSFixtures.exchange(port: server.port,
                                        try TLSFixtures.client(maximum: .tls1_2, cipherList: "ECDHE-RSA-AES128-GCM-SHA256"))
        #expect(good == .success("echo: ping"))
    }

    @Test func configurationErrors() throws {
        #expect(throws: TLSError.self) {
            try TLSContext(role: .client, configuration: TLSFixtures.client(cipherList: "NO-SUCH-CIPHER"))
        }
        do {
            _ = try TLSContext(role: .client, configuration: TLSFixtures.client(cipherList: "NO-SUCH-CIPHER"))
        } catch let error as TLSError {
            #expect(error.description.contains("no cipher match"), "\(error)")
        }
        // Verification cannot be switched off: a client without CAs is refused.
        #expect(throws: TLSError.configuration("a CA file is required to verify the peer (verification cannot be turned off)")) {
            try TLSContext(role: .client, configuration: TLSConfiguration(trustedCAFile: nil))
        }
        #expect(throws: TLSError.self) {
            try TLSContext(role: .server, configuration: TLSConfiguration(trustedCAFile: TLSFixtures.ca))
        }
    }

    @Test func startTLSAfterPlainText() throws {
        let errors = Recorder()
        let serverContext = try TLSContext(role: .server, configuration: TLSFixtures.server())
        let server = try SocketServer { socket in
            do {
                try socket.write("220 ready\r\n")
                guard try socket.readLine() == "STARTTLS" else { return socket.close() }
                try socket.write("220 go ahead\r\n")
                let stream = try TLSStream.upgrade(socket, context: serverContext)
                defer { stream.close() }
                let cn = stream.peerCertificate?.subject.commonName ?? "-"
                while let line = try stream.readLine() { try stream.write("secure \(cn): \(line)\r\n") }
            } catch {
                errors.add("\(error)")
            }
        }
        defer { server.stop() }

        let socket = try Socket.connect(host: "localhost", port: server.port, timeout: 5)
        #expect(try socket.readLine() == "220 ready")
        try socket.write("STARTTLS\r\n")
        #expect(try socket.readLine() == "220 go ahead")
        let stream = try TLSStream.upgrade(socket, context: TLSContext(role: .client, configuration: TLSFixtures.client()),
                                           serverName: "localhost")
        defer { stream.close() }
        try stream.write("MAIL FROM:<a@b>\r\n")
        #expect(try stream.readLine() == "secure passerelle.ch-test.fr (ORG_AUTH_CLI): MAIL FROM:<a@b>")
        #expect(errors.all.isEmpty)
        // The plain socket is now owned by the TLS stream.
        #expect(throws: SocketError.closed) { try socket.write("x") }
    }

    @Test func startTLSInjectionIsRefused() throws {
        let errors = Recorder()
        let serverContext = try TLSContext(role: .server, configuration: TLSFixtures.server())
        let server = try SocketServer { socket in
            do {
                guard try socket.readLine() == "STARTTLS" else { return socket.close() }
                _ = try TLSStream.upgrade(socket, context: serverContext)
            } catch {
                errors.add("\(error)")
            }
        }
        defer { server.stop() }
        let socket = try Socket.connect(host: "127.0.0.1", port: server.port, timeout: 5)
        defer { socket.close() }
        try socket.write("STARTTLS\r\nRCPT TO:<injected@example>\r\n")
        #expect(errors.first()?.contains("plain-text data before the TLS handshake") == true)
    }
}

@Suite struct SocketTests {
    @Test func linesTimeoutsAndRefusal() throws {
        let server = try SocketServer { socket in
            try? socket.write("one\r\ntwo\nthree-without-newline")
            Thread.sleep(forTimeInterval: 1)  // then silence, to trigger the client's timeout
            try? socket.write("\n")
            socket.close()
        }
        defer { server.stop() }
        let socket = try Socket.connect(host: "127.0.0.1", port: server.port, timeout: 5)
        #expect(try socket.readLine() == "one")
        #expect(try socket.readLine() == "two")
        socket.setTimeout(0.2)
        let started = Date()
        #expect(throws: SocketError.timedOut(operation: "read", peer: "127.0.0.1:\(server.port)")) { try socket.readLine() }
        #expect(Date().timeIntervalSince(started) < 0.9)
        socket.setTimeout(5)
        #expect(try socket.readLine() == "three-without-newline")
        #expect(try socket.readLine() == nil)

        // A port bound but not listening refuses connections (and cannot be taken by another test meanwhile).
        let (port, holder) = try Self.boundPort()
        defer { _ = Glibc.close(holder) }
        #expect(throws: SocketError.connectFailed(host: "127.0.0.1", port: port, reason: "Connection refused")) {
            try Socket.connect(host: "127.0.0.1", port: port, timeout: 2)
        }
    }

    static func boundPort() throws -> (UInt16, Int32) {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        try #require(bound)
        return (UInt16(bigEndian: address.sin_port), fd)
    }

    @Test func lineLengthIsBounded() throws {
        let server = try SocketServer { socket in
            try? socket.write(String(repeating: "a", count: 10_000))
            Thread.sleep(forTimeInterval: 0.5)
            socket.close()
        }
        defer { server.stop() }
        let socket = try Socket.connect(host: "127.0.0.1", port: server.port, timeout: 5)
        #expect(throws: SocketError.lineTooLong(peer: "127.0.0.1:\(server.port)", limit: 1000)) {
            try socket.readLine(maxLength: 1000)
        }
    }
}

extension Result {
    var isFailure: Bool { if case .failure = self { true } else { false } }
}

@Suite struct BlockingExecutorTests {
    /// Many connections blocked in reads at once must not stop another from progressing:
    /// each connection has its own thread, unlike a shared worker pool.
    @Test func blockedReadsDoNotStarveOtherConnections() async throws {
        let server = try SocketServer { socket in
            // Answers only lines that say "hello"; other connections stay silent.
            while let line = try? socket.readLine() {
                if line == "hello" { try? socket.write("hi\n") }
            }
        }
        defer { server.stop() }
        var silent: [Socket] = []
        for _ in 0..<40 {
            let socket = try await Socket.connect(host: "127.0.0.1", port: server.port, timeout: 60)
            try await socket.write("wait\n")
            silent.append(socket)
        }
        let readers = silent.map { socket in Task { try? await socket.readLine() } }
        let talker = try await Socket.connect(host: "127.0.0.1", port: server.port, timeout: 60)
        // Timed after the set-up: only the exchange that must not wait for the 40 blocked reads.
        let started = Date()
        try await talker.write("hello\n")
        let answer = try await talker.readLine()
        #expect(answer == "hi")
        #expect(Date().timeIntervalSince(started) < 10)
        talker.close()
        for socket in silent { socket.close() }
        for reader in readers { #expect(await reader.value == nil) }
    }
}
