import Foundation
import PasserelleCore
import Testing
import TestSupport

/// The one resolver of data files: the checkout (the current folder) when the file is there,
/// else the install prefix above the running executable's folder.
@Suite struct DataFilesTests {
    @Test func theCheckoutWinsWhenItHoldsTheFileElseTheInstall() throws {
        let dir = try TestPaths.temporaryDirectory("data-files")
        defer { try? FileManager.default.removeItem(at: dir) }
        let installed = DataFiles.prefix.appendingPathComponent("share/passerelle/Templates").standardizedFileURL
        #expect(DataFiles.locate(DataFiles.templates, currentDirectory: dir) == installed)
        #expect(!DataFiles.isInCheckout(DataFiles.templates, currentDirectory: dir))

        // A Templates folder without the CDA template is not the templates: still the install's.
        let templates = dir.appendingPathComponent("Templates")
        try FileManager.default.createDirectory(at: templates.appendingPathComponent("cda"), withIntermediateDirectories: true)
        #expect(DataFiles.locate(DataFiles.templates, currentDirectory: dir) == installed)
        try Data("<x/>".utf8).write(to: templates.appendingPathComponent("cda/n1-pdf.xml"))
        #expect(DataFiles.locate(DataFiles.templates, currentDirectory: dir).path == templates.standardizedFileURL.path)
        #expect(DataFiles.isInCheckout(DataFiles.templates, currentDirectory: dir))

        // A checkout path relative to the current folder, ../ included (the shared kit).
        let repo = dir.appendingPathComponent("repo")
        try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
        let schema = dir.appendingPathComponent("shared/conformance/cda/xsd/cda/CDA_extended.xsd")
        #expect(DataFiles.locate(DataFiles.cdaSchema, currentDirectory: repo).path
                == DataFiles.prefix.appendingPathComponent("share/passerelle/cda/CDA_extended.xsd").standardizedFileURL.path)
        try FileManager.default.createDirectory(at: schema.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("<xs:schema/>".utf8).write(to: schema)
        #expect(DataFiles.locate(DataFiles.cdaSchema, currentDirectory: repo).path == schema.standardizedFileURL.path)
    }

    @Test func anAbsoluteInstalledPathIsTakenAsIs() throws {
        let dir = try TestPaths.temporaryDirectory("data-files")
        defer { try? FileManager.default.removeItem(at: dir) }
        let item = DataFiles.Item(checkout: "no-such-file", installed: "/usr/bin/python3")
        #expect(DataFiles.locate(item, currentDirectory: dir).path == "/usr/bin/python3")
    }

    @Test func thePrefixIsAboveTheRunningExecutablesFolder() {
        let exe = DataFiles.executable
        #expect(FileManager.default.isExecutableFile(atPath: exe.path), "\(exe.path)")
        #expect(DataFiles.prefix.path == exe.deletingLastPathComponent().deletingLastPathComponent().path)
    }

    @Test func anExplicitTemplatesFolderWins() {
        #expect(DataFiles.templatesFolder(explicit: "/some/where").path == "/some/where")
    }
}
