import Foundation
import PasserelleCore

/// A CDA R2 document ready to travel: its exact bytes plus the header facts the later stages
/// (signature, XDS metadata, XDM) need without parsing it again.
public struct CDADocument: Sendable, Hashable {
    /// Where the bytes came from.
    public enum Origin: String, Sendable, Hashable {
        /// Built by Passerelle from `Templates/cda/n1-pdf.xml`.
        case built
        /// Received ready-made from the producer and kept byte for byte.
        case producer
    }

    /// The document, UTF-8 XML. Never re-serialised after it was built or received.
    public let data: Data
    public let origin: Origin
    public let kind: DocumentKind
    /// `ClinicalDocument/id`.
    public let id: InstanceIdentifier
    /// `ClinicalDocument/setId`.
    public let setID: InstanceIdentifier
    public let versionNumber: Int
    /// `relatedDocument[@typeCode='RPLC']/parentDocument/id`, for a replacement.
    public let replaces: InstanceIdentifier?
    /// `ClinicalDocument/effectiveTime/@value` (HL7 TS with offset).
    public let effectiveTime: String
    /// The INS written in `recordTarget` (nil when the identity is not qualified).
    public let ins: INS?

    public init(data: Data, origin: Origin, kind: DocumentKind, id: InstanceIdentifier, setID: InstanceIdentifier,
                versionNumber: Int, replaces: InstanceIdentifier?, effectiveTime: String, ins: INS?) {
        self.data = data
        self.origin = origin
        self.kind = kind
        self.id = id
        self.setID = setID
        self.versionNumber = versionNumber
        self.replaces = replaces
        self.effectiveTime = effectiveTime
        self.ins = ins
    }
}
