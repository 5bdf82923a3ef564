import ArgumentParser
import CDA
import Foundation
import PasserelleCore

/// Where `build` finds `Templates/`, and where `build`/`validate` find the CDA schema.
struct CDAOptions: ParsableArguments {
    /// `--config` (optional here: used when given, or when $PASSERELLE_CONFIG or the default
    /// file exists, for [structure] and [cda]) and `--log-level`.
    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp(
        "CDA XSD (CDA_extended.xsd). Overrides [cda] schema; without either the XSD step is skipped.",
        valueName: "file"))
    var schema: String?

    /// The configuration, when one is named or present at the default place.
    func loadConfiguration() throws -> PasserelleConfiguration? {
        let path = global.configPath
        let named = global.config != nil || ProcessInfo.processInfo.environment[PasserelleConfiguration.environmentVariable] != nil
        guard named || FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try PasserelleConfiguration.load(from: path)
        } catch {
            printError("Configuration \(path) is invalid:")
            for problem in error.problems { printError("  \(problem)") }
            throw ExitCode(1)
        }
    }

    func validator(_ configuration: PasserelleConfiguration?) throws -> CDAValidator {
        let path = schema ?? configuration?.cda.schema
        do {
            return try CDAValidator(schema: path.map { URL(fileURLWithPath: $0) },
                                    budget: CDAParseBudget.options(maxPDFBytes: configuration?.cda.maxPDFBytes ?? PDFCheck.defaultMaximumBytes))
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
    }
}

/// `passerelle build --kind … --pdf … --meta … [--out …]`
struct BuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a CI-SIS CDA R2 N1 document (PDF body) from a PDF and its JSON sidecar.",
        discussion: """
        The header comes from the template Templates/cda/n1-pdf.xml filled with the sidecar \
        values (docs/sidecar.md), all XML-escaped. The INS is written only for a qualified \
        identity (QUAL); otherwise the document carries the IPP alone. The result is checked \
        against the project's header rules and, when a schema is known, the CDA XSD.

        Examples:
          passerelle build --kind ldl --pdf LDL-123.pdf --meta LDL-123.json --out LDL-123.xml
          passerelle build --pdf CR.pdf --meta CR.json --schema ../shared/conformance/cda/xsd/cda/CDA_extended.xsd

        Exit codes: 0 built (and valid), 1 refused (the message says what to fix).
        """
    )

    @Option(help: ArgumentHelp("Document kind: \(DocumentKind.accepted). Defaults to the sidecar's kind.", valueName: "kind"))
    var kind: String?

    @Option(help: ArgumentHelp("The PDF to embed.", valueName: "file"))
    var pdf: String

    @Option(help: ArgumentHelp("The JSON sidecar describing the document.", valueName: "file"))
    var meta: String

    @Option(help: ArgumentHelp("Write the CDA here (mode 0600) instead of standard output.", valueName: "file"))
    var out: String?

    @Option(help: ArgumentHelp(
        "Templates directory. Defaults to $PASSERELLE_TEMPLATES, then ./Templates, then share/passerelle/Templates of the install.",
        valueName: "dir"))
    var templates: String?

    @OptionGroup var options: CDAOptions

    func run() async throws {
        LogSetup.bootstrap(level: options.global.logLevel ?? .info)
        let configuration = try options.loadConfiguration()

        func fail(_ message: String) -> ExitCode {
            printError(message)
            return ExitCode(1)
        }
        let metaData: Data, pdfData: Data
        do { metaData = try Data(contentsOf: URL(fileURLWithPath: meta)) } catch { throw fail("cannot read --meta \(meta): \((error as NSError).localizedDescription)") }
        do { pdfData = try Data(contentsOf: URL(fileURLWithPath: pdf)) } catch { throw fail("cannot read --pdf \(pdf): \((error as NSError).localizedDescription)") }
        var metadata: DocumentMetadata
        do { metadata = try DocumentMetadata.decode(sidecar: metaData) } catch { throw fail("\(meta): \(error.description)") }
        if let kind {
            guard let parsed = DocumentKind(parsing: kind) else { throw fail(CDAError.unknownKind("--kind '\(kind)'").description) }
            if let declared = metadata.kind, declared != parsed {
                throw fail("--kind \(parsed.shortName) contradicts the sidecar's kind \(declared.shortName)")
            }
            metadata.kind = parsed
            metadata.decodingProblems.removeAll { $0.path == "kind" }
        }

        var builderOptions = CDABuilder.Options()
        if let configuration {
            builderOptions.maximumPDFBytes = configuration.cda.maxPDFBytes
            builderOptions.documentIDRoot = configuration.structure.oid
            builderOptions.defaultStructure = HealthStructure(finess: configuration.structure.finess.value, name: configuration.structure.name)
        }
        let document: CDADocument
        do {
            let builder = try CDABuilder(templatesDirectory: Self.templatesDirectory(templates), options: builderOptions)
            document = try builder.build(metadata: metadata, pdf: pdfData)
        } catch {
            throw fail(error.description)
        }

        let validator = try options.validator(configuration)
        let report = validator.validate(document.data, file: out ?? "-")
        if !report.isValid {
            throw fail("the built document is not valid (template or schema problem):\n" + report.messages.map { "  " + $0 }.joined(separator: "\n"))
        }

        if let out {
            do {
                try writePrivate(document.data, to: out)
            } catch {
                throw fail("cannot write \(out): \((error as NSError).localizedDescription)")
            }
        } else {
            FileHandle.standardOutput.write(document.data)
        }
        let idText = document.id.description
        let insText = document.ins.map { "INS \($0.masked) (\($0.kind.label))" } ?? "no INS (identity not qualified)"
        printError("built \(document.kind.shortName) \(idText) version \(document.versionNumber), \(document.data.count) bytes, \(insText)"
                   + (report.schemaChecked ? ", XSD valid" : ", XSD not checked (no schema)"))
    }

    /// --templates, $PASSERELLE_TEMPLATES, ./Templates (a checkout), then share/passerelle/Templates of the install.
    static func templatesDirectory(_ explicit: String?) -> URL { DataFiles.templatesFolder(explicit: explicit) }
}

/// Writes patient data readable by the owner only.
func writePrivate(_ data: Data, to path: String) throws {
    let fm = FileManager.default
    if fm.fileExists(atPath: path) { try fm.removeItem(atPath: path) }
    guard fm.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
        throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
    }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.write(contentsOf: data)
}

/// `passerelle validate FILE...`
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Validate CDA documents: XSD (libxml2) and the project's CI-SIS header rules.",
        discussion: """
        Prints VALID or INVALID per file, then each problem with its line and element. \
        The XSD is [cda] schema from the configuration or --schema (the official one is \
        CDA_extended.xsd of the ANS kit); without a schema only the header rules run. \
        The ANS Schematron is not run here: use ../shared/tools/cda-validate for the full chain.

        Exit codes: 0 every file is valid, 1 at least one is not.
        """
    )

    @Argument(help: ArgumentHelp("CDA files.", valueName: "file"))
    var files: [String]

    @Flag(help: "Print a JSON array: [{file, valid, errors}].")
    var json = false

    @OptionGroup var options: CDAOptions

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one CDA file") }
    }

    func run() async throws {
        LogSetup.bootstrap(level: options.global.logLevel ?? .info)
        let configuration = try options.loadConfiguration()
        let validator = try options.validator(configuration)
        if validator.schema == nil { printError("note: no CDA schema configured (--schema or [cda] schema): XSD validation skipped") }
        let reports = files.map { validator.validate(file: URL(fileURLWithPath: $0)) }
        if json {
            struct Entry: Encodable { var file: String; var valid: Bool; var errors: [String] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
            let data = try encoder.encode(reports.map { Entry(file: $0.file, valid: $0.isValid, errors: $0.messages) })
            print(String(decoding: data, as: UTF8.self))
        } else {
            for report in reports { print(report.description) }
        }
        if !reports.allSatisfy(\.isValid) { throw ExitCode(1) }
    }
}
