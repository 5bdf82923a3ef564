import Foundation

/// Hostile XML inputs (entity expansion, DTDs, deep nesting), shared by the XMLKit, CDA and
/// gateway tests, and the memory of a process to bound what parsing them costs.
public enum HostileXML {
    /// "Billion laughs": `levels` nested internal entities, each referencing the previous one
    /// `fanOut` times (9 × 10: 10⁹ copies of "lol", ~3 GB expanded, from ~1 KB).
    public static func billionLaughs(root: String = "ClinicalDocument", levels: Int = 9, fanOut: Int = 10) -> String {
        var dtd = "<!ENTITY lol0 \"lol\">\n"
        for level in 1...levels {
            dtd += "<!ENTITY lol\(level) \"" + String(repeating: "&lol\(level - 1);", count: fanOut) + "\">\n"
        }
        return "<?xml version=\"1.0\"?>\n<!DOCTYPE \(root) [\n\(dtd)]>\n<\(root) xmlns=\"urn:hl7-org:v3\"><title>&lol\(levels);</title></\(root)>\n"
    }

    /// Quadratic blow-up: one `entityBytes` entity referenced `references` times (100 KB ×
    /// 10,000 = 1 GB expanded from ~140 KB, with no nesting for a nesting limit to catch).
    public static func quadraticBlowup(root: String = "ClinicalDocument", entityBytes: Int = 100_000, references: Int = 10_000) -> String {
        "<?xml version=\"1.0\"?>\n<!DOCTYPE \(root) [<!ENTITY a \"" + String(repeating: "a", count: entityBytes) + "\">]>\n"
            + "<\(root) xmlns=\"urn:hl7-org:v3\"><title>" + String(repeating: "&a;", count: references) + "</title></\(root)>\n"
    }

    /// A DOCTYPE naming an external DTD (`system`: an http:// or file:// URL).
    public static func externalDTD(root: String = "ClinicalDocument", system: String) -> String {
        "<?xml version=\"1.0\"?>\n<!DOCTYPE \(root) SYSTEM \"\(system)\">\n<\(root) xmlns=\"urn:hl7-org:v3\"/>\n"
    }

    /// An external parameter entity expanded in the internal subset.
    public static func parameterEntity(root: String = "ClinicalDocument", system: String) -> String {
        "<?xml version=\"1.0\"?>\n<!DOCTYPE \(root) [<!ENTITY % ext SYSTEM \"\(system)\"> %ext;]>\n<\(root) xmlns=\"urn:hl7-org:v3\"/>\n"
    }

    /// `depth` nested elements.
    public static func deepNesting(depth: Int = 100_000) -> String {
        String(repeating: "<a>", count: depth) + String(repeating: "</a>", count: depth)
    }
}

/// Memory figures of a Linux process, from /proc/PID/status.
public enum ProcessMemory {
    /// VmHWM (peak resident set) of `pid` (nil: this process), in bytes.
    public static func peakResident(pid: Int32? = nil) -> Int? { field("VmHWM", pid: pid) }

    /// VmRSS (current resident set) of `pid` (nil: this process), in bytes.
    public static func resident(pid: Int32? = nil) -> Int? { field("VmRSS", pid: pid) }

    /// Resets the peak (VmHWM) of `pid` (nil: this process; else a child of the same user) to its current resident set (Linux ≥ 4.0,
    /// `echo 5 > /proc/self/clear_refs`), so a peak measured afterwards belongs to what ran
    /// since. False when the kernel refuses.
    @discardableResult
    public static func resetPeak(pid: Int32? = nil) -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/\(pid.map { "\($0)" } ?? "self")/clear_refs") else { return false }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    private static func field(_ name: String, pid: Int32?) -> Int? {
        let path = "/proc/\(pid.map { "\($0)" } ?? "self")/status"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let digits = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }
            return digits.first.map { $0 * 1024 }
        }
        return nil
    }
}

extension HostileXML {
    /// An attack spliced into an otherwise valid document: its DOCTYPE goes after the XML
    /// declaration, its payload (entity references, nested elements) into the first `</title>`.
    public enum Attack: String, CaseIterable, Sendable {
        case billionLaughs, quadraticBlowup, externalHTTP, externalFile, parameterEntity, deepNesting

        public var doctype: String {
            switch self {
            case .billionLaughs:
                var dtd = "<!ENTITY lol0 \"lol\">"
                for level in 1...9 { dtd += "<!ENTITY lol\(level) \"" + String(repeating: "&lol\(level - 1);", count: 10) + "\">" }
                return "<!DOCTYPE ClinicalDocument [\(dtd)]>"
            case .quadraticBlowup:
                return "<!DOCTYPE ClinicalDocument [<!ENTITY a \"" + String(repeating: "a", count: 100_000) + "\">]>"
            case .externalHTTP: return "<!DOCTYPE ClinicalDocument SYSTEM \"http://127.0.0.1:9/evil.dtd\">"
            case .externalFile: return "<!DOCTYPE ClinicalDocument SYSTEM \"file:///etc/passwd\">"
            case .parameterEntity: return "<!DOCTYPE ClinicalDocument [<!ENTITY % ext SYSTEM \"file:///etc/passwd\"> %ext;]>"
            case .deepNesting: return ""
            }
        }

        public var payload: String {
            switch self {
            case .billionLaughs: return "&lol9;"
            case .quadraticBlowup: return String(repeating: "&a;", count: 10_000)
            case .deepNesting: return String(repeating: "<a>", count: 100_000) + String(repeating: "</a>", count: 100_000)
            default: return ""
            }
        }

        /// `document` (UTF-8 XML starting with an XML declaration) with the attack in it.
        public func inserted(into document: Data) -> Data {
            var text = String(decoding: document, as: UTF8.self)
            if !doctype.isEmpty, let declarationEnd = text.range(of: "?>") {
                text.insert(contentsOf: "\n" + doctype, at: declarationEnd.upperBound)
            }
            if !payload.isEmpty, let title = text.range(of: "</title>") {
                text.insert(contentsOf: payload, at: title.lowerBound)
            }
            return Data(text.utf8)
        }

        /// What the refusal must name.
        public var expectedReason: [String] {
            self == .deepNesting ? ["more than the limit of 256 levels"] : ["DOCTYPE not allowed in a CDA", "entity declarations refused"]
        }
    }
}
