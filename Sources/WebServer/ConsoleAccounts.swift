import BlockingIO
import Foundation
import HummingbirdBcrypt

/// One console account: a name, a role and the bcrypt hash of its password.
public struct ConsoleAccount: Sendable, Hashable {
    public var name: String
    public var role: ConsoleRole
    /// `$2b$12$…`: never the password.
    public var passwordHash: String

    public init(name: String, role: ConsoleRole, passwordHash: String) {
        self.name = name
        self.role = role
        self.passwordHash = passwordHash
    }
}

/// What can go wrong with the accounts file or an account change, said so a person can act.
public enum ConsoleAccountsError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(path: String, line: Int, reason: String)
    case invalidName(String)
    case weakPassword(String)
    case unknownAccount(String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "cannot read the console accounts file \(path): \(reason)"
        case let .malformed(path, line, reason): "\(path):\(line): \(reason) (expected name:role:bcrypt-hash, role lecteur or opérateur)"
        case let .invalidName(name):
            "\"\(name)\" is not a valid account name: 1 to 64 letters, digits, '.', '-', '_' or '@', no ':'"
        case let .weakPassword(reason): "password refused: \(reason)"
        case let .unknownAccount(name): "no console account named \(name)"
        case let .unwritable(path, reason): "cannot write the console accounts file \(path): \(reason)"
        }
    }
}

/// The accounts file (`[console] accounts_file`): one `name:role:bcrypt-hash` line per account,
/// `#` comments and blank lines ignored; written 0600 (the hashes are still worth guarding),
/// atomically (a temporary file renamed over the old one).
public struct ConsoleAccounts: Sendable {
    public var accounts: [ConsoleAccount]
    /// bcrypt's work factor: 2^12 rounds, ≈ 0.25 s per check on this kind of machine.
    public static let cost: UInt8 = 12
    static let minimumPasswordLength = 12

    public init(accounts: [ConsoleAccount] = []) { self.accounts = accounts }

    public func account(named name: String) -> ConsoleAccount? { accounts.first { $0.name == name } }

    public static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.count) && name.unicodeScalars.allSatisfy {
            ($0.isASCII && (CharacterSet.alphanumerics.contains($0))) || ".-_@".unicodeScalars.contains($0)
        }
    }

    /// Reads the file; a missing file is an empty list (the first `add-user` creates it).
    public static func load(path: String, missingIsEmpty: Bool = false) throws(ConsoleAccountsError) -> ConsoleAccounts {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            if missingIsEmpty && !FileManager.default.fileExists(atPath: path) { return ConsoleAccounts() }
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        return try parse(text, path: path)
    }

    static func parse(_ text: String, path: String) throws(ConsoleAccountsError) -> ConsoleAccounts {
        var accounts: [ConsoleAccount] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            // The hash has no ':' ($2b$12$…), so three fields exactly.
            let fields = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 3 else { throw .malformed(path: path, line: index + 1, reason: "\(fields.count) fields") }
            guard isValidName(fields[0]) else { throw .malformed(path: path, line: index + 1, reason: "invalid account name") }
            guard let role = ConsoleRole(rawValue: fields[1]) ?? (fields[1] == "operateur" ? .operateur : nil) else {
                throw .malformed(path: path, line: index + 1, reason: "unknown role \"\(fields[1])\"")
            }
            guard fields[2].hasPrefix("$2"), fields[2].count == 60 else {
                throw .malformed(path: path, line: index + 1, reason: "not a bcrypt hash")
            }
            guard !accounts.contains(where: { $0.name == fields[0] }) else {
                throw .malformed(path: path, line: index + 1, reason: "account \(fields[0]) listed twice")
            }
            accounts.append(ConsoleAccount(name: fields[0], role: role, passwordHash: fields[2]))
        }
        return ConsoleAccounts(accounts: accounts)
    }

    public var text: String {
        "# Passerelle console accounts (passerelle console add-user / remove-user): name:role:bcrypt-hash\n"
            + accounts.map { "\($0.name):\($0.role.rawValue):\($0.passwordHash)\n" }.joined()
    }

    /// Writes 0600 through a temporary file in the same folder, renamed over the old one. The
    /// new file keeps the old one's owner (else the folder's): `sudo passerelle console add-user`
    /// must not leave a root-owned file the service account cannot read.
    public func write(path: String) throws(ConsoleAccountsError) {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .unwritable(path: path, reason: String(cString: strerror(errno))) }
        var owner = stat()
        if stat(path, &owner) == 0 || stat(url.deletingLastPathComponent().path, &owner) == 0 {
            _ = fchown(fd, owner.st_uid, owner.st_gid)  // only root may give it away; otherwise it is ours already
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        let written = (try? handle.write(contentsOf: Data(text.utf8))) != nil
        let synced = fsync(fd) == 0
        try? handle.close()
        guard written, synced, rename(temporary.path, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw .unwritable(path: path, reason: reason)
        }
        chmod(path, 0o600)
    }

    /// Adds or replaces `name` with a new bcrypt hash of `password`.
    public mutating func set(name: String, role: ConsoleRole, password: String) throws(ConsoleAccountsError) {
        guard Self.isValidName(name) else { throw .invalidName(name) }
        guard password.count >= Self.minimumPasswordLength else {
            throw .weakPassword("at least \(Self.minimumPasswordLength) characters")
        }
        guard password.utf8.count <= 72 else { throw .weakPassword("bcrypt reads 72 bytes at most") }
        let account = ConsoleAccount(name: name, role: role, passwordHash: Bcrypt.hash(password, cost: Self.cost))
        if let index = accounts.firstIndex(where: { $0.name == name }) { accounts[index] = account } else { accounts.append(account) }
    }

    public mutating func remove(name: String) throws(ConsoleAccountsError) {
        guard let index = accounts.firstIndex(where: { $0.name == name }) else { throw .unknownAccount(name) }
        accounts.remove(at: index)
    }

    /// A hash to check against when the name is unknown, so a wrong name costs as long as a
    /// wrong password (no account enumeration by timing).
    static let decoyHash = Bcrypt.hash("passerelle-decoy-password", cost: cost)

    /// The account when `password` matches; bcrypt runs on the blocking executor, not the
    /// cooperative pool (≈ 0.25 s of CPU each).
    func verify(name: String, password: String) async -> ConsoleAccount? {
        let account = account(named: name)
        let hash = account?.passwordHash ?? Self.decoyHash
        let ok = (try? await Self.bcryptLane.run { Self.check(password, hash: hash) }) ?? false
        return ok ? account : nil
    }

    /// bcrypt's own check (blocking: ≈ 0.25 s at cost 12).
    static func check(_ password: String, hash: String) -> Bool { Bcrypt.verify(password, hash: hash) }

    /// Two threads: both cores may check a login at once, never more (a login flood stays bounded).
    static let bcryptLane = BlockingExecutor(name: "console-bcrypt", threads: 2, idleTimeout: .seconds(60))
}
