import Foundation
import Testing
import TestSupport

/// Runs the built `passerelle` binary, as an operator would.
enum CLI {
    /// The binary: $PASSERELLE_BIN, else next to the running test bundle, else in
    /// `swift build --show-bin-path`.
    static let binary: String? = {
        let fm = FileManager.default
        if let explicit = ProcessInfo.processInfo.environment["PASSERELLE_BIN"], fm.isExecutableFile(atPath: explicit) {
            return explicit
        }
        var candidates: [URL] = []
        for start in [Bundle.main.executablePath, CommandLine.arguments.first].compactMap({ $0 }) {
            // …/debug/PassereIlePackageTests.xctest (a file on Linux, a bundle on macOS): walk up.
            var dir = URL(fileURLWithPath: start).deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("passerelle"))
                dir.deleteLastPathComponent()
            }
        }
        if let found = candidates.first(where: { fm.isExecutableFile(atPath: $0.path) && !isDirectory($0) }) {
            return found.path
        }
        if let result = try? ProcessRunner.run("swift", ["build", "--show-bin-path"], currentDirectory: TestPaths.repositoryRoot),
           result.succeeded {
            let path = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + "/passerelle"
            if fm.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }()

    static func isDirectory(_ url: URL) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        let binary = try #require(binary, "passerelle binary not found: run `swift build` (or set PASSERELLE_BIN)")
        return try ProcessRunner.run(binary, arguments, environment: environment)
    }
}

@Suite("passerelle command line")
struct CLITests {
    static let example = TestPaths.repositoryRoot.appendingPathComponent("docs/passerelle.example.toml").path

    @Test("--help explains the tool, the config lookup and the exit codes")
    func help() throws {
        let r = try CLI.run(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("USAGE: passerelle"))
        #expect(r.stdout.contains("PASSERELLE_CONFIG"))
        #expect(r.stdout.contains("/etc/passerelle/passerelle.toml"))
        #expect(r.stdout.contains("config"))
        #expect(r.stdout.contains("ins"))
        let ins = try CLI.run(["ins", "check", "--help"])
        #expect(ins.status == 0)
        #expect(ins.stdout.contains("Exit codes:"))
        #expect(ins.stdout.contains("2  the traits contradict the INS"))
    }

    @Test("--version prints the version")
    func version() throws {
        let r = try CLI.run(["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
    }

    @Test("ins check: the ANS test INS is valid (exit 0) and never printed in full")
    func insValid() throws {
        let r = try CLI.run(["ins", "check", "279035121518989", "--oid", "1.2.250.1.213.1.4.10"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("2***********989 is valid"))
        #expect(r.stdout.contains("INS-NIR de test"))
        #expect(!(r.stdout + r.stderr).contains("279035121518989"))
    }

    @Test("ins check: a wrong key is invalid input (exit 1) and says which key was expected")
    func insWrongKey() throws {
        let r = try CLI.run(["ins", "check", "279035121518988"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("key 88"))
        #expect(r.stderr.contains("give key 89"))
        #expect(!(r.stdout + r.stderr).contains("279035121518988"))
    }

    @Test("ins check: malformed input and bad options exit 1")
    func insBadInput() throws {
        #expect(try CLI.run(["ins", "check", "27903512151898"]).status == 1)
        #expect(try CLI.run(["ins", "check", "279035121518989", "--oid", "1.2.3"]).status == 1)
        #expect(try CLI.run(["ins", "check", "279035121518989", "--birth-date", "28/03/1979"]).status == 1)
        let qual = try CLI.run(["ins", "check", "279035121518989", "--status", "QUAL", "--sex", "F"])
        #expect(qual.status == 1)
        #expect(qual.stderr.contains("missing: birth name"))
    }

    @Test("ins check: traits that contradict the INS exit 2 and name the trait")
    func insMismatch() throws {
        let sex = try CLI.run(["ins", "check", "279035121518989", "--sex", "M", "--birth-date", "1979-03-28"])
        #expect(sex.status == 2)
        #expect(sex.stderr.contains("contradicts the sex"))
        let place = try CLI.run(["ins", "check", "279035121518989", "--birth-place", "75056"])
        #expect(place.status == 2)
        #expect(place.stderr.contains("birth place"))
        let ok = try CLI.run([
            "ins", "check", "279035121518989", "--status", "QUAL", "--sex", "F", "--birth-date", "1979-03-28",
            "--birth-place", "51215", "--birth-name", "DUPONT", "--given-names", "MARIE CLAIRE",
        ])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("traits agree"))
        #expect(!ok.stdout.contains("DUPONT"))
    }

    @Test("config check: the example file is valid (exit 0) with a summary")
    func configExample() throws {
        let r = try CLI.run(["config", "check", "--file-only", "--config", Self.example])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("is valid"))
        #expect(r.stdout.contains("FINESS 750803447"))
        #expect(r.stdout.contains("http://127.0.0.1:9464/metrics"))
    }

    @Test("config check: PASSERELLE_CONFIG is used when --config is absent")
    func configFromEnvironment() throws {
        let r = try CLI.run(["config", "check", "--file-only"], environment: ["PASSERELLE_CONFIG": Self.example])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains(Self.example))
    }

    @Test("config check: a broken file exits 1 and names key, file and line")
    func configBroken() throws {
        let dir = try TestPaths.temporaryDirectory("passerelle-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("broken.toml")
        var text = try String(contentsOfFile: Self.example, encoding: .utf8)
        text = text.replacingOccurrences(of: "timeout_seconds = 60", with: "timeout_seconds = \"60\"")
        text = text.replacingOccurrences(of: "smtp_tls = \"starttls\"", with: "smtp_tls = \"ssl\"")
        try text.write(to: file, atomically: true, encoding: .utf8)
        let lineOf = { (needle: String) in text.components(separatedBy: "\n").firstIndex { $0.hasPrefix(needle) }! + 1 }

        let r = try CLI.run(["config", "check", "--file-only", "--config", file.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("invalid (2 problems)"))
        #expect(r.stderr.contains("\(file.path):\(lineOf("timeout_seconds")): dmp.timeout_seconds must be an integer, found a string"))
        #expect(r.stderr.contains("\(file.path):\(lineOf("smtp_tls")): mssante.smtp_tls: unknown value \"ssl\""))
    }

    @Test("logs go to stderr as logfmt, or JSON when [logging] format says so")
    func logFormats() throws {
        let logfmt = try CLI.run(["config", "check", "--file-only", "--config", Self.example, "--log-level", "debug"])
        #expect(logfmt.status == 0)
        let line = try #require(logfmt.stderr.split(separator: "\n").first { $0.contains("configuration loaded") })
        #expect(line.hasPrefix("ts=20"))
        #expect(line.contains(" level=debug label=passerelle.config msg=\"configuration loaded\" file=\(Self.example)"))
        #expect(!logfmt.stdout.contains("configuration loaded"))

        let dir = try TestPaths.temporaryDirectory("passerelle-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("json.toml")
        let text = try String(contentsOfFile: Self.example, encoding: .utf8)
            .replacingOccurrences(of: "format = \"logfmt\"", with: "format = \"json\"")
            .replacingOccurrences(of: "level = \"info\"", with: "level = \"debug\"")
        try text.write(to: file, atomically: true, encoding: .utf8)
        let json = try CLI.run(["config", "check", "--file-only", "--config", file.path])
        #expect(json.status == 0, "\(json.stderr)")
        let jsonLine = try #require(json.stderr.split(separator: "\n").first { $0.contains("configuration loaded") })
        let object = try JSONSerialization.jsonObject(with: Data(jsonLine.utf8)) as? [String: String]
        #expect(object?["level"] == "debug")
        #expect(object?["msg"] == "configuration loaded")
        #expect(object?["file"] == file.path)
        // Default level info: the debug line is not printed.
        let quiet = try CLI.run(["config", "check", "--file-only", "--config", Self.example])
        #expect(!quiet.stderr.contains("configuration loaded"))
    }

    @Test("config check: a missing file exits 1 and names it")
    func configMissing() throws {
        let r = try CLI.run(["config", "check", "--config", "/nonexistent/passerelle.toml"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/passerelle.toml: cannot read"))
    }

    @Test("unknown options are usage errors (exit 64)")
    func usage() throws {
        #expect(try CLI.run(["ins", "check", "279035121518989", "--bogus"]).status == 64)
    }
}
