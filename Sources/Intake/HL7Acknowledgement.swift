import Foundation
import PasserelleCore

/// MSA-1 acknowledgement codes (original mode).
public enum HL7AckCode: String, Sendable, Hashable, CaseIterable {
    /// Accepted: the gateway takes responsibility for the message.
    case accept = "AA"
    /// Error in the message (syntax, content): the sender must fix it.
    case error = "AE"
    /// Rejected for a circumstantial reason: the sender may resend it later.
    case reject = "AR"
}

/// HL7 table 0357 (message error condition) codes used in ERR-3.
public enum HL7ErrorCondition: Int, Sendable, Hashable, CaseIterable {
    case success = 0
    case segmentSequenceError = 100
    case requiredFieldMissing = 101
    case dataTypeError = 102
    case tableValueNotFound = 103
    case unsupportedMessageType = 200
    case unsupportedEventCode = 201
    case unsupportedProcessingID = 202
    case unsupportedVersionID = 203
    case unknownKeyIdentifier = 204
    case duplicateKeyIdentifier = 205
    case applicationRecordLocked = 206
    case applicationInternalError = 207

    /// The table's text for this code.
    public var text: String {
        switch self {
        case .success: "Message accepted"
        case .segmentSequenceError: "Segment sequence error"
        case .requiredFieldMissing: "Required field missing"
        case .dataTypeError: "Data type error"
        case .tableValueNotFound: "Table value not found"
        case .unsupportedMessageType: "Unsupported message type"
        case .unsupportedEventCode: "Unsupported event code"
        case .unsupportedProcessingID: "Unsupported processing id"
        case .unsupportedVersionID: "Unsupported version id"
        case .unknownKeyIdentifier: "Unknown key identifier"
        case .duplicateKeyIdentifier: "Duplicate key identifier"
        case .applicationRecordLocked: "Application record locked"
        case .applicationInternalError: "Application internal error"
        }
    }
}

/// Where an error is (ERR-2, type ERL): segment id, segment occurrence, field, and optionally
/// repetition, component and subcomponent.
public struct HL7ErrorLocation: Sendable, Hashable {
    public var segment: String
    public var occurrence: Int
    public var field: Int?
    public var repetition: Int?
    public var component: Int?
    public var subcomponent: Int?

    public init(segment: String, occurrence: Int = 1, field: Int? = nil, repetition: Int? = nil,
                component: Int? = nil, subcomponent: Int? = nil) {
        self.segment = segment
        self.occurrence = occurrence
        self.field = field
        self.repetition = repetition
        self.component = component
        self.subcomponent = subcomponent
    }

    /// Reads the paths used in ``IntakeError`` messages: `PID-3`, `OBX[2]-11`, `PID-3[2].4.2`.
    public init?(path: String) {
        let parts = path.split(separator: "-", maxSplits: 1)
        guard let head = parts.first, head.count >= 3 else { return nil }
        segment = String(head.prefix(3))
        occurrence = 1
        if head.count > 3 {
            guard head.dropFirst(3).first == "[", head.last == "]", let n = Int(head.dropFirst(4).dropLast()) else { return nil }
            occurrence = n
        }
        guard segment.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) else { return nil }
        guard parts.count == 2 else { return }
        var rest = parts[1].split(separator: ".").map(String.init)
        guard !rest.isEmpty else { return nil }
        var f = rest.removeFirst()
        if let open = f.firstIndex(of: "["), f.hasSuffix("]") {
            repetition = Int(f[f.index(after: open)..<f.index(before: f.endIndex)])
            f = String(f[..<open])
        }
        guard let fieldNumber = Int(f) else { return nil }
        field = fieldNumber
        if let c = rest.first { component = Int(c) }
        if rest.count > 1 { subcomponent = Int(rest[1]) }
    }

    var erl: String {
        var parts = [segment, String(occurrence)]
        for v in [field, repetition ?? (component != nil ? 1 : nil), component, subcomponent] {
            guard let v else { break }
            parts.append(String(v))
        }
        return parts.joined(separator: "^")
    }
}

/// The ANS guide's application error codes (table HL70533, symbolic name
/// applicationErrorCondition, "Codes erreurs de l'accusé métier de lecture/traitement de la
/// demande"), given in ERR-5 with ERR-3 = 207 (Application error), as the guide prescribes.
public enum HL7ApplicationError: Int, Sendable, Hashable, CaseIterable {
    /// Version du document incorrecte lors d'une demande de remplacement/suppression.
    case documentVersion = 900
    /// Auteur non autorisé à remplacer ou supprimer un document.
    case authorNotAllowed = 901
    /// Identifiant patient inconnu.
    case unknownPatient = 902
    /// INS non présent dans le document.
    case insMissing = 903
    /// L'INS transmis ne correspond pas exactement à celui stocké.
    case insMismatch = 904
    /// L'INS transmis n'est pas complet.
    case insIncomplete = 905
    /// Erreur « Autre ».
    case other = 906

    /// The guide's label (French, as in the table).
    public var label: String {
        switch self {
        case .documentVersion: "Version du document incorrecte lors d'une demande de remplacement/suppression"
        case .authorNotAllowed: "Auteur non autorisé à remplacer ou supprimer un document"
        case .unknownPatient: "Identifiant patient inconnu"
        case .insMissing: "INS non présent dans le document"
        case .insMismatch: "L'INS transmis ne correspond pas exactement à celui stocké dans la base du consommateur"
        case .insIncomplete: "L'INS transmis n'est pas complet"
        case .other: "Erreur 'Autre'"
        }
    }
}

/// One ERR segment.
public struct HL7ErrorDetail: Sendable, Hashable {
    public enum Severity: String, Sendable, Hashable { case error = "E", warning = "W", information = "I" }

    public var condition: HL7ErrorCondition
    public var severity: Severity
    public var location: HL7ErrorLocation?
    /// ERR-5: the ANS application error code, for an application error (ERR-3 = 207).
    public var applicationError: HL7ApplicationError?
    /// What to fix (ERR-8, user message). Must not contain patient data.
    public var text: String

    public init(condition: HL7ErrorCondition, severity: Severity = .error, location: HL7ErrorLocation? = nil,
                applicationError: HL7ApplicationError? = nil, text: String) {
        self.condition = condition
        self.severity = severity
        self.location = location
        self.applicationError = applicationError
        self.text = text
    }

    /// The ERR for an intake error; its text is the error's, in `language` (it never quotes patient values).
    public init(_ error: IntakeError, language: IntakeLanguage = .default) {
        let condition: HL7ErrorCondition
        var location: HL7ErrorLocation?
        switch error {
        case .parse(let e):
            condition = .segmentSequenceError
            if case .unsupportedCharacterSet = e { location = HL7ErrorLocation(segment: "MSH", field: 18) }
            if case .invalidEncodingCharacters = e { location = HL7ErrorLocation(segment: "MSH", field: 2) }
        case .unsupportedMessageType:
            condition = .unsupportedMessageType
            location = HL7ErrorLocation(segment: "MSH", field: 9)
        case .missingSegment(let s):
            condition = .segmentSequenceError
            location = HL7ErrorLocation(path: String(s.prefix(3)))
        case .missingField(let path, _):
            condition = .requiredFieldMissing
            location = HL7ErrorLocation(path: path)
        case .invalidField(let path, _):
            condition = .dataTypeError
            location = HL7ErrorLocation(path: path)
        case .mappedField:
            condition = .dataTypeError
        case .invalidINS:
            condition = .dataTypeError
            location = HL7ErrorLocation(segment: "PID", field: 3)
        case .unknownDocumentKind:
            condition = .tableValueNotFound
            location = HL7ErrorLocation(segment: "OBX", field: 3)
        case .inconsistentAction:
            condition = .tableValueNotFound
            location = HL7ErrorLocation(segment: "OBX", field: 11)
        }
        self.init(condition: condition, location: location, text: error.text(language))
    }
}

/// Builds HL7 v2 ACK messages as the ANS guide describes them: MSH mirrors the original
/// (sending and receiving application/facility swapped, same processing id and version),
/// MSA-2 repeats MSH-10, one ERR per problem for AE/AR.
public struct HL7AcknowledgementBuilder: Sendable {
    public var timeZone: TimeZone

    public init(timeZone: TimeZone = TimeZone(identifier: "Europe/Paris")!) {
        self.timeZone = timeZone
    }

    /// The ACK for `original`. `original` may be nil when the message could not be parsed at
    /// all: the ACK then has empty application fields and MSA-2.
    /// - Returns: the message, segments separated by CR, in UTF-8 (MSH-18 says so).
    public func acknowledgement(for original: HL7Message?, code: HL7AckCode, errors: [HL7ErrorDetail] = [],
                                controlID: String, now: Date = Date()) -> String {
        let enc = original?.encoding ?? .standard
        let f = String(enc.field)
        let msh = original?.segment("MSH")
        // Raw re-encoding of an HD field (namespace^universal id^type) from the original.
        func hd(_ n: Int) -> String {
            guard let rep = msh?.field(n).first else { return "" }
            return rep.components.map { $0.map(enc.escaped).joined(separator: String(enc.subcomponent)) }
                .joined(separator: String(enc.component))
        }
        let trigger = original?.messageType.trigger ?? ""
        let version = msh?.field(12).value ?? ""
        let processing = msh?.field(11).value ?? "P"
        let header = [
            "MSH", enc.encodingCharacters, hd(5), hd(6), hd(3), hd(4),
            HL7Timestamp.format(now, timeZone: timeZone), "",
            ["ACK", trigger, "ACK"].map(enc.escaped).joined(separator: String(enc.component)),
            enc.escaped(controlID), enc.escaped(processing.isEmpty ? "P" : processing),
            enc.escaped(version.isEmpty ? "2.5" : version), "", "", "", "", "FRA", "UNICODE UTF-8",
        ].joined(separator: f)
        var segments = [header, ["MSA", code.rawValue, enc.escaped(original?.controlID ?? "")].joined(separator: f)]
        let c = String(enc.component)
        for e in errors {
            var fields = Array(repeating: "", count: 9)
            fields[0] = "ERR"
            fields[2] = e.location.map { $0.erl.replacingOccurrences(of: "^", with: c) } ?? ""
            fields[3] = [String(e.condition.rawValue), enc.escaped(e.condition.text), "HL70357"].joined(separator: c)
            fields[4] = e.severity.rawValue
            if let app = e.applicationError {
                fields[5] = [String(app.rawValue), enc.escaped(app.label), "applicationErrorCondition"].joined(separator: c)
            }
            fields[8] = enc.escaped(e.text)
            while fields.last == "" { fields.removeLast() }
            segments.append(fields.joined(separator: f))
        }
        return segments.joined(separator: "\r") + "\r"
    }
}
