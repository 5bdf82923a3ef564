/// A failure reported by libpq or the PostgreSQL server, with the server's own message and its
/// SQLSTATE. Never carries the password: connection targets are shown redacted.
public struct PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The five-character SQLSTATE (`23505` unique violation, `28P01` bad password, …); nil when
    /// libpq failed before the server answered (unreachable host, connection closed).
    public let sqlState: String?
    /// libpq's message (`PQerrorMessage` / `PQresultErrorMessage`), trimmed.
    public let message: String
    /// What Passerelle was doing (`connect postgresql://passerelle@db/passerelle`, `query`, …).
    public let context: String
    /// The connection was lost (server restarted, network cut): the next use reconnects.
    public let connectionLost: Bool

    public init(sqlState: String? = nil, message: String, context: String, connectionLost: Bool = false) {
        self.sqlState = sqlState
        self.message = message
        self.context = context
        self.connectionLost = connectionLost
    }

    /// A UNIQUE or PRIMARY KEY constraint refused the write.
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// Any integrity constraint (class 23: unique, foreign key, check, not null).
    public var isConstraintViolation: Bool { sqlState?.hasPrefix("23") == true }

    public var description: String {
        var text = "PostgreSQL error during \(context): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        // Connection failures come without SQLSTATE: recognise the password ones by libpq's text.
        let passwordRefused = message.contains("password authentication failed") || message.contains("no password supplied")
        switch passwordRefused ? "28P01" : sqlState {
        case "28P01", "28000":
            text += "; check the user name and the password (password_file, PGPASSWORD or the passfile) and pg_hba.conf on the server"
        case "3D000": text += "; the database does not exist: create it (createdb) or fix the URL"
        case "42501": text += "; the database user lacks a privilege: grant it on the journal's schema"
        case "53100": text += "; the database server is out of disk space"
        case let s? where s.hasPrefix("08") || s == "57P01" || s == "57P03":
            text += "; check that the PostgreSQL server is running and reachable"
        case nil where connectionLost || context.hasPrefix("connect"):
            text += "; check that the PostgreSQL server is running and reachable, the URL (host, port, sslmode) and, with sslmode=verify-full, the CA file (sslrootcert) and host name"
        default: break
        }
        return text
    }
}
