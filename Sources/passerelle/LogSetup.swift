import Foundation
import Logging
import PasserelleCore
import Synchronization

/// A swift-log handler that writes one line per event to stderr, as logfmt
/// (`ts=… level=info label=passerelle msg="…" key=value`) or JSON.
///
/// It prints exactly what it is given: callers must keep patient data out of messages and
/// metadata (document ids and masked INS only).
struct LineLogHandler: LogHandler {
    let label: String
    let format: PasserelleConfiguration.LogFormat
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level, format: PasserelleConfiguration.LogFormat) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let own = event.metadata { merged.merge(own) { $1 } }
        if let error = event.error { merged["error"] = .string("\(error)") }
        let line = LineLogHandler.render(
            format: format, timestamp: Date(), level: event.level, label: label,
            message: event.message.description, metadata: merged)
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// One formatted line (no trailing newline). Keys are sorted so lines are stable.
    static func render(format: PasserelleConfiguration.LogFormat, timestamp: Date, level: Logger.Level,
                       label: String, message: String, metadata: Logger.Metadata) -> String {
        let ts = Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(timestamp)
        var fields: [(String, String)] = [("ts", ts), ("level", level.rawValue), ("label", label), ("msg", message)]
        for key in metadata.keys.sorted() { fields.append((key, flatten(metadata[key]!))) }
        switch format {
        case .logfmt:
            return fields.map { "\($0.0)=\(logfmtValue($0.1))" }.joined(separator: " ")
        case .json:
            return "{" + fields.map { "\(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",") + "}"
        }
    }

    static func flatten(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let items): items.map(flatten).joined(separator: ",")
        case .dictionary(let d): d.keys.sorted().map { "\($0):\(flatten(d[$0]!))" }.joined(separator: ",")
        }
    }

    static func logfmtValue(_ s: String) -> String {
        let needsQuotes = s.isEmpty || s.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0.isNewline || $0 == "\\" }
        guard needsQuotes else { return s }
        var out = "\""
        for c in s {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.append(c)
            }
        }
        return out + "\""
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Installs ``LineLogHandler`` once per process (swift-log allows a single bootstrap).
enum LogSetup {
    private static let done = Mutex(false)

    /// Bootstraps logging; later calls are ignored.
    static func bootstrap(level: LogLevel, format: PasserelleConfiguration.LogFormat = .logfmt) {
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        let swiftLogLevel = Logger.Level(rawValue: level.rawValue) ?? .info
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, level: swiftLogLevel, format: format) }
    }
}
