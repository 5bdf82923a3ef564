import ArgumentParser
import PasserelleCore

/// The `passerelle` command. Add a subcommand by writing `Commands/<Name>Command.swift`
/// and listing its type in `subcommands` below.
@main
struct PasserelleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passerelle",
        abstract: "Share hospital documents with the DMP and over MSSanté, stamped with the patient's INS.",
        discussion: """
        Passerelle turns a PDF and its JSON sidecar (docs/sidecar.md) into a CI-SIS CDA R2 \
        document carrying the patient's INS, signs it, sends it to the DMP (IHE XDS.b over \
        mutual TLS) and/or by MSSanté (XDM archive in a secure mail), journals every step and \
        computes the SUN-ES usage indicators.

        Configuration: one TOML file, taken from --config, else the PASSERELLE_CONFIG \
        environment variable, else \(PasserelleConfiguration.defaultPath). \
        A commented example is in docs/passerelle.example.toml; check a file with \
        `passerelle config check`.

        Exit codes: 0 success, 1 invalid input or configuration, 2 identity traits that \
        contradict the INS (ins check), 64 command-line usage error.
        """,
        version: Passerelle.version,
        subcommands: [
            ConfigCommand.self,
            INSCommand.self,
            BuildCommand.self,
            ValidateCommand.self,
            CertsCommand.self,
            VerifySignatureCommand.self,
            SelfCheckCommand.self,
            ReportCommand.self,
            VerifyEvidenceCommand.self,
            RunCommand.self,
            StatusCommand.self,
            ShowCommand.self,
            ResendCommand.self,
            QueueCommand.self,
            FlushCommand.self,
            HoldCommand.self,
            ReleaseCommand.self,
            DiscardCommand.self,
            AuditCommand.self,
            PurgeCommand.self,
            MigrateCommand.self,
            BackupCommand.self,
            RestoreCommand.self,
            DemoCommand.self,
            ConsoleCommand.self,
        ]
    )
}

/// Options shared by the subcommands that read the configuration.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Configuration file.",
        discussion: "Defaults to $\(PasserelleConfiguration.environmentVariable), then \(PasserelleConfiguration.defaultPath).",
        valueName: "file"))
    var config: String?

    @OptionGroup var logging: LogOptions

    /// The level given on the command line, if any.
    var logLevel: LogLevel? { logging.logLevel }

    /// The configuration file to use.
    var configPath: String { PasserelleConfiguration.resolvePath(explicit: config) }
}

extension LogLevel: ExpressibleByArgument {}

/// `--log-level`, for every subcommand.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Log level: \(LogLevel.allCases.map(\.rawValue).joined(separator: ", ")). Overrides [logging] level.",
        valueName: "level"))
    var logLevel: LogLevel?
}
