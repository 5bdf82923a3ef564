import Foundation
import PasserelleCore
import PostgresKit
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster for the tests: `initdb` in a temporary folder, a server on a
/// free 127.0.0.1 port with password (SCRAM) authentication and TLS (the test PKI's
/// `server-localhost`), stopped when the test process exits (or dies: a watchdog shell stops it).
///
/// Debian's server binaries are in `/usr/lib/postgresql/<major>/bin` (`PASSERELLE_PG_BIN`
/// overrides). PostgreSQL refuses to run as root: as root, the cluster belongs to the
/// `postgres` system user and its commands run through `runuser`.
public final class PostgresTestServer: Sendable {
    public let port: Int
    public let folder: URL
    public let user = "passerelle"
    public let password: String
    /// A file holding only ``password`` (for `password_file`).
    public let passwordFile: URL
    let binaries: URL
    let runAsPostgres: Bool

    /// The folder of `initdb`, `pg_ctl` and `postgres`, if installed.
    public static var binaries: URL? {
        if let override = ProcessInfo.processInfo.environment["PASSERELLE_PG_BIN"] { return URL(fileURLWithPath: override) }
        let base = URL(fileURLWithPath: "/usr/lib/postgresql")
        let majors = ((try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []).compactMap(Int.init).sorted()
        return majors.last.map { base.appendingPathComponent("\($0)/bin") }
            .flatMap { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("initdb").path) ? $0 : nil }
    }

    /// The server shared by every test of this process, started on first use.
    public static func shared() throws -> PostgresTestServer {
        try sharedServer.get()
    }

    /// `PASSERELLE_PG_DURABLE=1` (set by `passerelle-bench` before the first use): the shared
    /// server commits durably — fsync, synchronous_commit and full-page writes on, PostgreSQL's
    /// defaults — so a benchmark measures what a production server does. Without it (tests),
    /// they are off: a test needs no crash safety from its throwaway cluster, only speed.
    static var durableRequested: Bool { ProcessInfo.processInfo.environment["PASSERELLE_PG_DURABLE"] == "1" }

    private static let sharedServer: Result<PostgresTestServer, any Error> = {
        Result {
            let server = try PostgresTestServer(durable: durableRequested)
            atexit { try? PostgresTestServer.sharedServer.get().stop() }
            return server
        }
    }()

    /// `postgresql://passerelle@127.0.0.1:<port>/<database>` plus `parameters`; no password in it.
    public func url(database: String, host: String = "127.0.0.1", parameters: [String: String] = [:]) -> String {
        var text = "postgresql://\(user)@\(host):\(port)/\(database)"
        if !parameters.isEmpty {
            text += "?" + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        }
        return text
    }

    /// Creates an empty database on the shared server; its URL (no password in it).
    public static func createDatabase(prefix: String = "journal") throws -> String {
        let server = try shared()
        let name = prefix + "_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let admin = try PostgresConnection(configuration(server.url(database: "postgres")))
        try admin.execute("CREATE DATABASE \(name)")
        return server.url(database: name)
    }

    /// `url` with the shared server's password file, as `[journal] password_file` would give it,
    /// and the gateway's default number of sessions (so the journal tests run units side by side).
    public static func configuration(_ url: String) throws -> PostgresConfiguration {
        var configuration = try PostgresConfiguration(url: url, passwordFile: shared().passwordFile.path)
        configuration.connections = PasserelleConfiguration.Journal.defaultPostgresConnections
        return configuration
    }

    /// True when the server fsyncs its commits (the shared one: see ``durableRequested``).
    public let durable: Bool

    public init(durable: Bool = false) throws {
        self.durable = durable
        guard let binaries = Self.binaries else {
            throw PostgresTestServerError.notInstalled
        }
        self.binaries = binaries
        runAsPostgres = getuid() == 0
        // Under /tmp rather than the test temporary folder: the postgres user must reach it.
        folder = URL(fileURLWithPath: "/tmp").appendingPathComponent("passerelle-pg-\(UUID().uuidString.prefix(8))")
        let data = folder.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        password = "pw-" + UUID().uuidString
        passwordFile = folder.appendingPathComponent("password")
        try Data((password + "\n").utf8).write(to: passwordFile)
        let pki = TestPaths.testPKI
        let certificate = folder.appendingPathComponent("server.pem")
        let key = folder.appendingPathComponent("server.key")
        try FileManager.default.copyItem(at: pki.appendingPathComponent("server-localhost.pem"), to: certificate)
        try FileManager.default.copyItem(at: pki.appendingPathComponent("server-localhost.key.pem"), to: key)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key.path)
        if runAsPostgres {
            try Self.check(ProcessRunner.run("/bin/chown", ["-R", "postgres:", folder.path]), "chown")
        }
        try Self.check(Self.run(binaries, runAsPostgres, "initdb", ["-D", data.path, "-U", user, "--pwfile=\(passwordFile.path)", "--auth=scram-sha-256",
                                      "-E", "UTF8", "--no-locale", "--no-sync"]), "initdb")
        var lastFailure = ""
        for _ in 0..<5 {
            let candidate = try Self.freePort()
            let options = "-p \(candidate) -c listen_addresses=127.0.0.1 -c unix_socket_directories=\(folder.path) "
                + "-c ssl=on -c ssl_cert_file=\(certificate.path) -c ssl_key_file=\(key.path) "
                + (durable ? "" : "-c fsync=off -c synchronous_commit=off -c full_page_writes=off ")
                // The journal writes ≈ 0.5 MB of WAL per document: with the default 1 GB, a run at
                // 100 documents/s checkpoints every 15–20 s ("checkpoints are occurring too
                // frequently"); sized as README → Journal advises for production.
                + "-c max_wal_size=4GB -c max_connections=60"
            let result = try Self.run(binaries, runAsPostgres, "pg_ctl", ["-D", data.path, "-l", folder.appendingPathComponent("server.log").path,
                                            "-o", options, "-w", "-t", "60", "start"])
            if result.succeeded {
                port = candidate
                startWatchdog()
                return
            }
            lastFailure = result.stderr + result.stdout
        }
        throw PostgresTestServerError.failed(step: "pg_ctl start", output: lastFailure)
    }

    /// Stops the server at once and removes its folder.
    public func stop() throws {
        _ = try run("pg_ctl", ["-D", folder.appendingPathComponent("data").path, "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(at: folder)
    }

    /// Restarts the server (same port): open connections are cut, as in a server crash or failover.
    public func restart() throws {
        let data = folder.appendingPathComponent("data").path
        try Self.check(run("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "restart"]), "pg_ctl restart")
    }

    private func run(_ tool: String, _ arguments: [String]) throws -> ProcessResult {
        try Self.run(binaries, runAsPostgres, tool, arguments)
    }

    /// Runs a server tool and waits for it. Not through Foundation's `Process`: it notices the
    /// end of a child when a socket the child inherited closes, and `pg_ctl start` leaves a
    /// daemon behind that keeps it open forever. posix_spawn + waitpid, output in a file.
    private static func run(_ binaries: URL, _ runAsPostgres: Bool, _ tool: String, _ arguments: [String]) throws -> ProcessResult {
        let path = binaries.appendingPathComponent(tool).path
        // From /tmp: the postgres user may not be allowed into the current folder.
        let argv = ["/bin/sh", "-c", "cd /tmp && exec \"$@\"", "sh"]
            + (runAsPostgres ? ["/sbin/runuser", "-u", "postgres", "--", path] : [path]) + arguments
        let output = "/tmp/passerelle-pg-tool-\(UUID().uuidString).log"
        defer { unlink(output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
        guard rc == 0 else { throw PostgresTestServerError.failed(step: tool, output: String(cString: strerror(rc))) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        // WIFEXITED / WEXITSTATUS are macros Swift cannot import.
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return ProcessResult(status: exitStatus, stdout: text, stderr: "")
    }

    /// Stops the cluster if this process dies without running its exit handlers (SIGKILL, crash).
    private func startWatchdog() {
        let stop = (runAsPostgres ? "/sbin/runuser -u postgres -- " : "")
            + "\(binaries.path)/pg_ctl -D \(folder.path)/data -m immediate stop"
        let script = "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; \(stop) >/dev/null 2>&1; rm -rf \(folder.path)"
        // In its own session: `swift test` ends the test process's group, exit handlers included.
        let command: [String] = ["/usr/bin/setsid", "/bin/sh", "-c", script]
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // Nothing of ours inherited: `swift test` reads our output until every holder closes it.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in Int32(0)...2 { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0) }
        var pid: pid_t = 0
        _ = posix_spawn(&pid, "/usr/bin/setsid", &actions, nil, argv, environ)
    }

    private static func check(_ result: ProcessResult, _ step: String) throws {
        guard result.succeeded else { throw PostgresTestServerError.failed(step: step, output: result.stderr + result.stdout) }
    }

    /// A port the kernel just handed out on 127.0.0.1 (free unless someone takes it meanwhile).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PostgresTestServerError.failed(step: "socket", output: String(cString: strerror(errno))) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw PostgresTestServerError.failed(step: "bind", output: String(cString: strerror(errno))) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

public enum PostgresTestServerError: Error, CustomStringConvertible {
    case notInstalled
    case failed(step: String, output: String)

    public var description: String {
        switch self {
        case .notInstalled:
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: run scripts/setup.sh (installs postgresql) or set PASSERELLE_PG_BIN"
        case .failed(let step, let output): "test PostgreSQL: \(step) failed: \(output)"
        }
    }
}
