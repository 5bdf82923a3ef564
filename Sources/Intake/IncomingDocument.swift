import Foundation
import PasserelleCore

/// The document bytes carried by an intake file or message.
public enum DocumentContent: Sendable, Hashable {
    /// A PDF to be wrapped into a CDA by Passerelle.
    case pdf(Data)
    /// A CDA R2 document built by the producer (checked later by `ProducerCDA.accept`).
    case cda(Data)

    public var data: Data {
        switch self {
        case .pdf(let d), .cda(let d): d
        }
    }
}

/// A document received through HL7 v2 (ORU^R01 or MDM^T02/T04/T10, ANS guide
/// *Transmission de documents CDA-R2 en HL7v2*): its metadata, its bytes and what to do.
///
/// For a CDA, the CDA header stays authoritative (author, ids, parent document of an ORU
/// replacement); ``metadata`` carries what the message says about routing, identity and stay.
public struct IncomingDocument: Sendable, Hashable {
    public var metadata: DocumentMetadata
    public var content: DocumentContent
    /// new (OBX-11 F), replace (C) or delete (D); also in ``metadata``.
    public var action: DocumentAction
    /// MSH-10 of the message, for the acknowledgement.
    public var controlID: String

    public init(metadata: DocumentMetadata, content: DocumentContent, action: DocumentAction, controlID: String) {
        self.metadata = metadata
        self.content = content
        self.action = action
        self.controlID = controlID
    }
}

/// Why an HL7 document message cannot be turned into an ``IncomingDocument``.
/// Messages name the segment and field and never quote patient values; their texts, in French
/// and English, are in RefusalTexts.swift.
public enum IntakeError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    case parse(HL7ParseError)
    /// MSH-9 is not a message this path handles.
    case unsupportedMessageType(String)
    /// A segment id (`PID`, `TXA`…; `OBX`: the OBX of value type ED holding the document).
    case missingSegment(String)
    /// A required field is empty: its path (PID-3, OBX-11…) and what it should hold.
    case missingField(String, FieldNeed)
    /// A field holds a value that cannot be used: its path and what is wrong.
    case invalidField(String, FieldFault)
    /// A value taken from the message breaks a DMP metadata rule (a field length).
    case mappedField(MetadataProblem)
    /// The INS in PID-3 fails its checks (wrong key, length, unknown OID); masked in the message.
    case invalidINS(INSError)
    /// OBX-3 / OBR-4 / TXA-2 names a document type Passerelle does not produce.
    case unknownDocumentKind(String)
    /// OBX-11, ORC-1 and the MDM trigger event disagree.
    case inconsistentAction(ActionMismatch)

    /// What an empty required field should hold.
    public enum FieldNeed: String, Sendable, Hashable, CaseIterable {
        case documentType, action, replacedDocument, insOID, ippAuthority, visitNumber, stayAuthority, base64Document, dataSubtype
    }

    /// What is wrong with a field's value (a code may be quoted, never a patient value).
    public enum FieldFault: Sendable, Hashable {
        /// OBX-11 is not F, C or D.
        case actionCode(String)
        /// TXA-2 / OBR-4 names another document type than the document OBX-3.
        case kindDiffers(given: String, documentPath: String, documentKind: String)
        case birthDate
        case sex
        /// A MetaDMPMSS flag (DESTDMP…) that is not Y or N.
        case flag(String)
        /// CORPSMAIL_PS / CORPSMAIL_PATIENT is not UTF-8 text in base64.
        case mailBody(code: String, Base64Problem)
        /// No specialty code or code system (`expected` is the form wanted).
        case specialtyMissing
        /// A specialty that breaks a JDV_J01 rule (the rule's text, in English).
        case specialty(detail: String)
        /// TXA-12 / TXA-13 is neither extension^^root^ISO nor an OID.
        case identifierForm
        case identifierRoot
        /// OBX-5.4 is not Base64.
        case encoding(String)
        /// OBX-5.5 is not usable base64.
        case documentBase64(Base64Problem)
        /// Subtype PDF and the data is not a PDF.
        case notPDF
        case subtype(String)
        /// Not an HL7 timestamp.
        case timestamp
    }

    /// Why a base64 field cannot be decoded.
    public enum Base64Problem: Error, Sendable, Hashable {
        /// Characters outside the base64 alphabet, or padding in the middle.
        case invalid
        /// Cut: `length` base64 characters (whitespace aside) cannot be a whole encoding.
        case truncated(length: Int)
        /// The decoded text ends in the middle of a UTF-8 character: the base64 was cut.
        case cutCharacter
    }

    /// How OBX-11 disagrees with the MDM event or ORC-1.
    public enum ActionMismatch: Sendable, Hashable {
        case trigger(event: String, documentPath: String, status: String)
        case orderControl(code: String, documentPath: String, status: String)
    }
}

/// Maps ANS HL7 v2 document messages to ``IncomingDocument``.
public struct HL7DocumentReader: Sendable {
    /// Time zone for timestamps sent without an offset.
    public var timeZone: TimeZone

    public init(timeZone: TimeZone = TimeZone(identifier: "Europe/Paris")!) {
        self.timeZone = timeZone
    }

    /// Parses and maps raw message bytes.
    public func read(_ data: Data) throws(IntakeError) -> IncomingDocument {
        let message: HL7Message
        do { message = try HL7Message(data: data) } catch { throw .parse(error) }
        return try read(message)
    }

    /// Maps a parsed message.
    public func read(_ m: HL7Message) throws(IntakeError) -> IncomingDocument {
        let (type, trigger) = m.messageType
        let isMDM: Bool
        switch (type, trigger) {
        case ("ORU", "R01"): isMDM = false
        case ("MDM", "T02"), ("MDM", "T04"), ("MDM", "T10"): isMDM = true
        default: throw .unsupportedMessageType(trigger.isEmpty ? type : "\(type)^\(trigger)")
        }
        guard let pid = m.segment("PID") else { throw .missingSegment("PID") }
        let patient = try patientInfo(pid)

        // The document OBX: the first ED OBX whose OBX-3 is not a MetaDMPMSS code
        // (an ORU may carry the same document twice, CDA level 3 then level 1: the first wins).
        let obxs = m.segments("OBX")
        guard let docIndex = obxs.firstIndex(where: { $0[2] == "ED" && !Self.isMetaCode($0.field(3).value) }) else {
            throw .missingSegment("OBX")
        }
        let docOBX = obxs[docIndex]
        let docPath = "OBX[\(docIndex + 1)]"
        let kindCode = docOBX.field(3).value.trimmingWhitespace()
        guard !kindCode.isEmpty else { throw .missingField("\(docPath)-3", .documentType) }
        guard let kind = DocumentKind(parsing: kindCode) else { throw .unknownDocumentKind(kindCode) }
        let content = try Self.content(docOBX.field(5).first, path: "\(docPath)-5")

        // Action: OBX-11 of the document, checked against ORC-1 (ORU) or the trigger (MDM).
        let status = docOBX[11].trimmingWhitespace()
        let action: DocumentAction
        switch status {
        case "F": action = .new
        case "C": action = .replace
        case "D": action = .delete
        case "": throw .missingField("\(docPath)-11", .action)
        default: throw .invalidField("\(docPath)-11", .actionCode(status))
        }
        if isMDM {
            let expected: [DocumentAction: String] = [.new: "T02", .replace: "T10", .delete: "T04"]
            if expected[action] != trigger {
                throw .inconsistentAction(.trigger(event: trigger, documentPath: docPath, status: status))
            }
        } else {
            let orc = m.segment("ORC")?[1].trimmingWhitespace() ?? ""
            let expected: [DocumentAction: String] = [.new: "NW", .replace: "RO", .delete: "CA"]
            if !orc.isEmpty && expected[action] != orc {
                throw .inconsistentAction(.orderControl(code: orc, documentPath: docPath, status: status))
            }
        }

        var metadata = DocumentMetadata(kind: kind, effectiveTime: nil, patient: patient, author: nil, destinations: [])
        metadata.action = action
        metadata.stay = try stay(m)

        if isMDM {
            guard let txa = m.segment("TXA") else { throw .missingSegment("TXA") }
            let txaKind = txa[2].trimmingWhitespace()
            if !txaKind.isEmpty && DocumentKind(parsing: txaKind) != kind {
                throw .invalidField("TXA-2", .kindDiffers(given: txaKind, documentPath: docPath, documentKind: kindCode))
            }
            metadata.effectiveTime = try timestamp(txa[4], "TXA-4")
            if metadata.effectiveTime == nil { metadata.effectiveTime = try timestamp(txa[6], "TXA-6") }
            metadata.id = try Self.instanceIdentifier(txa.field(12).first, path: "TXA-12")
            metadata.parentID = try Self.instanceIdentifier(txa.field(13).first, path: "TXA-13")
            // A deletion names the document to delete in TXA-12; the sidecar model calls it parent_id.
            if action == .delete && metadata.parentID == nil { metadata.parentID = metadata.id }
            if action == .replace && metadata.parentID == nil {
                throw .missingField("TXA-13", .replacedDocument)
            }
            if let originator = txa.field(9).repetitions.first, !originator.isEmpty {
                metadata.author = Self.professional(originator, firstComponent: 1)
            }
        } else if let obr = m.segment("OBR") {
            let obrKind = obr.field(4).value.trimmingWhitespace()
            if !obrKind.isEmpty && DocumentKind(parsing: obrKind) != kind {
                throw .invalidField("OBR-4", .kindDiffers(given: obrKind, documentPath: docPath, documentKind: kindCode))
            }
            metadata.effectiveTime = try timestamp(obr[7], "OBR-7")
        } else {
            throw .missingSegment("OBR")
        }
        if action == .replace {
            // The CDA carries the real version; a replacement is at least version 2.
            metadata.versionNumber = 2
        }

        // The OBX/PRT group that follows the document: sender, recipients, reply-to, flags, mail bodies.
        var mssante = MSSanteMessage()
        var obxNumber = 0
        for segment in m.segments {
            switch segment.id {
            case "OBX":
                obxNumber += 1
                try applyMeta(segment, path: "OBX[\(obxNumber)]", to: &metadata, mssante: &mssante)
            case "PRT" where obxNumber > docIndex:
                applyParticipation(segment, to: &metadata, mssante: &mssante)
            default: break
            }
        }
        if mssante != MSSanteMessage() { metadata.mssante = mssante }
        try applyAuthorSpecialty(m, to: &metadata)
        return IncomingDocument(metadata: metadata, content: content, action: action, controlID: m.controlID)
    }

    // MARK: Patient

    private func patientInfo(_ pid: HL7Segment) throws(IntakeError) -> PatientInfo {
        var info = PatientInfo()
        for (i, rep) in pid.field(3).repetitions.enumerated() where !rep.isEmpty {
            let path = "PID-3[\(i + 1)]"
            let type = rep.component(5).uppercased()
            let authority = rep.subcomponent(4, 2)
            if type == "INS" || type.hasPrefix("INS-") || INSKind(oid: authority) != nil {
                guard !authority.isEmpty else { throw .missingField("\(path).4.2", .insOID) }
                do { _ = try INS(rep.component(1), oid: authority) } catch { throw .invalidINS(error) }
                info.ins = INSReference(value: rep.component(1), oid: authority)
            } else if type == "PI" || (info.ipp == nil && type.isEmpty) {
                guard !authority.isEmpty else { throw .missingField("\(path).4.2", .ippAuthority) }
                info.ipp = LocalIdentifier(value: rep.component(1), authority: authority)
            }
        }
        // PAM FR: PID-32 identity reliability code (table 0445: VALI, QUAL, PROV, RECUP…).
        for rep in pid.field(32).repetitions {
            if let status = IdentityStatus(code: rep.component(1).trimmingWhitespace()) {
                info.identityStatus = status
                break
            }
        }
        var traits = IdentityTraits()
        // PAM FR: name type L = birth name (component 3 lists all birth given names), D = used name.
        let names = pid.field(5).repetitions
        if let birth = names.first(where: { $0.component(7) == "L" }) ?? names.first(where: { $0.component(7).isEmpty }) {
            traits.birthName = Self.nonEmpty(birth.component(1))
            traits.firstBirthGivenName = Self.nonEmpty(birth.component(2))
            traits.birthGivenNames = Self.nonEmpty(birth.component(3)) ?? traits.firstBirthGivenName
        }
        if let used = names.first(where: { $0.component(7) == "D" }) {
            traits.usedName = Self.nonEmpty(used.component(1))
            traits.usedGivenName = Self.nonEmpty(used.component(2))
        }
        let birth = pid[7]
        if !birth.isEmpty {
            guard let date = HL7Timestamp.date(birth) else { throw .invalidField("PID-7", .birthDate) }
            traits.birthDate = date
        }
        switch pid[8].uppercased() {
        case "": break
        case "F": traits.sex = .female
        case "M": traits.sex = .male
        case "U", "UN", "O", "A": traits.sex = .unknown
        default: throw .invalidField("PID-8", .sex)
        }
        for rep in pid.field(11).repetitions {
            switch rep.component(7).uppercased() {
            case "BDL":  // birth place: INSEE COG code in component 9
                traits.birthPlace = Self.nonEmpty(rep.component(9))
            case "H", "", "HP", "C":
                if info.address == nil && !rep.isEmpty {
                    info.address = PostalAddress(lines: [rep.component(1), rep.component(2)].filter { !$0.isEmpty },
                                                 postalCode: Self.nonEmpty(rep.component(5)), city: Self.nonEmpty(rep.component(3)),
                                                 country: Self.nonEmpty(rep.component(6)))
                }
            default: break
            }
        }
        info.traits = traits
        return info
    }

    private func stay(_ m: HL7Message) throws(IntakeError) -> Stay? {
        guard let pv1 = m.segment("PV1") else { return nil }
        var stay = Stay()
        // PV1-19 (visit number); PID-18 (administrative file number) when PV1-19 is empty.
        let visit = pv1.field(19).first
        let pid18 = m.segment("PID")?.field(18).first
        if !visit.isEmpty { stay.id = LocalIdentifier(value: visit.component(1), authority: visit.subcomponent(4, 2)) }
        else if let pid18, !pid18.isEmpty { stay.id = LocalIdentifier(value: pid18.component(1), authority: pid18.subcomponent(4, 2)) }
        stay.admission = try timestamp(pv1[44], "PV1-44")
        stay.discharge = try timestamp(pv1[45], "PV1-45")
        return stay == Stay() ? nil : stay
    }

    private func timestamp(_ text: String, _ path: String) throws(IntakeError) -> ZonedDateTime? {
        try HL7Timestamp.field(text, path, timeZone: timeZone)
    }

    // MARK: OBX and PRT

    private static func isMetaCode(_ code: String) -> Bool {
        let c = code.trimmingWhitespace().uppercased()
        return MetaDMPMSSFlag(code: c) != nil || c.hasPrefix("CORPSMAIL_") || c == "REPLY_TO"
    }

    private func applyMeta(_ obx: HL7Segment, path: String, to metadata: inout DocumentMetadata,
                           mssante: inout MSSanteMessage) throws(IntakeError) {
        let code = obx.field(3).value.trimmingWhitespace().uppercased()
        if let flag = MetaDMPMSSFlag(code: code) {
            let answer = obx.field(5).value.trimmingWhitespace().uppercased()
            let on: Bool
            switch answer {
            case "Y": on = true
            case "N": on = false
            default: throw .invalidField("\(path)-5", .flag(flag.rawValue))
            }
            guard on else { return }
            if let destination = flag.destination {
                if !metadata.destinations.contains(destination) { metadata.destinations.append(destination) }
            } else if !metadata.flags.contains(flag) {
                metadata.flags.append(flag)
            }
        } else if code == "CORPSMAIL_PS" || code == "CORPSMAIL_PATIENT" {
            let ed = obx.field(5).first
            let payload = ed.component(5)
            let text: String
            switch Self.decodeBase64(payload) {
            case .success(let data):
                guard let decoded = String(data: data, encoding: .utf8) else {
                    throw .invalidField("\(path)-5.5", .mailBody(code: code, Self.endsMidCharacter(data) ? .cutCharacter : .invalid))
                }
                text = decoded
            case .failure(let problem):
                // Without an encoding (OBX-5.4), plain UTF-8 text is taken as is.
                guard ed.component(4).isEmpty else { throw .invalidField("\(path)-5.5", .mailBody(code: code, problem)) }
                text = payload
            }
            if code == "CORPSMAIL_PS" { mssante.professionalBody = text } else { mssante.patientBody = text }
        }
    }

    private func applyParticipation(_ prt: HL7Segment, to metadata: inout DocumentMetadata, mssante: inout MSSanteMessage) {
        let role = prt.field(4).value.trimmingWhitespace().uppercased()
        let mails = prt.field(15).repetitions
            .filter { $0.component(3).uppercased() == "X.400" || $0.component(3).uppercased() == "INTERNET" }
            .map { $0.component(4).trimmingWhitespace() }
            .filter { !$0.isEmpty }
        switch role {
        case "SB":
            // The sender: author when the message names no other, and its organisation.
            let person = prt.field(5).first
            if metadata.author == nil && !person.isEmpty { metadata.author = Self.professional(person, firstComponent: 1) }
            let org = prt.field(8).first
            if !org.isEmpty, metadata.structure == nil {
                metadata.structure = HealthStructure(finess: Self.nonEmpty(org.component(10).trimmingWhitespace()),
                                                     name: Self.nonEmpty(org.component(1)))
            }
        case "RCT":
            // Patient mailboxes are served by the mssante_patient destination (built from the INS).
            for mail in mails where !mail.lowercased().hasSuffix("@patient.mssante.fr") && !mssante.recipients.contains(mail) {
                mssante.recipients.append(mail)
            }
        case "REPLY":
            if let first = mails.first { mssante.replyTo = first }
        default: break
        }
    }

    /// The author's role/specialty, when a participation names the author with one: PRT-6 of a
    /// PRT whose PRT-5 is the author, or ROL-9 of a ROL whose ROL-4 is the author. The ANS guide
    /// maps neither, so both are optional; a value that cannot be used is refused rather than
    /// replaced by the configured default.
    private func applyAuthorSpecialty(_ m: HL7Message, to metadata: inout DocumentMetadata) throws(IntakeError) {
        guard let author = metadata.author, author.specialty == nil else { return }
        let candidates = m.segments("PRT").map { ($0, "PRT", 5, 6) } + m.segments("ROL").map { ($0, "ROL", 4, 9) }
        for (segment, name, personField, typeField) in candidates {
            let person = Self.professional(segment.field(personField).first, firstComponent: 1)
            guard person.rpps != nil || person.adeli != nil, person.rpps == author.rpps, person.adeli == author.adeli else { continue }
            let cwe = segment.field(typeField).first
            guard !cwe.isEmpty else { continue }
            metadata.author?.specialty = try Self.specialty(cwe, path: "\(name)-\(typeField)")
            return
        }
    }

    /// A CWE holding a JDV_J01 code: code^display^coding system (an OID or G15 / TRE_G15…),
    /// or the OID in CWE-14 (v2.7).
    private static func specialty(_ cwe: HL7Repetition, path: String) throws(IntakeError) -> CodedValue {
        let code = cwe.component(1).trimmingWhitespace()
        let display = cwe.component(2).trimmingWhitespace()
        let system = [cwe.component(14), cwe.component(3)].map { $0.trimmingWhitespace() }
        let oid: String? = system.first(where: OID.isValid)
            ?? (system[1].uppercased().hasPrefix("TRE_G15") || system[1].uppercased() == "G15" ? OID.authorSpecialty : nil)
        guard !code.isEmpty, let oid else { throw .invalidField(path, .specialtyMissing) }
        switch CodedValue(code: code, codeSystem: oid, displayName: display).checkedAuthorSpecialty() {
        case .success(let value): return value
        case .failure(let problem): throw .invalidField(path, .specialty(detail: problem.description))
        }
    }

    /// An XCN (TXA-9, PRT-5): id, family, given, …, prefix (6), …, assigning authority (9), type (13).
    private static func professional(_ xcn: HL7Repetition, firstComponent: Int) -> HealthProfessional {
        var pro = HealthProfessional(familyName: nonEmpty(xcn.component(2)), givenName: nonEmpty(xcn.component(3)),
                                     prefix: nonEmpty(xcn.component(6)))
        let id = xcn.component(1).trimmingWhitespace()
        let type = xcn.component(13).trimmingWhitespace().uppercased()
        // The national PS id under 1.2.250.1.71.4.2.1 is "8" + RPPS or "0" + ADELI.
        if id.count == 12 && id.hasPrefix("8") { pro.rpps = String(id.dropFirst()) }
        else if id.count == 10 && id.hasPrefix("0") { pro.adeli = String(id.dropFirst()) }
        else if type == "ADELI" { pro.adeli = id }
        else if !id.isEmpty { pro.rpps = id }
        return pro
    }

    /// An EI (TXA-12/13): `extension^^root^ISO`, or a lone OID root.
    private static func instanceIdentifier(_ ei: HL7Repetition, path: String) throws(IntakeError) -> InstanceIdentifier? {
        let first = ei.component(1).trimmingWhitespace()
        let root = ei.component(3).trimmingWhitespace()
        if first.isEmpty && root.isEmpty { return nil }
        if root.isEmpty {
            guard OID.isValid(first) else { throw .invalidField(path, .identifierForm) }
            return InstanceIdentifier(root: first)
        }
        guard OID.isValid(root) else { throw .invalidField("\(path).3", .identifierRoot) }
        return InstanceIdentifier(root: root, extension: first.isEmpty ? nil : first)
    }

    /// OBX-5 of type ED: source^type^subtype^encoding^data. Subtype XML → CDA, PDF → PDF.
    private static func content(_ ed: HL7Repetition, path: String) throws(IntakeError) -> DocumentContent {
        let subtype = ed.component(3).trimmingWhitespace().uppercased()
        let encoding = ed.component(4).trimmingWhitespace().uppercased()
        let payload = ed.component(5)
        guard !payload.isEmpty else { throw .missingField("\(path).5", .base64Document) }
        guard encoding == "BASE64" || encoding == "B64" else {
            throw .invalidField("\(path).4", .encoding(encoding))
        }
        let data: Data
        switch decodeBase64(payload) {
        case .success(let d) where !d.isEmpty: data = d
        case .success: throw .invalidField("\(path).5", .documentBase64(.invalid))
        case .failure(let problem): throw .invalidField("\(path).5", .documentBase64(problem))
        }
        switch subtype {
        case "XML", "HL7-CDA", "CDA": return .cda(data)
        case "PDF":
            guard data.starts(with: Array("%PDF-".utf8)) else { throw .invalidField("\(path).5", .notPDF) }
            // Padding may be left out (tolerated), so an unpadded length is no proof of a cut: a PDF
            // without its end marker is.
            let length = base64Length(payload)
            if length % 4 != 0, !hasPDFEnd(data) { throw .invalidField("\(path).5", .documentBase64(.truncated(length: length))) }
            return .pdf(data)
        case "": throw .missingField("\(path).3", .dataSubtype)
        default: throw .invalidField("\(path).3", .subtype(subtype))
        }
    }

    /// ``base64(_:)`` with the reason of a failure: a length no whole encoding can have (one
    /// character past a 4-character group) is a cut field, anything else is not base64.
    static func decodeBase64(_ text: String) -> Result<Data, IntakeError.Base64Problem> {
        if let data = base64(text) { return .success(data) }
        let length = base64Length(text)
        // Only the alphabet, padding at the end only, and one character too many for a group: cut.
        var seenPadding = false
        for b in text.utf8 {
            switch b {
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "="): seenPadding = true
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "+"), UInt8(ascii: "/"):
                if seenPadding { return .failure(.invalid) }
            default: return .failure(.invalid)
            }
        }
        return length % 4 == 1 && !seenPadding ? .failure(.truncated(length: length)) : .failure(.invalid)
    }

    /// Base64 characters of `text`, whitespace aside.
    static func base64Length(_ text: String) -> Int {
        text.utf8.reduce(0) { n, b in [0x20, 0x09, 0x0A, 0x0D].contains(b) ? n : n + 1 }
    }

    /// True when the bytes are UTF-8 but for an incomplete character at the very end (a cut text).
    static func endsMidCharacter(_ data: Data) -> Bool {
        for drop in 1...3 where data.count > drop {
            let head = data.dropLast(drop)
            // The dropped bytes must start a multi-byte sequence (lead byte 11xxxxxx).
            guard let lead = data.dropFirst(data.count - drop).first, lead & 0xC0 == 0xC0 else { continue }
            if String(data: head, encoding: .utf8) != nil { return true }
        }
        return false
    }

    /// True when the last kilobyte of a PDF holds its end marker `%%EOF`.
    static func hasPDFEnd(_ data: Data) -> Bool {
        let tail = data.suffix(1024)
        return tail.firstRange(of: Data("%%EOF".utf8)) != nil
    }

    /// Base64 tolerant of the line breaks and spaces senders insert, and of missing padding.
    static func base64(_ text: String) -> Data? {
        // Fast path: clean base64, possibly without its padding.
        let count = text.utf8.count
        // One character past a 4-character group is never a whole encoding (and Foundation may
        // decode it anyway when padded with "===").
        if count > 0, count % 4 != 1, let data = Data(base64Encoded: count % 4 == 0 ? text : text + String(repeating: "=", count: 4 - count % 4)) {
            return data
        }
        // Byte-level: documents are megabytes of base64.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 3)
        for b in text.utf8 {
            switch b {
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="):
                bytes.append(b)
            default: return nil
            }
        }
        guard !bytes.isEmpty, bytes.count % 4 != 1 else { return nil }
        while bytes.count % 4 != 0 { bytes.append(UInt8(ascii: "=")) }
        return Data(base64Encoded: Data(bytes))
    }

    private static func nonEmpty(_ s: String) -> String? {
        let t = s.trimmingWhitespace()
        return t.isEmpty ? nil : t
    }
}
