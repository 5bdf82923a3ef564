import Foundation
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
            server = try SocketServer(host: host == "localhost" ? "127.0.0.1" : host, port: port) { socket in
                StatusServer.serve(socket, metrics: metrics, probes: probes, probeTimeout: probeTimeout)
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

    private static func serve(_ socket: Socket, metrics: MetricsRegistry, probes: [any ReadinessProbe],
                              probeTimeout: Duration) {
        defer { socket.close() }
        socket.setTimeout(5)
        guard let requestLine = try? socket.readLine(maxLength: 8192) else { return }
        // Headers are read and ignored (bounded), so the client sees a clean close.
        var headerCount = 0
        while let line = try? socket.readLine(maxLength: 8192), !line.isEmpty, headerCount < 100 { headerCount += 1 }

        let parts = requestLine.split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            respond(socket, 400, "text/plain", "bad request\n")
            return
        }
        let method = String(parts[0]), path = String(parts[1].split(separator: "?", maxSplits: 1).first ?? "")
        guard method == "GET" || method == "HEAD" else {
            respond(socket, 405, "text/plain", "only GET and HEAD\n", extra: ["Allow: GET, HEAD"], head: false)
            return
        }
        let head = method == "HEAD"
        switch path {
        case "/health":
            respond(socket, 200, "text/plain", "ok\n", head: head)
        case "/metrics":
            respond(socket, 200, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition(), head: head)
        case "/ready":
            let checks = blocking { await readiness(probes, timeout: probeTimeout) }
            let ready = checks.allSatisfy(\.ready)
            let lines = checks.map { "\($0.ready ? "ok  " : "FAIL") \($0.name)\($0.detail.isEmpty ? "" : ": \($0.detail)")" }
            respond(socket, ready ? 200 : 503, "text/plain; charset=utf-8",
                    (ready ? "ready\n" : "not ready\n") + lines.joined(separator: "\n") + "\n", head: head)
        default:
            respond(socket, 404, "text/plain", "not found: use /health, /ready or /metrics\n", head: head)
        }
    }

    /// Runs async work from the connection's own thread (never a cooperative-pool thread).
    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.set(await body())
            done.signal()
        }
        done.wait()
        return box.get()!
    }

    private static func respond(_ socket: Socket, _ status: Int, _ type: String, _ body: String,
                                extra: [String] = [], head: Bool = false) {
        let reason = [200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][status] ?? ""
        let bytes = Data(body.utf8)
        var header = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(bytes.count)\r\n"
        header += "Cache-Control: no-store\r\nConnection: close\r\n"
        for line in extra { header += line + "\r\n" }
        header += "\r\n"
        try? socket.write(Data(header.utf8) + (head ? Data() : bytes))
    }
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func set(_ v: T) { lock.withLock { value = v } }
    func get() -> T? { lock.withLock { value } }
}
