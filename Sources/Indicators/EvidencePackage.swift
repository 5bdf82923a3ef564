import Foundation
import Journal
import PasserelleCore

/// The evidence behind a usage report (`passerelle report --evidence DIR`): per indicator line,
/// one CSV listing the document sets and stays in its numerator and its denominator, the report
/// itself as JSON, a manifest of SHA-256 sums and its detached CMS signature.
///
/// The rows come from ``JournalStore/usageEvidence(_:)`` (the report's own SQL predicates) and
/// are sorted into lines by ``IndicatorCalculator/definitions(refusalCodes:settings:)`` (the
/// report's own line table): nothing is defined twice. Every figure is the sum of a column:
/// `Numérateur` and `Dénominateur` hold 1 or 0, so a spreadsheet recounts a line with two SUMs
/// (and one FINESS with SUMIF on the `FINESS` column).
public enum EvidencePackage {
    public static let reportFile = "rapport.json"
    public static let manifestFile = "manifest.txt"
    public static let signatureFile = "manifest.txt.p7s"

    public static let header = [
        "Numérateur", "Dénominateur", "Objet", "FINESS", "Identifiant de lot", "Type", "LOINC", "Séjour", "Sortie",
        "Première réception", "Accusé DMP", "Réponse du registre DMP", "Code de refus DMP",
        "Preuve MSSanté patient (DSN/MDN)", "Preuve MSSanté professionnel (DSN/MDN)", "INS masqué", "Statut d'identité",
    ]

    /// File name of a line's CSV (codes are ASCII letters, digits and dashes; anything else becomes `_`).
    public static func fileName(code: String) -> String {
        String(code.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") ? $0 : "_" }) + ".csv"
    }

    /// The package's files, name → content (the manifest and its signature excepted).
    public static func files(report: UsageReport, evidence: UsageEvidence,
                             settings: PasserelleConfiguration.Report) throws -> [(name: String, content: Data)] {
        let zone = TimeZone(identifier: report.period.timeZone) ?? .gmt
        // Local time with its offset (2026-10-31T23:30:00+01:00): the month boundary shows.
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = zone
        let date = { (d: Date?) in d.map { formatter.string(from: $0) } ?? "" }
        let codes = report.total.lines.compactMap { $0.code.hasPrefix("Q-REFUS-DMP-") ? String($0.code.dropFirst(12)) : nil }
        // Each row's cells once (dates formatted once), then each line picks its rows.
        let setCells = evidence.sets.map { s in
            ["document", s.finess, s.setID, s.kind.shortName, s.kind.loincCode, s.stayID ?? "", date(s.dischargedAt),
             date(s.firstReceivedAt), date(s.dmpAcknowledgedAt), s.dmpResponse ?? "", s.refusalCode ?? "", s.patientProof ?? "",
             s.professionalProof ?? "", s.maskedINS ?? "", s.identityStatus ?? ""]
        }
        let stayCells = evidence.stays.map { s in
            ["séjour", s.finess, s.letterSetID ?? "", "", "", s.stayID, date(s.dischargedAt), "", "", "", "", "", "", "", ""]
        }
        var files: [(String, Data)] = []
        for line in IndicatorCalculator.definitions(refusalCodes: codes, settings: settings) {
            var rows: [[String]] = [header]
            for (s, cells) in zip(evidence.sets, setCells) {
                let n = line.numerator.includes(s), d = line.denominator.includes(s)
                if n || d { rows.append([n ? "1" : "0", d ? "1" : "0"] + cells) }
            }
            for (s, cells) in zip(evidence.stays, stayCells) {
                let n = line.numerator.includes(s), d = line.denominator.includes(s)
                if n || d { rows.append([n ? "1" : "0", d ? "1" : "0"] + cells) }
            }
            files.append((fileName(code: line.code), CSVText.encode(rows)))
        }
        files.append((reportFile, Data(try TextReport.json(report).utf8)))
        return files
    }

    /// `sha256sum` format (`HEX  NAME`), so `sha256sum -c manifest.txt` checks it too.
    public static func manifest(_ files: [(name: String, content: Data)], sha256: (Data) -> String) -> Data {
        Data(files.sorted { $0.name < $1.name }.map { "\(sha256($0.content))  \($0.name)\n" }.joined().utf8)
    }

    /// Writes the package into `directory` (created 0700 if missing; files 0600: they hold
    /// masked INS and stay ids). `sign` returns the detached signature of the manifest.
    public static func write(to directory: URL, report: UsageReport, evidence: UsageEvidence,
                             settings: PasserelleConfiguration.Report, sha256: (Data) -> String,
                             sign: (Data) throws -> Data) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let content = try files(report: report, evidence: evidence, settings: settings)
        let manifest = manifest(content, sha256: sha256)
        let signature = try sign(manifest)
        for (name, data) in content + [(manifestFile, manifest), (signatureFile, signature)] {
            let url = directory.appendingPathComponent(name)
            try data.write(to: url, options: .atomic)
            try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        }
    }
}

/// Why a package does not hold; ``EvidenceCheck/verify(_:sha256:checkSignature:)`` lists them all.
public enum EvidenceProblem: Sendable, Hashable, CustomStringConvertible {
    /// A file is missing or unreadable.
    case unreadable(String, String)
    /// The manifest's signature does not hold.
    case signature(String)
    /// A file's SHA-256 differs from the manifest's, or a file is not in the manifest.
    case hash(String)
    /// A line recounted from its CSV differs from the report.
    case count(code: String, scope: String, report: String, recount: String)

    /// 2: tampered (signature or hash), 3: figures differ, 1: unreadable.
    public var exitCode: Int32 {
        switch self {
        case .unreadable: 1
        case .signature, .hash: 2
        case .count: 3
        }
    }

    public var description: String {
        switch self {
        case let .unreadable(file, why): "\(file): \(why)"
        case let .signature(why): "\(EvidencePackage.signatureFile): \(why)"
        case let .hash(why): why
        case let .count(code, scope, report, recount): "\(code) (\(scope)): the report says \(report), the evidence counts \(recount)"
        }
    }
}

/// `passerelle verify-evidence`: the signature, every hash, every figure recounted.
public enum EvidenceCheck {
    public struct Result: Sendable {
        public var problems: [EvidenceProblem]
        /// Lines recounted (per scope).
        public var linesChecked: Int
    }

    public static let maxFileBytes = 2 << 30

    /// `checkSignature(manifest, signature, reportGeneratedAt)` throws when the signature does not hold.
    public static func verify(_ directory: URL, sha256: (Data) -> String,
                              checkSignature: (Data, Data, Date) throws -> Void) -> Result {
        var problems: [EvidenceProblem] = []
        func read(_ name: String) -> Data? {
            let url = directory.appendingPathComponent(name)
            // A budget: a month's largest evidence file is a few hundred MB; more is not ours.
            if let size = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? Int, size > maxFileBytes {
                problems.append(.unreadable(name, "is larger than \(maxFileBytes / 1_048_576) MiB: not an evidence file"))
                return nil
            }
            do { return try Data(contentsOf: url) } catch {
                problems.append(.unreadable(name, "cannot be read (\(error.localizedDescription))"))
                return nil
            }
        }
        guard let manifest = read(EvidencePackage.manifestFile), let signature = read(EvidencePackage.signatureFile),
              let reportData = read(EvidencePackage.reportFile) else { return Result(problems: problems, linesChecked: 0) }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        let report: UsageReport
        do { report = try decoder.decode(UsageReport.self, from: reportData) } catch {
            return Result(problems: [.unreadable(EvidencePackage.reportFile, "is not a usage report (\(error))")], linesChecked: 0)
        }
        do { try checkSignature(manifest, signature, report.generatedAt) } catch { problems.append(.signature("\(error)")) }

        // Every listed file has its hash; every file of the folder is listed.
        var listed: [String: String] = [:]
        for line in String(decoding: manifest, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { problems.append(.hash("manifest line '\(line)' is not 'SHA256  NAME'")); continue }
            listed[String(parts[1].drop { $0 == " " })] = String(parts[0])
        }
        var contents: [String: Data] = [:]
        for (name, hash) in listed.sorted(by: { $0.key < $1.key }) {
            guard !name.contains("/"), let data = read(name) else { continue }
            if sha256(data) != hash { problems.append(.hash("\(name): its SHA-256 is not the manifest's: the file was changed")) }
            contents[name] = data
        }
        let present = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in present.sorted() where listed[name] == nil && name != EvidencePackage.manifestFile && name != EvidencePackage.signatureFile {
            problems.append(.hash("\(name) is not in the manifest"))
        }

        var checked = 0
        for scope in [report.total] + report.byFiness {
            for line in scope.lines {
                let name = EvidencePackage.fileName(code: line.code)
                guard let data = contents[name] else {
                    problems.append(.unreadable(name, "no evidence file for \(line.code) in the manifest"))
                    continue
                }
                guard let (n, d) = CSVText.recount(data, finess: scope.finess) else {
                    problems.append(.unreadable(name, "is not an evidence CSV (header changed?)"))
                    continue
                }
                checked += 1
                if n != line.numerator || d != line.denominator {
                    problems.append(.count(code: line.code, scope: scope.title, report: "\(line.numerator)/\(line.denominator)",
                                           recount: "\(n)/\(d)"))
                }
            }
        }
        // A scope has one file per line and nothing more (each CSV stands for a line of the total).
        return Result(problems: problems, linesChecked: checked)
    }
}

/// The report's CSV dialect: UTF-8 with a BOM (so spreadsheet software reads the accents),
/// `;` separators, CRLF, fields quoted only when needed.
enum CSVText {
    static let bom = "\u{FEFF}"

    static func field(_ s: String) -> String {
        s.contains(where: { $0 == ";" || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    static func encode(_ rows: [[String]], bom: Bool = true) -> Data {
        Data(((bom ? Self.bom : "") + rows.map { $0.map(field).joined(separator: ";") }.joined(separator: "\r\n") + "\r\n").utf8)
    }

    /// Parses the dialect (quoted fields may hold `;`, `"` and line breaks).
    static func decode(_ data: Data) -> [[String]] {
        var text = String(decoding: data, as: UTF8.self)
        if text.hasPrefix(bom) { text.removeFirst() }
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false, atStart = true
        var it = Array(text.unicodeScalars)[...]
        while let c = it.popFirst() {
            if quoted {
                if c == "\"" {
                    if it.first == "\"" { field.unicodeScalars.append("\""); it.removeFirst() } else { quoted = false }
                } else { field.unicodeScalars.append(c) }
            } else if c == "\"" && atStart {
                quoted = true
            } else if c == ";" {
                row.append(field); field = ""; atStart = true; continue
            } else if c == "\r" || c == "\n" {
                if c == "\r" && it.first == "\n" { it.removeFirst() }
                row.append(field); rows.append(row); row = []; field = ""; atStart = true; continue
            } else {
                field.unicodeScalars.append(c)
            }
            atStart = false
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }

    /// Sums of `Numérateur` and `Dénominateur`, for one FINESS or all; nil when the header is not the evidence's.
    static func recount(_ data: Data, finess: String?) -> (Int, Int)? {
        let rows = decode(data)
        guard let head = rows.first, head == EvidencePackage.header else { return nil }
        var n = 0, d = 0
        for row in rows.dropFirst() where row.count == head.count {
            if let finess, row[3] != finess { continue }
            n += Int(row[0]) ?? 0
            d += Int(row[1]) ?? 0
        }
        return (n, d)
    }
}
