import Foundation

/// A secret passphrase. Printing, interpolating or dumping it shows "<redacted>", so it
/// cannot leak into logs by accident; `reveal()` is the one explicit way to the text.
public struct Passphrase: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let secret: String
    /// Non-fatal remarks about how the passphrase is stored (e.g. a group/world readable
    /// file), for the caller to log. They never contain the passphrase.
    public let warnings: [String]

    /// Where the passphrase comes from: never the command line.
    public enum Source: Sendable, Hashable, CustomStringConvertible {
        /// A file holding the passphrase (a trailing newline is ignored).
        case file(URL)
        /// The name of an environment variable holding the passphrase.
        case environment(String)

        public var description: String {
            switch self {
            case let .file(url): "passphrase file \(url.path)"
            case let .environment(name): "environment variable \(name)"
            }
        }
    }

    /// Wraps a passphrase already in memory (tests, or a caller with its own secret store).
    public init(_ secret: String) {
        self.secret = secret
        warnings = []
    }

    private init(secret: String, warnings: [String]) {
        self.secret = secret
        self.warnings = warnings
    }

    /// Reads the passphrase from its source.
    public static func read(from source: Source,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(OpenSSLError) -> Passphrase {
        switch source {
        case let .file(url): return try read(file: url)
        case let .environment(name): return try read(environmentVariable: name, environment: environment)
        }
    }

    /// Reads a passphrase file: trailing CR/LF are dropped; a warning is attached when the
    /// file can be read by group or others.
    public static func read(file url: URL) throws(OpenSSLError) -> Passphrase {
        let data = try readFile(url)
        var text = String(decoding: data, as: UTF8.self)
        // "\r\n" is one Character in Swift, hence isNewline rather than comparing with "\n".
        while let last = text.last, last.isNewline { text.removeLast() }
        guard !text.isEmpty else { throw .passphraseUnavailable("passphrase file \(url.path) is empty") }
        var warnings: [String] = []
        if let mode = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.posixPermissions] as? Int,
           mode & 0o077 != 0 {
            warnings.append("passphrase file \(url.path) is readable by group or others (mode \(String(mode, radix: 8))); restrict it with chmod 600")
        }
        return Passphrase(secret: text, warnings: warnings)
    }

    /// Reads the passphrase from the environment variable `name`.
    public static func read(environmentVariable name: String,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(OpenSSLError) -> Passphrase {
        guard let value = environment[name] else {
            throw .passphraseUnavailable("environment variable \(name) is not set")
        }
        guard !value.isEmpty else { throw .passphraseUnavailable("environment variable \(name) is empty") }
        return Passphrase(secret: value, warnings: [])
    }

    /// The passphrase text, for handing to a library that needs it. Do not log it.
    public func reveal() -> String { secret }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "Passphrase(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: ["secret": "<redacted>"]) }
}
