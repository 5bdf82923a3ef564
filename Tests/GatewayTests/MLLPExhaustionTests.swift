import IHE
import DMP
import Foundation
import Gateway
import Intake
import Journal
import OpenSSLKit
import PasserelleCore
import Synchronization
import Testing
import TestSupport

/// The policy values alone: CIDR matching, admission, the eviction choice, the deadline.
@Suite struct MLLPPolicyTests {
    @Test func addressRangesMatchIPv4AndIPv6() throws {
        let net = try #require(ClientAddressRange("10.1.0.0/16"))
        #expect(net.contains("10.1.2.3") && net.contains("10.1.255.255"))
        #expect(!net.contains("10.2.0.1") && !net.contains("::1") && !net.contains("not an address"))
        #expect(net.contains("::ffff:10.1.2.3"), "an IPv4-mapped peer of a dual-stack listener")
        let host = try #require(ClientAddressRange("127.0.0.1"))
        #expect(host.contains("127.0.0.1") && !host.contains("127.0.0.2"))
        let odd = try #require(ClientAddressRange("192.168.1.128/25"))
        #expect(odd.contains("192.168.1.200") && !odd.contains("192.168.1.127"))
        #expect(ClientAddressRange("10.1.2.3/16")?.description == "10.1.0.0/16", "host bits cleared")
        let v6 = try #require(ClientAddressRange("fd00::/8"))
        #expect(v6.contains("fd12:3456::1") && !v6.contains("fe80::1") && !v6.contains("10.1.2.3"))
        #expect(ClientAddressRange("::1")?.contains("::1") == true && ClientAddressRange("::1")?.contains("::2") == false)
        #expect(ClientAddressRange("2001:db8::/32")?.contains("2001:db8:ffff::5") == true)
        #expect(ClientAddressRange("0.0.0.0/0")?.contains("203.0.113.9") == true)
        for bad in ["", "10.1.2", "10.1.0.0/33", "10.0.0.0/+8", "::/129", "10.0.0.0/-1", "10.0.0.0/", "host.example", "10.0.0.0/8/8"] {
            #expect(ClientAddressRange(bad) == nil, "\(bad)")
        }
    }

    static let t0 = Date(timeIntervalSince1970: 1_000_000)
    static func state(_ id: Int, _ host: String = "10.0.0.1", idleSince: Double, busy: Bool = false, messageSince: Double? = nil) -> MLLPConnectionPolicy.ConnectionState {
        .init(id: id, peerHost: host, openedAt: t0, lastActivity: t0.addingTimeInterval(idleSince),
              messageStartedAt: messageSince.map { t0.addingTimeInterval($0) }, busy: busy)
    }

    @Test func theLongestIdleConnectionGivesWayNeverABusyOne() {
        // 1: busy for long (never chosen); 2: mid-message, silent the longest; 3 and 4 between messages.
        let open = [Self.state(1, idleSince: 0, busy: true), Self.state(2, idleSince: 1, messageSince: 1),
                    Self.state(3, idleSince: 5), Self.state(4, idleSince: 3)]
        #expect(MLLPConnectionPolicy.evictionCandidate(open)?.id == 4, "between messages first, then the longest silent")
        #expect(MLLPConnectionPolicy.evictionCandidate(Array(open.prefix(2)))?.id == 2, "a slow message rather than nothing")
        #expect(MLLPConnectionPolicy.evictionCandidate([Self.state(1, idleSince: 0, busy: true)]) == nil)

        let policy = MLLPConnectionPolicy(maxConnections: 4, maxConnectionsPerPeer: 3, allowedClients: [ClientAddressRange("10.0.0.0/8")!])
        #expect(policy.admission(of: "192.168.0.1", among: []) == .refuseNotAllowed)
        #expect(policy.admission(of: "10.9.9.9", among: Array(open.prefix(2))) == .admit)
        #expect(policy.admission(of: "10.9.9.9", among: open) == .admitEvicting(id: 4))
        #expect(policy.admission(of: "10.0.0.1", among: Array(open.prefix(3))) == .refusePeerLimit)
        let allBusy = (1...4).map { Self.state($0, "10.0.0.\($0)", idleSince: 0, busy: true) }
        #expect(policy.admission(of: "10.9.9.9", among: allBusy) == .refuseFull)
        #expect(MLLPConnectionPolicy().allows("203.0.113.9"), "no allow-list: everyone")
    }

    @Test func theMessageDeadlineRunsFromTheFirstByteOrTheConnectionStart() {
        var s = Self.state(1, idleSince: 0)
        #expect(s.deadline(10) == Self.t0.addingTimeInterval(10), "no byte yet: from the connection's start")
        s.messageStartedAt = Self.t0.addingTimeInterval(30)
        #expect(s.deadline(10) == Self.t0.addingTimeInterval(40))
        s.busy = true
        #expect(s.deadline(10) == nil, "its ACK is being prepared")
        s = Self.state(1, idleSince: 50)
        s.awaitingFirstMessage = false
        #expect(s.deadline(10) == nil, "between messages the idle timeout applies")
    }

    @Test func configurationKeys() throws {
        let base = TestConfiguration.withTestPKI()
        let c = try PasserelleConfiguration.parse(base + """

            [mllp]
            enabled = true
            message_timeout_seconds = 30
            max_connections_per_peer = 4
            allowed_clients = ["10.1.0.0/16", "192.168.3.4", "fd00::/8"]
            """, file: "/tmp/passerelle-test/passerelle.toml")
        #expect(c.mllp.messageTimeoutSeconds == 30 && c.mllp.maxConnectionsPerPeer == 4)
        #expect(c.mllp.allowedClients.map(\.description) == ["10.1.0.0/16", "192.168.3.4", "fd00::/8"])
        let defaults = try PasserelleConfiguration.parse(base, file: "/tmp/passerelle-test/passerelle.toml").mllp
        #expect(defaults.messageTimeoutSeconds == 120 && defaults.maxConnectionsPerPeer == 8 && defaults.allowedClients.isEmpty)
        #expect(throws: (any Error).self) {
            try PasserelleConfiguration.parse(base + "\n[mllp]\nallowed_clients = [\"10.1.0.0/40\"]\n", file: "/tmp/passerelle-test/passerelle.toml")
        }
    }
}

/// The listener alone, with a trivial handler.
@Suite struct MLLPListenerPolicyTests {
    @Test func aFullListenerClosesTheLongestIdleConnectionButNeverOneBeingProcessed() async throws {
        let release = Mutex(false)
        let listener = try MLLPListener(settings: MLLPSettings(maxConnections: 1, idleTimeout: 10, maxConnectionsPerPeer: 8),
                                        handler: { message in
                                            if message == Data("hold".utf8) {
                                                while !release.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(20)) }
                                            }
                                            return Data("ACK for ".utf8) + message
                                        }, oversize: { Data("too big".utf8) })
        defer { listener.stop() }
        let first = try await Socket.connect(host: "127.0.0.1", port: listener.port, timeout: 5)
        defer { first.close() }
        try await first.write(MLLPFrame.wrap(Data("one".utf8)))
        #expect(try await MLLPServiceTests.readFrame(first) == "ACK for one")
        // The listener marks the connection idle just after its ACK is written: let it.
        try await Task.sleep(for: .milliseconds(200))
        // Full: the idle first connection gives way to the new one.
        let second = try await Socket.connect(host: "127.0.0.1", port: listener.port, timeout: 5)
        defer { second.close() }
        #expect(await MLLPExhaustionTests.closed(first, within: 2), "the idle connection was closed to make room")
        let frame = MLLPFrame.wrap(Data("two".utf8))
        try await second.write(frame.prefix(2))
        try await second.write(frame.dropFirst(2))
        #expect(try await MLLPServiceTests.readFrame(second) == "ACK for two")
        // A connection whose message is being processed is never evicted: the newcomer is refused.
        try await second.write(MLLPFrame.wrap(Data("hold".utf8)))
        #expect(await Harness.waitUntil(timeout: 5) { listener.activeConnections == 1 })
        try await Task.sleep(for: .milliseconds(200))
        let third = try await Socket.connect(host: "127.0.0.1", port: listener.port, timeout: 5)
        defer { third.close() }
        #expect(await MLLPExhaustionTests.closed(third, within: 2), "refused while the only connection is busy")
        release.withLock { $0 = true }
        #expect(try await MLLPServiceTests.readFrame(second) == "ACK for hold")
    }
}

extension MLLPListenerPolicyTests {
    /// The first message's clock starts with the connection: a client that connects and sends
    /// nothing, or stalls the TLS handshake, is closed at the deadline (not after the idle timeout).
    @Test(arguments: [false, true])
    func aSilentNewConnectionIsClosedAtTheMessageDeadline(_ tls: Bool) async throws {
        var settings = MLLPSettings(idleTimeout: 30, messageTimeout: 1)
        if tls {
            let pki = TestPaths.testPKI
            settings.tls = TLSConfiguration(trustedCAFile: nil, identity: try PKCS12Bundle.load(
                path: pki.appendingPathComponent("server-localhost.p12"), passphrase: try Passphrase.read(file: TestPaths.testPKIPassphraseFile)))
        }
        let listener = try MLLPListener(settings: settings, handler: { _ in Data("ACK".utf8) }, oversize: { Data() })
        defer { listener.stop() }
        let started = Date()
        let silent = try await Socket.connect(host: "127.0.0.1", port: listener.port, timeout: 5)
        defer { silent.close() }
        #expect(await MLLPExhaustionTests.closed(silent, within: 4))
        let lived = Date().timeIntervalSince(started)
        #expect(lived >= 0.9 && lived < 3, "closed after \(lived) s")
        #expect(await Harness.waitUntil(timeout: 2) { listener.activeConnections == 0 }, "its thread ended")
    }
}

/// Exhaustion attacks against the listener as `passerelle run` assembles it (GatewayService
/// with its configuration), a legitimate client served meanwhile, its document sent to the DMP.
@Suite(.serialized) struct MLLPExhaustionTests {
    /// True when the server closed `socket` within `seconds` (end of stream or reset), false
    /// when it is still open (read timed out / nothing came).
    static func closed(_ socket: Socket, within seconds: TimeInterval) async -> Bool {
        socket.setTimeout(seconds)
        do { return try await socket.read(maxLength: 64).isEmpty } catch let error as SocketError {
            if case .timedOut = error { return false }
            return true
        } catch { return true }
    }

    /// The gateway with MLLP on an ephemeral port and `settings` in `[mllp]`.
    static func start(_ settings: String) async throws -> (Harness, GatewayService, Task<Void, any Error>, UInt16) {
        let h = try Harness(extra: "[mllp]\nenabled = true\nport = 0\n" + settings)
        let service = try h.service()
        let running = Task { try await service.run() }
        _ = await Harness.waitUntil(timeout: 10) { service.mllpPort != nil }
        guard let port = service.mllpPort else { h.cleanUp(); throw SocketError.closed }
        return (h, service, running, port)
    }

    /// A legitimate ORU from `localAddress`: answered AA within `seconds`; returns its id.
    static func legitimateORU(port: UInt16, localAddress: String? = nil, seconds: TimeInterval = 5) async throws -> InstanceIdentifier {
        let example = try Data(contentsOf: Harness.fixtures.appendingPathComponent("oru-ex0-biology-new.hl7"))
        let (oru, id) = try Documents.oru(example)
        let started = Date()
        let client = try await Socket.connect(host: "127.0.0.1", port: port, timeout: seconds, localAddress: localAddress)
        defer { client.close() }
        try await client.write(MLLPFrame.wrap(oru))
        let ack = try await MLLPServiceTests.readFrame(client)
        #expect(MLLPServiceTests.fields(ack, "MSA")?[1] == "AA", "\(ack)")
        #expect(Date().timeIntervalSince(started) < seconds)
        return id
    }

    static func expectSent(_ id: InstanceIdentifier, _ h: Harness) async throws {
        let uniqueId = DocumentEntryMapper.uniqueId(id)
        #expect(await Harness.waitUntil(timeout: 30) { h.endpoint.stored(uniqueId) != nil }, "the document reached the DMP endpoint")
    }

    @Test("300 idle connections: a legitimate client is still served (the longest idle gives way), its document reaches the DMP")
    func idleConnectionsCannotLockOutAClient() async throws {
        let (h, service, running, port) = try await Self.start("max_connections = 64\nmax_connections_per_peer = 1024\n")
        defer { h.cleanUp() }
        var idle: [Socket] = []
        defer { idle.forEach { $0.close() } }
        for _ in 0..<300 { idle.append(try await Socket.connect(host: "127.0.0.1", port: port, timeout: 5)) }
        try await Task.sleep(for: .milliseconds(300))
        let id = try await Self.legitimateORU(port: port)
        // The oldest idle ones were closed to make room (the listener never holds more than 64).
        var closedCount = 0
        for socket in idle.prefix(20) where await Self.closed(socket, within: 1) { closedCount += 1 }
        #expect(closedCount == 20, "the first idle connections were evicted: \(closedCount)")
        try await Self.expectSent(id, h)
        service.stop()
        try await running.value
    }

    @Test("20 slowloris clients at 1 byte/s: a legitimate client is served meanwhile; each slow one is closed by the message deadline")
    func slowClientsAreClosedByTheMessageDeadline() async throws {
        let deadline = 3.0
        let (h, service, running, port) = try await Self.start(
            "max_connections = 16\nmax_connections_per_peer = 1024\nmessage_timeout_seconds = \(Int(deadline))\nidle_timeout_seconds = 60\n")
        defer { h.cleanUp() }
        let started = Date()
        let slow = try await withThrowingTaskGroup(of: TimeInterval?.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    let socket = try await Socket.connect(host: "127.0.0.1", port: port, timeout: 5)
                    defer { socket.close() }
                    let opened = Date()
                    let bytes = [MLLPFrame.start] + Array("MSH|^~\\&|SLOW|SLOW|PASSERELLE|CH|20250101||ORU^R01|1|P|2.5\r".utf8)
                    for byte in bytes {
                        // The server's shutdown shows as a failed write (reset) or an end of
                        // stream; waiting for it paces the bytes (one a second).
                        do { try await socket.write(Data([byte])) } catch { return Date().timeIntervalSince(opened) }
                        if await Self.closed(socket, within: 1) { return Date().timeIntervalSince(opened) }
                        if Date().timeIntervalSince(opened) > 15 { return nil }
                    }
                    return nil
                }
            }
            // Meanwhile, a legitimate client.
            try await Task.sleep(for: .milliseconds(1500))
            let id = try await Self.legitimateORU(port: port)
            #expect(Date().timeIntervalSince(started) < deadline + 3, "served while the slow clients were still there")
            var lifetimes: [TimeInterval?] = []
            for try await t in group { lifetimes.append(t) }
            try await Self.expectSent(id, h)
            return lifetimes
        }
        #expect(slow.count == 20)
        // Most were closed by the deadline itself, not earlier (the 4 over max_connections and
        // the one that made room for the legitimate client were evicted before).
        #expect(slow.filter { ($0 ?? 0) >= deadline - 0.5 }.count >= 10, "\(slow)")
        for t in slow {
            // Closed at the deadline (or earlier, evicted to make room).
            #expect(t != nil && t! < deadline + 2, "slow client lived \(t.map { "\($0)" } ?? "forever") s")
        }
        service.stop()
        try await running.value
    }

    @Test("max_connections_per_peer: a third connection from 127.0.0.2 is closed at once, 127.0.0.1 is served, the first two still work")
    func perPeerLimit() async throws {
        let (h, service, running, port) = try await Self.start("max_connections_per_peer = 2\n")
        defer { h.cleanUp() }
        let a = try await Socket.connect(host: "127.0.0.1", port: port, timeout: 5, localAddress: "127.0.0.2")
        let b = try await Socket.connect(host: "127.0.0.1", port: port, timeout: 5, localAddress: "127.0.0.2")
        defer { a.close(); b.close() }
        try await Task.sleep(for: .milliseconds(200))
        let c = try await Socket.connect(host: "127.0.0.1", port: port, timeout: 5, localAddress: "127.0.0.2")
        defer { c.close() }
        #expect(await Self.closed(c, within: 2), "over the per-peer limit")
        let id = try await Self.legitimateORU(port: port, localAddress: "127.0.0.1")
        for socket in [a, b] {
            socket.setTimeout(10)
            try await socket.write(MLLPFrame.wrap(Data(Harness.adtA01.utf8)))
            #expect(MLLPServiceTests.fields(try await MLLPServiceTests.readFrame(socket), "MSA")?[1] == "AA")
        }
        try await Self.expectSent(id, h)
        service.stop()
        try await running.value
    }

    @Test("allowed_clients: 127.0.0.3 is closed at accept, 127.0.0.1 is served")
    func allowList() async throws {
        let (h, service, running, port) = try await Self.start("allowed_clients = [\"127.0.0.1/32\", \"::1\"]\n")
        defer { h.cleanUp() }
        let refused = try await Socket.connect(host: "127.0.0.1", port: port, timeout: 5, localAddress: "127.0.0.3")
        defer { refused.close() }
        try? await refused.write(MLLPFrame.wrap(Data(Harness.adtA01.utf8)))
        #expect(await Self.closed(refused, within: 2), "not in allowed_clients")
        let id = try await Self.legitimateORU(port: port, localAddress: "127.0.0.1")
        try await Self.expectSent(id, h)
        service.stop()
        try await running.value
    }
}
