import CPostgres
import Foundation

/// A parameter or column value. Parameters travel in libpq's text format, except bytes, which
/// go in binary format (no hex round trip for document blobs).
public enum PostgresValue: Sendable, Hashable {
    case text(String)
    case bytes(Data)
    case null

    public var string: String? {
        switch self {
        case .text(let v): v
        default: nil
        }
    }
    public var int64: Int64? { string.flatMap { Int64($0) } }
    public var int: Int? { string.flatMap { Int($0) } }
    public var double: Double? { string.flatMap { Double($0) } }
    /// PostgreSQL's text form of a boolean is `t` / `f`.
    public var bool: Bool? {
        switch string {
        case "t", "true": true
        case "f", "false": false
        default: nil
        }
    }
    public var data: Data? {
        switch self {
        case .bytes(let v): v
        case .text(let v): Data(v.utf8)
        case .null: nil
        }
    }
    public var isNull: Bool { self == .null }
}

/// Values that bind to a `$n` parameter.
public protocol PostgresBindable { var postgresValue: PostgresValue { get } }
extension PostgresValue: PostgresBindable { public var postgresValue: PostgresValue { self } }
extension Int: PostgresBindable { public var postgresValue: PostgresValue { .text(String(self)) } }
extension Int64: PostgresBindable { public var postgresValue: PostgresValue { .text(String(self)) } }
extension Int32: PostgresBindable { public var postgresValue: PostgresValue { .text(String(self)) } }
extension Bool: PostgresBindable { public var postgresValue: PostgresValue { .text(self ? "true" : "false") } }
extension Double: PostgresBindable { public var postgresValue: PostgresValue { .text(String(self)) } }
extension String: PostgresBindable { public var postgresValue: PostgresValue { .text(self) } }
extension Data: PostgresBindable { public var postgresValue: PostgresValue { .bytes(self) } }
extension Optional: PostgresBindable where Wrapped: PostgresBindable {
    public var postgresValue: PostgresValue { self?.postgresValue ?? .null }
}

/// One result row, readable by column name or index.
public struct PostgresRow: Sendable, Hashable {
    public let columns: [String]
    public let values: [PostgresValue]

    /// The value of column `name` (`.null` if there is no such column).
    public subscript(_ name: String) -> PostgresValue {
        guard let i = columns.firstIndex(of: name) else { return .null }
        return values[i]
    }
    public subscript(_ index: Int) -> PostgresValue { values[index] }
}

/// Where and how to connect.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection URI (`postgresql://user@host:5432/db?sslmode=verify-full&sslrootcert=/etc/…/ca.pem`)
    /// or `key=value` string. Every libpq option is available through it, including `passfile`.
    public var url: String
    /// A password that overrides the one in the URL (read from `password_file`). Without it
    /// libpq uses the URL's, `PGPASSWORD`, or the passfile (`~/.pgpass`, `passfile=`).
    public var password: String?
    /// Seconds libpq waits for the server to answer a connection (unless the URL sets it).
    public var connectTimeout: Int
    public var applicationName: String
    /// Statements run by `query`, `run` and `scalar` are prepared once per session and then only
    /// bound and run: sent whole, the server parsed and planned every journal statement again
    /// (prepared, it used a third less CPU per document on the bench). Off for a pooler that
    /// cannot keep them (PgBouncer in transaction mode before 1.21, or without
    /// `max_prepared_statements`).
    public var preparedStatements = true
    /// Sessions a ``PostgresClient`` may open, one thread each: units of work run on as many at
    /// once (the first session opens at once, the others when units overlap). One session
    /// serialised a node's whole journal traffic behind each unit's round trips and server work
    /// (the admission of a document carries its CDA); row locks keep concurrent units correct,
    /// as they keep several nodes.
    public var connections = 1

    public init(url: String, password: String? = nil, connectTimeout: Int = 10, applicationName: String = "passerelle") {
        self.url = url
        self.password = password
        self.connectTimeout = connectTimeout
        self.applicationName = applicationName
    }

    /// Reads the password from a file holding it alone (trailing newline ignored). The file
    /// should be readable by the passerelle user only.
    public init(url: String, passwordFile: String, connectTimeout: Int = 10, applicationName: String = "passerelle") throws(PostgresError) {
        guard let data = FileManager.default.contents(atPath: passwordFile) else {
            throw PostgresError(message: "cannot read the password file \(passwordFile)", context: "connect \(Self.redacted(url))")
        }
        let password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        guard !password.isEmpty else {
            throw PostgresError(message: "the password file \(passwordFile) is empty", context: "connect \(Self.redacted(url))")
        }
        self.init(url: url, password: password, connectTimeout: connectTimeout, applicationName: applicationName)
    }

    /// The URL with any password replaced by `***`, for messages and logs.
    public var redactedURL: String { Self.redacted(url) }

    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.scheme != nil else {
            // key=value form: hide the value of password=…
            return url.replacingOccurrences(of: #"password\s*=\s*('[^']*'|\S+)"#, with: "password=***", options: .regularExpression)
        }
        if components.password != nil { components.password = "***" }
        components.queryItems = components.queryItems?.map { item in
            item.name == "password" ? URLQueryItem(name: item.name, value: "***") : item
        }
        return components.string ?? "(unprintable URL)"
    }
}

/// One libpq connection. Not thread-safe and blocking: ``PostgresClient`` confines it to a
/// dedicated thread. Queries use the extended protocol with `$1…$n` parameters, prepared once
/// per session (``PostgresConfiguration/preparedStatements``) or sent whole (`PQexecParams`).
public final class PostgresConnection {
    public let configuration: PostgresConfiguration
    private var handle: OpaquePointer?
    /// This session's prepared statements: SQL text → statement name.
    private var preparedNames: [String: String] = [:]
    private var preparedCount = 0
    /// Beyond this many distinct texts (SQL built per call, e.g. `IN` lists), statements are sent whole.
    static let maxPreparedStatements = 256
    /// Statements sent since ``markUnitStart()``, so a caller can tell whether a failure on a
    /// lost connection happened before anything reached the server.
    public private(set) var statementsSinceMark = 0

    /// Connects now; throws with libpq's message (never the password) if it cannot.
    public init(_ configuration: PostgresConfiguration) throws(PostgresError) {
        self.configuration = configuration
        try connect()
    }

    deinit { close() }

    /// Closes the connection. A later query reconnects only through ``reconnect()``.
    public func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// True when the connection is open and usable.
    public var isHealthy: Bool { handle.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// The server's process id for this session (`pg_backend_pid()`).
    public var backendPID: Int32 { handle.map { PQbackendPID($0) } ?? 0 }

    /// True while a transaction block is open (or failed and awaiting ROLLBACK).
    public var isInTransaction: Bool {
        guard let handle else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE
    }

    /// Drops the current connection (if any) and opens a new one with the same configuration.
    public func reconnect() throws(PostgresError) {
        close()
        try connect()
    }

    public func markUnitStart() { statementsSinceMark = 0 }

    private func connect() throws(PostgresError) {
        // Defaults first: `dbname` expands the URL in place, and later entries override earlier ones.
        var pairs: [(String, String)] = [("connect_timeout", String(configuration.connectTimeout)),
                                         ("application_name", configuration.applicationName),
                                         ("dbname", configuration.url)]
        if let password = configuration.password { pairs.append(("password", password)) }
        let keys = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer { (keys + values).forEach { free($0) } }
        let conn: OpaquePointer? = (keys.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { k in
            (values.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { v in
                PQconnectdbParams(k.baseAddress, v.baseAddress, 1)
            }
        }
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            let message = conn.map { Self.trimmed(PQerrorMessage($0)) } ?? "out of memory"
            PQfinish(conn)
            throw PostgresError(message: message, context: "connect \(configuration.redactedURL)")
        }
        passerelle_pq_silence_notices(conn)
        handle = conn
        preparedNames = [:]  // a new session has none
    }

    /// Runs one or more statements separated by `;`, without parameters (schema, BEGIN/COMMIT).
    public func execute(_ sql: String) throws(PostgresError) {
        let conn = try requireHandle("execute")
        statementsSinceMark += 1
        let result = PQexec(conn, sql)
        defer { PQclear(result) }
        try check(result, conn, context: "execute (\(Self.firstWords(sql)))")
    }

    /// Runs one statement with `$1…$n` bound to `parameters` and returns every row.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresBindable] = []) throws(PostgresError) -> [PostgresRow] {
        var rows: [PostgresRow] = []
        try withResult(sql, parameters) { rows = Self.rows($0) }
        return rows
    }

    /// Runs one statement that returns no rows; the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ parameters: [any PostgresBindable] = []) throws(PostgresError) -> Int {
        var count = 0
        try withResult(sql, parameters) { count = Int(String(cString: PQcmdTuples($0))) ?? 0 }
        return count
    }

    /// The first column of the first row, or nil when there is no row.
    public func scalar(_ sql: String, _ parameters: [any PostgresBindable] = []) throws(PostgresError) -> PostgresValue? {
        try query(sql, parameters).first?.values.first
    }

    /// Runs `body` in a transaction: COMMIT if it returns, ROLLBACK if it throws.
    /// - Parameter isolation: e.g. `"SERIALIZABLE"`; the server default (READ COMMITTED) otherwise.
    @discardableResult
    public func transaction<T>(isolation: String? = nil, _ body: () throws -> T) throws -> T {
        try execute(isolation.map { "BEGIN ISOLATION LEVEL \($0)" } ?? "BEGIN")
        let result: T
        do {
            result = try body()
        } catch {
            if isHealthy { try? execute("ROLLBACK") }
            throw error
        }
        let conn = try requireHandle("commit")
        statementsSinceMark += 1
        let commit = PQexec(conn, "COMMIT")
        defer { PQclear(commit) }
        try check(commit, conn, context: "commit")
        // COMMIT of a transaction that failed earlier answers "ROLLBACK" without an error.
        if let status = PQcmdStatus(commit).map({ String(cString: $0) }), status == "ROLLBACK" {
            throw PostgresError(message: "the transaction was rolled back by the server", context: "commit")
        }
        return result
    }

    // MARK: - Internals

    /// Like ``query(_:_:)`` but hands the raw result to `inspect` before it is freed.
    private func withResult(_ sql: String, _ parameters: [any PostgresBindable],
                            _ inspect: (OpaquePointer) -> Void) throws(PostgresError) {
        let conn = try requireHandle("query")
        var buffers: [UnsafeMutableRawPointer?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        for value in parameters.map(\.postgresValue) {
            switch value {
            case .text(let s):
                buffers.append(UnsafeMutableRawPointer(strdup(s))); lengths.append(0); formats.append(0)
            case .bytes(let d):
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(d.count, 1), alignment: 1)
                d.copyBytes(to: p.assumingMemoryBound(to: UInt8.self), count: d.count)
                buffers.append(p); lengths.append(Int32(clamping: d.count)); formats.append(1)
            case .null:
                buffers.append(nil); lengths.append(0); formats.append(0)
            }
        }
        defer { buffers.forEach { $0.map { free($0) } } }
        statementsSinceMark += 1
        let name = configuration.preparedStatements ? try preparedName(sql, parameterCount: buffers.count, conn) : nil
        let result = buffers.map { $0.map { UnsafePointer<CChar>(OpaquePointer($0)) } }.withUnsafeBufferPointer { params in
            if let name { return PQexecPrepared(conn, name, Int32(buffers.count), params.baseAddress, lengths, formats, 0) }
            return PQexecParams(conn, sql, Int32(buffers.count), nil, params.baseAddress, lengths, formats, 0)
        }
        defer { PQclear(result) }
        do { try check(result, conn, context: "query (\(Self.firstWords(sql)) …)") } catch {
            // 26000: the statement is gone (a pooler's DISCARD ALL); 0A000: "cached plan must not
            // change result type" (its table changed under it). Prepared again by the next call.
            if name != nil, error.sqlState == "26000" || error.sqlState == "0A000" { preparedNames[sql] = nil }
            throw error
        }
        inspect(result!)
    }

    /// The name of `sql` prepared on this session, preparing it on first use; nil once
    /// ``maxPreparedStatements`` texts are prepared (then sent whole).
    private func preparedName(_ sql: String, parameterCount: Int, _ conn: OpaquePointer) throws(PostgresError) -> String? {
        if let name = preparedNames[sql] { return name }
        guard preparedNames.count < Self.maxPreparedStatements else { return nil }
        preparedCount += 1  // never reused: a statement dropped above may still exist on the server
        let name = "passerelle_\(preparedCount)"
        let result = PQprepare(conn, name, sql, Int32(parameterCount), nil)
        defer { PQclear(result) }
        try check(result, conn, context: "prepare (\(Self.firstWords(sql)) …)")
        preparedNames[sql] = name
        return name
    }

    /// How many statements this session has prepared (for tests and diagnostics).
    public var preparedStatementCount: Int { preparedNames.count }

    private func requireHandle(_ context: String) throws(PostgresError) -> OpaquePointer {
        guard let handle else {
            throw PostgresError(message: "connection closed", context: context, connectionLost: true)
        }
        return handle
    }

    /// `context` is built only for an error: the statement's first words cost a split of its
    /// whole text, and every journal statement went through here.
    private func check(_ result: OpaquePointer?, _ conn: OpaquePointer, context: @autoclosure () -> String) throws(PostgresError) {
        let status = result.map { PQresultStatus($0) } ?? PGRES_FATAL_ERROR
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY: return
        default:
            let state = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
            let text = result.map { Self.trimmed(PQresultErrorMessage($0)) }.flatMap { $0.isEmpty ? nil : $0 }
                ?? Self.trimmed(PQerrorMessage(conn))
            throw PostgresError(sqlState: state, message: text, context: context(), connectionLost: PQstatus(conn) != CONNECTION_OK)
        }
    }

    private static func rows(_ result: OpaquePointer) -> [PostgresRow] {
        let rowCount = PQntuples(result), columnCount = PQnfields(result)
        let names = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        let byteaOID: UInt32 = 17
        let isBytes = (0..<columnCount).map { PQftype(result, $0) == byteaOID }
        return (0..<rowCount).map { r in
            PostgresRow(columns: names, values: (0..<columnCount).map { c in
                if PQgetisnull(result, r, c) == 1 { return .null }
                let value = UnsafeRawBufferPointer(start: PQgetvalue(result, r, c), count: Int(PQgetlength(result, r, c)))
                return isBytes[Int(c)] ? .bytes(decodeHexBytea(value)) : .text(String(decoding: value, as: UTF8.self))
            })
        }
    }

    /// bytea in text format is `\x` followed by hex digits. Decoded from libpq's buffer into one
    /// allocation: a blob of a few hundred KB (a built CDA another node admitted) went through a
    /// String and a Data append per byte, most of a second node's CPU.
    static func decodeHexBytea(_ text: UnsafeRawBufferPointer) -> Data {
        guard text.count > 2 else { return Data() }
        var data = Data(count: (text.count - 2) / 2)
        let written = data.withUnsafeMutableBytes { (out: UnsafeMutableRawBufferPointer) -> Int in
            hexValues.withUnsafeBufferPointer { table in
                var n = 0, high: UInt8 = 0, haveHigh = false
                for i in 2..<text.count {
                    let v = table[Int(text[i])]
                    if v > 15 { continue }
                    if haveHigh {
                        out[n] = high << 4 | v
                        n += 1
                    } else {
                        high = v
                    }
                    haveHigh.toggle()
                }
                return n
            }
        }
        if written < data.count { data.count = written }
        return data
    }

    /// 0–15 for a hex digit (either case), 255 for any other byte.
    private static let hexValues: [UInt8] = (0...255).map { c in
        switch c {
        case 48...57: UInt8(c - 48)
        case 97...102: UInt8(c - 87)
        case 65...70: UInt8(c - 55)
        default: 255
        }
    }

    private static func trimmed(_ message: UnsafePointer<CChar>?) -> String {
        message.map { String(cString: $0) }?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    private static func firstWords(_ sql: String) -> String {
        sql.split(whereSeparator: \.isWhitespace).prefix(3).joined(separator: " ")
    }
}
