import Foundation
import PasserelleCore

/// An admission or discharge from the hospital's ADT feed (HL7 v2 ADT^A01 / ADT^A03), kept
/// for the usage-rate indicators (denominator: stays and discharges).
public struct StayEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// ADT^A01, admission of an in-patient.
        case admission = "A01"
        /// ADT^A03, discharge / end of visit.
        case discharge = "A03"
    }

    public var kind: Kind
    /// PV1-19 (visit number) with its authority, or PID-18 when PV1-19 is empty.
    public var stayID: LocalIdentifier
    /// PV1-2: I (in-patient), O (out-patient), E (emergency), R (recurring), N…
    public var patientClass: String?
    /// PV1-44.
    public var admission: ZonedDateTime?
    /// PV1-45; for an A03 without PV1-45, the event time (EVN-6, else EVN-2).
    public var discharge: ZonedDateTime?
    /// PID-3 identifier of type PI.
    public var patientIPP: LocalIdentifier?
    /// FINESS of the facility (PV1-39 or MSH-4) when it is a valid FINESS number.
    public var finess: String?
    /// MSH-10, to acknowledge the message.
    public var controlID: String

    public init(kind: Kind, stayID: LocalIdentifier, patientClass: String? = nil, admission: ZonedDateTime? = nil,
                discharge: ZonedDateTime? = nil, patientIPP: LocalIdentifier? = nil, finess: String? = nil, controlID: String = "") {
        self.kind = kind
        self.stayID = stayID
        self.patientClass = patientClass
        self.admission = admission
        self.discharge = discharge
        self.patientIPP = patientIPP
        self.finess = finess
        self.controlID = controlID
    }

    /// Reads an ADT^A01 or ADT^A03 (other messages throw ``IntakeError/unsupportedMessageType(_:)``).
    /// Timestamps without an offset are read in `timeZone`.
    public init(message m: HL7Message, timeZone: TimeZone = TimeZone(identifier: "Europe/Paris")!) throws(IntakeError) {
        let (type, trigger) = m.messageType
        // Some senders leave MSH-9.2 empty and put the event in EVN-1.
        let event = trigger.isEmpty ? (m["EVN-1"] ?? "") : trigger
        guard type == "ADT", let kind = Kind(rawValue: event) else {
            throw .unsupportedMessageType(event.isEmpty ? type : "\(type)^\(event)")
        }
        guard let pv1 = m.segment("PV1") else { throw .missingSegment("PV1") }
        let pid = m.segment("PID")
        func ts(_ text: String, _ path: String) throws(IntakeError) -> ZonedDateTime? {
            try HL7Timestamp.field(text, path, timeZone: timeZone)
        }
        var idRep = pv1.field(19).first
        var idPath = "PV1-19"
        if idRep.isEmpty, let pid18 = pid?.field(18).first, !pid18.isEmpty { idRep = pid18; idPath = "PID-18" }
        guard !idRep.component(1).isEmpty else {
            throw .missingField("PV1-19", .visitNumber)
        }
        guard OID.isValid(idRep.subcomponent(4, 2)) else {
            throw .missingField("\(idPath).4.2", .stayAuthority)
        }
        self.kind = kind
        self.stayID = LocalIdentifier(value: idRep.component(1), authority: idRep.subcomponent(4, 2))
        self.controlID = m.controlID
        let patientClass = pv1[2].trimmingWhitespace()
        self.patientClass = patientClass.isEmpty ? nil : patientClass
        self.admission = try ts(pv1[44], "PV1-44")
        var discharge = try ts(pv1[45], "PV1-45")
        if kind == .discharge && discharge == nil {
            discharge = try ts(m["EVN-6"] ?? "", "EVN-6")
            if discharge == nil { discharge = try ts(m["EVN-2"] ?? "", "EVN-2") }
        }
        self.discharge = discharge
        self.patientIPP = pid?.field(3).repetitions
            .first { $0.component(5).uppercased() == "PI" && !$0.component(1).isEmpty }
            .map { LocalIdentifier(value: $0.component(1), authority: $0.subcomponent(4, 2)) }
        let candidates = [pv1.field(39).value, pv1.field(3).component(4), m["MSH-4"] ?? "", m["MSH-4.2"] ?? ""]
        self.finess = candidates.map { $0.trimmingWhitespace() }.first { (try? FINESS($0)) != nil }
    }
}
