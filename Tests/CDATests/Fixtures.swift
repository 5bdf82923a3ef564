import CDA
import Foundation
import PasserelleCore
import TestSupport
import XMLKit

enum Fixtures {
    static let structureOID = "1.2.250.1.999.1"
    static let schemaURL = TestPaths.shared.appendingPathComponent("conformance/cda/xsd/cda/CDA_extended.xsd")
    static let examples = TestPaths.shared.appendingPathComponent("conformance/cda/examples")
    static let hl7 = ["hl7": "urn:hl7-org:v3"]

    static func date(_ text: String) -> ZonedDateTime { SampleMetadata.date(text) }

    static func coded(_ code: String, _ system: String, _ display: String) -> CodedValue {
        SampleMetadata.coded(code, system, display)
    }

    /// The ANS test patient (INS-NIR de test 279035121518989, born 1979-03-28 in 51215).
    static func patient(qualified: Bool) -> PatientInfo { SampleMetadata.patient(qualified: qualified) }

    static let author = SampleMetadata.author
    static let structure = SampleMetadata.structure

    static func metadata(kind: DocumentKind, qualified: Bool = true, replacing: CDADocument? = nil) -> DocumentMetadata {
        let m = SampleMetadata.document(kind: kind, qualified: qualified, destinations: [.mssantePS])
        guard let replacing else { return m }
        return m.replacing(id: replacing.id, setID: replacing.setID, versionNumber: replacing.versionNumber)
    }

    static let templatesBuilder: CDABuilder = {
        try! CDABuilder(templatesDirectory: TestPaths.templates,
                        options: CDABuilder.Options(documentIDRoot: structureOID))
    }()

    static let validator: CDAValidator = { try! CDAValidator(schema: schemaURL) }()
}
