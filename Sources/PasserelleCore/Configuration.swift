import Foundation

/// A problem with the configuration file. Every case names the file, and where it makes
/// sense the line and the full key (`dmp.endpoint`), so the operator can go straight to it.
public enum ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    case unreadable(file: String, reason: String)
    case syntax(file: String, line: Int, message: String)
    case missingTable(file: String, table: String)
    /// `line` is the table header's line.
    case missingKey(file: String, line: Int, key: String, hint: String)
    case wrongType(file: String, line: Int, key: String, expected: String, found: String)
    case invalidValue(file: String, line: Int, key: String, reason: String)
    case unknownKey(file: String, line: Int, key: String, suggestion: String?)
    case unknownTable(file: String, line: Int, table: String, suggestion: String?)
    /// Several of the above, in file order.
    case several([ConfigurationError])

    public var description: String {
        switch self {
        case .unreadable(let file, let reason):
            "\(file): cannot read the configuration file: \(reason)"
        case .syntax(let file, let line, let message):
            "\(file):\(line): syntax error: \(message)"
        case .missingTable(let file, let table):
            "\(file): missing table [\(table)]; add it (see docs/passerelle.example.toml)"
        case .missingKey(let file, let line, let key, let hint):
            "\(file):\(line): missing key \(key)\(hint.isEmpty ? "" : ": \(hint)")"
        case .wrongType(let file, let line, let key, let expected, let found):
            "\(file):\(line): \(key) must be \(expected), found \(found)"
        case .invalidValue(let file, let line, let key, let reason):
            "\(file):\(line): \(key): \(reason)"
        case .unknownKey(let file, let line, let key, let suggestion):
            "\(file):\(line): unknown key \(key) (probably a typo\(suggestion.map { "; did you mean \($0)?" } ?? ""))"
        case .unknownTable(let file, let line, let table, let suggestion):
            "\(file):\(line): unknown table [\(table)]\(suggestion.map { "; did you mean [\($0)]?" } ?? "")"
        case .several(let errors):
            errors.map(\.description).joined(separator: "\n")
        }
    }

    public var errorDescription: String? { description }

    /// The line the problem is on (0 when it concerns the whole file).
    public var line: Int {
        switch self {
        case .syntax(_, let line, _), .missingKey(_, let line, _, _), .wrongType(_, let line, _, _, _),
             .invalidValue(_, let line, _, _), .unknownKey(_, let line, _, _), .unknownTable(_, let line, _, _):
            line
        default: 0
        }
    }

    /// The individual problems (one element unless `.several`).
    public var problems: [ConfigurationError] {
        if case .several(let errors) = self { return errors }
        return [self]
    }
}

/// Severity threshold for logs (the swift-log levels).
public enum LogLevel: String, Sendable, Hashable, CaseIterable, Codable {
    case trace, debug, info, notice, warning, error, critical
}

/// The whole runtime configuration, read from one TOML file (see docs/passerelle.example.toml).
/// Relative paths are resolved against the folder of the configuration file.
public struct PasserelleConfiguration: Sendable, Hashable {
    /// The default location when neither `--config` nor `PASSERELLE_CONFIG` is given.
    public static let defaultPath = "/etc/passerelle/passerelle.toml"
    /// The environment variable that names the configuration file.
    public static let environmentVariable = "PASSERELLE_CONFIG"

    /// `[structure]`: the health structure Passerelle speaks for.
    public struct Structure: Sendable, Hashable {
        public var finess: FINESS
        public var name: String
        /// Root OID of the structure: document ids, XDS sourceId.
        public var oid: String
    }

    /// Where the PKCS#12 passphrase comes from. Only where: the gateway reads it once, with
    /// OpenSSLKit's `Passphrase` (one newline rule, redacted, wiped), never here.
    public enum PassphraseSource: Sendable, Hashable, CustomStringConvertible {
        case file(String)
        case environment(String)

        public var description: String {
            switch self {
            case .file(let path): "file \(path)"
            case .environment(let name): "environment variable \(name)"
            }
        }
    }

    /// `[certificates]`: the organisation's certificates (IGC-Santé) and trust anchors.
    public struct Certificates: Sendable, Hashable {
        /// PKCS#12 of the TLS client (authentication) certificate.
        public var authentication: String
        /// PKCS#12 of the signing certificate.
        public var signing: String
        public var passphrase: PassphraseSource
        /// PEM file of the trusted CAs.
        public var trustAnchors: String
        /// PEM CRL file, optional.
        public var crl: String?
        /// Warn when a certificate expires within this many days.
        public var expiryWarningDays: Int
    }

    /// `[dmp]`.
    public struct DMP: Sendable, Hashable {
        public var enabled: Bool
        /// The XDS.b repository endpoint (https). Nil only when disabled.
        public var endpoint: URL?
        /// CA file for the server certificate; defaults to `certificates.trust_anchors`.
        public var ca: String
        public var timeoutSeconds: Int
        public var maxConnections: Int
        /// The XDS.b registry for status updates (deletion, ITI-57); nil = `endpoint`.
        public var registryEndpoint: URL? = nil
        /// The TD0.2 service (DMP existence and access), asked before each request when set.
        public var statusEndpoint: URL? = nil
        /// PEM CRL of the server certificate's issuer: when set, a revoked DMP server certificate is refused.
        public var crl: String? = nil
    }

    /// TLS mode of the SMTP connection.
    public enum SMTPTLS: String, Sendable, Hashable, CaseIterable {
        /// Plain connection upgraded with STARTTLS (port 587).
        case starttls
        /// TLS from the first byte (port 465).
        case implicit
    }

    /// `[mssante]`.
    public struct MSSante: Sendable, Hashable {
        public var enabled: Bool
        public var smtpHost: String
        public var smtpPort: Int
        public var smtpTLS: SMTPTLS
        /// IMAP URL of the application mailbox (acknowledgements), optional.
        public var imapURL: URL?
        /// The application mailbox (BAL applicative) address.
        public var mailbox: String
        /// Product reference sent in X-MSS-NIL-like headers (software name and version).
        public var productReference: String
        /// Seconds between two reads of the acknowledgement mailbox.
        public var pollIntervalSeconds: Int = 60
        /// After a crash interrupted a send (the relay may or may not have taken the mail), how
        /// long to wait for a DSN naming it before mailing it again (with the same Message-ID).
        /// Only with `imap_url`: without an acknowledgement mailbox nothing can settle it.
        public var uncertainGraceSeconds: Int = 3600
        /// PEM CRL of the SMTP/IMAP server certificates' issuer: when set, a revoked server certificate is refused.
        public var crl: String? = nil
    }

    /// `[folders]`.
    public struct Folders: Sendable, Hashable {
        public var inbox: String
        public var work: String
        public var error: String
        public var done: String
        /// A file is taken once its size and mtime have not changed for this long (seconds).
        public var quietPeriodSeconds: Int = 5
        /// How often the files a journal failure (a full disk) left in work/ are taken again (seconds).
        public var workRetrySeconds: Int = 60
        /// A JSON sidecar larger than this is refused from its size, unread.
        public var maxSidecarBytes: Int = 1024 * 1024
        /// An input (inbox file or MLLP message) that was being processed when the process died this
        /// many times goes to error/ instead of being taken again: a crash can never loop.
        public var maxProcessingAttempts: Int = 3
        /// Inbox claims processed at once (`intake_concurrency`): while one waits on the journal's
        /// fsync, the others are parsed and built, so the senders are kept fed.
        public var intakeConcurrency: Int = 4
    }

    /// `[service]`: how `passerelle run` works the queue.
    public struct Service: Sendable, Hashable {
        /// How long a claimed transmission stays reserved for its sender; a sender that dies
        /// (kill -9, power loss) has its work taken back after this. Longer than a send can take.
        public var leaseSeconds: Int = 300
        /// On SIGTERM, how long in-flight sends may take before the process exits anyway
        /// (their leases then expire and they are sent again, recognised by the peer).
        public var shutdownTimeoutSeconds: Int = 30
        /// Retry backoff: first delay, cap on one delay, attempts, and deadline from enqueueing.
        public var retryInitialSeconds: Int = 30
        public var retryMaxSeconds: Int = 3600
        public var retryMaxAttempts: Int = 20
        public var retryDeadlineHours: Int = 72
        public init() {}
    }

    /// `[mllp]`: the HL7 v2 MLLP listener of `passerelle run`.
    public struct MLLP: Sendable, Hashable {
        public var enabled: Bool = false
        /// Address to bind (loopback by default).
        public var host: String = "127.0.0.1"
        public var port: Int = 2575
        /// Larger frames are refused (AE) and the connection closed.
        public var maxMessageBytes: Int = 32 * 1024 * 1024
        public var maxConnections: Int = 16
        /// A connection silent for this long between messages is closed.
        public var idleTimeoutSeconds: Int = 300
        /// A whole message must arrive within this many seconds of its first byte (the first
        /// message: of the connection's start, TLS handshake included), or the connection is
        /// closed (slow senders cannot hold a connection forever).
        public var messageTimeoutSeconds: Int = 120
        /// Open connections from one client address at most; more are refused at accept.
        public var maxConnectionsPerPeer: Int = 8
        /// When not empty, only these client addresses / CIDR ranges are served (others are
        /// closed at accept and logged).
        public var allowedClients: [ClientAddressRange] = []
        /// PKCS#12 of the server certificate: when set, the listener speaks TLS (passphrase from [certificates]).
        public var tlsIdentity: String?
        /// When set with tls_identity, clients must present a certificate from these CAs.
        public var tlsClientCA: String?
        public init() {}
    }

    /// `[journal]`.
    public enum Journal: Sendable, Hashable {
        case sqlite(path: String)
        /// `url` is a libpq URI (TLS through its `sslmode`/`sslrootcert` options); the password comes from
        /// `password_file`, `PGPASSWORD` or a passfile, never from the logs. `blobCache` is this node's local
        /// copy of the blobs (the blobs themselves live in the database, shared by every node).
        /// `preparedStatements` (default on) prepares each statement once per session; off behind a
        /// pooler that cannot keep them. `connections`: the database sessions this node uses at once.
        case postgresql(url: String, passwordFile: String? = nil, blobCache: String? = nil, preparedStatements: Bool = true,
                        connections: Int = Journal.defaultPostgresConnections)

        /// `[journal] connections` unless set: one session serialised the node's whole journal
        /// traffic (issue 17's PostgreSQL bench: 80–109 documents/s with one, 145–152 with four).
        public static let defaultPostgresConnections = 4
    }

    /// `[cda]`.
    public struct CDA: Sendable, Hashable {
        /// CDA_extended.xsd, optional (XSD validation is skipped without it).
        public var schema: String?
        public var maxPDFBytes: Int
        /// `default_author_specialty`, `default_facility_type`, `default_practice_setting`:
        /// used when an HL7 v2 message (which has no field for them) does not give them.
        public var defaults = DocumentDefaults()
    }

    /// Log line format.
    public enum LogFormat: String, Sendable, Hashable, CaseIterable {
        case logfmt, json
    }

    /// `[logging]`.
    public struct Logging: Sendable, Hashable {
        public var level: LogLevel
        public var format: LogFormat
    }

    /// `[http]`.
    public struct HTTP: Sendable, Hashable {
        /// Port of the metrics/health endpoint on 127.0.0.1; nil = disabled.
        public var metricsPort: Int?
    }

    /// `[console]`: the web console, served under `/console/` on the status port.
    public struct Console: Sendable, Hashable {
        public var enabled = false
        /// Where the one HTTP server listens when the console is on: off loopback only with
        /// `tls` and `accounts_file` (or a trusted proxy's user header).
        public var address = "127.0.0.1"
        /// `name:role:bcrypt-hash` lines (`passerelle console add-user`); nil: no login (loopback only).
        public var accountsFile: String?
        /// Serve the whole status port over TLS.
        public var tls = false
        /// PKCS#12 of the console's server certificate (passphrase from [certificates]); nil: the
        /// structure's authentication certificate.
        public var tlsIdentity: String?
        public var sessionIdleMinutes = 30
        public var sessionMaxHours = 10
        /// Failed logins (per account, per address) before a lockout of `lockout_minutes`.
        public var lockoutAttempts = 5
        public var lockoutMinutes = 15
        /// A reverse proxy's address whose `user_header` names the signed-in user (its role: `proxy_role`).
        public var trustedProxy: String?
        public var userHeader: String?
        public init() {}

        /// True when the console asks who is there (accounts, or a trusted proxy's header).
        public var hasLogin: Bool { accountsFile != nil || (trustedProxy != nil && userHeader != nil) }

        public static let loopbackAddresses: Set<String> = ["127.0.0.1", "::1", "localhost"]
    }

    /// A table whose keys and values are checked by the stage that uses them (`[vihf]`, by the
    /// VIHF builder), kept with each key's line so those checks can name file, line and key.
    public struct Section: Sendable, Hashable {
        public var values: [String: String]
        public var lines: [String: Int]
        /// The line of the table header.
        public var line: Int
    }

    /// The file this configuration was read from (absolute).
    public var file: String
    public var structure: Structure
    public var certificates: Certificates
    public var dmp: DMP
    public var mssante: MSSante
    public var folders: Folders
    public var journal: Journal
    public var cda: CDA
    public var logging: Logging
    public var http: HTTP
    public var service = Service()
    public var mllp = MLLP()
    public var console = Console()
    /// `[intake] language`: the language of refusal reasons (`NAME.error.txt`) and HL7 ACK
    /// texts (ERR-8); French unless set to "en".
    public var intakeLanguage: IntakeLanguage = .default
    /// `[journal] patient_key_file`: the secret that keys the patient hashes (created 0600 on
    /// first use); defaults to `<journal path without extension>.patient-key`.
    public var patientKeyFile: String?
    /// `[journal] retention_days`: a document set's content (intake record, built CDA, masked INS,
    /// patient hash, input file name) is purged this many days after its last transmission
    /// ended; its transmission rows and the report's counts are kept. Nil: kept for ever.
    public var retentionDays: Int?
    /// `[vihf]`: attributes of the VIHF assertion sent with every DMP request (see
    /// docs/passerelle.example.toml); checked by `VIHFConfiguration(keys:)` in `Signing`.
    public var vihf: Section?
    /// `[report]`: indicator definitions of the usage report (defaults when absent).
    public var report: Report = .default

    /// Which file to use: `explicit` (from `--config`), else `$PASSERELLE_CONFIG`, else the default path.
    public static func resolvePath(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment[environmentVariable], !fromEnvironment.isEmpty { return fromEnvironment }
        return defaultPath
    }

    /// Reads and checks the file. Every problem found is reported (``ConfigurationError/several(_:)``
    /// when there is more than one).
    public static func load(from path: String) throws(ConfigurationError) -> PasserelleConfiguration {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let text: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: absolute))
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw ConfigurationError.unreadable(file: absolute, reason: "not UTF-8 text")
            }
            text = decoded
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw .unreadable(file: absolute, reason: (error as NSError).localizedDescription)
        }
        return try parse(text, file: absolute)
    }

    /// Parses configuration text; `file` names it in errors and anchors relative paths.
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> PasserelleConfiguration {
        let document: TOMLDocument
        do { document = try TOMLDocument(parsing: text) } catch {
            throw .syntax(file: file, line: error.line, message: error.message)
        }
        var reader = ConfigurationReader(document: document, file: file)
        let configuration = reader.read()
        let errors = reader.errors.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.map(\.element)
        if errors.count == 1 { throw errors[0] }
        if errors.count > 1 { throw .several(errors) }
        return configuration!
    }
}

// MARK: - Reading

/// The schema: every table and key Passerelle knows. Anything else is a probable typo.
private let schema: [String: [String]] = [
    "structure": ["finess", "name", "oid"],
    "certificates": ["authentication", "signing", "passphrase_file", "passphrase_env", "trust_anchors", "crl", "expiry_warning_days"],
    "dmp": ["enabled", "endpoint", "ca", "crl", "timeout_seconds", "max_connections", "registry_endpoint", "status_endpoint"],
    "mssante": ["enabled", "smtp_host", "smtp_port", "smtp_tls", "imap_url", "mailbox", "product_reference", "poll_interval_seconds", "crl",
                "uncertain_grace_seconds"],
    "folders": ["inbox", "work", "error", "done", "quiet_period_seconds", "work_retry_seconds", "max_sidecar_bytes",
                "max_processing_attempts", "intake_concurrency"],
    "journal": ["backend", "path", "url", "patient_key_file", "password_file", "blob_cache", "prepared_statements", "connections", "retention_days"],
    "service": ["lease_seconds", "shutdown_timeout_seconds", "retry_initial_seconds", "retry_max_seconds",
                "retry_max_attempts", "retry_deadline_hours"],
    "mllp": ["enabled", "host", "port", "max_message_bytes", "max_connections", "idle_timeout_seconds",
             "tls_identity", "tls_client_ca", "message_timeout_seconds", "max_connections_per_peer", "allowed_clients"],
    "cda": ["schema", "max_pdf_bytes", "default_author_specialty", "default_facility_type", "default_practice_setting"],
    "intake": ["language"],
    "logging": ["level", "format"],
    "http": ["metrics_port"],
    "console": ["enabled", "address", "accounts_file", "tls", "tls_identity", "session_idle_minutes", "session_max_hours",
                "lockout_attempts", "lockout_minutes", "trusted_proxy", "user_header"],
    "report": ["time_zone", "d1_kinds", "d2_kinds", "d3_kinds", "d1_denominator", "d2_denominator", "d3_denominator",
               "discharge_letter_kinds", "qualified_statuses"],
    "report.targets": PasserelleConfiguration.Report.indicatorCodes,
    "report.thresholds": PasserelleConfiguration.Report.indicatorCodes,
]

/// Tables whose keys the stage that uses them checks (an unknown key is reported there).
private let stageCheckedTables: Set<String> = ["vihf"]

private struct ConfigurationReader {
    let document: TOMLDocument
    let file: String
    let baseDirectory: URL
    var errors: [ConfigurationError] = []

    init(document: TOMLDocument, file: String) {
        self.document = document
        self.file = file
        baseDirectory = URL(fileURLWithPath: file).deletingLastPathComponent()
    }

    /// Reports unknown tables and keys, in file order.
    mutating func checkUnknown() {
        for table in document.tables {
            if table.name.isEmpty {
                for entry in table.entries {
                    errors.append(.unknownKey(file: file, line: entry.line, key: entry.key,
                                              suggestion: "a key inside a table such as [\(closestMatch(entry.key, in: Array(schema.keys)) ?? "structure")]"))
                }
                continue
            }
            if stageCheckedTables.contains(table.name) { continue }
            guard let keys = schema[table.name] else {
                errors.append(.unknownTable(file: file, line: table.line, table: table.name,
                                            suggestion: closestMatch(table.name, in: Array(schema.keys) + stageCheckedTables)))
                continue
            }
            for entry in table.entries where !keys.contains(entry.key) {
                errors.append(.unknownKey(file: file, line: entry.line, key: "\(table.name).\(entry.key)",
                                          suggestion: closestMatch(entry.key, in: keys).map { "\(table.name).\($0)" }))
            }
        }
    }

    // Typed accessors: they record an error and return nil on a bad or missing value.

    mutating func value(_ table: String, _ key: String, required: Bool, hint: String = "") -> TOMLEntry? {
        guard let t = document.table(table) else { return nil }
        if let entry = t.entry(key) { return entry }
        if required { errors.append(.missingKey(file: file, line: t.line, key: "\(table).\(key)", hint: hint)) }
        return nil
    }

    mutating func string(_ table: String, _ key: String, required: Bool = true, hint: String = "") -> (String, Int)? {
        guard let entry = value(table, key, required: required, hint: hint) else { return nil }
        guard case .string(let s) = entry.value else {
            errors.append(.wrongType(file: file, line: entry.line, key: "\(table).\(key)", expected: "a string in quotes", found: entry.value.typeName))
            return nil
        }
        guard !s.trimmingWhitespace().isEmpty else {
            errors.append(.invalidValue(file: file, line: entry.line, key: "\(table).\(key)", reason: "must not be empty"))
            return nil
        }
        return (s, entry.line)
    }

    /// An integer within `range`; absent gives `defaultValue` (nil = optional key).
    mutating func integer(_ table: String, _ key: String, range: ClosedRange<Int>, default defaultValue: Int?) -> Int? {
        guard let entry = value(table, key, required: false) else { return defaultValue }
        guard case .integer(let n) = entry.value else {
            errors.append(.wrongType(file: file, line: entry.line, key: "\(table).\(key)", expected: "an integer", found: entry.value.typeName))
            return defaultValue
        }
        guard range.contains(n) else {
            errors.append(.invalidValue(file: file, line: entry.line, key: "\(table).\(key)",
                                        reason: "\(n) is out of range; use \(range.lowerBound)…\(range.upperBound)"))
            return defaultValue
        }
        return n
    }

    mutating func boolean(_ table: String, _ key: String, default defaultValue: Bool) -> Bool {
        guard let entry = value(table, key, required: false) else { return defaultValue }
        guard case .boolean(let b) = entry.value else {
            errors.append(.wrongType(file: file, line: entry.line, key: "\(table).\(key)", expected: "true or false", found: entry.value.typeName))
            return defaultValue
        }
        return b
    }

    mutating func choice<E: RawRepresentable & CaseIterable>(_ table: String, _ key: String, default defaultValue: E) -> E
    where E.RawValue == String {
        guard let (s, line) = string(table, key, required: false) else { return defaultValue }
        guard let v = E(rawValue: s) else {
            errors.append(.invalidValue(file: file, line: line, key: "\(table).\(key)",
                                        reason: "unknown value \"\(s)\"; use one of \(E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))"))
            return defaultValue
        }
        return v
    }

    /// A path, resolved against the configuration file's folder when relative.
    mutating func path(_ table: String, _ key: String, required: Bool = true, hint: String = "") -> String? {
        guard let (s, _) = string(table, key, required: required, hint: hint) else { return nil }
        let expanded = (s as NSString).expandingTildeInPath
        let url = expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : baseDirectory.appendingPathComponent(expanded)
        return url.standardizedFileURL.path
    }

    mutating func url(_ table: String, _ key: String, required: Bool, schemes: [String]) -> URL? {
        guard let (s, line) = string(table, key, required: required) else { return nil }
        guard let url = URL(string: s), let scheme = url.scheme?.lowercased(), schemes.contains(scheme),
              let host = url.host, !host.isEmpty else {
            // A database URL may hold a password: never echo a value that has user info.
            let shown = s.contains("@") ? "the value" : "\"\(s)\""
            errors.append(.invalidValue(file: file, line: line, key: "\(table).\(key)",
                                        reason: "\(shown) is not a valid \(schemes.map { "\($0)://" }.joined(separator: " or ")) URL with a host"))
            return nil
        }
        return url
    }

    /// A coded value written `code^codeSystemOID^displayName`, checked by `check` (its value set).
    mutating func coded(_ table: String, _ key: String,
                        check: (CodedValue) -> Result<CodedValue, CodedValueProblem>) -> CodedValue? {
        guard let (text, line) = string(table, key, required: false) else { return nil }
        switch CodedValue.parse(caretSeparated: text).flatMap(check) {
        case .success(let value): return value
        case .failure(let problem):
            errors.append(.invalidValue(file: file, line: line, key: "\(table).\(key)", reason: problem.description))
            return nil
        }
    }

    /// A stage-checked table: string and integer values, as strings, with their lines.
    mutating func section(_ name: String) -> PasserelleConfiguration.Section? {
        guard let table = document.table(name) else { return nil }
        var section = PasserelleConfiguration.Section(values: [:], lines: [:], line: table.line)
        for entry in table.entries {
            switch entry.value {
            case .string(let text): section.values[entry.key] = text
            case .integer(let number): section.values[entry.key] = String(number)
            default:
                errors.append(.wrongType(file: file, line: entry.line, key: "\(name).\(entry.key)",
                                         expected: "a string in quotes or an integer", found: entry.value.typeName))
                continue
            }
            section.lines[entry.key] = entry.line
        }
        return section
    }

    mutating func requireTable(_ name: String) -> Bool {
        if document.table(name) == nil {
            errors.append(.missingTable(file: file, table: name))
            return false
        }
        return true
    }

    mutating func read() -> PasserelleConfiguration? {
        checkUnknown()

        // [structure]
        var structure: PasserelleConfiguration.Structure?
        if requireTable("structure") {
            let finessValue = string("structure", "finess", hint: "the 9-character FINESS of the structure")
            var finess: FINESS?
            if let (raw, line) = finessValue {
                do { finess = try FINESS(raw) } catch {
                    errors.append(.invalidValue(file: file, line: line, key: "structure.finess", reason: error.description))
                }
            }
            let name = string("structure", "name")
            var oid: String?
            if let (raw, line) = string("structure", "oid", hint: "the structure's root OID (document ids, XDS sourceId)") {
                if OID.isValid(raw) { oid = raw } else {
                    errors.append(.invalidValue(file: file, line: line, key: "structure.oid", reason: "\"\(raw)\" is not an OID (digits separated by dots)"))
                }
            }
            if let finess, let name, let oid { structure = .init(finess: finess, name: name.0, oid: oid) }
        }

        // [certificates]
        var certificates: PasserelleConfiguration.Certificates?
        if requireTable("certificates") {
            let authentication = path("certificates", "authentication", hint: "PKCS#12 file of the TLS client certificate")
            let signing = path("certificates", "signing", hint: "PKCS#12 file of the signing certificate")
            let trust = path("certificates", "trust_anchors", hint: "PEM file of the trusted CAs")
            let crl = path("certificates", "crl", required: false)
            let warning = integer("certificates", "expiry_warning_days", range: 1...365, default: 30)
            let file = path("certificates", "passphrase_file", required: false)
            let env = string("certificates", "passphrase_env", required: false)
            var passphrase: PasserelleConfiguration.PassphraseSource?
            switch (file, env) {
            case (let f?, nil): passphrase = .file(f)
            case (nil, let e?):
                if e.0.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) { passphrase = .environment(e.0) }
                else { errors.append(.invalidValue(file: self.file, line: e.1, key: "certificates.passphrase_env", reason: "must be an environment variable name (letters, digits, _)")) }
            case (_?, _?):
                errors.append(.invalidValue(file: self.file, line: document.table("certificates")!.entry("passphrase_env")!.line,
                                            key: "certificates.passphrase_env", reason: "give passphrase_file or passphrase_env, not both"))
            case (nil, nil):
                if document.table("certificates")?.entry("passphrase_file") == nil && document.table("certificates")?.entry("passphrase_env") == nil {
                    errors.append(.missingKey(file: self.file, line: document.table("certificates")!.line, key: "certificates.passphrase_file",
                                              hint: "or certificates.passphrase_env: where the PKCS#12 passphrase is read from"))
                }
            }
            if let authentication, let signing, let trust, let passphrase {
                certificates = .init(authentication: authentication, signing: signing, passphrase: passphrase,
                                     trustAnchors: trust, crl: crl, expiryWarningDays: warning ?? 30)
            }
        }

        // [dmp]
        let dmpEnabled = boolean("dmp", "enabled", default: false)
        let endpoint = url("dmp", "endpoint", required: dmpEnabled, schemes: ["https"])
        let dmpCA = path("dmp", "ca", required: false)
        let dmp = PasserelleConfiguration.DMP(
            enabled: dmpEnabled, endpoint: endpoint, ca: dmpCA ?? certificates?.trustAnchors ?? "",
            timeoutSeconds: integer("dmp", "timeout_seconds", range: 1...600, default: 60) ?? 60,
            maxConnections: integer("dmp", "max_connections", range: 1...64, default: 4) ?? 4,
            registryEndpoint: url("dmp", "registry_endpoint", required: false, schemes: ["https"]),
            statusEndpoint: url("dmp", "status_endpoint", required: false, schemes: ["https"]),
            crl: path("dmp", "crl", required: false))

        // [mssante]
        let mssEnabled = boolean("mssante", "enabled", default: false)
        let tls: PasserelleConfiguration.SMTPTLS = choice("mssante", "smtp_tls", default: .starttls)
        let smtpHost = string("mssante", "smtp_host", required: mssEnabled)
        let smtpPort = integer("mssante", "smtp_port", range: 1...65535, default: tls == .starttls ? 587 : 465)
        let imap = url("mssante", "imap_url", required: false, schemes: ["imaps"])
        var mailbox: String?
        if let (m, line) = string("mssante", "mailbox", required: mssEnabled, hint: "the application mailbox (BAL applicative) address") {
            if isMailAddress(m) { mailbox = m } else {
                errors.append(.invalidValue(file: file, line: line, key: "mssante.mailbox", reason: "\"\(m)\" is not a mail address"))
            }
        }
        let product = string("mssante", "product_reference", required: mssEnabled, hint: "software name and version, e.g. \"Passerelle/\(Passerelle.version)\"")
        let mssante = PasserelleConfiguration.MSSante(
            enabled: mssEnabled, smtpHost: smtpHost?.0 ?? "", smtpPort: smtpPort ?? 587, smtpTLS: tls,
            imapURL: imap, mailbox: mailbox ?? "", productReference: product?.0 ?? "",
            pollIntervalSeconds: integer("mssante", "poll_interval_seconds", range: 5...86_400, default: 60) ?? 60,
            uncertainGraceSeconds: integer("mssante", "uncertain_grace_seconds", range: 0...604_800, default: 3600) ?? 3600,
            crl: path("mssante", "crl", required: false))

        // [folders]
        var folders: PasserelleConfiguration.Folders?
        if requireTable("folders") {
            let inbox = path("folders", "inbox"), work = path("folders", "work")
            let error = path("folders", "error"), done = path("folders", "done")
            if let inbox, let work, let error, let done {
                folders = .init(inbox: inbox, work: work, error: error, done: done,
                                quietPeriodSeconds: integer("folders", "quiet_period_seconds", range: 0...3600, default: 5) ?? 5,
                                workRetrySeconds: integer("folders", "work_retry_seconds", range: 1...3600, default: 60) ?? 60,
                                maxSidecarBytes: integer("folders", "max_sidecar_bytes", range: 1024...67_108_864, default: 1024 * 1024) ?? 1024 * 1024,
                                maxProcessingAttempts: integer("folders", "max_processing_attempts", range: 1...100, default: 3) ?? 3,
                                intakeConcurrency: integer("folders", "intake_concurrency", range: 1...64, default: 4) ?? 4)
                let all = [inbox, work, error, done]
                if Set(all).count != all.count {
                    errors.append(.invalidValue(file: file, line: document.table("folders")!.line, key: "folders",
                                                reason: "inbox, work, error and done must be four different folders"))
                }
            }
        }

        // [journal]
        enum Backend: String, CaseIterable { case sqlite, postgresql }
        let backend: Backend = choice("journal", "backend", default: .sqlite)
        var journal: PasserelleConfiguration.Journal?
        switch backend {
        case .sqlite:
            if document.table("journal") == nil {
                errors.append(.missingTable(file: file, table: "journal"))
            } else if let p = path("journal", "path", hint: "the SQLite database file") {
                journal = .sqlite(path: p)
            }
        case .postgresql:
            if let u = url("journal", "url", required: true, schemes: ["postgres", "postgresql"]) {
                journal = .postgresql(url: u.absoluteString,
                                      passwordFile: path("journal", "password_file", required: false),
                                      blobCache: path("journal", "blob_cache", required: false)
                                          ?? baseDirectory.appendingPathComponent("journal-blob-cache").standardizedFileURL.path,
                                      preparedStatements: boolean("journal", "prepared_statements", default: true),
                                      connections: integer("journal", "connections", range: 1...64,
                                                           default: PasserelleConfiguration.Journal.defaultPostgresConnections)
                                          ?? PasserelleConfiguration.Journal.defaultPostgresConnections)
            }
        }

        // [cda], [logging], [http]
        var cda = PasserelleConfiguration.CDA(
            schema: path("cda", "schema", required: false),
            maxPDFBytes: integer("cda", "max_pdf_bytes", range: 1024...1_073_741_824, default: 20 * 1024 * 1024) ?? 20 * 1024 * 1024)
        cda.defaults.authorSpecialty = coded("cda", "default_author_specialty") { $0.checkedAuthorSpecialty() }
        cda.defaults.facilityType = coded("cda", "default_facility_type") { CISISValueSets.facilityType.check($0) }
        cda.defaults.practiceSetting = coded("cda", "default_practice_setting") { CISISValueSets.practiceSetting.check($0) }
        let logging = PasserelleConfiguration.Logging(
            level: choice("logging", "level", default: .info), format: choice("logging", "format", default: .logfmt))
        let http = PasserelleConfiguration.HTTP(metricsPort: integer("http", "metrics_port", range: 1...65535, default: nil as Int?))

        var console = PasserelleConfiguration.Console()
        console.enabled = boolean("console", "enabled", default: false)
        console.accountsFile = path("console", "accounts_file", required: false)
        console.tls = boolean("console", "tls", default: false)
        console.tlsIdentity = path("console", "tls_identity", required: false)
        console.sessionIdleMinutes = integer("console", "session_idle_minutes", range: 1...1440, default: 30) ?? 30
        console.sessionMaxHours = integer("console", "session_max_hours", range: 1...168, default: 10) ?? 10
        console.lockoutAttempts = integer("console", "lockout_attempts", range: 1...100, default: 5) ?? 5
        console.lockoutMinutes = integer("console", "lockout_minutes", range: 1...1440, default: 15) ?? 15
        console.trustedProxy = string("console", "trusted_proxy", required: false)?.0
        console.userHeader = string("console", "user_header", required: false)?.0
        if (console.trustedProxy == nil) != (console.userHeader == nil),
           let line = document.table("console")?.entry(console.trustedProxy == nil ? "user_header" : "trusted_proxy")?.line {
            errors.append(.invalidValue(file: file, line: line, key: "console.\(console.trustedProxy == nil ? "user_header" : "trusted_proxy")",
                                        reason: "trusted_proxy and user_header go together: the header is believed only from that proxy's address"))
        }
        if let (address, line) = string("console", "address", required: false) {
            console.address = address
            // Off loopback the pages and actions cross the network: encrypted and behind a login.
            if !PasserelleConfiguration.Console.loopbackAddresses.contains(address) && !(console.tls && console.hasLogin) {
                errors.append(.invalidValue(file: file, line: line, key: "console.address", reason: """
                    \(address) is not loopback: the console listens off loopback only with TLS and a login \
                    (set [console] tls = true and accounts_file, made with `passerelle console add-user`); \
                    otherwise keep it on loopback only (127.0.0.1, ::1 or localhost) and reach it through an SSH tunnel \
                    (la console n'écoute hors de la boucle locale qu'avec TLS et une connexion : tls = true et accounts_file)
                    """))
            }
        }
        if console.tlsIdentity != nil && !console.tls, let line = document.table("console")?.entry("tls_identity")?.line {
            errors.append(.invalidValue(file: file, line: line, key: "console.tls_identity", reason: "needs [console] tls = true"))
        }
        if console.enabled, http.metricsPort == nil, let line = document.table("console")?.entry("enabled")?.line {
            errors.append(.invalidValue(file: file, line: line, key: "console.enabled",
                                        reason: "needs [http] metrics_port: the console is served on the status port"))
        }

        var service = PasserelleConfiguration.Service()
        service.leaseSeconds = integer("service", "lease_seconds", range: 5...86_400, default: 300) ?? 300
        service.shutdownTimeoutSeconds = integer("service", "shutdown_timeout_seconds", range: 1...600, default: 30) ?? 30
        service.retryInitialSeconds = integer("service", "retry_initial_seconds", range: 1...86_400, default: 30) ?? 30
        service.retryMaxSeconds = integer("service", "retry_max_seconds", range: 1...604_800, default: 3600) ?? 3600
        service.retryMaxAttempts = integer("service", "retry_max_attempts", range: 1...1000, default: 20) ?? 20
        service.retryDeadlineHours = integer("service", "retry_deadline_hours", range: 1...2160, default: 72) ?? 72
        if service.retryMaxSeconds < service.retryInitialSeconds, let line = document.table("service")?.entry("retry_max_seconds")?.line {
            errors.append(.invalidValue(file: file, line: line, key: "service.retry_max_seconds", reason: "must be at least retry_initial_seconds"))
            service.retryMaxSeconds = service.retryInitialSeconds
        }

        var mllp = PasserelleConfiguration.MLLP()
        mllp.enabled = boolean("mllp", "enabled", default: false)
        mllp.host = string("mllp", "host", required: false)?.0 ?? "127.0.0.1"
        mllp.port = integer("mllp", "port", range: 0...65535, default: 2575) ?? 2575
        mllp.maxMessageBytes = integer("mllp", "max_message_bytes", range: 1024...1_073_741_824, default: 32 * 1024 * 1024) ?? 32 * 1024 * 1024
        mllp.maxConnections = integer("mllp", "max_connections", range: 1...1024, default: 16) ?? 16
        mllp.idleTimeoutSeconds = integer("mllp", "idle_timeout_seconds", range: 1...86_400, default: 300) ?? 300
        mllp.messageTimeoutSeconds = integer("mllp", "message_timeout_seconds", range: 1...86_400, default: 120) ?? 120
        mllp.maxConnectionsPerPeer = integer("mllp", "max_connections_per_peer", range: 1...1024, default: 8) ?? 8
        mllp.allowedClients = addressRanges("mllp", "allowed_clients")
        mllp.tlsIdentity = path("mllp", "tls_identity", required: false)
        mllp.tlsClientCA = path("mllp", "tls_client_ca", required: false)
        if mllp.tlsClientCA != nil && mllp.tlsIdentity == nil, let line = document.table("mllp")?.entry("tls_client_ca")?.line {
            errors.append(.invalidValue(file: file, line: line, key: "mllp.tls_client_ca", reason: "needs mllp.tls_identity (client certificates only exist with TLS)"))
        }
        let patientKeyFile = path("journal", "patient_key_file", required: false)
        // Up to 100 years: a hospital keeps its records 20 years and more; the gateway's copy is
        // transit, so a few months is usual. 0 is refused: it would purge as soon as a send ends.
        let retentionDays = integer("journal", "retention_days", range: 1...36_500, default: nil)
        let intakeLanguage: IntakeLanguage = choice("intake", "language", default: .default)

        let vihf = section("vihf")
        let report = readReport()

        guard errors.isEmpty, let structure, let certificates, let folders, let journal else { return nil }
        var configuration = PasserelleConfiguration(
            file: file, structure: structure, certificates: certificates, dmp: dmp, mssante: mssante,
            folders: folders, journal: journal, cda: cda, logging: logging, http: http, service: service, mllp: mllp,
            patientKeyFile: patientKeyFile, retentionDays: retentionDays, vihf: vihf, report: report)
        configuration.intakeLanguage = intakeLanguage
        configuration.console = console
        return configuration
    }

    /// An array of client addresses or CIDR ranges (`[mllp] allowed_clients`); absent: empty.
    mutating func addressRanges(_ table: String, _ key: String) -> [ClientAddressRange] {
        guard let entry = value(table, key, required: false) else { return [] }
        guard case .strings(let texts) = entry.value else {
            errors.append(.wrongType(file: file, line: entry.line, key: "\(table).\(key)", expected: "an array of strings", found: entry.value.typeName))
            return []
        }
        var ranges: [ClientAddressRange] = []
        for text in texts {
            guard let range = ClientAddressRange(text) else {
                errors.append(.invalidValue(file: file, line: entry.line, key: "\(table).\(key)",
                                            reason: "\"\(text)\" is not an IPv4/IPv6 address or CIDR range (e.g. \"10.1.0.0/16\", \"fd00::/8\")"))
                return []
            }
            ranges.append(range)
        }
        return ranges
    }

    /// An array of document kinds (short names or LOINC codes).
    mutating func kinds(_ table: String, _ key: String) -> [DocumentKind]? {
        guard let entry = value(table, key, required: false) else { return nil }
        guard case .strings(let names) = entry.value else {
            errors.append(.wrongType(file: file, line: entry.line, key: "\(table).\(key)", expected: "an array of strings", found: entry.value.typeName))
            return nil
        }
        var kinds: [DocumentKind] = []
        for name in names {
            guard let kind = DocumentKind(parsing: name) else {
                errors.append(.invalidValue(file: file, line: entry.line, key: "\(table).\(key)",
                                            reason: "unknown document kind \"\(name)\"; use \(DocumentKind.accepted)"))
                return nil
            }
            if !kinds.contains(kind) { kinds.append(kind) }
        }
        return kinds
    }

    /// Percentages by indicator code (the keys were checked by ``checkUnknown()``).
    mutating func percentages(_ table: String) -> [String: Int] {
        guard let t = document.table(table) else { return [:] }
        var result: [String: Int] = [:]
        for entry in t.entries where PasserelleConfiguration.Report.indicatorCodes.contains(entry.key) {
            if let n = integer(table, entry.key, range: 0...100_000, default: nil as Int?) { result[entry.key] = n }
        }
        return result
    }

    mutating func readReport() -> PasserelleConfiguration.Report {
        var report = PasserelleConfiguration.Report.default
        if let (zone, line) = string("report", "time_zone", required: false) {
            if TimeZone(identifier: zone) != nil { report.timeZone = zone } else {
                errors.append(.invalidValue(file: file, line: line, key: "report.time_zone",
                                            reason: "\"\(zone)\" is not a time zone identifier such as \"Europe/Paris\""))
            }
        }
        for domain in SUNESDomain.allCases {
            let prefix = domain.rawValue.lowercased()
            if let kinds = kinds("report", "\(prefix)_kinds") { report.domainKinds[domain] = kinds }
            if document.table("report")?.entry("\(prefix)_denominator") != nil {
                report.denominators[domain] = choice("report", "\(prefix)_denominator", default: PasserelleConfiguration.Report.Denominator.stays)
            }
        }
        if let kinds = kinds("report", "discharge_letter_kinds") { report.dischargeLetterKinds = kinds }
        if let entry = value("report", "qualified_statuses", required: false) {
            if case .strings(let statuses) = entry.value, !statuses.isEmpty {
                report.qualifiedStatuses = statuses
            } else {
                errors.append(.wrongType(file: file, line: entry.line, key: "report.qualified_statuses",
                                         expected: "a non-empty array of identity statuses such as [\"QUAL\"]", found: entry.value.typeName))
            }
        }
        // A table given in the file replaces the defaults entirely, so removing a line removes its target.
        if document.table("report.targets") != nil { report.targets = percentages("report.targets") }
        if document.table("report.thresholds") != nil { report.thresholds = percentages("report.thresholds") }
        return report
    }
}
