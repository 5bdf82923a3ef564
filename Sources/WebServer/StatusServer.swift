import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import Observability
import OpenSSLKit
import ServiceLifecycle

/// The one HTTP server of `passerelle run` (Hummingbird 2 over SwiftNIO):
/// - `GET /health` — liveness: 200 while the process answers;
/// - `GET /ready` — 200 when every probe is ready, else 503; the body lists each check;
/// - `GET /metrics` — Prometheus text exposition;
/// - `/console/…` — the console, when a ``Console`` is given (`[console] enabled`).
///
/// It listens on a loopback address, unless the console has a login and the server speaks TLS
/// (`tls`): then anywhere the configuration says (docs/console-security.md).
public final class StatusServer: Sendable {
    public enum StartError: Error, CustomStringConvertible, Sendable {
        case notLoopback(String)
        case listen(String)
        case tls(String)
        case accounts(String)

        public var description: String {
            switch self {
            case .notLoopback(let host):
                "the status endpoint listens on loopback only (127.0.0.1 or ::1), not \(host), unless the console has TLS and a login: "
                    + "set [console] tls = true and accounts_file, or put a reverse proxy in front to expose it"
            case .listen(let reason): "cannot open the status endpoint: \(reason)"
            case .tls(let reason): "cannot set up TLS on the status endpoint ([console] tls_identity): \(reason)"
            case .accounts(let reason):
                "[console] accounts_file: \(reason); create it with `passerelle console add-user NAME --role opérateur`"
            }
        }
    }

    public let port: UInt16
    public let host: String
    private let group: ServiceGroup

    private init(host: String, port: UInt16, group: ServiceGroup) {
        self.host = host
        self.port = port
        self.group = group
    }

    /// Starts listening and returns once the port is bound. `probes` are asked on each `/ready`,
    /// concurrently, each bounded by `probeTimeout`.
    public static func start(host: String = "127.0.0.1", port: UInt16 = 0, metrics: MetricsRegistry,
                             probes: [any ReadinessProbe], probeTimeout: Duration = .seconds(5),
                             console: Console? = nil, tls: PKCS12Bundle? = nil) async throws(StartError) -> StatusServer {
        // Off loopback only encrypted and behind a login (the configuration says so first).
        guard isLoopback(host) || (tls != nil && console?.auth.security.hasLogin == true) else { throw .notLoopback(host) }
        // Accounts that cannot be read would lock everyone out without a word: said at start.
        if let console, console.auth.security.accountsFile != nil {
            do { _ = try console.auth.accounts() } catch { throw .accounts(error.description) }
        }
        let address = host == "localhost" ? "127.0.0.1" : host
        let router = Router(context: WebRequestContext.self, options: .autoGenerateHeadEndpoints)  // HEAD: GET's headers, no body
        router.add(middleware: StatusGuardMiddleware())
        router.get("/health") { _, _ in respond(.ok, "text/plain", "ok\n") }
        router.get("/metrics") { _, _ in respond(.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition()) }
        router.get("/ready") { _, _ in
            let checks = await readiness(probes, timeout: probeTimeout)
            let ready = checks.allSatisfy(\.ready)
            let lines = checks.map { "\($0.ready ? "ok  " : "FAIL") \($0.name)\($0.detail.isEmpty ? "" : ": \($0.detail)")" }
            return respond(ready ? .ok : .serviceUnavailable, "text/plain; charset=utf-8",
                           (ready ? "ready\n" : "not ready\n") + lines.joined(separator: "\n") + "\n")
        }
        console?.addRoutes(to: router, probes: probes, probeTimeout: probeTimeout)

        // The port is known once the server is bound (port 0: any free one); a bind failure ends run().
        let (bound, continuation) = AsyncStream<Result<UInt16, any Error>>.makeStream()
        var logger = Logger(label: "passerelle.http")
        logger.logLevel = .warning  // Hummingbird's start line and per-request lines stay out of the service log
        var server = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .seconds(10), httpDecoderConfiguration: decoderLimits))
        if let tls {
            let configuration = try serverTLS(tls)
            do { server = try .tls(server, tlsConfiguration: configuration) } catch { throw .tls("\(error)") }
        }
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(address, port: Int(port))),
            onServerRunning: { channel in
                continuation.yield(.success(UInt16(channel.localAddress?.port ?? 0)))
            },
            logger: logger
        )
        // No signal handlers here: the process's own handling stops the service, then stop() here.
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        Task {
            do { try await group.run() } catch { continuation.yield(.failure(error)) }
            continuation.finish()
        }
        for await result in bound {
            switch result {
            case .success(let port): return StatusServer(host: address, port: port, group: group)
            case .failure(let error): throw .listen("\(error)")
            }
        }
        throw .listen("the server stopped before listening")
    }

    /// NIOSSL's server configuration from the identity OpenSSLKit loaded (chain and key as PEM in
    /// memory: the .p12 is opened once, by the service). TLS 1.2 at least.
    static func serverTLS(_ bundle: PKCS12Bundle) throws(StartError) -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(bundle.certificateChainPEM))
            let key = try bundle.privateKeyPEM().withUnsafeBytes { bytes in try NIOSSLPrivateKey(bytes: Array(bytes), format: .pem) }
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                         privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        } catch {
            throw .tls("\(error)")
        }
    }

    /// Stops listening; requests in flight are answered first (each connection carries one).
    public func stop() {
        Task { [group] in await group.triggerGracefulShutdown() }
    }

    static func isLoopback(_ host: String) -> Bool { host == "127.0.0.1" || host == "::1" || host == "localhost" }

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

    // MARK: - Budgets (a scrape is a short GET; the console pages are GETs too)

    /// What ``StatusGuardMiddleware`` answers 414/431/413 for, as the hand-written server did.
    static let maxRequestTargetBytes = 8192
    static let maxHeaderBytes = 16 << 10
    static let maxHeaderCount = 100
    static let maxBodyBytes = 4096

    /// NIO's parser stops anything past these with a 400 and a closed connection, before the
    /// request reaches the middleware: a bounded buffer per connection whatever the client sends.
    static let decoderLimits = HTTP1Channel.Configuration.DecoderConfiguration(
        maxHeaderFieldSize: 64 << 10, maxHeaderListSize: 64 << 10, maxHeaderFieldCount: 1000)

    static func respond(_ status: HTTPResponse.Status, _ type: String, _ body: String,
                        extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-store"]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// The request context: Hummingbird's core storage plus the connection, so that each response
/// can close it (one request per connection, as the hand-written server did: scrapers and
/// probes open a connection per request, and nothing idles on the port).
public struct WebRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel
    /// The signed-in console user, set by the login middleware (nil: loopback without accounts).
    public var viewer: ConsoleViewer?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Before any route: only GET and HEAD, and POST under /console/ (405), the request line, header and body budgets
/// (414, 431, 413), the text 404; after: `Cache-Control: no-store` and `Connection: close` on
/// every answer, and the connection closed once it is written.
struct StatusGuardMiddleware: RouterMiddleware {
    typealias Context = WebRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = await answer(request, context: context, next: next)
        response.headers[.connection] = "close"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        // HummingbirdCore's connection handler closes after the response in flight on this event.
        context.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        return response
    }

    private func answer(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async -> Response {
        if (request.head.path?.utf8.count ?? 0) > StatusServer.maxRequestTargetBytes {
            return StatusServer.respond(.init(code: 414, reasonPhrase: "URI Too Long"), "text/plain", "request line too long\n")
        }
        let headerBytes = request.headers.reduce(0) { $0 + $1.name.rawName.utf8.count + $1.value.utf8.count + 4 }
        if request.headers.count > StatusServer.maxHeaderCount || headerBytes > StatusServer.maxHeaderBytes {
            return StatusServer.respond(.init(code: 431, reasonPhrase: "Request Header Fields Too Large"), "text/plain",
                                        "request headers too large\n")
        }
        // The console's forms are the only bodies: a little more room there (its middleware reads at most that).
        let consolePost = request.method == .post && Console.formPaths.contains(request.uri.path)
        let bodyBudget = consolePost ? ConsoleAuth.maxFormBytes : StatusServer.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > bodyBudget {
            return StatusServer.respond(.contentTooLarge, "text/plain", "request body too large\n")
        }
        if request.headers[.transferEncoding] != nil {
            return StatusServer.respond(.contentTooLarge, "text/plain", "request body too large\n")
        }
        guard request.method == .get || request.method == .head || consolePost else {
            return StatusServer.respond(.methodNotAllowed, "text/plain", "only GET and HEAD (POST: console forms only)\n", extra: [.allow: "GET, HEAD"])
        }
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            return StatusServer.respond(.notFound, "text/plain", "not found: use /health, /ready or /metrics\n")
        } catch {
            return StatusServer.respond(.internalServerError, "text/plain", "internal error\n")
        }
    }
}
