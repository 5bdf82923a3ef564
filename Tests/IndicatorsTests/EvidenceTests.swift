import Foundation
import Indicators
import Journal
import OpenSSLKit
import PasserelleCore
import Signing
import Testing
import TestSupport

/// The evidence package: every figure of the report recounted from the CSVs alone, and any
/// change to the package caught.
@Suite("usage report evidence: recount from the CSVs, signature, tampering", .serialized)
struct EvidenceTests {
    static func sha256(_ d: Data) -> String { Digest.sha256(d).hexString }

    static func keys() throws -> KeyMaterial {
        let pki = TestPaths.testPKI
        return try KeyMaterial.load(KeyMaterialSource(authentication: nil, signing: pki.appendingPathComponent("org-sign.p12"),
                                                      passphrase: .file(TestPaths.testPKIPassphraseFile),
                                                      trustAnchors: pki.appendingPathComponent("ca.pem")))
    }

    static func write(_ j: KnownJournal) async throws -> (UsageReport, URL) {
        // Generated now, as `passerelle report` does: the signer is judged at the report's
        // generated_at, and the test PKI's certificates are recent.
        let settings = ReportTests.settings
        let report = try await UsageReporter.make(store: j.store, period: ReportPeriod.month("2026-10", timeZone: "Europe/Paris"),
                                                  settings: settings, title: "CH <Démo> & Co", now: Date())
        let rows = try await j.store.usageEvidence(UsageQuery(boundaries: [report.period.start, report.period.end],
                                                              qualifiedStatuses: settings.qualifiedStatuses,
                                                              dischargeLetterKinds: settings.dischargeLetterKinds))
        let dir = j.folder.appendingPathComponent("evidence")
        let keys = try keys()
        try EvidencePackage.write(to: dir, report: report, evidence: rows, settings: settings, sha256: sha256,
                                  sign: { try DetachedSignature.sign($0, keys: keys) })
        return (report, dir)
    }

    static func check(_ dir: URL) throws -> EvidenceCheck.Result {
        let store = try keys().trustStore
        return EvidenceCheck.verify(dir, sha256: sha256) { manifest, signature, at in
            _ = try DetachedSignature.verify(signature, content: manifest, trustStore: store, at: at)
        }
    }

    /// A reader written here, not the package's: `;`-separated, `"` quoting, CRLF, BOM.
    static func rows(_ url: URL) throws -> [[String: String]] {
        var bytes = try Data(contentsOf: url)
        #expect(Array(bytes.prefix(3)) == [0xEF, 0xBB, 0xBF], "UTF-8 BOM")
        bytes.removeFirst(3)
        var records: [[String]] = [], record: [String] = [], field = "", quoted = false
        let scalars = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            if quoted {
                if c == "\"", i + 1 < scalars.count, scalars[i + 1] == "\"" { field.unicodeScalars.append(c); i += 1 }
                else if c == "\"" { quoted = false } else { field.unicodeScalars.append(c) }
            } else if c == "\"" { quoted = true }
            else if c == ";" { record.append(field); field = "" }
            else if c == "\r" { }
            else if c == "\n" { record.append(field); records.append(record); record = []; field = "" }
            else { field.unicodeScalars.append(c) }
            i += 1
        }
        let header = try #require(records.first)
        return records.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
    }

    @Test("every line of every scope recounted from its CSV alone gives the report's figures", arguments: ["sqlite", "postgresql"])
    func recount(backend: String) async throws {
        let j = try await KnownJournal(postgresql: backend == "postgresql")
        let (report, dir) = try await Self.write(j)
        var recounted = 0
        for scope in [report.total] + report.byFiness {
            for line in scope.lines {
                let rows = try Self.rows(dir.appendingPathComponent(EvidencePackage.fileName(code: line.code)))
                    .filter { scope.finess == nil || $0["FINESS"] == scope.finess }
                let n = rows.reduce(0) { $0 + Int($1["Numérateur"]!)! }, d = rows.reduce(0) { $0 + Int($1["Dénominateur"]!)! }
                #expect(n == line.numerator && d == line.denominator, "\(line.code) \(scope.finess ?? "total"): \(n)/\(d)")
                recounted += 1
            }
        }
        #expect(recounted == report.total.lines.count + report.byFiness.reduce(0) { $0 + $1.lines.count })
        // The known figures (ReportTests.october) through the evidence: the package is the report's.
        #expect(report.total.lines.map(ReportTests.expected) == ReportTests.october)

        // What the rows say: the documents and stays behind V1-D1-SEJ, each once.
        let d1 = try Self.rows(dir.appendingPathComponent("V1-D1-SEJ.csv"))
        let documents = d1.filter { $0["Objet"] == "document" }, stays = d1.filter { $0["Objet"] == "séjour" }
        #expect(documents.map { $0["Identifiant de lot"]! }.sorted() == ["cro-3", "ldl-1", "ldl-12", "ord-4"])
        #expect(documents.allSatisfy { $0["Numérateur"] == "1" && $0["Dénominateur"] == "0" && !$0["Accusé DMP"]!.isEmpty })
        // Month boundaries in Europe/Paris: S1 (31 Oct 23:30 +01:00) and S2 (1 Oct 00:30 +02:00) in, S0 and S9 out.
        #expect(stays.map { $0["Séjour"]! }.sorted() == ["S1", "S2", "S3", "S4", "S5", "S6"])
        #expect(stays.first { $0["Séjour"] == "S1" }?["Sortie"] == "2026-10-31T23:30:00+01:00")
        #expect(stays.first { $0["Séjour"] == "S2" }?["Sortie"] == "2026-10-01T00:30:00+02:00")
        let ldl1 = try #require(documents.first { $0["Identifiant de lot"] == "ldl-1" })
        #expect(ldl1["Première réception"] == "2026-10-02T09:00:00+02:00")
        #expect(ldl1["Sortie"] == "2026-10-31T23:30:00+01:00")
        #expect(ldl1["INS masqué"] == "2**********89" && ldl1["Statut d'identité"] == "QUAL" && ldl1["LOINC"] == "11490-0")
        #expect(ldl1["Preuve MSSanté patient (DSN/MDN)"]?.contains("MDN 2026-10-02T") == true)
        // img-9 arrived 1 Oct 00:10 local (30 Sep in UTC): October's; ldl-10 (1 Nov local) is not.
        let d3 = try Self.rows(dir.appendingPathComponent("V1-D3-DOC.csv"))
        #expect(d3.map { $0["Identifiant de lot"]! }.sorted() == ["img-7", "img-9"])
        // HOP'EN: S4's letter was deleted: S4 in the denominator only; S1 names its letter.
        let hn = try Self.rows(dir.appendingPathComponent("HN-D2-LDL.csv"))
        #expect(hn.first { $0["Séjour"] == "S4" }.map { [$0["Numérateur"]!, $0["Dénominateur"]!] } == ["0", "1"])
        #expect(hn.first { $0["Séjour"] == "S1" }?["Identifiant de lot"] == "ldl-1")
        // Deleted set: in Q-SUPPR's numerator, in no other line's.
        let deleted = try Self.rows(dir.appendingPathComponent("Q-SUPPR.csv")).filter { $0["Numérateur"] == "1" }
        #expect(deleted.map { $0["Identifiant de lot"]! } == ["ldl-2"])
        let produced = try Self.rows(dir.appendingPathComponent("V1-D1-DOC.csv")).map { $0["Identifiant de lot"]! }
        #expect(!produced.contains("ldl-2") && produced.filter { $0 == "ldl-1" }.count == 1)
        let refused = try Self.rows(dir.appendingPathComponent("Q-REFUS-DMP-\(KnownJournal.refusalCode).csv")).filter { $0["Numérateur"] == "1" }
        #expect(refused.map { $0["Code de refus DMP"]! } == [KnownJournal.refusalCode])

        // The package checks: signature, hashes, every figure.
        let result = try Self.check(dir)
        #expect(result.problems.isEmpty, "\(result.problems)")
        #expect(result.linesChecked == recounted)
        let mode = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("V1-D1-SEJ.csv").path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("one byte changed in a CSV, a changed manifest, a re-signed false figure: each is caught")
    func tampering() async throws {
        let j = try await KnownJournal()
        let (_, dir) = try await Self.write(j)
        let csv = dir.appendingPathComponent("V1-D1-SEJ.csv")
        let original = try Data(contentsOf: csv)
        // One byte: the first document row's numerator 1 becomes 0.
        var changed = original
        let row = try #require(changed.firstRange(of: Data("\r\n1;0;document".utf8)))
        changed[row.lowerBound + 2] = UInt8(ascii: "0")
        try changed.write(to: csv)
        let one = try Self.check(dir)
        #expect(one.problems.contains(.hash("V1-D1-SEJ.csv: its SHA-256 is not the manifest's: the file was changed")), "\(one.problems)")
        #expect(one.problems.allSatisfy { $0.exitCode != 1 })
        try original.write(to: csv)
        #expect(try Self.check(dir).problems.isEmpty)

        // The manifest re-hashed to match the changed CSV: the signature no longer holds.
        try changed.write(to: csv)
        let manifestURL = dir.appendingPathComponent(EvidencePackage.manifestFile)
        let manifest = try String(contentsOf: manifestURL, encoding: .utf8)
        let rehashed = manifest.replacingOccurrences(of: Self.sha256(original), with: Self.sha256(changed))
        #expect(rehashed != manifest)
        try Data(rehashed.utf8).write(to: manifestURL)
        let two = try Self.check(dir)
        #expect(two.problems.contains { if case .signature = $0 { true } else { false } }, "\(two.problems)")
        #expect(!two.problems.contains { if case .hash = $0 { true } else { false } })

        // Signed again with the real key over a changed CSV: authentic, but the figures do not recount.
        let keys = try Self.keys()
        try DetachedSignature.sign(Data(rehashed.utf8), keys: keys).write(to: dir.appendingPathComponent(EvidencePackage.signatureFile))
        let three = try Self.check(dir)
        // The total and the FINESS of that row both miss it.
        #expect(three.problems.map(\.exitCode) == [3, 3], "\(three.problems)")
        #expect(three.problems.contains(.count(code: "V1-D1-SEJ", scope: "Ensemble de la structure", report: "4/6", recount: "3/6")))

        // A file added after signing is named.
        try original.write(to: csv)
        try Data(manifest.utf8).write(to: manifestURL)
        try DetachedSignature.sign(Data(manifest.utf8), keys: keys).write(to: dir.appendingPathComponent(EvidencePackage.signatureFile))
        try Data("x".utf8).write(to: dir.appendingPathComponent("extra.csv"))
        #expect(try Self.check(dir).problems == [.hash("extra.csv is not in the manifest")])
    }

    /// The binary as an operator runs it.
    static var binary: String {
        ProcessInfo.processInfo.environment["PASSERELLE_BIN"]
            ?? TestPaths.repositoryRoot.appendingPathComponent(".build/debug/passerelle").path
    }

    @Test("passerelle report --evidence and verify-evidence: exit codes 0, 2 (tampered), 1 (no configuration)")
    func commandLine() async throws {
        let j = try await KnownJournal()
        let config = j.folder.appendingPathComponent("passerelle.toml")
        try Data(TestConfiguration.withTestPKI().utf8).write(to: config)
        let dir = j.folder.appendingPathComponent("cli-evidence").path
        let r = try ProcessRunner.run(Self.binary, ["report", "--config", config.path, "--journal", j.path, "--month", "2026-10",
                                                    "--format", "json", "-o", j.folder.appendingPathComponent("r.json").path,
                                                    "--evidence", dir])
        #expect(r.status == 0, "\(r.stderr)")
        let ok = try ProcessRunner.run(Self.binary, ["verify-evidence", "--config", config.path, dir])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("evidence holds: signed by"), "\(ok.stdout)")
        let anchors = try ProcessRunner.run(Self.binary, ["verify-evidence", "--trust-anchors",
                                                          TestPaths.testPKI.appendingPathComponent("ca.pem").path, dir])
        #expect(anchors.status == 0, "\(anchors.stderr)")

        let file = URL(fileURLWithPath: dir).appendingPathComponent("Q-INS.csv")
        var data = try Data(contentsOf: file)
        data[data.count - 3] ^= 0x01
        try data.write(to: file)
        let bad = try ProcessRunner.run(Self.binary, ["verify-evidence", "--config", config.path, dir])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("Q-INS.csv: its SHA-256 is not the manifest's"), "\(bad.stderr)")

        let none = try ProcessRunner.run(Self.binary, ["report", "--journal", j.path, "--month", "2026-10", "--evidence", dir + "2"],
                                         environment: ["PATH": "/usr/bin:/bin"])
        #expect(none.status == 1)
        #expect(none.stderr.contains("--evidence signs the package with [certificates] signing: give --config"), "\(none.stderr)")
    }
}
