import Foundation
import HTTPWire
import OpenSSLKit

/// One readiness condition (`journal`, `certificate authentication`, `dmp endpoint`…).
public struct ReadinessCheck: Sendable, Hashable, Codable {
    public var name: String
    public var ready: Bool
    /// What is wrong, for the operator; no patient data.
    public var detail: String

    public init(name: String, ready: Bool, detail: String = "") {
        self.name = name
        self.ready = ready
        self.detail = detail
    }
}

/// Something `/ready` asks: the journal, a certificate, an endpoint.
public protocol ReadinessProbe: Sendable {
    func check() async -> ReadinessCheck
}

/// A probe from a closure.
public struct ClosureProbe: ReadinessProbe {
    let body: @Sendable () async -> ReadinessCheck
    public init(_ body: @escaping @Sendable () async -> ReadinessCheck) { self.body = body }
    public func check() async -> ReadinessCheck { await body() }
}

/// The loopback HTTP endpoint a supervisor polls:
/// - `GET /health` — liveness: 200 while the process answers;
/// - `GET /ready` — 200 when every probe is ready, else 503; the body lists each check;
/// - `GET /metrics` — Prometheus text exposition.
///
/// It only listens on a loopback address: metrics and readiness details are for the local
/// supervisor and scraper, and there is no authentication on this port.
public final class StatusServer: Sendable {
    public enum StartError: Error, CustomStringConvertible, Sendable {
        case notLoopback(String)
        case listen(String)

        public var description: String {
            switch self {
            case .notLoopback(let host):
                "the status endpoint listens on loopback only (127.0.0.1 or ::1), not \(host): put a reverse proxy in front to expose it"
            case .listen(let reason): "cannot open the status endpoint: \(reason)"
            }
        }
    }

    private let server: SocketServer
    public var port: UInt16 { server.port }
    public var host: String { server.host }

    /// Starts listening at once. `probes` are asked on each `/ready`, concurrently, each
    /// bounded by `probeTimeout`.
    public init(host: String = "127.0.0.1", port: UInt16 = 0, metrics: MetricsRegistry,
                probes: [any ReadinessProbe], probeTimeout: Duration = .seconds(5)) throws(StartError) {
        guard host == "127.0.0.1" || host == "::1" || host == "localhost" else { throw .notLoopback(host) }
        do {
            server = try SocketServer.serving(host: host == "localhost" ? "127.0.0.1" : host, port: port) { socket in
                await StatusServer.serve(socket, metrics: metrics, probes: probes, probeTimeout: probeTimeout)
            }
        } catch {
            throw .listen(error.description)
        }
    }

    public func stop() { server.stop() }

    /// Runs every probe; a probe that does not answer in time counts as not ready.
    public static func readiness(_ probes: [any ReadinessProbe], timeout: Duration) async -> [ReadinessCheck] {
        await withTaskGroup(of: (Int, ReadinessCheck).self) { group in
            for (index, probe) in probes.enumerated() {
                group.addTask {
                    await withTaskGroup(of: ReadinessCheck?.self) { race in
                        race.addTask { await probe.check() }
                        race.addTask {
                            try? await Task.sleep(for: timeout)
                            return nil
                        }
                        let first = await race.next() ?? nil
                        race.cancelAll()
                        return (index, first ?? ReadinessCheck(name: "probe \(index + 1)", ready: false,
                                                               detail: "no answer within \(timeout)"))
                    }
                }
            }
            var results = [ReadinessCheck?](repeating: nil, count: probes.count)
            for await (index, check) in group { results[index] = check }
            return results.compactMap { $0 }
        }
    }

    // MARK: - HTTP (one request per connection; this is a scrape endpoint, not a web server)

    /// A scrape is a short GET: small budgets, a client that takes longer is cut off.
    static let limits = HTTPLimits(maxRequestLineBytes: 8192, maxHeaderBytes: 16 << 10, maxHeaderCount: 100,
                                   maxBodyBytes: 4096, requestDeadline: .seconds(10))

    /// Serves one connection in a task; its reads and writes run on the connection's lane, the
    /// probes on the cooperative pool (nothing blocks a thread waiting for them).
    private static func serve(_ socket: Socket, metrics: MetricsRegistry, probes: [any ReadinessProbe],
                              probeTimeout: Duration) async {
        defer { socket.close() }
        socket.setTimeout(5)
        let request: HTTPRequest
        do throws(HTTPReadError) {
            guard let next = try await HTTPRequestReader(socket, limits: limits).next() else { return }
            request = next
        } catch {
            if let response = error.response { try? await response.write(to: socket) }
            return
        }
        let response = await answer(request, metrics: metrics, probes: probes, probeTimeout: probeTimeout)
        try? await response.write(to: socket, omitBody: request.method == "HEAD")
    }

    private static func answer(_ request: HTTPRequest, metrics: MetricsRegistry, probes: [any ReadinessProbe],
                               probeTimeout: Duration) async -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return respond(405, "text/plain", "only GET and HEAD\n", extra: [("Allow", "GET, HEAD")])
        }
        switch request.path {
        case "/health":
            return respond(200, "text/plain", "ok\n")
        case "/metrics":
            return respond(200, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition())
        case "/ready":
            let checks = await readiness(probes, timeout: probeTimeout)
            let ready = checks.allSatisfy(\.ready)
            let lines = checks.map { "\($0.ready ? "ok  " : "FAIL") \($0.name)\($0.detail.isEmpty ? "" : ": \($0.detail)")" }
            return respond(ready ? 200 : 503, "text/plain; charset=utf-8",
                           (ready ? "ready\n" : "not ready\n") + lines.joined(separator: "\n") + "\n")
        default:
            return respond(404, "text/plain", "not found: use /health, /ready or /metrics\n")
        }
    }

    private static func respond(_ status: Int, _ type: String, _ body: String, extra: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, contentType: type, body: Data(body.utf8), headers: [("Cache-Control", "no-store")] + extra, close: true)
    }
}
