import IHE
import CDA
import DMP
import Foundation
import PasserelleCore
import SampleDocuments
import TestEndpoints
import BenchSupport

/// The documents of `passerelle-bench e2e`, decided by a seeded generator so that two runs
/// with the same options drop the same mix:
/// - kinds in turn (letter, prescription, operative report, biology, imaging);
/// - PDF sizes (`mixed`): 70 % uniform in 50–150 KB, 20 % in 150–500 KB, 10 % in 500 KB–2 MB
///   (mean ≈ 240 KB); `small`: ~0.6 KB PDFs (the backlog drain, where volume is the point);
///   `dmp-only`: uniform in 50–500 KB (issue 17's workload, with no HL7 and no mail);
/// - `hl7Percent` % as HL7 v2 messages carrying a producer CDA (ORU^R01 for biology, MDM^T02
///   otherwise), to the DMP;
/// - the other documents as PDF + sidecar to the DMP; `mailPercent` % of them also to a
///   doctor's MSSanté mailbox, and half of those also to the patient's own mailbox.
struct EndToEndWorkload {
    enum Sizes: String, CaseIterable {
        case mixed, small
        /// Issue 17's DMP-only workload: uniform in 50–500 KB (mean ≈ 275 KB).
        case dmpOnly = "dmp-only"
    }

    /// One input: its files (written to the staging folder, then renamed into the inbox) and
    /// what must reach the endpoints.
    struct Item {
        var index: Int
        var files: [(name: String, data: Data)]
        /// The XDS uniqueId the DMP endpoint stores.
        var uniqueId: String
        var kind: DocumentKind
        var targets: [Destination]
        var pdfBytes: Int
        var hl7: Bool
    }

    static let doctor = "dr.traitant@medecin.mssante.fr"

    let sizes: Sizes
    let hl7Percent: Int
    let mailPercent: Int
    let builder: CDABuilder
    let root: String
    let stamp = UInt64(Date().timeIntervalSince1970 * 1000)
    let hl7 = SampleHL7()

    /// SplitMix64: a fixed sequence per index, whatever the order of generation.
    static func random(_ index: Int, _ salt: UInt64) -> Double {
        var z = UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15 &+ salt
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }

    func pdfSize(_ index: Int) -> Int {
        if sizes == .dmpOnly { return (50 + Int(450 * Self.random(index, 2))) * 1024 }
        guard sizes == .mixed else { return 0 }
        let band = Self.random(index, 1), within = Self.random(index, 2)
        let (low, high) = band < 0.7 ? (50, 150) : band < 0.9 ? (150, 500) : (500, 2048)
        return (low + Int(Double(high - low) * within)) * 1024
    }

    func item(_ index: Int) throws -> Item {
        let kind = DocumentKind.allCases[index % DocumentKind.allCases.count]
        let id = InstanceIdentifier(root: "\(root).9.\(stamp).\(index)")
        var m = SampleMetadata.document(kind: kind, id: id)
        m.setID = id
        let size = pdfSize(index)
        let pdf = SamplePDF.make(text: "Passerelle e2e benchmark document \(index)", minimumBytes: size)
        let name = String(format: "e2e-%06d", index)
        if Self.random(index, 3) * 100 < Double(hl7Percent) {
            let cda = try builder.build(metadata: m, pdf: pdf)
            let control = "E2E\(stamp)\(index)"
            let message = kind == .biologyReport ? hl7.oru(cda: cda, metadata: m, control: control) : hl7.mdm(cda: cda, metadata: m, control: control)
            return Item(index: index, files: [(name + ".hl7", message)], uniqueId: DocumentEntryMapper.uniqueId(id),
                        kind: kind, targets: [.dmp], pdfBytes: pdf.count, hl7: true)
        }
        if Self.random(index, 4) * 100 < Double(mailPercent) {
            m.destinations = [.dmp, .mssantePS]
            m.mssante = MSSanteMessage(recipients: [Self.doctor], professionalSubject: "Passerelle benchmark: \(kind.displayName)",
                                       professionalBody: "Document ci-joint.")
            if Self.random(index, 5) < 0.5 {
                m.destinations.append(.mssantePatient)
                m.mssante?.patientSubject = "Votre document"
                m.mssante?.patientBody = "Votre document est joint à ce message."
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Sidecar first: the PDF completes the pair (the scanner waits for both halves).
        return Item(index: index, files: [(name + ".json", try encoder.encode(m)), (name + ".pdf", pdf)],
                    uniqueId: DocumentEntryMapper.uniqueId(id), kind: kind, targets: m.destinations, pdfBytes: pdf.count, hl7: false)
    }
}
