import CDA
import DMP
import Foundation
import IHE
import PasserelleCore
import SampleDocuments
import TestEndpoints

/// What a demo sample must end as; the demo fails when any sample ends otherwise.
enum DemoExpectation: Sendable, Hashable {
    /// Sent to the DMP and acknowledged; `entry` is the endpoint's final status of the entry
    /// (Deprecated once replaced, Deleted once deleted).
    case stored(entry: AvailabilityStatus)
    /// A deletion accepted by the DMP; the deleted entry is `parent`.
    case deletion(parent: String)
    /// Moved to error/ with a reason that contains `reason`.
    case refused(reason: String)
    /// An ADT^A03 that records the discharge of stay `stayID`.
    case discharge(stayID: String)
    /// Sent over MSSanté (journal state `sent`; no acknowledgement mailbox in the demo), and
    /// the local relay holds that message for `recipient`.
    case mailed(recipient: String)

    var text: String {
        switch self {
        case .stored(let entry): "acknowledged, DMP entry \(entry.shortName)"
        case .deletion: "acknowledged, deleted entry Deleted"
        case .refused: "refused to error/"
        case .discharge: "stay discharged"
        case .mailed: "sent, the message at the local relay"
        }
    }
}

extension AvailabilityStatus {
    /// `Approved`, `Deprecated`, `Deleted`, `Archived`.
    var shortName: String { String(rawValue.split(separator: ":").last ?? "") }
}

/// What one (document, target) pair must end as.
struct DemoCheck: Sendable {
    /// nil for an input that is no document (a refusal, a discharge).
    var target: Destination?
    var expected: DemoExpectation
    /// The recipient as the table shows it (a patient's address carries the INS: masked).
    var shownRecipient: String?

    init(_ target: Destination?, _ expected: DemoExpectation, shownRecipient: String? = nil) {
        self.target = target
        self.expected = expected
        self.shownRecipient = shownRecipient
    }
}

/// One input the demo drops into the inbox, with what it must become.
struct DemoSample: Sendable {
    /// What it is, for the table ("ldl (PDF + sidecar)").
    var label: String
    /// Files to drop, in order (the document before its sidecar is fine: the pair waits).
    var files: [(name: String, data: Data)]
    /// The XDS uniqueId of the journaled document (nil when not a document or never journaled).
    var documentID: String?
    var kind: DocumentKind?
    /// Masked INS, or nil when the sample carries none.
    var maskedINS: String?
    /// One outcome per target (one table row each).
    var checks: [DemoCheck]
    /// 1: dropped at once; 2: dropped once phase 1 is settled (a replacement or deletion needs
    /// its original in the DMP first).
    var phase: Int
}

/// Builds the demo's inputs from the sample sidecar (docs/examples/sidecar-ldl.json), moved to
/// today and with fresh ids: one PDF + sidecar per kind, a replacement, a deletion, an
/// unqualified identity, a broken PDF, an ORU^R01 and an MDM^T02 carrying CDAs, an ADT^A03.
/// The letter also goes to the attending doctor's MSSanté mailbox, the prescription to the
/// doctor and to the patient's own mailbox (qualified INS), and the unqualified identity — which
/// may not reach the DMP — to the doctor only, without any INS.
struct DemoSamples {
    /// The professional mailbox of the demo (a local relay accepts any address).
    static let doctor = "dr.traitant@medecin.mssante.fr"

    let base: DocumentMetadata
    let builder: CDABuilder
    /// `[structure] oid`: generated ids go under `<oid>.9.<run stamp>`.
    let root: String
    let now: Date
    private let stamp: UInt64

    init(base: DocumentMetadata, builder: CDABuilder, root: String, now: Date = Date()) {
        self.builder = builder
        self.root = root
        self.now = now
        stamp = UInt64(now.timeIntervalSince1970 * 1000)
        self.base = Self.movedToToday(base, now: now, stay: "DEMO-\(stamp)")
    }

    func id(_ n: Int) -> InstanceIdentifier { InstanceIdentifier(root: "\(root).9.\(stamp).\(n)") }

    static func sidecar(_ metadata: DocumentMetadata) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(metadata)
    }

    /// Every sample, phase 1 first.
    func make() throws -> [DemoSample] {
        var samples: [DemoSample] = []
        let masked = try base.patient.ins?.checked().masked
        var originals: [DocumentKind: DocumentMetadata] = [:]
        let patientAddress = base.patient.shareableINS.map { "\($0.value)@patient.mssante.fr" }
        let shownPatient = masked.map { "\($0)@patient.mssante.fr" }

        // One PDF + sidecar per kind. The letter is replaced and the prescription deleted later.
        for (n, kind) in DocumentKind.allCases.enumerated() {
            var m = base
            m.kind = kind
            m.id = id(n + 1)
            m.setID = id(n + 1)
            originals[kind] = m
            let entry: AvailabilityStatus = kind == .dischargeLetter ? .deprecated : kind == .prescription ? .deleted : .approved
            var checks = [DemoCheck(.dmp, .stored(entry: entry))]
            if kind == .dischargeLetter || kind == .prescription {
                m.destinations += [.mssantePS]
                m.mssante = MSSanteMessage(recipients: [Self.doctor], professionalSubject: "Passerelle demo: \(kind.displayName)",
                                           professionalBody: "Document de démonstration ci-joint.")
                checks.append(DemoCheck(.mssantePS, .mailed(recipient: Self.doctor), shownRecipient: Self.doctor))
            }
            if kind == .prescription, let patientAddress {
                // Professionals and patient together: allowed with DMP (routing matrix).
                m.destinations += [.mssantePatient]
                m.mssante?.patientSubject = "Votre ordonnance"
                m.mssante?.patientBody = "Votre ordonnance est jointe à ce message."
                checks.append(DemoCheck(.mssantePatient, .mailed(recipient: patientAddress), shownRecipient: shownPatient))
            }
            samples.append(DemoSample(
                label: "\(kind.shortName) (PDF + sidecar)",
                files: [("\(kind.shortName).pdf", SamplePDF.make(text: "Passerelle demo: \(kind.displayName)")),
                        ("\(kind.shortName).json", try Self.sidecar(m))],
                documentID: DocumentEntryMapper.uniqueId(m.id!), kind: kind, maskedINS: masked,
                checks: checks, phase: 1))
        }

        // An unqualified identity (VALI): no INS may travel and the DMP takes only QUAL, but a
        // professional mailbox may receive it (identified by traits and IPP only).
        var unqualified = base
        unqualified.kind = .imagingReport
        unqualified.id = id(20)
        unqualified.patient.ins = nil
        unqualified.patient.identityStatus = .validated
        unqualified.patient.ipp = LocalIdentifier(value: "DEMO-VALI-1", authority: base.patient.ipp?.authority ?? root)
        unqualified.destinations = [.mssantePS]
        unqualified.mssante = MSSanteMessage(recipients: [Self.doctor], professionalSubject: "Passerelle demo: identité non qualifiée")
        samples.append(DemoSample(
            label: "unqualified identity",
            files: [("vali.pdf", SamplePDF.make(text: "Passerelle demo: identite non qualifiee")), ("vali.json", try Self.sidecar(unqualified))],
            documentID: DocumentEntryMapper.uniqueId(unqualified.id!), kind: .imagingReport, maskedINS: nil,
            checks: [DemoCheck(.mssantePS, .mailed(recipient: Self.doctor), shownRecipient: Self.doctor)], phase: 1))

        // A broken file: the PDF was cut half-way (a copy that did not finish).
        var broken = base
        broken.id = id(21)
        let pdf = SamplePDF.make(text: "Passerelle demo: fichier tronque")
        samples.append(DemoSample(
            label: "broken PDF (truncated)",
            files: [("broken.pdf", pdf.prefix(pdf.count / 2)), ("broken.json", try Self.sidecar(broken))],
            documentID: nil, kind: .dischargeLetter, maskedINS: masked,
            checks: [DemoCheck(.dmp, .refused(reason: "tronqué"))], phase: 1))  // the reason file is French by default ([intake] language)

        // HL7 v2: an ORU^R01 (biology) and an MDM^T02 (imaging), each carrying a producer's CDA,
        // for a stay the ADT^A03 then discharges.
        let hl7Stay = Stay(id: LocalIdentifier(value: "DEMO-HL7-\(stamp)", authority: base.stay?.id?.authority ?? root),
                           admission: base.stay?.admission, discharge: nil,
                           facilityType: base.stay?.facilityType, practiceSetting: base.stay?.practiceSetting)
        let hl7 = SampleHL7(now: now)
        for (n, (kind, type)) in [(DocumentKind.biologyReport, "ORU^R01"), (.imagingReport, "MDM^T02")].enumerated() {
            var m = base
            m.kind = kind
            m.id = id(30 + n)
            m.setID = m.id
            m.stay = hl7Stay
            let cda = try builder.build(metadata: m, pdf: SamplePDF.make(text: "Passerelle demo: \(kind.displayName) (HL7 v2)"))
            let message = type == "ORU^R01" ? hl7.oru(cda: cda, metadata: m, control: "DEMO\(stamp)\(n)")
                                            : hl7.mdm(cda: cda, metadata: m, control: "DEMO\(stamp)\(n)")
            samples.append(DemoSample(
                label: "\(type) (\(kind.shortName), CDA)", files: [("\(type == "ORU^R01" ? "oru" : "mdm").hl7", message)],
                documentID: DocumentEntryMapper.uniqueId(cda.id), kind: kind, maskedINS: masked,
                checks: [DemoCheck(.dmp, .stored(entry: .approved))], phase: 1))
        }
        samples.append(DemoSample(
            label: "ADT^A03 (discharge)", files: [("adt-a03.hl7", hl7.adtA03(patient: base.patient, stay: hl7Stay, at: now, control: "DEMO\(stamp)A03"))],
            documentID: nil, kind: nil, maskedINS: masked,
            checks: [DemoCheck(nil, .discharge(stayID: hl7Stay.id!.value))], phase: 1))

        // Phase 2: version 2 of the letter (RPLC), and the deletion of the prescription, both
        // for the DMP only (the mails already sent stay as they are).
        var letter = originals[.dischargeLetter]!
        letter.destinations = [.dmp]
        letter.mssante = nil
        var replacement = letter
        replacement.action = .replace
        replacement.parentID = letter.id
        replacement.versionNumber = letter.versionNumber + 1
        replacement.id = id(40)
        samples.append(DemoSample(
            label: "ldl replacement (v2)",
            files: [("ldl-v2.pdf", SamplePDF.make(text: "Passerelle demo: lettre de liaison, version 2")), ("ldl-v2.json", try Self.sidecar(replacement))],
            documentID: DocumentEntryMapper.uniqueId(replacement.id!), kind: .dischargeLetter, maskedINS: masked,
            checks: [DemoCheck(.dmp, .stored(entry: .approved))], phase: 2))

        var prescription = originals[.prescription]!
        prescription.destinations = [.dmp]
        prescription.mssante = nil
        var deletion = prescription
        deletion.action = .delete
        deletion.parentID = prescription.id
        deletion.id = id(41)
        deletion.setID = prescription.setID
        // The journal keeps one row per (set, version): the deletion is the set's next event.
        deletion.versionNumber = prescription.versionNumber + 1
        samples.append(DemoSample(
            label: "ordonnance deletion",
            files: [("ordonnance-del.pdf", SamplePDF.make(text: "Passerelle demo: suppression")), ("ordonnance-del.json", try Self.sidecar(deletion))],
            documentID: DocumentEntryMapper.uniqueId(deletion.id!), kind: .prescription, maskedINS: masked,
            checks: [DemoCheck(.dmp, .deletion(parent: DocumentEntryMapper.uniqueId(prescription.id!)))], phase: 2))
        return samples
    }

    /// The sample sidecar with its dates moved to the last days (so the month's report counts
    /// it), its stay renamed for this run, DMP only (samples add MSSanté where they want it).
    static func movedToToday(_ sample: DocumentMetadata, now: Date, stay: String) -> DocumentMetadata {
        let zone = TimeZone(identifier: "Europe/Paris")!
        func at(_ secondsAgo: TimeInterval) -> ZonedDateTime {
            let date = Date(timeIntervalSince1970: (now.timeIntervalSince1970 - secondsAgo).rounded(.down))
            return ZonedDateTime(date: date, utcOffsetSeconds: zone.secondsFromGMT(for: date))
        }
        var m = sample
        m.effectiveTime = at(3600)
        m.stay?.id = LocalIdentifier(value: stay, authority: sample.stay?.id?.authority ?? "1.2.250.1.999.1.3")
        m.stay?.admission = at(3 * 86_400)
        m.stay?.discharge = at(7200)
        m.serviceEvent?.start = at(3 * 86_400)
        m.serviceEvent?.end = at(7200)
        m.destinations = [.dmp]
        m.mssante = nil
        m.flags = []
        return m
    }
}
