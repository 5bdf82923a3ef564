import CoreMetrics
import Foundation
import Observability
import OpenSSLKit
import Testing
import TestSupport
import WebServer

/// One GET over a real TCP connection; returns status code and body. Async, on the socket's
/// own thread: a blocking read on the cooperative pool would starve the server's probes.
func get(_ server: StatusServer, _ path: String, method: String = "GET") async throws -> (Int, String) {
    let response = try await fetch(server, path, method: method)
    return (response.code, response.body)
}

/// ``get(_:_:method:)`` with the headers too (names lower-cased).
func fetch(_ server: StatusServer, _ path: String, method: String = "GET") async throws -> (code: Int, headers: [String: String], body: String) {
    let socket = try await Socket.connect(host: "127.0.0.1", port: server.port, timeout: 5)
    defer { socket.close() }
    try await socket.write("\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n")
    var response = Data()
    while true {
        let chunk = try await socket.read(maxLength: 65_536)
        if chunk.isEmpty { break }
        response.append(chunk)
    }
    let text = String(decoding: response, as: UTF8.self)
    let statusLine = text.prefix { $0 != "\r" }
    let code = Int(statusLine.split(separator: " ")[1]) ?? -1
    var headers: [String: String] = [:]
    let head = text.range(of: "\r\n\r\n").map { text[..<$0.lowerBound] } ?? ""
    for line in head.split(separator: "\r\n").dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (code, headers, body)
}

struct FlagProbe: ReadinessProbe {
    let name: String
    let flag: LockedFlag
    func check() async -> ReadinessCheck {
        ReadinessCheck(name: name, ready: flag.value, detail: flag.value ? "" : "switched off by the test")
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var v: Bool
    init(_ v: Bool) { self.v = v }
    var value: Bool {
        get { lock.withLock { v } }
        set { lock.withLock { v = newValue } }
    }
}

struct SlowProbe: ReadinessProbe {
    func check() async -> ReadinessCheck {
        try? await Task.sleep(for: .seconds(30))
        return ReadinessCheck(name: "slow", ready: true)
    }
}

@Suite("StatusServer: /health, /ready, /metrics over real TCP")
struct StatusServerTests {
    @Test func healthAndNotFound() async throws {
        let server = try await StatusServer.start(metrics: MetricsRegistry(), probes: [])
        defer { server.stop() }
        #expect(try await get(server, "/health") == (200, "ok\n"))
        #expect(try await get(server, "/nope").0 == 404)
        #expect(try await get(server, "/health", method: "POST").0 == 405)
        #expect(try await get(server, "/health", method: "HEAD") == (200, ""))
    }

    @Test func readyFollowsItsProbes() async throws {
        let journal = LockedFlag(true), certificate = LockedFlag(true)
        let server = try await StatusServer.start(metrics: MetricsRegistry(), probes: [
            FlagProbe(name: "journal", flag: journal), FlagProbe(name: "certificate authentication", flag: certificate),
        ])
        defer { server.stop() }
        var (code, body) = try await get(server, "/ready")
        #expect(code == 200)
        #expect(body.hasPrefix("ready\n"))
        certificate.value = false
        (code, body) = try await get(server, "/ready")
        #expect(code == 503)
        #expect(body.contains("FAIL certificate authentication: switched off by the test"))
        #expect(body.contains("ok   journal"))
        certificate.value = true
        #expect(try await get(server, "/ready").0 == 200)
    }

    @Test func aProbeThatHangsMakesItUnreadyInBoundedTime() async throws {
        let server = try await StatusServer.start(metrics: MetricsRegistry(), probes: [SlowProbe()], probeTimeout: .milliseconds(300))
        defer { server.stop() }
        let started = Date()
        let (code, body) = try await get(server, "/ready")
        #expect(code == 503)
        #expect(body.contains("no answer within"))
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func metricsShowTheGatewayCountersMoving() async throws {
        let registry = MetricsRegistry()
        let metrics = GatewayMetrics(factory: registry.factory)
        let server = try await StatusServer.start(metrics: registry, probes: [])
        defer { server.stop() }
        metrics.documentReceived(kind: "11490-0", source: "inbox")
        metrics.transmissionSent(target: "dmp", kind: "11490-0", duration: .milliseconds(120))
        metrics.queue(target: "dmp", depth: 3, oldestWaiting: 42)
        metrics.certificate(role: "signing", daysLeft: 10)
        var (code, body) = try await get(server, "/metrics")
        #expect(code == 200)
        #expect(body.contains(#"passerelle_documents_received_total{kind="11490-0",source="inbox"} 1"#))
        #expect(body.contains(#"passerelle_transmissions_sent_total{target="dmp",kind="11490-0"} 1"#))
        #expect(body.contains(#"passerelle_queue_depth{target="dmp"} 3"#))
        #expect(body.contains(#"passerelle_oldest_waiting_seconds{target="dmp"} 42"#))
        #expect(body.contains(#"passerelle_certificate_days_left{role="signing"} 10"#))
        #expect(body.contains(#"passerelle_send_duration_seconds_bucket{target="dmp",le="0.25"} 1"#))
        #expect(body.contains(#"passerelle_send_duration_seconds_bucket{target="dmp",le="0.1"} 0"#))

        metrics.documentReceived(kind: "11490-0", source: "inbox")
        (code, body) = try await get(server, "/metrics")
        #expect(body.contains(#"passerelle_documents_received_total{kind="11490-0",source="inbox"} 2"#))
    }

    @Test func aTargetFaultEpisodeIsAGaugeAndOneAlertCount() async throws {
        let registry = MetricsRegistry()
        let metrics = GatewayMetrics(factory: registry.factory)
        let server = try await StatusServer.start(metrics: registry, probes: [])
        defer { server.stop() }
        metrics.targetFault(target: "dmp", active: true)
        var (_, body) = try await get(server, "/metrics")
        #expect(body.contains(#"passerelle_target_unavailable{target="dmp"} 1"#))
        #expect(body.contains(#"passerelle_alerts_total{target="dmp"} 1"#))
        metrics.targetFault(target: "dmp", active: false)
        (_, body) = try await get(server, "/metrics")
        #expect(body.contains(#"passerelle_target_unavailable{target="dmp"} 0"#))
        #expect(body.contains(#"passerelle_alerts_total{target="dmp"} 1"#), "a recovery is not an alert")
    }

    /// The status port takes short GETs only: oversized headers and bodies are answered and
    /// closed, and a health check still works right after.
    @Test func hostileRequestsAreRefused() async throws {
        let server = try await StatusServer.start(metrics: MetricsRegistry(), probes: [])
        defer { server.stop() }
        func send(_ raw: String) async throws -> String {
            let socket = try await Socket.connect(host: "127.0.0.1", port: server.port, timeout: 5)
            defer { socket.close() }
            try await socket.write(raw)
            var response = Data()
            while true {
                let chunk = try await socket.read(maxLength: 65_536)
                if chunk.isEmpty { break }
                response.append(chunk)
            }
            return String(decoding: response, as: UTF8.self)
        }
        let bigHeader = try await send("GET /health HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 20_000))\r\n\r\n")
        #expect(bigHeader.hasPrefix("HTTP/1.1 431 "))
        let manyHeaders = try await send("GET /health HTTP/1.1\r\n" + (0..<101).map { "X-\($0): v\r\n" }.joined() + "\r\n")
        #expect(manyHeaders.hasPrefix("HTTP/1.1 431 "))
        let bigBody = try await send("GET /health HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
        #expect(bigBody.hasPrefix("HTTP/1.1 413 "))
        #expect(try await send("GARBAGE\r\n\r\n").hasPrefix("HTTP/1.1 400 "))
        #expect(try await get(server, "/health") == (200, "ok\n"))
    }

    /// Behind those budgets, Hummingbird's (NIO's) own: a request head past 64 KiB is refused
    /// by the parser (400, closed) before anything holds it whole; a client that sends part of
    /// its request head and then nothing is cut off 10 s after connecting (the idle timeout:
    /// a partial head is no request part), with no answer; the port still answers after.
    @Test func theParserAndTheIdleTimeoutBoundWhatGetsPast() async throws {
        let server = try await StatusServer.start(metrics: MetricsRegistry(), probes: [])
        defer { server.stop() }
        func send(_ raw: String) async throws -> (String, TimeInterval) {
            let socket = try await Socket.connect(host: "127.0.0.1", port: server.port, timeout: 5)
            defer { socket.close() }
            socket.setTimeout(30)
            let started = Date()
            try await socket.write(raw)
            var response = Data()
            while true {
                let chunk = try await socket.read(maxLength: 65_536)
                if chunk.isEmpty { break }
                response.append(chunk)
            }
            return (String(decoding: response, as: UTF8.self), Date().timeIntervalSince(started))
        }
        let (huge, _) = try await send("GET /health HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 100_000))\r\n\r\n")
        #expect(huge.hasPrefix("HTTP/1.1 400 "), "\(huge.prefix(200))")
        let (slow, elapsed) = try await send("GET /health HTTP/1.1\r\nX-Slow: a")
        #expect(slow.isEmpty, "\(slow)")
        #expect(elapsed > 5 && elapsed < 20, "cut after \(elapsed) s")
        #expect(try await get(server, "/health") == (200, "ok\n"))
    }

    /// A port already taken is an error at start that names the cause, not a server that never answers.
    @Test func aPortInUseIsAStartError() async throws {
        let first = try await StatusServer.start(metrics: MetricsRegistry(), probes: [])
        defer { first.stop() }
        do {
            let second = try await StatusServer.start(port: first.port, metrics: MetricsRegistry(), probes: [])
            second.stop()
            Issue.record("a second server started on port \(first.port)")
        } catch {
            guard case .listen(let reason) = error else { Issue.record("\(error)"); return }
            #expect(error.description.hasPrefix("cannot open the status endpoint: ") && !reason.isEmpty, "\(error)")
        }
        #expect(try await get(first, "/health") == (200, "ok\n"))
    }

    @Test func refusesANonLoopbackAddress() async {
        await #expect(throws: StatusServer.StartError.self) {
            try await StatusServer.start(host: "0.0.0.0", metrics: MetricsRegistry(), probes: [])
        }
    }
}
