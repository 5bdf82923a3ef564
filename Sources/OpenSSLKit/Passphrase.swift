import COpenSSL
import Foundation

/// Secret bytes (a passphrase, an unencrypted private key in PEM) that never show in a log:
/// printing, interpolating or dumping them gives "<redacted>", and the memory is wiped with
/// `OPENSSL_cleanse` when the last reference goes. Copies handed to a library (a `String`
/// from ``Passphrase/reveal()``, libcurl's own copy of a blob) are outside that guarantee.
public final class SecretBytes: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    // Written once in init, read only afterwards; wiped in deinit.
    private nonisolated(unsafe) let storage: UnsafeMutableRawBufferPointer
    /// How many bytes the secret holds.
    public let count: Int

    public init(_ bytes: some Collection<UInt8>) {
        count = bytes.count
        // At least one byte, so the buffer always has an address to wipe.
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 1)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        _ = storage.initializeMemory(as: UInt8.self, from: bytes)
    }

    deinit {
        OPENSSL_cleanse(storage.baseAddress, storage.count)
        storage.deallocate()
    }

    /// Lends the bytes for the duration of `body`. Do not keep or log them.
    public func withUnsafeBytes<T, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
        try body(UnsafeRawBufferPointer(rebasing: storage[..<count]))
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "SecretBytes(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: ["bytes": "<redacted>"]) }
}

/// A secret passphrase, and the one place the gateway reads one (PKCS#12 bundles, TLS
/// client keys: every part takes it from here). Printing, interpolating or dumping it shows
/// "<redacted>"; its bytes are wiped from memory when it goes (see ``SecretBytes``).
///
/// **Newline rule** (files and environment variables alike): exactly one trailing line
/// break, `"\n"` or `"\r\n"` — the one an editor or `echo` adds — is removed; nothing else
/// is. Spaces, tabs and any further line break stay part of the passphrase (a warning says
/// so for line breaks, which are almost always a mistake). An empty passphrase is an error.
public struct Passphrase: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let secret: SecretBytes
    /// Non-fatal remarks about how the passphrase is stored (e.g. a group/world readable
    /// file), for the caller to log. They never contain the passphrase.
    public let warnings: [String]

    /// Where the passphrase comes from: never the command line.
    public enum Source: Sendable, Hashable, CustomStringConvertible {
        /// A file holding the passphrase (one trailing line break is ignored).
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
    /// Taken as is: the newline rule applies to what is read from a source.
    public init(_ secret: String) {
        self.secret = SecretBytes(Array(secret.utf8))
        warnings = []
    }

    private init(bytes: [UInt8], warnings: [String]) {
        secret = SecretBytes(bytes)
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

    /// Reads a passphrase file (newline rule above); a warning is attached when the file can
    /// be read by group or others.
    public static func read(file url: URL) throws(OpenSSLError) -> Passphrase {
        var bytes = [UInt8](try readFile(url))
        defer { wipe(&bytes) }
        var warnings: [String] = []
        if let mode = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.posixPermissions] as? Int,
           mode & 0o077 != 0 {
            warnings.append("passphrase file \(url.path) is readable by group or others (mode \(String(mode, radix: 8))); restrict it with chmod 600")
        }
        return try make(bytes, origin: "passphrase file \(url.path)", warnings: warnings)
    }

    /// Reads the passphrase from the environment variable `name` (newline rule above).
    public static func read(environmentVariable name: String,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(OpenSSLError) -> Passphrase {
        guard let value = environment[name] else {
            throw .passphraseUnavailable("environment variable \(name) is not set")
        }
        var bytes = Array(value.utf8)
        defer { wipe(&bytes) }
        return try make(bytes, origin: "environment variable \(name)", warnings: [])
    }

    /// The one newline rule: drops a single trailing "\n" or "\r\n".
    static func strippingOneLineBreak(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        var end = bytes.endIndex
        if end > 0, bytes[end - 1] == 0x0A {
            end -= 1
            if end > 0, bytes[end - 1] == 0x0D { end -= 1 }
        }
        return bytes[..<end]
    }

    private static func make(_ raw: [UInt8], origin: String, warnings: [String]) throws(OpenSSLError) -> Passphrase {
        let text = strippingOneLineBreak(raw)
        guard !text.isEmpty else { throw .passphraseUnavailable("\(origin) is empty") }
        var warnings = warnings
        if text.contains(0x0A) || text.contains(0x0D) {
            warnings.append("\(origin) holds a line break inside or after the passphrase (only one final line break is ignored); "
                            + "if the PKCS#12 then reports a wrong passphrase, remove the extra line")
        }
        return Passphrase(bytes: Array(text), warnings: warnings)
    }

    private static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
    }

    /// Lends the passphrase as a NUL-terminated C string for the duration of `body` (what
    /// OpenSSL and xmlsec take); the temporary copy is wiped afterwards.
    public func withCString<T, E: Error>(_ body: (UnsafePointer<CChar>) throws(E) -> T) throws(E) -> T {
        var buffer = [CChar](repeating: 0, count: secret.count + 1)
        defer { buffer.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        secret.withUnsafeBytes { bytes in
            for index in 0..<secret.count { buffer[index] = CChar(bitPattern: bytes[index]) }
        }
        return try buffer.withUnsafeBufferPointer { (pointer) throws(E) -> T in try body(pointer.baseAddress!) }
    }

    /// The passphrase text, for a library that only takes a Swift `String` (libcurl's key
    /// password). That copy is not wiped: prefer ``withCString(_:)``. Do not log it.
    public func reveal() -> String {
        secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "Passphrase(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: ["secret": "<redacted>"]) }
}
