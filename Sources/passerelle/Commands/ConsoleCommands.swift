import ArgumentParser
import Foundation
import PasserelleCore
import WebServer

extension ConsoleRole: ExpressibleByArgument {
    public init?(argument: String) {
        // "operateur" too: the accent is easy to lose in a shell script.
        self.init(rawValue: argument == "operateur" ? "opérateur" : argument)
    }
}

/// `passerelle console …` — the web console's local accounts (`[console] accounts_file`).
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Manage the web console's accounts ([console] accounts_file).",
        discussion: """
        Accounts are lines `name:role:bcrypt-hash` in [console] accounts_file, written 0600. \
        Roles: lecteur (reads every page) and opérateur (also resends, holds and discards). \
        The running service reads the file again when it changes: no restart needed; the \
        sessions of a removed account end at its next request. See docs/console-security.md.
        """,
        subcommands: [AddUser.self, RemoveUser.self, ListUsers.self]
    )

    /// The accounts file of the configuration, or why there is none.
    static func accountsFile(_ global: GlobalOptions) throws -> String {
        let c = try JournalAccess.configuration(global)
        guard let path = c.console.accountsFile else {
            printError("[console] accounts_file is not set in \(global.configPath): set it to where the accounts are kept (e.g. /etc/passerelle/console-accounts)")
            throw ExitCode.failure
        }
        return path
    }

    struct AddUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-user",
            abstract: "Add a console account, or set an existing one's role and password.",
            discussion: """
            The password is never taken on the command line (shell history, process list): it \
            is asked twice on a terminal, or read from the first line of standard input, or of \
            --password-file. At least 12 characters; hashed with bcrypt (cost 12).

            Examples:
              passerelle console add-user alice --role opérateur
              printf '%s\\n' "$PASSWORD" | passerelle console add-user bob --role lecteur
            """
        )

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Account name (letters, digits, . - _ @).") var name: String
        @Option(name: .long, help: "lecteur or opérateur.") var role: ConsoleRole
        @Option(name: .long, help: ArgumentHelp("Read the password from the first line of this file.", valueName: "file"))
        var passwordFile: String?

        func run() async throws {
            let path = try ConsoleCommand.accountsFile(global)
            let password = try readPassword()
            do {
                var accounts = try ConsoleAccounts.load(path: path, missingIsEmpty: true)
                let existed = accounts.account(named: name) != nil
                try accounts.set(name: name, role: role, password: password)
                try accounts.write(path: path)
                print("\(existed ? "Updated" : "Added") console account \(name) (\(role.rawValue)) in \(path).")
            } catch {
                printError(error.description)
                throw ExitCode.failure
            }
        }

        func readPassword() throws -> String {
            if let passwordFile {
                guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                    printError("cannot read --password-file \(passwordFile)")
                    throw ExitCode.failure
                }
                return String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
                    .trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
            }
            if isatty(STDIN_FILENO) == 1 {
                guard let first = getpass("Mot de passe de \(name) : ").map({ String(cString: $0) }),
                      let second = getpass("Encore une fois : ").map({ String(cString: $0) }), first == second else {
                    printError("the two passwords differ")
                    throw ExitCode.failure
                }
                return first
            }
            guard let line = readLine(strippingNewline: true) else {
                printError("no password on standard input (give one line, or use --password-file)")
                throw ExitCode.failure
            }
            return line.trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
        }
    }

    struct RemoveUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove-user", abstract: "Remove a console account (its sessions end).")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Account name.") var name: String

        func run() async throws {
            let path = try ConsoleCommand.accountsFile(global)
            do {
                var accounts = try ConsoleAccounts.load(path: path)
                try accounts.remove(name: name)
                try accounts.write(path: path)
                print("Removed console account \(name) from \(path).")
            } catch {
                printError(error.description)
                throw ExitCode.failure
            }
        }
    }

    struct ListUsers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list-users", abstract: "List console accounts and their roles (never the hashes).")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let path = try ConsoleCommand.accountsFile(global)
            do {
                let accounts = try ConsoleAccounts.load(path: path, missingIsEmpty: true)
                if accounts.accounts.isEmpty { print("No console account in \(path).") }
                for account in accounts.accounts { print("\(account.name)  \(account.role.rawValue)") }
            } catch {
                printError(error.description)
                throw ExitCode.failure
            }
        }
    }
}

/// `config check`: the console's accounts file (readable, well formed, 0600, an opérateur in it)
/// and its TLS identity (opens with the [certificates] passphrase), when the console is on.
struct ConsoleConfigurationCheck: ConfigurationCheck {
    let name = "console"
    let isPreflight = true

    func run(_ c: PasserelleConfiguration) async -> [CheckFinding] {
        guard c.console.enabled else { return [] }
        var findings: [CheckFinding] = []
        if let path = c.console.accountsFile {
            do {
                let accounts = try ConsoleAccounts.load(path: path)
                var info = stat()
                if stat(path, &info) == 0, info.st_mode & 0o077 != 0 {
                    findings.append(CheckFinding(severity: .warning, key: "console.accounts_file", message: "\(path) is readable by others (mode \(String(info.st_mode & 0o777, radix: 8)))",
                                                 fix: "chmod 600 \(path)"))
                }
                if !accounts.accounts.contains(where: { $0.role.canAct }) {
                    findings.append(CheckFinding(severity: .warning, key: "console.accounts_file", message: "no opérateur account: nobody can act on the Échecs page",
                                                 fix: "passerelle console add-user NAME --role opérateur"))
                }
                findings.append(CheckFinding(severity: .ok, key: "console.accounts_file", message: "\(accounts.accounts.count) account\(accounts.accounts.count == 1 ? "" : "s")"))
            } catch {
                findings.append(CheckFinding(severity: .error, key: "console.accounts_file", message: error.description,
                                             fix: "create it with `passerelle console add-user NAME --role opérateur`"))
            }
        }
        if c.console.tls {
            let path = c.console.tlsIdentity ?? c.certificates.authentication
            do {
                _ = try ServiceMonitor.consoleIdentity(c, loaded: nil)
                findings.append(CheckFinding(severity: .ok, key: c.console.tlsIdentity == nil ? "certificates.authentication" : "console.tls_identity",
                                             message: "\(path): opens as the console's TLS identity"))
            } catch {
                findings.append(CheckFinding(severity: .error, key: "console.tls_identity", message: error.description,
                                             fix: "a PKCS#12 file opened with the [certificates] passphrase"))
            }
        }
        return findings
    }
}
