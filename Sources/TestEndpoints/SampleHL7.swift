import CDA
import Foundation
import PasserelleCore

/// HL7 v2.5 messages as a hospital's systems send them (ANS guide *Transmission de documents
/// CDA-R2 en HL7v2*, PAM FR for the identity): an ORU^R01 from a lab system, an MDM^T02 from a
/// radiology system, an ADT^A03 from the patient administration system. The inputs of
/// `passerelle demo` and `passerelle-bench e2e`.
public struct SampleHL7: Sendable {
    public let now: Date
    let zone = TimeZone(identifier: "Europe/Paris")!
    /// MSH-4 / MSH-6: the facility's FINESS.
    public var facility = "750803447"

    public init(now: Date = Date(), facility: String = "750803447") {
        self.now = now
        self.facility = facility
    }

    public func oru(cda: CDADocument, metadata m: DocumentMetadata, control: String) -> Data {
        let kind = m.kind!
        return message([
            msh("ORU^R01^ORU_R01", control: control, sender: "DEMO_LAB"),
            pid(m.patient, stay: m.stay),
            pv1(m.stay),
            "ORC|NW",
            "OBR|1|||\(kind.loincCode)^\(kind.displayName)^LN|||\(timestamp(m.effectiveTime?.date ?? now))",
        ] + document(cda, kind: kind, author: m.author))
    }

    public func mdm(cda: CDADocument, metadata m: DocumentMetadata, control: String) -> Data {
        let kind = m.kind!
        let txa = ["TXA", "1", kind.loincCode, "TEXT", timestamp(m.effectiveTime?.date ?? now), "", "", "", "",
                   m.author.map(xcn) ?? "", "", "", cda.id.root, "", "", "", "", "AU"]
        return message([
            msh("MDM^T02^MDM_T02", control: control, sender: "DEMO_RIS"),
            "EVN|T02|\(timestamp(now))",
            pid(m.patient, stay: m.stay),
            pv1(m.stay),
            txa.joined(separator: "|"),
        ] + document(cda, kind: kind, author: nil))
    }

    public func adtA03(patient: PatientInfo, stay: Stay, at date: Date, control: String) -> Data {
        var discharged = stay
        discharged.discharge = ZonedDateTime(date: date, utcOffsetSeconds: zone.secondsFromGMT(for: date))
        return message([
            msh("ADT^A03^ADT_A03", control: control, sender: "DEMO_GAM"),
            "EVN|A03|\(timestamp(date))",
            pid(patient, stay: discharged),
            pv1(discharged),
        ])
    }

    // MARK: Segments

    func message(_ segments: [String]) -> Data { Data(segments.joined(separator: "\r").appending("\r").utf8) }

    func msh(_ type: String, control: String, sender: String) -> String {
        "MSH|^~\\&|\(sender)|\(facility)|PASSERELLE|\(facility)|\(timestamp(now))||\(type)|\(control)|P|2.5|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2"
    }

    /// PID-3 INS and IPP, PID-5 birth name (type L), PID-7/8, PID-11 birth place (BDL), PID-32 status.
    func pid(_ p: PatientInfo, stay: Stay?) -> String {
        var ids: [String] = []
        if let ins = p.ins { ids.append("\(ins.value)^^^ASIP-SANTE-INS-NIR&\(ins.oid)&ISO^INS") }
        if let ipp = p.ipp { ids.append("\(ipp.value)^^^DEMO&\(ipp.authority)&ISO^PI") }
        let t = p.traits
        var fields = [String](repeating: "", count: 33)
        fields[0] = "PID"
        fields[1] = "1"
        fields[3] = ids.joined(separator: "~")
        fields[5] = "\(t.birthName ?? "")^\(t.firstBirthGivenName ?? "")^\(t.birthGivenNames ?? "")^^^^L"
        if let d = t.birthDate { fields[7] = String(format: "%04d%02d%02d", d.year, d.month, d.day) }
        fields[8] = t.sex?.rawValue ?? ""
        if let place = t.birthPlace { fields[11] = "^^^^^^BDL^^\(place)" }
        fields[32] = p.identityStatus?.rawValue ?? ""
        return fields.joined(separator: "|")
    }

    /// PV1-19 visit number, PV1-44 admission, PV1-45 discharge.
    func pv1(_ stay: Stay?) -> String {
        var fields = [String](repeating: "", count: 46)
        fields[0] = "PV1"
        fields[1] = "1"
        fields[2] = "I"
        if let id = stay?.id { fields[19] = "\(id.value)^^^DEMO&\(id.authority)&ISO^VN" }
        if let a = stay?.admission { fields[44] = timestamp(a.date) }
        if let d = stay?.discharge { fields[45] = timestamp(d.date) }
        return fields.joined(separator: "|")
    }

    /// The document OBX (CDA in base64), the sender (PRT SB) and the DMP destination flag.
    func document(_ cda: CDADocument, kind: DocumentKind, author: HealthProfessional?) -> [String] {
        var segments = ["OBX|1|ED|\(kind.loincCode)^\(kind.displayName)^LN||^TEXT^XML^Base64^\(cda.data.base64EncodedString())||||||F"]
        if let author { segments.append("PRT||UC||SB^Send by^participation|\(xcn(author))") }
        segments.append("OBX|2|CE|DESTDMP^Destinataire DMP^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F")
        return segments
    }

    /// XCN: `8<RPPS>^family^given^^^prefix^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS`.
    func xcn(_ p: HealthProfessional) -> String {
        "8\(p.rpps ?? "")^\(p.familyName ?? "")^\(p.givenName ?? "")^^^\(p.prefix ?? "")^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS"
    }

    /// `YYYYMMDDHHMMSS+ZZZZ` in Europe/Paris.
    func timestamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = zone
        f.dateFormat = "yyyyMMddHHmmssZ"
        return f.string(from: date)
    }
}
