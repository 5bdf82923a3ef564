import Foundation
import PasserelleCore
import XMLKit

/// A CDA document the producer sent ready-made. It is parsed only to check its header; the
/// bytes that travel on are the ones received, never a re-serialisation (a signature or hash
/// computed by the producer stays valid).
public enum ProducerCDA {
    /// Checks `data` and returns it as a ``CDADocument`` with `origin == .producer`.
    ///
    /// - `declared`: the metadata that came with it (sidecar or HL7 v2). The CDA must carry the
    ///   INS the producer declared if and only if the identity is qualified, the declared IPP,
    ///   and the declared kind when one is given.
    /// - `budget`: the parse budget (``CDAParseBudget/options(maxPDFBytes:)`` from the configuration);
    ///   a DOCTYPE is refused whatever the budget.
    public static func accept(_ data: Data, declared: DocumentMetadata?,
                              budget: XMLDocument.ParseOptions = CDAParseBudget.default) throws(CDAError) -> CDADocument {
        let xml: XMLDocument
        do { xml = try XMLDocument.parse(data, options: budget) } catch let error as XMLError { throw .notWellFormed(error) } catch {
            throw .notWellFormed(.parse(issues: []))
        }
        return try accept(xml, storage: .memory(data), declared: declared)
    }

    /// ``accept(_:declared:)`` for a document in a file, parsed in one streaming pass (a large
    /// base64 body is never held in memory). `file` is the result of ``CDAFile/measure(_:)``.
    public static func accept(file: CDAFile, declared: DocumentMetadata?,
                              budget: XMLDocument.ParseOptions = CDAParseBudget.default) throws(CDAError) -> CDADocument {
        let xml: XMLDocument
        do { xml = try XMLDocument.parseStreaming(file: file.url, options: budget).document } catch let error as XMLError {
            throw .notWellFormed(error)
        } catch {
            throw .notWellFormed(.parse(issues: []))
        }
        return try accept(xml, storage: .file(file), declared: declared)
    }

    static func accept(_ xml: XMLDocument, storage: CDADocument.Storage, declared: DocumentMetadata?) throws(CDAError) -> CDADocument {
        let header = CDAHeader.read(xml)
        if !header.problems.isEmpty { throw .invalidHeader(header.problems) }
        guard let kind = header.kind, let id = header.id, let setID = header.setID, let version = header.versionNumber,
              let time = header.effectiveTime else {
            throw .invalidHeader([CDAProblem("ClinicalDocument", "incomplete header")])
        }

        if let declared {
            if let declaredKind = declared.kind, declaredKind != kind {
                throw .declarationMismatch("the CDA is a \(kind.shortName) (\(kind.loincCode)) but the metadata says \(declaredKind.shortName)")
            }
            let patient = declared.patient
            if patient.identityStatus == .qualified {
                guard let reference = patient.ins else {
                    throw .declarationMismatch("identity_status QUAL without an INS in the metadata")
                }
                let declaredINS: INS
                do { declaredINS = try reference.checked() } catch { throw .invalidINS(error) }
                guard let found = header.ins else {
                    throw .declarationMismatch("the identity is qualified (INS \(declaredINS.masked)) but the CDA carries no INS in recordTarget/patientRole/id")
                }
                if found != declaredINS {
                    throw .declarationMismatch("the CDA carries INS \(found.masked) (\(found.oid)) but the metadata declares \(declaredINS.masked) (\(declaredINS.oid))")
                }
            } else if header.patientIDs.contains(where: { $0.root.hasPrefix(CDAHeader.insOIDPrefix) }) {
                throw .declarationMismatch("the CDA carries an INS but the identity is \(patient.identityStatus?.rawValue ?? "not given"), not QUAL: an INS may only travel with a qualified identity")
            }
            if let ipp = patient.ipp,
               !header.patientIDs.contains(InstanceIdentifier(root: ipp.authority, extension: ipp.value)) {
                throw .declarationMismatch("the CDA does not carry the declared IPP (authority \(ipp.authority)) in recordTarget/patientRole/id")
            }
        }
        return CDADocument(storage: storage, origin: .producer, kind: kind, id: id, setID: setID, versionNumber: version,
                           replaces: header.replaces, effectiveTime: time, ins: header.ins)
    }
}
